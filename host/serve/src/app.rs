//! A loaded Spin app: routes to component handlers, and `App::handle`, the one request →
//! response path that the TCP server and the tests share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full, Limited};
use spinfer_protocol::http::{server_timing, server_timing_ms};
use spinfer_protocol::{ApiError, MODEL_HEADER, REQUEST_ID_HEADER, SERVER_TIMING_HEADER};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, ProxyHandler, TrapOrPanicError};

use crate::admission::Admission;
use crate::engine::{EngineOptions, engine, load_component};
use crate::epoch::EpochTicker;
use crate::handler::ComponentHandler;
use crate::manifest::{Manifest, Route};
use crate::metrics::{self, Rejection, RequestRecord};
use crate::reuse::Lifecycle;
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
    /// How long a client has to send a request's headers, and then its body.
    pub read_timeout: Duration,
    request_timeout: Duration,
    in_flight: tokio::sync::Semaphore,
    admission: Admission,
    next_request: AtomicU64,
    route_labels: Option<crate::RouteLabels>,
    lifecycle: Lifecycle,
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

fn rejection(reason: Rejection, error: &ApiError) -> Response {
    metrics::rejected(reason);
    error_response(error)
}

/// 503 with `Retry-After`: every way the server sheds a request answers this.
fn overloaded() -> Response {
    let mut response = rejection(Rejection::Overload, &ApiError::overloaded());
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Longest client-sent request id that is kept; a longer or non-printable one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// The client's `x-request-id` when it is sane, else a new UUID.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID_HEADER)
        .filter(|id| {
            let bytes = id.as_bytes();
            (1..=MAX_REQUEST_ID).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid header")
        })
}

impl App {
    pub fn load(manifest: &Manifest, options: &AppOptions) -> Result<App> {
        let engine = engine(&EngineOptions {
            memory_limit: options.memory_limit,
            pooling: options.pooling,
            pagemap_scan: options.pagemap_scan,
        })?;
        let lifecycle = Lifecycle::default();
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
            let handler = ComponentHandler::new(
                &trigger.component,
                &linker,
                &component,
                sandbox,
                options.reuse,
                lifecycle.clone(),
            )?;
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
            read_timeout: options.read_timeout,
            request_timeout: options.request_timeout,
            in_flight: tokio::sync::Semaphore::new(options.max_in_flight),
            admission: Admission::new(options.max_running, options.max_queue_wait),
            next_request: AtomicU64::new(0),
            route_labels: options.route_labels.clone(),
            lifecycle,
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

    /// The metrics label of `path`: the app's name for its route, else the manifest route that
    /// serves it, else `other`.
    fn route_label(&self, path: &str) -> &str {
        self.route_labels
            .as_ref()
            .and_then(|labels| labels.label(path))
            .or_else(|| self.route(path).map(|entry| entry.raw.as_str()))
            .unwrap_or("other")
    }

    /// Instances started so far, across components.
    pub fn instances_started(&self) -> u64 {
        self.routes
            .iter()
            .map(|entry| entry.handler.state().instances_started())
            .sum()
    }

    /// Instances alive now, across components.
    pub fn instances_live(&self) -> usize {
        self.lifecycle.live()
    }

    /// Ends every instance once its requests are answered (an idle one at once) and waits until
    /// none is left: what shutdown does after the connections have drained.
    pub async fn stop_instances(&self) {
        self.lifecycle.stop().await
    }

    /// Serves one request: give it an id, route it, enforce the limits, run the component, log
    /// it and count it.
    pub async fn handle<B>(&self, mut request: http::Request<B>) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request_id = request_id(request.headers());
        request
            .headers_mut()
            .insert(REQUEST_ID_HEADER, request_id.clone());
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        // Past the hard cap, shed at once: the client may retry elsewhere.
        let mut response = match self.in_flight.try_acquire() {
            Ok(_permit) => self.dispatch(id, request).await,
            Err(_) => overloaded(),
        };
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, request_id.clone());
        let elapsed = started.elapsed();
        // The host's whole span, beside the component's own `server-timing` metrics.
        let host = server_timing("host", elapsed);
        response.headers_mut().append(
            SERVER_TIMING_HEADER,
            HeaderValue::from_str(&host).expect("a valid header value"),
        );
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let model = header(MODEL_HEADER);
        let status = response.status().as_u16();
        tracing::info!(
            target: "access",
            "{} {method} {path} {status} {} {:.3} ms",
            request_id.to_str().unwrap_or("-"),
            model.unwrap_or("-"),
            elapsed.as_secs_f64() * 1e3,
        );
        metrics::request(&RequestRecord {
            route: self.route_label(&path),
            method: &method,
            status,
            model,
            elapsed,
            infer_ms: response
                .headers()
                .get_all(SERVER_TIMING_HEADER)
                .iter()
                .filter_map(|v| server_timing_ms(v.to_str().ok()?, "infer"))
                .next(),
        });
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
            return rejection(Rejection::Size, &ApiError::payload_too_large(self.max_body));
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
        // A client that dribbles its body gets 408 and frees its slot.
        let read = tokio::time::timeout(self.read_timeout, Limited::new(incoming, self.max_body).collect());
        let Ok(read) = read.await else {
            return rejection(Rejection::Slow, &ApiError::request_timeout(self.read_timeout));
        };
        let bytes = match read {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return rejection(Rejection::Size, &ApiError::payload_too_large(self.max_body));
            }
            Err(e) => {
                return error_response(&ApiError::bad_request(format!("cannot read request body: {e}")));
            }
        };
        let request = http::Request::from_parts(parts, body(bytes));
        // The body is in: now wait for a running slot, or be shed.
        let Some(_running) = self.admission.admit().await else {
            return overloaded();
        };
        let started = Instant::now();
        match handler.handle(id, request).await {
            Ok(response) => response,
            Err(error) => {
                let component = &*handler.state().name;
                // The epoch interrupt at the deadline reaches a request as its worker's trap.
                let interrupted = is_interrupt(&error)
                    || (error.is::<TrapOrPanicError>() && started.elapsed() >= self.request_timeout);
                if error.is::<ExpirationError>() || interrupted {
                    tracing::warn!(id, component, "request exceeded its deadline");
                    rejection(Rejection::Deadline, &ApiError::deadline_exceeded())
                } else if error.is::<wasmtime::PoolConcurrencyLimitError>() {
                    tracing::warn!(id, component, "instance pool is full: {error}");
                    overloaded()
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
