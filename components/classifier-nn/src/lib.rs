//! The Spinfer HTTP component with inference through `wasi:nn`: the same API and the same
//! `spinfer-protocol` code as the tract component, but the host runs the model natively
//! (tract, or ONNX Runtime on CPU or GPU). Runs under `spinfer up -f spin-nn.toml`.

mod nn;

use std::cell::OnceCell;

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;
use spinfer_catalog::Catalog;
use spinfer_protocol::ApiError;

thread_local! {
    /// wasi-nn graph handles belong to this instance; they live as long as it does.
    static BACKEND: OnceCell<Result<nn::NnBackend, String>> = const { OnceCell::new() };
}

fn open(default: Option<&str>) -> Result<nn::NnBackend, String> {
    Catalog::mounted(default)
        .map(nn::NnBackend::new)
        .map_err(|e| e.to_string())
}

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    // The default-model variable matters only until this instance has opened its backend, so
    // the host call is made once per instance, not once per request.
    let opened = BACKEND.with(|cell| cell.get().is_some());
    let default = if opened {
        Ok(None)
    } else {
        spinfer_spin_http::default_model().await
    };
    spinfer_spin_http::serve(request, |request| {
        let default = match default {
            Ok(default) => default,
            Err(error) => return spinfer_protocol::Response::error(&error),
        };
        BACKEND.with(|cell| match cell.get_or_init(|| open(default.as_deref())) {
            Ok(backend) => spinfer_protocol::handle(backend, request),
            Err(error) => spinfer_protocol::Response::error(&ApiError::not_ready(error.clone())),
        })
    })
    .await
}
