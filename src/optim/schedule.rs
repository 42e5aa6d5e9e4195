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
//! ```
//! use downhill::optim::Schedule;
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
    Step { every: usize, gamma: f64 },
    Exp { gamma: f64 },
    Cosine,
    InvTime { decay: f64 },
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
        }
    }
}

/// The accepted forms, for error messages.
pub const SCHEDULE_FORMS: &str = "constant, step:EVERY:GAMMA, exp:GAMMA, cosine, inv-time:D";

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
