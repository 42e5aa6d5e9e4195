//! The report of a run: the figures on each data set ([`Figures`], [`Decisions`]), what data
//! it used ([`DataSummary`]), `summary.json` ([`Summary`]), why training stopped, the advice
//! after divergence, and the pictures.

use std::path::{Path, PathBuf};

use crate::data::columns::TargetScaling;
use crate::data::source;
use crate::data::{Dataset, Targets, Task};
use crate::error::Result;
use crate::lr_find::LrFindConfig;
use crate::metrics::{self, Report};
use crate::network::Network;
use crate::rng::Rng;
use crate::settings::Settings;
use crate::train::{self, EpochMetrics, StopReason};

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
    #[serde(flatten)]
    pub decisions: Decisions,
    /// A regression whose targets do not vary in this set: why `r2` is NaN (`null` in JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r2_undefined: Option<String>,
}

/// A classifier's figures beyond accuracy: macro-F1, and for two classes the ROC-AUC (or why
/// it is undefined).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Decisions {
    /// Classification: the mean of the per-class F1 scores (see [`crate::metrics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_f1: Option<f64>,
    /// Two classes (cross-entropy with 2 outputs, or BCE with one): the area under the ROC curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Two classes but `roc_auc` absent: why (the set holds examples of one class only, so the
    /// area under the ROC curve is undefined — scikit-learn raises an error there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc_undefined: Option<String>,
}

impl Decisions {
    /// The figures, with the ROC-AUC's absence explained where the task has `two_classes`.
    pub(super) fn new(macro_f1: Option<f64>, roc_auc: Option<f64>, two_classes: bool) -> Decisions {
        let undefined = two_classes && roc_auc.is_none();
        Decisions {
            macro_f1,
            roc_auc,
            roc_auc_undefined: undefined.then(|| ROC_AUC_UNDEFINED.to_string()),
        }
    }
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
    /// A CSV's columns: role, type, categories, missing counts, dropped rows, unseen categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<source::DataReport>,
    /// Regression targets' training mean and standard deviation (the loss is on that scale;
    /// RMSE and R² are in the original units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_scaling: Option<TargetScaling>,
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
    /// What ended training: `max-epochs`, `gradient-tolerance`, `early-stopping` or
    /// `interrupted` (so that `--resume` can tell a finished run from one to continue).
    pub stopped_by: &'static str,
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
    /// Training was interrupted (Ctrl-C, SIGTERM): the model holds the weights so far, and
    /// `downhill train --resume <folder>` continues from the checkpoint.
    pub interrupted: bool,
    /// The run was interrupted in a folder that held a finished run: that run was left as it
    /// was, and this one's files (model, checkpoint, summary) are in `DIR/unfinished/`, where
    /// `--resume DIR` continues it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub kept_unfinished: bool,
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

/// The loss and the task's figures of `net` on `d` (RMSE and R² in the targets' original
/// units), with the report behind them.
pub(super) fn figures(
    net: &Network<f32>,
    d: &Dataset,
    loss: crate::Loss,
    target_scaling: Option<&TargetScaling>,
) -> Result<(Figures, Report)> {
    let e = train::evaluate(net, d, loss)?;
    let r = report_in_units(net, d, target_scaling, loss);
    let bce = loss == crate::Loss::Bce;
    let (rmse, r2) = match &r {
        // BCE's outputs are logits of 0/1 targets: their RMSE and R² mean nothing.
        Report::Regression(_) if bce => (None, None),
        // An undefined R² is NaN here and `null` in JSON, beside `r2_undefined` saying why.
        Report::Regression(g) => (Some(g.rmse), Some(g.r2)),
        Report::Classes(_) => (None, None),
    };
    let (macro_f1, roc_auc) = match &r {
        Report::Classes(c) => (Some(c.macro_f1), c.roc_auc),
        Report::Regression(_) if bce => metrics::bce_binary(net, d),
        Report::Regression(_) => (None, None),
    };
    let two_classes = match &r {
        Report::Classes(c) => c.confusion.len() == 2,
        Report::Regression(_) => bce && d.n_outputs() == 1 && d.hard_targets(),
    };
    let r2_undefined = match &r {
        Report::Regression(g) if !bce => g.r2_undefined.clone(),
        _ => None,
    };
    let figures = Figures {
        loss: e.loss,
        accuracy: e.accuracy,
        rmse,
        r2,
        examples: d.len(),
        decisions: Decisions::new(macro_f1, roc_auc, two_classes),
        r2_undefined,
    };
    Ok((figures, r))
}

/// Advice after divergence that names a learning rate the tool has tested: the range test
/// (`downhill lr-find`) from the weights the run started from, on the same data, suggests a
/// rate (at most a tenth of the one that diverged); one epoch at it, from the same weights,
/// must train without diverging and lower the training loss — else a tenth of it is tried, up
/// to three times. `None` if no rate passes.
pub(super) fn tested_advice(
    start: &Network<f32>,
    data: &Dataset,
    optimizer: &crate::optim::OptimizerConfig,
    cfg: &train::TrainConfig,
    diverged_lr: f64,
    rng: &Rng,
) -> Option<String> {
    let found = crate::lr_find::lr_find(
        &mut start.clone(),
        data,
        optimizer,
        cfg,
        &LrFindConfig::default(),
        rng,
    )
    .ok()?;
    // Three significant digits: the rate tested is the rate printed.
    let round = |v: f64| format!("{v:.2e}").parse::<f64>().unwrap_or(v);
    let mut lr = round(found.suggestion.min(diverged_lr / 10.0));
    let one = train::TrainConfig {
        epochs: 1,
        patience: None,
        grad_tol: None,
        ..cfg.clone()
    };
    for _ in 0..4 {
        let mut net = start.clone();
        let before = train::evaluate(&net, data, cfg.loss).ok()?.loss;
        let ok = train::train(
            &mut net,
            data,
            None,
            &optimizer.with_lr(lr),
            &crate::optim::Schedule::default(),
            &one,
            &mut rng.clone(),
            &mut train::NoObserver,
        )
        .is_ok_and(|_| {
            train::evaluate(&net, data, cfg.loss)
                .is_ok_and(|e| e.loss.is_finite() && e.loss < before)
        });
        if ok {
            return Some(format!(
                "use a smaller one: try --lr {} (the learning-rate range test from the run's starting \
                 weights suggests {} ({}), and one epoch at --lr {} from those weights trained \
                 without diverging and lowered the training loss)",
                crate::error::short(lr),
                crate::error::short(round(found.suggestion)),
                found.rule,
                crate::error::short(lr)
            ));
        }
        lr = round(lr / 10.0);
    }
    None
}

/// Why a two-class report has no ROC-AUC.
pub const ROC_AUC_UNDEFINED: &str = "the set holds examples of one class only";

/// Why training stopped, and — where the weights kept are not the last epoch's and the reason
/// does not already say so — which epoch's weights the model holds.
pub(super) fn stop_text(
    stop: &StopReason,
    cfg: &train::TrainConfig,
    report: &train::TrainReport,
) -> String {
    let epochs = cfg.epochs;
    let restored = |text: String| {
        if report.best_epoch < report.history.len() {
            format!("{text}; weights of epoch {} restored", report.best_epoch)
        } else {
            text
        }
    };
    match stop {
        StopReason::Interrupted { .. } => format!("{stop} (of {epochs})"),
        StopReason::MaxEpochs => restored(format!("all {epochs} epochs done")),
        StopReason::EarlyStopping { best_epoch } => format!(
            "early stop: validation {} did not improve for {} epochs; weights of epoch {best_epoch} restored",
            match cfg.monitor {
                train::Monitor::Loss => "loss",
                train::Monitor::Accuracy => "accuracy",
            },
            cfg.patience.unwrap_or(0)
        ),
        other => restored(other.to_string()),
    }
}

pub(super) fn plot_run(
    dir: &Path,
    history: &[EpochMetrics],
    test: Option<&Report>,
    names: Option<&[String]>,
) -> Result<()> {
    crate::plot::curves(&dir.join("curves.svg"), history)?;
    if let Some(Report::Classes(c)) = test
        && c.confusion.len() <= crate::plot::MAX_CONFUSION_CLASSES
    {
        let names: Vec<String> = names
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| (0..c.confusion.len()).map(|i| i.to_string()).collect());
        crate::plot::confusion(&dir.join("confusion.svg"), &c.confusion, &names)?;
    }
    Ok(())
}

