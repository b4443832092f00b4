use std::path::PathBuf;

use anyhow::Result;
use spinfer_mnist::Mnist;
use spinfer_train::augment::Augment;
use spinfer_train::model::Arch;
use spinfer_train::pipeline;
use spinfer_train::train::{Schedule, TrainConfig, recipe};

/// Every flag left out takes the architecture's recipe: what its committed model was trained with.
#[derive(clap::Args)]
pub struct TrainCommand {
    #[arg(long, value_enum, default_value_t = Arch::Improved)]
    arch: Arch,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// The (peak) learning rate.
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    /// Augment training images (random rotation, shift, scale), or not.
    #[arg(long)]
    augment: Option<bool>,
    /// Largest random rotation, in degrees (with augmentation).
    #[arg(long, default_value_t = Augment::STANDARD.rotate_degrees)]
    rotate: f32,
    /// Largest random shift, in pixels (with augmentation).
    #[arg(long, default_value_t = Augment::STANDARD.shift_pixels)]
    shift: f32,
    /// Largest random scale change, as a fraction (with augmentation).
    #[arg(long, default_value_t = Augment::STANDARD.scale)]
    scale: f32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory with the four MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Where the model, card and plots go.
    #[arg(long, default_value = "models")]
    out: PathBuf,
    /// Model name; defaults to the architecture's (mnist-seed, mnist-cnn, mnist-lean, mnist-compact).
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
        let (epochs, lr, schedule, augment) = recipe(self.arch);
        let augment = match self.augment {
            Some(false) => None,
            Some(true) | None if self.augment.is_some() || augment.is_some() => Some(Augment {
                rotate_degrees: self.rotate,
                shift_pixels: self.shift,
                scale: self.scale,
            }),
            _ => None,
        };
        let config = TrainConfig {
            arch: self.arch,
            epochs: self.epochs.unwrap_or(epochs),
            batch_size: self.batch_size,
            lr: self.lr.unwrap_or(lr),
            schedule: self.schedule.unwrap_or(schedule),
            augment,
            seed: self.seed,
            limit: self.limit,
            progress: true,
        };
        pipeline::run(&mnist, &config, &name, &self.out)?;
        Ok(())
    }
}
