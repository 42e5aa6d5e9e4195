//! Learning-rate schedules: the learning rate ηₑ used throughout epoch e = 0, 1, …, from the base
//! rate η₀ (PyTorch's schedulers stepped once per epoch).
//!
//! | schedule            | ηₑ (t = e − W after a warm-up of W epochs)   | PyTorch                 |
//! |---------------------|-----------------------------------------------|-------------------------|
//! | `constant`          | η₀                                            | —                       |
//! | `step:EVERY:GAMMA`  | η₀ · γ^⌊t / EVERY⌋                            | `StepLR`                |
//! | `exp:GAMMA`         | η₀ · γᵗ                                       | `ExponentialLR`         |
//! | `cosine`            | η_min + (η₀ − η_min)(1 + cos(π t / T))/2      | `CosineAnnealingLR`     |
//! | `inv-time:D`        | η₀ / (1 + D·t)                                | —                       |
//!
//! For cosine, T is the number of epochs after warm-up and η_min = 0. Linear warm-up in front of
//! any of them: for e < W, ηₑ = η₀ · (e + 1)/(W + 1), rising in equal steps to η₀ at epoch W.
//!
//! ## One-cycle (`one-cycle`, `one-cycle:PCT`): PyTorch's `OneCycleLR`, stepped per batch
//! The base rate η₀ is the peak (`max_lr`). Over T = epochs × steps per epoch optimiser steps,
//! with step s = 0, 1, …, T − 1 and p = PCT (`pct_start`, default 0.3):
//!
//! ```text
//! η_start = η₀ / 25 (div_factor),   η_end = η_start / 10⁴ (final_div_factor)
//! phase 1, s ≤ pT − 1:   η = cos_anneal(η_start → η₀,  (s − 0)/(pT − 1 − 0))
//!                        momentum = cos_anneal(0.95 → 0.85, same fraction)
//! phase 2, otherwise:    η = cos_anneal(η₀ → η_end, (s − (pT − 1))/(T − 1 − (pT − 1)))
//!                        momentum = cos_anneal(0.85 → 0.95, same fraction)
//! cos_anneal(a → b, f) = b + (a − b)(1 + cos(π f))/2
//! ```
//!
//! exactly as `torch.optim.lr_scheduler.OneCycleLR` (three_phase=False, anneal_strategy='cos',
//! cycle_momentum=True, base_momentum=0.85, max_momentum=0.95) computes it, with the scheduler
//! stepped after every optimiser step (tested against PyTorch's values in
//! `tests/suite/optim/schedules.rs`).
//! The cycled momentum is what PyTorch cycles: SGD's and RMSprop's `momentum` (so, as in PyTorch,
//! one-cycle turns momentum on for SGD even when `--momentum` is not given), Adam's and AdamW's
//! β₁. Differences from PyTorch: Adagrad has no momentum, so only its learning rate cycles
//! (PyTorch refuses Adagrad with cycle_momentum=True); one-cycle takes no `--warmup` (its first
//! phase is the warm-up).
//!
//! ```
//! use downhill_core::optim::Schedule;
//! let s: Schedule = "step:2:0.5".parse().unwrap();
//! let lrs: Vec<f64> = (0..5).map(|e| s.lr(0.1, e, 5)).collect();
//! assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! ```

use std::str::FromStr;

use crate::error::{Error, Result};

/// How the learning rate decays after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Decay {
    Constant,
    Step {
        every: usize,
        gamma: f64,
    },
    Exp {
        gamma: f64,
    },
    Cosine,
    InvTime {
        decay: f64,
    },
    /// PyTorch's `OneCycleLR`, per optimiser step (see the module docs).
    OneCycle {
        pct_start: f64,
    },
}

/// OneCycleLR's defaults.
pub const ONE_CYCLE_DIV_FACTOR: f64 = 25.0;
pub const ONE_CYCLE_FINAL_DIV_FACTOR: f64 = 1e4;
pub const ONE_CYCLE_BASE_MOMENTUM: f64 = 0.85;
pub const ONE_CYCLE_MAX_MOMENTUM: f64 = 0.95;

/// Cosine annealing from `a` to `b` as `f` goes from 0 to 1 (PyTorch's `_annealing_cos`).
fn cos_anneal(a: f64, b: f64, f: f64) -> f64 {
    b + (a - b) / 2.0 * ((std::f64::consts::PI * f).cos() + 1.0)
}

/// A decay with an optional linear warm-up of `warmup` epochs in front.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub decay: Decay,
    pub warmup: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            decay: Decay::Constant,
            warmup: 0,
        }
    }
}

