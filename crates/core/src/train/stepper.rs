//! Training a few steps at a time, for a caller that does its own work between them (the
//! browser playground draws after every slice): [`Stepper`] keeps what a [`Trainer`] needs
//! between calls — the step's buffers and optimiser state, the epoch's batch order and the
//! divergence rule's state — and each [`Stepper::run`] lends them to a `Trainer` for its
//! steps, so every step is the training loop's own [`Trainer::step`].

use super::step::{Lent, Prepared, Trainer};
use super::{NoObserver, TrainConfig, allocate, check_settings};
use crate::data::Dataset;
use crate::error::Result;
use crate::loss::Penalty;
use crate::network::Network;
use crate::optim::{OptimizerConfig, Schedule};
use crate::rng::Rng;
use crate::tensor::Scalar;

/// An open-ended training run, stepped by the caller. The schedule runs over `cfg.epochs`
/// epochs; after them the rate stays at the schedule's last epoch (and step).
pub struct Stepper<T> {
    optimizer: OptimizerConfig,
    schedule: Schedule,
    cfg: TrainConfig,
    /// Batch size and steps per epoch, as the run's [`Prepared`] has them.
    bs: usize,
    steps: usize,
    /// The buffers, optimiser state and epoch's progress; `None` only while lent to a `Trainer`.
    prepared: Option<Prepared<T>>,
    /// The next step: epoch (0-based) and mini-batch within it.
    epoch: usize,
    step: usize,
    lr: f64,
}

impl<T: Scalar> Stepper<T> {
    /// Checks the settings as `train` does and allocates everything the steps need.
    pub fn new(
        net: &Network<T>,
        data: &Dataset,
        optimizer: &OptimizerConfig,
        schedule: &Schedule,
        cfg: &TrainConfig,
    ) -> Result<Self> {
        check_settings(net, data, None, optimizer, cfg, None)?;
        // The data-parallel helpers start here: with this thread's flush bits.
        let _flush = crate::subnormals::Flush::new(cfg.flush_subnormals, 1);
        let prepared = allocate(net, data, optimizer, schedule, cfg)?;
        Ok(Stepper {
            optimizer: *optimizer,
            schedule: *schedule,
            cfg: TrainConfig {
                epochs: cfg.epochs.max(1),
                ..cfg.clone()
            },
            bs: prepared.bs,
            steps: prepared.steps,
            prepared: Some(prepared),
            epoch: 0,
            step: 0,
            lr: optimizer.lr(),
        })
    }

    /// Replaces the penalty added to every step's gradient (e.g. with an L1 term,
    /// [`Penalty::with_l1`]); by default the L2 penalty of `cfg.l2`.
    pub fn set_penalty(&mut self, penalty: Penalty<T>) {
        if let Some(p) = self.prepared.as_mut() {
            p.buf.penalty = penalty;
        }
    }

    /// Completed epochs, and steps into the current one.
    pub fn position(&self) -> (usize, usize) {
        (self.epoch, self.step)
    }

    /// Steps taken so far.
    pub fn steps_taken(&self) -> usize {
        self.epoch * self.steps + self.step
    }

    /// The learning rate of the latest step.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// `n` more steps of the training loop on `net` and `data` (the ones given to
    /// [`Stepper::new`]), drawing batch orders (and dropout masks) from `rng`; returns the last
    /// step's mean mini-batch loss. Fails as `train` does when the loss diverges.
    pub fn run(
        &mut self,
        net: &mut Network<T>,
        data: &Dataset,
        rng: &mut Rng,
        n: usize,
    ) -> Result<f64> {
        let epochs = self.cfg.epochs;
        self.lend(net, data, rng, n, |s, epoch| {
            // Past the schedule's horizon the rate stays at its last epoch's.
            let e = epoch.min(epochs - 1);
            (e, s.schedule.lr(s.optimizer.lr(), e, epochs))
        })
    }

    /// One more step at the learning rate `lr` chosen by the caller instead of the schedule (the
    /// learning-rate range test ramps it step by step); returns the step's mean mini-batch data
    /// loss, computed before the update. Fails as `train` does when the loss is not finite (and
    /// by the divergence rule, if `cfg.divergence` asks for it).
    pub fn step_at(
        &mut self,
        net: &mut Network<T>,
        data: &Dataset,
        rng: &mut Rng,
        lr: f64,
    ) -> Result<f64> {
        let last = self.cfg.epochs - 1;
        self.lend(net, data, rng, 1, |_, epoch| (epoch.min(last), lr))
    }

    /// Lends the buffers and the epoch's state to a [`Trainer`] for `n` of its steps, each at
    /// the (epoch as the schedule sees it, learning rate) that `rate` gives for the epoch, and
    /// takes them back; returns the last step's mean mini-batch loss.
    fn lend(
        &mut self,
        net: &mut Network<T>,
        data: &Dataset,
        rng: &mut Rng,
        n: usize,
        rate: impl Fn(&Self, usize) -> (usize, f64),
    ) -> Result<f64> {
        let Some(prepared) = self.prepared.take() else {
            unreachable!("a Stepper's buffers are back after every run");
        };
        let mut observer = NoObserver;
        let _flush = crate::subnormals::Flush::new(self.cfg.flush_subnormals, self.cfg.threads);
        let lent = Lent {
            net,
            data,
            val: None,
            optimizer: &self.optimizer,
            schedule: &self.schedule,
            cfg: &self.cfg,
            rng,
            observer: &mut observer,
            checkpoint: None,
        };
        let mut t = Trainer::new(lent, prepared);
        let mut result = Ok(f64::NAN);
        for _ in 0..n {
            if self.step == 0 {
                t.begin_epoch(self.epoch);
            }
            let (e, lr) = rate(self, self.epoch);
            let before = t.progress.sums.loss_sum;
            match t.step((e, self.step), lr) {
                Ok(used) => self.lr = used,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
            let m = (self.bs).min(data.len() - self.step * self.bs);
            result = Ok((t.progress.sums.loss_sum - before) / m as f64);
            self.step += 1;
            if self.step == self.steps {
                (self.epoch, self.step) = (self.epoch + 1, 0);
            }
        }
        self.prepared = Some(t.into_prepared());
        result
    }
}
