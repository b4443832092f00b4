//! A loaded Spin app: routes to component handlers, and `App::handle`, the one request →
//! response path that the TCP server and the tests share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::ProxyHandler;

use crate::admission::{self, Admission};
use crate::engine::{EngineOptions, engine, load_component};
use crate::epoch::{self, EpochTicker};
use crate::handler::ComponentHandler;
use crate::manifest::{Manifest, Route};
use crate::metrics::{self, Rejection, RequestRecord};
use crate::reuse::Lifecycle;
use crate::store::linker;
use crate::{AppOptions, Connection, Hooks, Sandbox, spin_headers};

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
    hooks: Hooks,
    lifecycle: Lifecycle,
    _ticker: EpochTicker,
}

pub type Response = http::Response<WasiBody>;

fn body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The request-id header: a client's own id is kept, else the runner makes one; it is passed
/// to the component and sent back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Each layer that serves a request (the runner, the component) adds its own `server-timing`
/// metrics, so a client sees where the time went.
pub const SERVER_TIMING: &str = "server-timing";

/// The runner's own `server-timing` metric: from the request's arrival to its response.
pub const HOST_TIMING: &str = "host";

/// The runner's own errors: what it answers without the component's word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    NoRoute(String),
    /// The client's body could not be read (a broken chunked encoding, a dropped connection).
    BadBody(String),
    TooLarge(usize),
    SlowBody(Duration),
    Overloaded,
    Deadline,
    Failed(String),
}

