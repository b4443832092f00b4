//! `spinfer stress`: overload and soak runs against a `spinfer up` child process. Every
//! connection sends a mix of valid and invalid requests back to back, and every answer is
//! checked against what that request must get; a 503 with `Retry-After` (load shedding) is
//! counted and honoured (the connection waits that long, at most 1 s, as a well-behaved client
//! does), anything else unexpected is a wrong answer. The latency of the correct answers is
//! taken twice: at the client, and at the server (the `host` metric of `server-timing`, from the
//! request's arrival in the runner to its response), so that a load generator sharing the
//! server's cores can be told apart from the server. The server's resident memory is sampled
//! once a second.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use spinfer_serve::app::{HOST_TIMING, timing_ms};
use spinfer_serve::process::ServerProcess;

use crate::load::{median, percentile};

/// The longest a connection waits after a 503 before its next request, whatever
/// `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub struct StressConfig {
    /// The `spinfer` binary that serves (normally the running one).
    pub exe: PathBuf,
    pub manifest: PathBuf,
    pub data: PathBuf,
    /// Extra `spinfer up` flags.
    pub up_args: Vec<String>,
    pub connections: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
}

/// One kind of request in the mix and what it must get.
struct Probe {
    path: &'static str,
    content_type: &'static str,
    body: Bytes,
    status: u16,
    /// For a 200: the label the answer must carry.
    label: Option<u64>,
}

/// The mix: three valid requests (pixels, a batch, the other model) to each invalid one.
fn probes(data: &Path) -> Result<Vec<Probe>> {
    let test = spinfer_mnist::Mnist::load_test(data)?;
    let pixels = |i: usize| serde_json::json!({ "pixels": test.image(i) });
    let json = |value: serde_json::Value| Bytes::from(serde_json::to_vec(&value).expect("serialises"));
    // A valid request for test image `i` through `path`: a 200 with the image's label.
    let valid = |path, i: usize| Probe {
        path,
        content_type: "application/json",
        body: json(pixels(i)),
        status: 200,
        label: Some(u64::from(test.labels[i])),
    };
    Ok(vec![
        valid("/predict", 0),
        valid("/predict", 1),
        valid("/predict?model=mnist-lean", 2),
        Probe {
            path: "/predict",
            content_type: "application/json",
            body: Bytes::from_static(b"{\"pixels\": [1, 2"),
            status: 400,
            label: None,
        },
    ])
}

/// How the answers of a run (or of one connection) came out.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Correct 200s and correct 4xx answers.
    pub correct: usize,
    /// 503s with `Retry-After`: load shed.
    pub shed: usize,
    /// Answers with a status or label other than the request must get.
    pub wrong: usize,
    /// 5xx answers other than load-shedding 503s (also counted in `wrong`).
    pub server_errors: usize,
    /// Connections that failed (refused, reset, protocol errors).
    pub connection_errors: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.correct += other.correct;
        self.shed += other.shed;
        self.wrong += other.wrong;
        self.server_errors += other.server_errors;
        self.connection_errors += other.connection_errors;
    }
}

#[derive(Clone, Debug, Default)]
pub struct StressResult {
    pub connections: usize,
    pub seconds: f64,
    pub counts: Counts,
    /// Latency of the correct answers, at the client.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The same answers' time in the server (`server-timing: host`).
    pub host_p99_ms: f64,
    /// Resident memory of the server: the median of the first and of the last 10 s sampled
    /// after warm-up, in MiB.
    pub rss_first_mib: f64,
    pub rss_last_mib: f64,
}

/// One connection's answers, and the latencies of its correct ones (at the client, and in the
/// server).
#[derive(Default)]
struct Tally {
    counts: Counts,
    latencies: Vec<f64>,
    host_latencies: Vec<f64>,
}

