//! Shared fixtures: the repo's paths, MNIST test images, and an in-process app built from
//! spin.toml with the real component.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use spinfer_mnist::{Mnist, Split};
use spinfer_serve::{App, AppOptions, Manifest};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What every test app of Spinfer's runs with: the runner composed as `spinfer up` composes
/// it, the repo's compiled-component cache, and a deadline sized for a loaded 2-core CI
/// machine (which, not a guest, sets the pace here).
pub fn options() -> AppOptions {
    AppOptions {
        cache_dir: Some(root().join("target/spinfer-cache")),
        request_timeout: std::time::Duration::from_secs(120),
        ..spinfer_app::options()
    }
}

/// The `spinfer` binary that `cargo test --workspace` builds beside this test's own executable.
pub fn spinfer_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join("spinfer");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release -p spinfer`",
        path.display()
    );
    path
}

/// The built classifier component; tests fail with the build command when it is missing.
pub fn component_path() -> PathBuf {
    let path = root().join("target/wasm32-wasip2/wasm/spinfer_classifier.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p spinfer-classifier --target wasm32-wasip2 --profile wasm`",
        path.display()
    );
    path
}

pub fn test_set() -> &'static Split {
    static TEST: OnceLock<Split> = OnceLock::new();
    TEST.get_or_init(|| Mnist::load_test(&root().join("data/mnist")).expect("MNIST test set"))
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // The host's logs (access lines, component errors) in the test output.
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        // More workers than cores: tests drive several apps at once from their own threads, and
        // a worker busy in a guest must not leave another request's body task unpolled.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(6)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// The app of the repo's spin.toml, loaded once per test binary, compiled-component cache in target/.
pub fn app() -> Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    APP.get_or_init(|| app_with(&options())).clone()
}

/// A new app of the repo's spin.toml with `options`.
pub fn app_with(options: &AppOptions) -> Arc<App> {
    component_path();
    let manifest = Manifest::load(&root().join("spin.toml")).expect("spin.toml");
    let _guard = runtime().enter();
    Arc::new(App::load(&manifest, options).expect("app loads"))
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error reply: the status and a JSON `{"error": "..."}` body.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let json = self.json();
        let message = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {json}"));
        assert!(!message.is_empty());
        message.to_string()
    }
}

/// Sends one request through `App::handle`, in process.
pub fn call(method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    call_app(&app(), method, uri, headers, body)
}

/// A JSON (or empty) request to a given app.
pub fn send(app: &App, method: &str, uri: &str, body: Vec<u8>) -> Reply {
    call_app(app, method, uri, &[("content-type", "application/json")], body)
}

pub fn call_app(
    app: &App,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).expect("valid request");
    runtime().block_on(async {
        let response = app.handle(request).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    })
}

pub fn get(uri: &str) -> Reply {
    call("GET", uri, &[], Bytes::new())
}

pub fn post_json(uri: &str, value: &serde_json::Value) -> Reply {
    call(
        "POST",
        uri,
        &[("content-type", "application/json")],
        serde_json::to_vec(value).unwrap(),
    )
}

/// Test image `index` as 0–255 pixel values.
pub fn pixels(index: usize) -> Vec<u8> {
    test_set().image(index).to_vec()
}

pub fn png(pixels: &[u8], side: u32) -> Vec<u8> {
    let image = image::GrayImage::from_raw(side, side, pixels.to_vec()).expect("square image");
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG encodes");
    out
}
