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

use super::{Optimizer, check, restore};
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
        check(
            "momentum",
            self.momentum,
            self.momentum >= 0.0,
            "must be ≥ 0",
        )?;
        check(
            "dampening",
            self.dampening,
            (0.0..=1.0).contains(&self.dampening),
            "must be in [0, 1]",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "must be ≥ 0",
        )?;
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
    fn step(&mut self, params: &mut [T], grads: &[T], lr: T) {
        self.t += 1;
        let wd = T::c(self.cfg.weight_decay);
        let mu = T::c(self.cfg.momentum);
        let one_minus_tau = T::c(1.0 - self.cfg.dampening);
        let first = self.t == 1;
        if self.cfg.momentum == 0.0 {
            for (w, &g) in params.iter_mut().zip(grads) {
                let g = g + wd * *w; // (1)
                *w -= lr * g; // (4)
            }
            return;
        }
        for ((w, &g), b) in params
            .iter_mut()
            .zip(grads)
            .zip(self.momentum_buffer.iter_mut())
        {
            let g = g + wd * *w; // (1)
            *b = if first {
                g
            } else {
                mu * *b + one_minus_tau * g
            }; // (2)
            let d = if self.cfg.nesterov { g + mu * *b } else { *b }; // (3)
            *w -= lr * d; // (4)
        }
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        vec![("momentum_buffer", &self.momentum_buffer)]
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
