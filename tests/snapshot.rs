//! The pre-initialised (Wizer) component against the plain one, a model swap under a snapshot,
//! and the SIMD build against a scalar build.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use spinfer_engine::{Model, argmax};
use spinfer_serve::manifest::FileMount;
use spinfer_serve::{App, AppOptions, Manifest};
use spinfer_tests::*;

fn manifest_with(source: &Path, models: Option<&Path>) -> Manifest {
    let mut manifest = Manifest::load(&root().join("spin.toml")).unwrap();
    let def = manifest.component.get_mut("classifier").unwrap();
    def.source = source.to_path_buf();
    if let Some(models) = models {
        def.files = vec![FileMount::Mapped {
            source: models.to_path_buf(),
            destination: "/models".into(),
        }];
        // The test's folders hold mnist-cnn (or nothing); the app's default names it.
        manifest.variables.get_mut("default_model").unwrap().default = Some("mnist-cnn".into());
    }
    manifest
}

fn load(manifest: &Manifest) -> Arc<App> {
    load_with(manifest, &options())
}

fn load_with(manifest: &Manifest, options: &AppOptions) -> Arc<App> {
    let _guard = runtime().enter();
    Arc::new(App::load(manifest, options).expect("app loads"))
}

/// The JSON of the app's 200 answer to `request`.
fn answer(app: &App, request: http::Request<http_body_util::Full<bytes::Bytes>>) -> serde_json::Value {
    let body = runtime().block_on(async {
        use http_body_util::BodyExt;
        let response = app.handle(request).await;
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap().to_bytes()
    });
    serde_json::from_slice(&body).unwrap()
}

fn probabilities(app: &App, index: usize) -> Vec<f64> {
    let body = serde_json::to_vec(&json!({ "pixels": pixels(index) })).unwrap();
    let request = http::Request::post("/predict")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    answer(app, request)["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}

fn snapshot_path() -> PathBuf {
    let path = root().join("target/wasm32-wasip2/wasm/spinfer_classifier.snapshot.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `spinfer build`",
        path.display()
    );
    path
}

#[test]
fn snapshot_serves_what_the_plain_component_serves() {
    let snapshot = load(&manifest_with(&snapshot_path(), None));
    let plain = load(&manifest_with(&component_path(), None));
    for index in 0..100 {
        assert_eq!(
            probabilities(&snapshot, index),
            probabilities(&plain, index),
            "image {index}"
        );
    }
}

#[test]
fn a_swapped_model_is_detected_and_served() {
    // A models directory whose mnist-cnn is really the seed network: the snapshot's mnist-cnn
    // must not be served for it.
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let models = root().join("models");
    std::fs::copy(models.join("mnist-seed.onnx"), dir.join("mnist-cnn.onnx")).unwrap();
    let mut card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join("mnist-seed.json")).unwrap()).unwrap();
    card["name"] = json!("mnist-cnn");
    std::fs::write(dir.join("mnist-cnn.json"), serde_json::to_vec(&card).unwrap()).unwrap();

    let app = load(&manifest_with(&snapshot_path(), Some(dir)));
    let seed = Model::from_path(&models.join("mnist-seed.onnx")).unwrap();
    let cnn = Model::from_path(&models.join("mnist-cnn.onnx")).unwrap();
    for index in 0..20 {
        let served = probabilities(&app, index);
        let expected = seed.classify(&test_set().normalized([index])).unwrap();
        for (a, b) in served.iter().zip(&expected) {
            assert!(
                (*a as f32 - b).abs() < 1e-5,
                "image {index}: served {a}, seed model says {b}"
            );
        }
        let snapshotted = cnn.classify(&test_set().normalized([index])).unwrap();
        assert!(
            served
                .iter()
                .zip(&snapshotted)
                .any(|(a, b)| (*a as f32 - b).abs() > 1e-6)
        );
    }
}

