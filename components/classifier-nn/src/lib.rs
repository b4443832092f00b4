//! The Spinfer HTTP component with inference through `wasi:nn`: the same API and the same
//! `spinfer-protocol` code as the tract component, but the host runs the model natively
//! (tract, or ONNX Runtime on CPU or GPU). Runs under `spinfer up -f spin-nn.toml`.

mod nn;

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;
use spinfer_catalog::Catalog;
use spinfer_model::{Backend, ModelError};
use spinfer_spin_http::SpinVariables;

/// The models of the mounted folder, each graph loaded by name on first use; its wasi-nn graph
/// handles belong to this instance.
fn open(default: Option<&str>) -> Result<Box<dyn Backend>, ModelError> {
    let catalog = Catalog::mounted(default).map_err(|e| ModelError::NotReady(e.to_string()))?;
    Ok(Box::new(nn::NnBackend::new(catalog)))
}

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    spinfer_handler::serve::<SpinVariables, _>(request, open).await
}
