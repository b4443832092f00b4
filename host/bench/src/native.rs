//! The native baseline: the shared protocol over tract, in process, behind hyper — what a
//! native server of the same API does, with the same request and response conversions as the
//! components (`spinfer_protocol::Request::from_parts`, `Response::into_http`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use spinfer_engine::ModelStore;
use tokio::net::TcpListener;

pub async fn server(models: &Path, default_model: &str) -> Result<SocketAddr> {
    let store = Arc::new(ModelStore::open(models, Some(default_model))?);
    store.preload()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).ok();
            let store = store.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move { Ok::<_, Infallible>(handle(&store, request).await) }
                    });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn handle(
    store: &ModelStore,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let api_request = spinfer_protocol::Request::from_parts(&parts, &body);
    // tract blocks; keep it off the async workers like a serious native server would.
    let response = tokio::task::block_in_place(|| spinfer_protocol::handle(store, &api_request));
    response.into_http().map(|body| Full::new(Bytes::from(body)))
}
