//! Resolves a data specification (`digits`, `fashion-mnist`, a folder of IDX files, a CSV file)
//! into a training set and, where there is one, a test set — the same way for every command.

use std::path::Path;

use crate::columns::{Columns, Overrides, Table, Unseen};
use crate::csv::{self as csvfile, CsvOptions};
use crate::{digits, idx};
use downhill_core::data::{Dataset, Features, Normalization, Task, split};
use downhill_core::error::{Error, Result};
use downhill_core::rng::Rng;

/// The data of a run, before validation split and normalisation.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// A short name for reports (`digits`, `fashion-mnist`, the file's path).
    pub name: String,
    pub train: Dataset,
    pub test: Option<Dataset>,
    pub task: Task,
    /// Normalisation when none is asked for: 1/255 for images, standardisation for CSV.
    pub default_normalization: Normalization,
    pub feature_names: Option<Vec<String>>,
    pub target_names: Option<Vec<String>>,
    /// For a CSV: the cells behind `train` and `test`, so that [`prepare`] can fit the column map
    /// on the training rows alone and encode them. (A CSV's `train` and `test` hold the targets
    /// only, with one placeholder feature; [`prepare`] gives the features.)
    pub csv: Option<CsvSource>,
}

/// The cells of a CSV run.
#[derive(Clone, Debug)]
pub struct CsvSource {
    pub table: Table,
    /// Target columns of `table`.
    pub targets: Vec<usize>,
    /// The table row of each example of [`Loaded::train`].
    pub train_rows: Vec<usize>,
    /// The test file's cells (`None`: the test rows are rows of `table`).
    pub test_table: Option<Table>,
    /// The table row of each example of [`Loaded::test`].
    pub test_rows: Vec<usize>,
    pub overrides: Overrides,
    /// Rows dropped because their target was missing: training file, test file.
    pub dropped_rows: usize,
    pub test_dropped_rows: usize,
    /// The note that a detected header looks like a row of data ([`csvfile::header_note`]).
    pub header_note: Option<String>,
}

/// How to read the data.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    pub test: Option<std::path::PathBuf>,
    /// Held out for testing when there is no test set; default 0.2 (the digits' 1,000).
    pub test_fraction: Option<f64>,
    pub csv: CsvOptions,
}

/// Loads `spec`; splits off a stratified, seeded test set where none is given.
pub fn load(spec: &str, opts: &SourceOptions, rng: &mut Rng) -> Result<Loaded> {
    let images = |name: &str, train: Dataset, test: Option<Dataset>| Loaded {
        name: name.to_string(),
        train,
        test,
        task: Task::Classify,
        default_normalization: Normalization::Scale,
        feature_names: None,
        target_names: None,
        csv: None,
    };
    let mut loaded = match spec {
        "digits" => images("digits", digits::load()?, None),
        "fashion-mnist" => {
            let (train, test) = idx::fashion_mnist()?;
            images("fashion-mnist", train, test)
        }
        path if Path::new(path).is_dir() => {
            let (train, test) = idx::load_dir(Path::new(path))?;
            images(path, train, test)
        }
        path => {
            let p = Path::new(path);
            if !p.exists() {
                return Err(Error::Io {
                    path: p.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file (--data takes digits, fashion-mnist, a folder of MNIST-format IDX files, or a CSV file)",
                    ),
                });
            }
            return load_csv(p, opts, rng);
        }
    };
    // The table flags have nothing to act on in images.
    let c = &opts.csv;
    let table_flags = [
        ("header", c.header.is_some()),
        ("target", c.target.is_some()),
        ("features", c.columns.features.is_some()),
        ("drop", !c.columns.drop.is_empty()),
        ("categorical", !c.columns.categorical.is_empty()),
    ];
    if let Some((flag, _)) = table_flags.iter().find(|(_, given)| *given) {
        return Err(Error::setting(
            flag,
            "given",
            format!(
                "is for CSV tables; {} is images, whose label is the target",
                loaded.name
            ),
        ));
    }
    if let Some(test) = &opts.test {
        loaded.test = Some(load_test_file(test, &loaded, &opts.csv)?);
    }
    if loaded.test.is_none() {
        let f = opts.test_fraction.unwrap_or(0.2);
        if f > 0.0 {
            let (train, test) = split::hold_out(&loaded.train, f, rng);
            loaded.train = train;
            loaded.test = Some(test);
        }
    } else if opts.test_fraction.is_some_and(|f| f > 0.0) && opts.test.is_none() {
        // The set has its own test files; a fraction would discard training data for nothing.
        return Err(Error::setting(
            "test-fraction",
            opts.test_fraction.unwrap_or(0.0),
            format!(
                "{} has its own test set; leave --test-fraction out",
                loaded.name
            ),
        ));
    }
    Ok(loaded)
}

