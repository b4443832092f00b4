//! The model catalog: which models a models directory holds (every `<name>.json` card with a
//! `<name>.onnx` beside it) and which one is the default. The file-system side of serving,
//! shared by both components and the host's wasi-nn backends; it reads cards, never a model.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use spinfer_protocol::ModelCard;
use spinfer_protocol::contract::{MODELS_DIR, MODELS_DIR_VAR};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot list models in {dir}: {source}")]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a model card: {source}")]
    Card {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("default model {name:?} has no card and ONNX file in {dir}")]
    UnknownDefault { name: String, dir: PathBuf },
    #[error("{card} describes a model, but {onnx} is missing")]
    MissingModel { card: PathBuf, onnx: PathBuf },
    #[error(
        "{path} is not the model its card describes: SHA-256 {actual}, the card says {expected} (truncated or replaced?)"
    )]
    Digest {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

/// A model found in a models directory: its card and the `.onnx` beside it.
#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub card: ModelCard,
    pub onnx: PathBuf,
    pub onnx_len: u64,
}

impl CatalogEntry {
    /// Whether `dir` still holds this model, the entry having been read elsewhere (a snapshot):
    /// the card of the same file name records the same name and SHA-256, and the `.onnx` has the
    /// same length. One read and one metadata call; the digest itself is checked at start
    /// ([`Catalog::verify`]).
    pub fn unchanged_in(&self, dir: &Path) -> bool {
        let Some(file) = self.onnx.file_name() else {
            return false;
        };
        let onnx = dir.join(file);
        let card = std::fs::read(onnx.with_extension("json"))
            .ok()
            .and_then(|bytes| ModelCard::from_json(&bytes).ok());
        card.is_some_and(|card| card.name == self.card.name && card.sha256 == self.card.sha256)
            && std::fs::metadata(&onnx).is_ok_and(|meta| meta.len() == self.onnx_len)
    }
}

/// The served models of a directory, sorted by name, and the default model.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
    pub default: Option<String>,
}

impl Catalog {
    /// The models directory a component serves: `SPINFER_MODELS_DIR`, else `/models`.
    pub fn models_dir() -> PathBuf {
        std::env::var_os(MODELS_DIR_VAR).map_or_else(|| MODELS_DIR.into(), PathBuf::from)
    }

    /// The catalog a component serves: the models of [`Catalog::models_dir`], with `default`
    /// (the app's `default_model` variable) as the default model.
    pub fn mounted(default: Option<&str>) -> Result<Catalog, CatalogError> {
        Catalog::open(&Catalog::models_dir(), default)
    }

