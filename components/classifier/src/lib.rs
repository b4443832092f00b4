//! The Spin HTTP component: the shared Spinfer API over tract-onnx, compiled to WebAssembly.
//!
//! Models come from the directory that spin.toml mounts at `/models`. The parsed, optimised model
//! lives in a static, so a host that reuses instances (Spin does for `wasi:http` 0.3) pays for
//! loading it once per instance, and a snapshot (`spinfer snapshot`) starts with it loaded.

mod models;
mod snapshot;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use spin_sdk::http::Request;
use spin_sdk::http_service;
use spinfer_protocol::{ApiError, MAX_BODY_BYTES, v2};

fn header<'a>(request: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn respond(request: Request) -> spinfer_protocol::Response {
    let (parts, body) = request.into_parts();
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
    let api_request = spinfer_protocol::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        content_type: header(&parts, "content-type"),
        inference_header_length: header(&parts, v2::BINARY_HEADER),
        body: &body,
    };
    match models::store() {
        Ok(store) => spinfer_protocol::handle(store.as_ref(), &api_request),
        Err(error) => spinfer_protocol::Response::error(&error),
    }
}

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    let response = respond(request).await;
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .expect("status and headers come from the protocol crate and are valid")
}
