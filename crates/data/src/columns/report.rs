//! The data report: one line per column saying what it became ([`Columns::report`]).

use super::{Column, Columns, Encoding, clipped};

/// Columns listed one per line in the data report (the rest are summed up in one line).
pub const REPORT_COLUMNS: usize = 30;

impl Columns {
    /// The data report: one line per column (role, type, categories or missing count).
    pub fn report(&self) -> Vec<String> {
        let w = self
            .columns
            .iter()
            .map(|c| c.name.chars().count())
            .chain(self.targets.iter().map(|t| t.chars().count()))
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = Vec::new();
        for (k, c) in self.columns.iter().enumerate() {
            if k == REPORT_COLUMNS && self.columns.len() > REPORT_COLUMNS + 5 {
                out.push(rest_line(&self.columns[k..]));
                break;
            }
            out.push(format!("  {:<w$}  {}", c.name, describe(c)));
        }
        for t in &self.targets {
            out.push(format!("  {t:<w$}  target"));
        }
        out
    }
}

/// The report's line for the columns after the first [`REPORT_COLUMNS`]: how many of each role,
/// how many with missing cells.
fn rest_line(rest: &[Column]) -> String {
    let mut roles: Vec<String> = Vec::new();
    for role in ["numeric", "boolean", "categorical", "dropped"] {
        let n = rest.iter().filter(|c| c.role() == role).count();
        if n > 0 {
            roles.push(format!("{n} {role}"));
        }
    }
    let missing = rest.iter().filter(|c| c.missing > 0).count();
    format!(
        "  … and {} more columns: {}{} (every column in summary.json)",
        rest.len(),
        roles.join(", "),
        if missing > 0 {
            format!("; {missing} with missing cells")
        } else {
            String::new()
        }
    )
}

/// What became of column `c`, as the report says it: its role, encoding and missing cells.
fn describe(c: &Column) -> String {
    let miss = if c.missing > 0 {
        format!(", {} missing", c.missing)
    } else {
        String::new()
    };
    // What fills a missing cell, and the indicator column that marks it.
    let filled = |fill: String| {
        if c.missing > 0 {
            format!(" → {fill}, + indicator")
        } else {
            String::new()
        }
    };
    match &c.encoding {
        Encoding::Numeric { fill } => format!(
            "numeric      standardised{miss}{}",
            match fill {
                Some(f) => filled(format!("median {f}")),
                None => String::new(),
            }
        ),
        Encoding::Boolean { fill } => {
            format!(
                "boolean      0/1{miss}{}",
                filled(u8::from(*fill).to_string())
            )
        }
        Encoding::Categorical { categories, fill } => {
            let shown: Vec<String> = categories.iter().take(6).map(|c| clipped(c)).collect();
            let more = if categories.len() > 6 { ", …" } else { "" };
            let capped = if c.distinct > categories.len() {
                format!(
                    " (the {} most frequent of {}; the others encode as unseen)",
                    categories.len(),
                    c.distinct
                )
            } else {
                String::new()
            };
            format!(
                "categorical  one-hot, {} categories: {}{more}{capped}{miss}{}",
                categories.len(),
                shown.join(", "),
                filled(format!("{fill:?}"))
            )
        }
        Encoding::Dropped { reason } => format!("dropped      {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::Overrides;
    use crate::columns::tests::{fit, table};

    #[test]
    fn the_report_lists_thirty_columns_then_sums_up() {
        let head: Vec<String> = (0..40).map(|j| format!("c{j}")).collect();
        let row: Vec<String> = (0..40).map(|j| j.to_string()).collect();
        let row2: Vec<String> = (0..40).map(|j| (j * 2).to_string()).collect();
        let lines = [
            format!("{},y", head.join(",")),
            format!("{},0", row.join(",")),
            format!("{},1", row2.join(",")),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let r = fit(&table(&refs), &Overrides::default()).unwrap().report();
        assert_eq!(r.len(), REPORT_COLUMNS + 2, "{r:?}");
        // c0 is constant (0 and 0); the other 39 numeric.
        assert!(r[0].contains("c0") && r[0].contains("constant"), "{}", r[0]);
        assert!(
            r[REPORT_COLUMNS].contains("10 more columns: 10 numeric"),
            "{}",
            r[REPORT_COLUMNS]
        );
        assert!(r[REPORT_COLUMNS + 1].ends_with("target"));
    }
}
