//! Spinfer's own f32 kernels for tract in wasm: matrix products and the dispatch rule that runs
//! them, SiLU (`activation`), element-wise add and multiply (`binary`); and ops of its own, which
//! [`patch`] puts in place of tract's in a decluttered model: a direct stride-1 convolution
//! (`conv`) and a softmax over an inner axis (`softmax`).
//!
//! tract-linalg 0.23.9 runs its `wasm_f32_8x8` kernel for every GEMM in wasm: sixteen v128
//! accumulators, tuned on an Apple M1 with 32 vector registers. An x86 host has 16, so the tile
//! spills once Cranelift adds the operands. The kernels here keep R rows × 8 columns (2R
//! accumulators, see [`CHOICES`]) so that a tile and its operands fit 16 registers.
//!
//! Both reach tract through tract-linalg's public `inventory` registries: each kernel is an
//! `MmmRoutine` built with `DynKernel::new`, and the rule is an `MmmTier` above tract's own wasm
//! tier. Nothing here is compiled outside wasm32 + simd128.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod activation;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod binary;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod conv;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernel;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod softmax;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod tier;

/// Names the f32 GEMM kernel tract runs in wasm, read when a model is optimised: one of Spinfer's
/// tiles (`4x8`, four steps of k per loop turn; `6x8`; `4x8u1`, the 4×8 one step per turn), one
/// of tract's (`8x8`, `4x16`, `4x4`), or `tract` for tract-linalg's
/// own rule. Any other value means [`DEFAULT_TILE`]; unset, the default rule (see `tier`) runs.
pub const WASM_GEMM_VAR: &str = "SPINFER_WASM_GEMM";

/// Set to `tract`, leaves every op to tract when a model is optimised; otherwise [`patch`] puts
/// Spinfer's own ops in place of tract's where they apply.
pub const WASM_OPS_VAR: &str = "SPINFER_WASM_OPS";

/// Spinfer's tile in the default rule (measured in BENCHMARKS.md).
pub const DEFAULT_TILE: &str = "4x8";

/// Every value [`WASM_GEMM_VAR`] takes: Spinfer's tiles, then tract's, then tract's own rule.
pub const CHOICES: [&str; 7] = ["4x8", "6x8", "4x8u1", "8x8", "4x16", "4x4", "tract"];

/// Spinfer's kernels: the tile as [`WASM_GEMM_VAR`] names it, and the kernel's name in
/// tract-linalg's registry.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const KERNELS: [(&str, &str); 3] = [
    ("4x8", "spinfer_wasm_f32_4x8"),
    ("6x8", "spinfer_wasm_f32_6x8"),
    ("4x8u1", "spinfer_wasm_f32_4x8_u1"),
];

/// Keeps the kernels (products, SiLU, add and multiply) and the tier in the link: wasm-ld drops
/// an object that only `inventory` references. Call it once before a model is optimised.
pub fn keep() {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        kernel::keep();
        tier::keep();
        activation::keep();
        binary::keep();
    }
}

/// Puts Spinfer's ops in place of tract's in `model` (decluttered, before tract's codegen):
/// stride-1 convolutions ([`conv::DirectConv`]) and softmaxes over an axis other than the last
/// ([`softmax::AxisSoftmax`]). Returns how many nodes it replaced; none when
/// [`WASM_OPS_VAR`] is `tract`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn patch(model: &mut tract_core::prelude::TypedModel) -> tract_core::prelude::TractResult<usize> {
    if std::env::var(WASM_OPS_VAR).is_ok_and(|v| v == "tract") {
        return Ok(0);
    }
    Ok(conv::patch(model)? + softmax::patch(model)?)
}
