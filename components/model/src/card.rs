//! The model card: the `<name>.json` written beside every `<name>.onnx`, by `spinfer train` for
//! the models trained here and by `spinfer import` for any other. It records the graph's
//! contract (every input and output), so that nothing in the serving path assumes a model's
//! shape; what a model needs for `/predict` (its image preprocessing, its labels) is optional.

use serde::{Deserialize, Serialize};

use crate::tensor::DType;

/// One dimension of a tensor in a card: a size, or a symbol the caller chooses (the batch,
/// an image's height…); `-1`, as older cards wrote it, is an unnamed symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Size(i64),
    Symbol(String),
}

impl Dim {
    /// The size, when the dimension is fixed.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Size(n) => usize::try_from(*n).ok(),
            Dim::Symbol(_) => None,
        }
    }

    /// As the Open Inference Protocol states it: the size, or `-1`.
    pub fn oip(&self) -> i64 {
        self.fixed().map_or(-1, |n| n as i64)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// Whether `shape` fits this one: the same rank, every fixed size equal.
    pub fn accepts(&self, shape: &[usize]) -> bool {
        shape.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(want, &got)| want.fixed().is_none_or(|n| n == got))
    }

    /// The shape as the Open Inference Protocol states it (`-1` where symbolic).
    pub fn oip_shape(&self) -> Vec<i64> {
        self.shape.iter().map(Dim::oip).collect()
    }

    /// The sizes past the first (batch) dimension, when all are fixed.
    pub fn item_shape(&self) -> Option<Vec<usize>> {
        self.shape.iter().skip(1).map(Dim::fixed).collect()
    }
}

/// How an uploaded picture becomes the model's first input, for `/predict`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub height: u32,
    pub width: u32,
    /// 1 (grayscale) or 3 (colour).
    pub channels: u8,
    #[serde(default)]
    pub order: ChannelOrder,
    #[serde(default)]
    pub layout: Layout,
    /// Each 0–255 pixel value is multiplied by this, then has `mean` taken away and is divided
    /// by `std` (one value for all channels, or one per channel).
    #[serde(default = "ImageSpec::default_scale")]
    pub scale: f64,
    #[serde(default = "ImageSpec::default_mean")]
    pub mean: Vec<f64>,
    #[serde(default = "ImageSpec::default_std")]
    pub std: Vec<f64>,
    #[serde(default)]
    pub resize: Resize,
    /// The MNIST steps before scaling: a light background inverted, cropped to the ink, the
    /// longer side scaled to 20 px, centred by centre of mass (grayscale only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digit: bool,
}

impl ImageSpec {
    fn default_scale() -> f64 {
        1.0 / 255.0
    }

    fn default_mean() -> Vec<f64> {
        vec![0.0]
    }

    fn default_std() -> Vec<f64> {
        vec![1.0]
    }

    /// The model's shape for one picture, batch first: `[1, C, H, W]` or `[1, H, W, C]`.
    pub fn shape(&self) -> Vec<usize> {
        let (c, h, w) = (
            usize::from(self.channels),
            self.height as usize,
            self.width as usize,
        );
        match self.layout {
            Layout::Nchw => vec![1, c, h, w],
            Layout::Nhwc => vec![1, h, w, c],
        }
    }

    /// Why this block cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let per_channel = |v: &[f64]| v.len() == 1 || v.len() == usize::from(self.channels);
        if !matches!(self.channels, 1 | 3) {
            return Err(format!("image channels must be 1 or 3, not {}", self.channels));
        }
        if self.height == 0 || self.width == 0 || self.height > 8192 || self.width > 8192 {
            return Err(format!(
                "image size {}x{} must be 1 to 8192 a side",
                self.height, self.width
            ));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        let usable_std = finite(&self.std) && !self.std.contains(&0.0);
        if !per_channel(&self.mean) || !per_channel(&self.std) || !finite(&self.mean) || !usable_std {
            return Err("image mean and std need 1 finite value or one per channel, std never 0".into());
        }
        if !self.scale.is_finite() {
            return Err(format!("image scale {} is not a finite number", self.scale));
        }
        if self.digit && self.channels != 1 {
            return Err("the digit steps need a 1-channel image".into());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Nchw,
    Nhwc,
}

/// How a picture of another size is brought to the model's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// To the model's height and width, whatever the aspect ratio.
    #[default]
    Stretch,
    /// Scaled to fit, aspect kept, the rest filled with zeros (black) right and below.
    Fit,
}

/// How a model trained here was trained, as `spinfer train` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Training {
    pub test_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub training_seconds: f64,
    /// The epoch kept: the best on the 5k validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Learning-rate schedule and augmentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_recipe: Option<String>,
    /// The training data and its licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Every input of the graph, in the graph's order.
    pub inputs: Vec<TensorSpec>,
    /// Every output of the graph, in the graph's order.
    pub outputs: Vec<TensorSpec>,
    /// Labels of the first output's classes, for a classifier.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// How `/predict` turns a picture into the first input; absent for a model that is not an
    /// image model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// SHA-256 of the `.onnx` file, lowercase hex.
    pub sha256: String,
    /// Parameters, counted from the ONNX graph where countable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
    /// Multiply-adds per item, counted from the ONNX graph where countable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiply_adds: Option<u64>,
    /// Where the model came from: the trainer here, or the file imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
}

