//! One component ready to serve: its pre-instance, the sandbox its stores get, and the reuse
//! policy its instances live by. The app-wide part is built once; [`HandlerState::instantiate`]
//! is the small per-instance builder.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{HandlerState, Instance, ProxyPre};

use crate::reuse::{Expiration, Lifecycle, Worker};
use crate::store::{Host, new_store};
use crate::{ReusePolicy, Sandbox, metrics};

/// A component's pre-instance plus the recipe for its stores.
pub struct ComponentHandler {
    pub name: Arc<str>,
    pre: ProxyPre<Host>,
    sandbox: Sandbox,
    reuse: ReusePolicy,
    engine: Engine,
    instances: AtomicU64,
    lifecycle: Lifecycle,
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

impl ComponentHandler {
    pub fn new(
        name: &str,
        linker: &Linker<Host>,
        component: &Component,
        sandbox: Sandbox,
        reuse: ReusePolicy,
        lifecycle: Lifecycle,
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
            lifecycle,
        })
    }

    pub fn is_p3(&self) -> bool {
        matches!(self.pre, ProxyPre::P3(_))
    }

    /// The policy its instances live by (always [`ReusePolicy::FRESH`] for a 0.2 handler).
    pub fn reuse(&self) -> ReusePolicy {
        self.reuse
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
        let instance = self.instance_pre().instantiate_async(&mut store).await?;
        let instantiate = started.elapsed();
        let ready = instance
            .get_typed_func::<(), (Result<String, String>,)>(&mut store, "ready")
            .map_err(|e| anyhow!("component {} has no `ready` export: {e:#}", self.name))?;
        let (answer,) = ready.call_async(&mut store, ()).await?;
        let total = started.elapsed();
        let model = answer.map_err(|e| anyhow!("component {} is not ready: {e}", self.name))?;
        Ok(ReadyTiming {
            instantiate,
            ready: total - instantiate,
            model,
        })
    }
}

impl HandlerState for ComponentHandler {
    type StoreData = Host;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Host, Expiration, Worker>> {
        let mut store = self.store().map_err(|e| wasmtime::Error::msg(e.to_string()))?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instances.fetch_add(1, Ordering::Relaxed);
        self.lifecycle.started();
        metrics::instance_started(&self.name);
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration::new(
                self.reuse.idle_timeout,
                self.sandbox.request_timeout,
                &self.lifecycle,
            ),
            state: Worker {
                reuse: self.reuse,
                request_timeout: self.sandbox.request_timeout,
                component: self.name.clone(),
                served: AtomicUsize::new(0),
                lifecycle: self.lifecycle.clone(),
            },
        })
    }
}
