use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use spinfer_engine::Classifier;
use spinfer_mnist::{CLASSES, Mnist};

#[derive(clap::Args)]
pub struct PredictCommand {
    #[arg(long, default_value = "models/mnist-compact.onnx")]
    model: PathBuf,
    /// A PNG or JPEG of a digit (any size; dark-on-light is inverted).
    #[arg(required_unless_present = "idx", conflicts_with = "idx")]
    image: Option<PathBuf>,
    /// Classify test-set image N instead.
    #[arg(long)]
    idx: Option<usize>,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
}

impl PredictCommand {
    pub fn run(self) -> Result<()> {
        let classifier = Classifier::from_path(&self.model)?;
        let pixels = match (self.idx, &self.image) {
            (Some(index), _) => {
                let test = Mnist::load_test(&self.data)?;
                if index >= test.len() {
                    bail!(
                        "--idx {index} is out of range: the test set has {} images",
                        test.len()
                    );
                }
                println!("test image {index}, true label {}", test.labels[index]);
                test.normalized([index])
            }
            (None, Some(path)) => {
                let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                spinfer_protocol::preprocess::image_to_input(&bytes)
                    .with_context(|| path.display().to_string())?
                    .to_vec()
            }
            (None, None) => unreachable!("clap requires an image or --idx"),
        };
        let probs = classifier.run(&pixels)?;
        let label = spinfer_engine::argmax(&probs);
        println!("label {label} (confidence {:.4})", probs[label]);
        for (class, p) in probs.iter().enumerate().take(CLASSES) {
            println!("  {class}: {p:.6}");
        }
        Ok(())
    }
}
