//! One component ready to serve: its pre-instance and everything a fresh store needs (WASI
//! environment, read-only file mounts, outbound allow-list, limits), plus the worker policy
//! that decides how long an instance lives.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use wasmtime::component::{Component, GuestTaskId, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};
use wasmtime_wasi_nn::wit::{WasiNnCtx, WasiNnView};

use super::nn::NnModels;

/// Epoch ticks happen this often; guest code yields to the executor at each one.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The per-store host state.
pub struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundPolicy,
    limits: StoreLimits,
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

/// Outbound HTTP only to the manifest's `allowed_outbound_hosts`; `[]` means none at all.
#[derive(Clone)]
struct OutboundPolicy {
    allowed: Arc<Vec<String>>,
}

impl OutboundPolicy {
    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let scheme = uri.scheme_str().unwrap_or("https");
        self.allowed.iter().any(|pattern| {
            pattern == "*://*:*"
                || pattern.split_once("://").is_some_and(|(s, h)| {
                    (s == "*" || s == scheme) && (h == "*" || h == host || h.split(':').next() == Some(host))
                })
        })
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        if !self.allows(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outbound request denied by allowed_outbound_hosts");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// What every store of a component gets.
#[derive(Clone)]
pub struct Sandbox {
    pub environment: Vec<(String, String)>,
    /// Host directory → guest path, mounted read-only.
    pub mounts: Vec<(PathBuf, String)>,
    pub allowed_outbound_hosts: Vec<String>,
    pub memory_limit: usize,
    pub request_timeout: Duration,
    /// The graphs `wasi:nn` serves, when the host provides it.
    pub nn: Option<Arc<NnModels>>,
}

/// How long an instance lives: `max_reuse` requests (1 = a fresh instance per request, as Spin
/// does for `wasi:http` 0.2), `max_concurrent` at once, at most `idle_timeout` idle.
#[derive(Clone, Copy, Debug)]
pub struct ReusePolicy {
    pub max_reuse: usize,
    pub max_concurrent: usize,
    pub idle_timeout: Duration,
}

impl ReusePolicy {
    pub const FRESH: ReusePolicy = ReusePolicy {
        max_reuse: 1,
        max_concurrent: 1,
        idle_timeout: Duration::from_secs(1),
    };
}

/// A component's pre-instance plus the recipe for its stores.
pub struct ComponentHandler {
    pub name: String,
    pre: ProxyPre<Host>,
    sandbox: Sandbox,
    reuse: ReusePolicy,
    engine: Engine,
    instances: AtomicU64,
}

/// WASI, wasi-http (0.2 and 0.3) and, when `nn` is set, `wasi:nn`.
pub fn linker(engine: &Engine, nn: bool) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    let err = |e: wasmtime::Error| anyhow!("{e:#}");
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(err)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(err)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(err)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(err)?;
    if nn {
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, |host: &mut Host| {
            let ctx = host
                .nn
                .as_mut()
                .expect("stores of nn apps carry a wasi-nn context");
            WasiNnView::new(&mut host.table, ctx)
        })
        .map_err(err)?;
    }
    Ok(linker)
}

impl ComponentHandler {
    pub fn new(
        name: &str,
        linker: &Linker<Host>,
        component: &Component,
        sandbox: Sandbox,
        reuse: ReusePolicy,
    ) -> Result<ComponentHandler> {
        let err = |e: wasmtime::Error| anyhow!("component {name}: {e:#}");
        let pre = linker.instantiate_pre(component).map_err(err)?;
        // A `wasi:http/handler@0.3` export (spin-sdk 7) is preferred; 0.2 `incoming-handler` works too.
        let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
            Ok(p3) => ProxyPre::P3(p3),
            Err(_) => ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre).map_err(err)?),
        };
        let reuse = match pre {
            // A 0.2 handler runs one request per instance.
            ProxyPre::P2(_) => ReusePolicy::FRESH,
            ProxyPre::P3(_) => reuse,
        };
        Ok(ComponentHandler {
            name: name.into(),
            pre,
            sandbox,
            reuse,
            engine: component.engine().clone(),
            instances: AtomicU64::new(0),
        })
    }

    pub fn is_p3(&self) -> bool {
        matches!(self.pre, ProxyPre::P3(_))
    }

    pub fn instances_started(&self) -> u64 {
        self.instances.load(Ordering::Relaxed)
    }

    fn store(&self) -> Result<Store<Host>> {
        new_store(&self.engine, &self.sandbox)
    }

    /// The untyped pre-instance under the HTTP bindings, for the component's other exports.
    fn instance_pre(&self) -> &InstancePre<Host> {
        match &self.pre {
            ProxyPre::P2(pre) => pre.instance_pre(),
            ProxyPre::P3(pre) => pre.instance_pre(),
        }
    }

    /// Makes a fresh instance and calls its `ready` export (WIT world `snapshot`), timing the
    /// two steps: what a request on a fresh instance pays before its own work starts.
    pub async fn time_ready(&self) -> Result<ReadyTiming> {
        let started = Instant::now();
        let mut store = self.store()?;
        let instance = self
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("{e:#}"))?;
        let instantiate = started.elapsed();
        let ready = instance
            .get_typed_func::<(), (Result<String, String>,)>(&mut store, "ready")
            .map_err(|e| anyhow!("component {} has no `ready` export: {e:#}", self.name))?;
        let (answer,) = ready
            .call_async(&mut store, ())
            .await
            .map_err(|e| anyhow!("{e:#}"))?;
        let total = started.elapsed();
        let model = answer.map_err(|e| anyhow!("component {} is not ready: {e}", self.name))?;
        Ok(ReadyTiming {
            instantiate,
            ready: total - instantiate,
            model,
        })
    }
}

