//! A run's data ([`RunData`]): loaded, split, checked and scaled by the training part's
//! statistics.

use std::path::Path;
use std::time::Instant;

use crate::data::columns::TargetScaling;
use crate::data::csv::CsvOptions;
use crate::data::source::{self, SourceOptions};
use crate::data::{Dataset, Normalizer, Targets, Task};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::settings::{DataShape, Settings};
use crate::train::Observer;

use super::apply::{far_input, far_input_error};
use super::summary::DataSummary;

/// A run's data: loaded, split into training, validation and test parts, with the features
/// normalised and regression targets standardised by the training part's statistics.
pub(super) struct RunData {
    name: String,
    pub(super) task: Task,
    pub(super) loss: crate::Loss,
    pub(super) train: Dataset,
    pub(super) val: Option<Dataset>,
    pub(super) test: Option<Dataset>,
    /// What a CSV's columns became, fitted on the training rows alone (`None` for images).
    pub(super) report: Option<source::DataReport>,
    /// A table (the default recipe differs from images').
    tabular: bool,
    pub(super) normalizer: Normalizer,
    pub(super) target_scaling: Option<TargetScaling>,
    /// The features the network reads, and the regression targets' names.
    pub(super) feature_names: Option<Vec<String>>,
    pub(super) target_names: Option<Vec<String>>,
}

/// Data files from this size on are said to be read (a line before, and the time after).
pub const LONG_LOAD_BYTES: u64 = 32 << 20;

impl RunData {
    /// Loads `settings.data`, holds out the validation split (a CSV's columns are fitted on the
    /// training rows alone, see `data::columns`), reports what a CSV's columns became, and
    /// scales the parts.
    pub(super) fn load(
        settings: &Settings,
        rng: &mut Rng,
        observer: &mut dyn Observer,
    ) -> Result<RunData> {
        let opts = SourceOptions {
            test: settings.test.clone(),
            test_fraction: settings.test_fraction,
            csv: CsvOptions {
                header: settings.header,
                target: settings.target.clone(),
                task: settings.task,
                classes: None,
                columns: settings.column_overrides(),
            },
        };
        // A long load says what it reads, and then how long it took.
        let started = Instant::now();
        let bytes = std::fs::metadata(&settings.data).map_or(0, |m| m.len());
        let long = bytes >= LONG_LOAD_BYTES;
        if long {
            observer.on_data(&[format!(
                "reading {} ({:.0} MB)…",
                settings.data,
                bytes as f64 / 1e6
            )]);
        }
        let loaded = source::load(&settings.data, &opts, rng)?;
        let task = settings.task.unwrap_or(loaded.task);
        if task != loaded.task {
            return Err(Error::setting(
                "task",
                format!("{task:?}").to_lowercase(),
                format!("the data {} is read as {:?}", loaded.name, loaded.task),
            ));
        }
        let loss = settings.loss_for(task)?;
        if loss == crate::Loss::Bce {
            bce_targets_in_range(&loaded)?;
        }
        let prepared = source::prepare(&loaded, settings.val_fraction, rng)?;
        if long {
            observer.on_data(&[format!(
                "read and encoded {} rows in {:.1} s",
                prepared.train.len()
                    + prepared.val.as_ref().map_or(0, Dataset::len)
                    + prepared.test.as_ref().map_or(0, Dataset::len),
                started.elapsed().as_secs_f64()
            )]);
        }
        if let Some(r) = &prepared.report {
            observer.on_data(&r.lines());
        }
        if prepared.train.is_empty() {
            return Err(Error::setting(
                "val-fraction",
                settings.val_fraction,
                "leaves no training examples",
            ));
        }
        // A split too small to hold a row (a tiny table) is no split: no figures on 0 examples,
        // and no early stopping on an empty validation set (it restored the first epoch's weights).
        let mut data = RunData {
            name: loaded.name.clone(),
            task,
            loss,
            normalizer: Normalizer::identity(prepared.train.n_features()),
            target_scaling: None,
            // A CSV's features as fitted on the training rows (without the validation rows),
            // which the network reads; not the load-time list (fitted before the split).
            feature_names: match &prepared.report {
                Some(r) => Some(r.columns.feature_names()),
                None => loaded.feature_names.clone(),
            },
            target_names: loaded.target_names.filter(|_| task == Task::Regress),
            // A table gets the tables' recipe; pixels written as CSV (pixel-like columns, or
            // `--image-shape`) get the images' recipe, as the same pixels from IDX files do.
            tabular: loaded.csv.is_some()
                && settings.image_shape.is_none()
                && !prepared.report.as_ref().is_some_and(|r| r.pixel_like),
            train: prepared.train,
            val: prepared.val.filter(|d| !d.is_empty()),
            test: prepared.test.filter(|d| !d.is_empty()),
            report: prepared.report,
        };
        data.scale(settings.normalize.unwrap_or(match &data.report {
            // Pixels written as CSV are scaled by 1/255, as images are.
            Some(r) if r.pixel_like => crate::data::Normalization::Scale,
            _ => loaded.default_normalization,
        }))?;
        Ok(data)
    }

