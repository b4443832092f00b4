//! The MNIST architectures. Each is described once, as a list of [`Block`]s (as burn's
//! `examples/mnist` factors a repeated `ConvBlock`); the burn network, its forward pass, the
//! layer list the ONNX exporter reads and the card's description are all derived from it.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::prelude::*;
use spinfer_model::contract::{CLASSES, SIDE};

/// Which network `spinfer train --arch` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The reference: Conv 32@3×3, ReLU, MaxPool 2, Dense 10.
    Seed,
    /// Two conv blocks (32, 32 / 64, 64) with pooling, Dense 128, Dropout, Dense 10.
    Improved,
    /// The improved network at half the width (16, 16 / 32, 32, Dense 64): a quarter of the
    /// multiply-adds, for serving where latency counts.
    Lean,
    /// Six small conv-BatchNorm-ReLU blocks (8, 8 / 16 ×4), global average pooling and a 1×1
    /// conv head: ~9k parameters, ~0.76 M multiply-adds, trained with augmentation.
    Compact,
}

/// One step of an architecture, framework-free.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Block {
    /// A `kernel`×`kernel` convolution with `pad` zeros on each side.
    Conv {
        input: usize,
        output: usize,
        kernel: usize,
        pad: usize,
    },
    /// Per-channel normalisation; folded into the convolution before it at export.
    BatchNorm {
        features: usize,
    },
    Relu,
    /// 2×2, stride 2.
    MaxPool,
    /// `[N, C, H, W]` → `[N, C, 1, 1]`: the mean of each channel.
    GlobalAvgPool,
    /// `[N, C, H, W]` → `[N, C·H·W]`.
    Flatten {
        features: usize,
    },
    Dense {
        input: usize,
        output: usize,
    },
    /// Training only; the exported graph has none.
    Dropout(f64),
}

impl Block {
    fn describe(self) -> String {
        match self {
            Block::Conv {
                input,
                output,
                kernel,
                pad: 0,
            } => format!("Conv2d({input}→{output}, {kernel}×{kernel})"),
            Block::Conv {
                input,
                output,
                kernel,
                pad,
            } => format!("Conv2d({input}→{output}, {kernel}×{kernel}, pad {pad})"),
            Block::BatchNorm { features } => format!("BatchNorm({features})"),
            Block::GlobalAvgPool => "GlobalAvgPool".into(),
            Block::Relu => "ReLU".into(),
            Block::MaxPool => "MaxPool 2×2".into(),
            Block::Flatten { features } => format!("Flatten({features})"),
            Block::Dense { input, output } => format!("Linear({input}→{output})"),
            Block::Dropout(p) => format!("Dropout({p})"),
        }
    }
}

/// Conv 3×3 (no padding) → BatchNorm → ReLU: the repeated block of the compact network, in the
/// order that lets the export fold the BatchNorm into the convolution exactly.
fn conv_bn_relu(input: usize, output: usize) -> [Block; 3] {
    [
        Block::Conv {
            input,
            output,
            kernel: 3,
            pad: 0,
        },
        Block::BatchNorm { features: output },
        Block::Relu,
    ]
}

/// Conv 3×3 (pad 1) → ReLU, twice, then MaxPool: the repeated block of the improved network.
fn conv_block(input: usize, output: usize) -> [Block; 5] {
    [
        Block::Conv {
            input,
            output,
            kernel: 3,
            pad: 1,
        },
        Block::Relu,
        Block::Conv {
            input: output,
            output,
            kernel: 3,
            pad: 1,
        },
        Block::Relu,
        Block::MaxPool,
    ]
}

impl Arch {
    /// The network, block by block; softmax follows in the exported graph.
    pub fn blocks(self) -> Vec<Block> {
        match self {
            // [N,1,28,28] → conv → [N,32,26,26] → pool → [N,32,13,13] → [N,5408] → [N,10]
            Arch::Seed => {
                let features = 32 * ((SIDE - 2) / 2) * ((SIDE - 2) / 2);
                vec![
                    Block::Conv {
                        input: 1,
                        output: 32,
                        kernel: 3,
                        pad: 0,
                    },
                    Block::Relu,
                    Block::MaxPool,
                    Block::Flatten { features },
                    Block::Dense {
                        input: features,
                        output: CLASSES,
                    },
                ]
            }
            Arch::Improved => Self::improved(32),
            Arch::Lean => Self::improved(16),
            // [N,1,28,28] → 26 → 24 → pool 12 → 10 → 8 → 6 → 4 → GAP [N,16,1,1] → 1×1 → [N,10]
            Arch::Compact => {
                let mut blocks = Vec::new();
                blocks.extend(conv_bn_relu(1, 8));
                blocks.extend(conv_bn_relu(8, 8));
                blocks.push(Block::MaxPool);
                blocks.extend(conv_bn_relu(8, 16));
                for _ in 0..3 {
                    blocks.extend(conv_bn_relu(16, 16));
                }
                blocks.extend([
                    Block::GlobalAvgPool,
                    Block::Conv {
                        input: 16,
                        output: CLASSES,
                        kernel: 1,
                        pad: 0,
                    },
                    Block::Flatten { features: CLASSES },
                ]);
                blocks
            }
        }
    }

