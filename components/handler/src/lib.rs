//! The one place an HTTP request in a Spinfer component becomes a `spinfer_protocol::Request`
//! and the protocol's `Response` an HTTP response, whatever the component exports (Spin's
//! `wasi:http/handler@0.3.0` through spin-sdk, or the portable `wasi:http/incoming-handler@0.2`):
//! every component's handler is a call to [`serve`] with its request, its [`Open`] and where
//! its settings come from ([`Settings`]). CORS is answered here too, so every component and every
//! host agree.
//!
//! Here too is the one way a component keeps per-instance state ([`Instance`]): its settings,
//! read on the instance's first request, and the backend opened with them, reused by every later
//! request the host sends to the same instance (a host that makes an instance per request pays
//! for them on each).

use std::cell::OnceCell;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spinfer_model::contract::{ALLOWED_ORIGINS_ENV, DEFAULT_MODEL_ENV};
use spinfer_model::{Backend, ModelError};
use spinfer_protocol::http::server_timing;
use spinfer_protocol::{AllowedOrigins, ApiError, MAX_BODY_BYTES, SERVER_TIMING_HEADER};

/// A component's settings: the model `/predict` serves when a request names none (`None`: the
/// first model by name) and the origins allowed to call from a browser.
#[derive(Debug, Default)]
pub struct Settings {
    pub default_model: Option<String>,
    pub origins: AllowedOrigins,
}

/// Where a component's settings come from: Spin's application variables for the Spin build
/// (`spinfer-spin-http`), the WASI environment for the portable one ([`Environment`]).
pub trait Source {
    /// The settings, or why they cannot be read (the request is answered 503 and the next one
    /// reads them again).
    fn settings() -> impl Future<Output = Result<Settings, ApiError>>;

    /// Runs `future` to completion where no executor runs one (a plain, synchronous export),
    /// waiting on this source's reads as its host lets a component wait.
    fn block_on<T: 'static>(future: impl Future<Output = T>) -> T;
}

/// Settings from WASI environment variables, which every host gives (Spin's component
/// `environment`, `wasmtime serve --env`, `spinfer up --env`): `SPINFER_DEFAULT_MODEL` and
/// `SPINFER_ALLOWED_ORIGINS`, unset or empty meaning none.
pub struct Environment;

impl Source for Environment {
    async fn settings() -> Result<Settings, ApiError> {
        let read = |name| {
            std::env::var(name)
                .ok()
                .filter(|value: &String| !value.is_empty())
        };
        Ok(Settings {
            default_model: read(DEFAULT_MODEL_ENV),
            origins: AllowedOrigins::parse(&read(ALLOWED_ORIGINS_ENV).unwrap_or_default()),
        })
    }

    /// Polls `future` until it is ready, with a waker that does nothing: for futures that never
    /// wait on anything but what they do in place (the environment is read synchronously, and a
    /// body whose reads block never leaves a poll pending). It needs none of the component model's
    /// async built-ins, which a `wasi:http` 0.2 host may not have.
    fn block_on<T: 'static>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
                return value;
            }
        }
    }
}

/// Opens what a component serves, given the app's default model.
pub type Open = fn(Option<&str>) -> Result<Box<dyn Backend>, ModelError>;

/// What one instance keeps for its life: its settings, read on its first request, and the
/// backend opened with them.
pub struct Instance {
    origins: AllowedOrigins,
    backend: Box<dyn Backend>,
}

thread_local! {
    /// This instance's state, once it has one (a wasm instance runs one thread; a wasi-nn graph
    /// handle belongs to its instance). It lives as long as the instance, so it is leaked.
    static INSTANCE: OnceCell<&'static Instance> = const { OnceCell::new() };
}

impl Instance {
    /// This instance's state, made on its first call: the settings read from `S` and the
    /// backend opened, once. A failure is not kept: the next request tries again (a folder
    /// mounted late, a variable fixed).
    pub async fn get<S: Source>(open: Open) -> Result<&'static Instance, ApiError> {
        let current = || INSTANCE.with(|cell| cell.get().copied());
        if let Some(instance) = current() {
            return Ok(instance);
        }
        let settings = S::settings().await?;
        // Requests that arrived together all read the settings; the first to get here opens.
        if let Some(instance) = current() {
            return Ok(instance);
        }
        let instance: &'static Instance = Box::leak(Box::new(Instance {
            origins: settings.origins,
            backend: open(settings.default_model.as_deref())?,
        }));
        INSTANCE.with(|cell| cell.set(instance).ok());
        Ok(instance)
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Makes the default model servable and names it.
    pub fn ready(&self) -> Result<String, ApiError> {
        let name = self
            .backend
            .default_model()
            .ok_or_else(|| ApiError::not_ready("no model is mounted"))?;
        self.backend.ready(name)?;
        Ok(name.to_string())
    }
}

async fn respond<B>(
    request: http::Request<B>,
    origins: &AllowedOrigins,
    handle: impl FnOnce(&spinfer_protocol::Request) -> spinfer_protocol::Response,
) -> spinfer_protocol::Response
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Hosts apply no body limit of their own; the component keeps the same one as `spinfer up`.
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(MAX_BODY_BYTES))
        }
        Err(e) => Err(ApiError::bad_request(format!("cannot read request body: {e}"))),
    };
    let bytes = body.as_deref().unwrap_or_default();
    let request = spinfer_protocol::Request::from_parts(&parts, bytes);
    let response = match (origins.preflight(&request), &body) {
        (Some(preflight), _) => return preflight,
        (None, Ok(_)) => handle(&request),
        (None, Err(error)) => spinfer_protocol::Response::error(error),
    };
    // The component's whole span: body read, routing, decoding, inference, encoding.
    let timing = server_timing("component", started.elapsed());
    origins
        .decorate(request.origin, response)
        .with_header(SERVER_TIMING_HEADER, timing)
}

/// Serves one request with this instance's state (made with `open` and the settings of `S` on
/// its first request): reads the request (with the body limit), lets the protocol answer it,
/// and encodes the answer. Beside the component's own span, `server-timing` carries `ready`
/// (what the request paid for the instance's state: nothing once it has one) and the backend's
/// own spans.
pub async fn serve<S, B>(request: http::Request<B>, open: Open) -> http::Response<Full<Bytes>>
where
    S: Source,
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let instance = Instance::get::<S>(open).await;
    let ready = server_timing("ready", started.elapsed());
    let response = match instance {
        Ok(instance) => {
            respond(request, &instance.origins, |request| {
                let response = spinfer_protocol::handle(instance.backend(), request);
                spans(response, instance.backend().take_spans())
            })
            .await
        }
        Err(error) => spinfer_protocol::Response::error(&error),
    };
    response
        .with_header(SERVER_TIMING_HEADER, ready)
        .into_http()
        .map(|body| Full::new(Bytes::from(body)))
}

/// The API's JSON error for a request the component cannot even read as HTTP (a method, target or
/// header the `http` crate refuses, though the host let it through): 400.
pub fn bad_request(message: String) -> http::Response<Full<Bytes>> {
    spinfer_protocol::Response::error(&ApiError::bad_request(message))
        .into_http()
        .map(|body| Full::new(Bytes::from(body)))
}

/// `response` with one `server-timing` metric per span.
fn spans(
    response: spinfer_protocol::Response,
    spans: Vec<(&'static str, Duration)>,
) -> spinfer_protocol::Response {
    spans.into_iter().fold(response, |response, (name, duration)| {
        response.with_header(SERVER_TIMING_HEADER, server_timing(name, duration))
    })
}
