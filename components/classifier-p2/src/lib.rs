//! The portable build of the Spinfer HTTP component: the same API from the same protocol code
//! and the same snapshotted tract models as `components/classifier`, but exporting
//! `wasi:http/incoming-handler@0.2.0`, importing only WASI 0.2 and using none of the component
//! model's async built-ins, so that hosts without `wasi:http` 0.3 or Spin's variables run it:
//! Spin 2.x to 4.0, SpinKube's shim, `wasmtime serve`. Such hosts make an instance per request,
//! so each request starts from the snapshot and checks the model it uses against the mounted
//! files.
//!
//! Its settings come from the WASI environment (`SPINFER_DEFAULT_MODEL`,
//! `SPINFER_ALLOWED_ORIGINS`), which every host can give: Spin's component `environment`,
//! `wasmtime serve --env`.

mod wasi_http;

use spinfer_handler::{Environment, Source};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

/// The snapshot exports, with the settings from the environment.
type Exports = spinfer_snapshot::Exports<Environment>;
spinfer_snapshot::export!(Exports with_types_in spinfer_snapshot::bindings);

struct Handler;

impl Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        // Nothing here waits: the body is read with blocking reads and the settings in place.
        let response = Environment::block_on(async move {
            let response = match wasi_http::request(request) {
                Ok(request) => {
                    spinfer_handler::serve::<Environment, _>(request, spinfer_snapshot::open).await
                }
                Err(message) => spinfer_handler::bad_request(message),
            };
            wasi_http::collect(response).await
        });
        wasi_http::send(response, out);
    }
}

wasi::http::proxy::export!(Handler);
