//! Using a saved model: the data it is evaluated or predicts on, read with its column map
//! (`eval_data*`), `downhill eval` ([`evaluate`]), `downhill predict` ([`predict_csv`]) and the
//! checks that its outputs are finite.

use std::path::{Path, PathBuf};

use rand::SeedableRng;

use crate::data::columns::{Columns, Unseen};
use crate::data::csv::CsvOptions;
use crate::data::source::{self, SourceOptions};
use crate::data::{Dataset, Features, Targets, Task};
use crate::error::{Error, Result};
use crate::io::{self, ModelMeta};
use crate::metrics::{self, Report};
use crate::rng::Rng;
use crate::settings::Settings;
use crate::train;

use super::data::bce_values_in_range;
use super::job::check_report_memory;
use super::summary::{Decisions, report_in_units};

/// What reading an evaluation or prediction file met.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RowNotes {
    /// Rows dropped because their target was missing (eval).
    pub dropped_rows: usize,
    /// Missing feature cells filled in with the training median or most frequent value.
    pub imputed_cells: usize,
    /// Categories not seen in training (encoded as all zeros), per column.
    pub unseen: Vec<Unseen>,
    /// The model holds the weights of an interrupted run (predict says so on stderr).
    #[serde(skip)]
    pub interrupted_model: bool,
    /// The examples include the model's own training examples: the data it was trained on,
    /// with `--test-fraction 0`, so there is no held-out part to evaluate on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub includes_training: bool,
    /// Each example's line in its file (a CSV's; empty for images), for messages.
    #[serde(skip)]
    pub lines: Vec<u64>,
}

impl RowNotes {
    /// One line per note, for stderr.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = crate::data::csv::dropped_note(self.dropped_rows, "rows")
            .into_iter()
            .collect();
        if self.imputed_cells > 0 {
            out.push(format!(
                "filled {} missing cells with the training median / most frequent value",
                self.imputed_cells
            ));
        }
        out.extend(self.unseen.iter().map(Unseen::note));
        if self.includes_training {
            out.push(
                "note: the model was trained on this data with --test-fraction 0: there is no \
                 held-out part, so these figures are on every example, its training examples \
                 included"
                    .into(),
            );
        }
        out
    }
}

/// The column map of a model: its recorded one, or for a model from before columns were recorded
/// (format version 1) every feature numeric, matched by name where the target's name is known (or
/// not needed: `predict`, which then ignores other columns, as version 1 did), else by position.
fn model_columns(model: &io::Model, recorded: &Settings, predict: bool) -> Columns {
    if let Some(c) = &model.meta.columns {
        return c.clone();
    }
    let inputs = model.meta.inputs;
    let named = model
        .meta
        .feature_names
        .clone()
        .filter(|n| n.len() == inputs && !n.iter().all(|x| x.starts_with("column ")));
    let spec: Vec<String> = recorded
        .target
        .as_deref()
        .map(|t| t.split(',').map(|p| p.trim().to_string()).collect())
        .unwrap_or_default();
    let target_names = model.meta.target_names.clone().or_else(|| {
        (!spec.is_empty() && spec.iter().all(|p| p.parse::<usize>().is_err())).then(|| spec.clone())
    });
    let k = target_names.as_ref().map_or(spec.len().max(1), Vec::len);
    let positions: Vec<usize> =
        if spec.iter().all(|p| p.parse::<usize>().is_ok()) && !spec.is_empty() {
            spec.iter().map(|p| p.parse().expect("checked")).collect()
        } else {
            (inputs..inputs + k).collect()
        };
    let by_name = named.is_some() && (target_names.is_some() || predict);
    let features = match named.filter(|_| by_name) {
        Some(n) => n,
        None => (0..inputs + k)
            .filter(|j| !positions.contains(j))
            .map(|j| format!("column {j}"))
            .collect(),
    };
    let targets = match target_names.filter(|_| by_name) {
        Some(t) => t,
        None => positions.iter().map(|j| format!("column {j}")).collect(),
    };
    let mut c = Columns::legacy(&features, targets, positions, by_name);
    c.lenient = predict;
    c
}