impl Schedule {
    /// The learning rate of epoch `epoch` (0-based) of `epochs`, from base rate `base`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        let w = self.warmup;
        if epoch < w {
            return base * (epoch + 1) as f64 / (w + 1) as f64;
        }
        let t = (epoch - w) as f64;
        match self.decay {
            Decay::Constant => base,
            Decay::Step { every, gamma } => base * gamma.powi(((epoch - w) / every) as i32),
            Decay::Exp { gamma } => base * gamma.powf(t),
            Decay::Cosine => {
                let span = epochs.saturating_sub(w).max(1) as f64;
                base * (1.0 + (std::f64::consts::PI * t / span).cos()) / 2.0
            }
            Decay::InvTime { decay } => base / (1.0 + decay * t),
            // Called per epoch, one-cycle counts epochs as its steps.
            Decay::OneCycle { .. } => self.step_lr(base, epoch, epochs),
        }
    }

    /// Whether the rates depend on the run's total of epochs (cosine and one-cycle anneal to
    /// its end): a run extended to more epochs then followed another schedule in its first
    /// epochs than a run planned for the new total from the start.
    pub fn depends_on_total(&self) -> bool {
        matches!(self.decay, Decay::Cosine | Decay::OneCycle { .. })
    }

    /// Whether the schedule changes the rate after every optimiser step rather than every epoch.
    pub fn per_step(&self) -> bool {
        matches!(self.decay, Decay::OneCycle { .. })
    }

    /// The phase fraction of step `step` of `total`: (phase, fraction) as OneCycleLR finds them.
    fn one_cycle_phase(pct_start: f64, step: usize, total: usize) -> (usize, f64) {
        let s = step as f64;
        let end1 = pct_start * total as f64 - 1.0;
        let end2 = total as f64 - 1.0;
        let frac = |start: f64, end: f64| {
            if end > start {
                (s - start) / (end - start)
            } else {
                1.0
            }
        };
        if s <= end1 {
            (0, frac(0.0, end1))
        } else {
            (1, frac(end1, end2))
        }
    }

    /// The learning rate of optimiser step `step` (0-based) of `total`, for per-step schedules;
    /// for the others, [`Schedule::lr`] with `step` as the epoch.
    pub fn step_lr(&self, base: f64, step: usize, total: usize) -> f64 {
        match self.decay {
            Decay::OneCycle { pct_start } => {
                let start = base / ONE_CYCLE_DIV_FACTOR;
                let end = start / ONE_CYCLE_FINAL_DIV_FACTOR;
                match Self::one_cycle_phase(pct_start, step, total) {
                    (0, f) => cos_anneal(start, base, f),
                    (_, f) => cos_anneal(base, end, f),
                }
            }
            _ => self.lr(base, step, total),
        }
    }

    /// The momentum (SGD, RMSprop) or β₁ (Adam, AdamW) the schedule sets at optimiser step
    /// `step` of `total`, if it cycles momentum.
    pub fn step_momentum(&self, step: usize, total: usize) -> Option<f64> {
        match self.decay {
            Decay::OneCycle { pct_start } => {
                Some(match Self::one_cycle_phase(pct_start, step, total) {
                    (0, f) => cos_anneal(ONE_CYCLE_MAX_MOMENTUM, ONE_CYCLE_BASE_MOMENTUM, f),
                    (_, f) => cos_anneal(ONE_CYCLE_BASE_MOMENTUM, ONE_CYCLE_MAX_MOMENTUM, f),
                })
            }
            _ => None,
        }
    }

    /// Adds a warm-up of `epochs` epochs.
    pub fn with_warmup(self, epochs: usize) -> Self {
        Schedule {
            warmup: epochs,
            ..self
        }
    }

    /// The schedule as the CLI spells it (without warm-up).
    pub fn spec(&self) -> String {
        match self.decay {
            Decay::Constant => "constant".into(),
            Decay::Step { every, gamma } => format!("step:{every}:{gamma}"),
            Decay::Exp { gamma } => format!("exp:{gamma}"),
            Decay::Cosine => "cosine".into(),
            Decay::InvTime { decay } => format!("inv-time:{decay}"),
            Decay::OneCycle { pct_start: 0.3 } => "one-cycle".into(),
            Decay::OneCycle { pct_start } => format!("one-cycle:{pct_start}"),
        }
    }
}

/// The accepted forms, for error messages.
pub const SCHEDULE_FORMS: &str =
    "constant, step:EVERY:GAMMA, exp:GAMMA, cosine, inv-time:D, one-cycle, one-cycle:PCT_START";

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Schedule> {
        let bad = |why: &str| {
            Error::setting("schedule", s, format!("{why} (accepted: {SCHEDULE_FORMS})"))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let num = |p: &str, what: &str| {
            p.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("{what} must be a number")))
        };
        let decay = match parts.as_slice() {
            ["constant"] => Decay::Constant,
            ["cosine"] => Decay::Cosine,
            ["one-cycle"] => Decay::OneCycle { pct_start: 0.3 },
            ["one-cycle", p] => {
                let p = num(p, "PCT_START")?;
                if !(p > 0.0 && p < 1.0) {
                    return Err(bad("PCT_START must be in (0, 1)"));
                }
                Decay::OneCycle { pct_start: p }
            }
            ["step", every, gamma] => {
                let every = every
                    .parse::<usize>()
                    .ok()
                    .filter(|&e| e > 0)
                    .ok_or_else(|| bad("EVERY must be a whole number ≥ 1"))?;
                Decay::Step {
                    every,
                    gamma: positive(num(gamma, "GAMMA")?, &bad)?,
                }
            }
            ["exp", gamma] => Decay::Exp {
                gamma: positive(num(gamma, "GAMMA")?, &bad)?,
            },
            ["inv-time", d] => {
                let d = num(d, "D")?;
                if d < 0.0 {
                    return Err(bad("D must be ≥ 0"));
                }
                Decay::InvTime { decay: d }
            }
            _ => return Err(bad("unknown schedule")),
        };
        Ok(Schedule { decay, warmup: 0 })
    }
}

fn positive(v: f64, bad: &dyn Fn(&str) -> Error) -> Result<f64> {
    if v > 0.0 {
        Ok(v)
    } else {
        Err(bad("GAMMA must be > 0"))
    }
}
