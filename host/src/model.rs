//! The two MNIST architectures, as burn modules, and a plain description of their layers that
//! the ONNX exporter reads.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

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
}

impl Arch {
    pub fn init(self, device: &Device) -> Net {
        match self {
            Arch::Seed => Net::Seed(SeedNet::new(device)),
            Arch::Improved => Net::Improved(ImprovedNet::new(32, device)),
            Arch::Lean => Net::Improved(ImprovedNet::new(16, device)),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Arch::Seed => {
                "Conv2d(1→32, 3×3) → ReLU → MaxPool 2×2 → Flatten(5408) → Linear(5408→10) → softmax"
            }
            Arch::Improved => {
                "Conv2d(1→32, 3×3, pad 1) → ReLU → Conv2d(32→32, 3×3, pad 1) → ReLU → MaxPool 2×2 → \
                 Conv2d(32→64, 3×3, pad 1) → ReLU → Conv2d(64→64, 3×3, pad 1) → ReLU → MaxPool 2×2 → \
                 Flatten(3136) → Linear(3136→128) → ReLU → Dropout(0.5) → Linear(128→10) → softmax"
            }
            Arch::Lean => {
                "Conv2d(1→16, 3×3, pad 1) → ReLU → Conv2d(16→16, 3×3, pad 1) → ReLU → MaxPool 2×2 → \
                 Conv2d(16→32, 3×3, pad 1) → ReLU → Conv2d(32→32, 3×3, pad 1) → ReLU → MaxPool 2×2 → \
                 Flatten(1568) → Linear(1568→64) → ReLU → Dropout(0.5) → Linear(64→10) → softmax"
            }
        }
    }
}

// A process holds one or two networks, so the size difference costs nothing worth boxing for
// (and burn's Module derive works on the plain variants).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Seed(SeedNet),
    Improved(ImprovedNet),
}

impl Net {
    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Net::Seed(net) => net.forward(images),
            Net::Improved(net) => net.forward(images),
        }
    }

    /// The inference graph, layer by layer, with the trained weights.
    pub fn layers(&self) -> Vec<Layer> {
        match self {
            Net::Seed(net) => vec![
                conv_layer(&net.conv, 0),
                Layer::Relu,
                Layer::MaxPool,
                Layer::Flatten,
                dense_layer(&net.fc),
            ],
            Net::Improved(net) => vec![
                conv_layer(&net.conv1, 1),
                Layer::Relu,
                conv_layer(&net.conv2, 1),
                Layer::Relu,
                Layer::MaxPool,
                conv_layer(&net.conv3, 1),
                Layer::Relu,
                conv_layer(&net.conv4, 1),
                Layer::Relu,
                Layer::MaxPool,
                Layer::Flatten,
                dense_layer(&net.fc1),
                Layer::Relu,
                dense_layer(&net.fc2),
            ],
        }
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

fn conv_layer(conv: &Conv2d, pad: usize) -> Layer {
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

fn conv(input: usize, output: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_padding(if pad == 0 {
            PaddingConfig2d::Valid
        } else {
            PaddingConfig2d::Explicit(pad, pad, pad, pad)
        })
        .init(device)
}

fn pool() -> MaxPool2d {
    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init()
}

#[derive(Module, Debug)]
pub struct SeedNet {
    conv: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
    relu: Relu,
}

impl SeedNet {
    fn new(device: &Device) -> Self {
        Self {
            conv: conv(1, 32, 0, device),
            pool: pool(),
            fc: LinearConfig::new(32 * 13 * 13, 10).init(device),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.conv.forward(x)));
        self.fc.forward(x.flatten(1, 3))
    }
}

#[derive(Module, Debug)]
pub struct ImprovedNet {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    conv4: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
    relu: Relu,
}

impl ImprovedNet {
    /// `width` channels in the first block, twice that in the second, four times in Dense.
    fn new(width: usize, device: &Device) -> Self {
        Self {
            conv1: conv(1, width, 1, device),
            conv2: conv(width, width, 1, device),
            conv3: conv(width, 2 * width, 1, device),
            conv4: conv(2 * width, 2 * width, 1, device),
            pool: pool(),
            fc1: LinearConfig::new(2 * width * 7 * 7, 4 * width).init(device),
            fc2: LinearConfig::new(4 * width, 10).init(device),
            dropout: DropoutConfig::new(0.5).init(),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.relu.forward(self.conv1.forward(x));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x = self.relu.forward(self.conv3.forward(x));
        let x = self.pool.forward(self.relu.forward(self.conv4.forward(x)));
        let x = self.relu.forward(self.fc1.forward(x.flatten(1, 3)));
        self.fc2.forward(self.dropout.forward(x))
    }
}
