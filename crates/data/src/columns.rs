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

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use downhill_core::error::{Error, Result};

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

/// Cells that count as missing (compared trimmed and ignoring ASCII case).
pub const MISSING_WORDS: [&str; 6] = ["", "na", "n/a", "nan", "null", "?"];
/// Words read as true (1) in a boolean column, ignoring case.
pub const TRUE_WORDS: [&str; 4] = ["true", "yes", "y", "t"];
/// Words read as false (0) in a boolean column, ignoring case.
pub const FALSE_WORDS: [&str; 4] = ["false", "no", "n", "f"];
/// Share of distinct values (among non-missing training values) from which a column is ID-like.
pub const ID_SHARE: f64 = 0.95;
/// A text column without an ID-like name is judged ID-like only with at least this many values.
pub const ID_MIN_ROWS: usize = 20;
/// Columns listed one per line in the data report (the rest are summed up in one line).
pub const REPORT_COLUMNS: usize = 30;
/// The most categories one column is one-hot encoded with.
pub const MAX_CATEGORIES: usize = 100;

/// Whether a cell is missing (one of [`MISSING_WORDS`]).
pub fn is_missing(cell: &str) -> bool {
    if cell.len() > 8 {
        return !cell.is_empty() && cell.trim().is_empty();
    }
    let c = cell.trim();
    MISSING_WORDS.iter().any(|w| c.eq_ignore_ascii_case(w))
}

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

/// A number as Rust (and Python's float()) read it; `None` for text.
pub fn parse_number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok()
}

/// Whether a column name says "identifier": `id`, `index`, `rownames`, `Unnamed: 0` or empty
/// (ignoring case), a name ending in `_id`, ` id`, `-id` or `.id` (ignoring case), or a camel-case
/// name ending in `Id` or `ID` after a lower-case letter (`PassengerId`, `customerID`).
pub fn looks_like_id(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    if ["", "id", "index", "rownames", "unnamed: 0"].contains(&lower.as_str()) {
        return true;
    }
    if ["_id", " id", "-id", ".id"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return true;
    }
    let chars: Vec<char> = name.trim().chars().collect();
    let n = chars.len();
    n >= 3
        && chars[n - 2] == 'I'
        && (chars[n - 1] == 'd' || chars[n - 1] == 'D')
        && chars[n - 3].is_lowercase()
}

pub use crate::table::{Cell, Table};

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

fn overridden_names(
    table: &Table,
    flag: &'static str,
    names: &[String],
    targets: &[usize],
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for n in names {
        let j = table.names.iter().position(|h| h == n).or_else(|| {
            n.parse::<usize>()
                .ok()
                .filter(|&j| !table.has_header && j < table.width())
        });
        let Some(j) = j else {
            return Err(Error::setting(
                flag,
                n,
                format!(
                    "no such column in {}; columns: {}",
                    table.path.display(),
                    table.names.join(", ")
                ),
            ));
        };
        if targets.contains(&j) {
            return Err(Error::setting(
                flag,
                n,
                "is the target column; name feature columns only",
            ));
        }
        out.push(j);
    }
    Ok(out)
}

impl Columns {
    /// Decides every non-target column's role and statistics from the training `rows` of `table`
    /// (the rules in the module documentation). Errors: an unknown column in the overrides, a
    /// column both in `--features` and `--drop`, a numeric cell that is not finite or beyond f32,
    /// and no feature column left.
    pub fn fit(
        table: &Table,
        targets: &[usize],
        rows: &[usize],
        ov: &Overrides,
    ) -> Result<Columns> {
        let named = Named::resolve(table, targets, ov)?;
        // The statistics do not depend on the rows' order: read them in file order, so that
        // each pass over a column walks memory forward (a shuffled split would miss the cache
        // on nearly every cell), and examples in messages are the earliest in the file.
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        let rows = &sorted[..];
        let features: Vec<usize> = (0..table.width())
            .filter(|j| !targets.contains(j))
            .collect();
        // The columns in one group per core, each scanned 64 / cores columns at a time, so
        // that at most 64 columns' numbers are held at once.
        let cores = crate::cores_for(rows.len()).min(features.len()).max(1);
        let per = (64 / cores).max(1);
        let groups = features.chunks(features.len().div_ceil(cores).max(1));
        let fitted = crate::in_parallel(groups, |group| -> Result<Vec<Column>> {
            let mut out = Vec::with_capacity(group.len());
            for block in group.chunks(per) {
                for (&j, s) in block.iter().zip(scan(table, block, rows)) {
                    out.push(fit_column(table, j, rows, s, &named)?);
                }
            }
            Ok(out)
        });
        let mut columns = Vec::with_capacity(features.len());
        for group in fitted {
            columns.extend(group?);
        }
        let plan = Columns {
            columns,
            targets: targets.iter().map(|&j| table.names[j].clone()).collect(),
            target_positions: targets.to_vec(),
            has_header: table.has_header,
            lenient: false,
        };
        if plan.n_features() == 0 {
            let why: Vec<String> = plan
                .columns
                .iter()
                .map(|c| match &c.encoding {
                    Encoding::Dropped { reason } => format!("{} ({reason})", c.name),
                    _ => c.name.clone(),
                })
                .collect();
            return Err(table.error(
                "columns",
                format!(
                    "no feature column left: {}. Name the columns to use with --features",
                    why.join("; ")
                ),
            ));
        }
        Ok(plan)
    }

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

    /// For each of [`Columns::columns`], the column of `table` holding it (`None`: a dropped
    /// column the file does not have), and the targets' columns when `need_targets`.
    ///
    /// By name when both files have a header: every feature column must be there, targets too
    /// when needed, and no column may be unknown to the model (the error names the missing and the
    /// unknown ones). By position otherwise: the file must have the training file's columns
    /// (`file_width`), or those without the targets when they are not needed.
    pub fn locate(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        if self.has_header && table.has_header {
            self.locate_by_name(table, need_targets)
        } else {
            self.locate_by_position(table, need_targets)
        }
    }

