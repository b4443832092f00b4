//! The model card: the `<name>.json` written beside every `<name>.onnx`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// `-1` marks the dynamic batch dimension.
    pub shape: Vec<i64>,
    pub dtype: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub description: String,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub preprocessing: String,
    pub labels: Vec<String>,
    pub test_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub training_seconds: f64,
    pub parameters: usize,
    /// SHA-256 of the `.onnx` file, lowercase hex.
    pub sha256: String,
    pub framework: String,
}

impl ModelCard {
    pub fn from_json(bytes: &[u8]) -> Result<ModelCard, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// How pixels become the model's input; recorded in cards and ONNX metadata.
pub const PREPROCESSING: &str = "28x28 grayscale, white ink on black (MNIST), row-major; pixel/255 into [0,1]; \
     NCHW float32 [N,1,28,28]. PNG/JPEG uploads: invert a light background, crop to the ink's bounding box, \
     scale the longer side to 20 px, centre by centre of mass in 28x28.";

/// A model found in a models directory: its card and the `.onnx` beside it.
#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub card: ModelCard,
    pub onnx: std::path::PathBuf,
    pub onnx_len: u64,
}

/// The served models of a directory: every `<name>.json` card with a `<name>.onnx` beside it,
/// sorted by name, and the default model. Reads only the cards, never a model.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    pub default: Option<String>,
}

impl Catalog {
    /// The catalog a component serves: `SPINFER_MODELS_DIR` (else `default_dir`), with
    /// `SPINFER_DEFAULT_MODEL` as the default model when set.
    pub fn from_env(default_dir: &str) -> Result<Catalog, String> {
        let dir = std::env::var("SPINFER_MODELS_DIR").unwrap_or_else(|_| default_dir.into());
        let default = std::env::var("SPINFER_DEFAULT_MODEL").ok();
        Catalog::open(dir.as_ref(), default.as_deref())
    }

    pub fn open(dir: &std::path::Path, default: Option<&str>) -> Result<Catalog, String> {
        let read_dir =
            std::fs::read_dir(dir).map_err(|e| format!("cannot list models in {}: {e}", dir.display()))?;
        let files: std::collections::BTreeSet<std::path::PathBuf> =
            read_dir.flatten().map(|file| file.path()).collect();
        let mut entries = Vec::new();
        for path in &files {
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let onnx = path.with_extension("onnx");
            // Training histories and other JSON beside the models have no `.onnx`; the listing
            // says so without a file-system call each (they count in a fresh instance).
            if !files.contains(&onnx) {
                continue;
            }
            let Ok(onnx_meta) = std::fs::metadata(&onnx) else {
                continue;
            };
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let card = ModelCard::from_json(&bytes)
                .map_err(|e| format!("{}: not a model card: {e}", path.display()))?;
            entries.push(CatalogEntry {
                card,
                onnx,
                onnx_len: onnx_meta.len(),
            });
        }
        entries.sort_by(|a, b| a.card.name.cmp(&b.card.name));
        let default = match default {
            Some(name) if entries.iter().any(|e| e.card.name == name) => Some(name.to_string()),
            Some(name) => {
                return Err(format!(
                    "default model {name:?} has no card and ONNX file in {}",
                    dir.display()
                ));
            }
            None => entries.first().map(|e| e.card.name.clone()),
        };
        Ok(Catalog { entries, default })
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.card.name == name)
    }

    pub fn cards(&self) -> Vec<&ModelCard> {
        self.entries.iter().map(|e| &e.card).collect()
    }

    /// Each model's name, the SHA-256 its card records, and the `.onnx` length: what decides
    /// whether models loaded elsewhere (a snapshot) are the ones in this directory.
    pub fn fingerprint(&self) -> Vec<(&str, &str, u64)> {
        self.entries
            .iter()
            .map(|e| (e.card.name.as_str(), e.card.sha256.as_str(), e.onnx_len))
            .collect()
    }
}
