//! The component's model store, kept in a static for the life of the instance.
//!
//! A Wizer snapshot (see `spinfer snapshot`) runs `init` at build time, so an instance made from
//! the snapshot starts with the models parsed and optimised. Its first request then checks the
//! mounted models against the snapshotted ones (names, card SHA-256s, file lengths) and reloads
//! from the files when anything changed, so a model swap never serves stale weights. The default
//! model is the app's (`SPINFER_DEFAULT_MODEL`), whatever it was at snapshot time.

use std::sync::{Arc, Mutex};

use spinfer_engine::ModelStore;
use spinfer_protocol::{ApiError, Catalog};

const DEFAULT_MODELS_DIR: &str = "/models";

struct State {
    store: Option<Arc<ModelStore>>,
    /// Whether `store` is known to match the mounted files in this instance.
    verified: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    store: None,
    verified: false,
});

fn open() -> Result<ModelStore, ApiError> {
    Catalog::from_env(DEFAULT_MODELS_DIR)
        .map(ModelStore::new)
        .map_err(ApiError::not_ready)
}

/// The store for this request: loaded, or checked against the mounted files once per instance.
pub fn store() -> Result<Arc<ModelStore>, ApiError> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(store), true) = (&state.store, state.verified) {
        return Ok(store.clone());
    }
    let mounted = open()?;
    let store = match state.store.take().map(Arc::try_unwrap) {
        Some(Ok(snapshot)) if snapshot.catalog().fingerprint() == mounted.catalog().fingerprint() => {
            Arc::new(snapshot.with_default(mounted.catalog().default.clone()))
        }
        Some(_) => {
            eprintln!("spinfer: mounted models differ from the snapshot; loading them from /models");
            Arc::new(mounted)
        }
        None => Arc::new(mounted),
    };
    state.store = Some(store.clone());
    state.verified = true;
    Ok(store)
}

/// Loads every model now and forgets the check, for the snapshot.
pub fn preload_for_snapshot() {
    let store = match open() {
        Ok(store) => Arc::new(store),
        Err(_) => return, // nothing to snapshot; requests load from the files
    };
    if store.preload().is_err() {
        return;
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.store = Some(store);
    // Every instance made from the snapshot checks the mounted files on its first request.
    state.verified = false;
}

/// Makes the default model servable in this instance and returns its name.
pub fn ready() -> Result<String, ApiError> {
    let store = store()?;
    let name = store
        .catalog()
        .default
        .clone()
        .ok_or_else(|| ApiError::not_ready("no model is mounted"))?;
    store.classifier(&name)?;
    Ok(name)
}
