//! `spinfer bench`: the same `/predict` requests against a native in-process tract server (the
//! baseline) and against the component through `spinfer up`, over real TCP connections with a
//! hyper client load generator; latency percentiles, throughput and their ratios.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use spinfer_engine::ModelStore;
use tokio::net::TcpListener;

/// The native baseline: the shared protocol over tract, in process, behind hyper.
pub async fn native_server(models: &Path, default_model: &str) -> Result<SocketAddr> {
    let store = Arc::new(ModelStore::open(models, Some(default_model)).map_err(|e| anyhow!("{e}"))?);
    store.preload().map_err(|e| anyhow!("{e}"))?;
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
                        async move { Ok::<_, Infallible>(native_handle(&store, request).await) }
                    });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn native_handle(
    store: &ModelStore,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let api_request = spinfer_protocol::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        content_type: header("content-type"),
        inference_header_length: header(spinfer_protocol::v2::BINARY_HEADER),
        body: &body,
    };
    // tract blocks; keep it off the async workers like a serious native server would.
    let response = tokio::task::block_in_place(|| spinfer_protocol::handle(store, &api_request));
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .expect("valid response")
}

#[derive(Clone, Debug)]
pub struct LoadResult {
    pub connections: usize,
    pub requests: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Closed-loop load: `connections` keep-alive HTTP/1.1 connections, each sending `body` to
/// `path` back to back for `duration` (after `warmup`), every answer checked for status 200.
pub async fn load(
    addr: SocketAddr,
    path: &str,
    body: Bytes,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadResult> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let body = body.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let request = http::Request::post(path.as_str())
                    .header("host", addr.to_string())
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                ensure!(status == 200, "server answered {status}");
                if sent >= start {
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("load task")??);
    }
    ensure!(!latencies.is_empty(), "no request completed in {duration:?}");
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(LoadResult {
        connections,
        requests: latencies.len(),
        seconds: duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

/// One server under test.
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub connections: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct Row {
    pub name: String,
    pub results: Vec<LoadResult>,
}

/// The `/predict` body every target gets: test image 0 as raw pixels.
pub fn predict_body(pixels: &[u8]) -> Bytes {
    Bytes::from(serde_json::to_vec(&serde_json::json!({ "pixels": pixels })).expect("serialises"))
}

pub async fn measure(targets: &[Target], body: Bytes, options: &BenchOptions) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for target in targets {
        let mut results = Vec::new();
        for &connections in &options.connections {
            let result = load(
                target.addr,
                "/predict",
                body.clone(),
                connections,
                options.warmup,
                options.duration,
            )
            .await
            .with_context(|| format!("{} at {connections} connections", target.name))?;
            tracing::info!(
                target = %target.name, connections, p50_ms = result.p50_ms, p99_ms = result.p99_ms, rps = result.rps(),
                "measured"
            );
            results.push(result);
        }
        rows.push(Row {
            name: target.name.clone(),
            results,
        });
    }
    Ok(rows)
}

/// A markdown table; ratios are against the first row (the native baseline).
pub fn table(rows: &[Row]) -> String {
    let mut out =
        String::from("| server | conns | p50 ms | p99 ms | req/s | p50 vs native | req/s vs native |\n");
    out += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    let Some(baseline) = rows.first() else { return out };
    for row in rows {
        for (result, base) in row.results.iter().zip(&baseline.results) {
            out += &format!(
                "| {} | {} | {:.3} | {:.3} | {:.0} | {:.2}× | {:.2}× |\n",
                row.name,
                result.connections,
                result.p50_ms,
                result.p99_ms,
                result.rps(),
                result.p50_ms / base.p50_ms,
                result.rps() / base.rps(),
            );
        }
    }
    out
}

/// Process start → first correct `/predict` answer, for a `spinfer up` child process.
pub fn cold_start(
    exe: &Path,
    manifest: &Path,
    model: &str,
    body: &Bytes,
    expected_label: u64,
) -> Result<Duration> {
    use std::io::{BufRead, BufReader};
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(manifest)
        .arg("--env")
        .arg(format!("SPINFER_DEFAULT_MODEL={model}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting spinfer up")?;
    let stdout = child.stdout.take().expect("piped");
    let addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split("http://").nth(1).map(|a| a.trim().to_string()));
    let result = (|| {
        let addr: SocketAddr = addr
            .ok_or_else(|| anyhow!("spinfer up exited before listening"))?
            .parse()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let label = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let request = http::Request::post("/predict")
                .header("host", addr.to_string())
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
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

pub struct BenchConfig {
    pub manifest: std::path::PathBuf,
    pub data: std::path::PathBuf,
    pub connections: Vec<usize>,
    pub seconds: f64,
    pub python: Option<std::path::PathBuf>,
    pub scalar_wasm: Option<std::path::PathBuf>,
    /// The wasi-nn variant's manifest, for the (e) and (f) rows.
    pub nn_manifest: Option<std::path::PathBuf>,
    /// The model to serve, instead of the manifest's default.
    pub model: Option<String>,
}

/// A child server process that is killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Python + ONNX Runtime server and returns it with its address.
fn python_server(python: &Path, script: &Path, model: &Path) -> Result<(Child, SocketAddr)> {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg("--model")
        .arg(model)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let child = Child(child);
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("http://"))
        .ok_or_else(|| anyhow!("the Python server exited before listening"))?;
    let addr = line.split("http://").nth(1).unwrap_or_default().trim().parse()?;
    Ok((child, addr))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median of the component's own `server-timing` inference duration, warm instance, batch 1.
async fn wasm_inference_ms(app: &crate::serve::App, body: &Bytes, n: usize) -> Result<f64> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let request = http::Request::post("/predict")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let response = app.handle(request).await;
        ensure!(response.status() == 200, "status {}", response.status());
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("no server-timing header"))?;
        let infer = timing
            .split(',')
            .find_map(|part| part.trim().strip_prefix("infer;dur="))
            .ok_or_else(|| anyhow!("no infer duration in {timing:?}"))?;
        samples.push(infer.parse()?);
    }
    Ok(median(samples))
}

/// Median time of a `GET /v2/models/{model}/ready` on a fresh instance, through the whole
/// HTTP path (request, instance, the catalog check, response).
async fn ready_request_ms(app: &crate::serve::App, model: &str, n: usize) -> Result<f64> {
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
async fn instance_ready_us(app: &crate::serve::App, model: &str, n: usize) -> Result<(f64, f64)> {
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

pub fn run(config: &BenchConfig) -> Result<String> {
    use crate::serve::{App, AppOptions, Manifest, ReusePolicy, engine::default_cache_dir, server};

    let manifest = Manifest::load(&config.manifest)?;
    let test = crate::mnist::Mnist::load_test(&config.data)?;
    let body = predict_body(test.image(0));
    let expected = u64::from(test.labels[0]);
    let (name, def) = manifest
        .component
        .iter()
        .next()
        .ok_or_else(|| anyhow!("the manifest has no component"))?;
    let models = def
        .files
        .first()
        .map(|m| manifest.resolve(&m.paths().0))
        .ok_or_else(|| anyhow!("the component mounts no models"))?;
    let model = config
        .model
        .clone()
        .or_else(|| def.environment.get("SPINFER_DEFAULT_MODEL").cloned())
        .unwrap_or_else(|| "mnist-cnn".into());
    let environment = vec![("SPINFER_DEFAULT_MODEL".to_string(), model.clone())];
    let snapshot_source = manifest.resolve(&def.source);
    let plain_source = snapshot_source
        .to_str()
        .and_then(|s| s.strip_suffix(".snapshot.wasm"))
        .map(|s| std::path::PathBuf::from(format!("{s}.wasm")))
        .filter(|p| p.exists());

    // The first start fills the compiled-component cache; the second is the one users see.
    let exe = std::env::current_exe()?;
    cold_start(&exe, &config.manifest, &model, &body, expected)?;
    let cold = cold_start(&exe, &config.manifest, &model, &body, expected)?;

    // Native tract, batch 1, in process: the reference for the wasm inference time.
    let native = spinfer_engine::Classifier::from_path(&models.join(format!("{model}.onnx")))
        .map_err(|e| anyhow!("{e}"))?;
    let input = test.normalized([0]);
    let native_ms = median(
        (0..200)
            .map(|_| {
                let started = Instant::now();
                native.run(&input).expect("native inference");
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );

    let options = BenchOptions {
        connections: config.connections.clone(),
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs_f64(config.seconds),
    };
    let reuse = ReusePolicy {
        max_reuse: 128,
        max_concurrent: 16,
        idle_timeout: Duration::from_secs(1),
    };
    let load_app = |source: &Path, reuse: ReusePolicy| -> Result<Arc<App>> {
        let mut manifest = Manifest::load(&config.manifest)?;
        manifest.component.get_mut(name).expect("component exists").source = source.to_path_buf();
        Ok(Arc::new(App::load(
            &manifest,
            &AppOptions {
                reuse,
                cache_dir: Some(default_cache_dir()),
                environment: environment.clone(),
                ..AppOptions::default()
            },
        )?))
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let mut _python = None;
    let mut notes = Vec::new();
    let rows = runtime.block_on(async {
        let mut targets = vec![Target {
            name: "(a) native tract, in-process hyper".into(),
            addr: native_server(&models, &model).await?,
        }];
        let mut apps = Vec::new();
        if let Some(plain) = &plain_source {
            apps.push(("(b) component, fresh instance, no snapshot", load_app(plain, ReusePolicy::FRESH)?));
        }
        apps.push(("(c) component, fresh instance, snapshot (default)", load_app(&snapshot_source, ReusePolicy::FRESH)?));
        apps.push(("(d) component, snapshot, instance reuse 128/16/1 s", load_app(&snapshot_source, reuse)?));

        // Instance start and in-wasm inference, before the load runs.
        let snapshot_app = &apps[apps.len() - 2].1;
        let reused_app = &apps[apps.len() - 1].1;
        let (snap_instantiate, snap_ready) = instance_ready_us(snapshot_app, &model, 200).await?;
        let snap_request = ready_request_ms(snapshot_app, &model, 50).await?;
        match apps.iter().find(|(n, _)| n.starts_with("(b)")) {
            Some((_, plain_app)) => {
                let (instantiate, ready) = instance_ready_us(plain_app, &model, 50).await?;
                notes.push(format!(
                    "instantiate → model ready, fresh instance, {model} (medians): with the snapshot \
                     {snap_instantiate:.0} µs instantiate + {snap_ready:.0} µs `ready` (the check of \
                     the mounted models) = {:.0} µs; without it {instantiate:.0} µs + {:.2} ms (the \
                     model load) = {:.2} ms",
                    snap_instantiate + snap_ready,
                    ready / 1e3,
                    (instantiate + ready) / 1e3,
                ));
                notes.push(format!(
                    "the same through HTTP (GET /v2/models/{model}/ready on a fresh instance, median \
                     of 50): {snap_request:.3} ms with the snapshot, {:.3} ms without",
                    ready_request_ms(plain_app, &model, 50).await?,
                ));
            }
            None => notes.push(format!(
                "instantiate → model ready, fresh instance, snapshot, {model} (medians): \
                 {snap_instantiate:.0} µs instantiate + {snap_ready:.0} µs `ready`; \
                 GET /v2/models/{model}/ready {snap_request:.3} ms"
            )),
        }
        let wasm_ms = wasm_inference_ms(reused_app, &body, 200).await?;
        notes.push(format!(
            "inference, batch 1, {model} (median): native tract {native_ms:.3} ms; tract in wasm (simd128) {wasm_ms:.3} ms = {:.2}× native",
            wasm_ms / native_ms
        ));
        if let Some(scalar) = &config.scalar_wasm {
            let scalar_app = load_app(scalar, reuse)?;
            let scalar_ms = wasm_inference_ms(&scalar_app, &body, 200).await?;
            notes.push(format!(
                "tract in wasm without simd128: {scalar_ms:.3} ms; SIMD gain {:.2}×",
                scalar_ms / wasm_ms
            ));
        }

        if let Some(nn_manifest) = &config.nn_manifest {
            use crate::serve::nn::{NnBackend, NnOptions, NnTarget};
            let nn_manifest = Manifest::load(nn_manifest)?;
            let nn_app = |backend, reuse| {
                App::load(
                    &nn_manifest,
                    &AppOptions {
                        reuse,
                        cache_dir: Some(default_cache_dir()),
                        environment: environment.clone(),
                        nn: Some(NnOptions {
                            backend,
                            target: NnTarget::Cpu,
                        }),
                        ..AppOptions::default()
                    },
                )
                .map(Arc::new)
            };
            apps.push((
                "(e) wasi-nn component, host tract, fresh instance",
                nn_app(NnBackend::Tract, ReusePolicy::FRESH)?,
            ));
            match nn_app(NnBackend::Ort, ReusePolicy::FRESH) {
                Ok(app) => {
                    apps.push(("(e) wasi-nn component, host ONNX Runtime CPU, fresh instance", app));
                    apps.push((
                        "(f) wasi-nn component, host ONNX Runtime CPU, instance reuse 128/16/1 s",
                        nn_app(NnBackend::Ort, reuse)?,
                    ));
                }
                Err(e) => notes.push(format!("wasi-nn ONNX Runtime rows skipped: {e:#}")),
            }
        }
        for (name, app) in apps {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(server::serve(app, listener, std::future::pending()));
            targets.push(Target { name: name.into(), addr });
        }
        if let Some(python) = &config.python {
            let script = manifest.resolve(Path::new("scripts/ort_server.py"));
            let (child, addr) = python_server(python, &script, &models.join(format!("{model}.onnx")))?;
            _python = Some(child);
            targets.push(Target {
                name: "(p) Python http.server + ONNX Runtime".into(),
                addr,
            });
        }
        measure(&targets, body.clone(), &options).await
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));

    let mut report = table(&rows);
    report += "\n";
    for note in notes {
        report += &format!("- {note}\n");
    }
    report += &format!(
        "- cold start (process start → first correct /predict, warm compiled-component cache): {:.1} ms\n\n\
         Command: `spinfer bench --connections {} --seconds {}`; {} CPUs; model {model}.\n",
        cold.as_secs_f64() * 1e3,
        config
            .connections
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
        config.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    Ok(report)
}
