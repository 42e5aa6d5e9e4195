//! The library's error type: typed, and carrying the offending values so a person can act on it.

use std::path::PathBuf;

/// Everything that can go wrong in downhill, from a bad setting to a diverging run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting (hyperparameter, flag) out of range.
    #[error("invalid setting {name} = {value}: {reason}")]
    Setting {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// Shapes that do not fit together (data width vs. network, targets vs. outputs, …).
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },

    /// Training diverged: the loss or the weights stopped being finite numbers, the validation
    /// loss did, or the training loss blew up (see [`crate::train::Divergence`]).
    #[error(
        "training diverged at epoch {epoch}, step {step}: {cause}. \
         The learning rate ({}) is probably too large for this problem; {advice}. \
         No model was written",
        short(*.lr)
    )]
    Diverged {
        epoch: usize,
        step: usize,
        /// The loss that gave it away (NaN when the weights did).
        loss: f64,
        lr: f64,
        /// What was seen.
        cause: String,
        /// What to try instead; names a learning rate the tool has reason to believe works
        /// where it has one (see `downhill lr-find`).
        advice: String,
    },

    /// The loss is not a finite number where no learning rate can be to blame: at the starting
    /// weights, before any update, or with a learning rate of 0 (the weights never move).
    #[error(
        "training stopped at epoch {epoch}, step {step}: the mini-batch loss is {loss} {why}, so \
         no learning rate is to blame; {advice}. No model was written"
    )]
    NotFinite {
        epoch: usize,
        step: usize,
        loss: f64,
        why: String,
        advice: String,
    },

    /// A data file that cannot be read as what it claims to be.
    #[error("{}: {location}: {message}", path.display())]
    Data {
        path: PathBuf,
        location: String,
        message: String,
    },

    /// A size that would need more memory than the machine has (checked before reserving it).
    #[error(
        "{what} would need {needed} of memory, but {available} is available; choose smaller sizes"
    )]
    TooLarge {
        what: String,
        needed: String,
        available: String,
    },

    /// An operating-system error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Setting`].
    pub fn setting(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Error {
        Error::Setting {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(what: impl Into<String>, expected: impl ToString, got: impl ToString) -> Error {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// A number as people write it: plain between 1e-4 and 1e6, else in scientific notation.
pub fn short(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
