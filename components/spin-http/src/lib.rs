//! The one place a spin-sdk `Request` becomes a `spinfer_protocol::Request` and a protocol
//! `Response` becomes an HTTP response; every Spinfer component's handler is a call to [`serve`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::http::Request;
use spinfer_protocol::contract::DEFAULT_MODEL_VARIABLE;
use spinfer_protocol::{ApiError, MAX_BODY_BYTES};

/// The app's default model: the `default_model` Spin variable, or `None` when the component
/// defines none (the first model by name is then the default).
pub async fn default_model() -> Result<Option<String>, ApiError> {
    match spin_sdk::variables::get(DEFAULT_MODEL_VARIABLE).await {
        Ok(value) => Ok(Some(value)),
        Err(spin_sdk::variables::Error::Undefined(_)) => Ok(None),
        Err(e) => Err(ApiError::not_ready(format!(
            "cannot read the {DEFAULT_MODEL_VARIABLE} variable: {e}"
        ))),
    }
}

async fn respond(
    request: Request,
    handle: impl FnOnce(&spinfer_protocol::Request) -> spinfer_protocol::Response,
) -> spinfer_protocol::Response {
    let (parts, body) = request.into_parts();
    // Spin applies no body limit of its own; the component keeps the same one as `spinfer up`.
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return spinfer_protocol::Response::error(&ApiError::payload_too_large(MAX_BODY_BYTES));
        }
        Err(e) => {
            return spinfer_protocol::Response::error(&ApiError::bad_request(format!(
                "cannot read request body: {e}"
            )));
        }
    };
    handle(&spinfer_protocol::Request::from_parts(&parts, &body))
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
