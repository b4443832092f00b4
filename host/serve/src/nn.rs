//! `wasi:nn` for components, as the composing command provides it: the runner links the
//! interface and serves the graphs the command's loader makes for a component, by name only.
//!
//! No backend is registered for `load`, so a guest cannot hand the host model bytes; a name
//! the loader did not give is wasi-nn's `not-found`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use wasmtime_wasi_nn::wit::WasiNnCtx;
use wasmtime_wasi_nn::{Graph, GraphRegistry};

use crate::files::Mounts;

/// Which backend and target a component asks for: its manifest's
/// `[component.<id>.tool.spinfer]` `nn` and `nn_target`, or the command's override. The loader
/// reads the names.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NnSettings {
    #[serde(rename = "nn")]
    pub backend: String,
    #[serde(rename = "nn_target")]
    pub target: Option<String>,
}

/// Makes the graphs a component may load from its mounts and its settings (the command's
/// backends, e.g. `spinfer-nn`).
#[derive(Clone)]
pub struct NnLoader(Arc<Loader>);

type Loader = dyn Fn(&Mounts, &NnSettings) -> Result<HashMap<String, Graph>> + Send + Sync;

impl NnLoader {
    pub fn new(
        load: impl Fn(&Mounts, &NnSettings) -> Result<HashMap<String, Graph>> + Send + Sync + 'static,
    ) -> NnLoader {
        NnLoader(Arc::new(load))
    }

    pub fn load(&self, mounts: &Mounts, settings: &NnSettings) -> Result<NnGraphs> {
        Ok(NnGraphs((self.0)(mounts, settings)?))
    }
}

impl std::fmt::Debug for NnLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NnLoader(..)")
    }
}

/// The graphs a component may load by name, loaded once.
pub struct NnGraphs(HashMap<String, Graph>);

impl NnGraphs {
    /// A fresh wasi-nn context for one store: the allow-listed graphs, no `load` backends.
    pub fn context(&self) -> WasiNnCtx {
        WasiNnCtx::new([], Registry(self.0.clone()).into())
    }
}

struct Registry(HashMap<String, Graph>);

impl GraphRegistry for Registry {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}
