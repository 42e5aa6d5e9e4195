//! The training loop: epochs of mini-batches, the optimiser's step, stopping rules and metrics.
//!
//! Each epoch draws a fresh random permutation of the training set and walks it in mini-batches
//! of `batch_size` (the last, smaller batch is kept), so every example is used exactly once per
//! epoch; `batch_size ≥ n` is full-batch gradient descent. For each batch B:
//!
//! ```text
//! L_B(w) = (1/|B|) Σ_{i∈B} ℓ(f(xᵢ; w), yᵢ) + λ Σ w²     (λ: the notes' L2 penalty, weights only)
//! g      = ∇L_B(w)                                     (backpropagation)
//! w      ← optimiser step with g and the epoch's learning rate ηₑ
//! ```
//!
//! Stopping rules, checked after each epoch: the epoch limit; ‖∇L(w)‖ ≤ `grad_tol` with ∇L the
//! full training-set gradient (the notes' "stop when ∇L ≈ 0"); early stopping when the validation
//! loss has not improved for `patience` epochs, after which the best weights are restored.
//!
//! Divergence stops training at once with [`Error::Diverged`], wherever it shows: a mini-batch
//! loss that is NaN or infinite (checked before each update), weights that are not finite
//! (checked after each epoch's last update and before every checkpoint), a validation loss that
//! is not finite (never counted as an improvement), and a finite blow-up — the rule of
//! [`Divergence`]. An [`Observer`] may ask training to stop after any step
//! ([`Observer::should_stop`], e.g. on Ctrl-C): training then ends with
//! [`StopReason::Interrupted`] and a checkpoint of the exact state.
//!
//! The loop allocates all its buffers before the first step; a step allocates nothing.

use std::time::Instant;

use crate::data::{BatchBuf, Dataset};
use crate::error::{Error, Result};
use crate::loss::{self, Loss, Penalty};
use crate::network::{Network, Objective, Workspace};
use crate::optim::{OptimizerConfig, Schedule, Sharded};
use crate::parallel::DataParallel;
use crate::rng::Rng;
use crate::tensor::{Beta, Scalar, Threads};

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
    /// Threads: without dropout each batch is split between them (see [`crate::parallel`]);
    /// with dropout each matrix product is. Without the `threads` feature (WebAssembly) the
    /// run is on the calling thread whatever this says.
    pub threads: usize,
    /// Class weights of the training loss (see [`loss::ClassWeights`]); the reported
    /// validation loss stays unweighted.
    pub class_weights: Option<loss::ClassWeights>,
    /// What early stopping watches on the validation set.
    pub monitor: Monitor,
    /// The finite blow-up rule (`None`: only NaN and infinite losses count as divergence).
    pub divergence: Option<Divergence>,
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
        }
    }
}

/// What one epoch measured, handed to the [`Observer`].
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

/// Σ (y − ȳ)² over a regression data set's targets, each column about its own mean (the SST
/// of R²); `None` for class labels.
fn total_sum_of_squares(data: &Dataset) -> Option<f64> {
    match data.targets() {
        crate::data::Targets::Values { data: y, cols } if *cols > 0 => {
            let n = y.len() / cols;
            let mut sst = 0.0;
            for j in 0..*cols {
                let mean = (0..n).map(|i| y[i * cols + j] as f64).sum::<f64>() / n.max(1) as f64;
                sst += (0..n)
                    .map(|i| (y[i * cols + j] as f64 - mean).powi(2))
                    .sum::<f64>();
            }
            Some(sst)
        }
        _ => None,
    }
}

/// Why training stopped.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StopReason {
    /// All epochs were run.
    MaxEpochs,
    /// ‖∇L‖ fell to the tolerance.
    GradientTolerance { norm: f64 },
    /// The monitored validation figure (loss, or accuracy: [`Monitor`]) did not improve for
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

/// The outcome of [`train`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub history: Vec<EpochMetrics>,
    pub stop: StopReason,
    /// The epoch whose weights the network holds at the end (the last, unless early stopping restored one).
    pub best_epoch: usize,
}

