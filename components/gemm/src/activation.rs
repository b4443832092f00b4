//! SiLU (`x · sigmoid(x)`, YOLO's activation) for f32 in wasm SIMD128, sixteen values per loop
//! turn.
//!
//! tract-linalg 0.23.9 runs a SIMD128 SiLU that works one vector per loop turn; Spin and
//! `spinfer up` run wasm with epoch interruption, and Cranelift checks the epoch at every loop
//! header. This one takes four independent vectors per turn (measured in BENCHMARKS.md, "Real-size
//! models": 7–37 % less time on YOLOv8n's 65 SiLU nodes). A sigmoid on the same code measured
//! slower than tract's portable one, which LLVM vectorises, so tract keeps its sigmoid.
//!
//! `sigmoid(x) = 1 / (1 + e^(-x))`, with `e^y` as `2^n · p(r)`: `n` the nearest integer to
//! `y / ln 2`, `r = y - n ln 2` (ln 2 in two parts, so `r` keeps its low bits) and `p` the Taylor
//! polynomial of degree 6 (its error below 2e-7 relative for |r| ≤ ln 2 / 2); `y` is clamped to
//! ±87, where `2^n` is still a normal float.
//!
//! It reaches tract through tract-linalg's public routine registry (an `inventory` of `Routine`s),
//! declared for wasm SIMD128 with a boost of 1 (`lanes::BOOST`), which ranks it above tract's
//! own kernel (same architecture, same instruction-set level).

use std::arch::wasm32::*;

use tract_linalg::element_wise::ElementWiseKer;
use tract_linalg::isa::Arch;
use tract_linalg::routines::{Func, Routine, RoutineFactory};

use crate::lanes::{ALIGNMENT_ITEMS, BOOST, NR, SIMD128, map};

pub(crate) const CLAMP: f32 = 87.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO; LN2_HI has few enough bits that `n · LN2_HI` is exact for |n| < 128.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^y` for each lane, |y| ≤ [`CLAMP`].
#[inline(always)]
pub(crate) fn exp(y: v128) -> v128 {
    let n = f32x4_nearest(f32x4_mul(y, f32x4_splat(LOG2_E)));
    let r = f32x4_sub(y, f32x4_mul(n, f32x4_splat(LN2_HI)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(LN2_LO)));
    // 1 + r + r²/2! + … + r⁶/6!, by Horner.
    let mut p = f32x4_splat(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    // 2^n: n + 127 in the exponent field.
    let scale = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(p, scale)
}

#[inline(always)]
fn sigmoid(x: v128) -> v128 {
    let y = f32x4_min(f32x4_max(f32x4_neg(x), f32x4_splat(-CLAMP)), f32x4_splat(CLAMP));
    f32x4_div(f32x4_splat(1.0), f32x4_add(f32x4_splat(1.0), exp(y)))
}

/// Spinfer's SiLU.
#[derive(Clone, Debug)]
pub struct Silu16;

impl ElementWiseKer<f32> for Silu16 {
    fn name() -> &'static str {
        "spinfer_wasm_silu_f32_16n"
    }
    fn alignment_items() -> usize {
        ALIGNMENT_ITEMS
    }
    fn nr() -> usize {
        NR
    }
    fn run(buf: &mut [f32], _: ()) {
        map(buf, |x| f32x4_mul(x, sigmoid(x)));
    }
}

inventory::submit! {
    Routine {
        func: Func::Silu,
        arch: Some(Arch::Wasm32Simd128),
        isa: SIMD128,
        boost: BOOST,
        round_trip: false,
        factory: RoutineFactory::F32(Silu16::ew),
    }
}

pub(crate) fn keep() {
    std::hint::black_box(<Silu16 as ElementWiseKer<f32>>::run as *const ());
}

#[cfg(test)]
mod tests;
