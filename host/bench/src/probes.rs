//! Measurements besides the load: the cold start of a `spinfer up` process, a fresh instance's
//! way to a ready model, and the in-wasm inference time a component reports.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use spinfer_model::contract::DEFAULT_MODEL_VARIABLE;
use spinfer_protocol::http::INFER_TIMING;
use spinfer_serve::App;
use spinfer_serve::app::timing_ms;
use spinfer_serve::process::ServerProcess;

use crate::load::median;

/// Process start → first correct `/predict` answer, for a `spinfer up` child process.
pub fn cold_start(
    exe: &Path,
    manifest: &Path,
    model: &str,
    body: &Bytes,
    expected_label: u64,
) -> Result<Duration> {
    let started = Instant::now();
    let mut command = ServerProcess::up_command(
        exe,
        manifest,
        &["--variable", &format!("{DEFAULT_MODEL_VARIABLE}={model}")],
    );
    command.env("RUST_LOG", "warn");
    let server = ServerProcess::start(command, Duration::from_secs(120))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let label = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(server.addr).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = http::Request::post("/predict")
            .header("host", server.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let response = sender.send_request(request).await?;
        let bytes = response.into_body().collect().await?.to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)?;
        anyhow::Ok(json["label"].as_u64())
    })?;
    ensure!(
        label == Some(expected_label),
        "first answer was {label:?}, expected {expected_label}"
    );
    Ok(started.elapsed())
}

/// Median of `n` runs of native tract on `input`, in ms.
pub fn native_inference_ms(classifier: &spinfer_engine::Model, input: &[f32], n: usize) -> Result<f64> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        classifier.classify(input)?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(samples))
}

/// Median of the component's own `server-timing` inference duration, batch 1.
pub async fn wasm_inference_ms(app: &App, body: &Bytes, n: usize) -> Result<f64> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let request = http::Request::post("/predict")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let response = app.handle(request).await;
        ensure!(response.status() == 200, "status {}", response.status());
        let infer = timing_ms(response.headers(), INFER_TIMING)
            .ok_or_else(|| anyhow!("no server-timing infer duration"))?;
        samples.push(infer);
    }
    Ok(median(samples))
}

/// Median time of a `GET /v2/models/{model}/ready` through the whole HTTP path (request,
/// instance, the catalog check, response).
pub async fn ready_request_ms(app: &App, model: &str, n: usize) -> Result<f64> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let request =
            http::Request::get(format!("/v2/models/{model}/ready")).body(Full::new(Bytes::new()))?;
        let started = Instant::now();
        let response = app.handle(request).await;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(response.status() == 200, "ready answered {}", response.status());
    }
    Ok(median(samples))
}

/// Medians, in µs, of a fresh instance's two steps to a servable model: store + instantiate,
/// then the component's `ready` export (the snapshot check, or the model load).
pub async fn instance_ready_us(app: &App, model: &str, n: usize) -> Result<(f64, f64)> {
    let handler = app
        .component_for("/predict")
        .ok_or_else(|| anyhow!("no component serves /predict"))?;
    let (mut instantiate, mut ready) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let timing = handler.time_ready().await?;
        ensure!(
            timing.model == model,
            "ready made {} ready, not {model}",
            timing.model
        );
        instantiate.push(timing.instantiate.as_secs_f64() * 1e6);
        ready.push(timing.ready.as_secs_f64() * 1e6);
    }
    Ok((median(instantiate), median(ready)))
}