/// Watches training without the loop knowing who watches (the CLI, a progress bar, a user).
pub trait Observer {
    /// After each epoch.
    fn on_epoch(&mut self, _metrics: &EpochMetrics) {}
    /// Before the first step: the maximum number of epochs and the steps per epoch.
    fn on_start(&mut self, _epochs: usize, _steps_per_epoch: usize) {}
    /// After each optimiser step: 0-based step within the epoch, steps per epoch, running mean loss.
    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize, _running_loss: f64) {}
    /// Whether [`Observer::on_weights`] should be called (it costs a copy of the weights).
    fn wants_weights(&self) -> bool {
        false
    }
    /// The weights before training (epoch 0, unless resuming) and after each epoch.
    fn on_weights(&mut self, _epoch: usize, _weights: &[f64]) {}
    /// Asked after each step: `true` ends training there, with a checkpoint of the exact state
    /// and [`StopReason::Interrupted`] (used for Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
    /// Before training: the data report (what a CSV's columns became), one line each.
    fn on_data(&mut self, _report: &[String]) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}

impl<F: FnMut(&EpochMetrics)> Observer for F {
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self(m)
    }
}

/// Loss and accuracy of a network on a data set.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Mean data loss (no penalty).
    pub loss: f64,
    /// Share classified correctly (classification losses only).
    pub accuracy: Option<f64>,
}

/// The running sums of the epoch in progress, from which its training loss and accuracy are
/// computed at its end; a checkpoint taken mid-epoch carries them over.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochSums {
    /// Σᵢ ℓᵢ of the steps taken so far (data loss, no penalty).
    pub loss_sum: f64,
    /// Examples classified correctly so far.
    pub correct: usize,
    /// Whether the loss classifies (there is an accuracy).
    pub has_accuracy: bool,
    /// Training seconds of the epoch so far.
    pub seconds: f64,
}

impl EpochSums {
    /// Adds one mini-batch's summed loss and correct count.
    fn add(&mut self, loss_sum: f64, correct: Option<usize>) {
        self.loss_sum += loss_sum;
        if let Some(c) = correct {
            self.correct += c;
            self.has_accuracy = true;
        }
    }
}

/// Everything needed to continue a run exactly where it was: what a checkpoint holds.
///
/// Resuming from a state taken by [`train_with`] gives the same final weights, bit for bit, as
/// the run that was never interrupted (same data, settings and thread count).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState<T> {
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Steps of that epoch already taken (0: the epoch has not started).
    pub step: usize,
    /// The epoch's batch order (empty when `step` is 0: it is drawn when the epoch starts).
    pub order: Vec<usize>,
    /// The generator, as it is after drawing `order`.
    pub rng: Rng,
    pub params: Vec<T>,
    pub optimizer_steps: u64,
    /// The optimiser's named buffers (see [`crate::optim::Optimizer::state`]).
    pub optimizer_state: Vec<(String, Vec<T>)>,
    /// Running sums of the epoch in progress.
    pub sums: EpochSums,
    pub history: Vec<EpochMetrics>,
    /// Early stopping's best so far: validation loss, 1-based epoch, weights.
    pub best: Option<(f64, usize, Vec<T>)>,
    /// The divergence rule's reference loss (once the first step has set it) and how many
    /// steps in a row have been above it (see [`Divergence`]).
    pub divergence: (Option<f64>, usize),
    /// Whether a mini-batch loss has been above the divergence rule's factor × its reference
    /// (the run must then end below chance level, see [`Divergence`]).
    pub spiked: bool,
    /// [`fingerprint`] of the training data (`None` in older checkpoints: not checked).
    pub data_fingerprint: Option<u64>,
}

/// A 64-bit FNV-1a hash of a data set as training sees it (normalised features and targets,
/// in order), so that a resumed run can tell it is given other data.
pub fn fingerprint(data: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bits: u32| {
        for b in bits.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let chunk = data.len().clamp(1, 256);
    let mut x = vec![0f32; chunk * data.n_features()];
    let mut batch = BatchBuf::<f32>::new(data, chunk);
    let mut idx = Vec::with_capacity(chunk);
    for start in (0..data.len()).step_by(chunk) {
        idx.clear();
        idx.extend(start..(start + chunk).min(data.len()));
        let m = idx.len();
        data.gather(&idx, &mut x[..m * data.n_features()], &mut batch);
        x[..m * data.n_features()]
            .iter()
            .for_each(|v| eat(v.to_bits()));
        match batch.targets() {
            crate::loss::BatchTargets::Classes(y) => y[..m].iter().for_each(|&c| eat(c)),
            crate::loss::BatchTargets::Values(y) => y[..m * data.n_outputs()]
                .iter()
                .for_each(|v| eat(v.to_bits())),
        }
    }
    eat(data.len() as u32);
    h
}

/// When to take a checkpoint: `epoch`, or a number of steps (as the CLI and config files spell it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// After each epoch (after its validation and stopping checks).
    Epoch,
    /// After every N optimiser steps (counted over the whole run).
    Steps(usize),
    /// Only the final state, when training ends or is interrupted (`end`).
    End,
}

