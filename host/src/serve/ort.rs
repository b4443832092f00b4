//! ONNX Runtime behind `wasi:nn` (`--nn ort`), compiled in with the `ort` cargo feature.

use std::path::Path;

use anyhow::{Result, bail};
use wasmtime_wasi_nn::backend::BackendGraph;

use super::nn::NnTarget;

#[cfg(not(feature = "ort"))]
pub fn graph(_onnx: &Path, _target: NnTarget) -> Result<Box<dyn BackendGraph>> {
    bail!("this spinfer was built without ONNX Runtime; rebuild with `cargo build --release -p spinfer --features ort`")
}
