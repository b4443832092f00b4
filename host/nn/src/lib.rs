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
use spinfer_model::{DType, TensorSpec};
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
        let signature = Signature::of_card(entry);
        let graph: Box<dyn BackendGraph> = match options.backend {
            NnBackend::Tract => tract::graph(&entry.onnx, signature, options.target)?,
            NnBackend::Ort => ort::graph(&entry.onnx, signature, options.target)?,
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

/// What a graph takes and gives, as its card records it: every input and output.
#[derive(Clone, Debug)]
pub(crate) struct Signature {
    pub(crate) inputs: Vec<TensorSpec>,
    pub(crate) outputs: Vec<TensorSpec>,
}

impl Signature {
    fn of_card(entry: &CatalogEntry) -> Signature {
        Signature {
            inputs: entry.card.inputs.clone(),
            outputs: entry.card.outputs.clone(),
        }
    }

    /// Refuses a backend's view of the graph that is not the card's: other input or output
    /// names, or other element types.
    pub(crate) fn check(
        &self,
        onnx: &Path,
        inputs: &[(String, DType)],
        outputs: &[(String, DType)],
    ) -> Result<()> {
        anyhow::ensure!(
            named(&self.inputs) == inputs && named(&self.outputs) == outputs,
            "{}: the graph takes {inputs:?} and gives {outputs:?}; its card says {:?} and {:?}",
            onnx.display(),
            named(&self.inputs),
            named(&self.outputs)
        );
        Ok(())
    }

    fn expected(spec: &TensorSpec) -> String {
        format!("{} {:?}", spec.dtype.oip(), spec.oip_shape())
    }
}

/// Each tensor's name and element type, as [`Signature::check`] compares them.
pub(crate) fn named(specs: &[TensorSpec]) -> Vec<(String, DType)> {
    specs.iter().map(|s| (s.name.clone(), s.dtype)).collect()
}

/// The wasi-nn type of an element type, where wasi-nn has one.
fn tensor_type(dtype: DType) -> Option<TensorType> {
    Some(match dtype {
        DType::Float16 => TensorType::Fp16,
        DType::Float32 => TensorType::Fp32,
        DType::Float64 => TensorType::Fp64,
        DType::Uint8 => TensorType::U8,
        DType::Int32 => TensorType::I32,
        DType::Int64 => TensorType::I64,
        _ => return None,
    })
}

fn access(message: String) -> BackendError {
    BackendError::BackendAccess(wasmtime::Error::msg(message))
}

/// A wasi-nn input tensor as the model's input `spec`, checked against it.
fn model_tensor(spec: &TensorSpec, tensor: &Tensor) -> Result<spinfer_model::Tensor, BackendError> {
    if tensor_type(spec.dtype) != Some(tensor.ty) {
        return Err(BackendError::UnsupportedTensorType(format!(
            "{:?}; input {:?} takes {}",
            tensor.ty,
            spec.name,
            Signature::expected(spec)
        )));
    }
    let shape: Vec<usize> = tensor.dimensions.iter().map(|&d| d as usize).collect();
    if !spec.accepts(&shape) || shape.first() == Some(&0) {
        return Err(access(format!(
            "tensor of dimensions {:?} does not fit input {:?}, {}",
            tensor.dimensions,
            spec.name,
            Signature::expected(spec)
        )));
    }
    spinfer_model::Tensor::new(spec.name.clone(), spec.dtype, shape, tensor.data.clone())
        .map_err(|e| access(e.to_string()))
}

/// A model's output as a wasi-nn tensor.
fn wasi_tensor(tensor: spinfer_model::Tensor) -> Result<Tensor, BackendError> {
    let ty = tensor_type(tensor.dtype).ok_or_else(|| {
        BackendError::UnsupportedTensorType(format!("output {:?} is {}", tensor.name, tensor.dtype))
    })?;
    let dims = tensor
        .shape
        .iter()
        .map(|&d| u32::try_from(d))
        .collect::<Result<Vec<u32>, _>>();
    let dims = dims.map_err(|_| access(format!("output {:?} is too large", tensor.name)))?;
    Ok(Tensor::new(dims, ty, tensor.data))
}

/// A graph's execution context, generic over how the model is run: inputs set by name or
/// index, outputs read the same way.
pub(crate) struct Context<F> {
    run: F,
    signature: Signature,
    inputs: Vec<Option<spinfer_model::Tensor>>,
    outputs: Vec<spinfer_model::Tensor>,
}

impl<F> Context<F>
where
    F: Fn(Vec<spinfer_model::Tensor>) -> Result<Vec<spinfer_model::Tensor>, String> + Send + Sync + 'static,
{
    pub(crate) fn boxed(run: F, signature: Signature) -> ExecutionContext {
        let context: Box<dyn BackendExecutionContext> = Box::new(Context {
            run,
            inputs: vec![None; signature.inputs.len()],
            outputs: Vec::new(),
            signature,
        });
        ExecutionContext::from(context)
    }

    /// The position of the input or output `id` names among `specs`.
    fn position(specs: &[TensorSpec], id: &Id) -> Result<usize, BackendError> {
        let found = match id {
            Id::Index(i) => (*i as usize) < specs.len(),
            Id::Name(name) => specs.iter().any(|s| &s.name == name),
        };
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        if !found {
            return Err(access(format!("no tensor {id:?}; the model has {names:?}")));
        }
        Ok(match id {
            Id::Index(i) => *i as usize,
            Id::Name(name) => names.iter().position(|n| n == name).unwrap_or_default(),
        })
    }

    fn run_inputs(&mut self) -> Result<Vec<spinfer_model::Tensor>, BackendError> {
        let inputs = std::mem::replace(&mut self.inputs, vec![None; self.signature.inputs.len()]);
        let inputs = inputs
            .into_iter()
            .zip(&self.signature.inputs)
            .map(|(t, spec)| t.ok_or_else(|| access(format!("input {:?} was not set", spec.name))))
            .collect::<Result<Vec<_>, _>>()?;
        (self.run)(inputs).map_err(access)
    }
}

impl<F> BackendExecutionContext for Context<F>
where
    F: Fn(Vec<spinfer_model::Tensor>) -> Result<Vec<spinfer_model::Tensor>, String> + Send + Sync + 'static,
{
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let at = Self::position(&self.signature.inputs, &id)?;
        self.inputs[at] = Some(model_tensor(&self.signature.inputs[at], tensor)?);
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        let at = Self::position(&self.signature.outputs, &id)?;
        let output = self
            .outputs
            .get(at)
            .cloned()
            .ok_or_else(|| access("compute has not run".into()))?;
        wasi_tensor(output)
    }

    fn compute(
        &mut self,
        inputs: Option<Vec<NamedTensor>>,
    ) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            Some(inputs) => {
                for input in &inputs {
                    self.set_input(Id::Name(input.name.clone()), &input.tensor)?;
                }
                self.run_inputs()?
                    .into_iter()
                    .map(|t| {
                        Ok(NamedTensor {
                            name: t.name.clone(),
                            tensor: wasi_tensor(t)?,
                        })
                    })
                    .collect::<Result<Vec<_>, BackendError>>()
                    .map(Some)
            }
            None => {
                self.outputs = self.run_inputs()?;
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