/// Checkpointing: when, and what to call with the state (e.g. to write it to a file). Besides
/// the states `every` asks for, `save` is called once more when training ends (normally, by a
/// stopping rule or interrupted) with the final state, from which training can be continued
/// for more epochs.
pub struct Checkpointing<'a, T> {
    pub every: Every,
    pub save: &'a mut dyn FnMut(&TrainState<T>) -> Result<()>,
}

/// Trains `net` on `data`, validating on `val` if given, and returns the per-epoch history.
///
/// `rng` draws the batch order and dropout masks. Fails before the first step if the data does
/// not fit the network or a setting is out of range, and during training if the loss diverges.
#[allow(clippy::too_many_arguments)]
pub fn train<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset,
    val: Option<&Dataset>,
    optimizer: &OptimizerConfig,
    schedule: &Schedule,
    cfg: &TrainConfig,
    rng: &mut Rng,
    observer: &mut dyn Observer,
) -> Result<TrainReport> {
    train_with(
        net, data, val, optimizer, schedule, cfg, rng, observer, None, None,
    )
}

/// [`train`], optionally continuing from a saved [`TrainState`] and taking checkpoints.
#[allow(clippy::too_many_arguments)]
pub fn train_with<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset,
    val: Option<&Dataset>,
    optimizer: &OptimizerConfig,
    schedule: &Schedule,
    cfg: &TrainConfig,
    rng: &mut Rng,
    observer: &mut dyn Observer,
    resume: Option<TrainState<T>>,
    mut checkpoint: Option<Checkpointing<'_, T>>,
) -> Result<TrainReport> {
    check_fit(net, data, cfg.loss, "training data")?;
    if let Some(v) = val {
        check_fit(net, v, cfg.loss, "validation data")?;
    }
    optimizer.validate()?;
    if data.is_empty() {
        return Err(Error::setting(
            "training data",
            0,
            "no examples to train on",
        ));
    }
    if cfg.batch_size == 0 {
        return Err(Error::setting("batch_size", 0, "must be ≥ 1"));
    }
    if !(cfg.l2.is_finite() && cfg.l2 >= 0.0) {
        return Err(Error::setting("l2", cfg.l2, "must be a finite number ≥ 0"));
    }
    if let Some(Checkpointing {
        every: Every::Steps(0),
        ..
    }) = checkpoint
    {
        return Err(Error::setting("checkpoint-every", 0, "must be ≥ 1 step"));
    }
    let n = data.len();
    let bs = cfg.batch_size.min(n);
    check_memory(net, optimizer, cfg, bs)?;
    let mut ws = Workspace::new(net, bs).with_threads(Threads(cfg.threads.max(1)));
    // With several threads and no dropout, each batch is split between the threads (see
    // `parallel`); with dropout, the matrix products are split instead. Without the `threads`
    // feature everything runs on the calling thread.
    let has_dropout = net
        .layers()
        .iter()
        .any(|l| matches!(l, crate::Layer::Dropout(p) if *p > 0.0));
    let split = cfg!(feature = "threads") && cfg.threads > 1 && !has_dropout;
    let mut parallel = split.then(|| DataParallel::new(net, data, bs, cfg.threads));
    let mut batch = BatchBuf::new(data, bs);
    let mut grads = vec![T::zero(); net.param_count()];
    // The optimiser in one part per data-parallel thread, which update their parts together.
    let parts = parallel.as_ref().map_or(1, |p| p.threads());
    // A schedule that cycles momentum (one-cycle) needs the momentum buffer from the start.
    let cycled = schedule
        .step_momentum(0, 1)
        .map(|m| optimizer.with_momentum(m));
    let mut opt = Sharded::<T>::new(
        cycled.as_ref().unwrap_or(optimizer),
        net.param_count(),
        parts,
    );
    let mut order = Vec::with_capacity(n);
    let penalty = net.penalty(cfg.l2);
    let k = net.outputs();
    let steps = n.div_ceil(bs);

    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Vec<T>)> = None;
    let (mut first_epoch, mut first_step, mut carried) = (0, 0, EpochSums::default());
    let (mut reference, mut above): (Option<f64>, usize) = (None, 0);
    let mut spiked = false;
    // Checkpoints record the data they were taken on; only then is it computed.
    let data_fp = (checkpoint.is_some() || resume.is_some()).then(|| fingerprint(data));
    if let Some(s) = resume {
        if s.params.len() != net.param_count() {
            return Err(Error::shape(
                "resumed parameters",
                net.param_count(),
                s.params.len(),
            ));
        }
        if s.step > 0 && (s.order.len() != n || s.step >= steps) {
            return Err(Error::shape(
                "resumed batch order",
                format!("{n} examples, step < {steps}"),
                format!("{} examples, step {}", s.order.len(), s.step),
            ));
        }
        if s.step > 0 && !is_permutation(&s.order) {
            return Err(Error::shape(
                "resumed batch order",
                format!("a permutation of 0..{n}"),
                "repeated or out-of-range indices",
            ));
        }
        if let Some(i) = s.params.iter().position(|v| !v.f64().is_finite()) {
            return Err(Error::shape(
                format!("resumed parameter {i}"),
                "a finite number",
                s.params[i].f64(),
            ));
        }
        if let Some((_, at, p)) = &s.best
            && (p.len() != net.param_count() || *at > s.history.len())
        {
            return Err(Error::shape(
                "resumed best weights",
                format!(
                    "{} values from an epoch ≤ {}",
                    net.param_count(),
                    s.history.len()
                ),
                format!("{} values from epoch {at}", p.len()),
            ));
        }
        if s.history.len() != s.epoch {
            return Err(Error::shape(
                "resumed history",
                format!("{} epochs", s.epoch),
                format!("{} epochs", s.history.len()),
            ));
        }
        net.params_mut().copy_from_slice(&s.params);
        let buffers: Vec<(&str, &[T])> = s
            .optimizer_state
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        opt.set_state(s.optimizer_steps, &buffers)?;
        *rng = s.rng;
        (first_epoch, first_step, history, best) = (s.epoch, s.step, s.history, s.best);
        (reference, above) = s.divergence;
        spiked = s.spiked;
        if let (Some(saved), Some(now)) = (s.data_fingerprint, data_fp)
            && saved != now
        {
            return Err(Error::shape(
                "resumed training data",
                "the data the checkpoint was taken on",
                "other data (the file changed, or other settings select other rows or columns)",
            ));
        }
        carried = s.sums;
        if s.step > 0 {
            order = s.order;
        }
    }

    let r2 = |d: &Dataset| {
        (cfg.loss == Loss::Mse)
            .then(|| total_sum_of_squares(d))
            .flatten()
            .filter(|&s| s > 0.0)
    };
    let (sst_train, sst_val) = (r2(data), val.and_then(r2));
    let mut stop = StopReason::MaxEpochs;
    // The state to save when training ends mid-epoch (interrupted); `None`: at an epoch's end.
    let mut mid_epoch: Option<TrainState<T>> = None;
    // The divergence rule's floor: the loss of the all-zero output (chance level: ln k for
    // cross-entropy, ln 2 for BCE, the mean square of the targets for MSE) on one batch.
    let floor = if cfg.divergence.is_some() {
        let idx: Vec<usize> = (0..bs).collect();
        data.gather(&idx, ws.input_mut(bs), &mut batch);
        let zeros = vec![T::zero(); bs * k];
        (cfg.loss
            .evaluate(&zeros, bs, k, batch.targets(), None)
            .f64()
            / bs as f64)
            .max(f64::MIN_POSITIVE)
    } else {
        f64::MIN_POSITIVE
    };
    let report_weights = |observer: &mut dyn Observer, epoch: usize, net: &Network<T>| {
        if observer.wants_weights() {
            let w: Vec<f64> = net.params().iter().map(|v| v.f64()).collect();
            observer.on_weights(epoch, &w);
        }
    };
    observer.on_start(cfg.epochs, steps);
    if first_epoch == 0 && first_step == 0 {
        report_weights(observer, 0, net);
    }
    'epochs: for epoch in first_epoch..cfg.epochs {
        let mut lr = schedule.lr(optimizer.lr(), epoch, cfg.epochs);
        let started = Instant::now();
        let resuming = epoch == first_epoch && first_step > 0;
        if !resuming {
            data.epoch_order(&mut order, cfg.shuffle, rng);
        }
        let mut sums = if epoch == first_epoch {
            carried
        } else {
            EpochSums::default()
        };
        let before = sums.seconds;
        let skip = if resuming { first_step } else { 0 };
        for (step, idx) in order.chunks(bs).enumerate().skip(skip) {
            let m = idx.len();
            if schedule.per_step() {
                // Per-step schedules (one-cycle): the rate, and momentum, of this step of the run.
                let (s, total) = (epoch * steps + step, cfg.epochs * steps);
                lr = schedule.step_lr(optimizer.lr(), s, total);
                if let Some(mu) = schedule.step_momentum(s, total) {
                    opt.set_momentum(mu);
                }
            }
            let lr_t = T::c(lr);
            let next = order
                .get((step + 1) * bs..((step + 2) * bs).min(n))
                .unwrap_or(&[]);
            let (batch_loss, batch_correct) = match parallel.as_mut() {
                Some(par) => {
                    par.gradient(net, data, idx, next, cfg.loss, cfg.class_weights.as_ref())
                }
                None => {
                    data.prefetch(next);
                    data.gather(idx, ws.input_mut(m), &mut batch);
                    let l =
                        net.forward_loss(&mut ws, m, batch.targets(), &cfg.objective(m), Some(rng));
                    (l.sum, l.correct)
                }
            };
            let objective = batch_loss / m as f64 + penalty.value(net.params());
            if !objective.is_finite() {
                return Err(diverged(
                    (epoch, step),
                    objective,
                    lr,
                    format!("the mini-batch loss became {objective}"),
                ));
            }
            if let Some(d) = cfg.divergence {
                let mean = batch_loss / m as f64;
                let r = *reference.get_or_insert(mean.max(floor));
                above = if mean > d.factor * r { above + 1 } else { 0 };
                spiked |= above > 0;
                if above >= d.steps.max(1) {
                    return Err(diverged(
                        (epoch, step),
                        mean,
                        lr,
                        format!(
                            "the mini-batch loss stayed above {} × its reference {r:.4} (the first mini-batch loss, or chance level if higher) for {} steps in a row, now {mean:.4e} (the rule of --divergence-factor)",
                            d.factor, d.steps
                        ),
                    ));
                }
            }
            sums.add(batch_loss, batch_correct);
            opt.begin_step();
            if let Some(par) = parallel.as_mut() {
                par.update(net.params_mut(), &mut opt, lr_t, &penalty);
            } else {
                // Each layer is updated as soon as backpropagation has its gradient (plus the
                // penalty's 2λw for weights): the same arithmetic as a separate step, in cache.
                net.backward_update(&mut ws, m, &mut grads, &mut |p, g, range, is_weight| {
                    penalty.add_tensor_gradient(p, g, is_weight);
                    opt.update(p, g, range, lr_t);
                });
            }
            observer.on_step(epoch, step, steps, sums.loss_sum / (step * bs + m) as f64);
            if let Some(Checkpointing {
                every: Every::Steps(every),
                save,
            }) = checkpoint.as_mut()
                && opt.steps().is_multiple_of(*every as u64)
                && step + 1 < steps
            {
                check_weights(net, (epoch, step), lr)?;
                let sums = EpochSums {
                    seconds: before + started.elapsed().as_secs_f64(),
                    ..sums
                };
                save(&snapshot(
                    (epoch, step + 1),
                    &order,
                    rng,
                    net,
                    &opt,
                    sums,
                    &history,
                    &best,
                    (reference, above, spiked),
                    data_fp,
                ))?;
            }
            if step + 1 < steps && observer.should_stop() {
                check_weights(net, (epoch, step), lr)?;
                let sums = EpochSums {
                    seconds: before + started.elapsed().as_secs_f64(),
                    ..sums
                };
                mid_epoch = Some(snapshot(
                    (epoch, step + 1),
                    &order,
                    rng,
                    net,
                    &opt,
                    sums,
                    &history,
                    &best,
                    (reference, above, spiked),
                    data_fp,
                ));
                stop = StopReason::Interrupted {
                    epoch,
                    step: step + 1,
                };
                break 'epochs;
            }
        }
        check_weights(net, (epoch, steps - 1), lr)?;
        let seconds = before + started.elapsed().as_secs_f64();

        let grad_norm = cfg
            .grad_tol
            .map(|_| full_gradient_norm(net, data, cfg, &mut ws, &mut batch, &mut grads, &penalty));
        let val_eval =
            val.map(|v| evaluate_with(net, v, cfg.loss, &mut ws, &mut BatchBuf::new(v, bs)));
        if let Some(e) = val_eval
            && !e.loss.is_finite()
        {
            return Err(diverged(
                (epoch, steps - 1),
                e.loss,
                lr,
                format!(
                    "the validation loss became {} (never counted as an improvement)",
                    e.loss
                ),
            ));
        }
        let metrics = EpochMetrics {
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
                .zip(val_eval)
                .zip(val)
                .map(|((sst, e), v)| 1.0 - 2.0 * e.loss * v.len() as f64 / sst),
        };
        observer.on_epoch(&metrics);
        report_weights(observer, epoch + 1, net);
        history.push(metrics);

        if let (Some(tol), Some(norm)) = (cfg.grad_tol, grad_norm)
            && norm <= tol
        {
            stop = StopReason::GradientTolerance { norm };
            break;
        }
        if let (Some(patience), Some(e)) = (cfg.patience, val_eval) {
            let key = cfg.monitor.key(&e);
            match &mut best {
                // Only a strictly lower key is an improvement (a NaN is never one; it has
                // stopped training above in any case).
                Some((loss, at, params))
                    if key.partial_cmp(loss) != Some(std::cmp::Ordering::Less) =>
                {
                    if epoch + 1 - *at >= patience {
                        net.params_mut().copy_from_slice(params);
                        stop = StopReason::EarlyStopping { best_epoch: *at };
                        break;
                    }
                }
                Some((loss, at, params)) => {
                    (*loss, *at) = (key, epoch + 1);
                    params.copy_from_slice(net.params());
                }
                None => best = Some((key, epoch + 1, net.params().to_vec())),
            }
        }
        let epoch_checkpoint = match checkpoint.as_ref().map(|c| c.every) {
            Some(Every::Epoch) => true,
            // A step checkpoint that falls on an epoch's last step is taken here, after the epoch's checks.
            Some(Every::Steps(every)) => opt.steps().is_multiple_of(every as u64),
            Some(Every::End) | None => false,
        };
        if epoch_checkpoint && epoch + 1 < cfg.epochs {
            let save = &mut checkpoint.as_mut().expect("checked").save;
            save(&snapshot(
                (epoch + 1, 0),
                &[],
                rng,
                net,
                &opt,
                EpochSums::default(),
                &history,
                &best,
                (reference, above, spiked),
                data_fp,
            ))?;
        }
        if epoch + 1 < cfg.epochs && observer.should_stop() {
            stop = StopReason::Interrupted {
                epoch: epoch + 1,
                step: 0,
            };
            break;
        }
    }
    // The final state, before early stopping's weights are restored: continuing from it for
    // more epochs is the same as having asked for them at the start.
    if let Some(Checkpointing { save, .. }) = checkpoint.as_mut() {
        let state = match mid_epoch {
            Some(s) => s,
            None => snapshot(
                (history.len(), 0),
                &[],
                rng,
                net,
                &opt,
                EpochSums::default(),
                &history,
                &best,
                (reference, above, spiked),
                data_fp,
            ),
        };
        save(&state)?;
    }
    // A blow-up the network did not recover from: a mini-batch loss went above the factor ×
    // its reference, and the last epoch's training loss is still no lower than 95 % of chance
    // level (a network killed by the blow-up: dead ReLUs, a constant output).
    if let (Some(d), true, Some(last)) = (cfg.divergence, spiked, history.last())
        && !matches!(stop, StopReason::Interrupted { .. })
        && last.train_loss >= 0.95 * floor
    {
        return Err(diverged(
            (history.len() - 1, steps - 1),
            last.train_loss,
            last.lr,
            format!(
                "a mini-batch loss went above {} × its reference {:.4} and the network never recovered: the last epoch's training loss {:.4} is no lower than chance level {floor:.4} (the rule of --divergence-factor)",
                d.factor,
                reference.unwrap_or(floor),
                last.train_loss
            ),
        ));
    }
    if matches!(stop, StopReason::Interrupted { .. }) {
        let best_epoch = history.len();
        return Ok(TrainReport {
            history,
            stop,
            best_epoch,
        });
    }
    let best_epoch = match (&stop, &best) {
        (StopReason::EarlyStopping { best_epoch }, _) => *best_epoch,
        // With patience but no early stop, the best weights are restored all the same.
        (_, Some((_, at, params))) if cfg.patience.is_some() => {
            net.params_mut().copy_from_slice(params);
            *at
        }
        _ => history.len(),
    };
    Ok(TrainReport {
        history,
        stop,
        best_epoch,
    })
}