    /// Fits the normalisation `kind` on the training part (one-hot, boolean and indicator
    /// columns stay 0/1) and, for MSE, the standardisation of the regression targets; applies
    /// both to every part.
    fn scale(&mut self, kind: crate::data::Normalization) -> Result<()> {
        let mut normalizer = self.train.fit_normalizer(kind);
        if let Some(r) = &self.report {
            for (k, numeric) in r.columns.standardized_mask().into_iter().enumerate() {
                if !numeric {
                    normalizer.shift[k] = 0.0;
                    normalizer.scale[k] = 1.0;
                }
            }
        }
        if let Some((k, _)) = normalizer.unfit() {
            let column = self
                .feature_names
                .as_ref()
                .and_then(|n| n.get(k))
                .map_or_else(|| format!("feature {}", k + 1), |n| format!("column {n}"));
            return Err(Error::Data {
                path: self.name.clone().into(),
                location: column,
                message: "its standard deviation on the training rows is below 1/f32::MAX \
                          (2.9e-39), too small to standardise in float32 (1/σ overflows); \
                          rescale the column"
                    .into(),
            });
        }
        // Regression targets are learned standardised (MSE only; bce takes 0/1 targets).
        if self.loss == crate::Loss::Mse {
            self.target_scaling = TargetScaling::fit(&self.train);
        }
        let parts = [Some(&mut self.train), self.val.as_mut(), self.test.as_mut()];
        for d in parts.into_iter().flatten() {
            if let Some(t) = &self.target_scaling {
                t.apply(d);
            }
            d.set_normalizer(normalizer.clone())?;
        }
        self.normalizer = normalizer;
        self.check_far_inputs()
    }

    /// Refuses a validation or test example with a normalised feature beyond
    /// [`FAR_INPUT`](super::apply::FAR_INPUT) (by the training rows' statistics): the network's
    /// outputs would overflow on it, and the run stop as diverged with advice about the learning
    /// rate.
    fn check_far_inputs(&self) -> Result<()> {
        let names = self.feature_names.as_deref();
        let parts = [
            (
                self.val.as_ref(),
                self.report.as_ref().map(|r| &r.val_lines),
            ),
            (
                self.test.as_ref(),
                self.report.as_ref().map(|r| &r.test_lines),
            ),
        ];
        for (d, place) in parts {
            let Some(d) = d else { continue };
            for i in 0..d.len() {
                if let Some(far) = far_input(d, i) {
                    let (file, lines) = match place {
                        Some((f, l)) => (f.as_path(), l.as_slice()),
                        None => (Path::new(&self.name), &[][..]),
                    };
                    return Err(far_input_error(
                        (file, lines),
                        names,
                        i,
                        far,
                        "the network's outputs on it would overflow float32: fix the cell or \
                         drop the row",
                    ));
                }
            }
        }
        Ok(())
    }

    /// What the run's plan depends on in the data.
    pub(super) fn shape(&self) -> DataShape {
        DataShape {
            task: self.task,
            n: self.train.len(),
            has_validation: self.val.is_some(),
            tabular: self.tabular,
        }
    }

    /// The largest part's size.
    pub(super) fn largest(&self) -> usize {
        let parts = [Some(&self.train), self.val.as_ref(), self.test.as_ref()];
        parts
            .into_iter()
            .flatten()
            .map(Dataset::len)
            .max()
            .unwrap_or(0)
    }

    /// What `summary.json` says of the data.
    pub(super) fn summary(&self) -> DataSummary {
        DataSummary {
            name: self.name.clone(),
            task: self.task,
            features: self.train.n_features(),
            outputs: self.train.n_outputs(),
            train_examples: self.train.len(),
            val_examples: self.val.as_ref().map_or(0, Dataset::len),
            test_examples: self.test.as_ref().map_or(0, Dataset::len),
            columns: self.report.clone(),
            target_scaling: self.target_scaling.clone(),
        }
    }
}

/// A CSV's targets for the bce loss lie in [0, 1], or the error names the file, line and
/// column of the first that does not (the trainer's own check can only count examples).
fn bce_targets_in_range(loaded: &source::Loaded) -> Result<()> {
    let Some(csv) = &loaded.csv else {
        return Ok(());
    };
    let test_table = csv.test_table.as_ref().unwrap_or(&csv.table);
    let sets = [
        (Some(&loaded.train), &csv.table, &csv.train_rows),
        (loaded.test.as_ref(), test_table, &csv.test_rows),
    ];
    for (data, table, rows) in sets {
        let Some(Targets::Values { data: y, cols }) = data.map(Dataset::targets) else {
            continue;
        };
        // The test file's columns are matched by name.
        bce_values_in_range(table, y, *cols, rows, |t| {
            let name = &csv.table.names[csv.targets[t]];
            table.names.iter().position(|n| n == name).unwrap_or(0)
        })?;
    }
    Ok(())
}

/// Targets `y` (`cols` per row, read from the rows `rows` of `table`) in [0, 1] for the bce
/// loss, or the error names the file, line and column (`column(t)`: the table's column of
/// target `t`) of the first that is not.
pub(super) fn bce_values_in_range(
    table: &crate::data::columns::Table,
    y: &[f32],
    cols: usize,
    rows: &[usize],
    column: impl Fn(usize) -> usize,
) -> Result<()> {
    let Some((k, &v)) = y
        .iter()
        .enumerate()
        .find(|(_, v)| !(0.0..=1.0).contains(*v))
    else {
        return Ok(());
    };
    let Some(&row) = rows.get(k / cols.max(1)) else {
        return Ok(());
    };
    Err(table.error(
        table.at(row, column(k % cols.max(1))),
        format!(
            "the target is {v}, but the bce loss needs targets in [0, 1] (a probability, or a \
             0/1 label); for other values use --loss mse"
        ),
    ))
}
