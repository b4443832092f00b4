//! The component's models, kept in a static for the life of the instance.
//!
//! A Wizer snapshot (see `spinfer snapshot`) runs `init` at build time, so an instance made from
//! the snapshot starts with the models parsed and optimised. Before one of them serves here it is
//! checked against the mounted files, alone and once per instance: its card must record the same
//! SHA-256 and its `.onnx` have the same length (one read, one metadata call). A route that lists
//! the models checks the whole folder; one that only names them (`/healthz`) lists it. Whatever
//! differs is served from the files instead, so a model swap never serves stale weights, and a
//! request for one model pays for that model only.
//! The default model is the app's (the `default_model` Spin variable), whatever it was at
//! snapshot time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use spinfer_catalog::Catalog;
use spinfer_engine::ModelStore;
use spinfer_protocol::{ApiError, Backend, ModelCard};

/// The models this instance serves.
pub type Models = Arc<dyn Backend + Send + Sync>;

enum State {
    /// Nothing loaded yet (no snapshot, or an instance before its first request).
    Empty,
    /// Loaded by the snapshot's `init`, not yet given this instance's default.
    Snapshot(ModelStore),
    /// What this instance serves from now on.
    Ready(Models),
}

static STATE: Mutex<State> = Mutex::new(State::Empty);

/// Nanoseconds spent checking the mounted files since [`take_check_time`] last read it.
static CHECKING: AtomicU64 = AtomicU64::new(0);

/// Runs a check of the mounted files, adding its time to what [`take_check_time`] reports.
fn timed<T>(check: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = check();
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    CHECKING.fetch_add(nanos, Ordering::Relaxed);
    result
}

/// The time this request spent checking the mounted files (zero once an instance has checked
/// what it serves), for the `check` span of `server-timing`.
pub fn take_check_time() -> Duration {
    Duration::from_nanos(CHECKING.swap(0, Ordering::Relaxed))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn open(default: Option<&str>) -> Result<ModelStore, ApiError> {
    Catalog::mounted(default)
        .map(ModelStore::new)
        .map_err(|e| ApiError::not_ready(e.to_string()))
}

/// The models, once this instance has them.
pub fn current() -> Option<Models> {
    match &*lock() {
        State::Ready(models) => Some(models.clone()),
        State::Empty | State::Snapshot(_) => None,
    }
}

/// The models for this request, `default` the app's default model: the snapshot's, checked
/// model by model as they are used, or else loaded from the mounted files.
pub fn models(default: Option<&str>) -> Result<Models, ApiError> {
    let mut state = lock();
    if let State::Ready(models) = &*state {
        return Ok(models.clone());
    }
    let models: Models = match std::mem::replace(&mut *state, State::Empty) {
        // The app's default is one the snapshot has (else only the folder can say what it is).
        State::Snapshot(snapshot) if default.is_none_or(|name| snapshot.catalog().get(name).is_some()) => {
            let default = default
                .map(str::to_string)
                .or_else(|| snapshot.catalog().default.clone());
            Arc::new(Checked::new(snapshot.with_default(default)))
        }
        State::Snapshot(_) | State::Empty => Arc::new(open(default)?),
        State::Ready(_) => unreachable!("returned above"),
    };
    *state = State::Ready(models.clone());
    Ok(models)
}

/// Loads every model now, for the snapshot; each instance made from it checks them first.
pub fn preload_for_snapshot() {
    let Ok(store) = open(None) else {
        return; // nothing to snapshot; requests load from the files
    };
    if store.preload().is_err() {
        return;
    }
    *lock() = State::Snapshot(store);
}

/// Makes the default model servable in this instance and returns its name.
pub fn ready(default: Option<&str>) -> Result<String, ApiError> {
    let models = models(default)?;
    let name = models
        .default_model()
        .ok_or_else(|| ApiError::not_ready("no model is mounted"))?
        .to_string();
    models.ready(&name)?;
    Ok(name)
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
    folder: OnceLock<Result<ModelStore, ApiError>>,
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
        }
    }

    /// The snapshot's copy of `model`, when the mounted files are still that model.
    fn snapshot_for(&self, model: &str) -> Option<&ModelStore> {
        let entries = &self.snapshot.catalog().entries;
        let index = entries.iter().position(|e| e.card.name == model)?;
        let unchanged = *self.unchanged[index]
            .get_or_init(|| timed(|| entries[index].unchanged_in(&Catalog::models_dir())));
        unchanged.then_some(&self.snapshot)
    }

    /// The models of the mounted folder, loaded from its files (each on first use). The
    /// snapshot's models the folder no longer has answer 503.
    fn folder(&self) -> Result<&ModelStore, ApiError> {
        self.folder
            .get_or_init(|| {
                let store = timed(|| open(self.snapshot.catalog().default.as_deref()))?;
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
    fn serving(&self, model: &str) -> Result<&ModelStore, ApiError> {
        match self.snapshot_for(model) {
            Some(snapshot) => Ok(snapshot),
            None => self.listing(),
        }
    }

    /// Whether the folder holds exactly the snapshot's model files (one listing, once).
    fn same_files(&self) -> bool {
        *self
            .same_names
            .get_or_init(|| timed(|| self.snapshot.catalog().same_files_in(&Catalog::models_dir())))
    }

    /// Whichever lists the models: the snapshot when the folder holds exactly its models, each
    /// unchanged (a listing of the folder, then each model's own check).
    fn listing(&self) -> Result<&ModelStore, ApiError> {
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

    fn ready(&self, model: &str) -> Result<(), ApiError> {
        self.serving(model)?.ready(model)
    }

    fn infer(&self, model: &str, input: &[f32], batch: usize) -> Result<Vec<f32>, ApiError> {
        self.serving(model)?.infer(model, input, batch)
    }

    fn unknown(&self, model: &str) -> ApiError {
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
}
