//! Model-file validation: the checks of a column map ([`Columns::validate`]) and of a target
//! scaling ([`TargetScaling::validate`]) read from a model file, whose errors name the offending
//! entry.

use std::path::Path;

use downhill_core::error::{Error, Result};

use super::{Columns, Encoding, TargetScaling};

impl Columns {
    /// Checks a map read from a model file: names, categories and fills that the encoder relies
    /// on, and `inputs` features. Errors name the offending column.
    pub fn validate(&self, path: &Path, inputs: usize) -> Result<()> {
        let bad = |what: String| Error::Data {
            path: path.to_path_buf(),
            location: "__metadata__.downhill.columns".into(),
            message: what,
        };
        if self.targets.is_empty() || self.targets.len() != self.target_positions.len() {
            return Err(bad(format!(
                "{} target names but {} target positions",
                self.targets.len(),
                self.target_positions.len()
            )));
        }
        let width = self.file_width();
        let mut seen_pos = std::collections::HashSet::new();
        for &p in &self.target_positions {
            if p >= width || !seen_pos.insert(p) {
                return Err(bad(format!(
                    "target position {p} is repeated or outside the file's {width} columns"
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for n in self.columns.iter().map(|c| &c.name).chain(&self.targets) {
            if self.has_header && !names.insert(n) {
                return Err(bad(format!("column name {n:?} appears twice")));
            }
        }
        for c in &self.columns {
            if c.is_dropped() && c.indicator {
                return Err(bad(format!(
                    "column {}: dropped, yet with a missing indicator",
                    c.name
                )));
            }
            match &c.encoding {
                Encoding::Numeric { fill: Some(f) }
                    if !(f.is_finite() && f.abs() <= f32::MAX as f64) =>
                {
                    return Err(bad(format!(
                        "column {}: fill value {} is not a finite f32",
                        c.name,
                        downhill_core::error::short(*f)
                    )));
                }
                Encoding::Categorical { categories, fill } => {
                    if categories.is_empty() {
                        return Err(bad(format!("column {}: no categories", c.name)));
                    }
                    let set: std::collections::HashSet<&String> = categories.iter().collect();
                    if set.len() != categories.len() {
                        return Err(bad(format!("column {}: a category appears twice", c.name)));
                    }
                    if !categories.contains(fill) {
                        return Err(bad(format!(
                            "column {}: fill {fill:?} is not one of its categories",
                            c.name
                        )));
                    }
                }
                _ => {}
            }
        }
        if self.n_features() != inputs {
            return Err(bad(format!(
                "the columns make {} features, but the network takes {inputs}",
                self.n_features()
            )));
        }
        Ok(())
    }
}

impl TargetScaling {
    /// Checks a scaling read from a model file with `outputs` outputs.
    pub fn validate(&self, path: &Path, outputs: usize) -> Result<()> {
        let bad = |m: String| Error::Data {
            path: path.to_path_buf(),
            location: "__metadata__.downhill.target_scaling".into(),
            message: m,
        };
        if self.mean.len() != outputs || self.std.len() != outputs {
            return Err(bad(format!(
                "{} means and {} standard deviations for {outputs} outputs",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some(m) = self
            .mean
            .iter()
            .find(|m| !(m.is_finite() && m.abs() <= f32::MAX as f64))
        {
            return Err(bad(format!(
                "mean {} is not a finite f32",
                downhill_core::error::short(*m)
            )));
        }
        if let Some(s) = self
            .std
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0 && **s <= f32::MAX as f64))
        {
            return Err(bad(format!(
                "standard deviation {} is not a finite number > 0",
                downhill_core::error::short(*s)
            )));
        }
        Ok(())
    }
}
