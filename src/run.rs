//! A whole training run, as `downhill train` performs it: load and split the data, normalise it
//! with training-set statistics, build (or load) the network, train, evaluate on training,
//! validation and test sets, and leave a run folder:
//!
//! | file                | contents                                                        |
//! |---------------------|-----------------------------------------------------------------|
//! | `model.safetensors` | the trained network (see [`crate::io`])                        |
//! | `metrics.jsonl`     | one JSON object per epoch ([`EpochMetrics`]), written as it ends |
//! | `summary.json`      | [`Summary`]: final figures, settings, seed, versions, timings  |
//! | `curves.svg`        | loss and accuracy against epoch, training and validation       |
//! | `confusion.svg`     | the test set's confusion matrix (classification)               |
//!
//! The model and summary are written only after training succeeded, each atomically, so a
//! failed or interrupted run never leaves a partial model behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;

use crate::Rng;
use crate::data::csv::CsvOptions;
use crate::data::source::{self, SourceOptions};
use crate::data::{Dataset, Task, split};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::io::{self, ModelMeta};
use crate::lr_find::{LrFindConfig, LrFindResult};
use crate::metrics::{self, Report};
use crate::network::Network;
use crate::settings::Settings;
use crate::train::{self, EpochMetrics, Observer, StopReason};

/// Loss and the task's figures on one data set.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Figures {
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r2: Option<f64>,
    pub examples: usize,
    /// Classification: the mean of the per-class F1 scores (see [`crate::metrics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Two classes (cross-entropy with 2 outputs, or BCE with one): the area under the ROC curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
}

/// What data a run used.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DataSummary {
    pub name: String,
    pub task: Task,
    pub features: usize,
    pub outputs: usize,
    pub train_examples: usize,
    pub val_examples: usize,
    pub test_examples: usize,
}

/// The final figures of a run (`summary.json`, and `downhill train --json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    pub train: Figures,
    pub val: Option<Figures>,
    pub test: Option<Figures>,
    /// Epochs run.
    pub epochs: usize,
    /// The epoch whose weights were saved.
    pub best_epoch: usize,
    pub stop_reason: String,
    /// Training time of each epoch, evaluation excluded.
    pub epoch_seconds: Vec<f64>,
    /// Training examples per second over all epochs.
    pub examples_per_second: f64,
    /// Path of the saved model.
    pub model: PathBuf,
    pub seed: u64,
    pub data: DataSummary,
    pub settings: Settings,
    pub downhill_version: String,
    /// Wall time of the whole run, loading and evaluation included.
    pub total_seconds: f64,
    /// With `--class-weight balanced`: the weights of the training loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<crate::loss::ClassWeights>,
    /// With `--lr auto`: the range test that chose the learning rate (`settings.lr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_find: Option<LrFound>,
}

/// The outcome of the range test run by `--lr auto` (the curve is in `lr-find.svg`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LrFound {
    pub chosen_lr: f64,
    pub rule: String,
    pub min_lr: f64,
    pub steepest_lr: Option<f64>,
    pub steps: usize,
}

/// What [`execute`] was asked to do.
enum Mode<'a> {
    Train,
    /// Only the learning-rate range test (`downhill lr-find`).
    LrFind(&'a LrFindConfig),
}

enum Outcome {
    Trained(Box<Summary>),
    Found(LrFindResult),
}

/// The learning-rate range test of `downhill lr-find`: the data, split, normalisation and
/// network that `train` would use with these settings, then [`crate::lr_find::lr_find`].
pub fn lr_find(settings: &Settings, find: &LrFindConfig) -> Result<LrFindResult> {
    match execute_mode(settings, None, &mut train::NoObserver, Mode::LrFind(find))? {
        Outcome::Found(r) => Ok(r),
        Outcome::Trained(_) => unreachable!("lr-find mode returns the range test"),
    }
}

/// Runs a whole training job; `observer` sees every step and epoch.
pub fn train(settings: &Settings, observer: &mut dyn Observer) -> Result<Summary> {
    execute(settings, None, observer)
}

/// The checkpoint file of a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Continues the run whose folder `dir` holds a checkpoint (written with `checkpoint_every`),
/// with the settings recorded in it. The final weights are those the uninterrupted run would
/// have produced, bit for bit (same machine, same thread count).
pub fn resume(dir: &Path, observer: &mut dyn Observer) -> Result<Summary> {
    let path = dir.join(CHECKPOINT);
    let loaded = crate::checkpoint::load(&path)?;
    let mut settings: Settings =
        serde_json::from_value(loaded.settings).map_err(|e| Error::Data {
            path: path.clone(),
            location: "__metadata__.checkpoint.settings".into(),
            message: e.to_string(),
        })?;
    settings.out = Some(dir.to_path_buf());
    if loaded.meta.layers.is_empty() {
        return Err(Error::Data {
            path,
            location: "__metadata__.downhill.layers".into(),
            message: "no layers".into(),
        });
    }
    execute(
        &settings,
        Some((loaded.state, loaded.meta.layers)),
        observer,
    )
}

