//! Data-parallel training steps: the mini-batch's rows split into one shard per thread, each
//! shard's forward and backward pass on its own thread with its own buffers and single-threaded
//! matrix products; then the shard gradients summed and the optimiser step taken, each thread
//! summing and updating its own part of the parameter vector (with its own part of the
//! optimiser's state, see [`crate::optim::Sharded`]).
//!
//! With the loss gradient of every shard divided by the whole batch size |B|,
//!
//! ```text
//! ∇L_B = (1/|B|) Σ_{i∈B} ∇ℓᵢ = Σ_shards (1/|B|) Σ_{i∈shard} ∇ℓᵢ
//! ```
//!
//! so the sum is the batch gradient — up to float rounding, since the additions are grouped
//! differently than in one pass: a run with N threads is reproducible bit for bit, and agrees
//! with the one-thread run to rounding, but not bit for bit.
//!
//! With dropout, each shard draws its masks from its own generator, seeded for each step from
//! the run's generator (one seed per shard, drawn in shard order): a run with N threads is still
//! reproducible bit for bit (and resumes bit for bit, the run's generator being checkpointed),
//! but its masks are not the one-thread run's, so the runs agree in distribution only.
//!
//! A shard runs its rows in passes of at most [`DataParallel::pass_rows`] rows, adding each
//! pass's gradient to the shard's (the same sum, grouped once more): for a convolutional network
//! the activations of a whole batch outgrow the caches (the Keras convnet's first layer writes
//! 11 MB for 128 images) and every elementwise layer then runs at memory speed, where passes of
//! 16 images stay closer to the core. Measured on one thread (`cargo bench --bench vision_min
//! chunks`): the Keras convnet's step 15.2 ms in one pass of 128 images, 11.9 ms in passes of 16.
//! Networks with BatchNorm take the whole shard in one pass (its statistics are over the pass).
//!
//! With several threads the passes are smaller where a layer is wide: every thread then streams
//! its pass through the one L3 cache the cores share, and a pass of 16 Keras images (the first
//! layer's input, output and gradient: 4 MB) made the memory-bound layers around it (the first
//! convolution, its ReLU and max pooling, forward and backward) cost 33–95 % more CPU time per
//! image with two threads than with one, while the convolution products did not. So with more
//! than one thread a pass holds at most as many rows (a power of two, 16 at most) as keep the
//! widest layer's input, its gradient and its output's gradient within [`PASS_CACHE_BYTES`], the
//! L2 cache of one core: 4 rows for the Keras convnet, 16 for LeNet-5. One thread keeps passes
//! of 16 (its results stay those of earlier versions bit for bit); the rows per pass depend on
//! the network and the thread count only, so a run with N threads is still reproducible bit for
//! bit, on any machine.
//!
//! The threads are a [`Team`] made once per training run; the buffers are made once too, and a
//! step allocates nothing.

pub mod team;

use std::sync::Mutex;

pub use team::{Disjoint, Team};

use crate::data::{BatchBuf, Dataset};
use crate::loss::{self, Loss, Penalty};
use crate::network::{BatchLoss, MiniBatch, Network, Objective, Workspace};
use crate::optim::Sharded;
use crate::rng::Rng;
use crate::tensor::{Beta, Scalar};

use rand::{RngCore as _, SeedableRng as _};

/// Elements summed and updated at a time in [`DataParallel::update`] (16 KiB of f32).
const BLOCK: usize = 4096;

/// Rows per pass of a convolutional network (see the module doc).
const IMAGE_PASS_ROWS: usize = 16;

/// With several threads, the bytes of the widest layer's pass (its input, the input's gradient
/// and the output's gradient) kept within one core's L2 cache (1 MiB on AMD Zen 4 and 5).
/// A constant rather than the machine's own figure, so that the passes — and so the bits of a
/// run — do not depend on the machine.
pub const PASS_CACHE_BYTES: usize = 1 << 20;

/// One thread's buffers and its share of the last batch.
struct Shard<T> {
    ws: Workspace<T>,
    batch: BatchBuf<T>,
    loss: f64,
    correct: Option<usize>,
}

