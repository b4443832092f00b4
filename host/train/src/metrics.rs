//! Accuracy, per-class accuracy and the confusion matrix of a set of predictions.

use serde::Serialize;

use spinfer_mnist::CLASSES;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub total: usize,
    pub correct: usize,
    /// `confusion[true][predicted]`.
    pub confusion: [[usize; CLASSES]; CLASSES],
}

impl Report {
    pub fn new(labels: &[u8], predictions: &[usize]) -> Report {
        assert_eq!(labels.len(), predictions.len());
        let mut confusion = [[0; CLASSES]; CLASSES];
        for (&label, &predicted) in labels.iter().zip(predictions) {
            confusion[label as usize][predicted] += 1;
        }
        let correct = (0..CLASSES).map(|c| confusion[c][c]).sum();
        Report {
            total: labels.len(),
            correct,
            confusion,
        }
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }

    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| row[c] as f64 / row.iter().sum::<usize>().max(1) as f64)
            .collect()
    }

    /// Human-readable: accuracy, per-class accuracy and the matrix.
    pub fn render(&self) -> String {
        let mut out = format!(
            "accuracy {:.2}% ({}/{})\nper-class accuracy:\n",
            self.accuracy() * 100.0,
            self.correct,
            self.total
        );
        for (class, acc) in self.per_class_accuracy().iter().enumerate() {
            out += &format!("  {class}: {:.2}%\n", acc * 100.0);
        }
        out += "confusion matrix (rows: true label, columns: predicted)\n     ";
        for c in 0..CLASSES {
            out += &format!("{c:>6}");
        }
        out += "\n";
        for (label, row) in self.confusion.iter().enumerate() {
            out += &format!("  {label}: ");
            for count in row {
                out += &format!("{count:>6}");
            }
            out += "\n";
        }
        out
    }
}

/// The argmax of each row of `CLASSES` probabilities.
pub fn predictions(probs: &[f32]) -> Vec<usize> {
    probs.chunks(CLASSES).map(spinfer_engine::argmax).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_accuracies() {
        let report = Report::new(&[0, 0, 1, 2], &[0, 1, 1, 0]);
        assert_eq!(report.correct, 2);
        assert_eq!(report.accuracy(), 0.5);
        assert_eq!(report.confusion[0][1], 1);
        assert_eq!(report.confusion[2][0], 1);
        let per_class = report.per_class_accuracy();
        assert_eq!(per_class[..3], [0.5, 1.0, 0.0]);
    }
}