impl ModelCard {
    pub fn from_json(bytes: &[u8]) -> Result<ModelCard, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Whether `/predict` can serve the model: an image block for its first input, and a first
    /// output of `[N, classes]` that its labels (when it has any) name.
    pub fn image_classifier(&self) -> Option<(&ImageSpec, usize)> {
        let image = self.image.as_ref()?;
        let output = self.outputs.first()?;
        let [_, classes] = output.shape.as_slice() else {
            return None;
        };
        let classes = classes.fixed()?;
        let named = self.labels.is_empty() || self.labels.len() == classes;
        (named && classes > 0 && image.check().is_ok()).then_some((image, classes))
    }

    /// The label of class `index`: the card's, else the index itself.
    pub fn label(&self, index: usize) -> String {
        self.labels
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }
}

/// How pixels become the model's input; recorded in cards and ONNX metadata.
pub const PREPROCESSING: &str = "28x28 grayscale, white ink on black (MNIST), row-major; pixel/255 into [0,1]; \
     NCHW float32 [N,1,28,28]. PNG/JPEG uploads: invert a light background, crop to the ink's bounding box, \
     scale the longer side to 20 px, centre by centre of mass in 28x28.";

#[cfg(test)]
mod tests {
    use super::*;

    fn card(json: &str) -> ModelCard {
        ModelCard::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_committed_cards_read_and_name_their_contract() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        for name in ["mnist-compact", "mnist-seed", "mnist-cnn", "mnist-lean"] {
            let card = card(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap());
            assert_eq!(card.inputs[0].oip_shape(), vec![-1, 1, 28, 28]);
            assert_eq!(
                card.image_classifier().map(|(i, c)| (i.digit, c)),
                Some((true, 10))
            );
            assert!(card.training.is_some(), "{name}");
        }
    }

    #[test]
    fn an_imported_card_needs_only_its_contract() {
        let card = card(
            r#"{"name":"cls","version":"1","sha256":"00",
                "inputs":[{"name":"x","dtype":"float32","shape":["batch",3,48,192]}],
                "outputs":[{"name":"y","dtype":"float32","shape":["batch",2]}]}"#,
        );
        assert!(card.training.is_none() && card.image.is_none());
        assert_eq!(card.inputs[0].oip_shape(), vec![-1, 3, 48, 192]);
        assert!(card.inputs[0].accepts(&[4, 3, 48, 192]));
        assert!(!card.inputs[0].accepts(&[4, 3, 48, 191]));
        assert!(!card.inputs[0].accepts(&[3, 48, 192]));
        assert_eq!(card.image_classifier(), None);
        let json = serde_json::to_string(&card).unwrap();
        assert!(
            !json.contains("test_accuracy") && !json.contains("labels"),
            "{json}"
        );
        assert_eq!(ModelCard::from_json(json.as_bytes()).unwrap(), card);
    }

    #[test]
    fn image_blocks_are_checked() {
        let mut image: ImageSpec =
            serde_json::from_str(r#"{"height":48,"width":192,"channels":3,"mean":[0.5],"std":[0.5]}"#)
                .unwrap();
        assert_eq!(image.shape(), vec![1, 3, 48, 192]);
        assert!(image.check().is_ok());
        image.std = vec![1.0, 0.0, 1.0];
        assert!(image.check().is_err());
        image.std = vec![1.0];
        image.digit = true;
        assert!(image.check().unwrap_err().contains("1-channel"));
    }
}
