//! A loaded Spin app: routes to component handlers, and `App::handle`, the one request →
//! response path that the TCP server and the tests share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spinfer_protocol::ApiError;
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, ProxyHandler};

use crate::engine::{EngineOptions, engine, load_component};
use crate::epoch::EpochTicker;
use crate::handler::ComponentHandler;
use crate::manifest::{Manifest, Route};
use crate::store::linker;
use crate::{AppOptions, Connection, Sandbox, spin_headers};

/// A route of the manifest (as written, and parsed) and the handler it goes to.
struct RouteEntry {
    raw: String,
    route: Route,
    handler: ProxyHandler<ComponentHandler>,
}

pub struct App {
    pub name: String,
    routes: Vec<RouteEntry>,
    max_body: usize,
    in_flight: tokio::sync::Semaphore,
    next_request: AtomicU64,
    _ticker: EpochTicker,
}

pub type Response = http::Response<WasiBody>;

fn body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn error_response(error: &ApiError) -> Response {
    spinfer_protocol::Response::error(error).into_http().map(body)
}

impl App {
    pub fn load(manifest: &Manifest, options: &AppOptions) -> Result<App> {
        let engine = engine(&EngineOptions {
            memory_limit: options.memory_limit,
            pooling: options.pooling,
        })?;
        let mut routes = Vec::new();
        for trigger in &manifest.trigger.http {
            let def = &manifest.component[&trigger.component];
            let component = load_component(
                &engine,
                &manifest.resolve(&def.source),
                options.cache_dir.as_deref(),
            )?;
            let sandbox = Sandbox::for_component(manifest, def, options)?;
            let linker = linker(&engine, sandbox.nn.is_some())?;
            let handler =
                ComponentHandler::new(&trigger.component, &linker, &component, sandbox, options.reuse)?;
            tracing::info!(
                route = %trigger.route,
                component = %trigger.component,
                abi = if handler.is_p3() { "wasi:http/handler@0.3" } else { "wasi:http/incoming-handler@0.2" },
                "route ready"
            );
            routes.push(RouteEntry {
                raw: trigger.route.clone(),
                route: Route::parse(&trigger.route),
                handler: ProxyHandler::new(handler),
            });
        }
        // Most specific first, so the first match wins.
        routes.sort_by_key(|entry| std::cmp::Reverse(entry.route.specificity()));
        Ok(App {
            name: manifest.application.name.clone(),
            routes,
            max_body: options.max_body,
            in_flight: tokio::sync::Semaphore::new(options.max_in_flight),
            next_request: AtomicU64::new(0),
            _ticker: EpochTicker::start(engine),
        })
    }

    /// The handler of the component the route `path` goes to.
    pub fn component_for(&self, path: &str) -> Option<&ComponentHandler> {
        self.route(path).map(|entry| entry.handler.state())
    }

    /// The first (most specific) route that matches `path`.
    fn route(&self, path: &str) -> Option<&RouteEntry> {
        self.routes.iter().find(|entry| entry.route.matches(path))
    }

    /// Instances started so far, across components.
    pub fn instances_started(&self) -> u64 {
        self.routes
            .iter()
            .map(|entry| entry.handler.state().instances_started())
            .sum()
    }

    /// Serves one request: route, enforce the body limit, run the component, log it.
    pub async fn handle<B>(&self, request: http::Request<B>) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        // Past the limit, shed at once rather than queue: the client may retry elsewhere.
        let response = match self.in_flight.try_acquire() {
            Ok(_permit) => self.dispatch(id, request).await,
            Err(_) => {
                let mut response = error_response(&ApiError::overloaded());
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
                response
            }
        };
        tracing::info!(
            target: "access",
            id,
            %method,
            %path,
            status = response.status().as_u16(),
            ms = format!("{:.3}", started.elapsed().as_secs_f64() * 1e3),
        );
        response
    }

    async fn dispatch<B>(&self, id: u64, request: http::Request<B>) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path().to_string();
        let Some(entry) = self.route(&path) else {
            return error_response(&ApiError::not_found(format!("no route for {path}")));
        };
        let too_large = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|len| len > self.max_body as u64);
        if too_large {
            return error_response(&ApiError::payload_too_large(self.max_body));
        }
        let (mut parts, incoming) = request.into_parts();
        let connection = parts
            .extensions
            .get::<Connection>()
            .copied()
            .unwrap_or(Connection::IN_PROCESS);
        spin_headers::apply(
            &mut parts.headers,
            &parts.uri,
            &entry.raw,
            &entry.route,
            &connection,
        );
        let handler = &entry.handler;
        let bytes = match Limited::new(incoming, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error_response(&ApiError::payload_too_large(self.max_body));
            }
            Err(e) => {
                return error_response(&ApiError::bad_request(format!("cannot read request body: {e}")));
            }
        };
        let request = http::Request::from_parts(parts, body(bytes));
        match handler.handle(id, request).await {
            Ok(response) => response,
            Err(error) => {
                let component = &handler.state().name;
                if error.is::<ExpirationError>() || is_interrupt(&error) {
                    tracing::warn!(id, component, "request exceeded its deadline");
                    error_response(&ApiError::deadline_exceeded())
                } else if error.is::<wasmtime::PoolConcurrencyLimitError>() {
                    tracing::warn!(id, component, "instance pool is full: {error}");
                    error_response(&ApiError::overloaded())
                } else {
                    tracing::error!(id, component, "component failed: {error:#}");
                    error_response(&ApiError::internal(format!("component {component} failed")))
                }
            }
        }
    }
}

fn is_interrupt(error: &wasmtime::Error) -> bool {
    error
        .downcast_ref::<wasmtime::Trap>()
        .is_some_and(|trap| *trap == wasmtime::Trap::Interrupt)
}
