//! `spinfer train`: train, export to ONNX, verify the export with tract, write the artifacts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use spinfer_model::card::{
    ChannelOrder, ImageSpec, Layout, ModelCard, PREPROCESSING, Resize, TensorSpec, Training,
};
use spinfer_model::{DType, Dim};

use crate::metrics::{Report, predictions};
use spinfer_mnist::{CLASSES, Mnist};
use spinfer_model::contract::{INPUT_NAME, ITEM_SHAPE, OUTPUT_NAME, SIDE};

use crate::onnx_export::{self, ExportInfo};
use crate::train::{self, Schedule, TrainConfig};
use crate::{plots, verify};

pub struct Artifacts {
    pub onnx: PathBuf,
    pub card: ModelCard,
}

pub fn labels() -> Vec<String> {
    (0..CLASSES).map(|c| c.to_string()).collect()
}

pub use spinfer_catalog::sha256_hex;

/// What a model card says about use, limits and data (every model here is an MNIST classifier).
const INTENDED_USE: &str = "Classifying one handwritten digit 0-9 per image, as in MNIST: a demo and \
     reference for serving a small model from a WebAssembly function.";
const LIMITATIONS: &str = "MNIST-style digits only: one digit, roughly centred, light ink on a dark \
     background after preprocessing (uploads are inverted when light, cropped to the ink, scaled to \
     20 px and centred, as MNIST was made). The PNG/JPEG tests (synthetic strokes, either polarity, \
     28 px to 4096 px) classify right; photographs with textured backgrounds, several digits, \
     letters or blank images still get one of the ten labels, often with high confidence: there is \
     no 'not a digit' class, so check the input before trusting the label.";
const TRAINING_DATA: &str = "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges): the first 55,000 \
     training images for training, the last 5,000 for choosing the epoch, the 10,000 test images \
     read once at the end. Licence: Creative Commons Attribution-Share Alike 3.0.";

fn recipe_text(config: &TrainConfig) -> String {
    let schedule = match config.schedule {
        Schedule::Constant => format!("constant lr {}", config.lr),
        Schedule::OneCycle => format!(
            "one-cycle lr (warm-up to {} over epoch 1, cosine to 0)",
            config.lr
        ),
    };
    match &config.augment {
        None => format!("{schedule}; no augmentation"),
        Some(a) => format!(
            "{schedule}; augmentation: rotation ±{}°, shift ±{} px, scale ×{}–{}",
            a.rotate_degrees,
            a.shift_pixels,
            1.0 - a.scale,
            1.0 + a.scale
        ),
    }
}

pub fn run(mnist: &Mnist, config: &TrainConfig, name: &str, out: &Path) -> Result<Artifacts> {
    println!(
        "training {name} ({:?}) on {} images, validating on {}, {} epochs, batch {}, lr {}, seed {}, {} threads",
        config.arch,
        config
            .limit
            .map_or(mnist.train.len(), |n| n.min(mnist.train.len())),
        mnist.validation.len(),
        config.epochs,
        config.batch_size,
        config.lr,
        config.seed,
        rayon_threads(),
    );
    let trained = train::train(mnist, config);

    let labels = labels();
    let description = config.arch.describe();
    let onnx = onnx_export::export(
        &trained.net.layers(),
        &ExportInfo {
            name,
            version: 1,
            description: &description,
            labels: &labels,
            preprocessing: PREPROCESSING,
        },
    );

    // The framework's own answer on the test set, then tract's on the exported file: they must agree.
    let all: Vec<usize> = (0..mnist.test.len()).collect();
    let framework_probs = train::probabilities(&trained.net, &mnist.test, &all);
    let framework = Report::new(&mnist.test.labels, &predictions(&framework_probs));
    let check = verify::against_tract(&onnx, &mnist.test, &framework_probs)?;
    println!(
        "test accuracy {:.2}% (burn) / {:.2}% (tract on the ONNX file); predictions differ on {} images, max |Δp| {:.2e}",
        framework.accuracy() * 100.0,
        check.report.accuracy() * 100.0,
        check.disagreements,
        check.max_abs_diff
    );
    ensure!(
        check.disagreements == 0,
        "exported ONNX disagrees with burn on {} test images",
        check.disagreements
    );

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let onnx_path = out.join(format!("{name}.onnx"));
    std::fs::write(&onnx_path, &onnx).with_context(|| format!("writing {}", onnx_path.display()))?;
    let report = check.report;
    let cost = spinfer_engine::cost::cost(&onnx)?;
    let tensor = |name: &str, dims: &[usize]| TensorSpec {
        name: name.into(),
        dtype: DType::Float32,
        shape: std::iter::once(Dim::Symbol("N".into()))
            .chain(dims.iter().map(|&d| Dim::Size(d as i64)))
            .collect(),
    };
    let card = ModelCard {
        name: name.into(),
        version: "1".into(),
        description,
        inputs: vec![tensor(INPUT_NAME, &ITEM_SHAPE)],
        outputs: vec![tensor(OUTPUT_NAME, &[CLASSES])],
        labels,
        image: Some(ImageSpec {
            height: SIDE as u32,
            width: SIDE as u32,
            channels: 1,
            order: ChannelOrder::Rgb,
            layout: Layout::Nchw,
            scale: 1.0 / 255.0,
            mean: vec![0.0],
            std: vec![1.0],
            resize: Resize::Stretch,
            digit: true,
        }),
        sha256: sha256_hex(&onnx),
        parameters: Some(cost.parameters),
        multiply_adds: Some(cost.multiply_adds),
        source: Some("trained here: spinfer train".into()),
        architecture: Some(format!("{:?}", config.arch).to_lowercase()),
        preprocessing: Some(PREPROCESSING.into()),
        intended_use: Some(INTENDED_USE.into()),
        limitations: Some(LIMITATIONS.into()),
        training: Some(Training {
            test_accuracy: report.accuracy(),
            per_class_accuracy: report.per_class_accuracy(),
            epochs: config.epochs,
            batch_size: config.batch_size,
            learning_rate: config.lr,
            seed: config.seed,
            training_seconds: trained.seconds,
            best_epoch: Some(trained.best_epoch),
            training_recipe: Some(recipe_text(config)),
            training_data: Some(TRAINING_DATA.into()),
            framework: Some("burn 0.22 (flex CPU backend, autodiff), Adam, cross-entropy".into()),
        }),
    };
    let card_path = out.join(format!("{name}.json"));
    std::fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")
        .with_context(|| format!("writing {}", card_path.display()))?;
    let history_path = out.join(format!("{name}-training.json"));
    std::fs::write(
        &history_path,
        serde_json::to_string_pretty(&trained.history)? + "\n",
    )?;
    plots::training_curves(&out.join(format!("{name}-training.png")), name, &trained.history)?;
    plots::confusion_matrix(&out.join(format!("{name}-confusion.png")), name, &report)?;
    println!(
        "wrote {} ({} parameters, {:.1}s training) and its card, curves and confusion matrix",
        onnx_path.display(),
        cost.parameters,
        trained.seconds
    );
    Ok(Artifacts {
        onnx: onnx_path,
        card,
    })
}

pub fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
