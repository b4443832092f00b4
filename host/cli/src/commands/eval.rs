use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spinfer_engine::Model;
use spinfer_mnist::Mnist;
use spinfer_train::metrics::{Report, predictions};
use spinfer_train::{plots, verify};

#[derive(clap::Args)]
pub struct EvalCommand {
    #[arg(long, default_value = "models/mnist-compact.onnx")]
    model: PathBuf,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write the probabilities, float32 little-endian [N,10], to this file.
    #[arg(long)]
    dump_probs: Option<PathBuf>,
    /// Also draw the confusion matrix to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Evaluate any image classifier instead, on a folder of pictures: one subfolder per class,
    /// named as the card's labels, each holding PNG or JPEG files.
    #[arg(long, conflicts_with_all = ["limit", "dump_probs", "plot"])]
    images: Option<PathBuf>,
}

impl EvalCommand {
    pub fn run(self) -> Result<()> {
        if let Some(images) = &self.images {
            return evaluate_folder(&self.model, images);
        }
        let classifier = Model::from_path(&self.model)?;
        let mut test = Mnist::load_test(&self.data)?;
        if let Some(limit) = self.limit {
            test = test.head(limit);
        }
        let started = std::time::Instant::now();
        let probs = verify::tract_probabilities(&classifier, &test)?;
        let report = Report::new(&test.labels, &predictions(&probs));
        println!(
            "{}: {} test images in {:.2}s with native tract",
            self.model.display(),
            test.len(),
            started.elapsed().as_secs_f64()
        );
        print!("{}", report.render());
        if let Some(path) = &self.plot {
            let name = self
                .model
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy());
            plots::confusion_matrix(path, &name, &report)?;
        }
        if let Some(path) = self.dump_probs {
            let bytes: Vec<u8> = probs.iter().flat_map(|p| p.to_le_bytes()).collect();
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Accuracy of the image classifier at `model` on `images`/<label>/<picture>, each picture
/// preprocessed as its card says.
fn evaluate_folder(model: &Path, images: &Path) -> Result<()> {
    let (card, classifier) = super::predict::image_classifier(model)?;
    let (spec, classes) = card.image_classifier().expect("checked when loaded");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(images)
        .with_context(|| format!("listing {}", images.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut per_class = vec![(0usize, 0usize); classes];
    for folder in &folders {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(class) = (0..classes).find(|&c| card.label(c) == name) else {
            bail!("{}: {name:?} is none of the model's labels", folder.display());
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?.flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files.iter().filter(|f| f.is_file()) {
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let input = spinfer_protocol::preprocess::image_to_input(spec, &bytes)
                .with_context(|| file.display().to_string())?;
            let scores = classifier.classify(&input)?;
            per_class[class].1 += 1;
            if spinfer_engine::argmax(&scores) == class {
                per_class[class].0 += 1;
            }
        }
    }
    let (correct, total) = per_class
        .iter()
        .fold((0, 0), |(c, t), &(pc, pt)| (c + pc, t + pt));
    if total == 0 {
        bail!(
            "{} holds no pictures in folders named by the labels",
            images.display()
        );
    }
    println!(
        "{}: {total} images, accuracy {:.2}% ({correct} right) with native tract",
        card.name,
        100.0 * correct as f64 / total as f64
    );
    for (class, (right, seen)) in per_class.iter().enumerate().filter(|(_, (_, seen))| *seen > 0) {
        println!("  {}: {right}/{seen}", card.label(class));
    }
    Ok(())
}
