//! `spinfer frontier`: every model of the models folder on one table — its cost (parameters,
//! multiply-adds from the ONNX graph, file size), its accuracy on the 10k test set (native
//! tract), and its latency three ways: native tract batch 1, tract inside the component batch 1,
//! and a fresh-instance `/predict` p50 through `spinfer up`'s server at one connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use spinfer_catalog::Catalog;
use spinfer_engine::{Model, argmax};
use spinfer_model::contract::{CLASSES, DEFAULT_MODEL_VARIABLE, MODELS_DIR};
use spinfer_serve::{App, AppOptions, Manifest, ReusePolicy, server};
use tokio::net::TcpListener;

use crate::load::load;
use crate::probes::{native_inference_ms, wasm_inference_ms};

pub struct FrontierConfig {
    pub manifest: PathBuf,
    pub data: PathBuf,
    /// Seconds of fresh-instance load per model.
    pub seconds: f64,
}

/// One model's row.
#[derive(Clone, Debug)]
pub struct Point {
    pub model: String,
    pub parameters: u64,
    pub multiply_adds: u64,
    pub onnx_bytes: u64,
    pub accuracy: f64,
    pub native_ms: f64,
    pub wasm_ms: f64,
    pub fresh_p50_ms: f64,
}

pub fn run(config: &FrontierConfig) -> Result<Vec<Point>> {
    let manifest = Manifest::load(&config.manifest)?;
    let def = manifest.component("classifier")?;
    let models = manifest.mount(def, MODELS_DIR)?;
    let catalog = Catalog::open(&models, None)?;
    let test = spinfer_mnist::Mnist::load_test(&config.data)?;
    let body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "pixels": test.image(0) }),
    )?);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut points = Vec::new();
    for entry in &catalog.entries {
        let name = entry.card.name.clone();
        let onnx = std::fs::read(&entry.onnx)?;
        let cost = spinfer_engine::cost::cost(&onnx)?;
        let classifier = Model::from_onnx(&onnx)?;
        let mut correct = 0;
        for start in (0..test.len()).step_by(1000) {
            let end = (start + 1000).min(test.len());
            let probs = classifier.classify(&test.normalized(start..end))?;
            correct += probs
                .chunks(CLASSES)
                .zip(&test.labels[start..end])
                .filter(|(p, label)| argmax(p) == usize::from(**label))
                .count();
        }
        let native_ms = native_inference_ms(&classifier, &test.normalized([0]), 200)?;
        let options = |reuse| AppOptions {
            reuse,
            variables: vec![(DEFAULT_MODEL_VARIABLE.to_string(), name.clone())],
            ..spinfer_app::options()
        };
        let (wasm_ms, fresh_p50_ms) = runtime.block_on(async {
            let reused = App::load(&manifest, &options(ReusePolicy::SPIN))?;
            let wasm_ms = wasm_inference_ms(&reused, &body, 200).await?;
            let fresh = Arc::new(App::load(&manifest, &options(ReusePolicy::FRESH))?);
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(server::serve(fresh, listener, None, std::future::pending()));
            let result = load(
                addr,
                "/predict",
                body.clone(),
                1,
                Duration::from_millis(500),
                Duration::from_secs_f64(config.seconds),
            )
            .await;
            server.abort();
            anyhow::Ok((wasm_ms, result?.p50_ms))
        })?;
        tracing::info!(model = %name, wasm_ms, fresh_p50_ms, "measured");
        points.push(Point {
            model: name,
            parameters: cost.parameters,
            multiply_adds: cost.multiply_adds,
            onnx_bytes: onnx.len() as u64,
            accuracy: correct as f64 / test.len() as f64,
            native_ms,
            wasm_ms,
            fresh_p50_ms,
        });
    }
    Ok(points)
}

/// The markdown table.
pub fn table(points: &[Point]) -> String {
    let mut out = String::from(
        "| model | parameters | multiply-adds | ONNX | test accuracy | native tract b=1 | tract in wasm b=1 | fresh-instance /predict p50 |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for p in points {
        out += &format!(
            "| {} | {} | {:.2} M | {:.0} KB | {:.2} % | {:.3} ms | {:.3} ms | {:.3} ms |\n",
            p.model,
            p.parameters,
            p.multiply_adds as f64 / 1e6,
            p.onnx_bytes as f64 / 1e3,
            p.accuracy * 100.0,
            p.native_ms,
            p.wasm_ms,
            p.fresh_p50_ms,
        );
    }
    out
}
