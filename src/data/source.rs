//! Resolves a data specification (`digits`, `fashion-mnist`, a folder of IDX files, a CSV file)
//! into a training set and, where there is one, a test set — the same way for every command.

use std::path::Path;

use super::csv::{self as csvfile, CsvOptions};
use super::{Dataset, Normalization, Task, digits, idx, split};
use crate::Rng;
use crate::error::{Error, Result};

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
            let c = csvfile::load(p, &opts.csv)?;
            Loaded {
                name: path.to_string(),
                task: c.task,
                train: c.data,
                test: None,
                default_normalization: Normalization::Standardize,
                feature_names: Some(c.feature_names),
                target_names: Some(c.target_names),
            }
        }
    };
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
