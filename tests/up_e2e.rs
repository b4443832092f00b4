//! `spinfer up` as a user runs it: a real process on an ephemeral port, a real HTTP client.

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;
use spinfer_serve::process::ServerProcess;
use spinfer_tests::{component_path, pixels, root, spinfer_bin};

/// `spinfer up` on the repo's spin.toml with `args`, environment `env`, on an ephemeral port.
fn start_with(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    component_path();
    let mut command = ServerProcess::up_command(&spinfer_bin(), &root().join("spin.toml"), args);
    command
        .env("SPINFER_CACHE_DIR", root().join("target/spinfer-cache"))
        .env_remove("SPIN_VARIABLE_DEFAULT_MODEL")
        .envs(env.iter().copied())
        .stderr(Stdio::inherit());
    ServerProcess::start(command, Duration::from_secs(120)).expect("spinfer up starts")
}

fn start() -> ServerProcess {
    start_with(&[], &[])
}

async fn send(
    addr: &std::net::SocketAddr,
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
        .header("host", addr.to_string());
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
    // The defaults: the 16 concurrent clients below wait their turn, none is shed.
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
                let addr = server.addr;
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

/// The model `/predict` serves by default, through a running server.
fn served_default_model(server: &ServerProcess) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (status, reply) = send(
            &server.addr,
            "POST",
            "/predict",
            Some(json!({ "pixels": pixels(0) })),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        reply["model"].as_str().unwrap().to_string()
    })
}

#[test]
fn the_default_model_is_a_spin_variable_from_each_source_in_spins_order() {
    // The manifest's default.
    assert_eq!(served_default_model(&start()), "mnist-compact");
    // SPIN_VARIABLE_<NAME> outranks the default.
    let env = [("SPIN_VARIABLE_DEFAULT_MODEL", "mnist-seed")];
    assert_eq!(served_default_model(&start_with(&[], &env)), "mnist-seed");
    // --variable outranks the environment.
    let server = start_with(&["--variable", "default_model=mnist-lean"], &env);
    assert_eq!(served_default_model(&server), "mnist-lean");
}

#[test]
fn a_variable_without_a_value_or_a_bad_one_stops_the_start_with_a_clear_error() {
    let run = |args: &[&str], manifest: &std::path::Path| {
        let output = Command::new(spinfer_bin())
            .args(["up", "--listen", "127.0.0.1:0", "-f"])
            .arg(manifest)
            .args(args)
            .env("SPINFER_CACHE_DIR", root().join("target/spinfer-cache"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let spin_toml = root().join("spin.toml");
    let error = run(&["--variable", "no_such=1"], &spin_toml);
    assert!(error.contains("no_such"), "{error}");
    let error = run(&["--variable", "Default-Model=x"], &spin_toml);
    assert!(error.contains("not a valid variable name"), "{error}");

    // A required variable with no value: the manifest in a temporary folder, its paths absolute.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&spin_toml)
        .unwrap()
        .replace(
            "default_model = { default = \"mnist-compact\" }",
            "default_model = { required = true }",
        )
        .replace(
            "source = \"target/",
            &format!("source = \"{}/target/", root().display()),
        )
        .replace(
            "source = \"models\"",
            &format!("source = \"{}/models\"", root().display()),
        );
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, text).unwrap();
    let error = run(&[], &manifest);
    assert!(error.contains("\"default_model\" is required"), "{error}");
}

#[test]
fn serves_https_with_a_certificate_made_here() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = start_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );

    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the served certificate");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = http::Request::get("/healthz")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "ok");

        // Plain HTTP to the HTTPS port gets no answer.
        let plain = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let handshake = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(plain)).await;
        if let Ok((mut sender, connection)) = handshake {
            tokio::spawn(connection);
            let request = http::Request::get("/healthz")
                .body(Full::new(Bytes::new()))
                .unwrap();
            assert!(sender.send_request(request).await.is_err());
        }
    });
}