fn execute(
    settings: &Settings,
    resume: Option<(train::TrainState<f32>, Vec<crate::Layer>)>,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    match execute_mode(settings, resume, observer, Mode::Train)? {
        Outcome::Trained(s) => Ok(*s),
        Outcome::Found(_) => unreachable!("train mode returns a summary"),
    }
}

fn execute_mode(
    settings: &Settings,
    resume: Option<(train::TrainState<f32>, Vec<crate::Layer>)>,
    observer: &mut dyn Observer,
    mode: Mode<'_>,
) -> Result<Outcome> {
    let started = Instant::now();
    // The default recipe written out, so that the recorded settings name the optimiser and momentum.
    let resolved = settings.resolved();
    let settings = &resolved;
    let mut rng = Rng::seed_from_u64(settings.seed);
    let opts = SourceOptions {
        test: settings.test.clone(),
        test_fraction: settings.test_fraction,
        csv: CsvOptions {
            header: settings.header,
            target: settings.target.clone(),
            task: settings.task,
            classes: None,
        },
    };
    // Check the settings that need no data first, so a bad flag fails before a long load.
    let mut optimizer = settings.optimizer_config()?;
    let schedule = settings.schedule()?;
    settings.train_config(crate::Loss::CrossEntropy, 1)?;

    let loaded = source::load(&settings.data, &opts, &mut rng)?;
    let task = settings.task.unwrap_or(loaded.task);
    if task != loaded.task {
        return Err(Error::setting(
            "task",
            format!("{task:?}").to_lowercase(),
            format!("the data {} is read as {:?}", loaded.name, loaded.task),
        ));
    }
    let loss = settings.loss_for(task)?;
    let (mut train_set, mut val_set) = if settings.val_fraction > 0.0 {
        let (t, v) = split::hold_out(&loaded.train, settings.val_fraction, &mut rng);
        (t, Some(v))
    } else {
        (loaded.train.clone(), None)
    };
    let mut test_set = loaded.test.clone();
    if train_set.is_empty() {
        return Err(Error::setting(
            "val-fraction",
            settings.val_fraction,
            "leaves no training examples",
        ));
    }
    let normalizer =
        train_set.fit_normalizer(settings.normalize.unwrap_or(loaded.default_normalization));
    for d in [Some(&mut train_set), val_set.as_mut(), test_set.as_mut()]
        .into_iter()
        .flatten()
    {
        d.set_normalizer(normalizer.clone())?;
    }
    // The defaults that depend on the data (epoch rule, early stopping), written out.
    let mut sized = settings.resolved_for(train_set.len(), val_set.is_some());
    let mut cfg = sized.train_config(loss, train_set.len())?;
    sized.monitor = Some(cfg.monitor);
    let settings = &sized;
    cfg.class_weights = class_weights(settings, loss, &train_set)?;

    let mut sizes = vec![train_set.n_features()];
    sizes.extend(&settings.hidden);
    sizes.push(train_set.n_outputs());
    let init = settings
        .init_scheme
        .unwrap_or(Init::default_for(settings.activation));
    let mut net = Network::<f32>::mlp(
        &sizes,
        settings.activation,
        settings.dropout,
        init,
        &mut rng,
    )?;
    // On resume the checkpoint's weights replace these, so the --init file need not still exist.
    if let Some(path) = settings.init.as_ref().filter(|_| resume.is_none()) {
        io::load_params(path, &mut net)?;
    }

    // The learning-rate range test: alone (`lr-find`), or choosing the rate (`--lr auto`;
    // a resumed run keeps the rate recorded in its settings).
    if let Mode::LrFind(find) = mode {
        let r = crate::lr_find::lr_find(&mut net, &train_set, &optimizer, &cfg, find, &rng)?;
        return Ok(Outcome::Found(r));
    }
    let mut chosen = settings.clone();
    let found = if settings.lr_auto && resume.is_none() {
        let r = crate::lr_find::lr_find(
            &mut net,
            &train_set,
            &optimizer,
            &cfg,
            &LrFindConfig::default(),
            &rng,
        )?;
        chosen.lr = Some(r.suggestion);
        optimizer = chosen.optimizer_config()?;
        Some(r)
    } else {
        None
    };
    let settings = &chosen;
    let dir = run_dir(settings.out.as_deref())?;
    if let Some(r) = &found {
        crate::lr_find::picture(&dir.join("lr-find.svg"), r)?;
    }
    let metrics_path = dir.join("metrics.jsonl");
    let mut jsonl = std::fs::File::create(&metrics_path).map_err(|source| Error::Io {
        path: metrics_path.clone(),
        source,
    })?;
    let resume = match resume {
        Some((state, layers)) => {
            if layers != net.layers() {
                return Err(Error::shape(
                    "checkpoint architecture",
                    format!("{:?}", net.layers()),
                    format!("{layers:?}"),
                ));
            }
            // The epochs before the checkpoint, as the interrupted run wrote them.
            for m in &state.history {
                writeln!(
                    jsonl,
                    "{}",
                    serde_json::to_string(m).expect("metrics serialise")
                )
                .map_err(|source| Error::Io {
                    path: metrics_path.clone(),
                    source,
                })?;
            }
            Some(state)
        }
        None => None,
    };
    let mut meta = ModelMeta::new(&net, loss, normalizer.clone());
    meta.class_names = train_set.class_names.clone();
    meta.feature_names = loaded.feature_names.clone();
    meta.target_names = loaded
        .target_names
        .clone()
        .filter(|_| task == Task::Regress);
    meta.settings = serde_json::to_value(settings).expect("settings serialise");
    let checkpoint_path = dir.join(CHECKPOINT);
    let mut save = |state: &train::TrainState<f32>| {
        crate::checkpoint::save(&checkpoint_path, state, &meta, meta.settings.clone())
    };
    let checkpointing = settings.checkpoint_every.map(|every| train::Checkpointing {
        every,
        save: &mut save,
    });
    let mut tee = Tee {
        inner: observer,
        file: &mut jsonl,
        path: &metrics_path,
        error: None,
        snapshots: settings.snapshots.then(Vec::new),
    };
    let report = train::train_with(
        &mut net,
        &train_set,
        val_set.as_ref(),
        &optimizer,
        &schedule,
        &cfg,
        &mut rng,
        &mut tee,
        resume,
        checkpointing,
    )?;
    if let Some(e) = tee.error {
        return Err(e);
    }
    if let Some(snaps) = &tee.snapshots {
        crate::landscape::trajectory::save(&dir.join(crate::landscape::trajectory::FILE), snaps)?;
    }

    let figures = |d: &Dataset| -> Result<(Figures, Report)> {
        let e = train::evaluate(&net, d, loss)?;
        let r = metrics::report(&net, d);
        let (rmse, r2) = match &r {
            Report::Regression(g) => (Some(g.rmse), Some(g.r2)),
            Report::Classes(_) => (None, None),
        };
        let (macro_f1, roc_auc) = match &r {
            Report::Classes(c) => (Some(c.macro_f1), c.roc_auc),
            Report::Regression(_) if loss == crate::Loss::Bce => metrics::bce_binary(&net, d),
            Report::Regression(_) => (None, None),
        };
        Ok((
            Figures {
                loss: e.loss,
                accuracy: e.accuracy,
                rmse,
                r2,
                examples: d.len(),
                macro_f1,
                roc_auc,
            },
            r,
        ))
    };
    let (train_fig, _) = figures(&train_set)?;
    let val_fig = val_set.as_ref().map(figures).transpose()?.map(|f| f.0);
    let test_eval = test_set.as_ref().map(figures).transpose()?;

    let model_path = dir.join("model.safetensors");
    io::save(&model_path, &net, &meta)?;

    plot_run(
        &dir,
        &report.history,
        test_eval.as_ref().map(|t| &t.1),
        train_set.class_names.as_deref(),
    )?;
    let train_seconds: f64 = report.history.iter().map(|m| m.seconds).sum();
    let summary = Summary {
        train: train_fig,
        val: val_fig,
        test: test_eval.map(|t| t.0),
        epochs: report.history.len(),
        best_epoch: report.best_epoch,
        stop_reason: stop_text(&report.stop, cfg.epochs),
        epoch_seconds: report.history.iter().map(|m| m.seconds).collect(),
        examples_per_second: (train_set.len() * report.history.len()) as f64
            / train_seconds.max(1e-12),
        model: model_path,
        seed: settings.seed,
        data: DataSummary {
            name: loaded.name.clone(),
            task,
            features: train_set.n_features(),
            outputs: train_set.n_outputs(),
            train_examples: train_set.len(),
            val_examples: val_set.as_ref().map_or(0, Dataset::len),
            test_examples: test_set.as_ref().map_or(0, Dataset::len),
        },
        settings: settings.clone(),
        downhill_version: env!("CARGO_PKG_VERSION").to_string(),
        total_seconds: started.elapsed().as_secs_f64(),
        class_weights: cfg.class_weights.clone(),
        lr_find: found.map(|r| LrFound {
            chosen_lr: r.suggestion,
            rule: r.rule,
            min_lr: r.min_lr,
            steepest_lr: r.steepest_lr,
            steps: r.curve.len(),
        }),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    io::write_atomic(&dir.join("summary.json"), json.as_bytes())?;
    Ok(Outcome::Trained(Box::new(summary)))
}

/// The class weights `--class-weight balanced` asks for, from the training part's targets.
fn class_weights(
    settings: &Settings,
    loss: crate::Loss,
    train_set: &Dataset,
) -> Result<Option<crate::loss::ClassWeights>> {
    use crate::loss::ClassWeights;
    if settings.class_weight.as_deref() != Some("balanced") {
        return Ok(None);
    }
    let bad = |why: String| Error::setting("class-weight", "balanced", why);
    match (loss, train_set.targets()) {
        (crate::Loss::CrossEntropy, crate::data::Targets::Classes { labels, n_classes }) => {
            ClassWeights::balanced_classes(labels, *n_classes)
                .map(Some)
                .map_err(bad)
        }
        (crate::Loss::Bce, crate::data::Targets::Values { data, cols }) => {
            ClassWeights::balanced_binary(data, *cols)
                .map(Some)
                .map_err(bad)
        }
        _ => Err(bad(
            "class weights need a classification loss (cross-entropy, or bce with 0/1 targets)"
                .into(),
        )),
    }
}

fn stop_text(stop: &StopReason, epochs: usize) -> String {
    match stop {
        StopReason::MaxEpochs => format!("all {epochs} epochs done"),
        other => other.to_string(),
    }
}

fn plot_run(
    dir: &Path,
    history: &[EpochMetrics],
    test: Option<&Report>,
    names: Option<&[String]>,
) -> Result<()> {
    crate::plot::curves(&dir.join("curves.svg"), history)?;
    if let Some(Report::Classes(c)) = test {
        let names: Vec<String> = names
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| (0..c.confusion.len()).map(|i| i.to_string()).collect());
        crate::plot::confusion(&dir.join("confusion.svg"), &c.confusion, &names)?;
    }
    Ok(())
}

