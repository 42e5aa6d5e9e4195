//! CSV files (plain or `.gz`): a table of feature columns (numbers, text, yes/no, missing cells —
//! see [`crate::columns`] for how each becomes features) and one target column (or several, for
//! regression).
//!
//! - **Header**: declared with [`CsvOptions::header`], or detected ([`detect_header`]).
//!   Duplicate header names are an error that names them.
//! - **Target**: chosen by name or 0-based index, default the last column. Several columns
//!   (comma-separated) make a multi-output regression. Rows whose target cell is missing
//!   ([`crate::columns::is_missing`]) are dropped and counted.
//! - **Task**: classification when the target is not numeric (class names are kept), or is whole
//!   numbers with at most [`MAX_INFERRED_CLASSES`] distinct values; regression otherwise.
//!   [`CsvOptions::task`] overrides the guess. A classification target with one class, or with a
//!   different class on (nearly) every row (at least 95% of at least 3 rows), is an error that says
//!   what to do.
//! - A cell that cannot be read (a non-number in a numeric column, a number beyond f32's range,
//!   `inf`) is an error naming the file, the 1-based line and the column.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use crate::columns::{Cell, Columns, Overrides, Table, is_missing, parse_number};
pub use crate::table::{AsText, sniff_delimiter};
use downhill_core::data::{Dataset, Features, Targets, Task};
use downhill_core::error::{Error, Result};

/// The largest number of distinct whole-number targets still guessed to be classes.
pub const MAX_INFERRED_CLASSES: usize = 20;

/// How to read a CSV file.
#[derive(Clone, Debug, Default)]
pub struct CsvOptions {
    /// `Some(true)`: the first row names the columns; `None`: detect.
    pub header: Option<bool>,
    /// Target column(s): names or 0-based indices, comma-separated; `None`: the last column.
    pub target: Option<String>,
    /// `None`: infer from the target column.
    pub task: Option<Task>,
    /// Class names to use (from a model or the training file), so that a test file maps its
    /// labels to the same indices. Unknown labels are then an error.
    pub classes: Option<Vec<String>>,
    /// `--features`, `--drop`, `--categorical`.
    pub columns: Overrides,
}

impl CsvOptions {
    /// The columns to read as text: the targets (a label keeps how it is written) and those
    /// named by `--categorical`.
    pub fn as_text(&self) -> AsText {
        let mut entries: Vec<String> = match &self.target {
            Some(t) => t.split(',').map(|e| e.trim().to_string()).collect(),
            None => Vec::new(),
        };
        entries.extend(self.columns.categorical.iter().cloned());
        AsText {
            entries,
            last: self.target.is_none(),
        }
    }
}

/// A CSV file read into a data set, with its column names.
#[derive(Clone, Debug)]
pub struct CsvData {
    /// Every row that has a target, encoded with `columns` (fitted on all of them).
    pub data: Dataset,
    pub task: Task,
    /// The encoded features' names ([`Columns::feature_names`]).
    pub feature_names: Vec<String>,
    pub target_names: Vec<String>,
    pub columns: Columns,
    /// The file's cells.
    pub table: Table,
    /// The table row of each example of `data`.
    pub rows: Vec<usize>,
    /// The target columns of `table`.
    pub targets: Vec<usize>,
    /// Rows dropped because a target cell was missing.
    pub dropped_rows: usize,
}

fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

/// Reads the whole file, gunzipping it if it starts with the gzip magic bytes.
#[cfg(feature = "fs")]
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    gunzip_if_gz(path, raw)
}

