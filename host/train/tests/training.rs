//! A short real training run, and the exported ONNX checked against the framework.

use std::path::Path;

use spinfer_engine::Model;
use spinfer_mnist::Mnist;
use spinfer_train::augment::Augment;
use spinfer_train::metrics::{Report, predictions};
use spinfer_train::model::Arch;
use spinfer_train::onnx_export::{self, ExportInfo};
use spinfer_train::train::{self, Schedule, TrainConfig};
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
        schedule: Schedule::Constant,
        augment: None,
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
        let tract = Model::from_onnx(&onnx)
            .unwrap()
            .classify(&batch.normalized(idx.clone()))
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
fn batch_norm_folding_agrees_with_the_unfolded_network() {
    // A short augmented one-cycle run, so the BatchNorms hold real statistics.
    let mnist = mnist();
    let config = TrainConfig {
        arch: Arch::Compact,
        epochs: 1,
        batch_size: 128,
        lr: 1e-2,
        schedule: Schedule::OneCycle,
        augment: Some(Augment::STANDARD),
        seed: 3,
        limit: Some(4_000),
        progress: false,
    };
    let trained = train::train(&mnist, &config);
    assert_eq!(trained.best_epoch, 1);
    let test = mnist.test.head(1_000);
    let indices: Vec<usize> = (0..test.len()).collect();
    // burn runs each BatchNorm as its own op; the export folds them into the convolutions.
    let unfolded = train::probabilities(&trained.net, &test, &indices);
    let labels: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    let onnx = onnx_export::export(
        &trained.net.layers(),
        &ExportInfo {
            name: "fold-check",
            version: 1,
            description: &Arch::Compact.describe(),
            labels: &labels,
            preprocessing: "",
        },
    );
    let check = verify::against_tract(&onnx, &test, &unfolded).unwrap();
    assert!(check.max_abs_diff <= 1e-4, "max |Δp| {}", check.max_abs_diff);
    let ops: Vec<String> = onnx_ops(&onnx);
    assert!(!ops.iter().any(|op| op == "BatchNormalization"), "{ops:?}");
    assert!(ops.iter().any(|op| op == "GlobalAveragePool"), "{ops:?}");
}

fn onnx_ops(onnx: &[u8]) -> Vec<String> {
    use prost::Message;
    let model = tract_onnx::pb::ModelProto::decode(onnx).unwrap();
    model.graph.unwrap().node.into_iter().map(|n| n.op_type).collect()
}

#[test]
fn committed_models_match_their_cards() {
    // Every model in models/, each card's hash and accuracy re-measured with native tract.
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let catalog = spinfer_catalog::Catalog::open(&models, None).unwrap();
    assert!(catalog.entries.len() >= 4, "{:?}", catalog.cards());
    let test = mnist().test;
    for entry in &catalog.entries {
        let (name, card) = (&entry.card.name, &entry.card);
        let onnx = std::fs::read(&entry.onnx).unwrap();
        assert_eq!(
            card.sha256,
            spinfer_train::pipeline::sha256_hex(&onnx),
            "{name}: card hash"
        );
        let cost = spinfer_engine::cost::cost(&onnx).unwrap();
        assert_eq!(card.parameters, Some(cost.parameters), "{name}: parameters");
        if let Some(multiply_adds) = card.multiply_adds {
            assert_eq!(multiply_adds, cost.multiply_adds, "{name}: multiply-adds");
        }
        let classifier = Model::from_onnx(&onnx).unwrap();
        let probs = verify::tract_probabilities(&classifier, &test).unwrap();
        let accuracy = Report::new(&test.labels, &predictions(&probs)).accuracy();
        assert!(
            accuracy >= card.training.as_ref().unwrap().test_accuracy - 0.0005,
            "{name}: {accuracy} against the card's {}",
            card.training.as_ref().unwrap().test_accuracy
        );
    }
    // The floors the README states.
    let accuracy = |name: &str| {
        catalog
            .get(name)
            .unwrap()
            .card
            .training
            .as_ref()
            .unwrap()
            .test_accuracy
    };
    assert!(accuracy("mnist-seed") >= 0.983);
    assert!(accuracy("mnist-cnn") >= 0.993);
    assert!(accuracy("mnist-lean") >= 0.992);
}