    /// [`Columns::locate`] by the header's names: every used column and (if `need_targets`)
    /// the target must be there, and (unless lenient) no column the model does not know.
    fn locate_by_name(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        let find = |n: &str| table.names.iter().position(|h| h == n);
        let mut missing = Vec::new();
        let mut map = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let j = find(&c.name);
            if j.is_none() && !c.is_dropped() {
                missing.push(c.name.clone());
            }
            map.push(j);
        }
        let mut targets = Vec::new();
        for t in &self.targets {
            match find(t) {
                Some(j) => targets.push(j),
                None if need_targets => missing.push(format!("{t} (the target)")),
                None => {}
            }
        }
        let unknown: Vec<&str> = table
            .names
            .iter()
            .filter(|h| {
                !self.lenient
                    && !self.columns.iter().any(|c| &c.name == *h)
                    && !self.targets.contains(h)
            })
            .map(String::as_str)
            .collect();
        if missing.is_empty() && unknown.is_empty() {
            return Ok((map, targets));
        }
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing: {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            parts.push(format!("not in the training data: {}", unknown.join(", ")));
        }
        let used: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| !c.is_dropped())
            .map(|c| c.name.as_str())
            .collect();
        Err(table.error(
            "header",
            format!(
                "the file's columns do not match the model's: {}. The model reads {} feature columns by name: {}{}",
                parts.join("; "),
                used.len(),
                used.join(", "),
                if need_targets {
                    format!(", and the target {}", self.targets.join(", "))
                } else {
                    String::new()
                }
            ),
        ))
    }

    /// [`Columns::locate`] by position, for a file (or a model) without a header: the training
    /// file's width, or (if not `need_targets`) its width without the targets.
    fn locate_by_position(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        let full = self.file_width();
        let without = self.columns.len();
        if table.width() == full {
            let features: Vec<usize> = (0..full)
                .filter(|j| !self.target_positions.contains(j))
                .collect();
            Ok((
                features.into_iter().map(Some).collect(),
                self.target_positions.clone(),
            ))
        } else if table.width() == without && !need_targets {
            Ok(((0..without).map(Some).collect(), Vec::new()))
        } else {
            let hint = if need_targets {
                format!(
                    "{full} columns (the features and the target, in the training file's order)"
                )
            } else {
                format!(
                    "{without} feature columns (or {full} with the target), in the training file's order"
                )
            };
            Err(table.error(
                "line 1",
                format!(
                    "{} columns, but without a header to match by name the model needs {hint}",
                    table.width()
                ),
            ))
        }
    }

    /// The feature matrix of `rows` of `table`, whose columns `map` gives (from [`Columns::locate`]).
    /// Long tables are encoded in parallel, in one block of rows per core; the result (and the
    /// first error, in row order) is the same as one thread's.
    pub fn encode(&self, table: &Table, map: &[Option<usize>], rows: &[usize]) -> Result<Encoded> {
        let w = self.n_features();
        let mut x = reserve_features(table, rows.len(), w)?;
        x.resize(rows.len() * w, 0.0);
        let index: Vec<Option<CategoryIndex>> = self
            .columns
            .iter()
            .map(|c| match &c.encoding {
                Encoding::Categorical { categories, .. } => Some(CategoryIndex::new(categories)),
                _ => None,
            })
            .collect();
        let block = rows.len().div_ceil(crate::cores_for(rows.len())).max(1);
        let parts = crate::in_parallel(
            x.chunks_mut((block * w).max(1)).zip(rows.chunks(block)),
            |(out, rows)| self.encode_rows(table, map, rows, &index, out),
        );
        let (mut unseen, mut imputed) = (Vec::new(), 0);
        for part in parts {
            let (u, i) = part?;
            imputed += i;
            for u in u {
                merge_unseen(&mut unseen, u);
            }
        }
        Ok(Encoded {
            x,
            n_features: w,
            unseen,
            imputed,
        })
    }

    /// [`Columns::encode`] of a block of rows into `out` (`rows.len()` × the features, zeros):
    /// the categories not seen in training, and the missing cells filled in.
    fn encode_rows(
        &self,
        table: &Table,
        map: &[Option<usize>],
        rows: &[usize],
        index: &[Option<CategoryIndex>],
        out: &mut [f32],
    ) -> Result<(Vec<Unseen>, usize)> {
        // The rows in the table's order, each written to its place: the columns are read
        // forward (in the rows' own order, a shuffled split, nearly every cell would miss the
        // cache). An error is looked for again in the rows' order, so that it is the first.
        let mut order: Vec<(usize, usize)> =
            rows.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        order.sort_unstable();
        match self.encode_in(table, map, &order, index, out, 256) {
            Ok(done) => Ok(done),
            Err(e) => {
                let order: Vec<(usize, usize)> =
                    rows.iter().enumerate().map(|(p, &i)| (i, p)).collect();
                self.encode_in(table, map, &order, index, out, 1)?;
                Err(e)
            }
        }
    }

    /// [`Columns::encode_rows`] of the rows `order` lists (table row, place in `out`), `tile`
    /// rows at a time: one column after another over the tile's rows, so that each column is
    /// read forward and the tile's rows of `out` stay in the cache. With a tile of 1, row by
    /// row (the first error met is the first in `order`).
    fn encode_in(
        &self,
        table: &Table,
        map: &[Option<usize>],
        order: &[(usize, usize)],
        index: &[Option<CategoryIndex>],
        out: &mut [f32],
        tile: usize,
    ) -> Result<(Vec<Unseen>, usize)> {
        let mut unseen: Vec<Unseen> = Vec::new();
        let mut imputed = 0;
        let w = self.n_features();
        // Where each column's features start in a row.
        let mut offsets = Vec::with_capacity(self.columns.len());
        let mut at = 0;
        for c in &self.columns {
            offsets.push(at);
            at += c.width();
        }
        for rows in order.chunks(tile.max(1)) {
            for (k, c) in self.columns.iter().enumerate() {
                if c.is_dropped() {
                    continue;
                }
                let j = map[k].expect("located");
                // The common case in one tight loop: a numeric column's numbers, missing cells
                // filled with the median (and marked).
                if let (Some(values), Encoding::Numeric { fill: Some(fill) }) =
                    (table.numbers(j), &c.encoding)
                {
                    let at = offsets[k];
                    for &(i, p) in rows {
                        let v = values[i];
                        let miss = v.is_nan();
                        imputed += usize::from(miss);
                        out[p * w + at] = if miss { *fill } else { v } as f32;
                        if c.indicator {
                            out[p * w + at + 1] = if miss { 1.0 } else { 0.0 };
                        }
                    }
                    continue;
                }
                for &(i, p) in rows {
                    let x = &mut out[p * w..(p + 1) * w];
                    let mut at = offsets[k];
                    let cell = table.cell(i, j);
                    let miss = cell.is_missing();
                    imputed += usize::from(miss);
                    match &c.encoding {
                        Encoding::Numeric { fill } => {
                            x[at] = numeric_cell(table, (i, j), cell, *fill)? as f32;
                            at += 1;
                        }
                        Encoding::Boolean { fill } => {
                            let v = if miss {
                                *fill
                            } else {
                                boolean_cell(table, (i, j), &cell.text(), &c.name)?
                            };
                            x[at] = if v { 1.0 } else { 0.0 };
                            at += 1;
                        }
                        Encoding::Categorical { categories, fill } => {
                            let index = index[k].as_ref().expect("categorical");
                            let found = if miss {
                                index.by_text.get(fill.as_str()).copied()
                            } else {
                                index.find(cell)
                            };
                            match found {
                                Some(h) => x[at + h] = 1.0,
                                None if miss => note_unseen(&mut unseen, &c.name, fill),
                                None => note_unseen(&mut unseen, &c.name, &cell.text()),
                            }
                            at += categories.len();
                        }
                        Encoding::Dropped { .. } => unreachable!("skipped above"),
                    }
                    if c.indicator {
                        x[at] = if miss { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        Ok((unseen, imputed))
    }

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

/// The columns `--features` (if given), `--drop` and `--categorical` name, as positions.
struct Named {
    keep: Option<Vec<usize>>,
    /// [`Overrides::pixels`].
    pixels: bool,
    drop: Vec<usize>,
    categorical: Vec<usize>,
}

impl Named {
    /// The overrides' names found in `table` (never a target); a column both kept and dropped,
    /// or both dropped and one-hot encoded, is an error.
    fn resolve(table: &Table, targets: &[usize], ov: &Overrides) -> Result<Named> {
        let keep = ov
            .features
            .as_ref()
            .map(|f| overridden_names(table, "features", f, targets))
            .transpose()?;
        let drop = overridden_names(table, "drop", &ov.drop, targets)?;
        let categorical = overridden_names(table, "categorical", &ov.categorical, targets)?;
        if let Some(k) = &keep
            && let Some(j) = k.iter().find(|j| drop.contains(j))
        {
            return Err(Error::setting(
                "drop",
                &table.names[*j],
                "is also named by --features; name it in one of them",
            ));
        }
        if let Some(j) = categorical.iter().find(|j| drop.contains(j)) {
            return Err(Error::setting(
                "categorical",
                &table.names[*j],
                "is also named by --drop",
            ));
        }
        Ok(Named {
            keep,
            pixels: ov.pixels,
            drop,
            categorical,
        })
    }

    /// Why column `j` is left out whatever it holds: named by `--drop`, not named by
    /// `--features`, or no value in the training rows (`present` = 0).
    fn excluded(&self, j: usize, present: usize) -> Option<String> {
        if self.drop.contains(&j) {
            Some("--drop".into())
        } else if self.keep.as_ref().is_some_and(|k| !k.contains(&j)) {
            Some("not named by --features".into())
        } else {
            (present == 0).then(|| "no value in the training rows".into())
        }
    }
}

/// What the training rows hold in one column: its scan, the count of each distinct text cell
/// (for text, or numbers one-hot encoded by `--categorical`), how many distinct values and how
/// many present.
struct Seen<'a> {
    scan: Scan<'a>,
    counts: HashMap<Cow<'a, str>, usize>,
    distinct: usize,
    present: usize,
}

/// Adds the count of each non-missing cell of column `j` in `rows` to `counts`.
fn count_cells<'a>(
    table: &'a Table,
    j: usize,
    rows: &[usize],
    counts: &mut HashMap<Cow<'a, str>, usize>,
) {
    match &table.columns[j] {
        // Each distinct cell counted by its code, then named.
        crate::table::ColumnCells::Text { codes, dict } => {
            let mut n = vec![0usize; dict.len()];
            for &i in rows {
                n[codes[i] as usize] += 1;
            }
            for (d, n) in dict.iter().zip(n) {
                if n > 0 && !is_missing(d) {
                    *counts.entry(Cow::Borrowed(d.as_str())).or_default() += n;
                }
            }
        }
        // Numbers (under --categorical) by value, named by their shortest text.
        crate::table::ColumnCells::Numbers { values, .. } => {
            let mut n: HashMap<u64, usize> = HashMap::new();
            for &i in rows {
                let v = values[i];
                if !v.is_nan() {
                    *n.entry(if v == 0.0 { 0 } else { v.to_bits() }).or_default() += 1;
                }
            }
            for (bits, n) in n {
                *counts
                    .entry(Cow::Owned(format!("{}", f64::from_bits(bits))))
                    .or_default() += n;
            }
        }
    }
}

/// Column `j` fitted on the training `rows`: its encoding (or why it is dropped), and whether
/// it gets a missing-value indicator.
fn fit_column<'a>(
    table: &'a Table,
    j: usize,
    rows: &[usize],
    scan: Scan<'a>,
    named: &Named,
) -> Result<Column> {
    let mut counts = HashMap::new();
    let distinct = if scan.numeric {
        distinct_numbers(&scan.values)
    } else {
        count_cells(table, j, rows, &mut counts);
        counts.len()
    };
    let present = rows.len() - scan.missing;
    let missing = scan.missing;
    let mut seen = Seen {
        scan,
        counts,
        distinct,
        present,
    };
    // An image's pixels are numbers, one feature each: no text, no indicator (the network's
    // input is the image's C·H·W values).
    if named.pixels && !seen.scan.numeric {
        let bad = rows.iter().copied().find(|&i| {
            let c = table.cell(i, j);
            !c.is_missing() && !matches!(c, Cell::Number(_)) && c.text().parse::<f64>().is_err()
        });
        if let Some(i) = bad {
            return Err(table.error(
                table.at(i, j),
                format!(
                    "{} is not a number: with --image-shape every column but the target is a pixel",
                    quoted(&table.cell(i, j).text())
                ),
            ));
        }
    }
    // Named by --features: kept whatever the heuristics below would say.
    let kept = named.pixels || named.keep.as_ref().is_some_and(|k| k.contains(&j));
    let encoding = if let Some(reason) = named.excluded(j, present) {
        Encoding::Dropped { reason }
    } else if named.categorical.contains(&j) {
        if seen.scan.numeric {
            count_cells(table, j, rows, &mut seen.counts);
        }
        categorical_encoding(&seen.counts)
    } else if let Some(reason) = (!kept).then(|| useless(table, j, &seen)).flatten() {
        Encoding::Dropped { reason }
    } else {
        encoding_of(table, j, rows, &mut seen, kept)?
    };
    let is_dropped = matches!(encoding, Encoding::Dropped { .. });
    Ok(Column {
        name: table.names[j].clone(),
        encoding,
        indicator: missing > 0 && !is_dropped && !named.pixels,
        missing,
        distinct,
    })
}

/// Why column `j` tells nothing, if it does not: one value on every training row, row names
/// (an unnamed first column with a different whole value on every row), or an identifier (named
/// like one, nearly every value different).
fn useless(table: &Table, j: usize, seen: &Seen) -> Option<String> {
    let (s, distinct, present) = (&seen.scan, seen.distinct, seen.present);
    let whole = !s.numeric || s.values.iter().all(|v| v.fract() == 0.0);
    if distinct == 1 && s.missing == 0 {
        let v = s.first.expect("one value").text();
        return Some(format!("constant: {} on every training row", quoted(&v)));
    }
    let unnamed = table.names[0].is_empty() || table.names[0].eq_ignore_ascii_case("unnamed: 0");
    if j == 0 && table.has_header && unnamed && distinct == present && whole {
        return Some("row names: unnamed first column, a different value on every row".into());
    }
    if table.has_header
        && looks_like_id(&table.names[j])
        && distinct as f64 >= ID_SHARE * present as f64
        && whole
    {
        return Some(format!(
            "ID-like: named like an identifier, {distinct} distinct values in {present} rows"
        ));
    }
    None
}

/// Column `j`'s encoding by what it holds: numbers (missing cells filled with the median),
/// booleans (filled with the more frequent), or categories — unless its text is numbers
/// written in a way this reader refuses (an error), or, unless `kept`, an identifier (nearly
/// every value different).
fn encoding_of(
    table: &Table,
    j: usize,
    rows: &[usize],
    seen: &mut Seen,
    kept: bool,
) -> Result<Encoding> {
    let (distinct, present) = (seen.distinct, seen.present);
    if seen.scan.numeric {
        let values = &mut seen.scan.values;
        if values.iter().any(|&v| !fits_f32(v)) {
            // The error names the first cell out of f32's range.
            for &i in rows {
                let c = table.cell(i, j);
                if !c.is_missing() {
                    number(table, i, j, &c.text())?;
                }
            }
        }
        return Ok(Encoding::Numeric {
            fill: Some(median(values)),
        });
    }
    let counts = &seen.counts;
    if counts.keys().all(|c| parse_bool(c).is_some()) {
        let yes: usize = counts
            .iter()
            .filter(|(c, _)| parse_bool(c) == Some(true))
            .map(|(_, n)| n)
            .sum();
        let no: usize = counts.values().sum::<usize>() - yes;
        return Ok(Encoding::Boolean { fill: yes > no });
    }
    if let Some(e) = misread_numbers(table, j, rows, counts) {
        return Err(e);
    }
    if !kept && present >= ID_MIN_ROWS && distinct as f64 >= ID_SHARE * present as f64 {
        return Ok(Encoding::Dropped {
            reason: format!("ID-like: text with {distinct} distinct values in {present} rows"),
        });
    }
    Ok(categorical_encoding(counts))
}

/// A categorical column's categories by their text, and (for a numeric column's cells, which
/// are numbers without their text) by the number a category reads as.
struct CategoryIndex<'c> {
    by_text: HashMap<&'c str, usize>,
    by_value: HashMap<u64, usize>,
}

/// A number's key in [`CategoryIndex::by_value`] (0 and −0 are one).
fn value_key(v: f64) -> u64 {
    if v == 0.0 { 0 } else { v.to_bits() }
}

impl<'c> CategoryIndex<'c> {
    fn new(categories: &'c [String]) -> CategoryIndex<'c> {
        let by_text = categories
            .iter()
            .enumerate()
            .map(|(k, v)| (v.as_str(), k))
            .collect();
        let mut by_value = HashMap::new();
        for (k, c) in categories.iter().enumerate() {
            if let Some(v) = parse_number(c) {
                by_value.entry(value_key(v)).or_insert(k);
            }
        }
        CategoryIndex { by_text, by_value }
    }

    /// The category of a present cell.
    fn find(&self, cell: Cell) -> Option<usize> {
        match cell {
            Cell::Number(v) => self.by_value.get(&value_key(v)).copied(),
            Cell::Missing(t) | Cell::Text(t) => self.by_text.get(t).copied(),
        }
    }
}

/// An empty feature matrix with room for `rows` × `w` values, checked against the memory
/// available first (a reservation alone succeeds under overcommit, and the process is then
/// killed while filling it): one-hot columns multiply a file's size.
fn reserve_features(table: &Table, rows: usize, w: usize) -> Result<Vec<f32>> {
    let mut x: Vec<f32> = Vec::new();
    let total = rows.saturating_mul(w);
    downhill_core::memory::check(
        format!("{}: {rows} rows × {w} features (f32)", table.path.display()),
        downhill_core::memory::product(&[rows, w, 4]),
    )?;
    x.try_reserve_exact(total).map_err(|_| {
        table.error(
            "columns",
            format!(
                "{rows} rows × {w} features would need {:.1} GB of memory",
                total as f64 * 4e-9
            ),
        )
    })?;
    Ok(x)
}

/// A numeric column's cell at (`i`, `j`): its number, or the training median `fill` if it is
/// missing (an error for a model trained without missing values).
fn numeric_cell(
    table: &Table,
    (i, j): (usize, usize),
    cell: Cell,
    fill: Option<f64>,
) -> Result<f64> {
    let cell = match cell {
        Cell::Number(v) if fits_f32(v) => return Ok(v),
        Cell::Number(_) => return number(table, i, j, &cell.text()),
        Cell::Text(t) if !is_missing(t) => return number(table, i, j, t),
        Cell::Missing(t) | Cell::Text(t) => t,
    };
    fill.ok_or_else(|| {
        table.error(
            table.at(i, j),
            format!(
                "missing value {}; this model was trained without missing values",
                quoted(cell)
            ),
        )
    })
}

/// A boolean column's (present) cell at (`i`, `j`), of the model's column `name`.
fn boolean_cell(table: &Table, (i, j): (usize, usize), cell: &str, name: &str) -> Result<bool> {
    parse_bool(cell).ok_or_else(|| {
        table.error(
            table.at(i, j),
            format!(
                "{} is not a yes/no value (the model's column {name} is boolean: {} / {})",
                quoted(cell),
                TRUE_WORDS.join("/"),
                FALSE_WORDS.join("/")
            ),
        )
    })
}

/// Counts a category of `column` not seen in training (encoded as all zeros), keeping up to
/// five different examples.
fn note_unseen(unseen: &mut Vec<Unseen>, column: &str, value: &str) {
    let at = match unseen.iter().position(|u| u.column == column) {
        Some(at) => at,
        None => {
            unseen.push(Unseen {
                column: column.to_string(),
                rows: 0,
                examples: Vec::new(),
            });
            unseen.len() - 1
        }
    };
    let u = &mut unseen[at];
    u.rows += 1;
    if u.examples.len() < 5 && !u.examples.iter().any(|e| e == value) {
        u.examples.push(value.to_string());
    }
}

/// Adds a later block's unseen categories `u` to `unseen` (as if noted row by row after it).
fn merge_unseen(unseen: &mut Vec<Unseen>, u: Unseen) {
    match unseen.iter_mut().find(|v| v.column == u.column) {
        Some(v) => {
            v.rows += u.rows;
            for e in u.examples {
                if v.examples.len() < 5 && !v.examples.contains(&e) {
                    v.examples.push(e);
                }
            }
        }
        None => unseen.push(u),
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

/// What one pass over a column's training cells found.
struct Scan<'a> {
    missing: usize,
    /// The values as numbers, while every one is a number (else empty).
    values: Vec<f64>,
    numeric: bool,
    first: Option<Cell<'a>>,
}

/// Scans the columns `cols` over `rows`: a numeric column's numbers are read as they are, a
/// text column's distinct cells are each judged once.
fn scan<'a>(table: &'a Table, cols: &[usize], rows: &[usize]) -> Vec<Scan<'a>> {
    cols.iter()
        .map(|&j| {
            let mut s = Scan {
                missing: 0,
                values: Vec::new(),
                numeric: true,
                first: None,
            };
            match &table.columns[j] {
                crate::table::ColumnCells::Numbers { values, .. } => {
                    s.values.reserve(rows.len());
                    for &i in rows {
                        let v = values[i];
                        if v.is_nan() {
                            s.missing += 1;
                        } else {
                            s.values.push(v);
                        }
                    }
                    s.first = rows
                        .iter()
                        .map(|&i| table.cell(i, j))
                        .find(|c| !c.is_missing());
                }
                crate::table::ColumnCells::Text { codes, dict } => {
                    // Per distinct cell: missing, or its number.
                    let judged: Vec<(bool, Option<f64>)> = dict
                        .iter()
                        .map(|d| (is_missing(d), parse_number(d)))
                        .collect();
                    for &i in rows {
                        let k = codes[i] as usize;
                        let (miss, number) = judged[k];
                        if miss {
                            s.missing += 1;
                            continue;
                        }
                        s.first.get_or_insert(Cell::Text(&dict[k]));
                        if s.numeric {
                            match number {
                                Some(v) => s.values.push(v),
                                None => {
                                    s.numeric = false;
                                    s.values = Vec::new();
                                }
                            }
                        }
                    }
                }
            }
            s
        })
        .collect()
}

fn categorical_encoding(counts: &HashMap<Cow<str>, usize>) -> Encoding {
    let mut by_count: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let fill = by_count[0].0.to_string();
    let mut categories: Vec<String> = by_count
        .iter()
        .take(MAX_CATEGORIES)
        .map(|(k, _)| k.to_string())
        .collect();
    categories.sort();
    Encoding::Categorical { categories, fill }
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

/// A number written with a thousands separator (`12,345`, `1,234,567.5`), a decimal comma
/// (`0,5`), a percent sign (`45%`, `3.5 %`) or a currency sign (`$12`, `€3,50`, `£4`): what the
/// digits say, and the decoration.
pub fn decorated_number(cell: &str) -> Option<&'static str> {
    let mut c = cell.trim();
    let mut what = None;
    for sign in ['$', '€', '£', '¥'] {
        if let Some(rest) = c
            .strip_prefix(sign)
            .or_else(|| c.strip_prefix(&format!("-{sign}")[..]))
        {
            c = rest.trim_start();
            what = Some("a currency sign");
        }
    }
    if let Some(rest) = c.strip_suffix('%') {
        c = rest.trim_end();
        what = Some("a percent sign");
    }
    let digits = c.strip_prefix(['-', '+']).unwrap_or(c);
    if digits.contains(',') {
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let groups: Vec<&str> = int.split(',').collect();
        let grouped = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && frac.bytes().all(|b| b.is_ascii_digit());
        let decimal_comma = groups.len() == 2
            && !digits.contains('.')
            && groups
                .iter()
                .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
        // `1,250` reads both ways: 1250 with a separator, 1.25 with a decimal comma.
        if grouped && decimal_comma {
            return Some("a thousands separator or a decimal comma");
        }
        if grouped {
            return Some("a thousands separator");
        }
        return decimal_comma.then_some("a decimal comma");
    }
    match what {
        Some(w) if parse_number(c).is_some_and(f64::is_finite) => Some(w),
        _ => None,
    }
}

/// Share of a text column's values that must be numbers for the rest to be called stray text.
pub const NUMERIC_SHARE: f64 = 0.9;

/// A text column that is really numbers, so that encoding it as categories (or dropping it as
/// ID-like) would silently lose them: every value a number, some written with a thousands
/// separator, decimal comma, percent or currency sign; or at least [`NUMERIC_SHARE`] of the values
/// plain numbers and a few stray words ("three", "5 kg"). The error names the first such cell.
fn misread_numbers(
    table: &Table,
    j: usize,
    rows: &[usize],
    counts: &HashMap<Cow<str>, usize>,
) -> Option<Error> {
    let present: usize = counts.values().sum();
    let (mut plain, mut decorated) = (0, 0);
    for (c, n) in counts {
        if parse_number(c).is_some() {
            plain += n;
        } else if decorated_number(c).is_some() {
            decorated += n;
        }
    }
    let name = &table.names[j];
    // The first present cell that is not a plain number: the one the error shows.
    let first_text = || {
        rows.iter().copied().find(|&i| {
            let c = table.cell(i, j);
            !c.is_missing() && c.number().is_none()
        })
    };
    if decorated > 0 && plain + decorated == present {
        let i = first_text()?;
        let c = table.cell(i, j).text();
        let c = c.as_ref();
        return Some(table.error(
            table.at(i, j),
            format!(
                "{} is a number written with {}, and the column {name} holds only such numbers; \
                 downhill reads plain numbers (1234.5). Rewrite the column without the separator or sign, \
                 or pass --categorical {name} to use its values as categories, or --drop {name}",
                quoted(c),
                decorated_number(c).unwrap_or("a separator")
            ),
        ));
    }
    if plain > 0 && plain < present && plain as f64 >= NUMERIC_SHARE * present as f64 {
        let i = first_text()?;
        let c = table.cell(i, j).text();
        let c = c.as_ref();
        return Some(table.error(
            table.at(i, j),
            format!(
                "{} is not a number, but {plain} of the {present} values of the column {name} are; \
                 fix the cell or write it as missing (NA), or pass --categorical {name} to use the \
                 values as categories, or --drop {name}",
                quoted(c)
            ),
        ));
    }
    None
}

/// How many different numbers `v` holds (0 and −0 are one; every NaN is its own), counted in a
/// hash set (a sort costs a long column's time several times over). A long column is first
/// split by a hash of each number into parts whose sets fit in the cache (equal numbers fall in
/// one part), and the parts' counts are added: one set as large as the column would miss the
/// cache on nearly every number.
fn distinct_numbers(v: &[f64]) -> usize {
    const PARTS: usize = 256;
    let key = |x: f64| if x == 0.0 { 0 } else { x.to_bits() };
    let nans = v.iter().filter(|x| x.is_nan()).count();
    if v.len() < 1 << 16 {
        let mut seen = hashbrown::HashSet::with_capacity(v.len());
        for &x in v.iter().filter(|x| !x.is_nan()) {
            seen.insert(key(x));
        }
        return seen.len() + nans;
    }
    // The part of a key: the top byte of a multiplicative hash (Fibonacci hashing).
    let part = |k: u64| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
    let mut starts = [0usize; PARTS + 1];
    for &x in v.iter().filter(|x| !x.is_nan()) {
        starts[part(key(x)) + 1] += 1;
    }
    for p in 0..PARTS {
        starts[p + 1] += starts[p];
    }
    let mut keys = vec![0u64; starts[PARTS]];
    let mut next = starts;
    for &x in v.iter().filter(|x| !x.is_nan()) {
        let k = key(x);
        let p = part(k);
        keys[next[p]] = k;
        next[p] += 1;
    }
    let largest = (0..PARTS)
        .map(|p| starts[p + 1] - starts[p])
        .max()
        .unwrap_or(0);
    let mut seen = hashbrown::HashSet::with_capacity(largest);
    let mut distinct = 0;
    for p in 0..PARTS {
        seen.clear();
        seen.extend(keys[starts[p]..starts[p + 1]].iter().copied());
        distinct += seen.len();
    }
    distinct + nans
}

/// The median (mean of the two middle values for an even count), as numpy's: the middle of
/// `v` in the order of [`f64::total_cmp`], found by selection (no sort; `v` is reordered).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (below, &mut mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        let lower = below
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .expect("n is even and not 0");
        (lower + mid) / 2.0
    }
}

