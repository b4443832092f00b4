//! The kernels against plain scalar arithmetic: every fused operation on one tile, then whole
//! matrix products of odd shapes through tract's own driver (border tiles, packing, fusion).

use tract_data::prelude::*;
use tract_linalg::BinOp;
use tract_linalg::mmm::{AsInputValue, FusedKerSpec, FusedSpec, MatMatMul, OutputStoreKer};

use super::{NR, kernel, make_4x8, make_4x8_rolled, make_6x8};

/// Reproducible values in [-1, 1), different for every seed.
pub(crate) fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn kernels() -> [Box<dyn MatMatMul>; 3] {
    [make_4x8(), make_6x8(), make_4x8_rolled()]
}

fn run<const R: usize, const U: usize>(ops: &[FusedKerSpec<f32>]) -> isize {
    unsafe { kernel::<R, U>(ops) }
}

pub(crate) fn assert_close(found: &[f32], expected: &[f32], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{what}: element {i} is {f}, expected {e}"
        );
    }
}

/// One operation applied to an R × 8 tile the plain way, as tract-linalg documents it.
enum Plain<'a> {
    Scalar(f32, fn(f32, f32) -> f32),
    PerRow(&'a [f32], fn(f32, f32) -> f32),
    PerCol(&'a [f32], fn(f32, f32) -> f32),
}

fn apply(tile: &mut [Vec<f32>], op: &Plain) {
    for (r, row) in tile.iter_mut().enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = match op {
                Plain::Scalar(s, f) => f(*s, *x),
                Plain::PerRow(v, f) => f(v[r], *x),
                Plain::PerCol(v, f) => f(v[c], *x),
            };
        }
    }
}

#[test]
fn every_fused_operation_matches_plain_arithmetic() {
    // k = 11: the unrolled kernels' remainder steps run too.
    fused_operations::<4, 4>();
    fused_operations::<6, 1>();
    fused_operations::<4, 1>();
}