    /// The models of `dir`; `default` (else the first by name) is the default model.
    pub fn open(dir: &Path, default: Option<&str>) -> Result<Catalog, CatalogError> {
        let read_dir = std::fs::read_dir(dir).map_err(|source| CatalogError::List {
            dir: dir.into(),
            source,
        })?;
        let files: BTreeSet<PathBuf> = read_dir.flatten().map(|file| file.path()).collect();
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
            let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            let card = ModelCard::from_json(&bytes).map_err(|source| CatalogError::Card {
                path: path.clone(),
                source,
            })?;
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
                return Err(CatalogError::UnknownDefault {
                    name: name.into(),
                    dir: dir.into(),
                });
            }
            None => entries.first().map(|e| e.card.name.clone()),
        };
        Ok(Catalog { entries, default })
    }

    /// The models of `dir`, each checked in full: every card has its `.onnx`, and each file's
    /// SHA-256 is the one its card records. A server runs this once at start (never per
    /// request), so a missing, truncated or replaced model stops it there, named.
    pub fn verify(dir: &Path) -> Result<Catalog, CatalogError> {
        let catalog = Catalog::open(dir, None)?;
        for entry in &catalog.entries {
            let bytes = std::fs::read(&entry.onnx).map_err(|source| CatalogError::Read {
                path: entry.onnx.clone(),
                source,
            })?;
            let actual = format!("{:x}", Sha256::digest(&bytes));
            if actual != entry.card.sha256 {
                return Err(CatalogError::Digest {
                    path: entry.onnx.clone(),
                    expected: entry.card.sha256.clone(),
                    actual,
                });
            }
        }
        // A card whose `.onnx` is gone was skipped by `open` (as a training history is).
        let listed = std::fs::read_dir(dir).map_err(|source| CatalogError::List {
            dir: dir.into(),
            source,
        })?;
        for path in listed.flatten().map(|file| file.path()) {
            let onnx = path.with_extension("onnx");
            if path.extension().is_some_and(|e| e == "json") && !onnx.exists() {
                let is_card = std::fs::read(&path).is_ok_and(|bytes| ModelCard::from_json(&bytes).is_ok());
                if is_card {
                    return Err(CatalogError::MissingModel { card: path, onnx });
                }
            }
        }
        Ok(catalog)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    #[test]
    fn lists_the_repos_models_by_name_and_skips_histories() {
        let catalog = Catalog::open(&models(), None).unwrap();
        let names: Vec<&str> = catalog.entries.iter().map(|e| e.card.name.as_str()).collect();
        assert!(names.contains(&"mnist-seed"), "{names:?}");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        assert!(names.iter().all(|n| !n.ends_with("-training")), "{names:?}");
        assert_eq!(catalog.default.as_deref(), names.first().copied());
    }

    #[test]
    fn a_missing_truncated_or_replaced_model_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "mnist-compact.json",
            "mnist-compact.onnx",
            "mnist-seed.json",
            "mnist-seed.onnx",
        ] {
            std::fs::copy(models().join(file), dir.path().join(file)).unwrap();
        }
        assert_eq!(Catalog::verify(dir.path()).unwrap().entries.len(), 2);

        let onnx = dir.path().join("mnist-seed.onnx");
        let bytes = std::fs::read(&onnx).unwrap();
        std::fs::write(&onnx, &bytes[..bytes.len() / 2]).unwrap();
        let err = Catalog::verify(dir.path()).unwrap_err();
        assert!(
            matches!(err, CatalogError::Digest { ref path, .. } if *path == onnx),
            "{err}"
        );

        std::fs::remove_file(&onnx).unwrap();
        let err = Catalog::verify(dir.path()).unwrap_err();
        assert!(matches!(err, CatalogError::MissingModel { .. }), "{err}");
        assert!(err.to_string().contains("mnist-seed.onnx"), "{err}");
    }

    #[test]
    fn an_entry_is_unchanged_until_its_card_or_onnx_changes() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        for ext in ["json", "onnx"] {
            std::fs::copy(
                models().join(format!("mnist-seed.{ext}")),
                dir.join(format!("mnist-seed.{ext}")),
            )
            .unwrap();
        }
        let entry = Catalog::open(&models(), None)
            .unwrap()
            .get("mnist-seed")
            .unwrap()
            .clone();
        assert!(entry.unchanged_in(dir));
        // Another network under the same name: its card records another digest.
        let mut card: serde_json::Value =
            serde_json::from_slice(&std::fs::read(models().join("mnist-lean.json")).unwrap()).unwrap();
        card["name"] = "mnist-seed".into();
        std::fs::write(dir.join("mnist-seed.json"), serde_json::to_vec(&card).unwrap()).unwrap();
        assert!(!entry.unchanged_in(dir));
        // The right card, but an `.onnx` of another length, or none.
        std::fs::copy(models().join("mnist-seed.json"), dir.join("mnist-seed.json")).unwrap();
        std::fs::write(dir.join("mnist-seed.onnx"), b"truncated").unwrap();
        assert!(!entry.unchanged_in(dir));
        std::fs::remove_file(dir.join("mnist-seed.onnx")).unwrap();
        assert!(!entry.unchanged_in(dir));
        assert!(!entry.unchanged_in(&dir.join("nowhere")));
    }

    #[test]
    fn an_unknown_default_or_a_missing_folder_is_a_typed_error() {
        let err = Catalog::open(&models(), Some("resnet50")).unwrap_err();
        assert!(matches!(err, CatalogError::UnknownDefault { .. }), "{err}");
        let err = Catalog::open(Path::new("/nonexistent-spinfer-models"), None).unwrap_err();
        assert!(matches!(err, CatalogError::List { .. }), "{err}");
    }
}
