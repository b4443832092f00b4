//! Runs an exported ONNX file through native tract and compares it with reference probabilities.

use anyhow::{Result, anyhow};
use spinfer_engine::Model;

use crate::metrics::{Report, predictions};
use spinfer_mnist::{CLASSES, Split};

pub struct Check {
    pub report: Report,
    pub disagreements: usize,
    pub max_abs_diff: f32,
}

/// tract's probabilities for every image of `split`, in batches.
pub fn tract_probabilities(classifier: &Model, split: &Split) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(split.len() * CLASSES);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(500) {
        out.extend(classifier.classify(&split.normalized(chunk.iter().copied()))?);
    }
    Ok(out)
}

pub fn against_tract(onnx: &[u8], split: &Split, reference: &[f32]) -> Result<Check> {
    let classifier = Model::from_onnx(onnx).map_err(|e| anyhow!("tract rejects the export: {e}"))?;
    let probs = tract_probabilities(&classifier, split)?;
    let ours = predictions(&probs);
    let theirs = predictions(reference);
    Ok(Check {
        report: Report::new(&split.labels, &ours),
        disagreements: ours.iter().zip(&theirs).filter(|(a, b)| a != b).count(),
        max_abs_diff: probs
            .iter()
            .zip(reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max),
    })
}
