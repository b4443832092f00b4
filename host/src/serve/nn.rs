//! `wasi:nn` for components: the host runs the model natively and the guest keeps its sandbox.
//!
//! Only the app's own models are loadable, by name (`load-by-name`): they are read from the
//! component's `/models` mount once at start, and no backend is registered for `load`, so a
//! guest cannot hand the host arbitrary model bytes. An unknown name is wasi-nn's `not-found`.
//! A GPU target that cannot be honoured fails at start; it never falls back to the CPU.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use spinfer_engine::Classifier;
use spinfer_protocol::Catalog;
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor};
use wasmtime_wasi_nn::wit::{TensorType, WasiNnCtx};
use wasmtime_wasi_nn::{ExecutionContext, Graph, GraphRegistry, Tensor};

/// Which native runtime serves `wasi:nn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NnBackend {
    /// tract, on the CPU (pure Rust, always built).
    Tract,
    /// ONNX Runtime, loaded from `ORT_DYLIB_PATH` (build with `--features ort`).
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
        let catalog = Catalog::open(models, None).map_err(anyhow::Error::msg)?;
        let mut graphs = HashMap::new();
        for entry in &catalog.entries {
            let graph: Box<dyn BackendGraph> = match options.backend {
                NnBackend::Tract => {
                    if options.target == NnTarget::Gpu {
                        bail!("--nn tract runs on the CPU only; use --nn-target cpu, or --nn ort for a GPU");
                    }
                    let classifier = Classifier::from_path(&entry.onnx).map_err(|e| anyhow!("{e}"))?;
                    Box::new(TractGraph(Arc::new(classifier)))
                }
                NnBackend::Ort => super::ort::graph(&entry.onnx, options.target)?,
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
            "{:?}; the model takes FP32 [N,1,28,28]",
            tensor.ty
        )));
    }
    let elements: usize = tensor.dimensions.iter().map(|&d| d as usize).product();
    let batch = tensor.dimensions.first().copied().unwrap_or(0) as usize;
    if batch == 0 || elements != batch * item_len || tensor.data.len() != elements * 4 {
        return Err(BackendError::BackendAccess(wasmtime::Error::msg(format!(
            "tensor of dimensions {:?} with {} bytes does not fit FP32 [N,1,28,28]",
            tensor.dimensions,
            tensor.data.len()
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
                    name: "probs".into(),
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

/// tract as a wasi-nn graph: shared, immutable, run concurrently without a lock.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
    }

    fn context() -> ExecutionContext {
        let classifier = Arc::new(Classifier::from_path(&models().join("mnist-seed.onnx")).unwrap());
        TractGraph(classifier).init_execution_context().unwrap()
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
        let err = NnModels::load(
            &models(),
            &NnOptions {
                backend: NnBackend::Tract,
                target: NnTarget::Gpu,
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("CPU only"), "{err}");
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
