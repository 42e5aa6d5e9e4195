//! One optimiser split into independent parts over consecutive ranges of the parameter vector,
//! so that threads can update their parts at the same time (data-parallel training gives each
//! thread one part: the sharded optimiser state of ZeRO stage 1, on one machine).
//!
//! Every rule in `optim` is elementwise — each parameter's update reads only its own gradient and
//! its own state — and the step count t is the same in every part, so the parts together give
//! the same bits as one optimiser over the whole vector. Their state, concatenated, is exactly
//! the whole optimiser's state, which is what checkpoints store.
//!
//! ```
//! use downhill_core::optim::{OptimizerConfig, Sharded};
//! let cfg = OptimizerConfig::default_for("adam").unwrap();
//! let (mut whole, mut split) = (cfg.build::<f64>(100), Sharded::<f64>::new(&cfg, 100, 3));
//! let ranges: Vec<_> = split.parts().iter().map(|p| p.range.clone()).collect();
//! assert_eq!(ranges, [0..48, 48..96, 96..100]);
//! let (mut a, mut b) = (vec![1.0; 100], vec![1.0; 100]);
//! let g: Vec<f64> = (0..100).map(|i| (i as f64 - 49.5) / 10.0).collect();
//! for _ in 0..3 {
//!     whole.step(&mut a, &g, 1e-3);
//!     split.begin_step();
//!     split.update(&mut b, &g, 0..100, 1e-3);
//! }
//! assert_eq!(a, b);
//! ```

use std::ops::Range;

use super::{Optimizer, OptimizerConfig};
use crate::error::{Error, Result};
use crate::tensor::Scalar;

/// The optimiser of the parameters at `range`.
pub struct Part<T> {
    pub range: Range<usize>,
    pub opt: Box<dyn Optimizer<T>>,
}

/// An optimiser in parts (see the module docs).
pub struct Sharded<T> {
    parts: Vec<Part<T>>,
    len: usize,
}

impl<T: Scalar> Sharded<T> {
    /// `config`'s optimiser for `n` parameters in `parts` consecutive parts of nearly equal
    /// length (multiples of 16 elements, a 64-byte cache line of f32, except the last).
    pub fn new(config: &OptimizerConfig, n: usize, parts: usize) -> Self {
        let size = n.div_ceil(parts.max(1)).next_multiple_of(16).max(16);
        let parts = (0..n.div_ceil(size).max(1))
            .map(|j| {
                let range = j * size..((j + 1) * size).min(n);
                Part {
                    opt: config.build(range.len()),
                    range,
                }
            })
            .collect();
        Sharded { parts, len: n }
    }

    pub fn parts(&self) -> &[Part<T>] {
        &self.parts
    }

    pub fn parts_mut(&mut self) -> &mut [Part<T>] {
        &mut self.parts
    }

    /// [`Optimizer::begin_step`] of every part.
    pub fn begin_step(&mut self) {
        self.parts.iter_mut().for_each(|p| p.opt.begin_step());
    }

    /// [`Optimizer::update`] of the parameters at `range` (`params` and `grads` are that range),
    /// each part updating its share of it.
    pub fn update(&mut self, params: &mut [T], grads: &[T], range: Range<usize>, lr: T) {
        for p in &mut self.parts {
            if let Some(both) = overlap(&range, &p.range) {
                let here = both.start - range.start..both.end - range.start;
                let local = both.start - p.range.start..both.end - p.range.start;
                p.opt
                    .update(&mut params[here.clone()], &grads[here], local, lr);
            }
        }
    }

    /// [`Optimizer::set_momentum`] of every part.
    pub fn set_momentum(&mut self, m: f64) {
        self.parts.iter_mut().for_each(|p| p.opt.set_momentum(m));
    }

    /// Steps taken so far (the same in every part).
    pub fn steps(&self) -> u64 {
        self.parts[0].opt.steps()
    }

    /// The whole optimiser's named state buffers: each part's, concatenated.
    pub fn state(&self) -> Vec<(&'static str, Vec<T>)> {
        let mut out: Vec<(&'static str, Vec<T>)> = self.parts[0]
            .opt
            .state()
            .into_iter()
            .map(|(name, _)| (name, Vec::with_capacity(self.len)))
            .collect();
        for p in &self.parts {
            for ((_, all), (_, mine)) in out.iter_mut().zip(p.opt.state()) {
                all.extend_from_slice(mine);
            }
        }
        out
    }

    /// Restores the state saved by [`Sharded::state`] (or by one whole optimiser's
    /// [`Optimizer::state`]): each buffer must cover all parameters.
    pub fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        // An empty buffer is an unused one (see `optim::restore`): it has no parts.
        for (name, b) in buffers {
            if !b.is_empty() && b.len() != self.len {
                return Err(Error::shape(
                    format!("optimiser state {name}"),
                    self.len,
                    b.len(),
                ));
            }
        }
        for p in &mut self.parts {
            let mine: Vec<(&str, &[T])> = buffers
                .iter()
                .map(|(name, b)| {
                    (
                        *name,
                        if b.is_empty() {
                            *b
                        } else {
                            &b[p.range.clone()]
                        },
                    )
                })
                .collect();
            p.opt.set_state(steps, &mine)?;
        }
        Ok(())
    }
}

/// The indices in both `a` and `b`, if any.
pub(crate) fn overlap(a: &Range<usize>, b: &Range<usize>) -> Option<Range<usize>> {
    let (lo, hi) = (a.start.max(b.start), a.end.min(b.end));
    (lo < hi).then_some(lo..hi)
}
