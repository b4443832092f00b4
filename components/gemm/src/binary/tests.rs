//! The add and multiply kernels bit for bit against plain arithmetic and tract's own portable
//! kernels, through tract-linalg's drivers (odd lengths and offsets, so their tail handling runs).

use tract_data::prelude::DatumType;
use tract_linalg::BinOp;
use tract_linalg::element_wise::ElementWiseKer;
use tract_linalg::generic::by_scalar::{SAddByScalar4, SMulByScalar4};
use tract_linalg::generic::unicast::{SUnicastAdd4, SUnicastMul4};
use tract_linalg::isa;
use tract_linalg::routines::{Func, best_for};
use tract_linalg::unicast::{Unicast, UnicastImpl, UnicastKer};

use super::{SpinferAdd16, SpinferAddByScalar16, SpinferMul16, SpinferMulByScalar16};

/// Reproducible values of every magnitude, signs, zeros and the infinities.
fn values(seed: u32, len: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|i| match i % 97 {
            0 => 0.0,
            1 => -0.0,
            2 => f32::INFINITY,
            3 => f32::NEG_INFINITY,
            _ => {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                f32::from_bits(state & 0xBFFF_FFFF)
            }
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `a op b` through tract's unicast driver, which wants both operands at the same alignment:
/// `a` at 1 + `len`, `b` after it at a multiple of four values, in one allocation.
fn unicast<K: UnicastKer<f32>>(a: &[f32], b: &[f32]) -> Vec<f32> {
    let gap = a.len().next_multiple_of(4);
    let mut buf = vec![0.0; 1 + gap + b.len()];
    buf[1..1 + a.len()].copy_from_slice(a);
    buf[1 + gap..].copy_from_slice(b);
    let (head, tail) = buf.split_at_mut(1 + gap);
    UnicastImpl::<K, f32>::new()
        .run(&mut head[1..1 + a.len()], tail)
        .unwrap();
    head[1..1 + a.len()].to_vec()
}

fn by_scalar<K: ElementWiseKer<f32, f32>>(a: &[f32], s: f32) -> Vec<f32> {
    let mut out = a.to_vec();
    K::ew().run_with_params(&mut out, s).unwrap();
    out
}

#[test]
fn the_registry_runs_spinfers_kernels() {
    let here = isa::native();
    let name = |func| best_for(func, DatumType::F32, &here).map(|r| r.name());
    assert_eq!(name(Func::BinUnicast(BinOp::Add)), Some(SpinferAdd16::name()));
    assert_eq!(name(Func::BinUnicast(BinOp::Mul)), Some(SpinferMul16::name()));
    let add = <SpinferAddByScalar16 as ElementWiseKer<f32, f32>>::name();
    let mul = <SpinferMulByScalar16 as ElementWiseKer<f32, f32>>::name();
    assert_eq!(name(Func::BinByScalar(BinOp::Add)), Some(add));
    assert_eq!(name(Func::BinByScalar(BinOp::Mul)), Some(mul));
}

#[test]
fn unicast_matches_plain_arithmetic_and_tracts_kernels() {
    for len in [1, 3, 15, 16, 17, 33, 100, 1000] {
        // One value off the allocation's alignment, so the driver's unaligned head runs too.
        let (a, b) = (&values(1, len), &values(2, len));
        let add: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + y).collect();
        let mul: Vec<f32> = a.iter().zip(b).map(|(x, y)| x * y).collect();
        assert_eq!(bits(&unicast::<SpinferAdd16>(a, b)), bits(&add), "add, {len}");
        assert_eq!(bits(&unicast::<SpinferMul16>(a, b)), bits(&mul), "mul, {len}");
        assert_eq!(
            bits(&unicast::<SUnicastAdd4>(a, b)),
            bits(&add),
            "tract's add, {len}"
        );
        assert_eq!(
            bits(&unicast::<SUnicastMul4>(a, b)),
            bits(&mul),
            "tract's mul, {len}"
        );
    }
}

#[test]
fn by_scalar_matches_plain_arithmetic_and_tracts_kernels() {
    for len in [1, 3, 15, 16, 17, 33, 100, 1000] {
        let a = &values(3, len);
        for s in [0.5, -3.25, 0.0, f32::INFINITY] {
            let add: Vec<f32> = a.iter().map(|x| x + s).collect();
            let mul: Vec<f32> = a.iter().map(|x| x * s).collect();
            assert_eq!(
                bits(&by_scalar::<SpinferAddByScalar16>(a, s)),
                bits(&add),
                "add {s}, {len}"
            );
            assert_eq!(
                bits(&by_scalar::<SpinferMulByScalar16>(a, s)),
                bits(&mul),
                "mul {s}, {len}"
            );
            assert_eq!(
                bits(&by_scalar::<SAddByScalar4>(a, s)),
                bits(&add),
                "tract's add {s}, {len}"
            );
            assert_eq!(
                bits(&by_scalar::<SMulByScalar4>(a, s)),
                bits(&mul),
                "tract's mul {s}, {len}"
            );
        }
    }
}