/// Threads and buffers for data-parallel steps on batches of up to `max_batch` rows.
pub struct DataParallel<T> {
    team: Team,
    shards: Vec<Mutex<Shard<T>>>,
    /// Shard s's gradient at `grads[s·P..(s+1)·P]` (P parameters); shard 0's becomes ∇L_B.
    grads: Vec<T>,
    params: usize,
    /// Shards that had rows in the last batch.
    used: usize,
    /// This step's dropout seed of each shard.
    seeds: Vec<u64>,
    /// Whether the network has dropout (then each step draws the shards' seeds).
    dropout: bool,
}

impl<T: Scalar> DataParallel<T> {
    /// Fails if the operating system refuses to start a thread (see [`Team::new`]).
    pub fn new(
        net: &Network<T>,
        data: &Dataset,
        max_batch: usize,
        threads: usize,
    ) -> crate::Result<Self> {
        let threads = threads.max(1);
        let rows = max_batch
            .div_ceil(threads)
            .min(Self::pass_rows(net, threads))
            .max(1);
        let shards = (0..threads)
            .map(|_| {
                Mutex::new(Shard {
                    ws: Workspace::new(net, rows),
                    batch: BatchBuf::new(data, rows),
                    loss: 0.0,
                    correct: None,
                })
            })
            .collect();
        Ok(DataParallel {
            team: Team::new(threads)?,
            shards,
            grads: vec![T::zero(); threads * net.param_count()],
            params: net.param_count(),
            used: 0,
            seeds: vec![0; threads],
            dropout: net
                .layers()
                .iter()
                .any(|l| matches!(l, crate::Layer::Dropout(p) if *p > 0.0)),
        })
    }

    pub fn threads(&self) -> usize {
        self.team.threads()
    }

    /// The most rows a shard runs forward and backward at a time with `threads` threads: for a
    /// network with convolutions and no BatchNorm 16 on one thread, and on several the largest
    /// power of two up to 16 whose widest layer fits [`PASS_CACHE_BYTES`] (at least 1; see the
    /// module doc); unlimited for other networks.
    pub fn pass_rows(net: &Network<T>, threads: usize) -> usize {
        let conv = net
            .layers()
            .iter()
            .any(|l| matches!(l, crate::Layer::Conv2d(_)));
        if !conv || net.has_batchnorm() {
            return usize::MAX;
        }
        if threads <= 1 {
            return IMAGE_PASS_ROWS;
        }
        // Per row: layer l's input and its gradient, and its output's gradient.
        let widest = (0..net.layers().len())
            .map(|l| {
                net.width(l)
                    .saturating_mul(2)
                    .saturating_add(net.width(l + 1))
            })
            .max()
            .unwrap_or(0);
        let row_bytes = widest.saturating_mul(std::mem::size_of::<T>()).max(1);
        let mut rows = IMAGE_PASS_ROWS;
        while rows > 1 && rows.saturating_mul(row_bytes) > PASS_CACHE_BYTES {
            rows /= 2;
        }
        rows
    }

