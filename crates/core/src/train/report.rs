//! What training reports: each epoch's [`EpochMetrics`], why it stopped ([`StopReason`]), the
//! final [`TrainReport`], and an [`Evaluation`] on a data set.

use super::EpochSums;
use crate::data::Dataset;

/// What one epoch measured, handed to the [`crate::train::Observer`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    pub lr: f64,
    /// Mean data loss over the epoch's mini-batches (as Keras and scikit-learn report it).
    pub train_loss: f64,
    /// Share of training examples classified correctly during the epoch (classification only).
    pub train_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// ‖∇L‖ over the whole training set after the epoch (only computed with `grad_tol`).
    pub grad_norm: Option<f64>,
    /// Training time of the epoch, evaluation excluded.
    pub seconds: f64,
    pub examples_per_second: f64,
    /// R² = 1 − SSE/SST of the epoch's training loss (MSE only; during the epoch, as `train_loss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_r2: Option<f64>,
    /// R² on the validation set after the epoch (MSE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_r2: Option<f64>,
}

/// Why training stopped.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StopReason {
    /// All epochs were run.
    MaxEpochs,
    /// ‖∇L‖ fell to the tolerance.
    GradientTolerance { norm: f64 },
    /// The monitored validation figure (loss, or accuracy: [`crate::train::Monitor`]) did not improve for
    /// `patience` epochs; weights of `best_epoch` restored.
    EarlyStopping { best_epoch: usize },
    /// The observer asked to stop (Ctrl-C): `epoch` epochs and `step` steps of the next were done.
    Interrupted { epoch: usize, step: usize },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::MaxEpochs => write!(f, "all epochs done"),
            StopReason::GradientTolerance { norm } => {
                write!(f, "gradient norm {norm:.3e} below tolerance")
            }
            StopReason::EarlyStopping { best_epoch } => {
                write!(
                    f,
                    "early stop: the validation figure did not improve; weights of epoch {best_epoch} restored"
                )
            }
            StopReason::Interrupted { epoch, step } => {
                write!(f, "interrupted after epoch {epoch}")?;
                if *step > 0 {
                    write!(f, " and {step} steps of epoch {}", epoch + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// The outcome of [`crate::train::train`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub history: Vec<EpochMetrics>,
    pub stop: StopReason,
    /// The epoch whose weights the network holds at the end (the last, unless early stopping restored one).
    pub best_epoch: usize,
}

/// Loss and accuracy of a network on a data set.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Mean data loss (no penalty).
    pub loss: f64,
    /// Share classified correctly (classification losses only).
    pub accuracy: Option<f64>,
}

impl EpochMetrics {
    /// The metrics of 0-based `epoch` trained at rate `lr` in `seconds`, from its running `sums`
    /// over `n` examples, the full-gradient norm, the validation set's evaluation, and the SSTs
    /// of R² (training, validation; MSE only).
    pub(super) fn of_epoch(
        (epoch, lr, seconds): (usize, f64, f64),
        sums: &EpochSums,
        n: usize,
        grad_norm: Option<f64>,
        val: Option<(Evaluation, &Dataset)>,
        (sst_train, sst_val): (Option<f64>, Option<f64>),
    ) -> Self {
        let val_eval = val.map(|(e, _)| e);
        EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: sums.loss_sum / n as f64,
            train_accuracy: sums.has_accuracy.then(|| sums.correct as f64 / n as f64),
            val_loss: val_eval.map(|e| e.loss),
            val_accuracy: val_eval.and_then(|e| e.accuracy),
            grad_norm,
            seconds,
            examples_per_second: n as f64 / seconds.max(1e-12),
            // The MSE loss of one example is ½ Σⱼ (ŷⱼ − yⱼ)², so SSE = 2 n · mean loss.
            train_r2: sst_train.map(|sst| 1.0 - 2.0 * sums.loss_sum / sst),
            val_r2: sst_val
                .zip(val)
                .map(|(sst, (e, v))| 1.0 - 2.0 * e.loss * v.len() as f64 / sst),
        }
    }
}