/// The names a model knows (its columns and targets), to recognise a header row.
fn known_names(c: &Columns) -> Vec<String> {
    c.columns
        .iter()
        .map(|c| c.name.clone())
        .chain(c.targets.iter().cloned())
        .collect()
}

/// The data a saved model is evaluated on for a data specification (see [`evaluate`]), with the
/// model's normalisation applied.
pub fn eval_data(model: &io::Model, spec: &str) -> Result<Dataset> {
    Ok(eval_data_noted(model, spec)?.0)
}

/// [`eval_data`], with what reading the file met. A CSV's columns are matched to the model's by
/// header name (by position only when a file has no header), encoded with the model's column
/// map, and its regression targets standardised as in training.
pub fn eval_data_noted(model: &io::Model, spec: &str) -> Result<(Dataset, RowNotes)> {
    let recorded: Settings =
        serde_json::from_value(model.meta.settings.clone()).unwrap_or_default();
    let task = if model.meta.loss.takes_classes() {
        Task::Classify
    } else {
        Task::Regress
    };
    let is_csv = !matches!(spec, "digits" | "fashion-mnist") && !Path::new(spec).is_dir();
    let shape_error = |n: usize| {
        Error::shape(
            format!("{spec}: features per example vs. the model's inputs"),
            model.meta.inputs,
            n,
        )
    };
    if is_csv {
        let columns = model_columns(model, &recorded, false);
        let known = known_names(&columns);
        let table = crate::data::csv::read_table(
            Path::new(spec),
            recorded.header,
            Some(&known),
            &columns.as_text(),
        )?;
        let (map, tcols) = columns.locate(&table, true)?;
        let classes = model
            .meta
            .class_names
            .clone()
            .filter(|_| task == Task::Classify);
        let tv = crate::data::csv::read_targets(&table, &tcols, Some(task), classes.as_deref())?;
        if model.meta.loss == crate::Loss::Bce
            && let Targets::Values { data: y, cols } = &tv.targets
        {
            bce_values_in_range(&table, y, *cols, &tv.rows, |t| tcols[t])?;
        }
        let enc = columns.encode(&table, &map, &tv.rows)?;
        if enc.n_features != model.meta.inputs {
            return Err(shape_error(enc.n_features));
        }
        let mut data = Dataset::new(Features::F32(enc.x), enc.n_features, tv.targets)?;
        data.class_names = classes;
        data.set_normalizer(model.meta.normalizer.clone())?;
        if let Some(t) = &model.meta.target_scaling {
            if data.n_outputs() != t.mean.len() {
                return Err(Error::shape(
                    format!("{spec}: target columns vs. the model's outputs"),
                    t.mean.len(),
                    data.n_outputs(),
                ));
            }
            t.apply(&mut data);
        }
        let notes = RowNotes {
            dropped_rows: tv.dropped,
            imputed_cells: enc.imputed,
            unseen: enc.unseen,
            interrupted_model: false,
            includes_training: false,
            lines: tv.rows.iter().map(|&i| table.lines[i]).collect(),
        };
        return Ok((data, notes));
    }
    let opts = SourceOptions {
        test: None,
        test_fraction: recorded.test_fraction,
        // (Images: the table flags a run may have recorded have nothing to act on.)
        csv: CsvOptions {
            task: Some(task),
            ..Default::default()
        },
    };
    let mut rng = Rng::seed_from_u64(recorded.seed);
    let loaded = source::load(spec, &opts, &mut rng)?;
    let includes_training = loaded.test.is_none() && recorded.data == spec;
    let mut data = loaded.test.unwrap_or(loaded.train);
    data.set_normalizer(model.meta.normalizer.clone())
        .map_err(|_| shape_error(data.n_features()))?;
    let notes = RowNotes {
        includes_training,
        ..RowNotes::default()
    };
    Ok((data, notes))
}

