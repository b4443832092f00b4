//! A short real training run, and the exported ONNX checked against the framework.

use std::path::Path;

use spinfer_engine::Classifier;
use spinfer_mnist::Mnist;
use spinfer_train::metrics::{Report, predictions};
use spinfer_train::model::Arch;
use spinfer_train::onnx_export::{self, ExportInfo};
use spinfer_train::train::{self, TrainConfig};
use spinfer_train::verify;

fn mnist() -> Mnist {
    Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")).unwrap()
}

#[test]
fn short_training_run_learns_and_exports_faithfully() {
    let mnist = mnist();
    let config = TrainConfig {
        arch: Arch::Seed,
        epochs: 2,
        batch_size: 128,
        lr: 1e-3,
        seed: 7,
        limit: Some(8_000),
        progress: false,
    };
    let trained = train::train(&mnist, &config);
    assert_eq!(trained.history.len(), 2);
    assert!(trained.history[0].train_loss.is_finite());

    let test = mnist.test.head(1_000);
    let indices: Vec<usize> = (0..test.len()).collect();
    let burn_probs = train::probabilities(&trained.net, &test, &indices);
    let accuracy = Report::new(&test.labels, &predictions(&burn_probs)).accuracy();
    assert!(accuracy >= 0.90, "accuracy {accuracy} after two short epochs");

    let labels: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let onnx = onnx_export::export(
        &trained.net.layers(),
        &ExportInfo {
            name: "test",
            version: 1,
            description: "test",
            labels: &labels,
            preprocessing: "x/255",
        },
    );
    let check = verify::against_tract(&onnx, &test, &burn_probs).unwrap();
    assert_eq!(check.disagreements, 0);
    assert!(check.max_abs_diff <= 1e-5, "max |Δp| {}", check.max_abs_diff);
    let meta = onnx_export::metadata(&onnx).unwrap();
    assert!(meta.contains(&(
        "labels".into(),
        "[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]".into()
    )));

    // The other networks export faithfully too (untrained weights are enough for the graph).
    let device = train::device();
    let batch = mnist.test.head(64);
    let idx: Vec<usize> = (0..64).collect();
    for arch in [Arch::Improved, Arch::Lean] {
        let net = arch.init(&device);
        let reference = train::probabilities(&net, &batch, &idx);
        let onnx = onnx_export::export(
            &net.layers(),
            &ExportInfo {
                name: "graph-check",
                version: 1,
                description: &arch.describe(),
                labels: &labels,
                preprocessing: "",
            },
        );
        let tract = Classifier::from_onnx(&onnx)
            .unwrap()
            .run(&batch.normalized(idx.clone()))
            .unwrap();
        let max = tract
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max <= 1e-5, "{arch:?}: max |Δp| {max}");
    }
}

#[test]
fn committed_models_match_their_cards() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    for (name, min_accuracy) in [("mnist-seed", 0.983), ("mnist-cnn", 0.993), ("mnist-lean", 0.992)] {
        let onnx = std::fs::read(models.join(format!("{name}.onnx"))).unwrap();
        let card: spinfer_protocol::ModelCard =
            serde_json::from_slice(&std::fs::read(models.join(format!("{name}.json"))).unwrap()).unwrap();
        assert_eq!(
            card.sha256,
            spinfer_train::pipeline::sha256_hex(&onnx),
            "{name}: card hash"
        );
        assert!(
            card.test_accuracy >= min_accuracy,
            "{name}: card says {}",
            card.test_accuracy
        );
        // The accuracy is re-measured here with native tract, not taken from the card.
        let classifier = Classifier::from_onnx(&onnx).unwrap();
        let test = mnist().test;
        let probs = verify::tract_probabilities(&classifier, &test).unwrap();
        let report = Report::new(&test.labels, &predictions(&probs));
        assert!(report.accuracy() >= min_accuracy, "{name}: {}", report.accuracy());
        assert!(
            (report.accuracy() - card.test_accuracy).abs() < 1e-9,
            "{name}: card disagrees"
        );
    }
}
