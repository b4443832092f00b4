//! `spinfer snapshot`: pre-initialise a component with Wizer so that its instances start with
//! the models already parsed, typed and optimised.
//!
//! The component's `init` export (world `spinfer:inference/snapshot`) runs once here, against
//! the models mounted at build time; its memory is then written into a new component.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use wasmtime_wizer::Wizer;

use crate::Sandbox;
use crate::engine::{EngineOptions, engine};
use crate::epoch::EpochTicker;
use crate::store::{linker, new_store};

pub fn snapshot(component: &Path, sandbox: &Sandbox, out: &Path) -> Result<()> {
    let started = Instant::now();
    let wasm = std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    // Build-time only: no pooling, and no deadline worth enforcing.
    let engine = engine(&EngineOptions {
        memory_limit: sandbox.memory_limit,
        pooling: false,
        max_instances: 1,
    })?;
    let linker = linker(&engine, sandbox.nn.is_some())?;
    let sandbox = Sandbox {
        request_timeout: Duration::from_secs(600),
        ..sandbox.clone()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let snapshot = runtime.block_on(async {
        let mut store = new_store(&engine, &sandbox)?;
        let ticker = EpochTicker::start(engine.clone());
        let (snapshot, _) = Wizer::new()
            .init_func("init")
            // Removing the export would leave the component's world without it.
            .keep_init_func(true)
            .run_component(&mut store, &wasm, async |store, component| {
                linker.instantiate_async(store, component).await
            })
            .await
            .map_err(|e| anyhow!("pre-initialising {}: {e:#}", component.display()))?;
        drop(ticker);
        anyhow::Ok(snapshot)
    })?;
    std::fs::write(out, &snapshot).with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(
        from = %component.display(),
        to = %out.display(),
        bytes = snapshot.len(),
        seconds = started.elapsed().as_secs_f64(),
        "snapshot written"
    );
    Ok(())
}