/// A separate test file: CSV read with the training set's classes, or an IDX images file
/// whose labels file stands beside it (`…images-idx3…` → `…labels-idx1…`).
fn load_test_file(path: &Path, train: &Loaded, csv: &CsvOptions) -> Result<Dataset> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut test = if name.contains("images-idx3") {
        let labels = path.with_file_name(name.replace("images-idx3", "labels-idx1"));
        idx::load_pair(path, &labels)?
    } else {
        let opts = CsvOptions {
            classes: train
                .train
                .class_names
                .clone()
                .filter(|_| train.task == Task::Classify),
            task: Some(train.task),
            ..csv.clone()
        };
        csvfile::load(path, &opts)?.data
    };
    if test.n_features() != train.train.n_features() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            location: "columns".into(),
            message: format!(
                "{} features per example, but the training data has {}",
                test.n_features(),
                train.train.n_features()
            ),
        });
    }
    if test.class_names.is_none() {
        test.class_names = train.train.class_names.clone();
    }
    Ok(test)
}

/// A CSV training file (and test file): targets read, the test part split off (stratified,
/// seeded) unless a test file is given, the columns map fitted on the training part and applied
/// to both.
fn load_csv(path: &Path, opts: &SourceOptions, rng: &mut Rng) -> Result<Loaded> {
    let table = csvfile::read_table(path, opts.csv.header, None, &opts.csv.as_text())?;
    if table.width() < 2 {
        return Err(Error::Data {
            path: path.to_path_buf(),
            location: "line 1".into(),
            message: format!(
                "only {} column; a CSV for downhill needs at least one feature and a target",
                table.width()
            ),
        });
    }
    let targets = csvfile::resolve_targets(
        path,
        opts.csv.target.as_deref(),
        &table.names,
        table.has_header,
    )?;
    let tv = csvfile::read_targets(&table, &targets, opts.csv.task, opts.csv.classes.as_deref())?;
    constant_regression_target(&table, &targets, &tv)?;
    let mut all = Dataset::new(Features::U8(vec![0; tv.rows.len()]), 1, tv.targets.clone())?;
    all.class_names = tv.class_names.clone();
    let header_note = match opts.csv.header {
        None => csvfile::header_note(&table),
        Some(_) => None,
    };
    let mut src = CsvSource {
        table,
        targets,
        train_rows: tv.rows.clone(),
        test_table: None,
        test_rows: Vec::new(),
        overrides: opts.csv.columns.clone(),
        dropped_rows: tv.dropped,
        test_dropped_rows: 0,
        header_note,
    };
    // The features are encoded by [`prepare`], with the column map fitted on the training rows
    // alone; here only the targets are read and the test rows chosen (the placeholder features,
    // one zero per row, are never read).
    let test = if let Some(test_path) = &opts.test {
        let known: Vec<String> = src.table.names.clone();
        // The columns that are text in the training file (and the targets) are text here too,
        // so that their cells match the training file's categories and labels as written.
        let mut as_text = csvfile::AsText::of_table(&src.table);
        as_text.entries.extend(opts.csv.as_text().entries);
        as_text
            .entries
            .extend(src.targets.iter().map(|&j| src.table.names[j].clone()));
        let t = csvfile::read_table(test_path, opts.csv.header, Some(&known), &as_text)?;
        // The test file's columns are matched as the fitted map will match them (a test file
        // may lack a column the map drops).
        let columns = Columns::fit(&src.table, &src.targets, &src.train_rows, &src.overrides)?;
        let (test, rows, dropped) = read_test_targets(&columns, &t, &all)?;
        src.test_table = Some(t);
        src.test_rows = rows;
        src.test_dropped_rows = dropped;
        Some(test)
    } else {
        let f = opts.test_fraction.unwrap_or(0.2);
        if f > 0.0 {
            let (k, h) = split::hold_out_indices(&all, f, rng);
            src.test_rows = h.iter().map(|&i| src.train_rows[i]).collect();
            src.train_rows = k.iter().map(|&i| src.train_rows[i]).collect();
            if k.is_empty() {
                return Err(Error::setting(
                    "test-fraction",
                    f,
                    format!(
                        "leaves no training rows of the {} rows with a target",
                        all.len()
                    ),
                ));
            }
            let test = all.subset(&h);
            all = all.subset(&k);
            Some(test)
        } else {
            None
        }
    };
    let train = all;
    Ok(Loaded {
        name: path.display().to_string(),
        task: tv.task,
        train,
        test,
        default_normalization: Normalization::Standardize,
        // (A CSV's feature names come with the prepared data's report.)
        feature_names: None,
        target_names: Some(
            src.targets
                .iter()
                .map(|&j| src.table.names[j].clone())
                .collect(),
        ),
        csv: Some(src),
    })
}

