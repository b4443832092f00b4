//! The tract components' models: what [`open`] gives an instance to serve.
//!
//! A Wizer snapshot (see `spinfer snapshot`) runs `init` at build time, so an instance made from
//! the snapshot starts with the models parsed and optimised. Before one of them serves here it is
//! checked against the mounted files, alone and once per instance: its card must record the same
//! SHA-256 and its `.onnx` have the same length (one read, one metadata call). A route that lists
//! the models checks the whole folder; one that only names them (`/healthz`) lists it. Whatever
//! differs is served from the files instead, so a model swap never serves stale weights, and a
//! request for one model pays for that model only.
//! The default model is the app's (its `default_model` setting), whatever it was at snapshot
//! time.

use std::cell::Cell;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use spinfer_catalog::Catalog;
use spinfer_engine::ModelStore;
use spinfer_model::contract::PRELOAD_VAR;
use spinfer_model::{Backend, ModelCard, ModelError, Tensor};

/// The models the snapshot's `init` loaded, until an instance's first request takes them.
static SNAPSHOT: Mutex<Option<ModelStore>> = Mutex::new(None);

fn load(default: Option<&str>) -> Result<ModelStore, ModelError> {
    Catalog::mounted(default)
        .map(ModelStore::new)
        .map_err(|e| ModelError::NotReady(e.to_string()))
}

/// What this instance serves, `default` the app's default model: the snapshot's models, checked
/// model by model as they are used, or else those of the mounted files.
pub fn open(default: Option<&str>) -> Result<Box<dyn Backend>, ModelError> {
    let snapshot = SNAPSHOT.lock().unwrap_or_else(|e| e.into_inner()).take();
    match snapshot {
        // The app's default is one the snapshot has (else only the folder can say what it is).
        Some(snapshot) if default.is_none_or(|name| snapshot.catalog().get(name).is_some()) => {
            let default = default
                .map(str::to_string)
                .or_else(|| snapshot.catalog().default.clone());
            Ok(Box::new(Checked::new(snapshot.with_default(default))))
        }
        _ => Ok(Box::new(load(default)?)),
    }
}

/// Loads the models now, for the snapshot: those `SPINFER_PRELOAD` names (comma-separated),
/// else every model of the folder; each instance made from it checks them first, and loads the
/// others on first use. A name the folder does not hold stops the snapshot, named.
pub fn preload_for_snapshot() {
    let Ok(store) = load(None) else {
        return; // nothing to snapshot; requests load from the files
    };
    let chosen = std::env::var(PRELOAD_VAR).ok();
    let loaded = match &chosen {
        Some(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
            if let Some(unknown) = names.iter().find(|n| store.catalog().get(n).is_none()) {
                panic!("{PRELOAD_VAR} names the model {unknown:?}, which the models folder does not hold");
            }
            store.preload_only(&names)
        }
        None => store.preload(),
    };
    if loaded.is_err() {
        return;
    }
    *SNAPSHOT.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
}

/// The snapshot's models in an instance whose files may differ from the snapshot's.
struct Checked {
    snapshot: ModelStore,
    /// Per snapshot model: whether the mounted files are still it (checked on first use).
    unchanged: Vec<OnceLock<bool>>,
    /// Whether the folder holds exactly the snapshot's model files (checked when a route names
    /// the models).
    same_names: OnceLock<bool>,
    /// Whether the folder holds exactly the snapshot's models, each unchanged (checked when a
    /// route lists them).
    same_listing: OnceLock<bool>,
    /// The mounted folder itself, opened when a route lists the models or a model differs.
    folder: OnceLock<Result<ModelStore, ModelError>>,
    /// Time spent checking the mounted files since the last request's spans were taken.
    checking: Cell<Duration>,
}

impl Checked {
    fn new(snapshot: ModelStore) -> Checked {
        let unchanged = snapshot
            .catalog()
            .entries
            .iter()
            .map(|_| OnceLock::new())
            .collect();
        Checked {
            snapshot,
            unchanged,
            same_names: OnceLock::new(),
            same_listing: OnceLock::new(),
            folder: OnceLock::new(),
            checking: Cell::new(Duration::ZERO),
        }
    }

