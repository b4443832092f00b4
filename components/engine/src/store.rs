//! The models a server serves: every `<name>.json` card in a directory with its `<name>.onnx`,
//! each parsed and optimised by tract on first use and kept for the life of the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use spinfer_protocol::{ApiError, Backend, ModelCard};

use crate::{Classifier, EngineError};

struct Entry {
    card: ModelCard,
    onnx: PathBuf,
    onnx_len: u64,
    loaded: OnceLock<Result<Classifier, String>>,
}

pub struct ModelStore {
    entries: Vec<Entry>,
    default: Option<String>,
}

impl ModelStore {
    /// Finds the served models in `dir`; `default` names the model `/predict` uses.
    pub fn open(dir: &Path, default: Option<&str>) -> Result<ModelStore, EngineError> {
        let read_dir = std::fs::read_dir(dir)
            .map_err(|e| EngineError::Load(format!("cannot list models in {}: {e}", dir.display())))?;
        let mut entries = Vec::new();
        for file in read_dir.flatten() {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let onnx = path.with_extension("onnx");
            let Ok(onnx_meta) = std::fs::metadata(&onnx) else {
                continue; // training histories and other JSON beside the models
            };
            let bytes = std::fs::read(&path)
                .map_err(|e| EngineError::Load(format!("{}: {e}", path.display())))?;
            let card = ModelCard::from_json(&bytes)
                .map_err(|e| EngineError::Load(format!("{}: not a model card: {e}", path.display())))?;
            entries.push(Entry {
                card,
                onnx,
                onnx_len: onnx_meta.len(),
                loaded: OnceLock::new(),
            });
        }
        entries.sort_by(|a, b| a.card.name.cmp(&b.card.name));
        let default = match default {
            Some(name) if entries.iter().any(|e| e.card.name == name) => Some(name.to_string()),
            Some(name) => {
                return Err(EngineError::Load(format!(
                    "default model {name:?} has no card and ONNX file in {}",
                    dir.display()
                )));
            }
            None => entries.first().map(|e| e.card.name.clone()),
        };
        Ok(ModelStore { entries, default })
    }

    fn entry(&self, name: &str) -> Result<&Entry, ApiError> {
        self.entries
            .iter()
            .find(|e| e.card.name == name)
            .ok_or_else(|| ApiError::not_found(format!("unknown model {name:?}")))
    }

    /// The model, parsed and optimised on first use.
    pub fn classifier(&self, name: &str) -> Result<&Classifier, ApiError> {
        let entry = self.entry(name)?;
        entry
            .loaded
            .get_or_init(|| Classifier::from_path(&entry.onnx).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ApiError::not_ready(format!("model {name:?} cannot be loaded: {e}")))
    }

    /// What identifies the served set: each model's name, the SHA-256 its card records for the
    /// `.onnx`, the file's length, and the default model. Cheap: no model is read.
    pub fn fingerprint(&self) -> (Vec<(&str, &str, u64)>, Option<&str>) {
        let models = self
            .entries
            .iter()
            .map(|e| (e.card.name.as_str(), e.card.sha256.as_str(), e.onnx_len))
            .collect();
        (models, self.default.as_deref())
    }

    /// Loads every model now, so that no request pays for it.
    pub fn preload(&self) -> Result<(), ApiError> {
        self.entries.iter().try_for_each(|e| self.classifier(&e.card.name).map(|_| ()))
    }
}

impl Backend for ModelStore {
    fn cards(&self) -> Vec<&ModelCard> {
        self.entries.iter().map(|e| &e.card).collect()
    }

    fn default_model(&self) -> Option<&str> {
        self.default.as_deref()
    }

    fn ready(&self, model: &str) -> Result<(), ApiError> {
        self.classifier(model).map(|_| ())
    }

    fn infer(&self, model: &str, input: &[f32], batch: usize) -> Result<Vec<f32>, ApiError> {
        let classifier = self.classifier(model)?;
        if input.len() != batch * classifier.item_len() {
            return Err(ApiError::bad_request(format!(
                "{} values for {batch} items of {}",
                input.len(),
                classifier.item_len()
            )));
        }
        classifier
            .run(input)
            .map_err(|e| ApiError::internal(e.to_string()))
    }
}
