//! The training loop: Adam on cross-entropy, shuffled mini-batches (optionally augmented), a
//! constant or one-cycle learning rate, per-epoch validation, and the best-validation epoch kept.

use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::augment::Augment;
use crate::model::{Arch, Net};
use spinfer_mnist::{CLASSES, Mnist, Split};
use spinfer_model::contract::ITEM_SHAPE;

/// The one place the compute device is chosen; a GPU backend would be switched on here.
pub fn device() -> Device {
    Device::flex()
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub arch: Arch,
    pub epochs: usize,
    pub batch_size: usize,
    /// The (peak) learning rate.
    pub lr: f64,
    pub schedule: Schedule,
    /// Random rotation, shift and scale of training images; `None` trains on them as they are.
    pub augment: Option<Augment>,
    pub seed: u64,
    /// Train on only the first N training images (for quick runs and tests).
    pub limit: Option<usize>,
    pub progress: bool,
}

/// How the learning rate moves over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// `lr` throughout.
    Constant,
    /// A linear warm-up from `lr`/10 to `lr` over the first epoch, then cosine annealing to 0.
    OneCycle,
}

/// The recipe each committed model was trained with: what `spinfer train --arch` uses unless a
/// flag says otherwise.
pub fn recipe(arch: Arch) -> (usize, f64, Schedule, Option<Augment>) {
    match arch {
        Arch::Seed | Arch::Lean => (10, 1e-3, Schedule::Constant, None),
        Arch::Improved => (8, 1e-3, Schedule::Constant, None),
        Arch::Compact => (30, 1e-2, Schedule::OneCycle, Some(Augment::STANDARD)),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

pub struct Trained {
    /// The best-validation epoch's network, in validation mode, on the plain (non-autodiff) device.
    pub net: Net,
    /// Which epoch that was (1-based).
    pub best_epoch: usize,
    pub history: Vec<EpochStats>,
    pub seconds: f64,
}

fn images_tensor(split: &Split, indices: &[usize], device: &Device) -> Tensor<4> {
    pixels_tensor(split.normalized(indices.iter().copied()), indices.len(), device)
}

fn pixels_tensor(values: Vec<f32>, n: usize, device: &Device) -> Tensor<4> {
    let data = TensorData::new(values, [n, ITEM_SHAPE[0], ITEM_SHAPE[1], ITEM_SHAPE[2]]);
    Tensor::from_data(data, device)
}

/// A training batch, augmented when the config says so (a generator per epoch and batch, from
/// the run's seed, so a run is reproducible).
fn training_batch(
    split: &Split,
    indices: &[usize],
    augment: Option<&Augment>,
    seed: u64,
    device: &Device,
) -> Tensor<4> {
    let Some(augment) = augment else {
        return images_tensor(split, indices, device);
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let values = indices
        .iter()
        .flat_map(|&i| augment.apply(split.image(i), &mut rng))
        .map(|p| f32::from(p) / 255.0)
        .collect();
    pixels_tensor(values, indices.len(), device)
}

/// The learning rate for each optimiser step of the run.
fn scheduler(config: &TrainConfig, steps_per_epoch: usize) -> Box<dyn FnMut() -> f64> {
    match config.schedule {
        Schedule::Constant => {
            let lr = config.lr;
            Box::new(move || lr)
        }
        Schedule::OneCycle => {
            let total = (steps_per_epoch * config.epochs).max(2);
            let warmup = steps_per_epoch.clamp(1, total - 1);
            let mut scheduler = SequentialLrSchedulerConfig::new(
                vec![
                    LinearLrSchedulerConfig::new(config.lr / 10.0, config.lr, warmup).into(),
                    CosineAnnealingLrSchedulerConfig::new(config.lr, total - warmup).into(),
                ],
                vec![warmup],
            )
            .init()
            .expect("a valid schedule");
            Box::new(move || scheduler.step().base())
        }
    }
}

fn labels_tensor(split: &Split, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = indices.iter().map(|&i| i64::from(split.labels[i])).collect();
    Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
}

pub fn train(mnist: &Mnist, config: &TrainConfig) -> Trained {
    let device = device().autodiff();
    device.seed(config.seed);
    let mut net = config.arch.init(&device);
    let mut optimizer = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut rng = StdRng::seed_from_u64(config.seed);

    let train_len = config
        .limit
        .map_or(mnist.train.len(), |n| n.min(mnist.train.len()));
    let mut order: Vec<usize> = (0..train_len).collect();
    let mut history = Vec::new();
    let mut next_lr = scheduler(config, train_len.div_ceil(config.batch_size));
    let mut best: Option<(f64, usize, Net)> = None;
    let started = Instant::now();

    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let bar = progress_bar(config, epoch, train_len);
        let epoch_start = Instant::now();
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let batch_seed = config.seed ^ ((epoch as u64) << 32) ^ step as u64;
            let images = training_batch(&mnist.train, batch, config.augment.as_ref(), batch_seed, &device);
            let targets = labels_tensor(&mnist.train, batch, &device);
            let loss = loss_fn.forward(net.forward(images), targets);
            let batch_loss = f64::from(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optimizer.step(next_lr(), net, grads);
            loss_sum += batch_loss * batch.len() as f64;
            seen += batch.len();
            bar.inc(batch.len() as u64);
            bar.set_message(format!(
                "loss {:.4}  {:.0} img/s",
                loss_sum / seen as f64,
                seen as f64 / epoch_start.elapsed().as_secs_f64()
            ));
        }
        bar.finish_and_clear();
        let seconds = epoch_start.elapsed().as_secs_f64();
        let validation_net = net.valid();
        let (val_loss, val_accuracy) = evaluate(&validation_net, &mnist.validation);
        // The epoch to keep is chosen on the validation split only; the test set stays unseen.
        if best
            .as_ref()
            .is_none_or(|(accuracy, ..)| val_accuracy > *accuracy)
        {
            best = Some((val_accuracy, epoch, validation_net));
        }
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / seen as f64,
            val_loss,
            val_accuracy,
            seconds,
            images_per_second: seen as f64 / seconds,
        };
        println!(
            "epoch {:>2}/{}  train loss {:.4}  val loss {:.4}  val acc {:.2}%  {:.1}s  {:.0} img/s",
            epoch,
            config.epochs,
            stats.train_loss,
            stats.val_loss,
            stats.val_accuracy * 100.0,
            stats.seconds,
            stats.images_per_second
        );
        history.push(stats);
    }
    let (_, best_epoch, net) = best.expect("at least one epoch");
    Trained {
        net,
        best_epoch,
        history,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn progress_bar(config: &TrainConfig, epoch: usize, len: usize) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "epoch {epoch}/{} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{eta}})",
            config.epochs
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Softmax probabilities from the framework itself, `CLASSES` per image.
pub fn probabilities(net: &Net, split: &Split, indices: &[usize]) -> Vec<f32> {
    let device = device();
    let mut out = Vec::with_capacity(indices.len() * CLASSES);
    for chunk in indices.chunks(1000) {
        let logits = net.forward(images_tensor(split, chunk, &device));
        out.extend(
            softmax(logits, 1)
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 output"),
        );
    }
    out
}

/// Mean cross-entropy and accuracy over a split.
pub fn evaluate(net: &Net, split: &Split) -> (f64, f64) {
    let indices: Vec<usize> = (0..split.len()).collect();
    let probs = probabilities(net, split, &indices);
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for (row, &label) in probs.chunks(CLASSES).zip(&split.labels) {
        loss -= f64::from(row[label as usize].max(1e-12)).ln();
        correct += usize::from(spinfer_engine::argmax(row) == label as usize);
    }
    (loss / split.len() as f64, correct as f64 / split.len() as f64)
}