/// The state to resume from at `(epoch, step)`, with the epoch's running sums.
#[allow(clippy::too_many_arguments)]
fn snapshot<T: Scalar>(
    (epoch, step): (usize, usize),
    order: &[usize],
    rng: &Rng,
    net: &Network<T>,
    opt: &Sharded<T>,
    sums: EpochSums,
    history: &[EpochMetrics],
    best: &Option<(f64, usize, Vec<T>)>,
    (reference, above, spiked): (Option<f64>, usize, bool),
    data_fingerprint: Option<u64>,
) -> TrainState<T> {
    TrainState {
        epoch,
        step,
        order: order.to_vec(),
        rng: rng.clone(),
        params: net.params().to_vec(),
        optimizer_steps: opt.steps(),
        optimizer_state: opt
            .state()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        sums,
        history: history.to_vec(),
        best: best.clone(),
        divergence: (reference, above),
        spiked,
        data_fingerprint,
    }
}

/// Fails before anything is reserved if training would need more memory than is available:
/// per thread a workspace (activations, deltas, dropout masks and scratch for a batch of `bs`)
/// and a gradient; the optimiser's buffers; early stopping's copy of the weights.
fn check_memory<T: Scalar>(
    net: &Network<T>,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    bs: usize,
) -> Result<()> {
    let dense: Vec<(usize, usize)> = net
        .layers()
        .iter()
        .filter_map(|l| match l {
            crate::Layer::Dense(d) => Some((d.inputs, d.outputs)),
            _ => None,
        })
        .collect();
    check_training_memory(
        &dense,
        optimizer.buffers(),
        bs,
        cfg.threads,
        std::mem::size_of::<T>(),
    )
}