    /// Runs a check of the mounted files, adding its time to the `check` span.
    fn timed<T>(&self, check: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = check();
        self.checking.set(self.checking.get() + started.elapsed());
        result
    }

    /// The snapshot's copy of `model`, when the mounted files are still that model.
    fn snapshot_for(&self, model: &str) -> Option<&ModelStore> {
        let entries = &self.snapshot.catalog().entries;
        let index = entries.iter().position(|e| e.card.name == model)?;
        let unchanged = *self.unchanged[index]
            .get_or_init(|| self.timed(|| entries[index].unchanged_in(&Catalog::models_dir())));
        unchanged.then_some(&self.snapshot)
    }

    /// The models of the mounted folder, loaded from its files (each on first use). The
    /// snapshot's models the folder no longer has answer 503.
    fn folder(&self) -> Result<&ModelStore, ModelError> {
        self.folder
            .get_or_init(|| {
                let store = self.timed(|| load(self.snapshot.catalog().default.as_deref()))?;
                eprintln!("spinfer: mounted models differ from the snapshot; loading them from the folder");
                let missing = self
                    .snapshot
                    .catalog()
                    .entries
                    .iter()
                    .map(|e| e.card.name.clone())
                    .filter(|name| store.catalog().get(name).is_none())
                    .collect();
                Ok(store.with_missing(missing))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whichever serves `model`: the snapshot when its files are unchanged; else whichever
    /// lists the models (for a name the snapshot never had, the folder may have it).
    fn serving(&self, model: &str) -> Result<&ModelStore, ModelError> {
        match self.snapshot_for(model) {
            Some(snapshot) => Ok(snapshot),
            None => self.listing(),
        }
    }

    /// Whether the folder holds exactly the snapshot's model files (one listing, once).
    fn same_files(&self) -> bool {
        *self
            .same_names
            .get_or_init(|| self.timed(|| self.snapshot.catalog().same_files_in(&Catalog::models_dir())))
    }

    /// Whichever lists the models: the snapshot when the folder holds exactly its models, each
    /// unchanged (a listing of the folder, then each model's own check).
    fn listing(&self) -> Result<&ModelStore, ModelError> {
        let same = *self.same_listing.get_or_init(|| {
            let catalog = self.snapshot.catalog();
            self.same_files()
                && catalog
                    .entries
                    .iter()
                    .all(|e| self.snapshot_for(&e.card.name).is_some())
        });
        if same { Ok(&self.snapshot) } else { self.folder() }
    }
}

impl Backend for Checked {
    fn cards(&self) -> Vec<&ModelCard> {
        // A folder that cannot be read lists what still serves (each model's own check).
        match self.listing() {
            Ok(store) => store.cards(),
            Err(_) => {
                let names = self
                    .snapshot
                    .catalog()
                    .entries
                    .iter()
                    .map(|e| e.card.name.as_str());
                names.filter_map(|name| self.card(name)).collect()
            }
        }
    }

    fn default_model(&self) -> Option<&str> {
        self.snapshot.catalog().default.as_deref()
    }

    fn ready(&self, model: &str) -> Result<(), ModelError> {
        self.serving(model)?.ready(model)
    }

    fn run(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, ModelError> {
        self.serving(model)?.run(model, inputs)
    }

    fn unknown(&self, model: &str) -> ModelError {
        match self.listing() {
            Ok(store) => store.unknown(model),
            Err(error) => error,
        }
    }

    fn card(&self, model: &str) -> Option<&ModelCard> {
        self.serving(model).ok()?.catalog().get(model).map(|e| &e.card)
    }

    /// The snapshot's names while the folder lists its model files (one listing, no card read:
    /// a card's name is its file name); else those of whichever lists the models.
    fn names(&self) -> Vec<String> {
        let catalog = self.snapshot.catalog();
        if self.same_files() {
            catalog.entries.iter().map(|e| e.card.name.clone()).collect()
        } else {
            self.cards().iter().map(|c| c.name.clone()).collect()
        }
    }

    /// The check of the mounted files (once per instance, so zero after its first requests).
    fn take_spans(&self) -> Vec<(&'static str, Duration)> {
        let check = self.checking.take();
        if check.is_zero() {
            Vec::new()
        } else {
            vec![("check", check)]
        }
    }
}
