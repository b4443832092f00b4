//! tract as a `wasi:nn` backend: one optimised plan per model, shared and run concurrently;
//! the engine locks only to take a run state and to give it back, never during a run.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use spinfer_engine::Classifier;
use wasmtime_wasi_nn::ExecutionContext;
use wasmtime_wasi_nn::backend::{BackendError, BackendGraph};

use super::{Context, NnTarget};

struct TractGraph(Arc<Classifier>);

impl BackendGraph for TractGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let classifier = self.0.clone();
        let item_len = classifier.item_len();
        Ok(Context::boxed(
            move |values: &[f32], _batch| classifier.run(values).map_err(|e| e.to_string()),
            item_len,
        ))
    }
}

pub fn graph(onnx: &Path, target: NnTarget) -> Result<Box<dyn BackendGraph>> {
    if target == NnTarget::Gpu {
        bail!("--nn tract runs on the CPU only; use --nn-target cpu, or --nn ort for a GPU");
    }
    Ok(Box::new(TractGraph(Arc::new(Classifier::from_path(onnx)?))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi_nn::Tensor;
    use wasmtime_wasi_nn::backend::NamedTensor;
    use wasmtime_wasi_nn::wit::TensorType;

    fn models() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    fn context() -> ExecutionContext {
        graph(&models().join("mnist-seed.onnx"), NnTarget::Cpu)
            .unwrap()
            .init_execution_context()
            .unwrap()
    }

    #[test]
    fn wrong_tensor_type_and_shape_are_clear_errors() {
        let mut ctx = context();
        let ints = Tensor::new(vec![1, 1, 28, 28], TensorType::I64, vec![0; 784 * 8]);
        let err = ctx
            .compute_with_io(vec![NamedTensor {
                name: "input".into(),
                tensor: ints,
            }])
            .err()
            .unwrap();
        assert!(format!("{err}").contains("I64"), "{err}");
        let short = Tensor::new(vec![1, 1, 28, 27], TensorType::Fp32, vec![0; 28 * 27 * 4]);
        let err = ctx
            .compute_with_io(vec![NamedTensor {
                name: "input".into(),
                tensor: short,
            }])
            .err()
            .unwrap();
        assert!(format!("{err:?}").contains("does not fit"), "{err:?}");
    }

    #[test]
    fn tract_context_runs_a_batch() {
        let mut ctx = context();
        let input = Tensor::new(vec![2, 1, 28, 28], TensorType::Fp32, vec![0; 2 * 784 * 4]);
        let out = ctx
            .compute_with_io(vec![NamedTensor {
                name: "input".into(),
                tensor: input,
            }])
            .unwrap();
        assert_eq!(out[0].tensor.dimensions, vec![2, 10]);
    }

    #[test]
    fn gpu_with_tract_fails_loudly() {
        let err = graph(&models().join("mnist-seed.onnx"), NnTarget::Gpu)
            .err()
            .unwrap();
        assert!(err.to_string().contains("CPU only"), "{err}");
    }
}
