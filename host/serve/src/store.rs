//! One store's host state (WASI, wasi-http, limits, optional wasi-nn) and the linker that
//! gives components those imports.

use anyhow::{Result, anyhow};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_nn::wit::{WasiNnCtx, WasiNnView};

use crate::Sandbox;
use crate::outbound::OutboundPolicy;
use crate::variables::{self, ComponentVariables};

/// The per-store host state.
pub struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    limits: StoreLimits,
    variables: ComponentVariables,
    nn: Option<WasiNnCtx>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// WASI, wasi-http (0.2 and 0.3) and, when `nn` is set, `wasi:nn`.
pub fn linker(engine: &Engine, nn: bool) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    variables::add_to_linker(&mut linker, |host: &mut Host| &host.variables)?;
    if nn {
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, |host: &mut Host| {
            let ctx = host
                .nn
                .as_mut()
                .expect("stores of nn apps carry a wasi-nn context");
            WasiNnView::new(&mut host.table, ctx)
        })?;
    }
    Ok(linker)
}

/// A store with the sandbox's WASI environment, read-only mounts, outbound policy and limits.
pub fn new_store(engine: &Engine, sandbox: &Sandbox) -> Result<Store<Host>> {
    new_store_with(engine, sandbox, |_| {})
}

/// [`new_store`], with `configure` adjusting the WASI context last (the snapshot makes its
/// randomness and clocks deterministic).
pub fn new_store_with(
    engine: &Engine,
    sandbox: &Sandbox,
    configure: impl FnOnce(&mut WasiCtxBuilder),
) -> Result<Store<Host>> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdout().inherit_stderr();
    wasi.envs(&sandbox.environment);
    // The mounts are local read-only directories (model cards, models): a file operation costs
    // microseconds, less than the round trip through tokio's blocking pool it would otherwise take.
    wasi.allow_blocking_current_thread(true);
    for (host, guest) in &sandbox.mounts.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| anyhow!("mounting {} at {guest}: {e:#}", host.display()))?;
    }
    let network = !sandbox.allowed_outbound_hosts.is_empty();
    wasi.allow_tcp(network)
        .allow_udp(network)
        .allow_ip_name_lookup(network);
    configure(&mut wasi);
    let host = Host {
        table: ResourceTable::new(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        hooks: OutboundPolicy::new(&sandbox.allowed_outbound_hosts),
        limits: StoreLimitsBuilder::new()
            .memory_size(sandbox.memory_limit)
            .trap_on_grow_failure(true)
            .build(),
        variables: sandbox.variables.clone(),
        nn: sandbox.nn.as_ref().map(|nn| nn.context()),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    // Guest code yields to the executor every tick, so a CPU-bound request cannot starve the
    // tasks that stream other requests' bodies on the same worker thread; the deadline itself
    // is enforced by the reuse policy's per-request timer and expiration, which can then run.
    store.epoch_deadline_async_yield_and_update(1);
    store.set_epoch_deadline(1);
    Ok(store)
}
