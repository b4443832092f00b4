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

//! Spinfer's `wasi:nn` backends: the models of a folder, run natively, as wasi-nn graphs.
//!
//! The runner (`spinfer-serve`) links `wasi:nn` and serves the graphs it is handed by name
//! only; this crate makes them. Each backend reads the input's shape and the output's name
//! from the model itself. A GPU target that cannot be honoured fails at load; it never falls
//! back to the CPU.
//!
//! As wasmtime's `wasi-nn` crate lays out its backends: this file holds what they share (the
//! options, the execution context over a batch function) and picks the backend; each backend
//! is one file (`tract`, and `ort` behind its feature) that imports only from here.

mod ort;
mod tract;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::Result;
use spinfer_catalog::{Catalog, CatalogEntry};
use wasmtime_wasi_nn::backend::{BackendError, BackendExecutionContext, BackendGraph, Id, NamedTensor};
use wasmtime_wasi_nn::wit::TensorType;
use wasmtime_wasi_nn::{ExecutionContext, Graph, Tensor};

/// Which native runtime serves `wasi:nn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NnBackend {
    /// tract, on the CPU (pure Rust, always built).
    Tract,
    /// ONNX Runtime, loaded at run time (`ORT_DYLIB_PATH`, else the `onnxruntime` Python wheel,
    /// else the system's library paths).
    Ort,
}

/// Where a backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NnTarget {
    Cpu,
    Gpu,
}

impl NnBackend {
    pub const ALL: [NnBackend; 2] = [NnBackend::Tract, NnBackend::Ort];

    /// Its name in the manifest (`[component.<id>.tool.spinfer] nn`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NnBackend::Tract => "tract",
            NnBackend::Ort => "ort",
        }
    }
}

impl NnTarget {
    pub const ALL: [NnTarget; 2] = [NnTarget::Cpu, NnTarget::Gpu];

    /// Its name in the manifest (`nn_target`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NnTarget::Cpu => "cpu",
            NnTarget::Gpu => "gpu",
        }
    }
}

/// The one of `all` called `name`, or an error that lists their names.
fn by_name<T: Copy>(name: &str, all: &[T], name_of: fn(T) -> &'static str, what: &str) -> Result<T, String> {
    all.iter().copied().find(|t| name_of(*t) == name).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|t| name_of(*t)).collect();
        format!("unknown wasi-nn {what} {name:?}; one of: {}", names.join(", "))
    })
}

impl FromStr for NnBackend {
    type Err = String;

    fn from_str(name: &str) -> Result<NnBackend, String> {
        by_name(name, &NnBackend::ALL, NnBackend::name, "backend")
    }
}

impl FromStr for NnTarget {
    type Err = String;

    fn from_str(name: &str) -> Result<NnTarget, String> {
        by_name(name, &NnTarget::ALL, NnTarget::name, "target")
    }
}

impl fmt::Display for NnBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for NnTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NnOptions {
    pub backend: NnBackend,
    pub target: NnTarget,
}

/// Every model of the folder `models` (checked as a catalog) as a graph, by the name its card
/// gives, loaded once.
pub fn load(models: &Path, options: &NnOptions) -> Result<HashMap<String, Graph>> {
    let catalog = Catalog::open(models, None)?;
    let mut graphs = HashMap::new();
    for entry in &catalog.entries {
        let graph: Box<dyn BackendGraph> = match options.backend {
            NnBackend::Tract => tract::graph(&entry.onnx, Signature::of_card(entry)?, options.target)?,
            NnBackend::Ort => ort::graph(&entry.onnx, options.target)?,
        };
        graphs.insert(entry.card.name.clone(), Graph::from(graph));
    }
    tracing::info!(
        backend = %options.backend,
        target = %options.target,
        models = ?graphs.keys().collect::<Vec<_>>(),
        "wasi-nn models loaded"
    );
    Ok(graphs)
}

