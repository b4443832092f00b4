use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spinfer_engine::Model;
use spinfer_mnist::Mnist;
use spinfer_model::ModelCard;

#[derive(clap::Args)]
pub struct PredictCommand {
    #[arg(long, default_value = "models/mnist-compact.onnx")]
    model: PathBuf,
    /// A PNG or JPEG, preprocessed as the model's card says (its `<model>.json`).
    #[arg(required_unless_present = "idx", conflicts_with = "idx")]
    image: Option<PathBuf>,
    /// Classify test-set image N instead.
    #[arg(long)]
    idx: Option<usize>,
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
}

/// The image classifier at `model` with its card (`<model>.json`), loaded with the card's shapes.
pub fn image_classifier(model: &Path) -> Result<(ModelCard, Model)> {
    let card_path = model.with_extension("json");
    let card =
        std::fs::read(&card_path).with_context(|| format!("reading the card {}", card_path.display()))?;
    let card = ModelCard::from_json(&card).with_context(|| card_path.display().to_string())?;
    if card.image_classifier().is_none() {
        bail!(
            "{} is not an image classifier (its card has no image block and [N, classes] output)",
            card.name
        );
    }
    let loaded = Model::from_path_as(model, &card.inputs)?;
    Ok((card, loaded))
}

impl PredictCommand {
    pub fn run(self) -> Result<()> {
        let (card, classifier) = image_classifier(&self.model)?;
        let (spec, _) = card.image_classifier().expect("checked when loaded");
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
                spinfer_protocol::preprocess::image_to_input(spec, &bytes)
                    .with_context(|| path.display().to_string())?
            }
            (None, None) => unreachable!("clap requires an image or --idx"),
        };
        let probs = classifier.classify(&pixels)?;
        let label = spinfer_engine::argmax(&probs);
        println!(
            "label {label} {:?} (confidence {:.4})",
            card.label(label),
            probs[label]
        );
        for (class, p) in probs.iter().enumerate() {
            println!("  {class} {:?}: {p:.6}", card.label(class));
        }
        Ok(())
    }
}