/// The run folder: as given, or `runs/<UTC timestamp>` (with a suffix if that exists).
fn run_dir(out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(':', "-")
                .trim_end_matches('Z')
                .to_string();
            let base = Path::new("runs").join(stamp);
            let mut dir = base.clone();
            let mut i = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{i}", base.display()));
                i += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Passes events on to the caller's observer and appends each epoch to `metrics.jsonl`.
struct Tee<'a> {
    inner: &'a mut dyn Observer,
    file: &'a mut std::fs::File,
    path: &'a Path,
    error: Option<Error>,
    /// Weight snapshots (before training and after each epoch), when the run keeps them.
    snapshots: Option<Vec<Vec<f32>>>,
}

impl Observer for Tee<'_> {
    fn on_epoch(&mut self, m: &EpochMetrics) {
        let line = serde_json::to_string(m).expect("metrics serialise");
        if let Err(source) = writeln!(self.file, "{line}")
            && self.error.is_none()
        {
            self.error = Some(Error::Io {
                path: self.path.to_path_buf(),
                source,
            });
        }
        self.inner.on_epoch(m);
    }

    fn on_start(&mut self, epochs: usize, steps_per_epoch: usize) {
        self.inner.on_start(epochs, steps_per_epoch);
    }

    fn on_step(&mut self, epoch: usize, step: usize, steps: usize, loss: f64) {
        self.inner.on_step(epoch, step, steps, loss);
    }

    fn wants_weights(&self) -> bool {
        self.snapshots.is_some() || self.inner.wants_weights()
    }

    fn on_weights(&mut self, epoch: usize, weights: &[f64]) {
        if let Some(s) = self.snapshots.as_mut() {
            s.push(weights.iter().map(|&v| v as f32).collect());
        }
        self.inner.on_weights(epoch, weights);
    }
}

