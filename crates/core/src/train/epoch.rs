//! The epoch loop of a [`Trainer`]: the run's epochs, each one's start and end (evaluation,
//! stopping rules, checkpoint), the checkpoints and interruption between steps, resuming from
//! a saved [`TrainState`], and the states it saves.

use web_time::Instant;

use super::state::Fingerprint;
use super::step::Trainer;
use super::stopping::{check_weights, early_stopping, never_recovered};
use super::{EpochMetrics, EpochSums, Evaluation, Every, StopReason, TrainReport, TrainState};
use crate::error::Result;
use crate::tensor::Scalar;

impl<T: Scalar> Trainer<'_, '_, T> {
    /// Continues from a saved state, checked against this run before anything is restored.
    pub(super) fn resume(&mut self, s: TrainState<T>) -> Result<()> {
        let data = self.data;
        s.check(
            self.net.param_count(),
            self.net.buffers().len(),
            data.len(),
            self.steps,
        )?;
        s.restore(
            self.net,
            &mut self.buf.opt,
            self.rng,
            (data, &mut self.data_fp),
        )?;
        self.first = (s.epoch, s.step);
        let p = &mut self.progress;
        (p.history, p.best, p.sums, p.spiked) = (s.history, s.best, s.sums, s.spiked);
        (p.reference, p.above) = s.divergence;
        if s.step > 0 {
            p.order = s.order;
        }
        Ok(())
    }

    /// The whole run: epochs until a stopping rule ends it, the final checkpoint, and the
    /// report.
    pub(super) fn run(mut self) -> Result<TrainReport> {
        self.observer.on_start(self.cfg.epochs, self.steps);
        if self.first == (0, 0) {
            self.report_weights(0);
        }
        let stop = self.epochs()?;
        // The final state, before early stopping's weights are restored: continuing from it for
        // more epochs is the same as having asked for them at the start.
        if self.checkpoint.is_some() {
            let state = match self.interrupted.take() {
                Some(s) => s,
                None => self.snapshot((self.progress.history.len(), 0)),
            };
            self.save(&state)?;
        }
        let p = &self.progress;
        if p.spiked && !matches!(stop, StopReason::Interrupted { .. }) {
            never_recovered(self.cfg, &p.history, (self.floor, p.reference), self.steps)?;
        }
        Ok(self.report(stop))
    }

    /// The epochs from the first (0, or the resumed one) to the last; returns why they ended.
    fn epochs(&mut self) -> Result<StopReason> {
        for epoch in self.first.0..self.cfg.epochs {
            if let Some(stop) = self.run_epoch(epoch)? {
                return Ok(stop);
            }
        }
        Ok(StopReason::MaxEpochs)
    }

    /// One epoch at the schedule's rate: its start, its steps (each followed by a checkpoint
    /// if one is due and the observer's chance to interrupt), and its end. Returns why training
    /// stops, if it does.
    fn run_epoch(&mut self, epoch: usize) -> Result<Option<StopReason>> {
        let mut lr = self
            .schedule
            .lr(self.optimizer.lr(), epoch, self.cfg.epochs);
        let first_step = self.begin_epoch(epoch);
        for step in first_step..self.steps {
            lr = self.step((epoch, step), lr)?;
            if step + 1 < self.steps
                && let Some(stop) = self.between_steps((epoch, step + 1), lr)?
            {
                return Ok(Some(stop));
            }
        }
        self.end_of_epoch(epoch, lr)
    }

    /// The start of `epoch`: its clock, a freshly shuffled batch order (unless resuming in its
    /// middle) and its running sums (carried over when resuming). Returns its first step.
    pub(super) fn begin_epoch(&mut self, epoch: usize) -> usize {
        self.started = Instant::now();
        let resuming = epoch == self.first.0 && self.first.1 > 0;
        if !resuming {
            let order = &mut self.progress.order;
            self.data.epoch_order(order, self.cfg.shuffle, self.rng);
        }
        if epoch != self.first.0 {
            self.progress.sums = EpochSums::default();
        }
        if resuming { self.first.1 } else { 0 }
    }

    /// Between two steps of an epoch, `next` being the one to come: a checkpoint if one is due,
    /// then the observer's chance to interrupt (keeping the state to save).
    fn between_steps(
        &mut self,
        (epoch, next): (usize, usize),
        lr: f64,
    ) -> Result<Option<StopReason>> {
        if self.checkpoint_due(false) {
            let state = self.mid_epoch_state((epoch, next), lr)?;
            self.save(&state)?;
        }
        if self.observer.should_stop() {
            self.interrupted = Some(self.mid_epoch_state((epoch, next), lr)?);
            return Ok(Some(StopReason::Interrupted { epoch, step: next }));
        }
        Ok(None)
    }

