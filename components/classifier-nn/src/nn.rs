//! The protocol's `Backend` over `wasi:nn`: models are loaded by name from the host's
//! allow-list, so model bytes never cross into the guest.

use std::cell::RefCell;
use std::collections::HashMap;

use spinfer_catalog::Catalog;
use spinfer_model::{Backend, ModelCard, ModelError};

wit_bindgen::generate!({
    path: "../../wit",
    world: "spinfer:inference/nn-client",
    generate_all,
});

use wasi::nn::errors::{Error as NnError, ErrorCode};
use wasi::nn::graph::{Graph, load_by_name};
use wasi::nn::tensor::{Tensor, TensorType};

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

    fn infer(&self, model: &str, input: &[f32], batch: usize) -> Result<Vec<f32>, ModelError> {
        let card = self
            .catalog
            .get(model)
            .ok_or_else(|| ModelError::unknown(model))?
            .card
            .clone();
        let mut dims: Vec<u32> = vec![batch as u32];
        dims.extend(card.input.shape.iter().skip(1).map(|&d| d as u32));
        let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.with_graph(model, |graph| {
            let context = graph
                .init_execution_context()
                .map_err(|e| model_error(model, e))?;
            let tensor = Tensor::new(&dims, TensorType::Fp32, &bytes);
            let outputs = context
                .compute(vec![(card.input.name.clone(), tensor)])
                .map_err(|e| model_error(model, e))?;
            let (_, output) = outputs
                .into_iter()
                .find(|(name, _)| *name == card.output.name)
                .ok_or_else(|| {
                    ModelError::Failed(format!("model {model:?} returned no {:?}", card.output.name))
                })?;
            if output.ty() != TensorType::Fp32 {
                return Err(ModelError::Failed(format!(
                    "model {model:?} returned a non-FP32 output"
                )));
            }
            Ok(output
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        })
    }
}
