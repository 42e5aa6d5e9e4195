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
mod eval;
mod memory;
mod observer;
mod report;
mod state;
mod step;
mod stopping;

pub use config::{Divergence, Monitor, TrainConfig};
pub use eval::{check_fit, evaluate};
pub use memory::check_training_memory;
pub use observer::{NoObserver, Observer};
pub use report::{EpochMetrics, Evaluation, StopReason, TrainReport};
pub use state::{Checkpointing, EpochSums, Every, TrainState, fingerprint, is_permutation};
pub use step::Trainer;

use eval::total_sum_of_squares;
use memory::check_memory;
use state::snapshot;
use stopping::{
    chance_level, check_weights, diverged, divergence_rule, early_stopping, never_recovered,
};

use std::time::Instant;

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
    check_settings(net, data, val, optimizer, cfg, checkpoint.as_ref())?;
    let n = data.len();
    let bs = cfg.batch_size.min(n);
    check_memory(net, optimizer, cfg, bs)?;
    let mut t = Trainer::new(net, data, optimizer, schedule, cfg, bs);
    let mut order = Vec::with_capacity(n);
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
        s.check(net.param_count(), n, steps)?;
        s.restore(net, &mut t.opt, rng, data_fp)?;
        (first_epoch, first_step, history, best) = (s.epoch, s.step, s.history, s.best);
        (reference, above) = s.divergence;
        spiked = s.spiked;
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
        chance_level(data, cfg.loss, bs, k, &mut t.ws, &mut t.batch)
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
                lr = t.schedule_step(schedule, optimizer.lr(), s, total);
            }
            let lr_t = T::c(lr);
            let next = order
                .get((step + 1) * bs..((step + 2) * bs).min(n))
                .unwrap_or(&[]);
            let (batch_loss, batch_correct) = t.forward(net, data, idx, next, cfg, rng);
            let objective = batch_loss / m as f64 + t.penalty.value(net.params());
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
                let tripped = divergence_rule(d, &mut reference, &mut above, mean, floor);
                spiked |= above > 0;
                if let Some(cause) = tripped {
                    return Err(diverged((epoch, step), mean, lr, cause));
                }
            }
            sums.add(batch_loss, batch_correct);
            t.backward_update(net, m, lr_t);
            observer.on_step(epoch, step, steps, sums.loss_sum / (step * bs + m) as f64);
            if let Some(Checkpointing {
                every: Every::Steps(every),
                save,
            }) = checkpoint.as_mut()
                && t.opt.steps().is_multiple_of(*every as u64)
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
                    &t.opt,
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
                    &t.opt,
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

        let (grad_norm, val_eval) =
            t.evaluate_epoch(net, data, val, cfg, bs, (epoch, steps - 1, lr))?;
        let metrics = EpochMetrics::of_epoch(
            (epoch, lr, seconds),
            &sums,
            n,
            grad_norm,
            val_eval.zip(val),
            (sst_train, sst_val),
        );
        observer.on_epoch(&metrics);
        report_weights(observer, epoch + 1, net);
        history.push(metrics);

        if let (Some(tol), Some(norm)) = (cfg.grad_tol, grad_norm)
            && norm <= tol
        {
            stop = StopReason::GradientTolerance { norm };
            break;
        }
        if let (Some(patience), Some(e)) = (cfg.patience, val_eval)
            && let Some(reason) =
                early_stopping(&mut best, cfg.monitor.key(&e), epoch, patience, net)
        {
            stop = reason;
            break;
        }
        let epoch_checkpoint = match checkpoint.as_ref().map(|c| c.every) {
            Some(Every::Epoch) => true,
            // A step checkpoint that falls on an epoch's last step is taken here, after the epoch's checks.
            Some(Every::Steps(every)) => t.opt.steps().is_multiple_of(every as u64),
            Some(Every::End) | None => false,
        };
        if epoch_checkpoint && epoch + 1 < cfg.epochs {
            let save = &mut checkpoint.as_mut().expect("checked").save;
            save(&snapshot(
                (epoch + 1, 0),
                &[],
                rng,
                net,
                &t.opt,
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
                &t.opt,
                EpochSums::default(),
                &history,
                &best,
                (reference, above, spiked),
                data_fp,
            ),
        };
        save(&state)?;
    }
    if spiked && !matches!(stop, StopReason::Interrupted { .. }) {
        never_recovered(cfg, &history, (floor, reference), steps)?;
    }
    Ok(finish(net, cfg, history, stop, &best))
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
    Ok(())
}

/// The report of a run that ended with `stop`; with patience, the best weights are restored
/// into `net` (an interrupted run keeps its last weights, to be continued).
fn finish<T: Scalar>(
    net: &mut Network<T>,
    cfg: &TrainConfig,
    history: Vec<EpochMetrics>,
    stop: StopReason,
    best: &Option<(f64, usize, Vec<T>)>,
) -> TrainReport {
    if matches!(stop, StopReason::Interrupted { .. }) {
        let best_epoch = history.len();
        return TrainReport {
            history,
            stop,
            best_epoch,
        };
    }
    let best_epoch = match (&stop, best) {
        (StopReason::EarlyStopping { best_epoch }, _) => *best_epoch,
        // With patience but no early stop, the best weights are restored all the same.
        (_, Some((_, at, params))) if cfg.patience.is_some() => {
            net.params_mut().copy_from_slice(params);
            *at
        }
        _ => history.len(),
    };
    TrainReport {
        history,
        stop,
        best_epoch,
    }
}
