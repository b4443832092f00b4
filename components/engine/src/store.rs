//! The models a server serves: the catalog of a models directory, each model parsed and
//! optimised by tract on first use and kept for the life of the process.

use std::path::Path;
use std::sync::OnceLock;

use spinfer_catalog::Catalog;
use spinfer_model::{Backend, ModelCard, ModelError, Tensor};

use crate::{EngineError, Model};

pub struct ModelStore {
    catalog: Catalog,
    /// One slot per catalog entry, same order.
    loaded: Vec<OnceLock<Result<Model, String>>>,
    /// Models this server was built with that the folder no longer has: 503, not 404.
    missing: Vec<String>,
}

impl ModelStore {
    /// Finds the served models in `dir`; `default` names the model `/predict` uses.
    pub fn open(dir: &Path, default: Option<&str>) -> Result<ModelStore, EngineError> {
        Ok(ModelStore::new(Catalog::open(dir, default)?))
    }

    /// Serves `catalog`'s models; none is loaded yet.
    pub fn new(catalog: Catalog) -> ModelStore {
        let loaded = catalog.entries.iter().map(|_| OnceLock::new()).collect();
        ModelStore {
            catalog,
            loaded,
            missing: Vec::new(),
        }
    }

    /// Marks `names` as models that should be here but are not (a snapshot had them): requests
    /// for them get 503 naming them, while the other models keep serving.
    pub fn with_missing(mut self, names: Vec<String>) -> ModelStore {
        self.missing = names;
        self
    }

    /// The same loaded models with another default (a snapshot taken with one default serves
    /// an app that sets another).
    pub fn with_default(mut self, default: Option<String>) -> ModelStore {
        self.catalog.default = default;
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The model, parsed and optimised on first use, with the input shapes its card gives.
    pub fn model(&self, name: &str) -> Result<&Model, ModelError> {
        let index = self
            .catalog
            .entries
            .iter()
            .position(|e| e.card.name == name)
            .ok_or_else(|| self.unknown(name))?;
        let entry = &self.catalog.entries[index];
        self.loaded[index]
            .get_or_init(|| Model::from_path_as(&entry.onnx, &entry.card.inputs).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ModelError::NotReady(format!("model {name:?} cannot be loaded: {e}")))
    }

    /// Loads every model now, so that no request pays for it.
    pub fn preload(&self) -> Result<(), ModelError> {
        self.catalog
            .entries
            .iter()
            .try_for_each(|e| self.model(&e.card.name).map(|_| ()))
    }

    /// Loads the models `names` (every one the catalog has) now; the others load on first use.
    pub fn preload_only(&self, names: &[&str]) -> Result<(), ModelError> {
        names.iter().try_for_each(|name| self.model(name).map(|_| ()))
    }
}

impl Backend for ModelStore {
    fn cards(&self) -> Vec<&ModelCard> {
        self.catalog.cards()
    }

    fn default_model(&self) -> Option<&str> {
        self.catalog.default.as_deref()
    }

    fn unknown(&self, model: &str) -> ModelError {
        if self.missing.iter().any(|m| m == model) {
            ModelError::NotReady(format!("model {model:?} is missing from the models folder"))
        } else {
            ModelError::unknown(model)
        }
    }

    fn ready(&self, model: &str) -> Result<(), ModelError> {
        self.model(model).map(|_| ())
    }

    fn run(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ModelError> {
        Ok(self.model(model)?.run(inputs)?)
    }
}
