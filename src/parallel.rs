//! Data-parallel mini-batch gradients: the batch's rows split into one shard per thread, each
//! shard's forward and backward pass run on its own thread with its own buffers and
//! single-threaded matrix products, and the shard gradients summed.
//!
//! With the loss gradient of every shard divided by the whole batch size |B|,
//!
//! ```text
//! ∇L_B = (1/|B|) Σ_{i∈B} ∇ℓᵢ = Σ_shards (1/|B|) Σ_{i∈shard} ∇ℓᵢ
//! ```
//!
//! so the sum is the batch gradient — up to float rounding, since the additions are grouped
//! differently than in one pass: a run with N threads is reproducible, and agrees with the
//! one-thread run to rounding, but not bit for bit. Used by the training loop for networks
//! without dropout (dropout masks would be drawn in a different order).
//!
//! Allocation: the buffers are made once; but each step's fork is a `rayon::join` sent into
//! rayon's pool from the training thread, and that queue allocates a new block about every 60
//! jobs — one small allocation per ~60 steps, where the one-thread step allocates nothing.

use rayon::prelude::*;

use crate::data::{BatchBuf, Dataset};
use crate::loss::Loss;
use crate::network::{Network, Workspace};
use crate::tensor::{Beta, Scalar};

/// One thread's buffers.
struct Shard<T> {
    ws: Workspace<T>,
    batch: BatchBuf<T>,
    grads: Vec<T>,
    loss: f64,
    correct: Option<usize>,
}

/// Buffers for `threads` shards of batches up to `max_batch` rows, made once.
pub struct DataParallel<T> {
    shards: Vec<Shard<T>>,
}

impl<T: Scalar> DataParallel<T> {
    pub fn new(net: &Network<T>, data: &Dataset, max_batch: usize, threads: usize) -> Self {
        let rows = max_batch.div_ceil(threads);
        let shards = (0..threads)
            .map(|_| Shard {
                ws: Workspace::new(net, rows),
                batch: BatchBuf::new(data, rows),
                grads: vec![T::zero(); net.param_count()],
                loss: 0.0,
                correct: None,
            })
            .collect();
        DataParallel { shards }
    }

    /// Writes ∇L_B for the examples `idx` into `grads` (training mode, no dropout), and returns
    /// the summed data loss Σᵢ ℓᵢ and the number classified correctly (if the loss has one).
    pub fn gradient(
        &mut self,
        net: &Network<T>,
        data: &Dataset,
        idx: &[usize],
        loss: Loss,
        grads: &mut [T],
    ) -> (f64, Option<usize>) {
        let m = idx.len();
        let per = m.div_ceil(self.shards.len());
        let k = net.outputs();
        let denom = T::c(m as f64);
        // Shard 0 writes its gradient straight into `grads`; the others into their own buffers.
        let (first, rest) = self.shards.split_first_mut().expect("at least one shard");
        let (first_rows, rest_rows) = idx.split_at(per.min(m));
        let work = |s: &mut Shard<T>, rows: &[usize], out: &mut [T]| {
            let r = rows.len();
            data.gather(rows, s.ws.input_mut(r), &mut s.batch);
            net.forward(&mut s.ws, r, None);
            let (z, delta) = s.ws.output_and_delta(r);
            s.loss = loss
                .evaluate(z, r, k, s.batch.targets(), Some((delta, denom)))
                .f64();
            s.correct = loss.correct(z, r, k, s.batch.targets());
            net.backward(&mut s.ws, r, out, Beta::Replace);
        };
        rayon::join(
            || work(first, first_rows, grads),
            || {
                rest.par_iter_mut()
                    .zip(rest_rows.par_chunks(per))
                    .for_each(|(s, rows)| {
                        let mut own = std::mem::take(&mut s.grads);
                        work(s, rows, &mut own);
                        s.grads = own;
                    })
            },
        );
        let used = rest_rows.len().div_ceil(per);
        let (shards, rest) = (&self.shards[..used + 1], &self.shards[1..used + 1]);
        // Add the other shards' gradients, the parameter vector split between the threads.
        let chunk = grads
            .len()
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1024);
        grads
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, out)| {
                let part = c * chunk..c * chunk + out.len();
                for s in rest {
                    for (o, &g) in out.iter_mut().zip(&s.grads[part.clone()]) {
                        *o += g;
                    }
                }
            });
        let loss_sum = shards.iter().map(|s| s.loss).sum();
        let correct = shards.iter().map(|s| s.correct).sum::<Option<usize>>();
        (loss_sum, correct)
    }
}
