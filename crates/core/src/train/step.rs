//! One training step, llm.c-style — next batch, forward (with the loss), backward and update —
//! one method per phase of the [`Trainer`], over the buffers ([`Buffers`]) allocated once
//! before the first step.

use web_time::Instant;

use crate::data::{BatchBuf, Dataset};
use crate::error::Result;
use crate::loss::Penalty;
use crate::network::{BatchLoss, MiniBatch, Network, Workspace};
use crate::optim::{OptimizerConfig, Schedule, Sharded};
use crate::parallel::DataParallel;
use crate::rng::Rng;
use crate::tensor::{Scalar, Threads};

use super::eval::evaluate_with;
use super::state::Progress;
use super::stopping::{diverged, divergence_rule, full_gradient_norm};
use super::{Checkpointing, Evaluation, Observer, TrainConfig, TrainState};

/// A training run in progress: what it trains, on what, with which settings and who watches;
/// the step's buffers; and its [`Progress`], which a checkpoint saves with the weights. The
/// step's phases are its methods here, the epoch's in `epoch.rs`.
pub(super) struct Trainer<'a, 'c, T> {
    pub(super) net: &'a mut Network<T>,
    pub(super) data: &'a Dataset,
    pub(super) val: Option<&'a Dataset>,
    pub(super) optimizer: &'a OptimizerConfig,
    pub(super) schedule: &'a Schedule,
    pub(super) cfg: &'a TrainConfig,
    pub(super) rng: &'a mut Rng,
    pub(super) observer: &'a mut dyn Observer,
    pub(super) checkpoint: Option<Checkpointing<'c, T>>,
    /// Examples per mini-batch (at most n) and mini-batches per epoch.
    pub(super) bs: usize,
    pub(super) steps: usize,
    pub(super) buf: Buffers<T>,
    pub(super) progress: Progress<T>,
    /// The divergence rule's floor: the loss of the all-zero output (chance level) on one batch.
    pub(super) floor: f64,
    /// The SSTs of R² on the training and validation sets (MSE only).
    pub(super) sst: (Option<f64>, Option<f64>),
    /// The training data's fingerprint, computed only when checkpoints record it.
    pub(super) data_fp: Option<u64>,
    /// The (epoch, step) the run starts at: (0, 0), or where a resumed state left off.
    pub(super) first: (usize, usize),
    /// When the epoch in progress started, in this session.
    pub(super) started: Instant,
    /// The state to save when training is interrupted mid-epoch.
    pub(super) interrupted: Option<TrainState<T>>,
}

/// What a run prepares before its first step ([`allocate`](super::allocate)), owned: a
/// [`Trainer`] works in it, and a [`Stepper`](super::Stepper) keeps it between its calls.
pub(super) struct Prepared<T> {
    /// Examples per mini-batch (at most n) and mini-batches per epoch.
    pub(super) bs: usize,
    pub(super) steps: usize,
    pub(super) buf: Buffers<T>,
    pub(super) progress: Progress<T>,
    /// The divergence rule's floor: the loss of the all-zero output (chance level) on one batch.
    pub(super) floor: f64,
}

/// What a caller lends a [`Trainer`]: the network, the data, the settings, the generator, who
/// watches, and where checkpoints go.
pub(super) struct Lent<'a, 'c, T> {
    pub(super) net: &'a mut Network<T>,
    pub(super) data: &'a Dataset,
    pub(super) val: Option<&'a Dataset>,
    pub(super) optimizer: &'a OptimizerConfig,
    pub(super) schedule: &'a Schedule,
    pub(super) cfg: &'a TrainConfig,
    pub(super) rng: &'a mut Rng,
    pub(super) observer: &'a mut dyn Observer,
    pub(super) checkpoint: Option<Checkpointing<'c, T>>,
}

impl<'a, 'c, T: Scalar> Trainer<'a, 'c, T> {
    /// A run at its start, (epoch, step) = (0, 0), working in `prepared` on what `lent` lends.
    pub(super) fn new(lent: Lent<'a, 'c, T>, prepared: Prepared<T>) -> Self {
        let Lent {
            net,
            data,
            val,
            optimizer,
            schedule,
            cfg,
            rng,
            observer,
            checkpoint,
        } = lent;
        let Prepared {
            bs,
            steps,
            buf,
            progress,
            floor,
        } = prepared;
        Trainer {
            net,
            data,
            val,
            optimizer,
            schedule,
            cfg,
            rng,
            observer,
            checkpoint,
            bs,
            steps,
            buf,
            progress,
            floor,
            sst: (None, None),
            data_fp: None,
            first: (0, 0),
            started: Instant::now(),
            interrupted: None,
        }
    }

    /// Gives back what the run works in, for the next [`Trainer`] of a [`Stepper`](super::Stepper).
    pub(super) fn into_prepared(self) -> Prepared<T> {
        Prepared {
            bs: self.bs,
            steps: self.steps,
            buf: self.buf,
            progress: self.progress,
            floor: self.floor,
        }
    }
}

