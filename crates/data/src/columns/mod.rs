//! From a table of text cells to the feature matrix: each column's role is inferred on the
//! training rows only ([`Columns::fit`]), then the same map is applied to validation, test,
//! `eval` and `predict` rows ([`Columns::encode`]). The fitted map is stored in the model file.
//!
//! # Missing cells
//! A cell is missing when, trimmed and ignoring case, it is one of [`MISSING_WORDS`]: empty,
//! `NA`, `N/A`, `NaN`, `null`, `?`. (`none` is *not* missing: it is a real category in many
//! tables, e.g. "no garage"; `N/A` is, as it has no other reading.)
//!
//! # Roles (decided in this order, on the training rows only)
//! 1. `--drop` names it, or `--features` is given and does not name it: **dropped**.
//! 2. No value in any training row (every cell missing): **dropped**.
//! 3. `--categorical` names it: **categorical** (rules 4–8 are skipped).
//! 4. One distinct value and no missing cell: **dropped** (constant). Not applied to a column
//!    named by `--features`.
//! 5. The first column, when its header is empty or `Unnamed: 0` (a row-name column written by R or
//!    pandas), with a different value on every training row: **dropped** (row names).
//! 6. Its name looks like an identifier (see [`looks_like_id`]) and at least
//!    [`ID_SHARE`] (95%) of its non-missing training values are distinct: **dropped** (ID-like).
//!    Rules 5 and 6 take a numeric column only when every value is a whole number (an ID or a
//!    row number is never 0.37).
//! 7. Every value is a number: **numeric**. Every value is a yes/no word ([`TRUE_WORDS`],
//!    [`FALSE_WORDS`], case-insensitive: yes/no, true/false, y/n, t/f): **boolean**.
//!    A text column that is really numbers is an error naming its first such cell (rather than
//!    categories or an ID-like drop that would lose them silently): every value a number and some
//!    written with a thousands separator, decimal comma, percent or currency sign (`12,345`,
//!    `0,5`, `45%`, `$12`; see [`decorated_number`]), or at least [`NUMERIC_SHARE`] (90%) of the
//!    values plain numbers and the rest stray words (`three`). `--categorical` or `--drop` on the
//!    column, or a rewritten column, say what to do instead.
//! 8. Otherwise text. A text column with at least [`ID_MIN_ROWS`] (20) non-missing training values
//!    of which at least 95% are distinct is **dropped** (ID-like: names, free text); else
//!    **categorical**.
//!
//! Rules 4–6 and 8's ID rule do not apply to a column named by `--features`.
//!
//! # Encoding (features in file order; each column's indicator right after its own features)
//! - **numeric**: one feature, the number; a missing cell becomes the training **median**. It is
//!   then standardised with the training mean and standard deviation (by the run's normaliser).
//!   A number beyond f32's range (|x| > 3.4·10³⁸) or not finite (`inf`) is an error naming the
//!   file, line and column.
//! - **boolean**: one feature, 1 for a yes-word, 0 for a no-word; missing → the most frequent
//!   value (ties: 0). Not standardised.
//! - **categorical**: one 0/1 feature per category seen in training (sorted by name; at most
//!   [`MAX_CATEGORIES`] (100), the most frequent, ties by name — rarer ones encode like unseen
//!   ones); missing → the most frequent category (ties: first by name). A category not seen in
//!   training encodes as all zeros and is counted ([`Encoded::unseen`]). Not standardised.
//! - **missing indicator**: for each column that had a missing cell in the training rows, one more
//!   0/1 feature, 1 where the cell is missing. Not standardised. None under `--image-shape`: a
//!   missing pixel is only filled, so that the features stay the image's values.
//! - **dropped**: nothing.
//!
//! The code, by idea: the roles (`infer`), the encoding (`encode`), the report (`report`), the
//! checks of a map read from a model file (`validate`) and the regression targets' scaling
//! (`scaling`).

use downhill_core::error::Result;

mod encode;
mod infer;
mod report;
mod scaling;
mod validate;

pub use infer::{
    ID_MIN_ROWS, ID_SHARE, MAX_CATEGORIES, NUMERIC_SHARE, decorated_number, looks_like_id,
};
pub use report::REPORT_COLUMNS;
pub use scaling::TargetScaling;

/// A cell as messages quote it: in quotes, escaped, and cut after 60 characters (a 200 MB cell
/// is not printed whole).
pub fn quoted(cell: &str) -> String {
    match cell.char_indices().nth(60) {
        None => format!("{cell:?}"),
        Some((at, _)) => format!("{:?}… ({} bytes)", &cell[..at], cell.len()),
    }
}

/// A name or value as reports show it: as it is, cut after 60 characters.
pub fn clipped(text: &str) -> String {
    match text.char_indices().nth(60) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
    }
}

/// Words read as true (1) in a boolean column, ignoring case.
pub const TRUE_WORDS: [&str; 4] = ["true", "yes", "y", "t"];

/// Words read as false (0) in a boolean column, ignoring case.
pub const FALSE_WORDS: [&str; 4] = ["false", "no", "n", "f"];

