use std::path::PathBuf;

use anyhow::{Context, Result};
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
}

impl EvalCommand {
    pub fn run(self) -> Result<()> {
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
