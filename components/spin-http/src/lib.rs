//! The one place a spin-sdk `Request` becomes a `spinfer_protocol::Request` and a protocol
//! `Response` becomes an HTTP response; every Spinfer component's handler is a call to
//! [`serve`]. CORS is answered here too, so every component and every host (Spin or
//! `spinfer up`) agree.
//!
//! Here too is the one way a component keeps per-instance state ([`Instance`]): the app's
//! variables, read on the instance's first request, and the backend opened with them, reused by
//! every later request the host sends to the same instance.

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::http::Request;
use spinfer_model::contract::{ALLOWED_ORIGINS_VARIABLE, DEFAULT_MODEL_VARIABLE};
use spinfer_model::{Backend, ModelError};
use spinfer_protocol::http::server_timing;
use spinfer_protocol::{AllowedOrigins, ApiError, MAX_BODY_BYTES, SERVER_TIMING_HEADER};

/// A Spin variable's value, or `None` when the component defines none.
async fn variable(name: &str) -> Result<Option<String>, ApiError> {
    match spin_sdk::variables::get(name).await {
        Ok(value) => Ok(Some(value)),
        Err(spin_sdk::variables::Error::Undefined(_)) => Ok(None),
        Err(e) => Err(ApiError::not_ready(format!(
            "cannot read the {name} variable: {e}"
        ))),
    }
}

/// The app's default model: the `default_model` Spin variable, or `None` when the component
/// defines none (the first model by name is then the default).
async fn default_model() -> Result<Option<String>, ApiError> {
    variable(DEFAULT_MODEL_VARIABLE).await
}

/// The origins the app lets call from a browser: the `allowed_origins` variable. A variable
/// that cannot be read allows none.
async fn allowed_origins() -> AllowedOrigins {
    let value = match variable(ALLOWED_ORIGINS_VARIABLE).await {
        Ok(value) => value.unwrap_or_default(),
        Err(error) => {
            eprintln!("spinfer: {error}; no origin is allowed");
            String::new()
        }
    };
    AllowedOrigins::parse(&value)
}

/// Opens what a component serves, given the app's default model.
pub type Open = fn(Option<&str>) -> Result<Box<dyn Backend>, ModelError>;

/// What one instance keeps for its life: the app's variables, read on its first request, and
/// the backend opened with them.
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
    /// This instance's state, made on its first call: the variables read and the backend
    /// opened, once. A failure is not kept: the next request tries again (a folder mounted
    /// late, a variable fixed).
    pub async fn get(open: Open) -> Result<&'static Instance, ApiError> {
        let current = || INSTANCE.with(|cell| cell.get().copied());
        if let Some(instance) = current() {
            return Ok(instance);
        }
        let default = default_model().await?;
        let origins = allowed_origins().await;
        // Requests that arrived together all read the variables; the first to get here opens.
        if let Some(instance) = current() {
            return Ok(instance);
        }
        let instance: &'static Instance = Box::leak(Box::new(Instance {
            origins,
            backend: open(default.as_deref())?,
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

async fn respond(
    request: Request,
    origins: &AllowedOrigins,
    handle: impl FnOnce(&spinfer_protocol::Request) -> spinfer_protocol::Response,
) -> spinfer_protocol::Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Spin applies no body limit of its own; the component keeps the same one as `spinfer up`.
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

/// Serves one request with this instance's state (made with `open` on its first request):
/// reads the request (with the body limit), lets the protocol answer it, and encodes the
/// answer. Beside the component's own span, `server-timing` carries `ready` (what the request
/// paid for the instance's state: nothing once it has one) and the backend's own spans.
pub async fn serve(request: Request, open: Open) -> http::Response<Full<Bytes>> {
    let started = Instant::now();
    let instance = Instance::get(open).await;
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

/// `response` with one `server-timing` metric per span.
fn spans(
    response: spinfer_protocol::Response,
    spans: Vec<(&'static str, Duration)>,
) -> spinfer_protocol::Response {
    spans.into_iter().fold(response, |response, (name, duration)| {
        response.with_header(SERVER_TIMING_HEADER, server_timing(name, duration))
    })
}
