//! Adagrad (Duchi, Hazan & Singer, 2011) — PyTorch's `torch.optim.Adagrad`.
//!
//! At step t = 1, 2, … with gradient gₜ, learning rate η, learning-rate decay d, epsilon ε,
//! weight decay λ and initial accumulator value s₀:
//!
//! ```text
//! (1) g ← gₜ + λ·wₜ                          (if λ ≠ 0)
//! (2) ηₜ = η / (1 + (t − 1)·d)
//! (3) sₜ = sₜ₋₁ + g²                         (sum of squared gradients)
//! (4) wₜ₊₁ = wₜ − ηₜ·g / (√sₜ + ε)
//! ```
//!
//! Defaults (PyTorch's): η = 0.01, d = 0, ε = 1e-10, λ = 0, s₀ = 0.

use super::{Optimizer, non_negative, restore};
use crate::error::Result;
use crate::tensor::Scalar;

/// Hyperparameters of [`Adagrad`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AdagradConfig {
    pub lr: f64,
    pub lr_decay: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
        }
    }
}

impl AdagradConfig {
    pub fn validate(&self) -> Result<()> {
        non_negative("lr_decay", self.lr_decay)?;
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)?;
        non_negative("initial_accumulator_value", self.initial_accumulator_value)
    }
}

/// Adagrad's state: the running sum of squared gradients.
pub struct Adagrad<T> {
    cfg: AdagradConfig,
    sum: Vec<T>,
    t: u64,
}

impl<T: Scalar> Adagrad<T> {
    pub fn new(cfg: AdagradConfig, n: usize) -> Self {
        Adagrad {
            cfg,
            sum: vec![T::c(cfg.initial_accumulator_value); n],
            t: 0,
        }
    }
}

impl<T: Scalar> Optimizer<T> for Adagrad<T> {
    fn begin_step(&mut self) {
        self.t += 1;
    }

    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T) {
        let clr = lr / T::c(1.0 + (self.t - 1) as f64 * self.cfg.lr_decay); // (2)
        let (wd, eps) = (T::c(self.cfg.weight_decay), T::c(self.cfg.eps));
        for ((w, &g), s) in params.iter_mut().zip(grads).zip(self.sum[range].iter_mut()) {
            let g = g + wd * *w; // (1)
            *s += g * g; // (3)
            *w -= clr * g / (s.sqrt() + eps); // (4)
        }
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        super::in_use(vec![("sum", &self.sum)])
    }

    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        restore(&mut [("sum", &mut self.sum)], buffers)?;
        self.t = steps;
        Ok(())
    }
}
