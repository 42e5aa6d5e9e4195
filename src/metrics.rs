//! Evaluation figures beyond the loss: accuracy, per-class precision and recall and the
//! confusion matrix for classification; RMSE and R² for regression.
//!
//! ```text
//! precision_c = TP_c / (TP_c + FP_c)     (of the examples predicted c, the share that are c)
//! recall_c    = TP_c / (TP_c + FN_c)     (of the examples that are c, the share predicted c)
//! RMSE        = √( (1/(n·k)) Σ (ŷ − y)² )
//! R²          = 1 − Σ (ŷ − y)² / Σ (y − ȳ)²   (per target column, then averaged, as scikit-learn's r2_score)
//! ```

use crate::data::{BatchBuf, Dataset, Targets};
use crate::loss::argmax;
use crate::network::{Network, Workspace};
use crate::tensor::Scalar;

/// Raw network outputs (logits, or values) for every example, `n × outputs`, in evaluation mode.
pub fn outputs<T: Scalar>(net: &Network<T>, data: &Dataset) -> Vec<T> {
    let chunk = data.len().clamp(1, 256);
    let mut ws = Workspace::new(net, chunk);
    let mut batch = BatchBuf::new(data, chunk);
    let mut out = Vec::with_capacity(data.len() * net.outputs());
    let mut idx = Vec::with_capacity(chunk);
    for start in (0..data.len()).step_by(chunk) {
        idx.clear();
        idx.extend(start..(start + chunk).min(data.len()));
        data.gather(&idx, ws.input_mut(idx.len()), &mut batch);
        out.extend_from_slice(net.forward(&mut ws, idx.len(), None));
    }
    out
}

/// Classification figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassReport {
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Per class; 0 where nothing was predicted (as scikit-learn's zero_division=0).
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
}

/// Regression figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RegressionReport {
    pub rmse: f64,
    /// Mean of the per-column R².
    pub r2: f64,
}

/// Confusion matrix, precision and recall from logits `z` (`n × k`) and labels.
pub fn classification<T: Scalar>(z: &[T], k: usize, labels: &[u32]) -> ClassReport {
    let mut confusion = vec![vec![0usize; k]; k];
    for (row, &y) in z.chunks_exact(k).zip(labels) {
        confusion[y as usize][argmax(row)] += 1;
    }
    let ratio = |num: usize, den: usize| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let precision = (0..k)
        .map(|c| ratio(confusion[c][c], (0..k).map(|t| confusion[t][c]).sum()))
        .collect();
    let recall = (0..k)
        .map(|c| ratio(confusion[c][c], confusion[c].iter().sum()))
        .collect();
    let accuracy = ratio((0..k).map(|c| confusion[c][c]).sum(), labels.len());
    ClassReport {
        accuracy,
        confusion,
        precision,
        recall,
    }
}

/// RMSE and R² of predictions `p` against targets `y`, both `n × k`.
pub fn regression<T: Scalar>(p: &[T], y: &[f32], k: usize) -> RegressionReport {
    let n = y.len() / k.max(1);
    let mut sse = vec![0.0f64; k];
    let mut mean = vec![0.0f64; k];
    for row in y.chunks_exact(k) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n as f64;
        }
    }
    let mut sst = vec![0.0f64; k];
    for (prow, yrow) in p.chunks_exact(k).zip(y.chunks_exact(k)) {
        for j in 0..k {
            let (pv, yv) = (prow[j].f64(), yrow[j] as f64);
            sse[j] += (pv - yv).powi(2);
            sst[j] += (yv - mean[j]).powi(2);
        }
    }
    let rmse = (sse.iter().sum::<f64>() / (n * k).max(1) as f64).sqrt();
    // A constant target column has no variance to explain: R² is 1 if predicted exactly, else 0 (scikit-learn's convention).
    let r2 = (0..k)
        .map(|j| {
            if sst[j] > 0.0 {
                1.0 - sse[j] / sst[j]
            } else if sse[j] == 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / k.max(1) as f64;
    RegressionReport { rmse, r2 }
}

/// Either report, for a data set.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Report {
    Classes(ClassReport),
    Regression(RegressionReport),
}

/// The report that fits the data's targets.
pub fn report<T: Scalar>(net: &Network<T>, data: &Dataset) -> Report {
    let z = outputs(net, data);
    match data.targets() {
        Targets::Classes { labels, n_classes } => {
            Report::Classes(classification(&z, *n_classes, labels))
        }
        Targets::Values { data: y, cols } => Report::Regression(regression(&z, y, *cols)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-counted: labels (0,0,1,1,2), predictions (0,1,1,1,0).
    #[test]
    fn confusion_precision_recall_by_hand() {
        let z: Vec<f64> = [0, 1, 1, 1, 0]
            .iter()
            .flat_map(|&p| (0..3).map(move |c| if c == p { 1.0 } else { 0.0 }))
            .collect();
        let r = classification(&z, 3, &[0, 0, 1, 1, 2]);
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
        assert_eq!(r.precision, vec![0.5, 2.0 / 3.0, 0.0]);
        assert_eq!(r.recall, vec![0.5, 1.0, 0.0]);
        assert_eq!(r.accuracy, 0.6);
    }

    /// y = (1, 2, 3), ŷ = (1, 2, 4): SSE 1, SST 2, so R² = 0.5 and RMSE = √(1/3).
    #[test]
    fn rmse_and_r2_by_hand() {
        let r = regression(&[1.0f64, 2.0, 4.0], &[1.0, 2.0, 3.0], 1);
        assert!((r.r2 - 0.5).abs() < 1e-12);
        assert!((r.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