/// The data a saved model is evaluated on for a data specification (see [`evaluate`]), with the
/// model's normalisation applied.
pub fn eval_data(model: &io::Model, spec: &str) -> Result<Dataset> {
    let recorded: Settings =
        serde_json::from_value(model.meta.settings.clone()).unwrap_or_default();
    let task = if model.meta.loss.takes_classes() {
        Task::Classify
    } else {
        Task::Regress
    };
    let is_csv = !matches!(spec, "digits" | "fashion-mnist") && !Path::new(spec).is_dir();
    let opts = SourceOptions {
        test: None,
        test_fraction: if is_csv {
            Some(0.0)
        } else {
            recorded.test_fraction
        },
        csv: CsvOptions {
            header: recorded.header,
            target: recorded.target.clone(),
            task: Some(task),
            classes: model
                .meta
                .class_names
                .clone()
                .filter(|_| task == Task::Classify),
        },
    };
    let mut rng = Rng::seed_from_u64(recorded.seed);
    let loaded = source::load(spec, &opts, &mut rng)?;
    let mut data = if is_csv {
        loaded.train
    } else {
        loaded.test.unwrap_or(loaded.train)
    };
    data.set_normalizer(model.meta.normalizer.clone())
        .map_err(|_| {
            Error::shape(
                format!("{spec}: features per example vs. the model's inputs"),
                model.meta.inputs,
                data.n_features(),
            )
        })?;
    Ok(data)
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
}