    /// The end of `epoch` at rate `lr`: the weights' check, the evaluation, the epoch's metrics
    /// (to the observer and the history), the stopping rules, the epoch's checkpoint and the
    /// observer's chance to interrupt. Returns why training stops, if it does.
    fn end_of_epoch(&mut self, epoch: usize, lr: f64) -> Result<Option<StopReason>> {
        let last = (epoch, self.steps - 1);
        check_weights(self.net, last, lr)?;
        let seconds = self.seconds();
        let (grad_norm, val_eval) = self.evaluate_epoch(last, lr)?;
        let metrics = EpochMetrics::of_epoch(
            (epoch, lr, seconds),
            &self.progress.sums,
            self.data.len(),
            grad_norm,
            val_eval.zip(self.val),
            self.sst,
        );
        let mut metrics = metrics;
        // A bce model's accuracy is meaningless for soft targets (see `Dataset::hard_targets`).
        if self.cfg.loss == crate::Loss::Bce && !self.data.hard_targets() {
            metrics.train_accuracy = None;
        }
        self.observer.on_epoch(&metrics);
        self.report_weights(epoch + 1);
        self.progress.history.push(metrics);
        if let Some(stop) = self.stopping_rules(epoch, grad_norm, val_eval) {
            return Ok(Some(stop));
        }
        let more = epoch + 1 < self.cfg.epochs;
        if more && self.checkpoint_due(true) {
            let state = self.snapshot((epoch + 1, 0));
            self.save(&state)?;
        }
        if more && self.observer.should_stop() {
            return Ok(Some(StopReason::Interrupted {
                epoch: epoch + 1,
                step: 0,
            }));
        }
        Ok(None)
    }

    /// The stopping rules after `epoch`: the gradient tolerance, then early stopping (which
    /// restores the best weights).
    fn stopping_rules(
        &mut self,
        epoch: usize,
        grad_norm: Option<f64>,
        val_eval: Option<Evaluation>,
    ) -> Option<StopReason> {
        if let (Some(tol), Some(norm)) = (self.cfg.grad_tol, grad_norm)
            && norm <= tol
        {
            return Some(StopReason::GradientTolerance { norm });
        }
        let (patience, e) = (self.cfg.patience?, val_eval?);
        let key = self.cfg.monitor.key(&e);
        early_stopping(&mut self.progress.best, key, epoch, patience, self.net)
    }

    /// Whether a checkpoint is due now: after every epoch (`at_epoch_end`), or when the
    /// optimiser's step count is a multiple of N (a step checkpoint that falls on an epoch's
    /// last step is taken at the epoch's end, after its checks).
    fn checkpoint_due(&self, at_epoch_end: bool) -> bool {
        match self.checkpoint.as_ref().map(|c| c.every) {
            Some(Every::Epoch) => at_epoch_end,
            Some(Every::Steps(n)) => self.buf.opt.steps().is_multiple_of(n as u64),
            Some(Every::End) | None => false,
        }
    }

    /// Hands `state` to the checkpoint's `save`.
    fn save(&mut self, state: &TrainState<T>) -> Result<()> {
        match self.checkpoint.as_mut() {
            Some(c) => (c.save)(state),
            None => Ok(()),
        }
    }

    /// The state mid-epoch, before step `next` of `epoch`, once the weights are checked.
    fn mid_epoch_state(&mut self, (epoch, next): (usize, usize), lr: f64) -> Result<TrainState<T>> {
        check_weights(self.net, (epoch, next - 1), lr)?;
        Ok(self.snapshot((epoch, next)))
    }

    /// The state to continue from before step `step` of `epoch`: in the middle of an epoch
    /// (`step` > 0) with its batch order and running sums, else at the epoch's start.
    fn snapshot(&mut self, (epoch, step): (usize, usize)) -> TrainState<T> {
        let (p, opt) = (&self.progress, &self.buf.opt);
        let mid = step > 0;
        TrainState {
            epoch,
            step,
            order: if mid { p.order.clone() } else { Vec::new() },
            rng: self.rng.clone(),
            params: self.net.params().to_vec(),
            buffers: self.net.buffers().to_vec(),
            tracked: self.net.tracked().to_vec(),
            optimizer_steps: opt.steps(),
            optimizer_state: opt
                .state()
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            sums: if mid {
                EpochSums {
                    seconds: self.seconds(),
                    ..p.sums
                }
            } else {
                EpochSums::default()
            },
            history: p.history.clone(),
            best: p.best.clone(),
            divergence: (p.reference, p.above),
            spiked: p.spiked,
            data_fingerprint: Some(Fingerprint::Xxh3(
                *self.data_fp.get_or_insert_with(|| self.data.fingerprint()),
            )),
        }
    }

    /// The training seconds of the epoch in progress (of earlier sessions too, when resumed).
    fn seconds(&self) -> f64 {
        self.progress.sums.seconds + self.started.elapsed().as_secs_f64()
    }

    /// The weights to the observer, if it wants them (before training: epoch 0).
    fn report_weights(&mut self, epoch: usize) {
        if self.observer.wants_weights() {
            let w: Vec<f64> = self.net.params().iter().map(|v| v.f64()).collect();
            self.observer.on_weights(epoch, &w);
        }
    }

    /// The report of a run that ended with `stop`; with patience, the best weights are restored
    /// (an interrupted run keeps its last weights, to be continued).
    fn report(self, stop: StopReason) -> TrainReport {
        let Trainer {
            net, cfg, progress, ..
        } = self;
        let history = progress.history;
        let best_epoch = match (&stop, &progress.best) {
            (StopReason::Interrupted { .. }, _) => history.len(),
            (StopReason::EarlyStopping { best_epoch }, _) => *best_epoch,
            // With patience but no early stop, the best weights are restored all the same.
            (_, Some((_, at, params))) if cfg.patience.is_some() => {
                net.set_weights_and_buffers(params);
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
}