/// What `downhill eval` reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvalSummary {
    pub model: PathBuf,
    pub data: String,
    pub examples: usize,
    pub loss: f64,
    #[serde(flatten)]
    pub report: Report,
    pub class_names: Option<Vec<String>>,
    /// What reading the file met (dropped rows, filled cells, unseen categories).
    pub notes: RowNotes,
    /// A BCE model (0/1 targets): the figures of its decisions σ(z) > ½ — accuracy, macro-F1
    /// and, with one output, ROC-AUC (or why it is undefined). `report` then holds RMSE and R²
    /// of the logits against the 0/1 targets, which mean little.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(flatten)]
    pub decisions: Decisions,
    /// The model holds the weights of a run that was interrupted (Ctrl-C, SIGTERM), not a
    /// finished run's.
    pub interrupted: bool,
}

/// Evaluates a saved model on a data specification: the test set of `digits` (the same seeded
/// hold-out as training, from the model's recorded settings), of `fashion-mnist` or of an IDX
/// folder; every row of a CSV file.
pub fn evaluate(model_path: &Path, spec: &str) -> Result<EvalSummary> {
    let model = io::load(model_path)?;
    let (data, notes) = eval_data_noted(&model, spec)?;
    check_report_memory(data.len(), model.net.outputs())?;
    let e = check_model_on(model_path, &model, (spec, &data, &notes.lines))?;
    let bce = model.meta.loss == crate::Loss::Bce;
    let (macro_f1, roc_auc) = if bce {
        metrics::bce_binary(&model.net, &data)
    } else {
        (None, None)
    };
    Ok(EvalSummary {
        model: model_path.to_path_buf(),
        data: spec.to_string(),
        examples: data.len(),
        loss: e.loss,
        report: report_in_units(
            &model.net,
            &data,
            model.meta.target_scaling.as_ref(),
            model.meta.loss,
        ),
        class_names: model.meta.class_names.clone(),
        notes,
        accuracy: e.accuracy.filter(|_| bce),
        decisions: Decisions::new(
            macro_f1,
            roc_auc,
            bce && model.net.outputs() == 1 && data.hard_targets(),
        ),
        interrupted: model.meta.interrupted,
    })
}

/// Beyond this many standard deviations from the training mean a normalised input's square
/// overflows float32 (√f32::MAX ≈ 1.8·10¹⁹); training rows cannot be there (at most √n).
pub const FAR_INPUT: f32 = 1.844_674_3e19;

/// Example `i`'s feature of `data` farthest out, if its normalised value is beyond
/// [`FAR_INPUT`] or not finite: (feature, stored value, normalised value).
pub(super) fn far_input(data: &Dataset, i: usize) -> Option<(usize, f64, f32)> {
    (0..data.n_features())
        .map(|j| (j, data.raw(i, j), data.normalised(i, j)))
        .filter(|(_, _, z)| z.is_nan() || z.abs() > FAR_INPUT)
        .max_by(|a, b| a.2.abs().total_cmp(&b.2.abs()))
}

/// The error for example `i` of `data` (read from `file`, its lines `lines`), whose feature
/// `j` (named by `names`) is `v` as read and `z` normalised, beyond [`FAR_INPUT`].
pub(super) fn far_input_error(
    (file, lines): (&Path, &[u64]),
    names: Option<&[String]>,
    i: usize,
    (j, v, z): (usize, f64, f32),
    what: &str,
) -> Error {
    let column = names
        .and_then(|n| n.get(j))
        .map_or_else(|| format!("feature {}", j + 1), |n| format!("column {n}"));
    let location = match lines.get(i) {
        Some(l) => format!("line {l}, {column}"),
        None => format!("example {}, {column}", i + 1),
    };
    Error::Data {
        path: file.to_path_buf(),
        location,
        message: format!(
            "{:e} is {:.2e} standard deviations from the training rows' mean, beyond 1.8e19 \
             (the square root of float32's largest number), where float32 arithmetic on it \
             overflows; {what}",
            v as f32, z
        ),
    }
}