/// A yes/no word as a boolean.
pub fn parse_bool(cell: &str) -> Option<bool> {
    let c = cell.trim();
    if TRUE_WORDS.iter().any(|w| c.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE_WORDS.iter().any(|w| c.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

pub use crate::table::{Cell, MISSING_WORDS, Table, is_missing, parse_number};

/// How one column becomes features.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Encoding {
    /// One feature, the number; a missing cell becomes `fill` (the training median). `fill: null`
    /// (models from before downhill 0.2) makes a missing cell an error.
    Numeric { fill: Option<f64> },
    /// One 0/1 feature; a missing cell becomes `fill` (the most frequent training value).
    Boolean { fill: bool },
    /// One 0/1 feature per category, in this order; a missing cell becomes `fill`; any other
    /// value (unseen in training) all zeros.
    Categorical {
        categories: Vec<String>,
        fill: String,
    },
    /// No feature.
    Dropped { reason: String },
}

/// One column of the training file (not a target) and what it becomes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    pub encoding: Encoding,
    /// A 0/1 missing-indicator feature follows this column's features.
    pub indicator: bool,
    /// Missing cells among the training rows.
    pub missing: usize,
    /// Distinct non-missing values among the training rows.
    pub distinct: usize,
}

impl Column {
    pub fn is_dropped(&self) -> bool {
        matches!(self.encoding, Encoding::Dropped { .. })
    }

    /// Features this column produces (a dropped column none, whatever its `indicator`).
    pub fn width(&self) -> usize {
        let w = match &self.encoding {
            Encoding::Numeric { .. } | Encoding::Boolean { .. } => 1,
            Encoding::Categorical { categories, .. } => categories.len(),
            Encoding::Dropped { .. } => return 0,
        };
        w + usize::from(self.indicator)
    }

    /// The role's name: numeric, boolean, categorical, dropped.
    pub fn role(&self) -> &'static str {
        match self.encoding {
            Encoding::Numeric { .. } => "numeric",
            Encoding::Boolean { .. } => "boolean",
            Encoding::Categorical { .. } => "categorical",
            Encoding::Dropped { .. } => "dropped",
        }
    }
}

/// What the user said about the columns (`--features`, `--drop`, `--categorical`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub features: Option<Vec<String>>,
    pub drop: Vec<String>,
    pub categorical: Vec<String>,
    /// Every column is an image's pixel (`--image-shape`): none is dropped by rules 4–6 or 8's
    /// ID rule, as if `--features` named them all, so that the features keep the image's layout.
    pub pixels: bool,
}

/// The fitted map from a table's columns to features (stored in the model file as `columns`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// Every column of the training file but the targets, in file order.
    pub columns: Vec<Column>,
    /// The target columns' names.
    pub targets: Vec<String>,
    /// The target columns' 0-based positions in the training file (which has
    /// `columns.len() + targets.len()` columns).
    pub target_positions: Vec<usize>,
    /// Whether the training file had a header (columns are matched by name only then).
    pub has_header: bool,
    /// Columns unknown to the model are ignored rather than refused (only for models from format
    /// version 1, which did not record their target's name). Never stored.
    #[serde(skip)]
    pub lenient: bool,
}

/// Values of a column not seen in training, met while encoding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Unseen {
    pub column: String,
    /// Rows whose value was not a training category (encoded as all zeros).
    pub rows: usize,
    /// Up to five of those values.
    pub examples: Vec<String>,
}

impl Unseen {
    /// The note that reports these rows.
    pub fn note(&self) -> String {
        format!(
            "column {}: {} rows with a category unseen in training (encoded as all zeros), e.g. {}",
            self.column,
            self.rows,
            self.examples.join(", ")
        )
    }
}

/// A feature matrix and what was met on the way.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// Row-major, `rows × n_features`.
    pub x: Vec<f32>,
    pub n_features: usize,
    pub unseen: Vec<Unseen>,
    /// Missing cells filled in.
    pub imputed: usize,
}

impl Columns {
    /// The columns a file read with this map reads as text ([`crate::table::AsText`]): the
    /// categorical ones (their cells match categories as written) and the targets (labels), by
    /// name and, for a model without a header, by position (with and without the targets).
    pub fn as_text(&self) -> crate::table::AsText {
        let mut entries = Vec::new();
        let positions: Vec<usize> = (0..self.file_width())
            .filter(|j| !self.target_positions.contains(j))
            .collect();
        for (k, c) in self.columns.iter().enumerate() {
            if matches!(c.encoding, Encoding::Categorical { .. }) {
                entries.push(c.name.clone());
                if !self.has_header {
                    entries.push(k.to_string());
                    entries.extend(positions.get(k).map(usize::to_string));
                }
            }
        }
        entries.extend(self.targets.iter().cloned());
        if !self.has_header {
            entries.extend(self.target_positions.iter().map(usize::to_string));
        }
        crate::table::AsText {
            entries,
            last: false,
        }
    }