/// Standardisation of regression targets: the network learns (y − mean)/std, fitted on the
/// training rows (population standard deviation, as scikit-learn's StandardScaler; a constant
/// column keeps std 1: one whose spread is below f32's rounding of its mean, 4·ε·|mean|, or below
/// the smallest normal f32, ~1.2·10⁻³⁸ — a relative test like scikit-learn's, so that a target
/// measured in units of 10⁻³⁰ is standardised too). Predictions are mapped back: ŷ = output·std + mean.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetScaling {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl TargetScaling {
    /// Fitted on a regression set's targets (`None` for classes or an empty set).
    pub fn fit(data: &downhill_core::data::Dataset) -> Option<TargetScaling> {
        let downhill_core::data::Targets::Values { data: y, cols } = data.targets() else {
            return None;
        };
        let n = y.len() / (*cols).max(1);
        if n == 0 {
            return None;
        }
        let mut mean = vec![0.0f64; *cols];
        for row in y.chunks_exact(*cols) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; *cols];
        for row in y.chunks_exact(*cols) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        // Constant (std 1) only when the spread is below f32's rounding of the mean, or below the
        // smallest normal f32: a target in units of 1e-30 is still standardised.
        let std = var
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / n as f64).sqrt();
                if sd.is_finite()
                    && sd >= f32::MIN_POSITIVE as f64
                    && sd > 4.0 * f32::EPSILON as f64 * m.abs()
                {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Some(TargetScaling { mean, std })
    }

    /// Standardises `data`'s targets.
    pub fn apply(&self, data: &mut downhill_core::data::Dataset) {
        let inv: Vec<f64> = self.std.iter().map(|s| 1.0 / s).collect();
        data.scale_targets(&self.mean, &inv);
    }

    /// Maps standardised values (`n × cols`, row-major) back to the original units.
    pub fn unscale(&self, values: &mut [f32]) {
        let k = self.mean.len().max(1);
        for row in values.chunks_exact_mut(k) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v as f64 * s + m) as f32;
            }
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `1,250` is 1250 or 1.25: both readings are named (the fourth hostile pass of issue 19
    /// found a decimal comma called a thousands separator).
    #[test]
    fn median_and_distinct_count_agree_with_a_sort() {
        use rand::{Rng as _, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 1..60 {
            // Few distinct values, so that duplicates, 0 and -0 meet.
            let v: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..4) {
                    0 => 0.0,
                    1 => -0.0,
                    _ => f64::from(rng.random_range(-5i32..5)) * 0.5,
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let want_median = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            let want_distinct = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count();
            assert_eq!(distinct_numbers(&v), want_distinct, "{v:?}");
            let mut w = v.clone();
            assert_eq!(median(&mut w).to_bits(), want_median.to_bits(), "{v:?}");
        }
        assert_eq!(distinct_numbers(&[f64::NAN, f64::NAN, 1.0]), 3);
        // Long columns (counted in parts): many repeats, all different, ±0 and NaN.
        for (n, values) in [(70_000, 1_000u64), (300_000, 290_000), (100_000, 1 << 40)] {
            let mut v: Vec<f64> = (0..n)
                .map(|_| rng.random_range(0..values) as f64 * 0.25 - 7.0)
                .collect();
            v[5] = 0.0;
            v[6] = -0.0;
            v[7] = f64::NAN;
            let mut sorted: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            sorted.sort_by(f64::total_cmp);
            let want = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() + 1;
            assert_eq!(distinct_numbers(&v), want, "{n} values");
        }
    }

    #[test]
    fn a_comma_is_named_by_what_it_can_mean() {
        let both = Some("a thousands separator or a decimal comma");
        assert_eq!(decorated_number("3,141"), both);
        assert_eq!(decorated_number("-1,250"), both);
        assert_eq!(
            decorated_number("12,345,678"),
            Some("a thousands separator")
        );
        assert_eq!(decorated_number("1,234.5"), Some("a thousands separator"));
        assert_eq!(decorated_number("0,5"), Some("a decimal comma"));
        assert_eq!(decorated_number("3,14"), Some("a decimal comma"));
        assert_eq!(decorated_number("1,2,3"), None);
    }

    /// A table from comma-separated lines, the first being the header.
    fn table(lines: &[&str]) -> Table {
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
    fn fit(t: &Table, ov: &Overrides) -> Result<Columns> {
        let rows: Vec<usize> = (0..t.len()).collect();
        Columns::fit(t, &[t.width() - 1], &rows, ov)
    }

    /// What the columns fitted without overrides make of column `name` of the table `lines`.
    fn auto_kind(lines: &[&str], name: &str) -> String {
        kind(&fit(&table(lines), &Overrides::default()).unwrap(), name)
    }

    fn kind(c: &Columns, name: &str) -> String {
        let col = c.columns.iter().find(|c| c.name == name).unwrap();
        col.role().to_string()
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

    #[test]
    fn id_names() {
        for n in [
            "id",
            "ID",
            "Id",
            "index",
            "",
            "Unnamed: 0",
            "rownames",
            "customer_id",
            "row id",
            "PassengerId",
            "customerID",
            "user.id",
        ] {
            assert!(looks_like_id(n), "{n:?}");
        }
        for n in ["valid", "grid", "UUID", "width", "idea", "bid_price", "i"] {
            assert!(!looks_like_id(n), "{n:?}");
        }
    }

    #[test]
    fn rule_constant_columns_are_dropped_unless_missing_or_named() {
        assert_eq!(
            auto_kind(&["a,k,y", "1,x,0", "2,x,1", "3,x,0"], "k"),
            "dropped"
        );
        // One value plus missing cells: the indicator carries information, so it is kept.
        let t = table(&["a,k,y", "1,x,0", "2,,1", "3,x,0"]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(kind(&c, "k"), "categorical");
        assert!(c.columns[1].indicator);
        let t = table(&["a,k,y", "1,x,0", "2,x,1", "3,x,0"]);
        let ov = Overrides {
            features: Some(vec!["k".into()]),
            ..Default::default()
        };
        assert_eq!(kind(&fit(&t, &ov).unwrap(), "k"), "categorical");
    }

    #[test]
    fn rule_empty_columns_are_dropped() {
        let t = table(&["a,e,y", "1,NA,0", "2,,1", "3,?,0"]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(kind(&c, "e"), "dropped");
        assert_eq!(c.n_features(), 1);
    }

    #[test]
    fn rule_row_names_and_id_like_columns_are_dropped() {
        // Unnamed first column with a value per row.
        assert_eq!(
            auto_kind(&[",a,y", "r1,1,0", "r2,2,1", "r3,3,0"], ""),
            "dropped"
        );
        // Named like an ID, numeric, distinct on every row (even a short table).
        assert_eq!(
            auto_kind(
                &["PassengerId,a,y", "7,1,0", "3,2,1", "9,3,0"],
                "PassengerId"
            ),
            "dropped"
        );
        // Named like an ID but repeating (< 95% distinct): kept.
        assert_eq!(
            auto_kind(&["user_id,a,y", "7,1,0", "7,2,1", "9,3,0"], "user_id"),
            "numeric"
        );
        // Text distinct on ≥ 95% of ≥ 20 rows: dropped; on 19 rows: categorical.
        let mut lines = vec!["name,a,y".to_string()];
        for i in 0..20 {
            lines.push(format!("person{i},{i},{}", i % 2));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "dropped");
        assert_eq!(auto_kind(&refs[..20], "name"), "categorical");
        // 19 distinct of 20 (95%): still ID-like; 18 of 20 (90%): categorical.
        let mut l19 = lines.clone();
        l19[20] = "person0,19,1".into();
        let refs: Vec<&str> = l19.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "dropped");
        l19[19] = "person0,18,0".into();
        let refs: Vec<&str> = l19.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "categorical");
        // A numeric column distinct on every row without an ID name is a feature.
        assert_eq!(
            auto_kind(&["weight,y", "1.5,0", "2.25,1", "3.125,0"], "weight"),
            "numeric"
        );
    }

    #[test]
    fn rule_numeric_boolean_categorical_and_their_encoding() {
        let t = table(&[
            "n,b,c,y",
            "1,yes,red,0",
            "NA,No,blue,1",
            "3,,red,0",
            "10,YES,,1",
            "2,y,green,0",
        ]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(
            c.columns.iter().map(Column::role).collect::<Vec<_>>(),
            ["numeric", "boolean", "categorical"]
        );
        // Median of 1, 3, 10, 2 = 2.5; most frequent boolean: yes (3 of 4); most frequent
        // category: red.
        assert_eq!(c.columns[0].encoding, Encoding::Numeric { fill: Some(2.5) });
        assert_eq!(c.columns[1].encoding, Encoding::Boolean { fill: true });
        assert_eq!(
            c.columns[2].encoding,
            Encoding::Categorical {
                categories: vec!["blue".into(), "green".into(), "red".into()],
                fill: "red".into()
            }
        );
        assert_eq!(
            c.feature_names(),
            [
                "n",
                "n (missing)",
                "b",
                "b (missing)",
                "c=blue",
                "c=green",
                "c=red",
                "c (missing)"
            ]
        );
        assert_eq!(
            c.standardized_mask(),
            [true, false, false, false, false, false, false, false]
        );
        let (map, _) = c.locate(&t, true).unwrap();
        let e = c.encode(&t, &map, &[1, 3]).unwrap();
        assert_eq!(
            e.x,
            [
                2.5, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, // NA → median, indicator
                10.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, // "" → red, indicator
            ]
        );
        assert_eq!(e.imputed, 2);
        // An unseen category: all zeros, counted.
        let u = table(&["c,n,b,y", "purple,1,no,0", "purple,2,no,0", "red,3,no,1"]);
        let (map, _) = c.locate(&u, true).unwrap();
        let e = c.encode(&u, &map, &[0, 1, 2]).unwrap();
        assert_eq!(&e.x[4..8], [0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            e.unseen,
            [Unseen {
                column: "c".into(),
                rows: 2,
                examples: vec!["purple".into()]
            }]
        );
        // A yes/no word that is not one: an error at the cell.
        let bad = table(&["c,n,b,y", "red,1,maybe,0"]);
        let (map, _) = c.locate(&bad, true).unwrap();
        let err = c.encode(&bad, &map, &[0]).unwrap_err().to_string();
        assert!(
            err.contains("line 2, column b") && err.contains("maybe"),
            "{err}"
        );
    }

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

    #[test]
    fn categories_beyond_the_cap_keep_the_most_frequent() {
        let mut lines = vec!["c,y".to_string()];
        for i in 0..(MAX_CATEGORIES + 20) {
            lines.push(format!("k{i:03},{}", i % 2));
            if i < MAX_CATEGORIES {
                lines.push(format!("k{i:03},{}", i % 2));
            }
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let c = fit(&table(&refs), &Overrides::default()).unwrap();
        match &c.columns[0].encoding {
            Encoding::Categorical { categories, .. } => {
                assert_eq!(categories.len(), MAX_CATEGORIES);
                assert!(categories.iter().all(|k| k.as_str() < "k100"));
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn numbers_beyond_f32_and_infinities_are_errors_with_the_cell() {
        for v in ["1e39", "-3.5e38", "inf", "-infinity"] {
            let t = table(&["a,y", "1,0", &format!("{v},1")]);
            let e = fit(&t, &Overrides::default()).unwrap_err().to_string();
            assert!(
                e.contains("t.csv") && e.contains("line 3, column a"),
                "{v}: {e}"
            );
        }
        let t = table(&["a,y", "3.4e38,0", "1,1"]);
        assert!(fit(&t, &Overrides::default()).is_ok());
    }

    #[test]
    fn overrides_are_checked() {
        let t = table(&["a,b,y", "1,2,0", "2,3,1"]);
        let ov = |f: Option<&[&str]>, d: &[&str], c: &[&str]| Overrides {
            features: f.map(|f| f.iter().map(|s| s.to_string()).collect()),
            drop: d.iter().map(|s| s.to_string()).collect(),
            categorical: c.iter().map(|s| s.to_string()).collect(),
            pixels: false,
        };
        let c = fit(&t, &ov(Some(&["b"]), &[], &[])).unwrap();
        assert_eq!(c.feature_names(), ["b"]);
        let c = fit(&t, &ov(None, &["a"], &["b"])).unwrap();
        assert_eq!(c.feature_names(), ["b=2", "b=3"]);
        for (o, needle) in [
            (ov(Some(&["zzz"]), &[], &[]), "zzz"),
            (ov(None, &["y"], &[]), "target"),
            (ov(Some(&["a"]), &["a"], &[]), "--features"),
            (ov(None, &["a"], &["a"]), "--drop"),
            (ov(None, &["a", "b"], &[]), "no feature column left"),
        ] {
            let e = fit(&t, &o).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn target_scaling_round_trip() {
        let mut d = downhill_core::data::Dataset::regression(
            vec![0.0; 4],
            1,
            vec![100.0, 0.5, 300.0, 1.5, 200.0, 1.0, 400.0, 2.0],
            2,
        )
        .unwrap();
        let t = TargetScaling::fit(&d).unwrap();
        assert_eq!(t.mean, [250.0, 1.25]);
        // Population standard deviation: √(12500) and √(0.3125).
        assert!((t.std[0] - 12500f64.sqrt()).abs() < 1e-9);
        assert!((t.std[1] - 0.3125f64.sqrt()).abs() < 1e-9);
        t.apply(&mut d);
        let downhill_core::data::Targets::Values { data, .. } = d.targets() else {
            unreachable!()
        };
        let mut back = data.clone();
        let mean: f32 = data.iter().step_by(2).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        t.unscale(&mut back);
        for (a, b) in back
            .iter()
            .zip([100.0, 0.5, 300.0, 1.5, 200.0, 1.0, 400.0, 2.0])
        {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // A constant target keeps std 1.
        let d =
            downhill_core::data::Dataset::regression(vec![0.0; 2], 1, vec![5.0, 5.0], 1).unwrap();
        assert_eq!(TargetScaling::fit(&d).unwrap().std, [1.0]);
    }
}