/// The size check of training (see `check_memory`) for dense layers `(inputs, outputs)`, before
/// the network itself exists: the network's weights are counted too.
pub fn check_training_memory(
    dense: &[(usize, usize)],
    optimizer_buffers: usize,
    bs: usize,
    threads: usize,
    value_size: usize,
) -> Result<()> {
    let p = dense.iter().try_fold(0u128, |acc, &(i, o)| {
        (i as u128)
            .checked_mul(o as u128)
            .and_then(|w| w.checked_add(o as u128 + acc))
    });
    let widths: u128 = dense.iter().map(|&(i, o)| i as u128 + o as u128).sum();
    let threads = threads.max(1) as u128;
    let per_thread = (bs as u128)
        .checked_mul(widths)
        .and_then(|v| v.checked_mul(4))
        .and_then(|v| v.checked_add(p?));
    let values = per_thread
        .and_then(|v| v.checked_mul(threads))
        .and_then(|v| v.checked_add(p? * (optimizer_buffers as u128 + 2)));
    let bytes = values.and_then(|v| v.checked_mul(value_size as u128));
    let mut sizes: Vec<String> = dense.first().map(|d| d.0.to_string()).into_iter().collect();
    sizes.extend(dense.iter().map(|d| d.1.to_string()));
    crate::memory::check(
        format!(
            "training the network {} ({} parameters, batches of {bs}, {threads} thread(s))",
            sizes.join("-"),
            p.map_or("more than 2¹²⁸".into(), |p| p.to_string())
        ),
        bytes,
    )
}