async fn connection(
    addr: SocketAddr,
    probes: Arc<Vec<Probe>>,
    offset: usize,
    start: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut turn = offset;
    'connect: while Instant::now() < end {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tally.counts.connection_errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        stream.set_nodelay(true).ok();
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
            tally.counts.connection_errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < end {
            let probe = &probes[turn % probes.len()];
            turn += 1;
            let request = http::Request::post(probe.path)
                .header("host", addr.to_string())
                .header("content-type", probe.content_type)
                .body(Full::new(probe.body.clone()))
                .expect("a valid request");
            let sent = Instant::now();
            let answer = match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let host_ms = timing_ms(response.headers(), HOST_TIMING);
                    let retry = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|body| (status, retry, host_ms, body.to_bytes()))
                }
                Err(e) => Err(e),
            };
            let Ok((status, retry, host_ms, body)) = answer else {
                tally.counts.connection_errors += 1;
                continue 'connect;
            };
            if status == 503 && retry.is_some() {
                // A well-behaved client waits as told (capped, so a run stays short).
                tally.counts.shed += 1;
                tokio::time::sleep(retry.unwrap_or_default().min(MAX_BACKOFF)).await;
                continue;
            }
            let label = || {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|value| value["label"].as_u64())
            };
            let right = status == probe.status && (probe.label.is_none() || label() == probe.label);
            if !right {
                tally.counts.wrong += 1;
                if status >= 500 {
                    tally.counts.server_errors += 1;
                }
            } else {
                tally.counts.correct += 1;
                if sent >= start {
                    tally.latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    tally.host_latencies.extend(host_ms);
                }
            }
        }
    }
    tally
}

/// Resident memory of process `pid` in MiB (Linux `/proc`).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// One run at `connections` against a fresh server.
async fn run_one(config: &StressConfig, probes: Arc<Vec<Probe>>, connections: usize) -> Result<StressResult> {
    let args: Vec<&str> = config.up_args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(
        ServerProcess::up_command(&config.exe, &config.manifest, &args),
        Duration::from_secs(120),
    )?;
    let start = Instant::now() + config.warmup;
    let end = start + config.duration;
    let pid = server.id();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        while Instant::now() < end {
            every.tick().await;
            if Instant::now() >= start {
                samples.extend(rss_mib(pid));
            }
        }
        samples
    });
    let tasks: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(connection(server.addr, probes.clone(), i, start, end)))
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        let one = task.await.context("a load connection")?;
        tally.counts.add(&one.counts);
        tally.latencies.extend(one.latencies);
        tally.host_latencies.extend(one.host_latencies);
    }
    let samples = sampler.await?;
    tracing::info!(connections, rss_mib = ?samples, "resident memory, once a second");
    let window = samples.len().min(10);
    tally.latencies.sort_by(f64::total_cmp);
    tally.host_latencies.sort_by(f64::total_cmp);
    Ok(StressResult {
        connections,
        seconds: config.duration.as_secs_f64(),
        counts: tally.counts,
        p50_ms: percentile(&tally.latencies, 0.50),
        p99_ms: percentile(&tally.latencies, 0.99),
        host_p99_ms: percentile(&tally.host_latencies, 0.99),
        rss_first_mib: if window > 0 {
            median(samples[..window].to_vec())
        } else {
            f64::NAN
        },
        rss_last_mib: if window > 0 {
            median(samples[samples.len() - window..].to_vec())
        } else {
            f64::NAN
        },
    })
}

/// A run at each connection count, each against its own fresh server, one after another.
pub fn run(config: &StressConfig) -> Result<Vec<StressResult>> {
    let probes = Arc::new(probes(&config.data)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut results = Vec::new();
    for &connections in &config.connections {
        let result = runtime.block_on(run_one(config, probes.clone(), connections))?;
        tracing::info!(?result, "measured");
        results.push(result);
    }
    Ok(results)
}

pub fn table(results: &[StressResult]) -> String {
    let mut out = String::from(
        "| conns | s | correct | shed 503 | wrong | other 5xx | conn errors | p50 ms | p99 ms | host p99 ms | correct/s | RSS first 10 s MiB | RSS last 10 s MiB |\n",
    );
    out += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for r in results {
        out += &format!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} | {:.1} |\n",
            r.connections,
            r.seconds,
            r.counts.correct,
            r.counts.shed,
            r.counts.wrong,
            r.counts.server_errors,
            r.counts.connection_errors,
            r.p50_ms,
            r.p99_ms,
            r.host_p99_ms,
            r.counts.correct as f64 / r.seconds,
            r.rss_first_mib,
            r.rss_last_mib,
        );
    }
    out
}
