use std::path::PathBuf;

use anyhow::Result;
use spinfer_mnist::Mnist;
use spinfer_train::model::Arch;
use spinfer_train::pipeline;
use spinfer_train::train::TrainConfig;

#[derive(clap::Args)]
pub struct TrainCommand {
    #[arg(long, value_enum, default_value_t = Arch::Improved)]
    arch: Arch,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory with the four MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Where the model, card and plots go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Model name; defaults to the architecture's (mnist-seed, mnist-cnn, mnist-lean).
    #[arg(long)]
    name: Option<String>,
    /// Train on only the first N training images.
    #[arg(long)]
    limit: Option<usize>,
}

impl TrainCommand {
    pub fn run(self) -> Result<()> {
        let mnist = Mnist::load(&self.data)?;
        let name = self.name.unwrap_or_else(|| self.arch.model_name().into());
        let config = TrainConfig {
            arch: self.arch,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            limit: self.limit,
            progress: true,
        };
        pipeline::run(&mnist, &config, &name, &self.out)?;
        Ok(())
    }
}
