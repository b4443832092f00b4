//! `wasi:nn` for components: the host runs the model natively and the guest keeps its sandbox.
//!
//! Only the app's own models are loadable, by name (`load-by-name`): they are read from the
//! component's `/models` mount once at start, and no backend is registered for `load`, so a
//! guest cannot hand the host arbitrary model bytes. An unknown name is wasi-nn's `not-found`.
//! A GPU target that cannot be honoured fails at start; it never falls back to the CPU.
//!
//! As wasmtime's `wasi-nn` crate lays out its backends: this module holds what they share (the
//! options, the allow-listed registry, the execution context over a batch function) and picks
//! the backend; each backend is one file (`tract`, and `ort` behind its feature) that imports
//! only from here.

mod ort;
mod tract;

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use spinfer_catalog::Catalog;
use spinfer_protocol::contract::{ITEM_SHAPE, OUTPUT_NAME};
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor};
use wasmtime_wasi_nn::wit::{TensorType, WasiNnCtx};
use wasmtime_wasi_nn::{ExecutionContext, Graph, GraphRegistry, Tensor};

/// Which native runtime serves `wasi:nn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NnBackend {
    /// tract, on the CPU (pure Rust, always built).
    Tract,
    /// ONNX Runtime, loaded at run time (`ORT_DYLIB_PATH`, else the `onnxruntime` Python wheel,
    /// else the system's library paths).
    Ort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NnTarget {
    Cpu,
    Gpu,
}

#[derive(Clone, Debug)]
pub struct NnOptions {
    pub backend: NnBackend,
    pub target: NnTarget,
}

/// The graphs a component may load by name, loaded once.
pub struct NnModels {
    graphs: HashMap<String, Graph>,
}

impl NnModels {
    pub fn load(models: &Path, options: &NnOptions) -> Result<NnModels> {
        let catalog = Catalog::open(models, None)?;
        let mut graphs = HashMap::new();
        for entry in &catalog.entries {
            let graph: Box<dyn BackendGraph> = match options.backend {
                NnBackend::Tract => tract::graph(&entry.onnx, options.target)?,
                NnBackend::Ort => ort::graph(&entry.onnx, options.target)?,
            };
            graphs.insert(entry.card.name.clone(), Graph::from(graph));
        }
        tracing::info!(
            backend = ?options.backend,
            target = ?options.target,
            models = ?graphs.keys().collect::<Vec<_>>(),
            "wasi-nn models loaded"
        );
        Ok(NnModels { graphs })
    }

    /// A fresh wasi-nn context for one store: the allow-listed graphs, no `load` backends.
    pub fn context(&self) -> WasiNnCtx {
        WasiNnCtx::new([], Registry(self.graphs.clone()).into())
    }
}

struct Registry(HashMap<String, Graph>);

impl GraphRegistry for Registry {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}

/// Checks a wasi-nn input tensor and returns its values and batch size.
pub fn input_values(tensor: &Tensor, item_len: usize) -> Result<(Vec<f32>, usize), BackendError> {
    if tensor.ty != TensorType::Fp32 {
        return Err(BackendError::UnsupportedTensorType(format!(
            "{:?}; the model takes FP32 [N,{},{},{}]",
            tensor.ty, ITEM_SHAPE[0], ITEM_SHAPE[1], ITEM_SHAPE[2]
        )));
    }
    let elements: usize = tensor.dimensions.iter().map(|&d| d as usize).product();
    let batch = tensor.dimensions.first().copied().unwrap_or(0) as usize;
    if batch == 0 || elements != batch * item_len || tensor.data.len() != elements * 4 {
        return Err(BackendError::BackendAccess(wasmtime::Error::msg(format!(
            "tensor of dimensions {:?} with {} bytes does not fit FP32 [N,{},{},{}]",
            tensor.dimensions,
            tensor.data.len(),
            ITEM_SHAPE[0],
            ITEM_SHAPE[1],
            ITEM_SHAPE[2]
        ))));
    }
    let values = tensor
        .data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((values, batch))
}

/// An FP32 `[batch, classes]` output tensor.
pub fn output_tensor(probs: &[f32], batch: usize) -> Tensor {
    Tensor::new(
        vec![batch as u32, (probs.len() / batch.max(1)) as u32],
        TensorType::Fp32,
        probs.iter().flat_map(|p| p.to_le_bytes()).collect(),
    )
}

/// A graph's execution context, generic over how a batch is run.
pub struct Context<F> {
    run: F,
    item_len: usize,
    input: Option<Tensor>,
    output: Option<Tensor>,
}

impl<F> Context<F>
where
    F: Fn(&[f32], usize) -> Result<Vec<f32>, String> + Send + Sync + 'static,
{
    pub fn boxed(run: F, item_len: usize) -> ExecutionContext {
        let context: Box<dyn BackendExecutionContext> = Box::new(Context {
            run,
            item_len,
            input: None,
            output: None,
        });
        ExecutionContext::from(context)
    }

    fn run_input(&mut self, input: &Tensor) -> Result<Tensor, BackendError> {
        let (values, batch) = input_values(input, self.item_len)?;
        let probs =
            (self.run)(&values, batch).map_err(|e| BackendError::BackendAccess(wasmtime::Error::msg(e)))?;
        Ok(output_tensor(&probs, batch))
    }
}

impl<F> BackendExecutionContext for Context<F>
where
    F: Fn(&[f32], usize) -> Result<Vec<f32>, String> + Send + Sync + 'static,
{
    fn set_input(&mut self, _id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        self.input = Some(tensor.clone());
        Ok(())
    }

    fn get_output(&mut self, _id: Id) -> Result<Tensor, BackendError> {
        self.output
            .clone()
            .ok_or_else(|| BackendError::BackendAccess(wasmtime::Error::msg("compute has not run")))
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            Some(inputs) => {
                let [input] = inputs.as_slice() else {
                    return Err(BackendError::BackendAccess(wasmtime::Error::msg(format!(
                        "expected one input tensor, got {}",
                        inputs.len()
                    ))));
                };
                let tensor = self.run_input(&input.tensor)?;
                Ok(Some(vec![NamedTensor {
                    name: OUTPUT_NAME.into(),
                    tensor,
                }]))
            }
            None => {
                let input = self
                    .input
                    .take()
                    .ok_or_else(|| BackendError::BackendAccess(wasmtime::Error::msg("no input was set")))?;
                self.output = Some(self.run_input(&input)?);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn models() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    #[test]
    fn registry_serves_only_the_apps_models() {
        let nn = NnModels::load(
            &models(),
            &NnOptions {
                backend: NnBackend::Tract,
                target: NnTarget::Cpu,
            },
        )
        .unwrap();
        let registry = Registry(nn.graphs.clone());
        assert!(registry.get("mnist-seed").is_some());
        assert!(registry.get("resnet50").is_none());
    }
}