/// Evaluates a saved model on a data specification: the test set of `digits` (the same seeded
/// hold-out as training, from the model's recorded settings), of `fashion-mnist` or of an IDX
/// folder; every row of a CSV file.
pub fn evaluate(model_path: &Path, spec: &str) -> Result<EvalSummary> {
    let model = io::load(model_path)?;
    let data = eval_data(&model, spec)?;
    let e = train::evaluate(&model.net, &data, model.meta.loss)?;
    Ok(EvalSummary {
        model: model_path.to_path_buf(),
        data: spec.to_string(),
        examples: data.len(),
        loss: e.loss,
        report: metrics::report(&model.net, &data),
        class_names: model.meta.class_names.clone(),
    })
}

/// Predictions of a saved model for the rows of a CSV of features, as CSV text: a header, then
/// one row per input — the predicted class (and with `proba` each class's softmax probability,
/// or sigmoid for BCE), or the predicted values for regression.
pub fn predict_csv(model_path: &Path, input: &Path, proba: bool) -> Result<String> {
    let model = io::load(model_path)?;
    let meta = &model.meta;
    let (x, n) =
        crate::data::csv::load_features(input, meta.inputs, meta.feature_names.as_deref(), None)?;
    let k = model.net.outputs();
    let mut data = Dataset::regression(x, meta.inputs, vec![0.0; n * k], k)?;
    data.set_normalizer(meta.normalizer.clone())?;
    let z = metrics::outputs(&model.net, &data);
    let mut out = String::new();
    let names: Vec<String> = meta
        .class_names
        .clone()
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
    let csv_field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    match meta.loss {
        crate::Loss::CrossEntropy => {
            out.push_str("prediction");
            if proba {
                for c in &names {
                    out.push_str(&format!(",p_{}", csv_field(c)));
                }
            }
            out.push('\n');
            for row in z.chunks_exact(k) {
                out.push_str(&csv_field(&names[crate::loss::argmax(row)]));
                if proba {
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
                    for v in row {
                        out.push_str(&format!(",{}", (v - m).exp() / s));
                    }
                }
                out.push('\n');
            }
        }
        crate::Loss::Bce => {
            let cols: Vec<String> = meta
                .target_names
                .clone()
                .unwrap_or_else(|| (0..k).map(|i| format!("output {i}")).collect());
            let header: Vec<String> = cols
                .iter()
                .flat_map(|c| {
                    if proba {
                        vec![csv_field(c), format!("p_{}", csv_field(c))]
                    } else {
                        vec![csv_field(c)]
                    }
                })
                .collect();
            out.push_str(&header.join(","));
            out.push('\n');
            for row in z.chunks_exact(k) {
                let fields: Vec<String> = row
                    .iter()
                    .flat_map(|&v| {
                        let p = 1.0 / (1.0 + (-v).exp());
                        let class = if v > 0.0 { "1" } else { "0" }.to_string();
                        if proba {
                            vec![class, p.to_string()]
                        } else {
                            vec![class]
                        }
                    })
                    .collect();
                out.push_str(&fields.join(","));
                out.push('\n');
            }
        }
        crate::Loss::Mse => {
            let cols: Vec<String> = meta
                .target_names
                .clone()
                .unwrap_or_else(|| (0..k).map(|i| format!("output {i}")).collect());
            out.push_str(
                &cols
                    .iter()
                    .map(|c| csv_field(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
            for row in z.chunks_exact(k) {
                out.push_str(&row.iter().map(f32::to_string).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
        }
    }
    Ok(out)
}
