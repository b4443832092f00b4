//! The model card: the `<name>.json` written beside every `<name>.onnx`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// `-1` marks the dynamic batch dimension.
    pub shape: Vec<i64>,
    pub dtype: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub description: String,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub preprocessing: String,
    pub labels: Vec<String>,
    pub test_accuracy: f64,
    pub per_class_accuracy: Vec<f64>,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub training_seconds: f64,
    pub parameters: usize,
    /// SHA-256 of the `.onnx` file, lowercase hex.
    pub sha256: String,
    pub framework: String,
    // What later cards add (absent from older ones, so those stay as they were written).
    /// Multiply-adds per image, counted from the ONNX graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiply_adds: Option<u64>,
    /// The epoch kept: the best on the 5k validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Learning-rate schedule and augmentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_recipe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitations: Option<String>,
    /// The training data and its licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_data: Option<String>,
}

impl ModelCard {
    pub fn from_json(bytes: &[u8]) -> Result<ModelCard, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// How pixels become the model's input; recorded in cards and ONNX metadata.
pub const PREPROCESSING: &str = "28x28 grayscale, white ink on black (MNIST), row-major; pixel/255 into [0,1]; \
     NCHW float32 [N,1,28,28]. PNG/JPEG uploads: invert a light background, crop to the ink's bounding box, \
     scale the longer side to 20 px, centre by centre of mass in 28x28.";
