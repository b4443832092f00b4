//! The wasi-nn variant: the `classifier-nn` component through wasmtime, with the host running
//! the model natively (tract), against the pure-wasm component.

use std::sync::Arc;

use serde_json::json;
use spinfer_nn::{NnBackend, NnOptions, NnTarget};
use spinfer_serve::{App, AppOptions, Manifest};
use spinfer_tests::*;

fn nn_app(models: Option<&std::path::Path>) -> Arc<App> {
    nn_app_with(models, NnBackend::Tract, NnTarget::Cpu).expect("nn app loads")
}

fn nn_app_with(
    models: Option<&std::path::Path>,
    backend: NnBackend,
    target: NnTarget,
) -> anyhow::Result<Arc<App>> {
    let path = root().join("target/wasm32-wasip2/wasm/spinfer_classifier_nn.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `spinfer build -f spin-nn.toml`",
        path.display()
    );
    let mut manifest = Manifest::load(&root().join("spin-nn.toml")).unwrap();
    if let Some(models) = models {
        let def = manifest.component.get_mut("classifier-nn").unwrap();
        def.files = vec![spinfer_serve::manifest::FileMount::Mapped {
            source: models.to_path_buf(),
            destination: "/models".into(),
        }];
        // Mounted in place, so that what the test adds later is seen by the guest.
        def.exclude_files.clear();
        // The test's folder holds mnist-cnn; the app's default names it.
        manifest.variables.get_mut("default_model").unwrap().default = Some("mnist-cnn".into());
    }
    let options = AppOptions {
        nn: Some(spinfer_app::nn_settings(NnOptions { backend, target })),
        ..options()
    };
    let _guard = runtime().enter();
    Ok(Arc::new(App::load(&manifest, &options)?))
}

fn batch(app: &App, start: usize, count: usize) -> Vec<serde_json::Value> {
    let instances: Vec<Vec<u8>> = (start..start + count).map(pixels).collect();
    let body = serde_json::to_vec(&json!({ "instances": instances })).unwrap();
    let reply = send(app, "POST", "/predict", body);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["predictions"].as_array().unwrap().clone()
}

fn assert_agrees_on_1000_images(nn: &App) {
    // One comparison at a time: each is CPU-bound on both apps, and two at once on two cores
    // only measure the scheduler.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = app();
    for start in (0..1000).step_by(50) {
        let ours = batch(nn, start, 50);
        let theirs = batch(&wasm, start, 50);
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a["label"], b["label"], "image {}", start + i);
            let pa = a["probabilities"].as_array().unwrap();
            let pb = b["probabilities"].as_array().unwrap();
            for (x, y) in pa.iter().zip(pb) {
                assert!(
                    (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1e-4,
                    "image {}",
                    start + i
                );
            }
        }
    }
}

#[test]
fn nn_component_with_tract_agrees_with_the_pure_wasm_component() {
    assert_agrees_on_1000_images(&nn_app(None));
}

/// Like wasmtime's own wasi-nn tests: skipped with a message when ONNX Runtime is missing
/// locally, a failure in CI (where `.ci/run` installs the PyPI wheel).
#[test]
fn nn_component_with_onnx_runtime_cpu_agrees_with_the_pure_wasm_component() {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must test the ONNX Runtime backend: set ORT_DYLIB_PATH (scripts/test.sh does)"
        );
        eprintln!("skipping: ORT_DYLIB_PATH is not set (the onnxruntime wheel's capi/libonnxruntime.so.*)");
        return;
    }
    let app = nn_app_with(None, NnBackend::Ort, NnTarget::Cpu).expect("ONNX Runtime backend starts");
    assert_agrees_on_1000_images(&app);
    // The CPU wheel has no CUDA: asking for the GPU must fail at start, not fall back.
    let err = nn_app_with(None, NnBackend::Ort, NnTarget::Gpu)
        .err()
        .expect("no GPU here");
    assert!(format!("{err:#}").contains("CUDA"), "{err:#}");
}

#[test]
fn nn_component_serves_the_whole_api() {
    let nn = nn_app(None);
    let reply = send(&nn, "GET", "/healthz", Vec::new());
    assert_eq!(reply.status, 200);
    assert_eq!(
        send(&nn, "GET", "/v2/models/mnist-cnn/ready", Vec::new()).status,
        200
    );
    let body = serde_json::to_vec(&json!({ "pixels": [1, 2] })).unwrap();
    send(&nn, "POST", "/predict", body).assert_error(400);
    let body = serde_json::to_vec(&json!({ "pixels": pixels(0) })).unwrap();
    send(&nn, "POST", "/predict?model=nope", body).assert_error(404);
}

#[test]
fn a_model_the_host_did_not_load_is_not_found() {
    // The guest sees a card that appeared after start; the host's allow-list does not have it.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    for ext in ["onnx", "json"] {
        std::fs::copy(
            root().join(format!("models/mnist-cnn.{ext}")),
            dir.join(format!("mnist-cnn.{ext}")),
        )
        .unwrap();
    }
    let nn = nn_app(Some(dir));
    for ext in ["onnx", "json"] {
        std::fs::copy(
            root().join(format!("models/mnist-seed.{ext}")),
            dir.join(format!("mnist-seed.{ext}")),
        )
        .unwrap();
    }
    let body = serde_json::to_vec(&json!({ "pixels": pixels(0) })).unwrap();
    let message = send(&nn, "POST", "/predict?model=mnist-seed", body).assert_error(404);
    assert!(message.contains("mnist-seed"), "{message}");
}

#[test]
fn gpu_target_without_a_gpu_backend_fails_at_start() {
    let err = nn_app_with(None, NnBackend::Tract, NnTarget::Gpu)
        .err()
        .expect("a GPU target must not start on tract");
    assert!(format!("{err:#}").contains("CPU only"), "{err:#}");
}
