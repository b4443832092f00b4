//! The one place a spin-sdk `Request` becomes a `spinfer_protocol::Request` and a protocol
//! `Response` becomes an HTTP response; every Spinfer component's handler is a call to [`serve`].
//! CORS is answered here too, so every component and every host (Spin or `spinfer up`) agree.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::http::Request;
use spinfer_protocol::contract::{ALLOWED_ORIGINS_VARIABLE, DEFAULT_MODEL_VARIABLE};
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
pub async fn default_model() -> Result<Option<String>, ApiError> {
    variable(DEFAULT_MODEL_VARIABLE).await
}

/// The origins this instance lets call from a browser: the `allowed_origins` variable, read on
/// the instance's first request. A variable that cannot be read allows none.
async fn allowed_origins() -> &'static AllowedOrigins {
    static ORIGINS: OnceLock<AllowedOrigins> = OnceLock::new();
    if let Some(origins) = ORIGINS.get() {
        return origins;
    }
    let value = match variable(ALLOWED_ORIGINS_VARIABLE).await {
        Ok(value) => value.unwrap_or_default(),
        Err(error) => {
            eprintln!("spinfer: {error}; no origin is allowed");
            String::new()
        }
    };
    ORIGINS.get_or_init(|| AllowedOrigins::parse(&value))
}

async fn respond(
    request: Request,
    handle: impl FnOnce(&spinfer_protocol::Request) -> spinfer_protocol::Response,
) -> spinfer_protocol::Response {
    let started = std::time::Instant::now();
    let origins = allowed_origins().await;
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

/// Reads the request (with the body limit), lets `handle` answer it, and encodes the answer.
pub async fn serve(
    request: Request,
    handle: impl FnOnce(&spinfer_protocol::Request) -> spinfer_protocol::Response,
) -> http::Response<Full<Bytes>> {
    respond(request, handle)
        .await
        .into_http()
        .map(|body| Full::new(Bytes::from(body)))
}
