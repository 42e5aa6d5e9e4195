//! The training loop's settings: [`TrainConfig`], the divergence rule's [`Divergence`] and
//! the [`Monitor`] of early stopping.

use super::*;
use crate::loss::{self, Loss};
use crate::network::Objective;

/// Settings of the training loop (the optimiser and schedule are passed separately).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Examples per mini-batch; ≥ the training-set size means full-batch gradient descent.
    pub batch_size: usize,
    pub loss: Loss,
    /// The notes' L2 penalty λ in L(w) + λ Σ w² (weights only). PyTorch's `weight_decay` = 2λ.
    pub l2: f64,
    /// Stop when the full training gradient's norm ‖∇L‖ is at most this.
    pub grad_tol: Option<f64>,
    /// Early stopping: stop after this many epochs without a lower validation loss.
    pub patience: Option<usize>,
    /// Draw mini-batches in a fresh random order each epoch (false: data order, every epoch).
    pub shuffle: bool,
    /// Threads: each batch is split between them (see [`crate::parallel`]; with dropout each
    /// thread draws its masks from its own generator). Without the `threads` feature
    /// (WebAssembly) the run is on the calling thread whatever this says.
    pub threads: usize,
    /// Class weights of the training loss (see [`loss::ClassWeights`]); the reported
    /// validation loss stays unweighted.
    pub class_weights: Option<loss::ClassWeights>,
    /// What early stopping watches on the validation set.
    pub monitor: Monitor,
    /// The finite blow-up rule (`None`: only NaN and infinite losses count as divergence).
    pub divergence: Option<Divergence>,
    /// Flush subnormal floats to zero on the training threads (see [`crate::subnormals`]);
    /// `false` keeps exact IEEE arithmetic, which on Intel cores can make steps far slower.
    pub flush_subnormals: bool,
}

/// The rule for a finite blow-up: training has diverged when the mean loss of a mini-batch is
/// above `factor` × its reference for `steps` mini-batches in a row. The reference is the larger
/// of the run's first mini-batch loss and the loss of the all-zero output on a batch of the
/// training set (the chance level: ln k for cross-entropy, ln 2 per output for BCE, the mean
/// square of the targets for MSE) — so a run started from weights that already fit is not
/// stopped for noise around a tiny loss. Defaults: 10 × for 5 steps.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Divergence {
    pub factor: f64,
    pub steps: usize,
}

impl Default for Divergence {
    fn default() -> Self {
        Divergence {
            factor: 10.0,
            steps: 5,
        }
    }
}

/// The validation figure early stopping minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Monitor {
    /// The validation loss (Keras's `val_loss`).
    #[default]
    Loss,
    /// The validation error rate 1 − accuracy (scikit-learn's early stopping watches the
    /// validation score), ties broken by the lower validation loss. Falls back to the loss
    /// when the loss has no accuracy.
    Accuracy,
}

impl Monitor {
    /// The number to minimise: the loss, or 1 − accuracy + 10⁻¹⁰·min(loss, 10³) (the loss term
    /// is below 10⁻⁷, less than one example's share of any validation set under 10⁷ examples,
    /// so it only breaks ties).
    pub fn key(self, e: &Evaluation) -> f64 {
        match (self, e.accuracy) {
            (Monitor::Accuracy, Some(a)) => 1.0 - a + 1e-10 * e.loss.min(1e3),
            _ => e.loss,
        }
    }
}

impl TrainConfig {
    /// The loss of a mini-batch of `denom` rows (or of the whole set, `denom` = n), with the
    /// configured loss and class weights.
    pub fn objective(&self, denom: usize) -> Objective<'_> {
        Objective {
            loss: self.loss,
            class_weights: self.class_weights.as_ref(),
            denom: denom as f64,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            loss: Loss::CrossEntropy,
            l2: 0.0,
            grad_tol: None,
            patience: None,
            shuffle: true,
            threads: 1,
            class_weights: None,
            monitor: Monitor::Loss,
            divergence: Some(Divergence::default()),
            flush_subnormals: true,
        }
    }
}
