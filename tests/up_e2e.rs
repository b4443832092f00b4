//! `spinfer up` as a user runs it: a real process on an ephemeral port, a real HTTP client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use spinfer_tests::{component_path, pixels, root, spinfer_bin};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    component_path();
    let mut child = Command::new(spinfer_bin())
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(root().join("spin.toml"))
        .env("SPINFER_CACHE_DIR", root().join("target/spinfer-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spinfer starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.split("http://").nth(1) {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("spinfer up prints its address");
    Server { child, addr }
}

async fn send(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    let bytes = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(&body).unwrap())
        }
        None => Bytes::new(),
    };
    let response = sender
        .send_request(request.body(Full::new(bytes)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[test]
fn serves_predictions_over_tcp() {
    let server = start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (status, health) = send(&server.addr, "GET", "/healthz", None).await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok");
        for (index, expected) in [(0, 7), (1, 2), (2, 1)] {
            let (status, reply) = send(
                &server.addr,
                "POST",
                "/predict",
                Some(json!({ "pixels": pixels(index) })),
            )
            .await;
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["label"], expected);
        }
        let (status, reply) = send(&server.addr, "POST", "/predict", Some(json!({ "pixels": [1] }))).await;
        assert_eq!(status, 400);
        assert!(reply["error"].as_str().unwrap().contains("784"));
        // Concurrent clients.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let addr = server.addr.clone();
                tokio::spawn(async move {
                    send(&addr, "POST", "/predict", Some(json!({ "pixels": pixels(i) })))
                        .await
                        .0
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
    });
}
