//! The component's model store, kept in a static for the life of the instance.
//!
//! A Wizer snapshot (see `spinfer snapshot`) runs `init` at build time, so an instance made from
//! the snapshot starts with the models parsed and optimised. Its first request then checks the
//! mounted models against the snapshotted ones (names, card SHA-256s, file lengths) and reloads
//! from the files when anything changed, so a model swap never serves stale weights. The default
//! model is the app's (the `default_model` Spin variable), whatever it was at snapshot time.

use std::sync::{Arc, Mutex};

use spinfer_catalog::Catalog;
use spinfer_engine::ModelStore;
use spinfer_protocol::ApiError;

enum State {
    /// Nothing loaded yet (no snapshot, or an instance before its first request).
    Empty,
    /// Loaded by the snapshot's `init`: not yet checked against this instance's mounted files.
    Snapshot(ModelStore),
    /// Checked against (or loaded from) the mounted files in this instance.
    Verified(Arc<ModelStore>),
}

static STATE: Mutex<State> = Mutex::new(State::Empty);

fn open(default: Option<&str>) -> Result<ModelStore, ApiError> {
    Catalog::mounted(default)
        .map(ModelStore::new)
        .map_err(|e| ApiError::not_ready(e.to_string()))
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The store, when this instance has already checked (or loaded) its models.
pub fn verified() -> Option<Arc<ModelStore>> {
    match &*lock() {
        State::Verified(store) => Some(store.clone()),
        State::Empty | State::Snapshot(_) => None,
    }
}

/// The store for this request, `default` its default model: loaded, or checked against the
/// mounted files once per instance.
pub fn store(default: Option<&str>) -> Result<Arc<ModelStore>, ApiError> {
    let mut state = lock();
    if let State::Verified(store) = &*state {
        return Ok(store.clone());
    }
    let mounted = open(default)?;
    let store = Arc::new(match std::mem::replace(&mut *state, State::Empty) {
        State::Snapshot(snapshot) if snapshot.catalog().fingerprint() == mounted.catalog().fingerprint() => {
            snapshot.with_default(mounted.catalog().default.clone())
        }
        State::Snapshot(snapshot) => {
            eprintln!("spinfer: mounted models differ from the snapshot; loading them from /models");
            let missing = snapshot
                .catalog()
                .entries
                .iter()
                .map(|e| e.card.name.clone())
                .filter(|name| mounted.catalog().get(name).is_none())
                .collect();
            mounted.with_missing(missing)
        }
        State::Empty | State::Verified(_) => mounted,
    });
    *state = State::Verified(store.clone());
    Ok(store)
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
    let store = store(default)?;
    let name = store
        .catalog()
        .default
        .clone()
        .ok_or_else(|| ApiError::not_ready("no model is mounted"))?;
    store.classifier(&name)?;
    Ok(name)
}
