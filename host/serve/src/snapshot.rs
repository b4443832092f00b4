//! `spinfer snapshot`: pre-initialise a component with Wizer so that its instances start with
//! the models already parsed, typed and optimised.
//!
//! The component's `init` export (world `spinfer:inference/snapshot`) runs once here, against
//! the models mounted at build time; its memory is then written into a new component. The run
//! is deterministic — fixed randomness (std's hash-map keys come from it) and fixed clocks — so
//! the same inputs give a byte-identical snapshot, and when the inputs (the plain component,
//! every mounted file, the environment, the wasmtime version) are those of the last snapshot,
//! the step is skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtxBuilder};
use wasmtime_wizer::Wizer;

use crate::Sandbox;
use crate::engine::{EngineOptions, engine};
use crate::epoch::EpochTicker;
use crate::store::{linker, new_store_with};

/// Whether [`snapshot`] wrote a new file or found the last one still current.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Written,
    UpToDate,
}

pub fn snapshot(component: &Path, sandbox: &Sandbox, out: &Path) -> Result<Outcome> {
    let started = Instant::now();
    let wasm = std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let key = inputs_key(&wasm, sandbox)?;
    let stamp = stamp_path(out);
    if out.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        tracing::info!(out = %out.display(), "snapshot is up to date (same component, mounts and environment)");
        return Ok(Outcome::UpToDate);
    }
    // Build-time only: no pooling, and no deadline worth enforcing.
    let engine = engine(&EngineOptions {
        memory_limit: sandbox.memory_limit,
        pooling: false,
        pagemap_scan: false,
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
        let mut store = new_store_with(&engine, &sandbox, deterministic)?;
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
    std::fs::write(&stamp, &key).with_context(|| format!("writing {}", stamp.display()))?;
    tracing::info!(
        from = %component.display(),
        to = %out.display(),
        bytes = snapshot.len(),
        seconds = started.elapsed().as_secs_f64(),
        "snapshot written"
    );
    Ok(Outcome::Written)
}

/// Where the inputs of the last snapshot are recorded: `<out>.inputs`.
fn stamp_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".inputs");
    PathBuf::from(name)
}

/// SHA-256 over everything the snapshot depends on.
fn inputs_key(wasm: &[u8], sandbox: &Sandbox) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(env!("WASMTIME_VERSION"));
    hasher.update(Sha256::digest(wasm));
    for (key, value) in &sandbox.environment {
        hasher.update(format!("env {key}={value}\n"));
    }
    for (host, guest) in &sandbox.mounts.dirs {
        hasher.update(format!("mount {guest}\n"));
        hash_tree(&mut hasher, host, host)?;
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Every file under `dir`, in name order: its path relative to `root` and its bytes.
fn hash_tree(hasher: &mut Sha256, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_tree(hasher, root, &path)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            hasher.update(format!("file {}\n", relative.display()));
            hasher.update(std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
        }
    }
    Ok(())
}

/// Fixed randomness and clocks, so that what `init` leaves in memory (std's hash-map keys
/// among it) is the same on every build.
fn deterministic(wasi: &mut WasiCtxBuilder) {
    const SEED: &[u8] = b"spinfer snapshot";
    wasi.secure_random(Deterministic::new(SEED.to_vec()))
        .insecure_random(Deterministic::new(SEED.to_vec()))
        .insecure_random_seed(u128::from_le_bytes(*b"spinfer-snapshot"))
        .wall_clock(FixedClock)
        .monotonic_clock(FixedClock);
}

/// A clock that always reads zero.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}
