//! AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay — PyTorch's
//! `torch.optim.AdamW`.
//!
//! At step t with gradient gₜ, learning rate η and weight decay λ:
//!
//! ```text
//! (1) wₜ ← wₜ − η·λ·wₜ                          (decay the weights directly, not through g)
//! (2)–(5) the Adam update of `adam.rs` with g = gₜ (no decay term in the gradient)
//! ```
//!
//! Because the decay bypasses the adaptive scaling 1/(√v̂ + ε), every weight shrinks by the same
//! factor (1 − ηλ) per step, unlike Adam's `weight_decay`, which is scaled per coordinate.
//! Defaults (PyTorch's): η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8, λ = 0.01.

use super::{Adam, AdamConfig, Optimizer};
use crate::error::Result;
use crate::tensor::Scalar;

/// AdamW's state is Adam's; only the decay differs.
pub struct AdamW<T> {
    adam: Adam<T>,
}

impl<T: Scalar> AdamW<T> {
    pub fn new(cfg: AdamConfig, n: usize) -> Self {
        AdamW {
            adam: Adam::new(cfg, n),
        }
    }
}

impl<T: Scalar> Optimizer<T> for AdamW<T> {
    fn begin_step(&mut self) {
        self.adam.t += 1;
    }

    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T) {
        let shrink = T::one() - lr * T::c(self.adam.cfg.weight_decay);
        for w in params.iter_mut() {
            *w *= shrink; // (1)
        }
        self.adam.adam_update(params, grads, range, lr, T::zero());
    }

    fn set_momentum(&mut self, beta1: f64) {
        self.adam.cfg.beta1 = beta1;
    }

    fn steps(&self) -> u64 {
        self.adam.t
    }

    fn state(&self) -> Vec<(&'static str, &[T])> {
        self.adam.buffers()
    }

    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()> {
        self.adam.restore(steps, buffers)
    }
}