/// Whether `order` holds each of 0..len exactly once.
pub fn is_permutation(order: &[usize]) -> bool {
    let mut seen = vec![false; order.len()];
    order
        .iter()
        .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true))
}

/// [`Error::Diverged`] at 0-based (epoch, step), with the generic advice (the run layer replaces
/// it with a learning rate it has tested, where it can).
fn diverged((epoch, step): (usize, usize), loss: f64, lr: f64, cause: String) -> Error {
    Error::Diverged {
        epoch: epoch + 1,
        step: step + 1,
        loss,
        lr,
        cause,
        advice: format!(
            "try a smaller one — at most {}, a tenth of it (untested) — or find one with `downhill lr-find`",
            crate::error::short(lr / 10.0)
        ),
    }
}

/// Divergence if any weight is not a finite number.
fn check_weights<T: Scalar>(net: &Network<T>, at: (usize, usize), lr: f64) -> Result<()> {
    match net.params().iter().position(|v| !v.f64().is_finite()) {
        None => Ok(()),
        Some(i) => Err(diverged(
            at,
            f64::NAN,
            lr,
            format!(
                "weight {i} became {} after the update",
                net.params()[i].f64()
            ),
        )),
    }
}

/// ‖∇L(w)‖ for the whole training set: the batch gradients summed with weights |B|/n.
fn full_gradient_norm<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    cfg: &TrainConfig,
    ws: &mut Workspace<T>,
    batch: &mut BatchBuf<T>,
    grads: &mut [T],
    penalty: &Penalty<T>,
) -> f64 {
    let n = data.len();
    let idx: Vec<usize> = (0..n).collect();
    for (i, chunk) in idx.chunks(ws.max_batch()).enumerate() {
        let m = chunk.len();
        data.gather(chunk, ws.input_mut(m), batch);
        let beta = if i == 0 { Beta::Replace } else { Beta::Add };
        net.loss_and_gradient(
            ws,
            m,
            batch.targets(),
            &cfg.objective(n),
            None,
            (grads, beta),
        );
    }
    penalty.add_gradient(net.params(), grads);
    grads.iter().map(|g| g.f64() * g.f64()).sum::<f64>().sqrt()
}

