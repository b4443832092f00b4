//! The Spin HTTP component: the shared Spinfer API over tract-onnx, compiled to WebAssembly.
//!
//! Models come from the directory that spin.toml mounts at `/models`. The parsed, optimised model
//! lives in a static, so a host that reuses instances (Spin does for `wasi:http` 0.3) pays for
//! loading it once per instance, and a snapshot (`spinfer snapshot`) starts with it loaded.

mod models;
mod snapshot;

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    // The default-model variable matters only until this instance has its models, so the host
    // call is made once per instance, not once per request.
    let started = std::time::Instant::now();
    let models = match models::current() {
        Some(models) => Ok(models),
        None => match spinfer_spin_http::default_model().await {
            Ok(default) => models::models(default.as_deref()),
            Err(error) => Err(error),
        },
    };
    // What this instance paid to have its models (once; a snapshot's model is checked against
    // the mounted files when it first serves, inside the request).
    let ready = spinfer_protocol::http::server_timing("ready", started.elapsed());
    let mut response = spinfer_spin_http::serve(request, |request| match models {
        Ok(models) => spinfer_protocol::handle(models.as_ref(), request),
        Err(error) => spinfer_protocol::Response::error(&error),
    })
    .await;
    // The check of a snapshot's model against the mounted files, inside the component's span.
    let check = models::take_check_time();
    let spans = std::iter::once(ready)
        .chain((!check.is_zero()).then(|| spinfer_protocol::http::server_timing("check", check)));
    for span in spans {
        if let Ok(value) = http::HeaderValue::from_str(&span) {
            response
                .headers_mut()
                .append(spinfer_protocol::SERVER_TIMING_HEADER, value);
        }
    }
    response
}