/// Encodes `rows` of `table` (whose targets `part` holds, in the same order).
fn encode_part(
    columns: &Columns,
    table: &Table,
    rows: &[usize],
    part: &Dataset,
) -> Result<(Dataset, Vec<Unseen>)> {
    let (map, _) = columns.locate(table, true)?;
    let enc = columns.encode(table, &map, rows)?;
    Ok((part.with_features(enc.x, enc.n_features)?, enc.unseen))
}

/// A test table's targets, its columns matched to the training file's and read with the
/// training classes: a set with placeholder features (one zero per row; [`prepare`] encodes
/// them), its rows and the rows dropped for a missing target.
fn read_test_targets(
    columns: &Columns,
    t: &Table,
    train: &Dataset,
) -> Result<(Dataset, Vec<usize>, usize)> {
    let (_, tcols) = columns.locate(t, true)?;
    let task = match train.targets() {
        downhill_core::data::Targets::Classes { .. } => Task::Classify,
        downhill_core::data::Targets::Values { .. } => Task::Regress,
    };
    let tv = csvfile::read_targets(t, &tcols, Some(task), train.class_names.as_deref())?;
    let mut d = Dataset::new(Features::U8(vec![0; tv.rows.len()]), 1, tv.targets)?;
    d.class_names = train.class_names.clone();
    Ok((d, tv.rows, tv.dropped))
}

/// The data of a run, split and encoded: training, validation (when `val_fraction` > 0) and test
/// sets, and for a CSV the column map fitted on the training rows alone.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub train: Dataset,
    pub val: Option<Dataset>,
    pub test: Option<Dataset>,
    /// What a CSV's columns became (`None` for images).
    pub report: Option<DataReport>,
}

/// What the columns of a CSV became, for the run's report and `summary.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DataReport {
    /// Flattened: `columns` (one entry per column), `targets`, `target_positions`, `has_header`.
    #[serde(flatten)]
    pub columns: Columns,
    /// Rows dropped because their target was missing (training file, test file).
    pub dropped_target_rows: usize,
    pub test_dropped_target_rows: usize,
    /// Categories not seen in the training rows, met in the validation and test rows.
    pub val_unseen: Vec<Unseen>,
    pub test_unseen: Vec<Unseen>,
    /// Pixel-like ([`pixel_like`]): the numeric features are scaled by 1/255, not standardised
    /// (unless `--normalize` says otherwise).
    pub pixel_like: bool,
    /// A note for the start of the run that the detected header looks like data.
    #[serde(skip)]
    pub header_note: Option<String>,
    /// Where the validation and test examples were read: the file and each example's line.
    #[serde(skip)]
    pub val_lines: (std::path::PathBuf, Vec<u64>),
    #[serde(skip)]
    pub test_lines: (std::path::PathBuf, Vec<u64>),
}

/// Numeric columns from which a table of whole numbers in 0–255 is taken for pixels.
pub const PIXEL_MIN_COLUMNS: usize = 64;

/// Whether a CSV's training features look like pixels: at least [`PIXEL_MIN_COLUMNS`] numeric
/// features, every training value of each a whole number in 0–255, the largest above 127 (MNIST
/// or Fashion-MNIST written as CSV; not 64 answers on a 1–5 scale). Such columns are scaled by 1/255 as images are, not standardised: a border pixel that
/// is nonzero in a handful of training images has a tiny standard deviation (≈ 255/√n), so
/// standardising would map a validation image's 255 there to tens of σ — inputs the network never
/// saw (validation loss 4.4 against 0.27 on training after one epoch, on MNIST as CSV).
pub fn pixel_like(train: &Dataset, numeric: &[bool]) -> bool {
    let cols: Vec<usize> = (0..numeric.len()).filter(|&k| numeric[k]).collect();
    let mut max = 0.0f64;
    cols.len() >= PIXEL_MIN_COLUMNS
        && !train.is_empty()
        && (0..train.len()).all(|i| {
            cols.iter().all(|&k| {
                let v = train.raw(i, k);
                max = max.max(v);
                (0.0..=255.0).contains(&v) && v.fract() == 0.0
            })
        })
        && max > 127.0
}

impl DataReport {
    /// The report as printed at the start of a run.
    pub fn lines(&self) -> Vec<String> {
        let c = &self.columns;
        let used = c.columns.iter().filter(|c| !c.is_dropped()).count();
        let mut out = vec![format!(
            "data: {} columns → {used} used, {} features (fitted on the training rows)",
            c.file_width(),
            c.n_features()
        )];
        out.extend(c.report());
        out.extend(self.header_note.clone());
        if self.pixel_like {
            out.push(format!(
                "pixel-like: every numeric column holds whole numbers in 0–255 ({} or more columns); \
                 scaled by 1/255 as images are, not standardised, unless --normalize says otherwise",
                PIXEL_MIN_COLUMNS
            ));
        }
        out.extend(csvfile::dropped_note(self.dropped_target_rows, "rows"));
        out.extend(csvfile::dropped_note(
            self.test_dropped_target_rows,
            "test-file rows",
        ));
        for (set, list) in [
            ("validation", &self.val_unseen),
            ("test", &self.test_unseen),
        ] {
            for u in list {
                out.push(format!("{set}: {}", u.note()));
            }
        }
        out
    }
}

