//! CSV files (plain or `.gz`): numeric feature columns and one target column (or several, for
//! regression).
//!
//! - **Header**: detected when some field of the first row is not a number while the same column
//!   of the second row is; or declared with [`CsvOptions::header`].
//! - **Target**: chosen by name or 0-based index, default the last column. Several columns
//!   (comma-separated) make a multi-output regression.
//! - **Task**: classification when the target is not numeric (class names are kept), or is whole
//!   numbers with at most [`MAX_INFERRED_CLASSES`] distinct values; regression otherwise.
//!   [`CsvOptions::task`] overrides the guess.
//! - Every feature cell must be a finite number: an empty cell, text, NaN or infinity is an error
//!   naming the file, the 1-based line and the column.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Dataset, Task};
use crate::error::{Error, Result};

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
}

/// A CSV file read into a data set, with its column names.
#[derive(Clone, Debug)]
pub struct CsvData {
    pub data: Dataset,
    pub task: Task,
    pub feature_names: Vec<String>,
    pub target_names: Vec<String>,
}

fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

/// Reads the whole file, gunzipping it if it starts with the gzip magic bytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
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

/// The file's records (gunzipped if need be, fields trimmed, blank lines skipped); an error if
/// there are none.
fn records(path: &Path) -> Result<Vec<csv::StringRecord>> {
    let bytes = read_maybe_gz(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let mut rows = Vec::new();
    for (i, r) in reader.records().enumerate() {
        let r = r.map_err(|e| bad(path, format!("line {}", i + 1), e.to_string()))?;
        if !(r.len() == 1 && r[0].is_empty()) {
            rows.push(r);
        }
    }
    if rows.is_empty() {
        return Err(bad(path, "line 1", "the file is empty"));
    }
    Ok(rows)
}

/// Reads a CSV file for training or evaluation.
pub fn load(path: &Path, opts: &CsvOptions) -> Result<CsvData> {
    let rows = records(path)?;
    let width = rows[0].len();
    if width < 2 {
        return Err(bad(
            path,
            "line 1",
            format!(
                "only {width} column; a CSV for downhill needs at least one feature and a target"
            ),
        ));
    }
    let has_header = match opts.header {
        Some(h) => h,
        None => {
            rows.len() > 1
                && (0..width).any(|j| {
                    parse(&rows[0][j]).is_none()
                        && rows[1].get(j).is_some_and(|f| parse(f).is_some())
                })
        }
    };
    let names: Vec<String> = if has_header {
        rows[0].iter().map(str::to_string).collect()
    } else {
        (0..width).map(|j| format!("column {j}")).collect()
    };
    let first = usize::from(has_header);
    if rows.len() == first {
        return Err(bad(path, "line 2", "a header but no data rows"));
    }
    for (i, r) in rows.iter().enumerate().skip(first) {
        if r.len() != width {
            return Err(bad(
                path,
                format!("line {}", i + 1),
                format!(
                    "{} fields, but line 1 has {width}; every row needs the same number of columns",
                    r.len()
                ),
            ));
        }
    }
    let targets = resolve_targets(path, opts.target.as_deref(), &names, has_header)?;
    let features: Vec<usize> = (0..width).filter(|j| !targets.contains(j)).collect();
    let n = rows.len() - first;
    let line = |i: usize| i + first + 1; // 1-based line of data row i

    let mut x = Vec::with_capacity(n * features.len());
    for (i, r) in rows[first..].iter().enumerate() {
        for &j in &features {
            let f = &r[j];
            match parse(f) {
                Some(v) if v.is_finite() => x.push(v as f32),
                Some(v) => {
                    return Err(bad(
                        path,
                        format!("line {}, column {}", line(i), names[j]),
                        format!("{v} is not a finite number"),
                    ));
                }
                None if f.is_empty() => {
                    return Err(bad(
                        path,
                        format!("line {}, column {}", line(i), names[j]),
                        "empty cell; fill or drop missing values first",
                    ));
                }
                None => {
                    return Err(bad(
                        path,
                        format!("line {}, column {}", line(i), names[j]),
                        format!("{f:?} is not a number (features must be numeric)"),
                    ));
                }
            }
        }
    }
    let feature_names: Vec<String> = features.iter().map(|&j| names[j].clone()).collect();
    let target_names: Vec<String> = targets.iter().map(|&j| names[j].clone()).collect();
    let tcol = |i: usize, j: usize| &rows[first + i][j];

    let task = match opts.task {
        Some(t) => t,
        None if targets.len() > 1 => Task::Regress,
        None => infer_task((0..n).map(|i| tcol(i, targets[0]))),
    };
    let data = match task {
        Task::Classify => {
            if targets.len() != 1 {
                return Err(bad(
                    path,
                    "target",
                    format!(
                        "classification takes one target column, got {}",
                        targets.len()
                    ),
                ));
            }
            let j = targets[0];
            let classes = match &opts.classes {
                Some(c) => c.clone(),
                None => class_names((0..n).map(|i| tcol(i, j))),
            };
            let index: BTreeMap<&str, u32> = classes
                .iter()
                .enumerate()
                .map(|(k, c)| (c.as_str(), k as u32))
                .collect();
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let f = tcol(i, j);
                let key = canonical_label(f);
                let k = index.get(key.as_str()).ok_or_else(|| {
                    bad(
                        path,
                        format!("line {}, column {}", line(i), names[j]),
                        format!("label {f:?} is not one of the model's classes {classes:?}"),
                    )
                })?;
                labels.push(*k);
            }
            if opts.classes.is_none() && classes.len() < 2 {
                return Err(bad(
                    path,
                    format!("column {}", names[j]),
                    format!(
                        "only one class ({:?}); classification needs at least two",
                        classes[0]
                    ),
                ));
            }
            let mut d = Dataset::classification(x, features.len(), labels, classes.len())?;
            d.class_names = Some(classes);
            d
        }
        Task::Regress => {
            let mut y = Vec::with_capacity(n * targets.len());
            for i in 0..n {
                for &j in &targets {
                    let f = tcol(i, j);
                    let v = parse(f).filter(|v| v.is_finite()).ok_or_else(|| {
                        bad(path, format!("line {}, column {}", line(i), names[j]), format!("target {f:?} is not a finite number (regression needs numeric targets)"))
                    })?;
                    y.push(v as f32);
                }
            }
            Dataset::regression(x, features.len(), y, targets.len())?
        }
    };
    Ok(CsvData {
        data,
        task,
        feature_names,
        target_names,
    })
}