/// Mean loss and accuracy of `net` on `data`, in evaluation mode (no dropout), 256 rows at a time.
pub fn evaluate<T: Scalar>(net: &Network<T>, data: &Dataset, loss: Loss) -> Result<Evaluation> {
    check_fit(net, data, loss, "data")?;
    let chunk = data.len().clamp(1, 256);
    let mut ws = Workspace::new(net, chunk);
    let mut batch = BatchBuf::new(data, chunk);
    Ok(evaluate_with(net, data, loss, &mut ws, &mut batch))
}

fn evaluate_with<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    loss: Loss,
    ws: &mut Workspace<T>,
    batch: &mut BatchBuf<T>,
) -> Evaluation {
    let k = net.outputs();
    let (mut total, mut correct, mut has_acc) = (0.0, 0, false);
    let mut idx: Vec<usize> = Vec::with_capacity(ws.max_batch());
    for start in (0..data.len()).step_by(ws.max_batch()) {
        idx.clear();
        idx.extend(start..(start + ws.max_batch()).min(data.len()));
        let m = idx.len();
        data.gather(&idx, ws.input_mut(m), batch);
        let out = net.forward(ws, m, None);
        total += loss.evaluate(out, m, k, batch.targets(), None).f64();
        if let Some(c) = loss.correct(out, m, k, batch.targets()) {
            correct += c;
            has_acc = true;
        }
    }
    let n = data.len().max(1) as f64;
    Evaluation {
        loss: total / n,
        accuracy: has_acc.then(|| correct as f64 / n),
    }
}

/// Checks that `data` fits `net` and `loss`: feature width, output width, kind of targets.
pub fn check_fit<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    loss: Loss,
    what: &str,
) -> Result<()> {
    if data.n_features() != net.inputs() {
        return Err(Error::shape(
            format!("{what}: features per example vs. network inputs"),
            net.inputs(),
            data.n_features(),
        ));
    }
    if data.n_outputs() != net.outputs() {
        return Err(Error::shape(
            format!("{what}: classes or target columns vs. network outputs"),
            net.outputs(),
            data.n_outputs(),
        ));
    }
    let classes = matches!(data.targets(), crate::data::Targets::Classes { .. });
    if classes != loss.takes_classes() {
        let want = if loss.takes_classes() {
            "class labels"
        } else {
            "numeric targets"
        };
        let got = if classes {
            "class labels"
        } else {
            "numeric targets"
        };
        return Err(Error::shape(
            format!("{what}: targets for the {} loss", loss.name()),
            want,
            got,
        ));
    }
    Ok(())
}