/// Splits off the validation set (seeded; stratified for classes) and, for a CSV, fits the column
/// map on the remaining training rows and encodes training, validation and test rows with it.
pub fn prepare(loaded: &Loaded, val_fraction: f64, rng: &mut Rng) -> Result<Prepared> {
    let (kept, held) = if val_fraction > 0.0 {
        split::hold_out_indices(&loaded.train, val_fraction, rng)
    } else {
        ((0..loaded.train.len()).collect(), Vec::new())
    };
    let train = loaded.train.subset(&kept);
    let val = (val_fraction > 0.0).then(|| loaded.train.subset(&held));
    let Some(src) = &loaded.csv else {
        return Ok(Prepared {
            train,
            val,
            test: loaded.test.clone(),
            report: None,
        });
    };
    let rows = |idx: &[usize]| -> Vec<usize> { idx.iter().map(|&i| src.train_rows[i]).collect() };
    let train_rows = rows(&kept);
    if train_rows.is_empty() {
        // (Before the columns are fitted, which would blame them.)
        return Err(Error::setting(
            "val-fraction",
            val_fraction,
            format!(
                "leaves no training examples of the {} rows left after the test split",
                loaded.train.len()
            ),
        ));
    }
    let columns = Columns::fit(&src.table, &src.targets, &train_rows, &src.overrides)?;
    let (train, _) = encode_part(&columns, &src.table, &train_rows, &train)?;
    let (val, val_unseen) = match val {
        Some(v) => {
            let (d, u) = encode_part(&columns, &src.table, &rows(&held), &v)?;
            (Some(d), u)
        }
        None => (None, Vec::new()),
    };
    let (test, test_unseen) = match &loaded.test {
        Some(t) => {
            let table = src.test_table.as_ref().unwrap_or(&src.table);
            let (d, u) = encode_part(&columns, table, &src.test_rows, t)?;
            (Some(d), u)
        }
        None => (None, Vec::new()),
    };
    let lines = |table: &Table, rows: &[usize]| {
        let lines = rows.iter().map(|&i| table.lines[i]).collect();
        (table.path.clone(), lines)
    };
    let val_lines = lines(&src.table, &rows(&held));
    let test_lines = lines(
        src.test_table.as_ref().unwrap_or(&src.table),
        &src.test_rows,
    );
    let pixel_like = pixel_like(&train, &columns.standardized_mask());
    Ok(Prepared {
        train,
        val,
        test,
        report: Some(DataReport {
            pixel_like,
            columns,
            dropped_target_rows: src.dropped_rows,
            test_dropped_target_rows: src.test_dropped_rows,
            val_unseen,
            test_unseen,
            header_note: src.header_note.clone(),
            val_lines,
            test_lines,
        }),
    })
}

/// A regression target with one value on every training row is an error: there is nothing to
/// learn, and R² is undefined.
fn constant_regression_target(
    table: &Table,
    targets: &[usize],
    tv: &csvfile::TargetValues,
) -> Result<()> {
    let downhill_core::data::Targets::Values { data, cols } = &tv.targets else {
        return Ok(());
    };
    for (k, &j) in targets.iter().enumerate() {
        let first = data[k];
        if data.iter().skip(k).step_by(*cols).all(|&v| v == first) {
            // The cells may differ where float32 cannot tell them apart (1e9 and 1e9 + 1).
            let (lo, hi) = tv
                .rows
                .iter()
                .filter_map(|&i| table.cell(i, j).number())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            if lo < hi {
                let a = first.abs();
                let step = f64::from(f32::from_bits(a.to_bits() + 1)) - f64::from(a);
                return Err(table.error(
                    table.column(j),
                    format!(
                        "the regression target {} varies only from {lo} to {hi}, less than \
                         float32 (which downhill trains in) resolves at that size (steps of \
                         {step}): every row reads as {first}. Subtract an offset from the \
                         column (e.g. {lo}) or change its unit",
                        table.names[j]
                    ),
                ));
            }
            return Err(table.error(
                table.column(j),
                format!(
                    "the regression target {} is {first} on every row; there is nothing to learn. \
                     Check that --target names the column to predict",
                    table.names[j]
                ),
            ));
        }
    }
    Ok(())
}