/// The bytes, gunzipped if they start with the gzip magic bytes (`path` names them in errors).
pub fn gunzip_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                bad(
                    path,
                    "gzip stream",
                    format!("cannot decompress ({e}); the file is cut off or damaged"),
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Whether the first row is a header. It is when any of these holds:
/// 1. `known` names are given (a model's columns) and every field of the first row is one of
///    them: some text, or each a different one (a header of numbers such as `0,1,2`);
/// 2. some column's first field is text (not a number, not missing) while the first non-missing
///    field below it is a number;
/// 3. the first row's text fields (not numbers, not missing) are pairwise distinct, and among the
///    columns whose first field is text, some repeat a value below the first row, and none of
///    those ever repeats the first row's own field (a class column below a header `y`, a header
///    `1,2,y` or `,,y`); a header-less row of data has its class label recur below;
/// 4. the file has a single row, all text.
///
/// An all-text table is misread when no column repeats a value (its header is taken for data), or
/// when the first row of a header-less one happens never to recur in a repeating column; pass
/// `--header` or `--no-header` to say which.
pub fn detect_header(first: &[String], data: &Table, known: Option<&[String]>) -> bool {
    let text = |f: &str| !is_missing(f) && parse_number(f).is_none();
    if let Some(k) = known
        && first.iter().all(|f| k.iter().any(|n| n == f))
        && (first.iter().any(|f| text(f))
            || first.iter().collect::<HashSet<_>>().len() == first.len())
    {
        // (A header of numbers, `0,1,2`, is the model's names when each is one of them once.)
        return true;
    }
    if data.is_empty() {
        // A lone row of text is a header (with no data: an error that says so).
        return first.iter().all(|f| text(f));
    }
    let w = first.len();
    let numbers_below = (0..w).any(|j| {
        text(&first[j])
            && (0..data.len())
                .map(|i| data.cell(i, j))
                .find(|c| !c.is_missing())
                .is_some_and(|c| c.number().is_some())
    });
    if numbers_below {
        return true;
    }
    let texts: Vec<usize> = (0..w).filter(|&j| text(&first[j])).collect();
    let distinct: HashSet<&str> = texts.iter().map(|&j| first[j].as_str()).collect();
    if texts.is_empty() || distinct.len() != texts.len() {
        return false;
    }
    // For each text column that repeats a value below: whether the first field never recurs.
    let mut verdicts = texts.iter().filter_map(|&j| {
        let (repeats, recurs) = repeats_and_recurs(data, j, &first[j]);
        repeats.then_some(!recurs)
    });
    let Some(v) = verdicts.next() else {
        return false;
    };
    v && verdicts.all(|v| v)
}

/// A note, when the first row of `table` was detected as a header (not declared) though some
/// of its fields are numbers over numeric columns, as in a row of data: a header-less file whose
/// first row holds a word that never recurs below (rule 3 of [`detect_header`]) loses that row
/// otherwise without a word. `None` when it was read as data, or no such field is there.
pub fn header_note(table: &Table) -> Option<String> {
    if !table.has_header {
        return None;
    }
    let numbers: Vec<&str> = (0..table.width())
        .filter(|&j| {
            let name = table.names[j].as_str();
            !is_missing(name)
                && parse_number(name).is_some()
                && table
                    .numbers(j)
                    .is_some_and(|v| v.iter().any(|x| !x.is_nan()))
        })
        .map(|j| table.names[j].as_str())
        .collect();
    if numbers.is_empty() {
        return None;
    }
    let shown: Vec<String> = numbers.iter().take(3).map(|n| quoted_name(n)).collect();
    let more = if numbers.len() > 3 { ", …" } else { "" };
    Some(format!(
        "note: the first line was read as a header, though {}{more} {}, as in a row of data; \
         if it is one, pass --no-header (--header says it is a header)",
        shown.join(", "),
        if numbers.len() == 1 {
            "is a number over a numeric column"
        } else {
            "are numbers over numeric columns"
        }
    ))
}

/// A header field as quoted in a note: its first 30 characters.
fn quoted_name(n: &str) -> String {
    let short: String = n.chars().take(30).collect();
    if short.len() < n.len() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}

/// Whether column `j` of `data` holds some cell twice, and whether it holds `field`.
fn repeats_and_recurs(data: &Table, j: usize, field: &str) -> (bool, bool) {
    use crate::table::ColumnCells;
    match &data.columns[j] {
        ColumnCells::Text { codes, dict } => {
            let mut seen = vec![false; dict.len()];
            let repeats = codes
                .iter()
                .any(|&k| std::mem::replace(&mut seen[k as usize], true));
            (repeats, dict.iter().any(|d| d == field))
        }
        ColumnCells::Numbers { .. } => {
            let mut seen = HashSet::new();
            let (mut repeats, mut recurs) = (false, false);
            for i in 0..data.len() {
                let c = data.cell(i, j).text();
                if c == field {
                    recurs = true;
                }
                if !seen.insert(c) {
                    repeats = true;
                }
            }
            (repeats, recurs)
        }
    }
}

/// Reads a CSV file's cells: header as given or detected (with `known` column names, from a
/// model), the same number of fields on every row, no duplicate header names.
#[cfg(feature = "fs")]
pub fn read_table(
    path: &Path,
    header: Option<bool>,
    known: Option<&[String]>,
    as_text: &AsText,
) -> Result<Table> {
    table_from_bytes(path, &read_maybe_gz(path)?, header, known, as_text)
}

/// [`read_table`] of a file's bytes, already read (and gunzipped); `path` names them in errors.
pub fn table_from_bytes(
    path: &Path,
    bytes: &[u8],
    header: Option<bool>,
    known: Option<&[String]>,
    as_text: &AsText,
) -> Result<Table> {
    let table = crate::table::read(path, bytes, header, as_text, |first, data| {
        detect_header(first, data, known)
    })?;
    if table.has_header {
        let mut first_at: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dups = Vec::new();
        for (j, n) in table.names.iter().enumerate() {
            if let Some(&k) = first_at.get(n.as_str()) {
                dups.push(format!("{n:?} (columns {} and {})", k + 1, j + 1));
            } else {
                first_at.insert(n, j);
            }
        }
        if !dups.is_empty() {
            return Err(bad(
                path,
                "line 1",
                format!(
                    "duplicate column names in the header: {}; every column needs its own name",
                    dups.join(", ")
                ),
            ));
        }
        if table.is_empty() {
            return Err(bad(path, "line 2", "a header but no data rows"));
        }
    }
    Ok(table)
}

/// The target columns of a table, read.
#[derive(Clone, Debug)]
pub struct TargetValues {
    pub task: Task,
    /// Rows with every target cell present, in table order.
    pub rows: Vec<usize>,
    /// Their targets.
    pub targets: Targets,
    pub class_names: Option<Vec<String>>,
    /// Rows dropped because a target cell was missing.
    pub dropped: usize,
}

/// The note for `n` `rows` ("rows", "test-file rows") dropped because their target is missing;
/// none for 0.
pub fn dropped_note(n: usize, rows: &str) -> Option<String> {
    (n > 0).then(|| format!("dropped {n} {rows} whose target is missing"))
}

/// Reads the target columns `targets` of `table` (rows with a missing target cell are dropped).
pub fn read_targets(
    table: &Table,
    targets: &[usize],
    task: Option<Task>,
    classes: Option<&[String]>,
) -> Result<TargetValues> {
    let rows: Vec<usize> = (0..table.len())
        .filter(|&i| targets.iter().all(|&j| !table.cell(i, j).is_missing()))
        .collect();
    let dropped = table.len() - rows.len();
    if rows.is_empty() {
        let tname = targets
            .iter()
            .map(|&j| table.names[j].as_str())
            .collect::<Vec<_>>()
            .join(", ");
        // A header and every line ending in a separator leave an empty column without a name
        // at the end, which is the default target.
        let last = table.width().saturating_sub(1);
        if table.has_header && targets == [last] && table.names[last].trim().is_empty() {
            return Err(table.error(
                format!(
                    "the last column (column {}, no name in the header)",
                    last + 1
                ),
                "is empty on every row, so there is no target: every line seems to end with a \
                 separator. Name the target with --target (the empty column is then dropped) \
                 or remove the trailing separators",
            ));
        }
        return Err(table.error(
            format!("column {tname}"),
            "no row has a target value (every target cell is missing); check --target",
        ));
    }
    let task = match task {
        Some(t) => t,
        None if targets.len() > 1 => Task::Regress,
        None => infer_task(rows.iter().map(|&i| table.cell(i, targets[0]))),
    };
    let (targets, class_names) = match task {
        Task::Classify => {
            if targets.len() != 1 {
                return Err(table.error(
                    "target",
                    format!(
                        "classification takes one target column, got {}",
                        targets.len()
                    ),
                ));
            }
            let (labels, names) = read_labels(table, targets[0], &rows, classes)?;
            let n_classes = names.len();
            (Targets::Classes { labels, n_classes }, Some(names))
        }
        Task::Regress => {
            let data = read_values(table, targets, &rows)?;
            let cols = targets.len();
            (Targets::Values { data, cols }, None)
        }
    };
    Ok(TargetValues {
        task,
        rows,
        targets,
        class_names,
        dropped,
    })
}

/// The class labels of column `j` in `rows`, with the class names: `classes` (a model's), or
/// those of the column — at least two, and not a different one on nearly every row.
fn read_labels(
    table: &Table,
    j: usize,
    rows: &[usize],
    classes: Option<&[String]>,
) -> Result<(Vec<u32>, Vec<String>)> {
    let n = rows.len();
    let names = match classes {
        Some(c) => c.to_vec(),
        None => class_names(rows.iter().map(|&i| table.cell(i, j))),
    };
    if classes.is_none() {
        if names.len() < 2 {
            return Err(table.error(
                table.column(j),
                format!(
                    "only one class ({:?}) in the target {}; classification needs at least two. \
                     Check that --target names the column to predict",
                    names[0],
                    table.column(j)
                ),
            ));
        }
        if n >= 3 && names.len() as f64 >= 0.95 * n as f64 {
            return Err(table.error(
                table.column(j),
                format!(
                    "the target {} has {} different values in {n} rows: a class per row cannot be learned. \
                     If it is a quantity, use --task regress; if it is an ID or a name, choose the column to predict with --target",
                    table.column(j),
                    names.len()
                ),
            ));
        }
    }
    let index: BTreeMap<String, u32> = names
        .iter()
        .enumerate()
        .map(|(k, c)| (c.clone(), k as u32))
        .collect();
    let mut labels = Vec::with_capacity(n);
    // Each distinct cell looked up once.
    let mut known: HashMap<CellKey, u32> = HashMap::new();
    for &i in rows {
        let f = table.cell(i, j);
        if let Some(&k) = known.get(&CellKey::of(f)) {
            labels.push(k);
            continue;
        }
        let k = index.get(&canonical_label(f)).ok_or_else(|| {
            table.error(
                table.at(i, j),
                format!(
                    "label {:?} is not one of the model's classes {names:?}",
                    f.text()
                ),
            )
        })?;
        known.insert(CellKey::of(f), *k);
        labels.push(*k);
    }
    Ok((labels, names))
}

/// The regression targets of columns `targets` in `rows`, row by row: finite numbers within
/// f32's range.
fn read_values(table: &Table, targets: &[usize], rows: &[usize]) -> Result<Vec<f32>> {
    let mut y = Vec::with_capacity(rows.len() * targets.len());
    for &i in rows {
        for &j in targets {
            let f = table.cell(i, j);
            let v = f.number().filter(|v| v.is_finite()).ok_or_else(|| {
                let f = f.text();
                table.error(
                    table.at(i, j),
                    format!(
                        "target {f:?} is not a finite number (regression needs numeric targets)"
                    ),
                )
            })?;
            if v.abs() > f32::MAX as f64 {
                return Err(table.error(
                    table.at(i, j),
                    format!("target {} is beyond f32's range (±3.4e38)", f.text()),
                ));
            }
            y.push(v as f32);
        }
    }
    Ok(y)
}

/// Reads a CSV file for training or evaluation: every row with a target, its feature columns
/// encoded with a [`Columns`] map fitted on all those rows.
#[cfg(feature = "fs")]
pub fn load(path: &Path, opts: &CsvOptions) -> Result<CsvData> {
    load_bytes(path, &read_maybe_gz(path)?, opts)
}

/// [`load`] of a file's bytes, already read (and gunzipped): an upload in the browser
/// playground; `path` names them in errors.
pub fn load_bytes(path: &Path, bytes: &[u8], opts: &CsvOptions) -> Result<CsvData> {
    let table = table_from_bytes(path, bytes, opts.header, None, &opts.as_text())?;
    if table.width() < 2 {
        return Err(bad(
            path,
            "line 1",
            format!(
                "only {} column; a CSV for downhill needs at least one feature and a target",
                table.width()
            ),
        ));
    }
    let targets = resolve_targets(path, opts.target.as_deref(), &table.names, table.has_header)?;
    let tv = read_targets(&table, &targets, opts.task, opts.classes.as_deref())?;
    let columns = Columns::fit(&table, &targets, &tv.rows, &opts.columns)?;
    let (map, _) = columns.locate(&table, true)?;
    let enc = columns.encode(&table, &map, &tv.rows)?;
    let mut data = Dataset::new(Features::F32(enc.x), enc.n_features, tv.targets)?;
    data.class_names = tv.class_names;
    Ok(CsvData {
        data,
        task: tv.task,
        feature_names: columns.feature_names(),
        target_names: targets.iter().map(|&j| table.names[j].clone()).collect(),
        columns,
        table,
        rows: tv.rows,
        targets,
        dropped_rows: tv.dropped,
    })
}

/// Labels that are whole numbers are compared as numbers ("1" and "1.0" are the same class).
/// A cell as a hash key: a number by its bits (0 and −0 as one), text as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CellKey<'a> {
    Number(u64),
    Text(&'a str),
}

impl<'a> CellKey<'a> {
    fn of(c: Cell<'a>) -> CellKey<'a> {
        match c {
            Cell::Number(v) => CellKey::Number(if v == 0.0 { 0 } else { v.to_bits() }),
            Cell::Missing(t) | Cell::Text(t) => CellKey::Text(t),
        }
    }
}

fn canonical_label(f: Cell) -> String {
    match f.number() {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        _ => f.text().into_owned(),
    }
}

fn class_names<'a>(labels: impl Iterator<Item = Cell<'a>>) -> Vec<String> {
    // Each distinct cell named once (a long column repeats few values).
    let mut distinct: HashMap<CellKey<'a>, Cell<'a>> = HashMap::new();
    for c in labels {
        distinct.entry(CellKey::of(c)).or_insert(c);
    }
    let set: std::collections::BTreeSet<String> =
        distinct.into_values().map(canonical_label).collect();
    let mut v: Vec<String> = set.into_iter().collect();
    // Numeric labels in numeric order (2 before 10), others alphabetically.
    if v.iter().all(|s| s.parse::<i64>().is_ok()) {
        v.sort_by_key(|s| s.parse::<i64>().expect("checked"));
    }
    v
}

fn infer_task<'a>(labels: impl Iterator<Item = Cell<'a>> + Clone) -> Task {
    if labels.clone().any(|f| f.number().is_none()) {
        return Task::Classify;
    }
    let whole = labels
        .clone()
        .all(|f| f.number().is_some_and(|v| v.fract() == 0.0));
    if whole && class_names(labels).len() <= MAX_INFERRED_CLASSES {
        Task::Classify
    } else {
        Task::Regress
    }
}

