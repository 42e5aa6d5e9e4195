//! Evaluation figures beyond the loss: accuracy, per-class precision and recall and the
//! confusion matrix for classification; RMSE and R² for regression.
//!
//! ```text
//! precision_c = TP_c / (TP_c + FP_c)     (of the examples predicted c, the share that are c)
//! recall_c    = TP_c / (TP_c + FN_c)     (of the examples that are c, the share predicted c)
//! RMSE        = √( (1/(n·k)) Σ (ŷ − y)² )
//! R²          = 1 − Σ (ŷ − y)² / Σ (y − ȳ)²   (per target column, then averaged, as scikit-learn's r2_score)
//! F1_c        = 2·TP_c / (2·TP_c + FP_c + FN_c)   (0 when the class is never true nor predicted)
//! macro-F1    = mean of F1_c over the classes that occur as true or predicted labels
//!               (scikit-learn's f1_score(average='macro') without `labels`, zero_division=0)
//! ROC-AUC     = P(score of a random positive > score of a random negative) + ½·P(tie)
//!             = (Σ ranks of positives − n₊(n₊ + 1)/2) / (n₊·n₋), ranks averaged over ties
//!               (two classes; the score is z₁ − z₀, monotone in softmax's p₁; scikit-learn's
//!               roc_auc_score; undefined, so absent, when one class has no examples)
//! ```

use crate::data::{BatchBuf, Dataset, Targets};
use crate::loss::argmax;
use crate::network::{Network, Workspace};
use crate::tensor::Scalar;

/// Raw network outputs (logits, or values) for every example, `n × outputs`, in evaluation mode.
pub fn outputs<T: Scalar>(net: &Network<T>, data: &Dataset) -> Vec<T> {
    let chunk = data.len().clamp(1, 256);
    let mut ws = Workspace::inference(net, chunk);
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
    /// Per class F1 (0 where the class is neither true nor predicted).
    pub f1: Vec<f64>,
    pub macro_f1: f64,
    /// Two classes only, and both present.
    pub roc_auc: Option<f64>,
}

/// Regression figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RegressionReport {
    pub rmse: f64,
    /// Mean of the per-column R²; NaN (`null` in JSON) when undefined, see `r2_undefined`.
    pub r2: f64,
    /// Why R² is undefined: a target column whose values do not vary beyond the rounding of
    /// f32 (standard deviation ≤ ε·max|y|, ε = 2⁻²³), so there is no variance to explain and
    /// 1 − SSE/SST is 0/0 or a rounding artefact (−10⁶ and worse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r2_undefined: Option<String>,
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
    let (f1, macro_f1) = f1_scores(&confusion);
    let roc_auc = if k == 2 {
        let scores: Vec<f64> = z.chunks_exact(2).map(|r| r[1].f64() - r[0].f64()).collect();
        let positive: Vec<bool> = labels.iter().map(|&y| y == 1).collect();
        roc_auc(&scores, &positive)
    } else {
        None
    };
    ClassReport {
        accuracy,
        confusion,
        precision,
        recall,
        f1,
        macro_f1,
        roc_auc,
    }
}

/// Per-class F1 and their macro average over the classes that occur (true or predicted), from
/// `confusion[true][predicted]`.
pub fn f1_scores(confusion: &[Vec<usize>]) -> (Vec<f64>, f64) {
    let k = confusion.len();
    let (mut f1, mut sum, mut present) = (vec![0.0; k], 0.0, 0usize);
    for c in 0..k {
        let tp = confusion[c][c];
        let fn_ = confusion[c].iter().sum::<usize>() - tp;
        let fp = (0..k).map(|t| confusion[t][c]).sum::<usize>() - tp;
        if tp + fn_ + fp > 0 {
            f1[c] = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
            sum += f1[c];
            present += 1;
        }
    }
    (
        f1,
        if present > 0 {
            sum / present as f64
        } else {
            0.0
        },
    )
}

/// The area under the ROC curve of `scores` for the labels `positive` (Mann–Whitney U with
/// ties counted ½); `None` unless there are positives and negatives.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * idx[i..=j].iter().filter(|&&t| positive[t]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
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
    // A target column that does not vary beyond f32's rounding has no variance to explain:
    // R² is undefined there (scikit-learn returns 0 or 1 by convention; we say so instead).
    let mut largest = vec![0.0f64; k];
    for row in y.chunks_exact(k) {
        for (m, &v) in largest.iter_mut().zip(row) {
            *m = m.max((v as f64).abs());
        }
    }
    let flat = (0..k).find(|&j| {
        let std = (sst[j] / n.max(1) as f64).sqrt();
        std.is_nan() || std <= f32::EPSILON as f64 * largest[j]
    });
    if let Some(j) = flat {
        let which = if k > 1 {
            format!("target column {j}")
        } else {
            "the target".to_string()
        };
        return RegressionReport {
            rmse,
            r2: f64::NAN,
            r2_undefined: Some(format!(
                "{which} does not vary in this set (standard deviation {:.3e} around {:.6e})",
                (sst[j] / n.max(1) as f64).sqrt(),
                mean[j]
            )),
        };
    }
    let r2 = (0..k).map(|j| 1.0 - sse[j] / sst[j]).sum::<f64>() / k.max(1) as f64;
    RegressionReport {
        rmse,
        r2,
        r2_undefined: None,
    }
}

/// For BCE with 0/1 targets: macro-F1 over the 0/1 decisions (σ(z) > ½) of every output
/// column pooled, and, with one output, ROC-AUC of the logits.
pub fn bce_binary<T: Scalar>(net: &Network<T>, data: &Dataset) -> (Option<f64>, Option<f64>) {
    let Targets::Values { data: y, cols } = data.targets() else {
        return (None, None);
    };
    if !data.hard_targets() {
        return (None, None); // soft targets: no class to be right or wrong about
    }
    let z = outputs(net, data);
    let mut confusion = vec![vec![0usize; 2]; 2];
    for (zv, &yv) in z.iter().zip(y) {
        confusion[usize::from(yv > 0.5)][usize::from(zv.f64() > 0.0)] += 1;
    }
    let auc = if *cols == 1 {
        let scores: Vec<f64> = z.iter().map(|v| v.f64()).collect();
        let pos: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
        roc_auc(&scores, &pos)
    } else {
        None
    };
    (Some(f1_scores(&confusion).1), auc)
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
        // F1: class 0: 2·1/(2+1+1) = 0.5; class 1: 4/(4+1+0) = 0.8; class 2: 0.
        assert_eq!(r.f1, vec![0.5, 0.8, 0.0]);
        assert!((r.macro_f1 - 1.3 / 3.0).abs() < 1e-15);
        assert_eq!(r.roc_auc, None);
    }

    /// y = (1, 2, 3), ŷ = (1, 2, 4): SSE 1, SST 2, so R² = 0.5 and RMSE = √(1/3).
    #[test]
    fn rmse_and_r2_by_hand() {
        let r = regression(&[1.0f64, 2.0, 4.0], &[1.0, 2.0, 3.0], 1);
        assert!((r.r2 - 0.5).abs() < 1e-12);
        assert!((r.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