    /// `width` channels in the first block, twice that in the second, four times in Dense:
    /// [N,1,28,28] → block → [N,w,14,14] → block → [N,2w,7,7] → [N,98w] → [N,4w] → [N,10]
    fn improved(width: usize) -> Vec<Block> {
        let features = 2 * width * (SIDE / 4) * (SIDE / 4);
        let mut blocks = Vec::new();
        blocks.extend(conv_block(1, width));
        blocks.extend(conv_block(width, 2 * width));
        blocks.extend([
            Block::Flatten { features },
            Block::Dense {
                input: features,
                output: 4 * width,
            },
            Block::Relu,
            Block::Dropout(0.5),
            Block::Dense {
                input: 4 * width,
                output: CLASSES,
            },
        ]);
        blocks
    }

    /// The card's and the ONNX graph's description: every block, then softmax.
    pub fn describe(self) -> String {
        self.blocks()
            .into_iter()
            .map(Block::describe)
            .chain(["softmax".to_string()])
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// The name `spinfer train` gives the model by default.
    pub fn model_name(self) -> &'static str {
        match self {
            Arch::Seed => "mnist-seed",
            Arch::Improved => "mnist-cnn",
            Arch::Lean => "mnist-lean",
            Arch::Compact => "mnist-compact",
        }
    }

    pub fn init(self, device: &Device) -> Net {
        Net {
            steps: self
                .blocks()
                .into_iter()
                .map(|block| Step::new(block, device))
                .collect(),
        }
    }
}

/// A flatten step as a burn module (it has no parameters).
#[derive(Module, Debug, Default)]
pub struct Flatten;

/// One block as a burn module.
#[derive(Module, Debug)]
pub enum Step {
    Conv(Conv2d),
    BatchNorm(BatchNorm),
    Relu(Relu),
    MaxPool(MaxPool2d),
    GlobalAvgPool(AdaptiveAvgPool2d),
    Flatten(Flatten),
    Dense(Linear),
    Dropout(Dropout),
}

impl Step {
    fn new(block: Block, device: &Device) -> Step {
        match block {
            Block::Conv {
                input,
                output,
                kernel,
                pad,
            } => Step::Conv(
                Conv2dConfig::new([input, output], [kernel, kernel])
                    .with_padding(if pad == 0 {
                        PaddingConfig2d::Valid
                    } else {
                        PaddingConfig2d::Explicit(pad, pad, pad, pad)
                    })
                    .init(device),
            ),
            Block::BatchNorm { features } => Step::BatchNorm(BatchNormConfig::new(features).init(device)),
            Block::GlobalAvgPool => Step::GlobalAvgPool(AdaptiveAvgPool2dConfig::new([1, 1]).init()),
            Block::Relu => Step::Relu(Relu::new()),
            Block::MaxPool => Step::MaxPool(MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()),
            Block::Flatten { .. } => Step::Flatten(Flatten),
            Block::Dense { input, output } => Step::Dense(LinearConfig::new(input, output).init(device)),
            Block::Dropout(p) => Step::Dropout(DropoutConfig::new(p).init()),
        }
    }
}

/// A network built from an [`Arch`]'s blocks.
#[derive(Module, Debug)]
pub struct Net {
    steps: Vec<Step>,
}

/// Activations between steps: images until the flatten, vectors after it.
enum Activation {
    Images(Tensor<4>),
    Vectors(Tensor<2>),
}

