//! The wasmtime engine `spinfer up` runs components on, and the on-disk cache of compiled
//! components keyed by the wasm's hash, the wasmtime version and the engine's settings.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine is set up; see `spinfer up --help` for each knob.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub memory_limit: usize,
    pub pooling: bool,
    /// Reset a pooled memory with Linux's `PAGEMAP_SCAN` where the kernel has it (6.7+).
    pub pagemap_scan: bool,
}

/// Spin's pooling-allocator defaults (its `crates/core`), each overridable by the environment
/// variable Spin reads, so that an instance costs the same under `spinfer up` as under `spin up`.
/// `SPIN_MAX_INSTANCE_COUNT` (1,000) sizes the pool; the others default to multiples of it.
///
/// With `pagemap_scan` (beyond Spin, which leaves it off), the memory kept resident between
/// instances is the pages an instance actually dirtied, wherever they lie, reset by copy; without
/// it, the lowest 2 MiB whether touched or not. Nothing a guest can observe differs.
pub fn pooling_config(memory_limit: usize, pagemap_scan: bool) -> Result<PoolingAllocationConfig> {
    const MIB: usize = 1 << 20;
    let max_instances: u32 = env("SPIN_MAX_INSTANCE_COUNT", crate::POOL_INSTANCES)?;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(env("SPIN_WASMTIME_INSTANCE_COUNT", max_instances)?)
        .total_memories(env("SPIN_WASMTIME_TOTAL_MEMORIES", max_instances)?)
        .total_tables(env("SPIN_WASMTIME_TOTAL_TABLES", 2 * max_instances)?)
        .total_stacks(env("SPIN_WASMTIME_TOTAL_STACKS", max_instances)?)
        .total_core_instances(env("SPIN_WASMTIME_TOTAL_CORE_INSTANCES", 4 * max_instances)?)
        .table_elements(env("SPIN_WASMTIME_INSTANCE_TABLE_ELEMENTS", 100_000)?)
        .max_component_instance_size(env("SPIN_WASMTIME_INSTANCE_SIZE", 10 * MIB)?)
        .max_core_instance_size(env("SPIN_WASMTIME_CORE_INSTANCE_SIZE", 10 * MIB)?)
        .max_core_instances_per_component(env("SPIN_WASMTIME_CORE_INSTANCE_COUNT", 200)?)
        .max_tables_per_component(env("SPIN_WASMTIME_INSTANCE_TABLES", 64)?)
        .max_memories_per_component(env("SPIN_WASMTIME_INSTANCE_MEMORIES", 32)?)
        .max_tables_per_module(env("SPIN_WASMTIME_MAX_TABLES_PER_MODULE", 2)?)
        .max_memories_per_module(env("SPIN_WASMTIME_MAX_MEMORIES_PER_MODULE", 2)?)
        // Spin allows 4 GiB and limits through the store; `spinfer up` has a per-instance
        // limit (`--memory-limit-mb`), so the pool's slots need be no larger than it.
        .max_memory_size(memory_limit)
        .linear_memory_keep_resident(env("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT", 2 * MIB)?)
        .table_keep_resident(env("SPIN_WASMTIME_TABLE_KEEP_RESIDENT", MIB / 2)?)
        .pagemap_scan(if pagemap_scan { Enabled::Auto } else { Enabled::No });
    Ok(pool)
}

/// `name` from the environment, parsed, else `default`; a value that does not parse is an error
/// (Spin panics on one).
fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|e| anyhow!("{name}={value} is not a valid value: {e}")),
        Err(_) => Ok(default),
    }
}

pub fn engine(options: &EngineOptions) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    if options.pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
            options.memory_limit,
            options.pagemap_scan,
        )?));
    }
    Ok(Engine::new(&config)?)
}

/// Where compiled components are cached: `$SPINFER_CACHE_DIR`, else `$XDG_CACHE_HOME/spinfer`,
/// else `~/.cache/spinfer`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPINFER_CACHE_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("spinfer")
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{hex}-wasmtime{}-{:016x}.cwasm",
        env!("WASMTIME_VERSION"),
        hasher.finish()
    )
}

/// Compiles `wasm_path`, or maps the cached compilation of the same bytes.
pub fn load_component(engine: &Engine, wasm_path: &Path, cache_dir: Option<&Path>) -> Result<Component> {
    let wasm = std::fs::read(wasm_path).with_context(|| {
        format!(
            "reading component {} (build it first: `spinfer up --build`)",
            wasm_path.display()
        )
    })?;
    let started = Instant::now();
    let Some(cache_dir) = cache_dir else {
        return Component::new(engine, &wasm)
            .map_err(|e| anyhow!("compiling {}: {e:#}", wasm_path.display()));
    };
    let cached = cache_dir.join(cache_key(engine, &wasm));
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same wasmtime version
        // and engine configuration (both are in its name) and nothing else writes that folder.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                tracing::info!(cache = %cached.display(), ms = started.elapsed().as_secs_f64() * 1e3, "loaded compiled component");
                return Ok(component);
            }
            Err(e) => tracing::warn!(cache = %cached.display(), "ignoring unusable cache entry: {e:#}"),
        }
    }
    let component =
        Component::new(engine, &wasm).map_err(|e| anyhow!("compiling {}: {e:#}", wasm_path.display()))?;
    tracing::info!(
        wasm = %wasm_path.display(),
        seconds = started.elapsed().as_secs_f64(),
        "compiled component"
    );
    let bytes = component.serialize()?;
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    // Write then rename, so a concurrent reader never maps a half-written file; the temporary
    // name is unique per call, as two threads may compile the same component at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cached.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &cached)?;
    // Serve from the mapped file so every run behaves the same.
    // SAFETY: as above, just written by this process.
    Ok(unsafe { Component::deserialize_file(engine, &cached) }?)
}
