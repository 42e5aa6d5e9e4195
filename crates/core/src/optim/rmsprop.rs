//! RMSprop (Hinton, lecture 6e) — PyTorch's `torch.optim.RMSprop`.
//!
//! At step t with gradient gₜ, learning rate η, smoothing α, epsilon ε, momentum μ, weight decay λ:
//!
//! ```text
//! (1) g ← gₜ + λ·wₜ                                  (if λ ≠ 0)
//! (2) vₜ = α·vₜ₋₁ + (1 − α)·g²                         (running mean of g², v₀ = 0)
//! (3) centered:  ḡₜ = α·ḡₜ₋₁ + (1 − α)·g,  s = √(vₜ − ḡₜ²) + ε
//!     otherwise: s = √vₜ + ε
//! (4) μ > 0:  bₜ = μ·bₜ₋₁ + g/s,  wₜ₊₁ = wₜ − η·bₜ
//!     μ = 0:  wₜ₊₁ = wₜ − η·g/s
//! ```
//!
//! Defaults (PyTorch's): η = 0.01, α = 0.99, ε = 1e-8, μ = 0, centered off, λ = 0.

use super::{Optimizer, momentum_range, non_negative, restore, unit_interval};
use crate::error::Result;
use crate::tensor::Scalar;

/// Hyperparameters of [`RmsProp`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RmsPropConfig {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
    pub centered: bool,
    pub weight_decay: f64,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
        }
    }
}

impl RmsPropConfig {
    pub fn validate(&self) -> Result<()> {
        unit_interval("alpha", self.alpha)?;
        non_negative("eps", self.eps)?;
        momentum_range(self.momentum)?;
        non_negative("weight_decay", self.weight_decay)
    }
}

/// RMSprop's state: the running mean of g² (and of g when centered) and the momentum buffer.
pub struct RmsProp<T> {
    cfg: RmsPropConfig,
    square_avg: Vec<T>,
    grad_avg: Vec<T>,
    momentum_buffer: Vec<T>,
    t: u64,
}

impl<T: Scalar> RmsProp<T> {
    pub fn new(cfg: RmsPropConfig, n: usize) -> Self {
        let sized = |on: bool| vec![T::zero(); if on { n } else { 0 }];
        RmsProp {
            cfg,
            square_avg: sized(true),
            grad_avg: sized(cfg.centered),
            momentum_buffer: sized(cfg.momentum > 0.0),
            t: 0,
        }
    }
}

impl<T: Scalar> Optimizer<T> for RmsProp<T> {
    fn begin_step(&mut self) {
        self.t += 1;
    }

    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T) {
        let off = range.start;
        let (wd, alpha, eps, mu) = (
            T::c(self.cfg.weight_decay),
            T::c(self.cfg.alpha),
            T::c(self.cfg.eps),
            T::c(self.cfg.momentum),
        );
        let one_alpha = T::one() - alpha;
        let (centered, has_momentum) = (self.cfg.centered, self.cfg.momentum > 0.0);
        for (j, (w, &g)) in params.iter_mut().zip(grads).enumerate() {
            let i = off + j;
            let g = g + wd * *w; // (1)
            let v = &mut self.square_avg[i];
            *v = alpha * *v + one_alpha * g * g; // (2)
            let s = if centered {
                let gbar = &mut self.grad_avg[i];
                *gbar = alpha * *gbar + one_alpha * g;
                (*v - *gbar * *gbar).sqrt() + eps // (3) centered
            } else {
                v.sqrt() + eps // (3)
            };
            if has_momentum {
                let b = &mut self.momentum_buffer[i];
                *b = mu * *b + g / s; // (4)
                *w -= lr * *b;
            } else {
                *w -= lr * g / s; // (4)
            }
        }
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn set_momentum(&mut self, momentum: f64) {
        super::set_cycled_momentum(&self.momentum_buffer, &mut self.cfg.momentum, momentum);
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        super::in_use(vec![
            ("square_avg", &self.square_avg),
            ("grad_avg", &self.grad_avg),
            ("momentum_buffer", &self.momentum_buffer),
        ])
    }

    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        restore(
            &mut [
                ("square_avg", &mut self.square_avg),
                ("grad_avg", &mut self.grad_avg),
                ("momentum_buffer", &mut self.momentum_buffer),
            ],
            buffers,
        )?;
        self.t = steps;
        Ok(())
    }
}