fn parse(field: &str) -> Option<f64> {
    field.parse::<f64>().ok()
}

/// Labels that are whole numbers are compared as numbers ("1" and "1.0" are the same class).
fn canonical_label(f: &str) -> String {
    match parse(f) {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        _ => f.to_string(),
    }
}

fn class_names<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = labels.map(canonical_label).collect();
    let mut v: Vec<String> = set.into_iter().collect();
    // Numeric labels in numeric order (2 before 10), others alphabetically.
    if v.iter().all(|s| s.parse::<i64>().is_ok()) {
        v.sort_by_key(|s| s.parse::<i64>().expect("checked"));
    }
    v
}

fn infer_task<'a>(labels: impl Iterator<Item = &'a str> + Clone) -> Task {
    if labels.clone().any(|f| parse(f).is_none()) {
        return Task::Classify;
    }
    let whole = labels
        .clone()
        .all(|f| parse(f).is_some_and(|v| v.fract() == 0.0));
    if whole && class_names(labels).len() <= MAX_INFERRED_CLASSES {
        Task::Classify
    } else {
        Task::Regress
    }
}

fn resolve_targets(
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

/// Reads the feature columns of a CSV for prediction: by name where the file has a header and
/// the model knows its feature names (other columns are ignored), else every column, which must
/// then number exactly `width`. Returns row-major features.
pub fn load_features(
    path: &Path,
    width: usize,
    names: Option<&[String]>,
    header: Option<bool>,
) -> Result<(Vec<f32>, usize)> {
    let rows = records(path)?;
    let has_header = header.unwrap_or_else(|| rows[0].iter().any(|f| parse(f).is_none()));
    let columns: Vec<usize> = match (has_header, names) {
        (true, Some(names)) if names.iter().all(|n| rows[0].iter().any(|h| h == n)) => names
            .iter()
            .map(|n| rows[0].iter().position(|h| h == n).expect("checked"))
            .collect(),
        _ => {
            if rows[0].len() != width {
                let hint = match names {
                    Some(n) => format!(
                        " (or a header naming the model's features: {})",
                        n.join(", ")
                    ),
                    None => String::new(),
                };
                return Err(bad(
                    path,
                    "line 1",
                    format!(
                        "{} columns, but the model takes {width} features{hint}",
                        rows[0].len()
                    ),
                ));
            }
            (0..width).collect()
        }
    };
    let first = usize::from(has_header);
    let mut x = Vec::with_capacity((rows.len() - first) * width);
    for (i, r) in rows.iter().enumerate().skip(first) {
        for &j in &columns {
            let f = r.get(j).ok_or_else(|| {
                bad(
                    path,
                    format!("line {}", i + 1),
                    format!("{} fields, expected at least {}", r.len(), j + 1),
                )
            })?;
            match parse(f) {
                Some(v) if v.is_finite() => x.push(v as f32),
                _ => {
                    return Err(bad(
                        path,
                        format!("line {}, column {}", i + 1, j),
                        format!("{f:?} is not a finite number"),
                    ));
                }
            }
        }
    }
    Ok((x, rows.len() - first))
}
