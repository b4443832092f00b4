//! Prometheus metrics of `spinfer up`: what is recorded and the listener that serves it.
//!
//! The `metrics` macros record into whatever recorder is installed, and into nothing when none
//! is (no `--metrics-listen`), so the request path calls them unconditionally. The exposition
//! text is rendered by `metrics-exporter-prometheus`, on an address of its own, so the app's own
//! routes stay the app's.

use std::convert::Infallible;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Requests answered, by route template, method and status.
pub const REQUESTS: &str = "spinfer_requests_total";
/// Time from the request's arrival to its response, by route template and model.
pub const REQUEST_SECONDS: &str = "spinfer_request_duration_seconds";
/// Inference time the component reports (`server-timing: infer`), by model.
pub const INFERENCE_SECONDS: &str = "spinfer_inference_duration_seconds";
/// Time a request waited for a running slot, by outcome (`admitted` or `shed`).
pub const QUEUE_SECONDS: &str = "spinfer_queue_wait_seconds";
/// Requests refused by the host before or instead of the component, by reason.
pub const REJECTED: &str = "spinfer_requests_rejected_total";
/// Instances made, by component.
pub const INSTANCES_STARTED: &str = "spinfer_instances_started_total";
/// Requests served by an instance that had served one before, by component.
pub const INSTANCES_REUSED: &str = "spinfer_instance_reuses_total";
/// Instances alive now, by component.
pub const INSTANCES_LIVE: &str = "spinfer_instances_live";

/// Latency buckets, in seconds: 100 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// Why the host refused a request.
#[derive(Clone, Copy, Debug)]
pub enum Rejection {
    /// The body is over the limit (413).
    Size,
    /// The request ran past its deadline (504).
    Deadline,
    /// Too many requests in flight, or no instance to be had (503).
    Overload,
    /// The body did not arrive in time (408).
    Slow,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::Size => "size",
            Rejection::Deadline => "deadline",
            Rejection::Overload => "overload",
            Rejection::Slow => "slow",
        }
    }
}

/// What one answered request contributes.
pub struct RequestRecord<'a> {
    pub route: &'a str,
    pub method: &'a http::Method,
    pub status: u16,
    /// The model that answered, when the component named one.
    pub model: Option<&'a str>,
    pub elapsed: Duration,
    /// The component's own inference time, in milliseconds.
    pub infer_ms: Option<f64>,
}

/// A bounded method label: the methods HTTP defines, else `other`.
fn method_label(method: &http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

pub fn request(record: &RequestRecord) {
    let model = record.model.unwrap_or("none").to_string();
    counter!(
        REQUESTS,
        "route" => record.route.to_string(),
        "method" => method_label(record.method),
        "status" => record.status.to_string()
    )
    .increment(1);
    histogram!(REQUEST_SECONDS, "route" => record.route.to_string(), "model" => model.clone())
        .record(record.elapsed.as_secs_f64());
    if let Some(ms) = record.infer_ms {
        histogram!(INFERENCE_SECONDS, "model" => model).record(ms / 1e3);
    }
}

pub fn rejected(reason: Rejection) {
    counter!(REJECTED, "reason" => reason.label()).increment(1);
}

/// How long a request waited for a running slot; `admitted` says whether it got one.
pub fn queue_wait(waited: Duration, admitted: bool) {
    let outcome = if admitted { "admitted" } else { "shed" };
    histogram!(QUEUE_SECONDS, "outcome" => outcome).record(waited.as_secs_f64());
}

pub fn instance_started(component: &str) {
    counter!(INSTANCES_STARTED, "component" => component.to_string()).increment(1);
    gauge!(INSTANCES_LIVE, "component" => component.to_string()).increment(1.0);
}

pub fn instance_reused(component: &str) {
    counter!(INSTANCES_REUSED, "component" => component.to_string()).increment(1);
}

pub fn instance_dropped(component: &str) {
    gauge!(INSTANCES_LIVE, "component" => component.to_string()).decrement(1.0);
}

/// Installs the Prometheus recorder for this process (once) and returns its handle.
pub fn install() -> Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    metrics::describe_counter!(REQUESTS, "Requests answered, by route, method and status.");
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its response, by route and model."
    );
    metrics::describe_histogram!(
        INFERENCE_SECONDS,
        metrics::Unit::Seconds,
        "Inference time reported by the component, by model."
    );
    metrics::describe_histogram!(
        QUEUE_SECONDS,
        metrics::Unit::Seconds,
        "Time a request waited for a running slot, by outcome: admitted or shed."
    );
    metrics::describe_counter!(
        REJECTED,
        "Requests refused for size, deadline, overload or a slow body."
    );
    metrics::describe_counter!(INSTANCES_STARTED, "Component instances made.");
    metrics::describe_counter!(INSTANCES_REUSED, "Requests served by an already used instance.");
    metrics::describe_gauge!(INSTANCES_LIVE, "Component instances alive.");
    Ok(handle)
}

/// Serves the exposition text at `/metrics` (any other path is 404) until the task is dropped.
pub async fn serve(handle: PrometheusHandle, listener: TcpListener) {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let response = if request.uri().path() == "/metrics" {
                    http::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        .body(Full::new(Bytes::from(handle.render())))
                } else {
                    http::Response::builder()
                        .status(http::StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n")))
                };
                async move { Ok::<_, Infallible>(response.expect("a static response is valid")) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_a_bounded_label() {
        assert_eq!(method_label(&http::Method::POST), "POST");
        assert_eq!(method_label(&http::Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