fn fused_operations<const R: usize, const U: usize>() {
    let (k, s, rows) = (11, 0.375f32, R);
    let min: fn(f32, f32) -> f32 = |a, b| if a < b { a } else { b };
    let max: fn(f32, f32) -> f32 = |a, b| if a > b { a } else { b };
    let add: fn(f32, f32) -> f32 = |a, b| a + b;
    let mul: fn(f32, f32) -> f32 = |a, b| a * b;
    let sub: fn(f32, f32) -> f32 = |a, b| a - b;
    let sub_f: fn(f32, f32) -> f32 = |a, b| b - a;
    let leaky: fn(f32, f32) -> f32 = |alpha, x| if x > 0.0 { x } else { alpha * x };
    {
        let a = values(1, rows * k);
        let b = values(2, NR * k);
        let per_row = values(3, rows);
        let per_col = values(4, NR);
        let unicast = values(5, rows * NR);
        type Case<'a> = (&'a str, FusedKerSpec<f32>, Plain<'a>);
        let cases: Vec<Case> = vec![
            ("scalar min", FusedKerSpec::ScalarMin(s), Plain::Scalar(s, min)),
            ("scalar max", FusedKerSpec::ScalarMax(s), Plain::Scalar(s, max)),
            ("scalar add", FusedKerSpec::ScalarAdd(s), Plain::Scalar(s, add)),
            ("scalar mul", FusedKerSpec::ScalarMul(s), Plain::Scalar(s, mul)),
            ("scalar sub", FusedKerSpec::ScalarSub(s), Plain::Scalar(s, sub)),
            (
                "scalar sub flipped",
                FusedKerSpec::ScalarSubF(s),
                Plain::Scalar(s, sub_f),
            ),
            (
                "leaky relu",
                FusedKerSpec::LeakyRelu(0.1),
                Plain::Scalar(0.1, leaky),
            ),
            (
                "per-row min",
                FusedKerSpec::PerRowMin(per_row.as_ptr()),
                Plain::PerRow(&per_row, min),
            ),
            (
                "per-row max",
                FusedKerSpec::PerRowMax(per_row.as_ptr()),
                Plain::PerRow(&per_row, max),
            ),
            (
                "per-row add",
                FusedKerSpec::PerRowAdd(per_row.as_ptr()),
                Plain::PerRow(&per_row, add),
            ),
            (
                "per-row mul",
                FusedKerSpec::PerRowMul(per_row.as_ptr()),
                Plain::PerRow(&per_row, mul),
            ),
            (
                "per-row sub",
                FusedKerSpec::PerRowSub(per_row.as_ptr()),
                Plain::PerRow(&per_row, sub),
            ),
            (
                "per-row sub flipped",
                FusedKerSpec::PerRowSubF(per_row.as_ptr()),
                Plain::PerRow(&per_row, sub_f),
            ),
            (
                "per-col min",
                FusedKerSpec::PerColMin(per_col.as_ptr()),
                Plain::PerCol(&per_col, min),
            ),
            (
                "per-col max",
                FusedKerSpec::PerColMax(per_col.as_ptr()),
                Plain::PerCol(&per_col, max),
            ),
            (
                "per-col add",
                FusedKerSpec::PerColAdd(per_col.as_ptr()),
                Plain::PerCol(&per_col, add),
            ),
            (
                "per-col mul",
                FusedKerSpec::PerColMul(per_col.as_ptr()),
                Plain::PerCol(&per_col, mul),
            ),
            (
                "per-col sub",
                FusedKerSpec::PerColSub(per_col.as_ptr()),
                Plain::PerCol(&per_col, sub),
            ),
            (
                "per-col sub flipped",
                FusedKerSpec::PerColSubF(per_col.as_ptr()),
                Plain::PerCol(&per_col, sub_f),
            ),
            ("shift left", FusedKerSpec::ShiftLeft(3), Plain::Scalar(8.0, mul)),
            (
                "rounding shift right",
                FusedKerSpec::RoundingShiftRight(2, tract_linalg::mmm::RoundingPolicy::Even),
                Plain::Scalar(0.25, mul),
            ),
            (
                "q scale",
                // mult × 2^-(31 + shift) = 2^30 × 2^-32.
                FusedKerSpec::QScale(1, tract_linalg::mmm::RoundingPolicy::Even, 1 << 30),
                Plain::Scalar(0.25, mul),
            ),
        ];
        // The product itself, then each operation fused after it.
        let mut product: Vec<Vec<f32>> = vec![vec![0.0; NR]; rows];
        for (r, row) in product.iter_mut().enumerate() {
            for (c, x) in row.iter_mut().enumerate() {
                *x = (0..k).map(|i| a[i * rows + r] * b[i * NR + c]).sum();
            }
        }
        for (name, op, plain) in cases {
            let mut found = vec![f32::NAN; rows * NR];
            let out = OutputStoreKer {
                ptr: found.as_mut_ptr() as *mut u8,
                row_byte_stride: (NR * 4) as isize,
                col_byte_stride: 4,
                item_size: 4,
            };
            let ops = [
                FusedKerSpec::Clear,
                FusedKerSpec::AddMatMul {
                    k,
                    pa: a.as_ptr() as _,
                    pb: b.as_ptr() as _,
                    packing: 0,
                },
                op,
                FusedKerSpec::Store(out),
                FusedKerSpec::Done,
            ];
            assert_eq!(run::<R, U>(&ops), 0, "{name}");
            let mut expected = product.clone();
            apply(&mut expected, &plain);
            assert_close(&found, &expected.concat(), &format!("{R}x8 {name}"));
        }

        // Loading a tile, adding another matrix and row × column products, storing it strided.
        let tile = values(6, rows * NR);
        let mut found = vec![f32::NAN; rows * NR * 3];
        let ops = [
            FusedKerSpec::LoadTile(std::ptr::null(), tile.as_ptr()),
            FusedKerSpec::AddUnicast(OutputStoreKer {
                ptr: unicast.as_ptr() as *mut u8,
                row_byte_stride: 4,
                col_byte_stride: (rows * 4) as isize,
                item_size: 4,
            }),
            FusedKerSpec::AddRowColProducts(per_row.as_ptr(), per_col.as_ptr()),
            FusedKerSpec::Store(OutputStoreKer {
                ptr: found.as_mut_ptr() as *mut u8,
                row_byte_stride: (NR * 4 * 3) as isize,
                col_byte_stride: 12,
                item_size: 4,
            }),
            FusedKerSpec::Done,
        ];
        assert_eq!(run::<R, U>(&ops), 0);
        for r in 0..rows {
            for c in 0..NR {
                let expected = tile[r * NR + c] + unicast[c * rows + r] + per_row[r] * per_col[c];
                let at = r * NR * 3 + c * 3;
                assert_close(&found[at..at + 1], &[expected], &format!("{R}x8 load/add/store"));
            }
        }

        // An f16 output and an f16 addend are converted; an element size it has no type for is
        // refused rather than guessed.
        let half: Vec<f16> = unicast.iter().map(|&x| f16::from_f32(x)).collect();
        let mut found = vec![f16::from_f32(f32::NAN); rows * NR];
        let ops = [
            FusedKerSpec::Clear,
            FusedKerSpec::AddUnicast(OutputStoreKer {
                ptr: half.as_ptr() as *mut u8,
                row_byte_stride: (NR * 2) as isize,
                col_byte_stride: 2,
                item_size: 2,
            }),
            FusedKerSpec::Store(OutputStoreKer {
                ptr: found.as_mut_ptr() as *mut u8,
                row_byte_stride: (NR * 2) as isize,
                col_byte_stride: 2,
                item_size: 2,
            }),
            FusedKerSpec::Done,
        ];
        assert_eq!(run::<R, U>(&ops), 0);
        assert_eq!(found, half);
        let odd = OutputStoreKer {
            ptr: found.as_mut_ptr() as *mut u8,
            row_byte_stride: 3,
            col_byte_stride: 3,
            item_size: 3,
        };
        assert_ne!(run::<R, U>(&[FusedKerSpec::Store(odd), FusedKerSpec::Done]), 0);
    }
}

