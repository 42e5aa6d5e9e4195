//! One training step's phases, llm.c-style — next batch, forward (with the loss), backward,
//! update — over the buffers they share, which [`Trainer`] allocates once before the first step.

use crate::data::{BatchBuf, Dataset};
use crate::loss::Penalty;
use crate::network::{Network, Workspace};
use crate::optim::{OptimizerConfig, Schedule, Sharded};
use crate::parallel::DataParallel;
use crate::rng::Rng;
use crate::tensor::{Scalar, Threads};

use super::eval::evaluate_with;
use super::stopping::{diverged, full_gradient_norm};
use super::{Evaluation, TrainConfig};
use crate::error::Result;

/// The buffers and optimiser state a step works in: the workspace of activations and deltas,
/// the data-parallel shards (several threads, no dropout), the gathered batch, the gradient, the
/// optimiser (one part per shard) and the L2 penalty.
///
/// Public so that a caller driving training one step at a time (the browser playground,
/// `crate::playground`) runs exactly the loop's phases: [`Trainer::forward`] then
/// [`Trainer::backward_update`].
pub struct Trainer<T> {
    pub(super) ws: Workspace<T>,
    pub(super) parallel: Option<DataParallel<T>>,
    pub(super) batch: BatchBuf<T>,
    pub(super) grads: Vec<T>,
    pub(super) opt: Sharded<T>,
    pub(super) penalty: Penalty<T>,
}

impl<T: Scalar> Trainer<T> {
    /// Allocates everything a step of at most `bs` examples needs.
    pub fn new(
        net: &Network<T>,
        data: &Dataset,
        optimizer: &OptimizerConfig,
        schedule: &Schedule,
        cfg: &TrainConfig,
        bs: usize,
    ) -> Self {
        let ws = Workspace::new(net, bs).with_threads(Threads(cfg.threads.max(1)));
        // With several threads and no dropout, each batch is split between the threads (see
        // `parallel`); with dropout, the matrix products are split instead. Without the `threads`
        // feature everything runs on the calling thread.
        let has_dropout = net
            .layers()
            .iter()
            .any(|l| matches!(l, crate::Layer::Dropout(p) if *p > 0.0));
        let split = cfg!(feature = "threads") && cfg.threads > 1 && !has_dropout;
        let parallel = split.then(|| DataParallel::new(net, data, bs, cfg.threads));
        let batch = BatchBuf::new(data, bs);
        let grads = vec![T::zero(); net.param_count()];
        // The optimiser in one part per data-parallel thread, which update their parts together.
        let parts = parallel.as_ref().map_or(1, |p| p.threads());
        // A schedule that cycles momentum (one-cycle) needs the momentum buffer from the start.
        let cycled = schedule
            .step_momentum(0, 1)
            .map(|m| optimizer.with_momentum(m));
        let opt = Sharded::<T>::new(
            cycled.as_ref().unwrap_or(optimizer),
            net.param_count(),
            parts,
        );
        let penalty = net.penalty(cfg.l2);
        Trainer {
            ws,
            parallel,
            batch,
            grads,
            opt,
            penalty,
        }
    }

    /// Replaces the penalty the trainer adds to every step's gradient (e.g. with an L1 term,
    /// [`Penalty::with_l1`]).
    pub fn set_penalty(&mut self, penalty: Penalty<T>) {
        self.penalty = penalty;
    }

    /// A per-step schedule (one-cycle) at step `s` of `total`: sets the optimiser's momentum if
    /// the schedule cycles it, and returns the step's learning rate.
    pub fn schedule_step(&mut self, schedule: &Schedule, lr: f64, s: usize, total: usize) -> f64 {
        let lr = schedule.step_lr(lr, s, total);
        if let Some(mu) = schedule.step_momentum(s, total) {
            self.opt.set_momentum(mu);
        }
        lr
    }

    /// Next batch and forward: gathers the examples `idx` (prefetching `next`, the following
    /// batch), runs the network forward and returns the batch's summed data loss and how many it
    /// classified correctly. With data-parallel shards each shard also runs backward here.
    pub fn forward(
        &mut self,
        net: &mut Network<T>,
        data: &Dataset,
        idx: &[usize],
        next: &[usize],
        cfg: &TrainConfig,
        rng: &mut Rng,
    ) -> (f64, Option<usize>) {
        let m = idx.len();
        match self.parallel.as_mut() {
            Some(par) => par.gradient(net, data, idx, next, cfg.loss, cfg.class_weights.as_ref()),
            None => {
                data.prefetch(next);
                data.gather(idx, self.ws.input_mut(m), &mut self.batch);
                let l = net.forward_loss(
                    &mut self.ws,
                    m,
                    self.batch.targets(),
                    &cfg.objective(m),
                    Some(rng),
                );
                (l.sum, l.correct)
            }
        }
    }

    /// Backward and update: one optimiser step at rate `lr` with the gradient of the batch of `m`
    /// examples just run forward, plus the penalty's.
    pub fn backward_update(&mut self, net: &mut Network<T>, m: usize, lr: T) {
        let Trainer {
            ws,
            parallel,
            grads,
            opt,
            penalty,
            ..
        } = self;
        opt.begin_step();
        if let Some(par) = parallel.as_mut() {
            par.update(net.params_mut(), opt, lr, penalty);
        } else {
            // Each layer is updated as soon as backpropagation has its gradient (plus the
            // penalty's 2λw for weights): the same arithmetic as a separate step, in cache.
            net.backward_update(ws, m, grads, &mut |p, g, range, is_weight| {
                penalty.add_tensor_gradient(p, g, is_weight);
                opt.update(p, g, range, lr);
            });
        }
    }

    /// After an epoch's steps: the full training gradient's norm (with `grad_tol`) and the
    /// evaluation on the validation set, whose loss must be finite (else divergence at `at`,
    /// the epoch's last step, with rate `lr`).
    pub(super) fn evaluate_epoch(
        &mut self,
        net: &Network<T>,
        data: &Dataset,
        val: Option<&Dataset>,
        cfg: &TrainConfig,
        bs: usize,
        (epoch, step, lr): (usize, usize, f64),
    ) -> Result<(Option<f64>, Option<Evaluation>)> {
        let grad_norm = cfg.grad_tol.map(|_| {
            full_gradient_norm(
                net,
                data,
                cfg,
                &mut self.ws,
                &mut self.batch,
                &mut self.grads,
                &self.penalty,
            )
        });
        let val_eval =
            val.map(|v| evaluate_with(net, v, cfg.loss, &mut self.ws, &mut BatchBuf::new(v, bs)));
        if let Some(e) = val_eval
            && !e.loss.is_finite()
        {
            return Err(diverged(
                (epoch, step),
                e.loss,
                lr,
                format!(
                    "the validation loss became {} (never counted as an improvement)",
                    e.loss
                ),
            ));
        }
        Ok((grad_norm, val_eval))
    }
}
