//! The protocol's `Backend` over `wasi:nn`: models are loaded by name from the host's
//! allow-list, so model bytes never cross into the guest.

use std::cell::RefCell;
use std::collections::HashMap;

use spinfer_catalog::Catalog;
use spinfer_model::{Backend, DType, ModelCard, ModelError};

wit_bindgen::generate!({
    path: "../../wit",
    world: "spinfer:inference/nn-client",
    generate_all,
});

use wasi::nn::errors::{Error as NnError, ErrorCode};
use wasi::nn::graph::{Graph, load_by_name};
use wasi::nn::tensor::{Tensor, TensorType};

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

pub struct NnBackend {
    catalog: Catalog,
    graphs: RefCell<HashMap<String, Graph>>,
}

fn model_error(model: &str, error: NnError) -> ModelError {
    let message = format!("model {model:?}: {}", error.data());
    match error.code() {
        ErrorCode::NotFound => ModelError::NotFound(message),
        ErrorCode::InvalidArgument => ModelError::InvalidInput(message),
        ErrorCode::Security | ErrorCode::UnsupportedOperation => ModelError::NotReady(message),
        _ => ModelError::Failed(message),
    }
}

impl NnBackend {
    pub fn new(catalog: Catalog) -> NnBackend {
        NnBackend {
            catalog,
            graphs: RefCell::new(HashMap::new()),
        }
    }

    fn with_graph<T>(
        &self,
        model: &str,
        f: impl FnOnce(&Graph) -> Result<T, ModelError>,
    ) -> Result<T, ModelError> {
        if self.catalog.get(model).is_none() {
            return Err(ModelError::unknown(model));
        }
        let mut graphs = self.graphs.borrow_mut();
        if !graphs.contains_key(model) {
            let graph = load_by_name(model).map_err(|e| model_error(model, e))?;
            graphs.insert(model.to_string(), graph);
        }
        f(&graphs[model])
    }
}

impl Backend for NnBackend {
    fn cards(&self) -> Vec<&ModelCard> {
        self.catalog.cards()
    }

    fn default_model(&self) -> Option<&str> {
        self.catalog.default.as_deref()
    }

    fn ready(&self, model: &str) -> Result<(), ModelError> {
        self.with_graph(model, |_| Ok(()))
    }

    fn run(
        &self,
        model: &str,
        inputs: Vec<spinfer_model::Tensor>,
    ) -> Result<Vec<spinfer_model::Tensor>, ModelError> {
        let card = &self
            .catalog
            .get(model)
            .ok_or_else(|| ModelError::unknown(model))?
            .card;
        let named = inputs
            .into_iter()
            .map(|t| {
                let ty = tensor_type(t.dtype).ok_or_else(|| {
                    ModelError::InvalidInput(format!(
                        "wasi-nn carries no {} tensors (input {:?})",
                        t.dtype.oip(),
                        t.name
                    ))
                })?;
                let dims = t
                    .shape
                    .iter()
                    .map(|&d| u32::try_from(d))
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(|_| ModelError::InvalidInput(format!("input {:?} is too large", t.name)))?;
                Ok((t.name, Tensor::new(&dims, ty, &t.data)))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        self.with_graph(model, |graph| {
            let context = graph
                .init_execution_context()
                .map_err(|e| model_error(model, e))?;
            let mut outputs = context.compute(named).map_err(|e| model_error(model, e))?;
            card.outputs
                .iter()
                .map(|spec| {
                    let at = outputs
                        .iter()
                        .position(|(name, _)| *name == spec.name)
                        .ok_or_else(|| {
                            ModelError::Failed(format!("model {model:?} returned no {:?}", spec.name))
                        })?;
                    let (name, tensor) = outputs.swap_remove(at);
                    if tensor_type(spec.dtype) != Some(tensor.ty()) {
                        return Err(ModelError::Failed(format!(
                            "model {model:?} returned {name:?} as {:?}, not {}",
                            tensor.ty(),
                            spec.dtype
                        )));
                    }
                    let shape = tensor.dimensions().iter().map(|&d| d as usize).collect();
                    spinfer_model::Tensor::new(name, spec.dtype, shape, tensor.data())
                })
                .collect()
        })
    }
}