#[test]
fn healthz_names_the_models_the_folder_holds() {
    // Under a snapshot of four models, /healthz names them from a listing of the folder: all
    // four for a folder of the same files, only those left for a folder that lost some.
    let models = root().join("models");
    let names = |files: &[&str]| {
        let temp = tempfile::tempdir().unwrap();
        for name in files {
            for ext in ["onnx", "json"] {
                let file = format!("{name}.{ext}");
                std::fs::copy(models.join(&file), temp.path().join(&file)).unwrap();
            }
        }
        // A training history beside them is no model.
        std::fs::write(temp.path().join("mnist-cnn-training.json"), b"[]").unwrap();
        let app = load(&manifest_with(&snapshot_path(), Some(temp.path())));
        let request = http::Request::get("/healthz")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        serde_json::from_value::<Vec<String>>(answer(&app, request)["models"].clone()).unwrap()
    };
    let all = ["mnist-cnn", "mnist-compact", "mnist-lean", "mnist-seed"];
    assert_eq!(names(&all), all);
    assert_eq!(names(&["mnist-cnn", "mnist-seed"]), ["mnist-cnn", "mnist-seed"]);
}

/// Probabilities for test images `indices` from `model`: one request each, which runs the
/// batch-1 plan, or one batch request for them all, which runs the symbolic-batch plan.
fn served(app: &App, model: &str, indices: std::ops::Range<usize>, batched: bool) -> Vec<Vec<f64>> {
    let request = |body: serde_json::Value| {
        let body = serde_json::to_vec(&body).unwrap();
        let request = http::Request::post(format!("/predict?model={model}"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        answer(app, request)
    };
    let probabilities = |prediction: &serde_json::Value| -> Vec<f64> {
        let values = prediction["probabilities"].as_array().unwrap();
        values.iter().map(|p| p.as_f64().unwrap()).collect()
    };
    if batched {
        let instances: Vec<_> = indices.map(pixels).collect();
        let answer = request(json!({ "instances": instances }));
        answer["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(probabilities)
            .collect()
    } else {
        indices
            .map(|i| probabilities(&request(json!({ "pixels": pixels(i) }))))
            .collect()
    }
}

#[test]
fn every_gemm_kernel_agrees_with_tracts_own_choice() {
    // The plain component optimises its models in the instance, where the tier reads the
    // choice. 1,000 images through each model's symbolic-batch plan and 100 through its batch-1
    // plan, where the tier chooses (N known); Spinfer's own kernels included. The reference
    // runs tract's ops and kernels only; every other choice runs Spinfer's own ops too (the
    // direct convolution).
    let plain = manifest_with(&component_path(), None);
    let with = |choice: &str| {
        let mut environment = vec![(spinfer_gemm::WASM_GEMM_VAR.into(), choice.into())];
        if choice == "tract" {
            environment.push((spinfer_gemm::WASM_OPS_VAR.into(), "tract".into()));
        }
        load_with(
            &plain,
            &AppOptions {
                environment,
                ..options()
            },
        )
    };
    let tract = with("tract");
    for model in ["mnist-cnn", "mnist-compact"] {
        let reference: Vec<_> = (0..10)
            .flat_map(|b| served(&tract, model, b * 100..(b + 1) * 100, true))
            .collect();
        let single = served(&tract, model, 0..100, false);
        for choice in spinfer_gemm::CHOICES.iter().filter(|c| **c != "tract") {
            let chosen = with(choice);
            let batched: Vec<_> = (0..10)
                .flat_map(|b| served(&chosen, model, b * 100..(b + 1) * 100, true))
                .collect();
            let chosen_single = served(&chosen, model, 0..100, false);
            let compared = batched
                .iter()
                .zip(&reference)
                .chain(chosen_single.iter().zip(&single));
            for (image, (a, b)) in compared.enumerate() {
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() < 1e-5,
                        "{model}, {choice}, image {image}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn simd_build_agrees_with_scalar_build() {
    let scalar = root().join("target/scalar/wasm32-wasip2/wasm-scalar/spinfer_classifier.wasm");
    assert!(
        scalar.exists(),
        "{} is missing: build it with RUSTFLAGS=\"-C target-feature=-simd128\" cargo build -p spinfer-classifier \
         --target wasm32-wasip2 --profile wasm-scalar --target-dir target/scalar",
        scalar.display()
    );
    let simd = load(&manifest_with(&component_path(), None));
    let scalar = load(&manifest_with(&scalar, None));
    for index in 0..100 {
        let a = probabilities(&simd, index);
        let b = probabilities(&scalar, index);
        let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
        assert_eq!(argmax(&as_f32(&a)), argmax(&as_f32(&b)), "image {index}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4, "image {index}");
        }
    }
}

#[test]
fn a_fresh_instance_makes_its_default_model_ready() {
    for source in [snapshot_path(), component_path()] {
        let app = load(&manifest_with(&source, None));
        let handler = app
            .component_for("/predict")
            .expect("a component serves /predict");
        let timing = runtime().block_on(handler.time_ready()).expect("ready");
        assert_eq!(timing.model, "mnist-compact", "{}", source.display());
    }
    // Another default model than at snapshot time: the snapshot's models still serve, with the
    // app's default.
    let options = AppOptions {
        variables: vec![("default_model".into(), "mnist-seed".into())],
        ..options()
    };
    let app = load_with(&manifest_with(&snapshot_path(), None), &options);
    let handler = app.component_for("/predict").unwrap();
    assert_eq!(
        runtime().block_on(handler.time_ready()).unwrap().model,
        "mnist-seed"
    );
    let seed = Model::from_path(&root().join("models/mnist-seed.onnx")).unwrap();
    let expected = seed.classify(&test_set().normalized([3])).unwrap();
    for (a, b) in probabilities(&app, 3).iter().zip(&expected) {
        assert!((*a as f32 - b).abs() < 1e-5, "served {a}, mnist-seed says {b}");
    }

    // Mounted models the snapshot cannot stand in for: the check says so instead of serving.
    let empty = tempfile::tempdir().unwrap();
    let app = load(&manifest_with(&snapshot_path(), Some(empty.path())));
    let handler = app.component_for("/predict").unwrap();
    let error = runtime().block_on(handler.time_ready()).unwrap_err();
    assert!(error.to_string().contains("is not ready"), "{error:#}");
}

/// Snapshots the plain component `plain` twice, with the mounts and environment of `manifest`'s
/// classifier, and checks both are byte-identical to each other and to the build's `built`.
/// Returns the snapshot's sandbox and one of the two files.
fn snapshots_to_the_same_bytes(
    manifest: &str,
    plain: &Path,
    built: &Path,
    dir: &Path,
) -> (spinfer_serve::Sandbox, PathBuf) {
    use sha2::{Digest, Sha256};
    use spinfer_serve::Sandbox;
    use spinfer_serve::snapshot::{Outcome, snapshot};
    let manifest = Manifest::load(&root().join(manifest)).unwrap();
    let sandbox =
        Sandbox::for_snapshot(&manifest, manifest.component("classifier").unwrap(), &options()).unwrap();
    let (first, second) = (dir.join("a.wasm"), dir.join("b.wasm"));
    assert_eq!(snapshot(plain, &sandbox, &first).unwrap(), Outcome::Written);
    assert_eq!(snapshot(plain, &sandbox, &second).unwrap(), Outcome::Written);
    let digest = |path: &Path| Sha256::digest(std::fs::read(path).unwrap());
    assert_eq!(
        digest(&first),
        digest(&second),
        "two snapshots of one component differ"
    );
    assert!(
        built.exists(),
        "{} is missing: run `spinfer build`",
        built.display()
    );
    assert_eq!(
        digest(&first),
        digest(built),
        "the test's snapshot differs from the build's"
    );
    (sandbox, first)
}

#[test]
fn the_same_component_snapshots_to_the_same_bytes_and_unchanged_inputs_skip_the_step() {
    use spinfer_serve::Sandbox;
    use spinfer_serve::snapshot::{Outcome, snapshot};
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, first) =
        snapshots_to_the_same_bytes("spin.toml", &component_path(), &snapshot_path(), dir.path());
    // Unchanged inputs: the step is skipped; another environment is another input.
    assert_eq!(
        snapshot(&component_path(), &sandbox, &first).unwrap(),
        Outcome::UpToDate
    );
    let other = Sandbox {
        environment: vec![("X".into(), "1".into())],
        ..sandbox
    };
    assert_eq!(
        snapshot(&component_path(), &other, &first).unwrap(),
        Outcome::Written
    );
}

#[test]
fn the_portable_build_snapshots_to_the_same_bytes() {
    let wasm = root().join("target/wasm32-wasip2/wasm");
    let dir = tempfile::tempdir().unwrap();
    snapshots_to_the_same_bytes(
        "spin-p2.toml",
        &wasm.join("spinfer_classifier_p2.wasm"),
        &wasm.join("spinfer_classifier_p2.snapshot.wasm"),
        dir.path(),
    );
}