impl Net {
    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = Activation::Images(images);
        for step in &self.steps {
            x = match (step, x) {
                (Step::Conv(conv), Activation::Images(x)) => Activation::Images(conv.forward(x)),
                (Step::MaxPool(pool), Activation::Images(x)) => Activation::Images(pool.forward(x)),
                (Step::BatchNorm(norm), Activation::Images(x)) => Activation::Images(norm.forward(x)),
                (Step::GlobalAvgPool(pool), Activation::Images(x)) => Activation::Images(pool.forward(x)),
                (Step::Flatten(_), Activation::Images(x)) => Activation::Vectors(x.flatten(1, 3)),
                (Step::Relu(relu), Activation::Images(x)) => Activation::Images(relu.forward(x)),
                (Step::Relu(relu), Activation::Vectors(x)) => Activation::Vectors(relu.forward(x)),
                (Step::Dense(dense), Activation::Vectors(x)) => Activation::Vectors(dense.forward(x)),
                (Step::Dropout(dropout), Activation::Vectors(x)) => Activation::Vectors(dropout.forward(x)),
                (Step::Dropout(dropout), Activation::Images(x)) => Activation::Images(dropout.forward(x)),
                (step, _) => unreachable!("architectures are checked by tests: {step:?} got the wrong rank"),
            };
        }
        match x {
            Activation::Vectors(logits) => logits,
            Activation::Images(_) => unreachable!("every architecture ends in Dense"),
        }
    }

    /// The inference graph, layer by layer, with the trained weights: dropout left out, each
    /// BatchNorm folded into the convolution before it (burn's own forward keeps it apart, so
    /// the export check compares the folded graph with the unfolded network).
    pub fn layers(&self) -> Vec<Layer> {
        let mut layers = Vec::new();
        for step in &self.steps {
            match step {
                Step::Conv(conv) => layers.push(conv_layer(conv)),
                Step::BatchNorm(norm) => match layers.last_mut() {
                    Some(conv @ Layer::Conv { .. }) => fold_batch_norm(conv, norm),
                    _ => unreachable!("architectures put each BatchNorm right after a convolution"),
                },
                Step::Relu(_) => layers.push(Layer::Relu),
                Step::MaxPool(_) => layers.push(Layer::MaxPool),
                Step::GlobalAvgPool(_) => layers.push(Layer::GlobalAvgPool),
                Step::Flatten(_) => layers.push(Layer::Flatten),
                Step::Dense(dense) => layers.push(dense_layer(dense)),
                Step::Dropout(_) => {}
            }
        }
        layers
    }
}

/// Conv then BatchNorm (inference mode) as one Conv: with `s = γ / √(var + ε)`, each output
/// channel's weights times `s`, its bias `(b − mean)·s + β`.
fn fold_batch_norm(conv: &mut Layer, norm: &BatchNorm) {
    let Layer::Conv {
        weight, shape, bias, ..
    } = conv
    else {
        unreachable!("folding into a convolution")
    };
    let gamma = floats(norm.gamma.val());
    let beta = floats(norm.beta.val());
    let mean = floats(norm.running_mean.value());
    let var = floats(norm.running_var.value());
    let per_channel = shape[1] * shape[2] * shape[3];
    for (channel, weights) in weight.chunks_mut(per_channel).enumerate() {
        let scale = gamma[channel] / (var[channel] + norm.epsilon as f32).sqrt();
        weights.iter_mut().for_each(|w| *w *= scale);
        bias[channel] = (bias[channel] - mean[channel]) * scale + beta[channel];
    }
}

/// One inference step, framework-free; softmax is appended by the exporter.
#[derive(Clone, Debug)]
pub enum Layer {
    /// Weight OIHW, bias O, symmetric padding.
    Conv {
        weight: Vec<f32>,
        shape: [usize; 4],
        bias: Vec<f32>,
        pad: usize,
    },
    Relu,
    /// 2×2, stride 2.
    MaxPool,
    GlobalAvgPool,
    Flatten,
    /// Weight `[in, out]` as burn stores it, bias `[out]`.
    Dense {
        weight: Vec<f32>,
        shape: [usize; 2],
        bias: Vec<f32>,
    },
}

fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("model weights are f32")
}

fn conv_layer(conv: &Conv2d) -> Layer {
    let pad = match conv.padding {
        PaddingConfig2d::Explicit(top, ..) => top,
        _ => 0,
    };
    let weight = conv.weight.val();
    let dims = weight.dims();
    Layer::Conv {
        weight: floats(weight),
        shape: dims,
        bias: floats(conv.bias.as_ref().expect("conv has a bias").val()),
        pad,
    }
}

fn dense_layer(linear: &Linear) -> Layer {
    let weight = linear.weight.val();
    let dims = weight.dims();
    Layer::Dense {
        weight: floats(weight),
        shape: dims,
        bias: floats(linear.bias.as_ref().expect("linear has a bias").val()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptions the committed cards and ONNX graphs carry, byte for byte.
    #[test]
    fn descriptions_match_the_committed_cards() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        for arch in [Arch::Seed, Arch::Improved, Arch::Lean] {
            let card: serde_json::Value = serde_json::from_slice(
                &std::fs::read(models.join(format!("{}.json", arch.model_name()))).unwrap(),
            )
            .unwrap();
            assert_eq!(card["description"], arch.describe(), "{arch:?}");
        }
    }

    #[test]
    fn every_architecture_runs_and_exports_its_blocks() {
        let device = crate::train::device();
        for arch in [Arch::Seed, Arch::Improved, Arch::Lean, Arch::Compact] {
            let net = arch.init(&device);
            let logits = net.forward(Tensor::zeros([2, 1, SIDE, SIDE], &device));
            assert_eq!(logits.dims(), [2, CLASSES], "{arch:?}");
            let dropouts = arch
                .blocks()
                .iter()
                .filter(|b| matches!(b, Block::Dropout(_) | Block::BatchNorm { .. }))
                .count();
            assert_eq!(net.layers().len(), arch.blocks().len() - dropouts, "{arch:?}");
        }
    }
}