/// A fresh instance's way to a servable model.
#[derive(Clone, Debug)]
pub struct ReadyTiming {
    /// A store and an instance, from the pre-instance.
    pub instantiate: Duration,
    /// The `ready` export: checks a snapshot against the mounted models, or loads them.
    pub ready: Duration,
    /// The default model it made ready.
    pub model: String,
}

/// A store with the sandbox's WASI environment, read-only mounts, outbound policy and limits.
pub fn new_store(engine: &Engine, sandbox: &Sandbox) -> Result<Store<Host>> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdout().inherit_stderr();
    wasi.envs(&sandbox.environment);
    // The mounts are local read-only directories (model cards, models): a file operation costs
    // microseconds, less than the round trip through tokio's blocking pool it would otherwise take.
    wasi.allow_blocking_current_thread(true);
    for (host, guest) in &sandbox.mounts {
        wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| anyhow!("mounting {} at {guest}: {e:#}", host.display()))?;
    }
    let network = !sandbox.allowed_outbound_hosts.is_empty();
    wasi.allow_tcp(network)
        .allow_udp(network)
        .allow_ip_name_lookup(network);
    let host = Host {
        table: ResourceTable::new(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        hooks: OutboundPolicy {
            allowed: Arc::new(sandbox.allowed_outbound_hosts.clone()),
        },
        limits: StoreLimitsBuilder::new()
            .memory_size(sandbox.memory_limit)
            .trap_on_grow_failure(true)
            .build(),
        nn: sandbox.nn.as_ref().map(|nn| nn.context()),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    // Guest code yields to the executor every tick, so a CPU-bound request cannot starve the
    // tasks that stream other requests' bodies on the same worker thread; the deadline itself
    // is enforced by `Worker::on_request_start` and `Expiration`, which can then run.
    store.epoch_deadline_async_yield_and_update(1);
    store.set_epoch_deadline(1);
    Ok(store)
}

impl HandlerState for ComponentHandler {
    type StoreData = Host;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiration, Worker>> {
        let mut store = self.store().map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instances.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration {
                idle_timeout: self.reuse.idle_timeout,
                request_timeout: self.sandbox.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: Worker {
                reuse: self.reuse,
                request_timeout: self.sandbox.request_timeout,
            },
        })
    }
}

pub struct Worker {
    reuse: ReusePolicy,
    request_timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = u64;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        _request: u64,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        // Each request gets the whole deadline, also in a reused instance.
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<Host>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            tracing::warn!("instance ended with an error: {error:#}");
        }
        drop(store);
    }
}

pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiration {
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>, status: WorkerStatus, start: Instant) -> Poll<()> {
        let me = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => me.idle_timeout,
            WorkerStatus::Requests | WorkerStatus::PostReturn => me.request_timeout,
        };
        match start.checked_add(timeout) {
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                if me.sleep.deadline() != deadline {
                    me.sleep.as_mut().reset(deadline);
                }
                me.sleep.as_mut().poll(cx)
            }
            None => Poll::Pending,
        }
    }
}

/// Advances the engine's epoch so that deadlines expire; stops when dropped.
pub struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
