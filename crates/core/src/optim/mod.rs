//! Optimisers: the walk downhill w ← w − η·(update direction), one file per method, each with
//! the update rule of PyTorch's class of the same name (same defaults, same order of operations
//! where it matters) so that a run can be reproduced step for step in PyTorch.
//!
//! Every optimiser works on the network's whole flat parameter vector and its gradient at once,
//! and keeps its state (momentum buffers, moment estimates) in preallocated vectors of the same length.
//!
//! ## L2 penalty, `weight_decay`, and decoupled decay
//! The notes minimise L(w) + λ Σ w² (over weights, not biases); its gradient adds 2λw. PyTorch's
//! `weight_decay = wd` adds wd·w to the gradient of *every* parameter (biases included), i.e. it
//! is the penalty (wd/2) Σ w². So the notes' λ equals PyTorch's `weight_decay / 2`, and
//! `--l2 λ` ≡ `--weight-decay 2λ` for plain SGD (up to the biases). With adaptive methods (Adam,
//! RMSprop, Adagrad) the two are not equivalent to decoupled decay: AdamW shrinks the weights
//! directly, w ← w − η·wd·w, outside the adaptive scaling, which is why it is its own optimiser.
//!
//! ```
//! use downhill_core::optim::{Optimizer, OptimizerConfig, SgdConfig};
//! // Plain gradient descent on f(w) = w²/2 (gradient w), η = 0.1: w ← 0.9·w.
//! let mut opt = OptimizerConfig::Sgd(SgdConfig { lr: 0.1, ..Default::default() }).build::<f64>(1);
//! let mut w = [1.0];
//! for _ in 0..3 {
//!     let g = [w[0]];
//!     opt.step(&mut w, &g, 0.1);
//! }
//! assert!((w[0] - 0.9f64.powi(3)).abs() < 1e-15);
//! ```

pub mod adagrad;
pub mod adam;
pub mod adamw;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
pub mod sharded;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use adamw::AdamW;
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::Schedule;
pub use sgd::{Sgd, SgdConfig};
pub use sharded::{Part, Sharded};

use crate::error::{Error, Result};
use crate::tensor::Scalar;

/// A first-order optimiser over a flat parameter vector.
pub trait Optimizer<T: Scalar>: Send {
    /// Starts the next step t + 1 (advances the step count that bias corrections and
    /// first-step rules read).
    fn begin_step(&mut self);

    /// Applies the current step's update to `params`, the part at `range` of the flat parameter
    /// vector, given their gradients `grads`. A step may update the vector in several parts (the
    /// training loop updates each layer as soon as backpropagation has its gradient); every rule
    /// here is elementwise, so the result is the same as one update of the whole vector.
    fn update(&mut self, params: &mut [T], grads: &[T], range: std::ops::Range<usize>, lr: T);

    /// One whole step: [`Optimizer::begin_step`] then [`Optimizer::update`] of everything.
    fn step(&mut self, params: &mut [T], grads: &[T], lr: T) {
        self.begin_step();
        let n = params.len();
        self.update(params, grads, 0..n, lr);
    }

    /// Steps taken so far (PyTorch's `state["step"]`).
    fn steps(&self) -> u64;

    /// Sets the momentum a scheduler cycles (PyTorch's `group["momentum"]` for SGD and RMSprop,
    /// `group["betas"][0]` for Adam and AdamW); no-op for optimisers without one (Adagrad).
    /// The optimiser must have been built with a momentum > 0 (so its buffer exists); see
    /// [`OptimizerConfig::with_momentum`].
    fn set_momentum(&mut self, _momentum: f64) {}

    /// The state as named buffers (for checkpoints): PyTorch's names where it has them. Only
    /// the buffers the settings use are listed (SGD at momentum 0 has none).
    fn state(&self) -> Vec<(&'static str, &[T])>;

    /// Restores steps and the named buffers saved by [`Optimizer::state`].
    fn set_state(&mut self, steps: u64, buffers: &[(&str, &[T])]) -> Result<()>;
}

/// Which optimiser, with its hyperparameters: what a configuration file or the CLI names.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    #[serde(rename = "adamw")]
    AdamW(AdamConfig),
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    Adagrad(AdagradConfig),
}

