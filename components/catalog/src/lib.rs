//! The model catalog: which models a models directory holds (every `<name>.json` card with a
//! `<name>.onnx` beside it) and which one is the default. The file-system side of serving,
//! shared by both components and the host's wasi-nn backends; it reads cards, never a model.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use spinfer_model::ModelCard;
use spinfer_model::contract::{MODELS_DIR, MODELS_DIR_VAR};

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
    #[error("{path} names the model {name:?}; a card's name is its file name")]
    Name { path: PathBuf, name: String },
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

/// The SHA-256 of a model file, lowercase hex, as cards record it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A model found in a models directory: its card and the `.onnx` beside it.
#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub card: ModelCard,
    /// The card file as read, for [`CatalogEntry::unchanged_in`].
    pub card_bytes: Vec<u8>,
    pub onnx: PathBuf,
    pub onnx_len: u64,
}

impl CatalogEntry {
    /// Whether `dir` still holds this model, the entry having been read elsewhere (a snapshot):
    /// the card of the same file name has the same bytes (so the same name and SHA-256 of the
    /// `.onnx`), and the `.onnx` the same length. One read, compared as bytes rather than
    /// parsed, and one metadata call: this runs in a fresh instance before its first answer.
    /// The digest itself is checked at start ([`Catalog::verify`]).
    pub fn unchanged_in(&self, dir: &Path) -> bool {
        use std::io::Read as _;
        let Some(file) = self.onnx.file_name() else {
            return false;
        };
        let onnx = dir.join(file);
        // One byte more than the card held, so that a longer card reads as different.
        let mut card = Vec::with_capacity(self.card_bytes.len() + 1);
        let read = std::fs::File::open(onnx.with_extension("json"))
            .and_then(|f| f.take(self.card_bytes.len() as u64 + 1).read_to_end(&mut card));
        read.is_ok()
            && card == self.card_bytes
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

    /// The `.onnx` files of `dir` with a `.json` card beside them: the models it holds, by file
    /// name, without opening one (training histories and other JSON have no `.onnx`).
    pub fn model_files(dir: &Path) -> Result<BTreeSet<PathBuf>, CatalogError> {
        let read_dir = std::fs::read_dir(dir).map_err(|source| CatalogError::List {
            dir: dir.into(),
            source,
        })?;
        let files: BTreeSet<PathBuf> = read_dir.flatten().map(|file| file.path()).collect();
        let paired = |onnx: &&PathBuf| {
            onnx.extension().is_some_and(|e| e == "onnx") && files.contains(&onnx.with_extension("json"))
        };
        Ok(files.iter().filter(paired).cloned().collect())
    }

    /// Whether `dir` holds models of exactly this catalog's file names (a listing of the folder,
    /// no file opened), and so of its model names (a card's name is its file name); whether
    /// each is unchanged is [`CatalogEntry::unchanged_in`].
    pub fn same_files_in(&self, dir: &Path) -> bool {
        let Ok(files) = Catalog::model_files(dir) else {
            return false;
        };
        let held: BTreeSet<&std::ffi::OsStr> = files.iter().filter_map(|p| p.file_name()).collect();
        let ours: BTreeSet<&std::ffi::OsStr> =
            self.entries.iter().filter_map(|e| e.onnx.file_name()).collect();
        held == ours
    }

    /// The models of `dir`; `default` (else the first by name) is the default model.
    pub fn open(dir: &Path, default: Option<&str>) -> Result<Catalog, CatalogError> {
        let mut entries = Vec::new();
        for onnx in Catalog::model_files(dir)? {
            let path = onnx.with_extension("json");
            let Ok(onnx_meta) = std::fs::metadata(&onnx) else {
                continue;
            };
            let bytes = std::fs::read(&path).map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            let card = ModelCard::from_json(&bytes).map_err(|source| CatalogError::Card {
                path: path.clone(),
                source,
            })?;
            // So a listing of the folder names its models without reading a card.
            if path.file_stem().and_then(|s| s.to_str()) != Some(card.name.as_str()) {
                return Err(CatalogError::Name {
                    path,
                    name: card.name,
                });
            }
            entries.push(CatalogEntry {
                card,
                card_bytes: bytes,
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
            let actual = sha256_hex(&bytes);
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
    fn the_same_files_are_the_same_model_names_with_their_cards() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let catalog = Catalog::open(&models(), None).unwrap();
        for entry in &catalog.entries {
            let onnx = entry.onnx.file_name().unwrap();
            std::fs::copy(&entry.onnx, dir.join(onnx)).unwrap();
            std::fs::copy(
                entry.onnx.with_extension("json"),
                dir.join(onnx).with_extension("json"),
            )
            .unwrap();
        }
        // A training history (JSON without an `.onnx`) is not a model.
        std::fs::write(dir.join("history.json"), b"[]").unwrap();
        assert!(catalog.same_files_in(dir));
        std::fs::write(dir.join("extra.onnx"), b"x").unwrap();
        std::fs::write(dir.join("extra.json"), b"{}").unwrap();
        assert!(!catalog.same_files_in(dir));
        std::fs::remove_file(dir.join("extra.json")).unwrap();
        std::fs::remove_file(dir.join("mnist-seed.onnx")).unwrap();
        assert!(!catalog.same_files_in(dir));
        assert!(!catalog.same_files_in(&dir.join("nowhere")));
    }

    #[test]
    fn a_card_named_other_than_its_file_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::copy(models().join("mnist-seed.onnx"), dir.join("digits.onnx")).unwrap();
        std::fs::copy(models().join("mnist-seed.json"), dir.join("digits.json")).unwrap();
        let err = Catalog::open(dir, None).unwrap_err();
        assert!(
            matches!(err, CatalogError::Name { ref name, .. } if name == "mnist-seed"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_default_or_a_missing_folder_is_a_typed_error() {
        let err = Catalog::open(&models(), Some("resnet50")).unwrap_err();
        assert!(matches!(err, CatalogError::UnknownDefault { .. }), "{err}");
        let err = Catalog::open(Path::new("/nonexistent-spinfer-models"), None).unwrap_err();
        assert!(matches!(err, CatalogError::List { .. }), "{err}");
    }
}
