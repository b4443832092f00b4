//! The component's model store, kept in a static for the life of the instance.
//!
//! A Wizer snapshot (see `spinfer snapshot`) runs `init` at build time, so an instance made from
//! the snapshot starts with the models parsed and optimised. Its first request then checks the
//! mounted models against the snapshotted ones (card SHA-256, file length, default model) and
//! reloads from the files when anything changed, so a model swap never serves stale weights.

use std::sync::{Arc, Mutex};

use spinfer_engine::ModelStore;
use spinfer_protocol::ApiError;

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
    let dir = std::env::var("SPINFER_MODELS_DIR").unwrap_or_else(|_| DEFAULT_MODELS_DIR.into());
    let default = std::env::var("SPINFER_DEFAULT_MODEL").ok();
    ModelStore::open(dir.as_ref(), default.as_deref()).map_err(|e| ApiError::not_ready(e.to_string()))
}

/// The store for this request: loaded, or checked against the mounted files once per instance.
pub fn store() -> Result<Arc<ModelStore>, ApiError> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(store), true) = (&state.store, state.verified) {
        return Ok(store.clone());
    }
    let mounted = Arc::new(open()?);
    let store = match state.store.take() {
        Some(snapshot) if snapshot.catalog().fingerprint() == mounted.catalog().fingerprint() => snapshot,
        Some(_) => {
            eprintln!("spinfer: mounted models differ from the snapshot; loading them from /models");
            mounted
        }
        None => mounted,
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
