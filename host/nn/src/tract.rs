//! tract as a `wasi:nn` backend: one optimised plan per model, shared and run concurrently;
//! the engine's runner locks only to take a run state and to give it back, never during a run.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use spinfer_engine::Model;
use wasmtime_wasi_nn::ExecutionContext;
use wasmtime_wasi_nn::backend::{BackendError, BackendGraph};

use super::{Context, NnTarget, Signature, named};

struct TractGraph {
    model: Arc<Model>,
    signature: Signature,
}

impl BackendGraph for TractGraph {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let model = self.model.clone();
        Ok(Context::boxed(
            move |inputs| model.run(inputs).map_err(|e| e.to_string()),
            self.signature.clone(),
        ))
    }
}

/// The model at `onnx`, whose card gives `signature` (its fixed sizes are the plan's): the
/// graph tract plans must have the card's inputs and outputs.
pub fn graph(onnx: &Path, signature: Signature, target: NnTarget) -> Result<Box<dyn BackendGraph>> {
    if target == NnTarget::Gpu {
        bail!("--nn tract runs on the CPU only; use --nn-target cpu, or --nn ort for a GPU");
    }
    let model = Model::from_path_as(onnx, &signature.inputs)?;
    signature.check(onnx, &named(model.inputs()), &named(model.outputs()))?;
    Ok(Box::new(TractGraph {
        model: Arc::new(model),
        signature,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi_nn::Tensor;
    use wasmtime_wasi_nn::backend::NamedTensor;
    use wasmtime_wasi_nn::wit::TensorType;

    fn seed() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mnist-seed.onnx")
    }

    fn signature() -> Signature {
        let card = std::fs::read(seed().with_extension("json")).unwrap();
        let card = spinfer_model::ModelCard::from_json(&card).unwrap();
        Signature {
            inputs: card.inputs,
            outputs: card.outputs,
        }
    }

    fn context() -> ExecutionContext {
        graph(&seed(), signature(), NnTarget::Cpu)
            .unwrap()
            .init_execution_context()
            .unwrap()
    }

    fn compute(ctx: &mut ExecutionContext, tensor: Tensor) -> Result<Vec<NamedTensor>, String> {
        ctx.compute_with_io(vec![NamedTensor {
            name: "input".into(),
            tensor,
        }])
        .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn wrong_tensor_type_and_shape_are_clear_errors() {
        let mut ctx = context();
        let ints = Tensor::new(vec![1, 1, 28, 28], TensorType::I64, vec![0; 784 * 8]);
        let err = compute(&mut ctx, ints).err().unwrap();
        assert!(
            err.contains("I64") && err.contains("FP32 [-1, 1, 28, 28]"),
            "{err}"
        );
        let short = Tensor::new(vec![1, 1, 28, 27], TensorType::Fp32, vec![0; 28 * 27 * 4]);
        let err = compute(&mut ctx, short).err().unwrap();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn tract_context_runs_a_batch_and_names_the_output_as_the_card_does() {
        let mut ctx = context();
        let input = Tensor::new(vec![2, 1, 28, 28], TensorType::Fp32, vec![0; 2 * 784 * 4]);
        let out = compute(&mut ctx, input).unwrap();
        assert_eq!(out[0].name, "probs");
        assert_eq!(out[0].tensor.dimensions, vec![2, 10]);
    }

    #[test]
    fn a_card_that_disagrees_with_the_graph_is_refused() {
        let mut wrong = signature();
        wrong.outputs[0].name = "logits".into();
        let err = graph(&seed(), wrong, NnTarget::Cpu).err().unwrap();
        assert!(err.to_string().contains("its card says"), "{err}");
    }

    #[test]
    fn gpu_with_tract_fails_loudly() {
        let err = graph(&seed(), signature(), NnTarget::Gpu).err().unwrap();
        assert!(err.to_string().contains("CPU only"), "{err}");
    }
}