impl HostError {
    pub fn status(&self) -> StatusCode {
        match self {
            HostError::NoRoute(_) => StatusCode::NOT_FOUND,
            HostError::BadBody(_) => StatusCode::BAD_REQUEST,
            HostError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            HostError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
            HostError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            HostError::Deadline => StatusCode::GATEWAY_TIMEOUT,
            HostError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Which rejection the metrics count it as, if any.
    fn rejection(&self) -> Option<Rejection> {
        match self {
            HostError::TooLarge(_) => Some(Rejection::Size),
            HostError::SlowBody(_) => Some(Rejection::Slow),
            HostError::Overloaded => Some(Rejection::Overload),
            HostError::Deadline => Some(Rejection::Deadline),
            HostError::NoRoute(_) | HostError::BadBody(_) | HostError::Failed(_) => None,
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::NoRoute(path) => write!(f, "no route for {path}"),
            HostError::BadBody(error) => write!(f, "cannot read request body: {error}"),
            HostError::TooLarge(limit) => write!(f, "request body is larger than the {limit}-byte limit"),
            HostError::SlowBody(limit) => write!(
                f,
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
            HostError::Overloaded => {
                f.write_str("the server is at capacity; retry after the time Retry-After gives")
            }
            HostError::Deadline => f.write_str("the request exceeded its deadline"),
            HostError::Failed(component) => write!(f, "component {component} failed"),
        }
    }
}

/// One `server-timing` metric, `name;dur=<ms>`.
fn server_timing(name: &str, duration: Duration) -> String {
    format!("{name};dur={:.3}", duration.as_secs_f64() * 1e3)
}

/// The duration of metric `name` in a response's `server-timing` headers, in ms.
pub fn timing_ms(headers: &http::HeaderMap, name: &str) -> Option<f64> {
    headers
        .get_all(SERVER_TIMING)
        .iter()
        .find_map(|value| server_timing_ms(value.to_str().ok()?, name))
}

/// The duration of metric `name` in one `server-timing` header value, in ms.
fn server_timing_ms(value: &str, name: &str) -> Option<f64> {
    value.split(',').find_map(|metric| {
        let mut params = metric.trim().split(';');
        (params.next()? == name).then_some(())?;
        params.find_map(|param| param.trim().strip_prefix("dur=")?.parse().ok())
    })
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
            hooks: options.hooks.clone(),
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
        self.hooks
            .route_labels
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

    /// The runner's answer for `error`: written by the app's error body (plain text without
    /// one), counted as a rejection where it is one, with `Retry-After` when shed.
    pub fn error_response(&self, error: &HostError) -> Response {
        let message = error.to_string();
        let (content_type, bytes) = match &self.hooks.error_body {
            Some(write) => write(error.status(), &message),
            None => ("text/plain; charset=utf-8", format!("{message}\n").into_bytes()),
        };
        if let Some(reason) = error.rejection() {
            metrics::rejected(reason);
        }
        let mut response = http::Response::new(body(bytes));
        *response.status_mut() = error.status();
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if *error == HostError::Overloaded {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(admission::RETRY_AFTER.as_secs()),
            );
        }
        response
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
            Err(_) => self.error_response(&HostError::Overloaded),
        };
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, request_id.clone());
        let elapsed = started.elapsed();
        // The host's whole span, beside the component's own `server-timing` metrics.
        let host = server_timing(HOST_TIMING, elapsed);
        response.headers_mut().append(
            SERVER_TIMING,
            HeaderValue::from_str(&host).expect("a valid header value"),
        );
        let model = self
            .hooks
            .model_header
            .as_ref()
            .and_then(|name| response.headers().get(name)?.to_str().ok());
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
            infer_ms: self
                .hooks
                .inference_timing
                .and_then(|metric| timing_ms(response.headers(), metric)),
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
            return self.error_response(&HostError::NoRoute(path));
        };
        let too_large = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|len| len > self.max_body as u64);
        if too_large {
            return self.error_response(&HostError::TooLarge(self.max_body));
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
            return self.error_response(&HostError::SlowBody(self.read_timeout));
        };
        let bytes = match read {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return self.error_response(&HostError::TooLarge(self.max_body));
            }
            Err(e) => {
                return self.error_response(&HostError::BadBody(e.to_string()));
            }
        };
        let request = http::Request::from_parts(parts, body(bytes));
        // The body is in: now wait for a running slot, or be shed.
        let Some(_running) = self.admission.admit().await else {
            return self.error_response(&HostError::Overloaded);
        };
        let started = Instant::now();
        match handler.handle(id, request).await {
            Ok(response) => response,
            Err(error) => {
                let component = &*handler.state().name;
                if epoch::exceeded(&error, started.elapsed(), self.request_timeout) {
                    tracing::warn!(id, component, "request exceeded its deadline");
                    self.error_response(&HostError::Deadline)
                } else if error.is::<wasmtime::PoolConcurrencyLimitError>() {
                    tracing::warn!(id, component, "instance pool is full: {error}");
                    self.error_response(&HostError::Overloaded)
                } else {
                    tracing::error!(id, component, "component failed: {error:#}");
                    self.error_response(&HostError::Failed(component.to_string()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_metrics_are_written_and_read_back() {
        let host = server_timing("host", Duration::from_micros(350));
        assert_eq!(host, "host;dur=0.350");
        assert_eq!(
            server_timing_ms(&format!("decode;dur=0.125, {host}"), "host"),
            Some(0.35)
        );
        assert_eq!(server_timing_ms("infer;desc=\"x\";dur=2", "infer"), Some(2.0));
        assert_eq!(server_timing_ms("decode;dur=1", "infer"), None);
        assert_eq!(server_timing_ms("infer", "infer"), None);
    }

    #[test]
    fn shed_and_size_errors_are_rejections_and_a_missing_route_is_not() {
        assert!(matches!(
            HostError::Overloaded.rejection(),
            Some(Rejection::Overload)
        ));
        assert!(matches!(
            HostError::TooLarge(1).rejection(),
            Some(Rejection::Size)
        ));
        assert!(HostError::NoRoute("/x".into()).rejection().is_none());
        assert_eq!(HostError::SlowBody(Duration::from_secs(10)).status(), 408);
        assert_eq!(
            HostError::TooLarge(100).to_string(),
            "request body is larger than the 100-byte limit"
        );
    }
}
