//! Which matmul kernel tract runs in wasm, decided here rather than by tract-linalg's own rule
//! (its `wasm_f32_8x8` for every N > 1, tuned on a 32-register Apple M1): a tier of higher
//! precedence in tract-linalg's public registry, so tract stays an unmodified dependency.
//!
//! `SPINFER_WASM_GEMM` (`8x8`, `4x16` or `4x4`, read when a model is optimised) picks the f32
//! GEMM tile; unset, tract's own rule stands. Matrix-vector products (N = 1) are left to tract.

use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{Query, Suitable};
use tract_linalg::mmm_tiers::MmmTier;
use tract_linalg::wasm::{wasm_f32_4x4, wasm_f32_4x16, wasm_f32_8x8};
use tract_onnx::prelude::DatumType;

use crate::WASM_GEMM_VAR;

fn preferred(_: &IsaSet, accumulator: DatumType, query: &Query, _: &[Suitable]) -> Option<&'static str> {
    if accumulator != DatumType::F32 || query.n == Some(1) {
        return None;
    }
    match std::env::var(WASM_GEMM_VAR).ok()?.as_str() {
        "8x8" => Some(wasm_f32_8x8.name.as_str()),
        "4x16" => Some(wasm_f32_4x16.name.as_str()),
        "4x4" => Some(wasm_f32_4x4.name.as_str()),
        _ => None,
    }
}

inventory::submit! {
    MmmTier {
        arch: Some(Arch::Wasm32Simd128),
        // Above tract's own wasm tier (1).
        precedence: 2,
        name: "spinfer-wasm-gemm",
        applies: |_| true,
        preferred,
    }
}

/// Keeps this object in the link: wasm-ld drops an object that only `inventory` references.
pub fn keep() {
    std::hint::black_box(preferred as *const ());
}