/// The report in the targets' original units: with a target scaling, predictions and targets
/// are mapped back (ŷ = output·std + mean) before RMSE and R²; otherwise [`metrics::report`].
pub fn report_in_units(
    net: &Network<f32>,
    data: &Dataset,
    scaling: Option<&TargetScaling>,
    loss: crate::Loss,
) -> Report {
    match (scaling, data.targets()) {
        // BCE's outputs are logits: its figures are those of the probabilities σ(z) against
        // the 0/1 targets (the RMSE is then the root of the Brier score).
        (_, Targets::Values { data: y, cols }) if loss == crate::Loss::Bce => {
            let p: Vec<f32> = metrics::outputs(net, data)
                .iter()
                .map(|&z| 1.0 / (1.0 + (-z).exp()))
                .collect();
            Report::Regression(metrics::regression(&p, y, *cols))
        }
        (Some(t), Targets::Values { data: y, cols }) => {
            let mut z = metrics::outputs(net, data);
            t.unscale(&mut z);
            // The targets as read: unscaling the scaled f32 targets loses what fell below
            // float32's resolution of the scaled mean (one outlier of 10³⁰ flattened the rest).
            let y = match data.targets_in_units() {
                Some(u) => u.to_vec(),
                None => {
                    let mut y = y.clone();
                    t.unscale(&mut y);
                    y
                }
            };
            Report::Regression(metrics::regression(&z, &y, *cols))
        }
        _ => metrics::report(net, data),
    }
}