    /// Features produced per row.
    pub fn n_features(&self) -> usize {
        self.columns.iter().map(Column::width).sum()
    }

    /// Columns in the training file (features, dropped ones and targets).
    pub fn file_width(&self) -> usize {
        self.columns.len() + self.targets.len()
    }

    /// The features' names: the column's name (numeric, boolean), `name=category` (one-hot),
    /// `name (missing)` (indicator).
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.n_features());
        for c in &self.columns {
            match &c.encoding {
                Encoding::Numeric { .. } | Encoding::Boolean { .. } => out.push(c.name.clone()),
                Encoding::Categorical { categories, .. } => {
                    out.extend(categories.iter().map(|k| format!("{}={k}", c.name)))
                }
                Encoding::Dropped { .. } => continue,
            }
            if c.indicator {
                out.push(format!("{} (missing)", c.name));
            }
        }
        out
    }

    /// Per feature: whether it is a numeric column's value (standardised) rather than a 0/1
    /// feature (boolean, one-hot, indicator — left as 0/1).
    pub fn standardized_mask(&self) -> Vec<bool> {
        let mut out = Vec::with_capacity(self.n_features());
        for c in self.columns.iter().filter(|c| !c.is_dropped()) {
            let numeric = matches!(c.encoding, Encoding::Numeric { .. });
            let w = c.width() - usize::from(c.indicator);
            out.extend(std::iter::repeat_n(numeric, w));
            if c.indicator {
                out.push(false);
            }
        }
        out
    }

    /// A map for a model written before columns were recorded: every feature column numeric
    /// (missing cells are errors), with the given names, the targets at `target_positions`.
    pub fn legacy(
        feature_names: &[String],
        targets: Vec<String>,
        target_positions: Vec<usize>,
        has_header: bool,
    ) -> Columns {
        Columns {
            columns: feature_names
                .iter()
                .map(|n| Column {
                    name: n.clone(),
                    encoding: Encoding::Numeric { fill: None },
                    indicator: false,
                    missing: 0,
                    distinct: 0,
                })
                .collect(),
            targets,
            target_positions,
            has_header,
            lenient: false,
        }
    }
}

/// Whether a cell's number is held by float32 to its precision: finite, at most f32::MAX in
/// magnitude, and 0 or at least the smallest normal f32.
fn fits_f32(v: f64) -> bool {
    v.is_finite() && v.abs() <= f32::MAX as f64 && (v == 0.0 || v.abs() >= f32::MIN_POSITIVE as f64)
}

/// A numeric cell: finite and within f32's range, else an error naming file, line and column.
fn number(table: &Table, i: usize, j: usize, cell: &str) -> Result<f64> {
    match parse_number(cell) {
        Some(v) if fits_f32(v) => Ok(v),
        // Held as a subnormal f32 it would keep a few bits at most, and training reads it as 0.
        Some(v) if v.is_finite() && v.abs() < f32::MIN_POSITIVE as f64 => Err(table.error(
            table.at(i, j),
            format!(
                "{} is below float32's smallest normal number (±1.2e-38), where it keeps too \
                 few digits and training reads it as 0; rescale the column (or write 0)",
                quoted(cell)
            ),
        )),
        Some(v) if v.is_finite() => Err(table.error(
            table.at(i, j),
            format!(
                "{} is beyond f32's range (±3.4e38); rescale the column",
                quoted(cell)
            ),
        )),
        Some(_) => Err(table.error(
            table.at(i, j),
            format!("{} is not a finite number", quoted(cell)),
        )),
        None => Err(table.error(
            table.at(i, j),
            format!(
                "{} is not a number, and the column is numeric; fix the cell or write it as \
                 missing (NA){}",
                quoted(cell),
                if !table.has_header && i == 0 {
                    "; the file was read without a header: if this first line is one, remove it"
                } else {
                    ""
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A table from comma-separated lines, the first being the header.
    pub(super) fn table(lines: &[&str]) -> Table {
        let text = lines.join("\n");
        let as_text = crate::table::AsText::default();
        crate::csv::table_from_bytes(
            Path::new("t.csv"),
            text.as_bytes(),
            Some(true),
            None,
            &as_text,
        )
        .unwrap()
    }

    /// Fits on every row with the last column as the target.
    pub(super) fn fit(t: &Table, ov: &Overrides) -> Result<Columns> {
        let rows: Vec<usize> = (0..t.len()).collect();
        Columns::fit(t, &[t.width() - 1], &rows, ov)
    }

    #[test]
    fn missing_words_and_what_is_not_missing() {
        for m in [
            "", " ", "NA", "na", "N/A", "n/a", "NaN", "nan", "NULL", "null", "?",
        ] {
            assert!(is_missing(m), "{m:?}");
        }
        for v in ["none", "None", "0", "-", "NA2", "??"] {
            assert!(!is_missing(v), "{v:?}");
        }
    }

    #[test]
    fn boolean_words_ignore_case() {
        for t in ["yes", "YES", "True", "y", "T"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["no", "No", "FALSE", "n", "f"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["1", "0", "maybe", "yess", ""] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
    }
}