    /// Forward and backward pass of the examples `idx`, shard by shard, in training mode (with
    /// dropout, each shard's masks from a generator seeded from `rng`; a network without
    /// dropout draws nothing from `rng`);
    /// each thread also prefetches its share of `next` (the next batch's rows). Returns the
    /// summed data loss Σᵢ ℓᵢ and the number classified correctly (if the loss has one). The
    /// gradient is summed by [`DataParallel::update`].
    #[allow(clippy::too_many_arguments)]
    pub fn gradient(
        &mut self,
        net: &Network<T>,
        data: &Dataset,
        idx: &[usize],
        next: &[usize],
        loss: Loss,
        weights: Option<&loss::ClassWeights>,
        rng: &mut Rng,
    ) -> BatchLoss {
        let t = self.threads();
        let (m, p) = (idx.len(), self.params);
        let (per, per_next) = (m.div_ceil(t).max(1), next.len().div_ceil(t).max(1));
        let objective = Objective {
            loss,
            class_weights: weights,
            denom: m as f64,
        };
        // One seed per shard for this step's dropout masks, drawn in shard order.
        if self.dropout {
            for seed in self.seeds.iter_mut() {
                *seed = rng.next_u64();
            }
        }
        let seeds = &self.seeds;
        let pass = self.shards[0]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ws
            .max_batch();
        let shards = &self.shards;
        let grads = Disjoint::new(&mut self.grads);
        self.team.run(&|i| {
            let rows = idx.get(i * per..((i + 1) * per).min(m)).unwrap_or(&[]);
            let mut guard = shards[i].lock().unwrap_or_else(|e| e.into_inner());
            let s = &mut *guard;
            (s.loss, s.correct) = (0.0, Some(0));
            let mut masks = Rng::seed_from_u64(seeds[i]);
            // SAFETY: member i writes gradient block i only.
            let g = unsafe { grads.part(i * p..(i + 1) * p) };
            for (c, rows) in rows.chunks(pass).enumerate() {
                let r = rows.len();
                data.gather(rows, s.ws.input_mut(r), &mut s.batch);
                let targets = s.batch.targets();
                let beta = if c == 0 { Beta::Replace } else { Beta::Add };
                let batch = MiniBatch {
                    n: r,
                    targets,
                    objective,
                    rng: Some(&mut masks),
                };
                let l = net.loss_and_gradient(&mut s.ws, batch, (&mut *g, beta));
                s.loss += l.sum;
                s.correct = s.correct.zip(l.correct).map(|(a, b)| a + b);
            }
            let ahead = (i * per_next).min(next.len())..((i + 1) * per_next).min(next.len());
            data.prefetch(&next[ahead]);
        });
        self.used = m.div_ceil(per);
        let shards = self.shards[..self.used]
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()));
        shards.fold(
            BatchLoss {
                sum: 0.0,
                correct: Some(0),
            },
            |l, s| BatchLoss {
                sum: l.sum + s.loss,
                correct: l.correct.zip(s.correct).map(|(a, b)| a + b),
            },
        )
    }

    /// The optimiser step for the last [`DataParallel::gradient`]: each thread j sums the
    /// shards' gradients over part j of the parameter vector (the parts of `opt`), adds the L2
    /// penalty's 2λw where that part holds weights, and applies
    /// its part of the optimiser. Call `opt.begin_step()` first.
    pub fn update(&mut self, params: &mut [T], opt: &mut Sharded<T>, lr: T, penalty: &Penalty<T>) {
        assert_eq!(
            params.len(),
            self.params,
            "parameter vector of the wrong length"
        );
        let (p, used) = (self.params, self.used);
        let grads = Disjoint::new(&mut self.grads);
        let params = Disjoint::new(params);
        let parts = Disjoint::new(opt.parts_mut());
        let count = parts.len();
        self.team.run(&|j| {
            if j >= count {
                return;
            }
            // SAFETY: member j uses part j of the optimiser, and the parameters and gradient
            // blocks at that part's range only; the parts' ranges do not overlap.
            let part = unsafe { &mut parts.part(j..j + 1)[0] };
            let r = part.range.clone();
            // Block by block, so that the summed gradient is still in L1 when the optimiser
            // reads it.
            let mut start = r.start;
            while start < r.end {
                let b = start..(start + BLOCK).min(r.end);
                let sum = unsafe { grads.part(b.clone()) };
                for s in 1..used {
                    let other = unsafe { grads.part(s * p + b.start..s * p + b.end) };
                    add_assign(sum, other);
                }
                let w = unsafe { params.part(b.clone()) };
                penalty.add_block_gradient(w, sum, b.clone());
                let local = b.start - r.start..b.end - r.start;
                part.opt.update(w, sum, local, lr);
                start = b.end;
            }
        });
    }
}

/// `sum += other`, elementwise (dispatched like the layers' loops).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn add_assign<T: Scalar>(sum: &mut [T], other: &[T]) {
    for (s, &o) in sum.iter_mut().zip(other) {
        *s += o;
    }
}
