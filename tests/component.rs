//! The real classifier component, instantiated by wasmtime with wasi-http in process (instances
//! reused as Spin 4 and `spinfer up` run them, or fresh per request), through every endpoint.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use spinfer_engine::{Model, argmax};
use spinfer_serve::{AppOptions, ReusePolicy};
use spinfer_tests::*;

const MODEL: &str = "mnist-compact";

fn label_of(reply: &Reply) -> usize {
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["label"].as_u64().expect("label") as usize
}

#[test]
fn healthz_lists_the_models() {
    let reply = get("/healthz");
    assert_eq!(reply.status, 200);
    let json = reply.json();
    assert_eq!(json["status"], "ok");
    let models: Vec<&str> = json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        models.contains(&"mnist-cnn") && models.contains(&"mnist-seed"),
        "{models:?}"
    );
}

#[test]
fn labels_equal_native_tract_on_real_test_images() {
    let native = Model::from_path(&root().join(format!("models/{MODEL}.onnx"))).unwrap();
    let test = test_set();
    let mut correct = 0;
    for index in 0..120 {
        let reply = post_json("/predict", &json!({ "pixels": pixels(index) }));
        let ours = label_of(&reply);
        let expected = argmax(&native.classify(&test.normalized([index])).unwrap());
        assert_eq!(ours, expected, "image {index}");
        correct += usize::from(ours == test.labels[index] as usize);
        let json = reply.json();
        assert_eq!(json["model"], MODEL);
        assert_eq!(json["top_k"].as_array().unwrap().len(), 3);
        let sum: f64 = json["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    }
    assert!(correct >= 117, "{correct}/120 correct");
}

#[test]
fn server_timing_and_top_k() {
    let reply = post_json(
        "/predict?top_k=5&model=mnist-seed",
        &json!({ "pixels": pixels(0) }),
    );
    assert_eq!(reply.status, 200);
    assert!(reply.header("server-timing").unwrap().contains("infer;dur="));
    let json = reply.json();
    assert_eq!(json["model"], "mnist-seed");
    assert_eq!(json["top_k"].as_array().unwrap().len(), 5);
    assert_eq!(json["label"], 7);
}

#[test]
fn normalized_pixels_give_the_same_answer() {
    let raw = post_json("/predict", &json!({ "pixels": pixels(1) })).json();
    let scaled: Vec<f64> = pixels(1).iter().map(|&p| f64::from(p) / 255.0).collect();
    let normalized = post_json("/predict", &json!({ "pixels": scaled, "normalized": true })).json();
    assert_eq!(raw["probabilities"], normalized["probabilities"]);
}

#[test]
fn png_digits_classify_right_either_polarity() {
    let test = test_set();
    for index in [0, 1, 2, 3, 4, 7, 11, 18] {
        let label = test.labels[index] as usize;
        let original = pixels(index);
        let inverted: Vec<u8> = original.iter().map(|p| 255 - p).collect();
        // Larger than 28×28, as a user's drawing would be.
        let big = |px: &[u8]| {
            let img = image::GrayImage::from_raw(28, 28, px.to_vec()).unwrap();
            image::imageops::resize(&img, 112, 112, image::imageops::FilterType::Triangle).into_raw()
        };
        for (what, body) in [
            ("white on black", png(&original, 28)),
            ("black on white", png(&big(&inverted), 112)),
        ] {
            let reply = call("POST", "/predict", &[("content-type", "image/png")], body.clone());
            assert_eq!(label_of(&reply), label, "image {index}, {what}");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
            let reply = post_json("/predict", &json!({ "image": b64 }));
            assert_eq!(label_of(&reply), label, "image {index}, {what}, base64");
        }
    }
}

#[test]
fn jpeg_upload_classifies() {
    let image = image::GrayImage::from_raw(28, 28, pixels(0)).unwrap();
    let mut jpeg = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let reply = call("POST", "/predict", &[("content-type", "image/jpeg")], jpeg);
    assert_eq!(label_of(&reply), 7);
}

#[test]
fn batch_of_64_equals_64_single_calls() {
    let instances: Vec<Vec<u8>> = (100..164).map(pixels).collect();
    let batch = post_json("/predict", &json!({ "instances": instances }));
    assert_eq!(batch.status, 200);
    let batch = batch.json();
    let predictions = batch["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 64);
    for (i, prediction) in predictions.iter().enumerate() {
        let single = post_json("/predict", &json!({ "pixels": pixels(100 + i) })).json();
        assert_eq!(prediction["label"], single["label"], "instance {i}");
        let a = prediction["probabilities"].as_array().unwrap();
        let b = single["probabilities"].as_array().unwrap();
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5,
                "instance {i}"
            );
        }
    }
}

#[test]
fn open_inference_protocol_metadata() {
    let server = get("/v2");
    assert_eq!(server.status, 200);
    assert_eq!(server.json()["name"], "spinfer");
    assert_eq!(server.json()["extensions"], json!(["binary_tensor_data"]));
    assert_eq!(get("/v2/health/live").status, 200);
    assert_eq!(get("/v2/health/ready").status, 200);
    let model = get("/v2/models/mnist-cnn").json();
    assert_eq!(model["platform"], "onnx");
    assert_eq!(model["versions"], json!(["1"]));
    assert_eq!(
        model["inputs"],
        json!([{ "name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28] }])
    );
    assert_eq!(
        model["outputs"],
        json!([{ "name": "probs", "datatype": "FP32", "shape": [-1, 10] }])
    );
    assert_eq!(get("/v2/models/mnist-cnn/versions/1").status, 200);
    assert_eq!(get("/v2/models/mnist-cnn/ready").status, 200);
    assert_eq!(get("/v2/models/mnist-cnn/versions/1/ready").status, 200);
}

fn infer_body(indices: &[usize], nested: bool) -> Value {
    let test = test_set();
    let flat = test.normalized(indices.iter().copied());
    let data = if nested {
        json!(flat.chunks(28).map(|row| row.to_vec()).collect::<Vec<_>>())
    } else {
        json!(flat)
    };
    json!({ "id": "req-1", "inputs": [{ "name": "input", "shape": [indices.len(), 1, 28, 28], "datatype": "FP32", "data": data }] })
}

#[test]
fn open_inference_protocol_infer_json() {
    let native = Model::from_path(&root().join("models/mnist-cnn.onnx")).unwrap();
    let indices = [0, 1, 2];
    for nested in [false, true] {
        let reply = post_json("/v2/models/mnist-cnn/infer", &infer_body(&indices, nested));
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let json = reply.json();
        assert_eq!(json["model_name"], "mnist-cnn");
        assert_eq!(json["model_version"], "1");
        assert_eq!(json["id"], "req-1");
        let output = &json["outputs"][0];
        assert_eq!(output["name"], "probs");
        assert_eq!(output["datatype"], "FP32");
        assert_eq!(output["shape"], json!([3, 10]));
        let data: Vec<f32> = output["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let expected = native.classify(&test_set().normalized(indices)).unwrap();
        for (a, b) in data.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5);
        }
    }
    let versioned = post_json("/v2/models/mnist-cnn/versions/1/infer", &infer_body(&[0], false));
    assert_eq!(versioned.status, 200);
}

#[test]
fn open_inference_protocol_binary_both_ways() {
    let indices = [5, 6];
    let values = test_set().normalized(indices);
    let header = json!({
        "inputs": [{ "name": "input", "shape": [2, 1, 28, 28], "datatype": "FP32", "parameters": { "binary_data_size": values.len() * 4 } }],
        "outputs": [{ "name": "probs", "parameters": { "binary_data": true } }],
    });
    let mut body = serde_json::to_vec(&header).unwrap();
    let header_len = body.len().to_string();
    body.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    let reply = call(
        "POST",
        "/v2/models/mnist-cnn/infer",
        &[
            ("content-type", "application/octet-stream"),
            ("inference-header-content-length", &header_len),
        ],
        body,
    );
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let json_len: usize = reply
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let json: Value = serde_json::from_slice(&reply.body[..json_len]).unwrap();
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 80);
    assert!(json["outputs"][0].get("data").is_none());
    let probs: Vec<f32> = reply.body[json_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(probs.len(), 20);
    assert_eq!(argmax(&probs[..10]), test_set().labels[5] as usize);
    assert_eq!(argmax(&probs[10..]), test_set().labels[6] as usize);
}

#[test]
fn errors_have_status_and_json_message() {
    let png_header = [("content-type", "image/png")];
    // 400: malformed or invalid input.
    post_json("/predict", &json!({ "pixels": [1, 2, 3] })).assert_error(400);
    call(
        "POST",
        "/predict",
        &[("content-type", "application/json")],
        "{\"pixels\": [1,",
    )
    .assert_error(400);
    let mut values = vec![0.0; 784];
    values[10] = 300.0;
    post_json("/predict", &json!({ "pixels": values })).assert_error(400);
    post_json("/predict", &json!({ "image": "not base64!" })).assert_error(400);
    call("POST", "/predict", &png_header, "definitely not a png").assert_error(400);
    post_json("/predict?top_k=0", &json!({ "pixels": pixels(0) })).assert_error(400);
    post_json("/predict", &json!({})).assert_error(400);
    let mut wrong_shape = infer_body(&[0], false);
    wrong_shape["inputs"][0]["shape"] = json!([1, 784]);
    post_json("/v2/models/mnist-cnn/infer", &wrong_shape).assert_error(400);
    let mut wrong_type = infer_body(&[0], false);
    wrong_type["inputs"][0]["datatype"] = json!("INT64");
    post_json("/v2/models/mnist-cnn/infer", &wrong_type).assert_error(400);
    let mut short = infer_body(&[0], false);
    short["inputs"][0]["data"] = json!([1.0, 2.0]);
    post_json("/v2/models/mnist-cnn/infer", &short).assert_error(400);
    // 404: unknown route, model or version.
    get("/nope").assert_error(404);
    post_json("/predict?model=nope", &json!({ "pixels": pixels(0) })).assert_error(404);
    get("/v2/models/nope").assert_error(404);
    get("/v2/models/mnist-cnn/versions/9").assert_error(404);
    post_json("/v2/models/nope/infer", &infer_body(&[0], false)).assert_error(404);
    // 405 with Allow.
    let reply = get("/predict");
    reply.assert_error(405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = call("DELETE", "/healthz", &[], "");
    reply.assert_error(405);
    assert_eq!(reply.header("allow"), Some("GET"));
    // 415: unsupported content type.
    call("POST", "/predict", &[("content-type", "text/plain")], "7").assert_error(415);
    call("POST", "/predict", &[], "7").assert_error(415);
    // 413: body over the limit, refused by the host before the component runs.
    let huge = vec![b' '; options().max_body + 1];
    call("POST", "/predict", &[("content-type", "application/json")], huge).assert_error(413);
    // The server is still healthy after all that.
    assert_eq!(get("/healthz").status, 200);
}

#[test]
fn with_a_reuse_count_of_1_every_request_gets_a_fresh_instance() {
    // `spinfer up --max-instance-reuse-count 1`.
    let app = app_with(&AppOptions {
        reuse: ReusePolicy {
            max_reuse: 1,
            ..ReusePolicy::SPIN
        },
        ..options()
    });
    for _ in 0..3 {
        assert_eq!(call_app(&app, "GET", "/healthz", &[], Bytes::new()).status, 200);
    }
    assert_eq!(app.instances_started(), 3);
}

#[test]
fn instances_are_reused_by_default_as_spin_4_does() {
    assert_eq!(AppOptions::default().reuse, ReusePolicy::SPIN);
    assert_eq!(
        ReusePolicy::SPIN,
        ReusePolicy {
            max_reuse: 128,
            max_concurrent: 16,
            idle_timeout: std::time::Duration::from_secs(1),
        }
    );
    let app = app_with(&options());
    for index in 0..5 {
        let reply = call_app(
            &app,
            "POST",
            "/predict",
            &[("content-type", "application/json")],
            serde_json::to_vec(&json!({ "pixels": pixels(index) })).unwrap(),
        );
        assert_eq!(reply.status, 200);
    }
    assert_eq!(
        app.instances_started(),
        1,
        "five requests in sequence share one instance"
    );
}

#[test]
fn past_the_in_flight_limit_requests_are_shed_with_503_and_retry_after() {
    let app = app_with(&AppOptions {
        max_in_flight: 1,
        ..options()
    });
    // Request A holds the only slot while its body is still coming.
    let (sender, receiver) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>(1);
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let request = http::Request::post("/predict")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let runtime = runtime();
    let first = {
        let app = app.clone();
        runtime.spawn(async move { app.handle(request).await.status() })
    };
    // Request B finds no slot: an immediate 503 that says when to retry.
    let shed = (0..500)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            call_app(&app, "GET", "/healthz", &[], Bytes::new())
        })
        .find(|reply| reply.status == 503)
        .expect("a second request is shed while the first holds the only slot");
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert!(shed.assert_error(503).contains("capacity"));
    // A finishes normally, and the slot is free again.
    let pixels = serde_json::to_vec(&json!({ "pixels": pixels(0) })).unwrap();
    runtime
        .block_on(sender.send(Ok(hyper::body::Frame::data(Bytes::from(pixels)))))
        .unwrap();
    drop(sender);
    assert_eq!(runtime.block_on(first).unwrap(), 200);
    assert_eq!(call_app(&app, "GET", "/healthz", &[], Bytes::new()).status, 200);
}

#[test]
fn the_bare_runner_serves_another_spin_app_and_answers_its_own_errors_in_plain_text() {
    // A Spin app that is not Spinfer's (the faulty test component alone), on the runner with
    // no hooks at all: it routes by the manifest and writes its own errors as plain text.
    let faulty = root().join("target/wasm32-wasip2/wasm/spinfer_faulty.wasm");
    assert!(
        faulty.exists(),
        "{} is missing: scripts/test.sh builds it",
        faulty.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"spin_manifest_version = 2

[application]
name = "another-app"

[[trigger.http]]
route = "/tools/..."
component = "faulty"

[component.faulty]
source = "{}"
"#,
            faulty.display()
        ),
    )
    .unwrap();
    let manifest = spinfer_serve::Manifest::load(&manifest).unwrap();
    let bare = AppOptions {
        cache_dir: options().cache_dir,
        max_body: 1_000,
        ..AppOptions::default()
    };
    let app = {
        let _guard = runtime().enter();
        std::sync::Arc::new(spinfer_serve::App::load(&manifest, &bare).unwrap())
    };
    let count = call_app(&app, "GET", "/tools/count", &[], Bytes::new());
    assert_eq!(count.status, 200);
    assert_eq!(&count.body[..], b"1");
    // The runner's request id reaches the component.
    let echoed = call_app(
        &app,
        "GET",
        "/tools/request-id",
        &[("x-request-id", "abc-1")],
        Bytes::new(),
    );
    assert_eq!(&echoed.body[..], b"abc-1");
    let missing = call_app(&app, "GET", "/predict", &[], Bytes::new());
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(&missing.body[..], b"no route for /predict\n");
    let large = call_app(&app, "POST", "/tools/count", &[], vec![b'x'; 1_001]);
    assert_eq!(large.status, 413);
    assert_eq!(
        &large.body[..],
        b"request body is larger than the 1000-byte limit\n"
    );
}
