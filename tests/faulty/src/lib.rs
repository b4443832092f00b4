//! A test-only Spin component that fails on request, so the tests can show what a guest fault
//! does to the requests beside it (`tests/python/test_faults.py`). It answers on the last
//! segment of the path, so that it serves under any route prefix:
//!
//! - `/count`: this instance's request count (1 on a fresh instance);
//! - `/busy?<ms>`: keeps its instance busy for that many milliseconds, then answers;
//! - `/request-id`: the `x-request-id` header the host passed in;
//! - `/trap`: panics (a trap, as the component is built with `panic = "abort"`);
//! - `/oom`: allocates until the instance's memory limit stops it;
//! - `/spin`: loops past any deadline;
//! - `/read?<path>`: tries to read a host file and says what happened;
//! - `/fetch`: tries an outbound HTTP request.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use spin_sdk::http::Request;
use spin_sdk::http_service;

static SERVED: AtomicU64 = AtomicU64::new(0);

fn text(status: u16, body: String) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[http_service]
async fn handle(request: Request) -> http::Response<Full<Bytes>> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let path = request.uri().path();
    let fault = &path[path.rfind('/').unwrap_or(0)..];
    match fault {
        "/count" => text(200, served.to_string()),
        "/busy" => {
            let ms = request.uri().query().and_then(|q| q.parse::<u64>().ok());
            let Some(ms) = ms else {
                return text(400, "busy needs ?<milliseconds>".into());
            };
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            text(200, format!("busy {ms} ms"))
        }
        "/request-id" => {
            let id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok());
            text(200, id.unwrap_or("(none)").to_string())
        }
        "/trap" => panic!("the test asked for a trap"),
        "/oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "/spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "/read" => {
            let path = request.uri().query().unwrap_or("/");
            match std::fs::read(path) {
                Ok(bytes) => text(200, format!("read {} bytes", bytes.len())),
                Err(e) => text(403, format!("cannot read {path}: {e}")),
            }
        }
        "/fetch" => {
            let outbound = http::Request::get("http://127.0.0.1:1/").body(Full::new(Bytes::new()));
            match spin_sdk::http::send(outbound.expect("a valid request")).await {
                Ok(response) => text(200, format!("outbound answered {}", response.status())),
                Err(e) => text(403, format!("outbound refused: {e}")),
            }
        }
        _ => text(404, "no such fault".into()),
    }
}
