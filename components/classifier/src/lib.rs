//! The Spin HTTP component: the shared Spinfer API over tract-onnx, compiled to WebAssembly,
//! exporting `wasi:http/handler@0.3.0` and configured by Spin variables. The portable build
//! (`components/classifier-p2`) is the same API for hosts without either.
//!
//! Models come from the directory that spin.toml mounts at `/models`. The parsed, optimised
//! models are the instance's state (`spinfer_handler::Instance`), so a host that reuses
//! instances (Spin does for `wasi:http` 0.3) pays for loading them once per instance, and a
//! snapshot (`spinfer snapshot`) starts with them loaded.

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;
use spinfer_spin_http::SpinVariables;

/// The snapshot exports, with the settings from Spin variables.
type Exports = spinfer_snapshot::Exports<SpinVariables>;
spinfer_snapshot::export!(Exports with_types_in spinfer_snapshot::bindings);

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    spinfer_handler::serve::<SpinVariables, _>(request, spinfer_snapshot::open).await
}