/// What a graph takes and gives: FP32 `[N, item_shape…]` in, FP32 `[N, classes]` out under
/// `output_name`.
#[derive(Clone, Debug)]
pub(crate) struct Signature {
    pub(crate) item_shape: Vec<usize>,
    pub(crate) output_name: String,
}

impl Signature {
    /// What a model's card records of its graph (the batch dimension first).
    fn of_card(entry: &CatalogEntry) -> Result<Signature> {
        let card = &entry.card;
        let item_shape = card
            .input
            .shape
            .iter()
            .skip(1)
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| {
                anyhow::anyhow!(
                    "model {:?}: input shape {:?} is not fixed past the batch",
                    card.name,
                    card.input.shape
                )
            })?;
        Ok(Signature {
            item_shape,
            output_name: card.output.name.clone(),
        })
    }

    fn item_len(&self) -> usize {
        self.item_shape.iter().product()
    }

    fn expected(&self) -> String {
        let dims: Vec<String> = self.item_shape.iter().map(usize::to_string).collect();
        format!("FP32 [N,{}]", dims.join(","))
    }
}

/// Checks a wasi-nn input tensor against `signature` and returns its values and batch size.
fn input_values(tensor: &Tensor, signature: &Signature) -> Result<(Vec<f32>, usize), BackendError> {
    if tensor.ty != TensorType::Fp32 {
        return Err(BackendError::UnsupportedTensorType(format!(
            "{:?}; the model takes {}",
            tensor.ty,
            signature.expected()
        )));
    }
    let elements: usize = tensor.dimensions.iter().map(|&d| d as usize).product();
    let batch = tensor.dimensions.first().copied().unwrap_or(0) as usize;
    if batch == 0 || elements != batch * signature.item_len() || tensor.data.len() != elements * 4 {
        return Err(BackendError::BackendAccess(wasmtime::Error::msg(format!(
            "tensor of dimensions {:?} with {} bytes does not fit {}",
            tensor.dimensions,
            tensor.data.len(),
            signature.expected()
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
fn output_tensor(probs: &[f32], batch: usize) -> Tensor {
    Tensor::new(
        vec![batch as u32, (probs.len() / batch.max(1)) as u32],
        TensorType::Fp32,
        probs.iter().flat_map(|p| p.to_le_bytes()).collect(),
    )
}

/// A graph's execution context, generic over how a batch is run.
pub(crate) struct Context<F> {
    run: F,
    signature: Signature,
    input: Option<Tensor>,
    output: Option<Tensor>,
}

impl<F> Context<F>
where
    F: Fn(&[f32], usize) -> Result<Vec<f32>, String> + Send + Sync + 'static,
{
    pub(crate) fn boxed(run: F, signature: Signature) -> ExecutionContext {
        let context: Box<dyn BackendExecutionContext> = Box::new(Context {
            run,
            signature,
            input: None,
            output: None,
        });
        ExecutionContext::from(context)
    }

    fn run_input(&mut self, input: &Tensor) -> Result<Tensor, BackendError> {
        let (values, batch) = input_values(input, &self.signature)?;
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
                    name: self.signature.output_name.clone(),
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
    fn loads_every_model_of_the_folder_by_name() {
        let options = NnOptions {
            backend: NnBackend::Tract,
            target: NnTarget::Cpu,
        };
        let graphs = load(&models(), &options).unwrap();
        let catalog = Catalog::open(&models(), None).unwrap();
        assert_eq!(graphs.len(), catalog.entries.len());
        assert!(graphs.contains_key("mnist-seed"));
    }

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_known() {
        for backend in NnBackend::ALL {
            assert_eq!(backend.name().parse::<NnBackend>(), Ok(backend));
        }
        for target in NnTarget::ALL {
            assert_eq!(target.to_string().parse::<NnTarget>(), Ok(target));
        }
        let err = "onnx".parse::<NnBackend>().unwrap_err();
        assert!(err.contains("tract, ort"), "{err}");
    }
}