impl OptimizerConfig {
    /// Names accepted by [`OptimizerConfig::default_for`].
    pub const NAMES: [&'static str; 5] = ["sgd", "adam", "adamw", "rmsprop", "adagrad"];

    /// PyTorch's defaults for the named optimiser (AdamW's weight decay is 0.01, as in PyTorch).
    pub fn default_for(name: &str) -> Option<OptimizerConfig> {
        Some(match name {
            "sgd" => OptimizerConfig::Sgd(SgdConfig::default()),
            "adam" => OptimizerConfig::Adam(AdamConfig::default()),
            "adamw" => OptimizerConfig::AdamW(AdamConfig {
                weight_decay: 1e-2,
                ..AdamConfig::default()
            }),
            "rmsprop" => OptimizerConfig::RmsProp(RmsPropConfig::default()),
            "adagrad" => OptimizerConfig::Adagrad(AdagradConfig::default()),
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW(_) => "adamw",
            OptimizerConfig::RmsProp(_) => "rmsprop",
            OptimizerConfig::Adagrad(_) => "adagrad",
        }
    }

    /// The base learning rate η₀.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) | OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::RmsProp(c) => c.lr,
            OptimizerConfig::Adagrad(c) => c.lr,
        }
    }

    /// The same optimiser with base learning rate `lr`.
    pub fn with_lr(&self, lr: f64) -> OptimizerConfig {
        let mut c = *self;
        match &mut c {
            OptimizerConfig::Sgd(s) => s.lr = lr,
            OptimizerConfig::Adam(a) | OptimizerConfig::AdamW(a) => a.lr = lr,
            OptimizerConfig::RmsProp(r) => r.lr = lr,
            OptimizerConfig::Adagrad(a) => a.lr = lr,
        }
        c
    }

    /// The same optimiser with its momentum (SGD, RMSprop) or β₁ (Adam, AdamW) set to `m`;
    /// unchanged for Adagrad. For schedules that cycle momentum.
    pub fn with_momentum(&self, m: f64) -> OptimizerConfig {
        let mut c = *self;
        match &mut c {
            OptimizerConfig::Sgd(s) => s.momentum = m,
            OptimizerConfig::Adam(a) | OptimizerConfig::AdamW(a) => a.beta1 = m,
            OptimizerConfig::RmsProp(r) => r.momentum = m,
            OptimizerConfig::Adagrad(_) => {}
        }
        c
    }

    /// Checks the hyperparameters' ranges (as PyTorch's constructors do), naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::setting(
                "lr",
                lr,
                "the learning rate must be a finite number ≥ 0",
            ));
        }
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) | OptimizerConfig::AdamW(c) => c.validate(),
            OptimizerConfig::RmsProp(c) => c.validate(),
            OptimizerConfig::Adagrad(c) => c.validate(),
        }
    }

    /// How many buffers of one value per parameter the optimiser keeps (for size checks).
    pub fn buffers(&self) -> usize {
        match self {
            OptimizerConfig::Sgd(c) => usize::from(c.momentum != 0.0),
            OptimizerConfig::Adam(_) | OptimizerConfig::AdamW(_) => 2,
            OptimizerConfig::RmsProp(c) => {
                1 + usize::from(c.centered) + usize::from(c.momentum > 0.0)
            }
            OptimizerConfig::Adagrad(_) => 1,
        }
    }

    /// The optimiser for `n` parameters, its state zeroed.
    pub fn build<T: Scalar>(&self, n: usize) -> Box<dyn Optimizer<T>> {
        match *self {
            OptimizerConfig::Sgd(c) => Box::new(Sgd::new(c, n)),
            OptimizerConfig::Adam(c) => Box::new(Adam::new(c, n)),
            OptimizerConfig::AdamW(c) => Box::new(AdamW::new(c, n)),
            OptimizerConfig::RmsProp(c) => Box::new(RmsProp::new(c, n)),
            OptimizerConfig::Adagrad(c) => Box::new(Adagrad::new(c, n)),
        }
    }
}