/// `relu(A × B + bias)` through tract's driver, against three plain loops.
fn product(kernel: &dyn MatMatMul, m: usize, k: usize, n: usize) -> TractResult<()> {
    let a = Tensor::from_shape(&[m, k], &values(7, m * k))?;
    let b = Tensor::from_shape(&[k, n], &values(8, k * n))?;
    let bias = Tensor::from_shape(&[m], &values(9, m))?;
    let zero = tensor0(0f32);
    let (pack_a, pack_b) = &kernel.packings()[0];
    let pa = pack_a.prepare_one(&a, 1, 0)?;
    let pb = pack_b.prepare_one(&b, 0, 1)?;
    let mut c = Tensor::zero::<f32>(&[m, n])?;
    unsafe {
        let store = kernel.c_view(Some(0), Some(1)).wrap(&c.view_mut());
        kernel.run(
            m,
            n,
            &[
                FusedSpec::AddMatMul {
                    a: AsInputValue::Borrowed(&*pa),
                    b: AsInputValue::Borrowed(&*pb),
                    packing: 0,
                },
                FusedSpec::BinPerRow(bias.view(), BinOp::Add),
                FusedSpec::BinScalar(&zero, BinOp::Max),
                FusedSpec::Store(store),
            ],
        )?;
    }
    let (a, b, bias) = (
        a.try_as_plain_ram()?,
        b.try_as_plain_ram()?,
        bias.try_as_plain_ram()?,
    );
    let (a, b, bias) = (
        a.as_slice::<f32>()?,
        b.as_slice::<f32>()?,
        bias.as_slice::<f32>()?,
    );
    let mut expected = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f32 = (0..k).map(|x| a[i * k + x] * b[x * n + j]).sum();
            expected[i * n + j] = (dot + bias[i]).max(0.0);
        }
    }
    let found = c.try_as_plain_ram()?;
    assert_close(
        found.as_slice::<f32>()?,
        &expected,
        &format!("{} {m}×{k}×{n}", kernel.name()),
    );
    Ok(())
}

#[test]
fn odd_shapes_match_a_plain_matmul() -> TractResult<()> {
    let shapes = [
        (1, 1, 1),
        (1, 5, 9),
        (3, 7, 5),
        (4, 9, 8),
        (5, 3, 17),
        (7, 13, 31),
        (13, 27, 10),
        (33, 9, 65),
        (64, 288, 49),
    ];
    for kernel in kernels() {
        for (m, k, n) in shapes {
            product(&*kernel, m, k, n)?;
        }
    }
    Ok(())
}