/// Refuses outputs `z` of `model` on `data` (read from `spec`, its lines `lines`) that are not
/// finite, blaming the input or the model as [`check_model_on`] says.
fn finite_outputs(
    model_path: &Path,
    model: &io::Model,
    (spec, data, lines): (&str, &Dataset, &[u64]),
    z: &[f32],
) -> Result<()> {
    let Some(i) = z.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    let row = i / model.net.outputs().max(1);
    if let Some(far) = far_input(data, row) {
        // (The cell is far by the normaliser's statistics: an edited normaliser can be to blame.)
        let (shift, scale) = (
            data.normalizer().shift[far.0],
            data.normalizer().scale[far.0],
        );
        return Err(far_input_error(
            (Path::new(spec), lines),
            model.meta.feature_names.as_deref(),
            row,
            far,
            &format!(
                "the model's outputs on it overflow float32: fix the cell or drop the row (or, \
                 if {} was edited, its normalizer: shift {shift:e}, scale {scale:e})",
                model_path.display()
            ),
        ));
    }
    Err(Error::Data {
        path: model_path.to_path_buf(),
        location: "outputs".into(),
        message: format!(
            "the output for example {} of {spec} is {}: the model's weights or its \
             normalizer's statistics overflow float32 (was the file edited?)",
            row + 1,
            z[i]
        ),
    })
}

/// Eval's checks of a saved model on data read from `spec` (each example's file line in
/// `lines`), shared with `landscape --model`: the loss and every output finite, also in the
/// target's units. A non-finite output is blamed on the input when one of its example's
/// normalised features is beyond [`FAR_INPUT`] (naming its line and column), else on the
/// model's weights or statistics (a model file edited by hand), which would otherwise be
/// reported as infinite figures (or drawn) with success.
pub fn check_model_on(
    model_path: &Path,
    model: &io::Model,
    (spec, data, lines): (&str, &Dataset, &[u64]),
) -> Result<train::Evaluation> {
    let e = train::evaluate(&model.net, data, model.meta.loss)?;
    let check = |z: &[f32]| finite_outputs(model_path, model, (spec, data, lines), z);
    let mut z = metrics::outputs(&model.net, data);
    if !e.loss.is_finite() {
        check(&z)?;
        return Err(Error::Data {
            path: model_path.to_path_buf(),
            location: "loss".into(),
            message: format!(
                "the loss on {spec} is {}, though every output is finite (a target far out of \
                 the range of float32?)",
                e.loss
            ),
        });
    }
    check(&z)?;
    // Outputs in the target's units: finite logits can still overflow there (an edited std).
    if let Some(t) = &model.meta.target_scaling {
        t.unscale(&mut z);
        check(&z)?;
    }
    Ok(e)
}

/// Predictions of a saved model for the rows of a CSV of features, as CSV text: a header, then
/// one row per input — the predicted class (and with `proba` each class's softmax probability,
/// or sigmoid for BCE), or the predicted values for regression.
pub fn predict_csv(model_path: &Path, input: &Path, proba: bool) -> Result<String> {
    Ok(predict_csv_noted(model_path, input, proba)?.0)
}

/// [`predict_csv`], with what reading the file met. Columns are matched to the model's by header
/// name (by position only when a file has no header; the target columns may be there or not) and
/// encoded with the model's column map; regression outputs are in the target's original units.
pub fn predict_csv_noted(
    model_path: &Path,
    input: &Path,
    proba: bool,
) -> Result<(String, RowNotes)> {
    let model = io::load(model_path)?;
    if proba && !model.meta.loss.takes_classes() && model.meta.loss != crate::Loss::Bce {
        return Err(Error::setting(
            "proba",
            "true",
            format!(
                "{} is a regression model ({:?} loss): its outputs are values, not probabilities",
                model_path.display(),
                model.meta.loss
            ),
        ));
    }
    let (data, notes) = prediction_input(&model, input)?;
    let mut z = metrics::outputs(&model.net, &data);
    if let Some(t) = &model.meta.target_scaling {
        t.unscale(&mut z);
    }
    let name = input.display().to_string();
    finite_outputs(model_path, &model, (&name, &data, &notes.lines), &z)?;
    let k = model.net.outputs();
    Ok((predictions_csv(&model.meta, &z, k, proba), notes))
}

