//! Which f32 GEMM kernel tract runs in wasm, decided here rather than by tract-linalg's own rule
//! (its `wasm_f32_8x8` for every N > 1): a tier of higher precedence in tract-linalg's public
//! registry. It answers only where N is known and above 1; matrix-vector products and a
//! symbolic N stay tract's. Unless `SPINFER_WASM_GEMM` says otherwise, Spinfer's 4×8 runs where
//! the product is at least [`MIN_DEPTH`] deep; below it tract's 8×8, which does twice the work per
//! tile for the same fixed cost, wins (BENCHMARKS.md, "Real-size models": the PP-OCRv4 detector's
//! 1×1 convolutions, K = 16–192, run 1.1–2× faster on the 8×8; its K = 864 products and
//! mnist-cnn's K = 288 and 576 ones 10–15 % faster on the 4×8).

use tract_data::prelude::DatumType;
use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{Query, Suitable};
use tract_linalg::mmm_tiers::MmmTier;
use tract_linalg::wasm::{wasm_f32_4x4, wasm_f32_4x16, wasm_f32_8x8};

use crate::{DEFAULT_TILE, KERNELS, WASM_GEMM_VAR};

/// The kernel a tile names; `None` for `tract`, which leaves the choice to tract's tier.
fn kernel_named(tile: &str) -> Option<&'static str> {
    match tile {
        "8x8" => Some(wasm_f32_8x8.name.as_str()),
        "4x16" => Some(wasm_f32_4x16.name.as_str()),
        "4x4" => Some(wasm_f32_4x4.name.as_str()),
        "tract" => None,
        ours => KERNELS
            .iter()
            .find(|(tile, _)| *tile == ours)
            .or_else(|| KERNELS.iter().find(|(tile, _)| *tile == DEFAULT_TILE))
            .map(|(_, name)| *name),
    }
}

/// The shallowest product (K) Spinfer's default tile takes.
const MIN_DEPTH: usize = 256;

fn preferred(_: &IsaSet, accumulator: DatumType, query: &Query, _: &[Suitable]) -> Option<&'static str> {
    if accumulator != DatumType::F32 || query.n.is_none_or(|n| n < 2) {
        return None;
    }
    match std::env::var(WASM_GEMM_VAR) {
        Ok(choice) => kernel_named(&choice),
        Err(_) if query.k.is_none_or(|k| k < MIN_DEPTH) => None,
        Err(_) => kernel_named(DEFAULT_TILE),
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

pub(crate) fn keep() {
    std::hint::black_box(preferred as *const ());
}