/// The buffers and optimiser state a step works in: the workspace of activations and deltas,
/// the data-parallel shards (several threads), the gathered batch, the gradient, the
/// optimiser (one part per shard) and the L2 penalty.
pub(super) struct Buffers<T> {
    pub(super) ws: Workspace<T>,
    pub(super) parallel: Option<DataParallel<T>>,
    pub(super) batch: BatchBuf<T>,
    pub(super) grads: Vec<T>,
    pub(super) opt: Sharded<T>,
    pub(super) penalty: Penalty<T>,
}

impl<T: Scalar> Buffers<T> {
    /// Allocates everything a step of at most `bs` examples needs (and starts the data-parallel
    /// threads, which fails if the operating system refuses one).
    pub(super) fn new(
        net: &Network<T>,
        data: &Dataset,
        optimizer: &OptimizerConfig,
        schedule: &Schedule,
        cfg: &TrainConfig,
        bs: usize,
    ) -> Result<Self> {
        let ws = Workspace::new(net, bs).with_threads(Threads(cfg.threads.max(1)));
        // With several threads each batch is split between the threads (see `parallel`; with
        // dropout, each thread draws its masks from its own generator). Without the `threads`
        // feature everything runs on the calling thread.
        // BatchNorm normalises with the whole batch's statistics (as PyTorch on one device):
        // shards would each see their own, so such networks split the matrix products instead.
        // A convolutional network takes the shards' path on one thread too, for its passes of a
        // few images that stay in cache (see `parallel`).
        let passes = DataParallel::pass_rows(net, cfg.threads) < bs;
        let split =
            cfg!(feature = "threads") && (cfg.threads > 1 || passes) && !net.has_batchnorm();
        let parallel = if split {
            Some(DataParallel::new(net, data, bs, cfg.threads)?)
        } else {
            None
        };
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
        Ok(Buffers {
            ws,
            parallel,
            batch,
            grads,
            opt,
            penalty,
        })
    }
}

impl<T: Scalar> Trainer<'_, '_, T> {
    /// One step at 0-based (`epoch`, `step`) with the epoch's rate `lr`. On one thread: the next
    /// batch, forward and loss, the divergence checks, then backward with each layer's update as
    /// soon as its gradient is known. With data-parallel shards: every shard's forward and
    /// backward on its rows, the checks, then the shards' gradients summed into the update.
    /// Returns the rate the step used (a per-step schedule sets its own).
    pub(super) fn step(&mut self, (epoch, step): (usize, usize), lr: f64) -> Result<f64> {
        let lr = self.learning_rate((epoch, step), lr);
        let serial = self.buf.parallel.is_none();
        let m = batch_rows(&self.progress.order, self.bs, step).0.len();
        let batch = if serial {
            self.next_batch(step);
            self.forward(m)
        } else {
            self.shards_forward_backward(step)
        };
        self.check_loss((epoch, step), batch.sum, m, lr)?;
        self.progress.sums.add(batch);
        if serial {
            self.backward_update(m, T::c(lr));
        } else {
            self.reduce_update(T::c(lr));
        }
        let seen = step * self.bs + m;
        let running = self.progress.sums.loss_sum / seen as f64;
        self.observer.on_step(epoch, step, self.steps, running);
        Ok(lr)
    }

    /// The step's learning rate: the epoch's `lr`, or a per-step schedule's (one-cycle) at this
    /// step of the run, which also sets the optimiser's momentum if the schedule cycles it.
    fn learning_rate(&mut self, (epoch, step): (usize, usize), lr: f64) -> f64 {
        if !self.schedule.per_step() {
            return lr;
        }
        let (s, total) = (epoch * self.steps + step, self.cfg.epochs * self.steps);
        if let Some(mu) = self.schedule.step_momentum(s, total) {
            self.buf.opt.set_momentum(mu);
        }
        self.schedule.step_lr(self.optimizer.lr(), s, total)
    }

    /// Next batch (one thread): gathers the rows of mini-batch `step` (in the epoch's shuffled
    /// order) into the workspace's input and the batch's targets, and prefetches the following
    /// batch's rows.
    fn next_batch(&mut self, step: usize) {
        let (idx, next) = batch_rows(&self.progress.order, self.bs, step);
        self.data.prefetch(next);
        let input = self.buf.ws.input_mut(idx.len());
        self.data.gather(idx, input, &mut self.buf.batch);
    }

    /// Forward and loss (one thread): runs the network forward on the `m` examples just
    /// gathered and returns their summed data loss and how many it classified correctly.
    fn forward(&mut self, m: usize) -> BatchLoss {
        let batch = MiniBatch {
            n: m,
            targets: self.buf.batch.targets(),
            objective: self.cfg.objective(m),
            rng: Some(self.rng),
        };
        let l = self.net.forward_loss(&mut self.buf.ws, batch);
        self.net.commit_batch_stats(&self.buf.ws);
        l
    }