/// The rows of the CSV `input`, encoded and normalised as the model's training file was (with
/// zeros for targets), and what reading them met.
fn prediction_input(model: &io::Model, input: &Path) -> Result<(Dataset, RowNotes)> {
    let meta = &model.meta;
    let recorded: Settings = serde_json::from_value(meta.settings.clone()).unwrap_or_default();
    let columns = model_columns(model, &recorded, true);
    // A model trained on a header-less file reads header-less input.
    let header = if meta.columns.is_some() && !columns.has_header {
        Some(false)
    } else {
        // A header said at training (`--header`, e.g. of numbers) is said here too.
        recorded.header.filter(|&h| h && columns.has_header)
    };
    let table = crate::data::csv::read_table(
        input,
        header,
        Some(&known_names(&columns)),
        &columns.as_text(),
    )?;
    let (map, _) = columns.locate(&table, false)?;
    let rows: Vec<usize> = (0..table.len()).collect();
    let enc = columns.encode(&table, &map, &rows)?;
    if enc.n_features != meta.inputs {
        return Err(Error::shape(
            format!(
                "{}: features per example vs. the model's inputs",
                input.display()
            ),
            meta.inputs,
            enc.n_features,
        ));
    }
    let notes = RowNotes {
        dropped_rows: 0,
        imputed_cells: enc.imputed,
        unseen: enc.unseen,
        interrupted_model: meta.interrupted,
        includes_training: false,
        lines: rows.iter().map(|&i| table.lines[i]).collect(),
    };
    let (n, k) = (rows.len(), model.net.outputs());
    let mut data = Dataset::regression(enc.x, meta.inputs, vec![0.0; n * k], k)?;
    data.set_normalizer(meta.normalizer.clone())?;
    Ok((data, notes))
}

/// The model's outputs `z` (`k` a row, regression outputs in the targets' units) as CSV: for
/// cross-entropy the class (and with `proba` its softmax probabilities), for BCE each output's
/// 0/1 class (and its sigmoid probability), for MSE the values.
fn predictions_csv(meta: &ModelMeta, z: &[f32], k: usize, proba: bool) -> String {
    // The output columns' names (BCE and MSE): the targets' names, or `output j`.
    let cols: Vec<String> = meta
        .target_names
        .clone()
        .unwrap_or_else(|| (0..k).map(|i| format!("output {i}")).collect());
    let names: Vec<String> = meta
        .class_names
        .clone()
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
    type Fields<'a> = Box<dyn Fn(&[f32]) -> Vec<String> + 'a>;
    let (header, fields): (Vec<String>, Fields) = match meta.loss {
        crate::Loss::CrossEntropy => {
            let mut header = vec!["prediction".to_string()];
            if proba {
                header.extend(names.iter().map(|c| csv_field(&format!("p_{c}"))));
            }
            (header, Box::new(|row| class_fields(row, proba, &names)))
        }
        crate::Loss::Bce => {
            let header = cols.iter().flat_map(|c| {
                if proba {
                    vec![csv_field(c), csv_field(&format!("p_{c}"))]
                } else {
                    vec![csv_field(c)]
                }
            });
            (header.collect(), Box::new(|row| binary_fields(row, proba)))
        }
        crate::Loss::Mse => (
            cols.iter().map(|c| csv_field(c)).collect(),
            Box::new(|row| row.iter().map(f32::to_string).collect()),
        ),
    };
    let mut out = header.join(",") + "\n";
    for row in z.chunks_exact(k) {
        out.push_str(&fields(row).join(","));
        out.push('\n');
    }
    out
}

/// One row's prediction under cross-entropy: the class named in `names` with the largest
/// output, and with `proba` the softmax probabilities.
fn class_fields(row: &[f32], proba: bool, names: &[String]) -> Vec<String> {
    let mut fields = vec![csv_field(&names[crate::loss::argmax(row)])];
    if proba {
        let mut p = vec![0.0f32; row.len()];
        crate::loss::softmax_into(row, &mut p);
        fields.extend(p.iter().map(|v| v.to_string()));
    }
    fields
}

/// One row's predictions under BCE: each output's class (1 where the logit is positive), and
/// with `proba` its sigmoid probability.
fn binary_fields(row: &[f32], proba: bool) -> Vec<String> {
    row.iter()
        .flat_map(|&v| {
            let class = if v > 0.0 { "1" } else { "0" }.to_string();
            if proba {
                vec![class, crate::loss::sigmoid(v).to_string()]
            } else {
                vec![class]
            }
        })
        .collect()
}

/// A CSV field: quoted (with quotes doubled) if it holds a comma, a quote or a newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
