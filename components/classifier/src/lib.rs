//! The Spin HTTP component: the shared Spinfer API over tract-onnx, compiled to WebAssembly.
//!
//! Models come from the directory that spin.toml mounts at `/models`. The parsed, optimised
//! models are the instance's state (`spinfer_spin_http::Instance`), so a host that reuses
//! instances (Spin does for `wasi:http` 0.3) pays for loading them once per instance, and a
//! snapshot (`spinfer snapshot`) starts with them loaded.

mod models;
mod snapshot;

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    spinfer_spin_http::serve(request, models::open).await
}