    /// Forward and backward on the data-parallel shards: each gathers its share of the rows of
    /// mini-batch `step`, runs forward, the loss and backward into its own gradient, and
    /// prefetches its share of the next batch ([`DataParallel::gradient`]). Returns the batch's
    /// summed data loss and how many it classified correctly.
    fn shards_forward_backward(&mut self, step: usize) -> BatchLoss {
        let (idx, next) = batch_rows(&self.progress.order, self.bs, step);
        let par = self
            .buf
            .parallel
            .as_mut()
            .expect("a data-parallel step has shards");
        par.gradient(
            self.net,
            self.data,
            idx,
            next,
            self.cfg.loss,
            self.cfg.class_weights.as_ref(),
            self.rng,
        )
    }

    /// The divergence checks before the update: the objective (mean loss plus penalty) must be
    /// finite, and the mean loss must obey the rule of [`super::Divergence`].
    fn check_loss(&mut self, at: (usize, usize), loss: f64, m: usize, lr: f64) -> Result<()> {
        let mean = loss / m as f64;
        let objective = mean + self.buf.penalty.value(self.net.params());
        if !objective.is_finite() && (self.buf.opt.steps() == 0 || lr == 0.0) {
            return Err(crate::Error::NotFinite {
                epoch: at.0 + 1,
                step: at.1 + 1,
                loss: objective,
                why: if lr == 0.0 {
                    "with a learning rate of 0 (the weights never moved)".into()
                } else {
                    "at the starting weights, before any update".into()
                },
                advice: "check the starting weights (an --init file's values, --init-scheme) and \
                         the features' scale (--normalize standardize)"
                    .into(),
            });
        }
        if !objective.is_finite() {
            let cause = format!("the mini-batch loss became {objective}");
            return Err(diverged(at, objective, lr, cause));
        }
        if let Some(d) = self.cfg.divergence {
            let p = &mut self.progress;
            let tripped = divergence_rule(d, &mut p.reference, &mut p.above, mean, self.floor);
            p.spiked |= p.above > 0;
            if let Some(cause) = tripped {
                return Err(diverged(at, mean, lr, cause));
            }
        }
        Ok(())
    }

    /// Backward and update (one thread): backpropagates the batch of `m` examples just run
    /// forward and updates each layer as soon as its gradient is known (plus the penalty's 2λw
    /// for weights): the same arithmetic as a separate optimiser step at rate `lr`, in cache.
    fn backward_update(&mut self, m: usize, lr: T) {
        let Buffers {
            ws,
            grads,
            opt,
            penalty,
            ..
        } = &mut self.buf;
        opt.begin_step();
        self.net
            .backward_update(ws, m, grads, &mut |p, g, range, is_weight| {
                penalty.add_tensor_gradient(p, g, is_weight);
                opt.update(p, g, range, lr);
            });
    }

    /// Reduce and update (data-parallel): the shards' gradients summed part by part, each part
    /// on its own thread, plus the penalty's, into one optimiser step at rate `lr`
    /// ([`DataParallel::update`]).
    fn reduce_update(&mut self, lr: T) {
        let Buffers {
            parallel,
            opt,
            penalty,
            ..
        } = &mut self.buf;
        let par = parallel.as_mut().expect("a data-parallel step has shards");
        opt.begin_step();
        par.update(self.net.params_mut(), opt, lr, penalty);
    }

    /// After an epoch's steps: the full training gradient's norm (with `grad_tol`) and the
    /// evaluation on the validation set, whose loss must be finite (else divergence at `at`,
    /// the epoch's last step, with rate `lr`).
    pub(super) fn evaluate_epoch(
        &mut self,
        at: (usize, usize),
        lr: f64,
    ) -> Result<(Option<f64>, Option<Evaluation>)> {
        let Buffers {
            ws,
            batch,
            grads,
            penalty,
            ..
        } = &mut self.buf;
        let (net, data, cfg) = (&*self.net, self.data, self.cfg);
        let grad_norm = cfg
            .grad_tol
            .map(|_| full_gradient_norm(net, data, cfg, ws, batch, grads, penalty));
        let val_eval = self
            .val
            .map(|v| evaluate_with(net, v, cfg.loss, ws, &mut BatchBuf::new(v, self.bs)));
        if let Some(e) = val_eval
            && !e.loss.is_finite()
        {
            let cause = format!(
                "the validation loss became {} (never counted as an improvement)",
                e.loss
            );
            return Err(diverged(at, e.loss, lr, cause));
        }
        Ok((grad_norm, val_eval))
    }
}

/// The rows of mini-batch `step` of `bs` in the epoch's `order`, and those of the next one.
fn batch_rows(order: &[usize], bs: usize, step: usize) -> (&[usize], &[usize]) {
    let n = order.len();
    let idx = &order[step * bs..((step + 1) * bs).min(n)];
    let next = order
        .get((step + 1) * bs..((step + 2) * bs).min(n))
        .unwrap_or(&[]);
    (idx, next)
}