/// Checks a hyperparameter against a range, for the configs' `validate`.
pub(crate) fn check(name: &'static str, v: f64, ok: bool, rule: &str) -> Result<()> {
    if ok && v.is_finite() {
        Ok(())
    } else {
        Err(Error::setting(name, v, rule))
    }
}

/// [`check`] of a setting that must be finite and ≥ 0.
pub(crate) fn non_negative(name: &'static str, v: f64) -> Result<()> {
    check(name, v, v >= 0.0, "must be ≥ 0")
}

/// [`check`] of a setting that must be in [0, 1].
pub(crate) fn unit_interval(name: &'static str, v: f64) -> Result<()> {
    check(name, v, (0.0..=1.0).contains(&v), "must be in [0, 1]")
}

/// A momentum coefficient μ in [0, 1] (as scikit-learn requires; PyTorch checks only μ ≥ 0): with
/// μ > 1 the velocity v ← μ·v + g grows without bound even where the gradient is zero.
pub(crate) fn momentum_range(v: f64) -> Result<()> {
    check(
        "momentum",
        v,
        (0.0..=1.0).contains(&v),
        "must be in [0, 1] (above 1 each step amplifies all the steps before it)",
    )
}

/// Copies saved buffers back into an optimiser's state, checking names and lengths.
///
/// Only the buffers in use count: a buffer this optimiser's settings do not use (empty here,
/// e.g. SGD's momentum buffer at momentum 0) needs nothing saved, and a saved buffer that is
/// empty (older checkpoints listed unused buffers with length 0) is skipped. A saved buffer
/// with data that this optimiser does not use is an error: the checkpoint was taken with
/// other settings.
pub(crate) fn restore<T: Scalar>(
    mine: &mut [(&'static str, &mut Vec<T>)],
    saved: &[(&str, &[T])],
) -> Result<()> {
    for (name, data) in saved {
        let used = mine.iter().any(|(n, b)| n == name && !b.is_empty());
        if !used && !data.is_empty() {
            return Err(Error::shape(
                format!("optimiser state {name}"),
                "no such buffer for these optimiser settings",
                format!("{} values", data.len()),
            ));
        }
    }
    for (name, buf) in mine.iter_mut().filter(|(_, b)| !b.is_empty()) {
        let (_, data) = saved.iter().find(|(n, _)| n == name).ok_or_else(|| {
            Error::shape("optimiser state", format!("a buffer named {name}"), "none")
        })?;
        if data.len() != buf.len() {
            return Err(Error::shape(
                format!("optimiser state {name}"),
                buf.len(),
                data.len(),
            ));
        }
        if let Some(i) = data.iter().position(|v| !v.f64().is_finite()) {
            return Err(Error::shape(
                format!("optimiser state {name}, element {i}"),
                "a finite number",
                data[i].f64(),
            ));
        }
        buf.copy_from_slice(data);
    }
    Ok(())
}

/// A momentum cycled by the schedule (one-cycle), for an optimiser whose momentum is `current`:
/// set only if it keeps a momentum buffer (one built with momentum 0 stays without).
pub(crate) fn set_cycled_momentum<T>(buffer: &[T], current: &mut f64, momentum: f64) {
    if !buffer.is_empty() {
        *current = momentum;
    }
}

/// The buffers of `all` that are in use (non-empty): what [`Optimizer::state`] returns.
pub(crate) fn in_use<'a, T>(all: Vec<(&'static str, &'a [T])>) -> Vec<(&'static str, &'a [T])> {
    all.into_iter().filter(|(_, b)| !b.is_empty()).collect()
}
