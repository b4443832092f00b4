//! Element-wise add and multiply for f32 in wasm SIMD128, tensor by tensor (`unicast`) and by a
//! scalar, sixteen values per loop turn.
//!
//! tract's element-wise chains (`OptBinChain`: batch norms, residual adds, hard-swish) run
//! tract-linalg's portable kernels for these in wasm, four values per loop turn, each turn paying
//! an epoch check under Spin's engine. These take four independent vectors per turn (measured in
//! BENCHMARKS.md, "Real-size models": the detector's chains 2.6–3.3× faster). IEEE addition and
//! multiplication round each lane exactly as the scalar code does, so results are bit-identical
//! to tract's. They reach tract through tract-linalg's public routine registry, declared for wasm
//! SIMD128 with a boost of 1 (`lanes::BOOST`) above tract's portable kernels.

use std::arch::wasm32::*;

use tract_linalg::BinOp;
use tract_linalg::by_scalar::ByScalarKer;
use tract_linalg::element_wise::ElementWiseKer;
use tract_linalg::isa::Arch;
use tract_linalg::routines::{Func, Routine, RoutineFactory};
use tract_linalg::unicast::UnicastKer;

use crate::lanes::{ALIGNMENT_ITEMS, BOOST, NR, SIMD128, map, zip_map};

macro_rules! kernels {
    ($unicast:ident, $by_scalar:ident, $op:ident, $f:path) => {
        /// `a op= b`, element by element.
        #[derive(Clone, Copy, Debug)]
        pub struct $unicast;
        impl UnicastKer<f32> for $unicast {
            fn name() -> &'static str {
                stringify!($unicast)
            }
            fn alignment_items() -> usize {
                ALIGNMENT_ITEMS
            }
            fn nr() -> usize {
                NR
            }
            fn run(a: &mut [f32], b: &[f32]) {
                zip_map(a, b, |x, y| $f(x, y));
            }
        }
        /// `a op= s` for one scalar `s`.
        #[derive(Clone, Copy, Debug)]
        pub struct $by_scalar;
        impl ElementWiseKer<f32, f32> for $by_scalar {
            fn name() -> &'static str {
                stringify!($by_scalar)
            }
            fn alignment_items() -> usize {
                ALIGNMENT_ITEMS
            }
            fn nr() -> usize {
                NR
            }
            fn run(buf: &mut [f32], s: f32) {
                let s = f32x4_splat(s);
                map(buf, |v| $f(v, s));
            }
        }
        impl ByScalarKer<f32> for $by_scalar {}
        inventory::submit! {
            Routine {
                func: Func::BinUnicast(BinOp::$op),
                arch: Some(Arch::Wasm32Simd128),
                isa: SIMD128,
                boost: BOOST,
                round_trip: false,
                factory: RoutineFactory::BinF32 {
                    name: <$unicast as UnicastKer<f32>>::name,
                    make: <$unicast as UnicastKer<f32>>::bin,
                },
            }
        }
        inventory::submit! {
            Routine {
                func: Func::BinByScalar(BinOp::$op),
                arch: Some(Arch::Wasm32Simd128),
                isa: SIMD128,
                boost: BOOST,
                round_trip: false,
                factory: RoutineFactory::BinF32 {
                    name: <$by_scalar as ElementWiseKer<f32, f32>>::name,
                    make: <$by_scalar as ByScalarKer<f32>>::bin,
                },
            }
        }
    };
}

kernels!(SpinferAdd16, SpinferAddByScalar16, Add, f32x4_add);
kernels!(SpinferMul16, SpinferMulByScalar16, Mul, f32x4_mul);

pub(crate) fn keep() {
    std::hint::black_box((
        <SpinferAdd16 as UnicastKer<f32>>::run as *const (),
        <SpinferMul16 as UnicastKer<f32>>::run as *const (),
        <SpinferAddByScalar16 as ElementWiseKer<f32, f32>>::run as *const (),
        <SpinferMulByScalar16 as ElementWiseKer<f32, f32>>::run as *const (),
    ));
}

#[cfg(test)]
mod tests;
