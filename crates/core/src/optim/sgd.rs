//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay —
//! PyTorch's `torch.optim.SGD`.
//!
//! At step t with gradient gₜ = ∇L(wₜ), learning rate η, momentum μ, dampening τ, weight decay λ:
//!
//! ```text
//! (1) g ← gₜ + λ·wₜ                                  (if λ ≠ 0)
//! (2) b₁ = g;  bₜ = μ·bₜ₋₁ + (1 − τ)·g               (if μ ≠ 0)
//! (3) d = g + μ·bₜ  (Nesterov)   or   d = bₜ          (if μ ≠ 0; else d = g)
//! (4) wₜ₊₁ = wₜ − η·d
//! ```
//!
//! Defaults (PyTorch's): η = 0.01 here (PyTorch has none), μ = 0, τ = 0, λ = 0, Nesterov off.
//! With μ = 0 this is the notes' plain step w ← w − η∇L. Nesterov needs μ > 0 and τ = 0.

use super::{Optimizer, momentum_range, non_negative, restore, unit_interval};
use crate::error::{Error, Result};
use crate::tensor::Scalar;

/// Hyperparameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    pub fn validate(&self) -> Result<()> {
        momentum_range(self.momentum)?;
        unit_interval("dampening", self.dampening)?;
        non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::setting(
                "nesterov",
                true,
                "Nesterov momentum requires momentum > 0 and zero dampening",
            ));
        }
        Ok(())
    }
}

/// The scalars of one step's update.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    lr: T,
    wd: T,
    mu: T,
    one_minus_tau: T,
    first: bool,
    nesterov: bool,
}

/// Steps (1) and (4) without momentum. Compiled for AVX-512, AVX2 and plain x86-64, chosen at
/// run time; elementwise, so every version gives the same bits.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn plain_update<T: Scalar>(params: &mut [T], grads: &[T], lr: T, wd: T) {
    for (w, &g) in params.iter_mut().zip(grads) {
        let g = g + wd * *w; // (1)
        *w -= lr * g; // (4)
    }
}

/// Steps (1)–(4) with momentum (dispatched like [`plain_update`]).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn momentum_update<T: Scalar>(params: &mut [T], grads: &[T], buf: &mut [T], c: Coefficients<T>) {
    let triples = params.iter_mut().zip(grads).zip(buf.iter_mut());
    match (c.first, c.nesterov) {
        (true, false) => triples.for_each(|((w, &g), b)| {
            *b = g + c.wd * *w; // (1), (2) with b₁ = g
            *w -= c.lr * *b; // (3), (4)
        }),
        (true, true) => triples.for_each(|((w, &g), b)| {
            let g = g + c.wd * *w; // (1)
            *b = g; // (2)
            *w -= c.lr * (g + c.mu * *b); // (3), (4)
        }),
        (false, false) => triples.for_each(|((w, &g), b)| {
            let g = g + c.wd * *w; // (1)
            *b = c.mu * *b + c.one_minus_tau * g; // (2)
            *w -= c.lr * *b; // (3), (4)
        }),
        (false, true) => triples.for_each(|((w, &g), b)| {
            let g = g + c.wd * *w; // (1)
            *b = c.mu * *b + c.one_minus_tau * g; // (2)
            *w -= c.lr * (g + c.mu * *b); // (3), (4)
        }),
    }
}

/// SGD's state: the momentum buffer b.
pub struct Sgd<T> {
    cfg: SgdConfig,
    momentum_buffer: Vec<T>,
    t: u64,
}

impl<T: Scalar> Sgd<T> {
    pub fn new(cfg: SgdConfig, n: usize) -> Self {
        let len = if cfg.momentum != 0.0 { n } else { 0 };
        Sgd {
            cfg,
            momentum_buffer: vec![T::zero(); len],
            t: 0,
        }
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn begin_step(&mut self) {
        self.t += 1;
    }

    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T) {
        let c = &self.cfg;
        let coef = Coefficients {
            lr,
            wd: T::c(c.weight_decay),
            mu: T::c(c.momentum),
            one_minus_tau: T::c(1.0 - c.dampening),
            first: self.t == 1,
            nesterov: c.nesterov,
        };
        if c.momentum == 0.0 {
            plain_update(params, grads, coef.lr, coef.wd);
        } else {
            momentum_update(params, grads, &mut self.momentum_buffer[range], coef);
        }
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn set_momentum(&mut self, momentum: f64) {
        super::set_cycled_momentum(&self.momentum_buffer, &mut self.cfg.momentum, momentum);
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        super::in_use(vec![("momentum_buffer", &self.momentum_buffer)])
    }

    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        restore(
            &mut [("momentum_buffer", &mut self.momentum_buffer)],
            buffers,
        )?;
        self.t = steps;
        Ok(())
    }
}
