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

mod config;
mod epoch;
mod eval;
mod memory;
mod observer;
mod report;
mod state;
mod step;
mod stepper;
mod stopping;
mod threads;

pub use config::{Divergence, Monitor, TrainConfig};
pub use eval::{check_fit, evaluate};
pub use memory::{check_training_memory, training_values};
pub use observer::{NoObserver, Observer};
pub use report::{EpochMetrics, Evaluation, StopReason, TrainReport};
pub use state::{
    Checkpointing, EpochSums, Every, Fingerprint, TrainState, fnv1a, is_permutation, number_or_word,
};
pub use stepper::Stepper;
pub use threads::{Calibration, calibrate_threads};

use eval::total_sum_of_squares;
use memory::check_memory;
use state::Progress;
use step::{Buffers, Lent, Prepared, Trainer};
use stopping::chance_level;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::network::Network;
use crate::optim::{OptimizerConfig, Schedule};
use crate::rng::Rng;
use crate::tensor::Scalar;

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
    let extras = Extras {
        val,
        observer: Some(observer),
        ..Extras::default()
    };
    train_with(net, data, optimizer, schedule, cfg, rng, extras)
}

/// The optional parts of a training run, for [`train_with`]: a validation set, an observer, a
/// saved [`TrainState`] to continue from, and checkpoints to take. `Extras::default()` is none
/// of them.
pub struct Extras<'a, T> {
    pub val: Option<&'a Dataset>,
    pub observer: Option<&'a mut dyn Observer>,
    pub resume: Option<TrainState<T>>,
    pub checkpoint: Option<Checkpointing<'a, T>>,
}

impl<T> Default for Extras<'_, T> {
    fn default() -> Self {
        Extras {
            val: None,
            observer: None,
            resume: None,
            checkpoint: None,
        }
    }
}

/// [`train`] with its optional parts in one [`Extras`]: it can also continue from a saved
/// [`TrainState`] and take checkpoints.
pub fn train_with<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset,
    optimizer: &OptimizerConfig,
    schedule: &Schedule,
    cfg: &TrainConfig,
    rng: &mut Rng,
    extras: Extras<'_, T>,
) -> Result<TrainReport> {
    let Extras {
        val,
        observer,
        resume,
        checkpoint,
    } = extras;
    let mut no_observer = NoObserver;
    let observer = observer.unwrap_or(&mut no_observer);
    // Every step below, on every thread, with subnormals flushed (see `crate::subnormals`): this
    // thread and the data-parallel helpers it starts, then the matrix products' pool.
    let _flush = crate::subnormals::Flush::new(cfg.flush_subnormals, 1);
    check_settings(net, data, val, optimizer, cfg, checkpoint.as_ref())?;
    let prepared = allocate(net, data, optimizer, schedule, cfg)?;
    let _pool = crate::subnormals::Flush::pool(cfg.flush_subnormals, cfg.threads);
    let r2 = |d: &Dataset| {
        (cfg.loss == Loss::Mse)
            .then(|| total_sum_of_squares(d))
            .flatten()
            .filter(|&s| s > 0.0)
    };
    let lent = Lent {
        net,
        data,
        val,
        optimizer,
        schedule,
        cfg,
        rng,
        observer,
        checkpoint,
    };
    let mut trainer = Trainer::new(lent, prepared);
    trainer.sst = (r2(data), val.and_then(r2));
    if let Some(state) = resume {
        trainer.resume(state)?;
    }
    trainer.run()
}

/// What a run allocates before its first step, once its settings are checked: the batch size
/// (at most n), checked against the network (batch norm needs two examples) and the memory
/// available; the step's buffers; and the divergence rule's floor — the loss of the all-zero
/// output (chance level: ln k for cross-entropy, ln 2 for BCE, the mean square of the targets
/// for MSE) on one batch.
fn allocate<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    optimizer: &OptimizerConfig,
    schedule: &Schedule,
    cfg: &TrainConfig,
) -> Result<Prepared<T>> {
    let bs = cfg.batch_size.min(data.len());
    check_memory(net, optimizer, cfg, bs)?;
    net.check_train_batch(bs)?;
    if !data.len().is_multiple_of(bs) {
        net.check_train_batch(data.len() % bs)?;
    }
    let mut buf = Buffers::new(net, data, optimizer, schedule, cfg, bs)?;
    let floor = match cfg.divergence {
        Some(_) => {
            let (ws, batch) = (&mut buf.ws, &mut buf.batch);
            chance_level(data, cfg.loss, bs, net.outputs(), ws, batch)
        }
        None => f64::MIN_POSITIVE,
    };
    Ok(Prepared {
        bs,
        steps: data.len().div_ceil(bs),
        buf,
        progress: Progress::new(data.len()),
        floor,
    })
}

/// The checks of a run of `optimizer` on the training set `data` (training, or the
/// learning-rate range test: what it does, to `do_what`) before anything is allocated: the data
/// fit the network and hold examples, the optimiser's settings and the batch size are in range.
pub fn check_run<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    do_what: &str,
) -> Result<()> {
    check_fit(net, data, cfg.loss, "training data")?;
    optimizer.validate()?;
    if data.is_empty() {
        let why = format!("no examples to {do_what}");
        return Err(Error::setting("training data", 0, why));
    }
    if cfg.batch_size == 0 {
        return Err(Error::setting("batch_size", 0, "must be ≥ 1"));
    }
    Ok(())
}

/// The checks made before anything is allocated: the data fit the network, the settings are in
/// range.
fn check_settings<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    val: Option<&Dataset>,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    checkpoint: Option<&Checkpointing<'_, T>>,
) -> Result<()> {
    check_run(net, data, optimizer, cfg, "train on")?;
    if let Some(v) = val {
        check_fit(net, v, cfg.loss, "validation data")?;
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
    Ok(())
}
