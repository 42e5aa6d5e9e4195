//! Adam (Kingma & Ba, 2015) — PyTorch's `torch.optim.Adam` (without amsgrad).
//!
//! At step t = 1, 2, … with gradient gₜ, learning rate η, betas β₁, β₂, epsilon ε, weight decay λ:
//!
//! ```text
//! (1) g ← gₜ + λ·wₜ                             (L2-style decay inside the gradient, if λ ≠ 0)
//! (2) mₜ = β₁·mₜ₋₁ + (1 − β₁)·g                  (first moment, m₀ = 0)
//! (3) vₜ = β₂·vₜ₋₁ + (1 − β₂)·g²                 (second moment, v₀ = 0)
//! (4) m̂ = mₜ / (1 − β₁ᵗ),  v̂ = vₜ / (1 − β₂ᵗ)     (bias correction)
//! (5) wₜ₊₁ = wₜ − η·m̂ / (√v̂ + ε)                 (ε added outside the square root)
//! ```
//!
//! As in PyTorch, (4)–(5) are computed as wₜ₊₁ = wₜ − (η/(1 − β₁ᵗ))·mₜ / (√vₜ/√(1 − β₂ᵗ) + ε).
//! Defaults (PyTorch's): η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, λ = 0.

use super::{Optimizer, check, non_negative, restore};
use crate::error::Result;
use crate::tensor::Scalar;

/// Hyperparameters of [`Adam`] (and of [`super::AdamW`], whose `weight_decay` is decoupled).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    pub fn validate(&self) -> Result<()> {
        check(
            "beta1",
            self.beta1,
            (0.0..1.0).contains(&self.beta1),
            "must be in [0, 1)",
        )?;
        check(
            "beta2",
            self.beta2,
            (0.0..1.0).contains(&self.beta2),
            "must be in [0, 1)",
        )?;
        non_negative("eps", self.eps)?;
        non_negative("weight_decay", self.weight_decay)
    }
}

/// The scalars of one step: betas, 1 − betas, ε, η/(1 − β₁ᵗ), 1/√(1 − β₂ᵗ), weight decay.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    b1: T,
    b2: T,
    one_b1: T,
    one_b2: T,
    eps: T,
    step_size: T,
    inv_bc2_sqrt: T,
    wd: T,
}

/// Steps (1)–(5), elementwise; compiled for AVX-512, AVX2 and plain x86-64, chosen at run time
/// (every version gives the same bits).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn update<T: Scalar>(params: &mut [T], grads: &[T], m: &mut [T], v: &mut [T], k: Coefficients<T>) {
    for (((w, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let g = g + k.wd * *w; // (1)
        *m = k.b1 * *m + k.one_b1 * g; // (2)
        *v = k.b2 * *v + k.one_b2 * g * g; // (3)
        let denom = v.sqrt() * k.inv_bc2_sqrt + k.eps; // (4), ε outside the root
        *w -= k.step_size * *m / denom; // (5)
    }
}

/// Adam's state: the moment estimates m and v.
pub struct Adam<T> {
    pub(super) cfg: AdamConfig,
    pub(super) exp_avg: Vec<T>,
    pub(super) exp_avg_sq: Vec<T>,
    pub(super) t: u64,
}

impl<T: Scalar> Adam<T> {
    pub fn new(cfg: AdamConfig, n: usize) -> Self {
        Adam {
            cfg,
            exp_avg: vec![T::zero(); n],
            exp_avg_sq: vec![T::zero(); n],
            t: 0,
        }
    }

    /// Steps (2)–(5) with the gradient g = grads + `wd`·w of step (1).
    /// Steps (2)–(5) for the part `range` of the parameters, with the decay `wd` of step (1).
    pub(super) fn adam_update(
        &mut self,
        params: &mut [T],
        grads: &[T],
        range: std::ops::Range<usize>,
        lr: T,
        wd: T,
    ) {
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bias_correction1 = 1.0 - b1.powi(self.t as i32);
        let bias_correction2_sqrt = (1.0 - b2.powi(self.t as i32)).sqrt();
        let step_size = lr / T::c(bias_correction1);
        let inv_bc2_sqrt = T::c(1.0 / bias_correction2_sqrt);
        let (b1, b2, eps) = (T::c(b1), T::c(b2), T::c(self.cfg.eps));
        let k = Coefficients {
            b1,
            b2,
            one_b1: T::one() - b1,
            one_b2: T::one() - b2,
            eps,
            step_size,
            inv_bc2_sqrt,
            wd,
        };
        update(
            params,
            grads,
            &mut self.exp_avg[range.clone()],
            &mut self.exp_avg_sq[range],
            k,
        );
    }

    pub(super) fn buffers(&self) -> Vec<(&'static str, &[T])> {
        super::in_use(vec![
            ("exp_avg", &self.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq),
        ])
    }

    pub(super) fn restore(&mut self, steps: u64, saved: &[(&str, &[T])]) -> Result<()> {
        restore(
            &mut [
                ("exp_avg", &mut self.exp_avg),
                ("exp_avg_sq", &mut self.exp_avg_sq),
            ],
            saved,
        )?;
        self.t = steps;
        Ok(())
    }
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    fn begin_step(&mut self) {
        self.t += 1;
    }

    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T) {
        let wd = T::c(self.cfg.weight_decay);
        self.adam_update(params, grads, range, lr, wd);
    }

    fn set_momentum(&mut self, beta1: f64) {
        self.cfg.beta1 = beta1;
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        self.buffers()
    }

    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        self.restore(steps, buffers)
    }
}