/// The columns a target specification names (names, or 0-based indices), default the last.
pub fn resolve_targets(
    path: &Path,
    spec: Option<&str>,
    names: &[String],
    has_header: bool,
) -> Result<Vec<usize>> {
    let Some(spec) = spec else {
        return Ok(vec![names.len() - 1]);
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let j = if let Some(j) = names.iter().position(|n| has_header && n == part) {
            j
        } else if let Ok(j) = part.parse::<usize>() {
            if j >= names.len() {
                return Err(bad(
                    path,
                    "target",
                    format!(
                        "column index {j}, but the file has {} columns (0..{})",
                        names.len(),
                        names.len() - 1
                    ),
                ));
            }
            j
        } else {
            let known = if has_header {
                names.join(", ")
            } else {
                "none (the file has no header; use a 0-based index)".into()
            };
            return Err(bad(
                path,
                "target",
                format!("no column named {part:?}; columns: {known}"),
            ));
        };
        if out.contains(&j) {
            return Err(bad(
                path,
                "target",
                format!("column {part:?} is named twice"),
            ));
        }
        out.push(j);
    }
    if out.len() >= names.len() {
        return Err(bad(
            path,
            "target",
            "every column is a target; at least one feature column must remain",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the header rule takes the first of `lines` for a header.
    fn header(lines: &[&str], known: Option<&[String]>) -> bool {
        let text = lines.join("\n");
        crate::table::read(
            Path::new("t.csv"),
            text.as_bytes(),
            None,
            &AsText::default(),
            |f, d| detect_header(f, d, known),
        )
        .unwrap()
        .has_header
    }

    /// Each record's line is the file's line, after runs of blank lines (LF and CRLF, and `\r`
    /// alone inside a run) too: the reader's own offsets lie before them (issue 19, item 13).
    #[test]
    fn line_numbers_count_the_blank_lines_before_a_row() {
        for eol in ["\n", "\r\n"] {
            let lines = ["a,b", "1,2", "", "", "", "3,4", "", "5,6", " , ", "7,8"];
            let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
            let t = table_from_bytes(
                Path::new("t.csv"),
                text.as_bytes(),
                Some(false),
                None,
                &AsText::default(),
            );
            assert_eq!(t.unwrap().lines, [1, 2, 6, 8, 9, 10], "{eol:?}");
            let t = table_from_bytes(
                Path::new("t.csv"),
                text.as_bytes(),
                Some(true),
                None,
                &AsText::default(),
            );
            assert_eq!(t.unwrap().lines, [2, 6, 8, 9, 10], "{eol:?}");
        }
        let t = table_from_bytes(
            Path::new("t.csv"),
            b"a\n\r\n\n\nb\n",
            Some(false),
            None,
            &AsText::default(),
        );
        assert_eq!(t.unwrap().lines, [1, 5]);
        let t = table_from_bytes(
            Path::new("t.csv"),
            b"\n\na\n\r\n\n\nb\n",
            Some(true),
            None,
            &AsText::default(),
        );
        assert_eq!(t.unwrap().lines, [7]);
    }

    #[test]
    fn header_rule_text_over_numbers() {
        assert!(header(&["x,y,label", "1,2,a", "3,4,b"], None));
        assert!(!header(&["1,2,a", "3,4,b"], None));
        // The first non-missing cell below decides, not the second row's.
        assert!(header(&["x,label", "NA,a", "3,b"], None));
        // A missing word in the first row is not a name.
        assert!(!header(&["NA,a", "3,b"], None));
    }

    #[test]
    fn header_rule_all_text() {
        let t = ["colour,size", "red,big", "blue,small", "red,big"];
        assert!(header(&t, None));
        // The first row's values recur below: data.
        assert!(!header(&t[1..], None));
        // Repeated names are not a header.
        assert!(!header(&["a,a", "x,y", "x,z"], None));
        // No column repeats a value: undecidable, read as data.
        assert!(!header(&["a,b", "x,y", "z,w"], None));
    }

    #[test]
    fn header_rule_known_names() {
        let known = vec!["colour".to_string(), "size".to_string()];
        assert!(header(&["size,colour", "big,red"], Some(&known)));
        assert!(!header(&["big,red", "big,red"], Some(&known)));
        // Names made of numbers, each once: the model's header (eighth hostile pass, item 2).
        let numbers = vec!["0".to_string(), "1".to_string(), "2".to_string()];
        assert!(header(&["1,0", "0.5,0.5"], Some(&numbers)));
        assert!(!header(&["1,1", "0.5,0.5"], Some(&numbers)));
        assert!(!header(&["1,0", "0.5,0.5"], None));
    }

    /// The file `text` loaded with the default options.
    fn load_text(text: &str) -> Result<CsvData> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        load(&p, &CsvOptions::default())
    }

    #[test]
    fn one_class_and_a_class_per_row_are_refused() {
        let e = load_text("a,y\n1,k\n2,k\n3,k\n").unwrap_err().to_string();
        assert!(e.contains("only one class"), "{e}");
        let e = load_text("a,y\n1,k1\n2,k2\n3,k3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 different values in 3 rows"), "{e}");
        assert!(load_text("a,y\n1,k1\n2,k2\n3,k1\n").is_ok());
    }

    #[test]
    fn rows_without_a_target_are_dropped_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, "a,y\n1,0.5\n2,NA\n3,\n4,1.5\n5,2\n").unwrap();
        let c = load(&p, &CsvOptions::default()).unwrap();
        assert_eq!((c.data.len(), c.dropped_rows), (3, 2));
        assert_eq!(c.rows, [0, 3, 4]);
        std::fs::write(&p, "a,y\n1,NA\n2,?\n").unwrap();
        let e = load(&p, &CsvOptions::default()).unwrap_err().to_string();
        assert!(e.contains("no row has a target"), "{e}");
    }

    #[test]
    fn duplicate_header_names_are_named() {
        let e = load_text("a,b,a,y\n1,2,3,0\n4,5,6,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a\" (columns 1 and 3)"), "{e}");
    }
}

#[cfg(test)]
mod sniff_tests {
    use super::sniff_delimiter;

    #[test]
    fn separators() {
        for (text, want) in [
            ("a,b,y\n1,2,x\n", b','),
            ("a;b;y\n1;2;x\n", b';'),
            ("a\tb\ty\n1\t2\tx\n", b'\t'),
            // Decimal commas in a semicolon file, header-less.
            ("0,5;1,2;a\n0,7;3,1;b\n", b';'),
            // A comma inside a tab file's name, a semicolon inside a comma file's.
            ("price, usd\tqty\ty\n1\t2\tx\n", b'\t'),
            ("a;b,c,y\n1,2,x\n", b','),
            ("\"x,1\";b;y\n1;2;x\n", b';'),
            ("y\n1\n", b','),
            ("", b','),
        ] {
            assert_eq!(sniff_delimiter(text.as_bytes()), want, "{text:?}");
        }
    }
}
