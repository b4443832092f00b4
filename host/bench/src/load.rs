//! The load generator: closed-loop keep-alive HTTP/1.1 connections over real TCP, every answer
//! checked, latency percentiles and throughput per connection count.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

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

#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub connections: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
}

/// One server under test.
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
}

/// One row of the table: a target at each connection count.
pub struct Row {
    pub name: String,
    pub results: Vec<LoadResult>,
}

/// `connections` keep-alive connections, each sending `body` to `path` back to back for
/// `duration` (after `warmup`), every answer checked for status 200.
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
    Ok(LoadResult {
        connections,
        requests: latencies.len(),
        seconds: duration.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// Every target at every connection count, one after another (never two at once).
pub async fn measure(targets: &[Target], body: Bytes, options: &LoadOptions) -> Result<Vec<Row>> {
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

/// The `p` quantile (0–1) of `sorted`, nearest rank; NaN when there is none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(connections: usize, p50_ms: f64, requests: usize) -> LoadResult {
        LoadResult {
            connections,
            requests,
            seconds: 1.0,
            p50_ms,
            p99_ms: p50_ms * 2.0,
        }
    }

    #[test]
    fn the_table_compares_each_row_with_the_first() {
        let rows = [
            Row {
                name: "native".into(),
                results: vec![result(1, 1.0, 1000)],
            },
            Row {
                name: "wasm".into(),
                results: vec![result(1, 2.0, 500)],
            },
        ];
        let table = table(&rows);
        assert!(
            table.contains("| wasm | 1 | 2.000 | 4.000 | 500 | 2.00× | 0.50× |"),
            "{table}"
        );
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
