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
//! plus `checkpoint.safetensors` (the final training state, from which `--resume DIR --epochs N`
//! continues) and, with `--snapshots`, `trajectory.safetensors`.
//!
//! ## Run folder safety (see [`RunFolder`])
//! - A run locks its folder (`DIR/.lock`, an OS file lock released when the process ends, even
//!   when killed): a second run into the same folder fails at once instead of interleaving.
//! - A run writes everything into `DIR/unfinished/` and touches none of the folder's existing
//!   files until it has succeeded. Then it *publishes*: it writes the marker
//!   `unfinished/PUBLISH` (listing the files), removes `DIR/summary.json`, moves each new file over the old one (and
//!   removes old run files the new run does not produce), moves `summary.json` last, and removes
//!   `unfinished/`. So a folder with a `summary.json` holds files of one run only; a publish
//!   that a crash interrupted is completed by the next run that opens the folder.
//! - Temporary files of killed writes (`.downhill-*.tmp`) are removed when a run opens the folder.
//! - A killed run leaves `unfinished/checkpoint.safetensors`: `--resume DIR` continues it; a new
//!   run into that folder is refused until it is resumed or `unfinished/` is deleted.
//! - An interrupted run (Ctrl-C, SIGTERM) publishes its model so far, unless the folder holds a
//!   finished run: that run is then left as it was, and the interrupted one stays in
//!   `unfinished/` (model, checkpoint, summary) for `--resume DIR`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use rand::SeedableRng;

use crate::data::columns::{Columns, TargetScaling, Unseen};
use crate::data::csv::CsvOptions;
use crate::data::source::{self, SourceOptions};
use crate::data::{Dataset, Features, Normalizer, Targets, Task};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::io::{self, ModelMeta};
use crate::lr_find::{LrFindConfig, LrFindResult};
use crate::metrics::{self, Report};
use crate::network::Network;
use crate::rng::Rng;
use crate::settings::{DataShape, Plan, Settings};
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
    fn new(macro_f1: Option<f64>, roc_auc: Option<f64>, two_classes: bool) -> Decisions {
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

/// The learning-rate range test of `downhill lr-find`: the data, split, normalisation and
/// network that `train` would use with these settings, then [`crate::lr_find::lr_find`].
pub fn lr_find(settings: &Settings, find: &LrFindConfig) -> Result<LrFindResult> {
    let mut run = Ready::new(settings, false, &mut train::NoObserver)?;
    let (net, data, plan) = (&mut run.net, &run.data.train, &run.plan);
    crate::lr_find::lr_find(net, data, &plan.optimizer, &plan.train, find, &run.rng)
}

/// Runs a whole training job; `observer` sees every step and epoch.
pub fn train(settings: &Settings, observer: &mut dyn Observer) -> Result<Summary> {
    // The outermost folder this run creates (`--out a/b/c` with no `a`: `a`), removed again if
    // the run fails: a failed run leaves no new folder behind.
    let created = settings.out.as_deref().and_then(|d| {
        d.ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
            .last()
            .map(Path::to_path_buf)
    });
    // An existing folder without a lock file gets one; a failed run removes it again.
    let new_lock = settings
        .out
        .as_deref()
        .filter(|d| d.is_dir() && std::fs::symlink_metadata(d.join(LOCK)).is_err())
        .map(|d| d.join(LOCK));
    let runs_existed = Path::new("runs").exists();
    let result = train_in_folder(settings, observer, settings.out.is_none());
    if result.is_err() && settings.out.is_none() && !runs_existed {
        // Removed only if empty: a killed run's checkpoint stays.
        let _ = std::fs::remove_dir(Path::new("runs"));
    }
    if result.is_err()
        && let Some(out) = settings.out.as_deref()
        && !out.join(UNFINISHED).exists()
    {
        if let Some(c) = &created {
            let _ = std::fs::remove_dir_all(c);
        } else if let Some(lock) = &new_lock {
            let _ = std::fs::remove_file(lock);
        }
    }
    result
}

fn train_in_folder(
    settings: &Settings,
    observer: &mut dyn Observer,
    default_folder: bool,
) -> Result<Summary> {
    if let Some(d) = settings.out.as_deref() {
        check_foreign(d, false)?;
    }
    let folder = RunFolder::open(settings.out.as_deref())?;
    let result = train_opened(settings, &folder, observer);
    // The default folder (`runs/<UTC time>`) is always new: removed if the run fails.
    if result.is_err() && default_folder && !folder.stage.exists() {
        let _ = std::fs::remove_dir_all(&folder.dir);
    }
    result
}

fn train_opened(
    settings: &Settings,
    folder: &RunFolder,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    if folder.stage.join(CHECKPOINT).exists() {
        return Err(Error::Io {
            path: folder.stage.clone(),
            source: std::io::Error::other(format!(
                "holds the checkpoint of a run that was killed or interrupted before it finished; continue it \
                 with `downhill train --resume {}`, or delete this folder to start afresh",
                folder.dir.display()
            )),
        });
    }
    folder.clear_stage()?;
    execute(settings, folder, None, observer)
}

/// The checkpoint file of a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The checkpoint `--resume DIR` continues: a killed run's (`DIR/unfinished/`) if there is
/// one, else the one the last run published.
pub fn checkpoint_to_resume(dir: &Path) -> PathBuf {
    let staged = dir.join(UNFINISHED).join(CHECKPOINT);
    if staged.exists() {
        staged
    } else {
        dir.join(CHECKPOINT)
    }
}

/// Whether the run in `dir` has nothing left to do for `--resume` (with `--epochs` if given):
/// it ended by a stopping rule (early stopping, the gradient tolerance: more epochs would not
/// change that), or it ran all its epochs and no larger total is asked for. Then the reason,
/// for a message: the folder is left exactly as it is. A killed or interrupted run, or one
/// without a summary, is not finished.
pub fn finished_run(dir: &Path, epochs: Option<usize>) -> Option<String> {
    if dir.join(UNFINISHED).join(CHECKPOINT).exists() {
        return None;
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).ok()?).ok()?;
    if summary["interrupted"].as_bool() != Some(false) {
        return None;
    }
    let reason = summary["stop_reason"].as_str().unwrap_or("");
    let done = summary["epochs"].as_u64()? as usize;
    // Summaries of earlier versions say it only in words.
    let by = summary["stopped_by"].as_str().unwrap_or(match reason {
        r if r.starts_with("all ") => "max-epochs",
        r if r.starts_with("interrupted") => "interrupted",
        r if r.starts_with("gradient") => "gradient-tolerance",
        _ => "early-stopping",
    });
    let shown = dir.display();
    match by {
        "early-stopping" | "gradient-tolerance" => Some(format!(
            "the run in {shown} has finished ({reason}); nothing to resume, its files are unchanged"
        )),
        "max-epochs" if epochs.is_none_or(|n| n == done) => Some(format!(
            "the run in {shown} has finished all its {done} epochs; nothing to resume, its files \
             are unchanged (--resume {shown} --epochs N with N > {done} trains on)"
        )),
        _ => None,
    }
}

/// Continues the run whose folder `dir` holds a checkpoint, with the settings recorded in it —
/// for `epochs` epochs in all if given (more than the recorded run had: like calling Keras'
/// `fit` again; the schedule is then computed over the new total). The final weights are those
/// the uninterrupted run would have produced, bit for bit (same machine, same thread count).
pub fn resume(dir: &Path, epochs: Option<usize>, observer: &mut dyn Observer) -> Result<Summary> {
    check_resume_folder(dir)?;
    let folder = RunFolder::open(Some(dir))?;
    let path = checkpoint_to_resume(dir);
    let from_stage = path.starts_with(&folder.stage);
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
    let done = loaded.state.history.len();
    if let Some(n) = epochs {
        if n < done || (n == done && loaded.state.step > 0) {
            return Err(Error::setting(
                "epochs",
                n,
                format!(
                    "the run in {} has already trained {done} epochs{}; --epochs with --resume is the new total",
                    dir.display(),
                    if loaded.state.step > 0 {
                        " and part of the next"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if n > done && settings.schedule()?.depends_on_total() {
            observer.on_data(&[format!(
                "note: the {} schedule anneals to the run's last epoch: from epoch {} on it is \
                 computed over the new total of {n}, but epochs 1 to {done} followed the schedule \
                 of {done} epochs, so the weights differ from those of a run asked for {n} epochs \
                 from the start",
                settings.schedule,
                done + 1
            )]);
        }
        settings.epochs = Some(n);
    }
    // The trajectory so far, up to the checkpoint's epoch (a later snapshot may have been kept
    // before the run was killed).
    let mut snapshots = Vec::new();
    if settings.snapshots {
        let traj = if from_stage {
            &folder.stage
        } else {
            &folder.dir
        }
        .join(crate::landscape::trajectory::FILE);
        if !traj.exists() {
            return Err(Error::Io {
                path: traj,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "missing: the run keeps its training path (--snapshots), and a resumed run \
                     continues it from this file; put back the run's own file, or train again",
                ),
            });
        }
        snapshots = crate::landscape::trajectory::load(&traj, loaded.state.params.len())?;
        match loaded.trajectory {
            Some(covered) => {
                snapshots = crate::landscape::trajectory::check_covered(&traj, snapshots, covered)?
            }
            // A checkpoint of an earlier version, which recorded no hash of the path.
            None => snapshots.truncate(loaded.state.epoch + 1),
        }
    }
    if !from_stage {
        folder.clear_stage()?;
    }
    execute(
        &settings,
        &folder,
        Some((loaded.state, loaded.meta.layers, snapshots, path)),
        observer,
    )
}

/// The staging folder of a run folder (see the module docs).
pub const UNFINISHED: &str = "unfinished";
/// The marker in the staging folder that says its files are complete and being published.
pub const PUBLISH: &str = "PUBLISH";
/// The lock file of a run folder.
pub const LOCK: &str = ".lock";
/// The files a run may publish, in publishing order: `summary.json`, the mark of a consistent
/// folder, last.
pub const RUN_FILES: [&str; 8] = [
    "metrics.jsonl",
    CHECKPOINT,
    crate::landscape::trajectory::FILE,
    "model.safetensors",
    "curves.svg",
    "confusion.svg",
    "lr-find.svg",
    "summary.json",
];

/// A run folder, locked for one run, with its staging folder (see the module docs).
pub struct RunFolder {
    pub dir: PathBuf,
    pub stage: PathBuf,
    /// This run made the folder (it did not exist before).
    created: bool,
    /// The folder holds a finished run (a `summary.json` that is not an interrupted run's):
    /// an interrupted run then keeps its files in `unfinished/` instead of replacing it.
    holds_finished: bool,
    /// The folder holds a published run (finished or interrupted): an interrupted *new* run
    /// does not replace it either (a resumed one continues it, and may).
    holds_run: bool,
    _lock: std::fs::File,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RunFolder {
    /// Creates (if needed) and locks the folder, completes an interrupted publish and removes
    /// temporary files left by killed writes.
    pub fn open(out: Option<&Path>) -> Result<RunFolder> {
        let created = out.is_none_or(|d| !d.exists());
        let dir = run_dir(out)?;
        let lock_path = dir.join(LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Io {
                    path: dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "another downhill run is using this run folder (it holds the lock on .lock); \
                         wait for it to end or choose another --out",
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let mut folder = RunFolder {
            stage: dir.join(UNFINISHED),
            dir,
            created,
            holds_finished: false,
            holds_run: false,
            _lock: lock,
        };
        remove_temporaries(&folder.dir);
        remove_temporaries(&folder.stage);
        if folder.stage.join(PUBLISH).exists() {
            folder.publish_staged()?;
        } else if folder.stage.is_dir() && !folder.stage.join(CHECKPOINT).exists() {
            // A run that failed or was killed before its first checkpoint: nothing to keep.
            std::fs::remove_dir_all(&folder.stage).map_err(io_err(&folder.stage))?;
        }
        let published = std::fs::read(folder.dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        folder.holds_run = published.is_some();
        folder.holds_finished =
            published.is_some_and(|v| v["interrupted"].as_bool() == Some(false));
        Ok(folder)
    }

    /// What exiting at once (Ctrl-C with nothing to save) removes: the folder if this run made
    /// it, else the staging folder unless it holds a checkpoint to resume.
    fn leave_on_exit(&self) -> Vec<PathBuf> {
        if self.created {
            vec![self.dir.clone()]
        } else if self.stage.join(CHECKPOINT).exists() {
            Vec::new()
        } else {
            vec![self.stage.clone()]
        }
    }

    /// An empty staging folder.
    fn clear_stage(&self) -> Result<()> {
        if self.stage.exists() {
            std::fs::remove_dir_all(&self.stage).map_err(io_err(&self.stage))?;
        }
        std::fs::create_dir_all(&self.stage).map_err(io_err(&self.stage))
    }

    /// Marks the staged files complete (the marker lists them), then publishes them.
    fn publish(&self) -> Result<()> {
        let list: String = RUN_FILES
            .iter()
            .filter(|f| self.stage.join(f).exists())
            .map(|f| format!("{f}\n"))
            .collect();
        io::write_atomic(&self.stage.join(PUBLISH), list.as_bytes())?;
        self.publish_staged()
    }

    /// Moves the staged files into the folder (see the module docs): removes `summary.json`,
    /// moves each listed file, removes the previous run's files that are not listed, moves
    /// `summary.json` last. Idempotent, so that a publish a crash cut short can be completed.
    fn publish_staged(&self) -> Result<()> {
        let marker = self.stage.join(PUBLISH);
        let list = std::fs::read_to_string(&marker).map_err(io_err(&marker))?;
        let listed: Vec<&str> = list.lines().collect();
        let summary = self.dir.join("summary.json");
        if self.stage.join("summary.json").exists() && summary.exists() {
            std::fs::remove_file(&summary).map_err(io_err(&summary))?;
        }
        for name in RUN_FILES {
            let (new, old) = (self.stage.join(name), self.dir.join(name));
            if new.exists() {
                std::fs::rename(&new, &old).map_err(io_err(&old))?;
            } else if !listed.contains(&name) && old.exists() {
                // A file of the previous run that this run does not produce.
                std::fs::remove_file(&old).map_err(io_err(&old))?;
            }
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        std::fs::remove_dir_all(&self.stage).map_err(io_err(&self.stage))
    }
}

/// Refuses a `--resume DIR` that is no run folder to continue: missing, not a folder, a run
/// folder's `unfinished/` (which names the run folder to give instead), or another tool's.
pub fn check_resume_folder(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        // (`DIR/unfinished` that is gone is still named for what it was.)
        check_staging(dir, true)?;
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such run folder"),
        });
    }
    check_foreign(dir, true)?;
    // A run still starting there holds the lock before it has a checkpoint.
    if let Ok(lock) = std::fs::File::open(dir.join(LOCK))
        && let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock()
    {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another downhill run is using this run folder (it holds the lock on .lock); \
                 wait for it to end, then resume it",
            ),
        });
    }
    if !checkpoint_to_resume(dir).exists() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "holds no checkpoint to resume (neither {CHECKPOINT} nor {UNFINISHED}/{CHECKPOINT}): \
                     a run there writes its first at its first checkpoint (--checkpoint-every), \
                     and a run that is still starting, or another that failed early, has none; \
                     start a new run with --out {}",
                    dir.display()
                ),
            ),
        });
    }
    Ok(())
}

/// Refuses `DIR/unfinished` of a run folder, the run's staging folder: a run there would take
/// over DIR (its next run would call it a killed run, and resuming it would replace DIR's
/// model). `resuming`: the message names `--resume DIR`, else `--out`.
fn check_staging(dir: &Path, resuming: bool) -> Result<()> {
    if dir.file_name().is_some_and(|n| n == UNFINISHED)
        && let Some(parent) = dir.parent()
        && [LOCK, CHECKPOINT, "summary.json"]
            .iter()
            .any(|f| parent.join(f).exists())
    {
        let why = if resuming {
            format!(
                "is the staging folder of the run in {0}, not a run folder; resume that run \
                 with --resume {0} (it continues from {0}/{UNFINISHED} when a checkpoint is there)",
                parent.display()
            )
        } else {
            format!(
                "is the staging folder of the run in {}, not a run folder; choose another name \
                 for --out",
                parent.display()
            )
        };
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
        });
    }
    Ok(())
}

/// Refuses an `--out` that is not a folder, or a non-empty folder that was never a downhill run
/// folder (no downhill `summary.json`, `unfinished/` or `.lock`): publishing would replace or
/// remove another tool's files of the same names. `resuming`: a folder holding a checkpoint
/// (copied there to be continued) is one too.
fn check_foreign(dir: &Path, resuming: bool) -> Result<()> {
    let refuse = |why: &str| Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, why.to_string()),
    };
    check_staging(dir, resuming)?;
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(refuse(
            "exists and is not a folder; --out names the run folder (choose another name)",
        ));
    }
    let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    if entries.next().is_none() {
        return Ok(());
    }
    let summary = dir.join("summary.json");
    let downhill_summary = std::fs::read(&summary)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("downhill_version").is_some());
    if downhill_summary
        || dir.join(UNFINISHED).is_dir()
        || dir.join(LOCK).is_file()
        || (resuming && dir.join(CHECKPOINT).is_file())
    {
        return Ok(());
    }
    Err(refuse(if resuming {
        "is not a downhill run folder (no checkpoint.safetensors, downhill summary.json, \
         unfinished/ or .lock): --resume takes the folder a run wrote (its --out)"
    } else {
        "is not empty and is not a downhill run folder (no downhill summary.json, unfinished/ or \
         .lock); a run would replace files there: choose a new or empty folder for --out"
    }))
}

/// Removes `.downhill-*.tmp` files (left by writes a kill interrupted) from `dir`.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".downhill-") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A run to continue: the checkpoint's state, its layers, the snapshots of its path, and the
/// checkpoint file (named in refusals).
type Resumed = (
    train::TrainState<f32>,
    Vec<crate::Layer>,
    Vec<Vec<f32>>,
    PathBuf,
);

/// [`execute_staged`]; on failure the staging folder is removed unless it holds a checkpoint
/// worth resuming (not after divergence).
fn execute(
    settings: &Settings,
    folder: &RunFolder,
    resume: Option<Resumed>,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let result = execute_staged(settings, folder, resume, observer);
    if let Err(e) = &result
        && (matches!(e, Error::Diverged { .. } | Error::NotFinite { .. })
            || !folder.stage.join(CHECKPOINT).exists())
    {
        let _ = std::fs::remove_dir_all(&folder.stage);
    }
    result
}

fn execute_staged(
    settings: &Settings,
    folder: &RunFolder,
    resume: Option<Resumed>,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let started = Instant::now();
    crate::memory::check_room_for_products(settings.threads)?;
    let resuming = resume.is_some();
    let mut run = Ready::new(settings, resuming, observer)?;
    run.leave = folder.leave_on_exit();
    // A model file that could not be written fails now, not after training.
    io::check_header_room(
        &run.model_meta(),
        run.net.tensors().len() + 4,
        &settings.data,
    )?;
    run.choose_threads(resume.is_some(), observer)?;
    let found = run.choose_lr(resume.is_some(), observer)?;
    let dir = folder.stage.clone();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    if let Some(r) = &found {
        crate::lr_find::picture(&dir.join("lr-find.svg"), r)?;
    }
    let (state, prior_snapshots) = match resume {
        Some((state, layers, snapshots, path)) => {
            if layers != run.net.layers() {
                return Err(Error::shape(
                    "checkpoint architecture",
                    format!("{:?}", run.net.layers()),
                    format!("{layers:?}"),
                ));
            }
            // Before anything is written into the folder (the history log is rewritten as
            // training starts): a refused resume leaves every file as it was.
            state
                .check_resumable(&run.net, &run.data.train, &run.plan.train)
                .map_err(|e| match e {
                    Error::Shape {
                        what,
                        expected,
                        got,
                    } => Error::Data {
                        path,
                        location: what.replacen(
                            "resumed optimizer_steps",
                            "__metadata__.checkpoint.optimizer_steps",
                            1,
                        ),
                        message: format!("expected {expected}, got {got}"),
                    },
                    e => e,
                })?;
            (Some(state), snapshots)
        }
        None => (None, Vec::new()),
    };
    let meta = run.model_meta();
    let report = run.train_staged(&dir, state, prior_snapshots, &meta, observer)?;
    let summary = run.save_results(folder, &report, (meta, resuming), found, started)?;
    if !summary.kept_unfinished {
        folder.publish()?;
    }
    Ok(summary)
}

/// A run ready to train: its data loaded, split and scaled; its plan (the settings resolved
/// for the data, see [`crate::settings::Plan`]) with the class weights counted on the training
/// part; the network built; and the generator as it is after all that drew from it.
struct Ready {
    plan: Plan,
    data: RunData,
    net: Network<f32>,
    rng: Rng,
    /// What a Ctrl-C that exits at once removes (see [`RunFolder::leave_on_exit`]).
    leave: Vec<PathBuf>,
}

/// A run's data: loaded, split into training, validation and test parts, with the features
/// normalised and regression targets standardised by the training part's statistics.
struct RunData {
    name: String,
    task: Task,
    loss: crate::Loss,
    train: Dataset,
    val: Option<Dataset>,
    test: Option<Dataset>,
    /// What a CSV's columns became, fitted on the training rows alone (`None` for images).
    report: Option<source::DataReport>,
    /// A table (the default recipe differs from images').
    tabular: bool,
    normalizer: Normalizer,
    target_scaling: Option<TargetScaling>,
    /// The features the network reads, and the regression targets' names.
    feature_names: Option<Vec<String>>,
    target_names: Option<Vec<String>>,
}

impl Ready {
    /// Everything up to the first step, in the order that fails fastest: the settings that need
    /// no data, the data, the settings that do, the network (not initialised from `--init`'s
    /// file when `resuming`: the checkpoint's weights replace it).
    fn new(settings: &Settings, resuming: bool, observer: &mut dyn Observer) -> Result<Ready> {
        let mut rng = Rng::seed_from_u64(settings.seed);
        // Check the settings that need no data first, so a bad flag fails before a long load.
        settings.check()?;
        if !resuming && let (Some(scheme), Some(path)) = (settings.init_scheme, &settings.init) {
            return Err(Error::setting(
                "init-scheme",
                scheme.name(),
                format!(
                    "has no effect with --init: every weight is read from {}; leave one of \
                     them out",
                    path.display()
                ),
            ));
        }
        let data = RunData::load(settings, &mut rng, observer)?;
        if !resuming {
            settings.check_monitor_read(data.shape().has_validation)?;
        }
        let mut plan = settings.plan(data.shape(), data.loss)?;
        check_report_memory(data.largest(), data.train.n_outputs())?;
        plan.train.class_weights = class_weights(&plan.settings, data.loss, &data.train)?;
        let net = build_network(&plan, &data.train, &mut rng, resuming)?;
        if let Some(path) = settings.init.as_ref().filter(|_| !resuming) {
            observer.on_data(&init_weight_notes(path, &net));
        }
        Ok(Ready {
            plan,
            data,
            net,
            rng,
            leave: Vec::new(),
        })
    }

    /// `--threads auto` (a resumed run keeps the count recorded in its settings): the step timed
    /// with 1 up to the machine's cores, the count chosen recorded in the settings.
    fn choose_threads(&mut self, resuming: bool, observer: &mut dyn Observer) -> Result<()> {
        if !self.plan.settings.threads_auto || resuming {
            return Ok(());
        }
        let max = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        // No more threads than the address-space limit leaves room for (each one's matrix
        // products take their buffers at the first product).
        let max = crate::memory::product_threads_with_room(max);
        let c = train::calibrate_threads(
            &self.net,
            &self.data.train,
            (&self.plan.optimizer, &self.plan.schedule),
            &self.plan.train,
            &self.rng,
            max,
        )?;
        observer.on_data(&[c.line()]);
        self.plan.settings.threads = c.threads;
        self.plan.train.threads = c.threads;
        Ok(())
    }

    /// `--lr auto` (a resumed run keeps the rate recorded in its settings): the range test from
    /// the starting weights chooses the learning rate, which the settings then record.
    fn choose_lr(
        &mut self,
        resuming: bool,
        observer: &mut dyn Observer,
    ) -> Result<Option<LrFindResult>> {
        if !self.plan.settings.lr_auto || resuming {
            return Ok(None);
        }
        observer.stop_at_once(true, &self.leave);
        let r = crate::lr_find::lr_find(
            &mut self.net,
            &self.data.train,
            &self.plan.optimizer,
            &self.plan.train,
            &LrFindConfig::default(),
            &self.rng,
        );
        observer.stop_at_once(false, &[]);
        let r = r?;
        self.plan = self.plan.clone().with_lr(r.suggestion)?;
        Ok(Some(r))
    }

    /// The model file's metadata: the network, loss, normalisation, names, settings and the
    /// CSV's column map.
    fn model_meta(&self) -> ModelMeta {
        let d = &self.data;
        let mut meta = ModelMeta::new(&self.net, d.loss, d.normalizer.clone());
        meta.class_names = d.train.class_names.clone();
        meta.feature_names = d.feature_names.clone();
        meta.target_names = d.target_names.clone();
        meta.settings = serde_json::to_value(&self.plan.settings).expect("settings serialise");
        meta.columns = d.report.as_ref().map(|r| r.columns.clone());
        meta.target_scaling = d.target_scaling.clone();
        meta
    }

    /// Trains, writing `metrics.jsonl`, the checkpoints and (with `--snapshots`) the trajectory
    /// into the staging folder `dir` as it goes; a resumed run continues from `resume`, its
    /// earlier epochs and weight snapshots carried over. After divergence the error's advice
    /// names a learning rate tested from the run's starting weights.
    fn train_staged(
        &mut self,
        dir: &Path,
        resume: Option<train::TrainState<f32>>,
        prior_snapshots: Vec<Vec<f32>>,
        meta: &ModelMeta,
        observer: &mut dyn Observer,
    ) -> Result<train::TrainReport> {
        let Ready {
            plan,
            data,
            net,
            rng,
            leave,
        } = self;
        let Plan {
            settings,
            optimizer,
            schedule,
            train: cfg,
        } = &*plan;
        // Checked before the history log is written (a resumed run's is rewritten).
        check_run_memory(
            net,
            optimizer,
            cfg,
            data.train.len(),
            settings.snapshots.then_some(prior_snapshots.len()),
        )?;
        let log_path = dir.join(crate::checkpoint::HISTORY_LOG);
        let earlier = resume.as_ref().map_or(&[][..], |s| &s.history[..]);
        let log = Rc::new(RefCell::new(crate::checkpoint::HistoryLog::create(
            &log_path, earlier,
        )?));
        let checkpoint_path = dir.join(CHECKPOINT);
        let trajectory_path = dir.join(crate::landscape::trajectory::FILE);
        let snapshots = Rc::new(RefCell::new(prior_snapshots));
        let traj = RefCell::new(crate::landscape::trajectory::Writer::new(&trajectory_path));
        let mut save = |state: &train::TrainState<f32>| {
            // The trajectory first, so that it always reaches at least the checkpoint's epoch.
            let path = if settings.snapshots {
                Some(traj.borrow_mut().sync(&snapshots.borrow())?)
            } else {
                None
            };
            let covered = log.borrow_mut().sync()?;
            crate::checkpoint::save(
                &checkpoint_path,
                state,
                (covered, path),
                meta,
                meta.settings.clone(),
            )
        };
        // Every run keeps its final state (and an interrupted one where it stopped).
        let checkpointing = Some(train::Checkpointing {
            every: settings.checkpoint_every.unwrap_or(train::Every::End),
            save: &mut save,
        });
        let mut tee = Tee {
            inner: observer,
            log: Rc::clone(&log),
            snapshots: settings.snapshots.then(|| Rc::clone(&snapshots)),
        };
        // Where training starts, kept to test a learning rate should it diverge.
        let (start, start_rng) = (starting_weights(net, resume.as_ref()), rng.clone());
        let extras = train::Extras {
            val: data.val.as_ref(),
            observer: Some(&mut tee),
            resume,
            checkpoint: checkpointing,
        };
        let trained = train::train_with(net, &data.train, optimizer, schedule, cfg, rng, extras);
        // After divergence, advice that names a rate tested from the starting weights.
        let report = trained.map_err(|mut e| {
            if let Error::Diverged { lr, advice, .. } = &mut e {
                tee.inner.stop_at_once(true, leave);
                let tested = tested_advice(&start, &data.train, optimizer, cfg, *lr, &start_rng);
                tee.inner.stop_at_once(false, &[]);
                if let Some(tested) = tested {
                    *advice = tested;
                }
            }
            e
        })?;
        if let Some(e) = log.borrow_mut().take_error() {
            return Err(e);
        }
        if settings.snapshots {
            traj.borrow_mut().sync(&snapshots.borrow())?;
        }
        Ok(report)
    }

    /// After training: the figures on the training, validation and test sets, the model file,
    /// the pictures and `summary.json`, written into the staging folder.
    fn save_results(
        &self,
        folder: &RunFolder,
        report: &train::TrainReport,
        (mut meta, resuming): (ModelMeta, bool),
        found: Option<LrFindResult>,
        started: Instant,
    ) -> Result<Summary> {
        let (d, dir) = (&self.data, &folder.stage);
        let figures = |set: &Dataset| figures(&self.net, set, d.loss, d.target_scaling.as_ref());
        let (train_fig, _) = figures(&d.train)?;
        let val_fig = d.val.as_ref().map(figures).transpose()?.map(|f| f.0);
        let test_eval = d.test.as_ref().map(figures).transpose()?;

        let interrupted = matches!(report.stop, StopReason::Interrupted { .. });
        meta.interrupted = interrupted;
        // An interrupted run does not replace a finished run, nor (unless it continues it)
        // an interrupted one: it stays in `unfinished/`.
        let kept_unfinished =
            interrupted && (folder.holds_finished || (folder.holds_run && !resuming));
        io::save(&dir.join("model.safetensors"), &self.net, &meta)?;
        let test_report = test_eval.as_ref().map(|t| &t.1);
        plot_run(
            dir,
            &report.history,
            test_report,
            d.train.class_names.as_deref(),
        )?;
        let train_seconds: f64 = report.history.iter().map(|m| m.seconds).sum();
        let summary = Summary {
            train: train_fig,
            val: val_fig,
            test: test_eval.map(|t| t.0),
            epochs: report.history.len(),
            best_epoch: report.best_epoch,
            stop_reason: stop_text(&report.stop, &self.plan.train, report),
            stopped_by: match report.stop {
                train::StopReason::MaxEpochs => "max-epochs",
                train::StopReason::GradientTolerance { .. } => "gradient-tolerance",
                train::StopReason::EarlyStopping { .. } => "early-stopping",
                train::StopReason::Interrupted { .. } => "interrupted",
            },
            epoch_seconds: report.history.iter().map(|m| m.seconds).collect(),
            examples_per_second: (d.train.len() * report.history.len()) as f64
                / train_seconds.max(1e-12),
            model: if kept_unfinished { dir } else { &folder.dir }.join("model.safetensors"),
            seed: self.plan.settings.seed,
            data: d.summary(),
            settings: self.plan.settings.clone(),
            downhill_version: env!("CARGO_PKG_VERSION").to_string(),
            total_seconds: started.elapsed().as_secs_f64(),
            class_weights: self.plan.train.class_weights.clone(),
            interrupted,
            kept_unfinished,
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
        Ok(summary)
    }
}

/// Data files from this size on are said to be read (a line before, and the time after).
pub const LONG_LOAD_BYTES: u64 = 32 << 20;

impl RunData {
    /// Loads `settings.data`, holds out the validation split (a CSV's columns are fitted on the
    /// training rows alone, see `data::columns`), reports what a CSV's columns became, and
    /// scales the parts.
    fn load(settings: &Settings, rng: &mut Rng, observer: &mut dyn Observer) -> Result<RunData> {
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

    /// Refuses a validation or test example with a normalised feature beyond [`FAR_INPUT`]
    /// (by the training rows' statistics): the network's outputs would overflow on it, and the
    /// run stop as diverged with advice about the learning rate.
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
    fn shape(&self) -> DataShape {
        DataShape {
            task: self.task,
            n: self.train.len(),
            has_validation: self.val.is_some(),
            tabular: self.tabular,
        }
    }

    /// The largest part's size.
    fn largest(&self) -> usize {
        let parts = [Some(&self.train), self.val.as_ref(), self.test.as_ref()];
        parts
            .into_iter()
            .flatten()
            .map(Dataset::len)
            .max()
            .unwrap_or(0)
    }

    /// What `summary.json` says of the data.
    fn summary(&self) -> DataSummary {
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
fn bce_values_in_range(
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

/// The network as training starts: `net`, with a resumed state's weights.
fn starting_weights(net: &Network<f32>, resume: Option<&train::TrainState<f32>>) -> Network<f32> {
    let mut start = net.clone();
    if let Some(s) = resume {
        start.params_mut().copy_from_slice(&s.params);
    }
    start
}

/// The network of `--layers` or `--net` (see [`crate::netspec`]) on the data's input shape, or
/// else of `settings.hidden`, for the training data, its training memory checked before it is
/// allocated, initialised by `rng` — or, unless `resuming` (the checkpoint's weights then
/// replace them, so the file need not still exist), from `--init`'s file.
fn build_network(
    plan: &Plan,
    train_set: &Dataset,
    rng: &mut Rng,
    resuming: bool,
) -> Result<Network<f32>> {
    let (settings, cfg) = (&plan.settings, &plan.train);
    let init = settings
        .init_scheme
        .unwrap_or(Init::default_for(settings.activation));
    let mut net = network_of_settings(settings, train_set, &plan.optimizer, cfg, init, rng)?;
    if let Some(path) = settings.init.as_ref().filter(|_| !resuming) {
        io::load_params(path, &mut net)?;
    }
    Ok(net)
}

/// Weights beyond this size (in absolute value) in an `--init` file earn a note: fresh
/// initialisations are below ~2.5 (Glorot's and He's bounds), trained networks rarely beyond 10s.
pub const LARGE_INIT_WEIGHT: f32 = 1e3;

/// Notes on `--init`'s file `path` loaded into `net`: each tensor whose largest weight passes
/// [`LARGE_INIT_WEIGHT`] (finite ones; a non-finite weight is refused when loading). Training
/// from there works, but its first steps' gradients are huge or its units saturated.
fn init_weight_notes(path: &Path, net: &Network<f32>) -> Vec<String> {
    net.tensors()
        .iter()
        .filter_map(|t| {
            let big = net.params()[t.range.clone()]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            (big > LARGE_INIT_WEIGHT).then(|| {
                format!(
                    "note: --init {}: tensor {} holds a weight of size {big:.3e}, far beyond the \
                     ~1 of a fresh or trained network: expect huge gradients or saturated units \
                     (was the file meant?)",
                    path.display(),
                    t.name
                )
            })
        })
        .collect()
}

/// The loss and the task's figures of `net` on `d` (RMSE and R² in the targets' original
/// units), with the report behind them.
fn figures(
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

/// Advice after divergence that names a learning rate the tool has tested: the range test
/// (`downhill lr-find`) from the weights the run started from, on the same data, suggests a
/// rate (at most a tenth of the one that diverged); one epoch at it, from the same weights,
/// must train without diverging and lower the training loss — else a tenth of it is tried, up
/// to three times. `None` if no rate passes.
fn tested_advice(
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
fn stop_text(stop: &StopReason, cfg: &train::TrainConfig, report: &train::TrainReport) -> String {
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

fn plot_run(
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
            std::fs::create_dir_all("runs").map_err(io_err(Path::new("runs")))?;
            // Created, not merely found free: two runs started in the same second get
            // different folders.
            let mut dir = base.clone();
            let mut i = 2;
            loop {
                match std::fs::create_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && i < 10_000 => {
                        dir = PathBuf::from(format!("{}-{i}", base.display()));
                        i += 1;
                    }
                    Err(e) => return Err(io_err(&dir)(e)),
                }
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
    log: Rc<RefCell<crate::checkpoint::HistoryLog>>,
    /// Weight snapshots (before training and after each epoch), when the run keeps them.
    snapshots: Option<Rc<RefCell<Vec<Vec<f32>>>>>,
}

impl Observer for Tee<'_> {
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.log.borrow_mut().append(m);
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
            s.borrow_mut()
                .push(weights.iter().map(|&v| v as f32).collect());
        }
        self.inner.on_weights(epoch, weights);
    }

    fn should_stop(&mut self) -> bool {
        self.inner.should_stop()
    }
}

/// Fails before training if the run would need more memory than is available: training itself
/// ([`train::training_values`]), and what the run keeps beside it — the per-epoch history
/// (twice: the trainer's and the report's), writing a checkpoint (copies of the weights, the
/// optimiser's buffers and early stopping's weights, and the file's bytes), and with
/// `--snapshots` one copy of the weights per epoch still to come (`kept` are there already), the
/// f64 weights they are taken from, and the trajectory file's bytes of all of them (twice: the
/// tensor's and the file's).
fn check_run_memory(
    net: &Network<f32>,
    optimizer: &crate::optim::OptimizerConfig,
    cfg: &train::TrainConfig,
    n: usize,
    kept: Option<usize>,
) -> Result<()> {
    let bs = cfg.batch_size.min(n).max(1);
    let p = net.param_count() + net.buffers().len();
    let four = |v: Option<u128>| v.and_then(|v| v.checked_mul(4));
    let training = four(train::training_values(
        net,
        optimizer.buffers(),
        cfg.threads,
        bs,
    ));
    let history = crate::memory::product(&[cfg.epochs, 2 * std::mem::size_of::<EpochMetrics>()]);
    // The state's network, its tensors' bytes, the optimiser's buffers' and the best weights'
    // bytes, and the file's bytes of all of them.
    let checkpoint = crate::memory::product(&[p, 4, 2 * (2 + optimizer.buffers())]);
    let snapshots = match kept {
        Some(kept) => {
            let to_come = crate::memory::product(&[
                cfg.epochs.saturating_add(1) - kept.min(cfg.epochs),
                p,
                4,
            ]);
            let all = crate::memory::product(&[cfg.epochs.saturating_add(1), p, 4, 2]);
            let f64s = crate::memory::product(&[p, 8]);
            to_come
                .zip(all)
                .zip(f64s)
                .and_then(|((a, b), c)| a.checked_add(b)?.checked_add(c))
        }
        None => Some(0),
    };
    let bytes = [training, history, checkpoint, snapshots]
        .into_iter()
        .try_fold(0u128, |acc, v| acc.checked_add(v?));
    crate::memory::check(
        format!(
            "training {} parameters for {} epochs{}",
            net.param_count(),
            cfg.epochs,
            if kept.is_some() {
                ", keeping the weights after every epoch (--snapshots)"
            } else {
                ""
            }
        ),
        bytes,
    )
}

/// Fails before evaluation if its report would need more memory than is available: every
/// example's outputs, and for classes the k × k confusion matrix.
fn check_report_memory(n: usize, k: usize) -> Result<()> {
    let bytes = crate::memory::product(&[n, k, 4])
        .zip(crate::memory::product(&[k, k, 8]))
        .map(|(a, b)| a + b);
    crate::memory::check(
        format!("the evaluation report of {n} examples with {k} outputs"),
        bytes,
    )
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
const FAR_INPUT: f32 = 1.844_674_3e19;

/// Example `i`'s feature of `data` farthest out, if its normalised value is beyond
/// [`FAR_INPUT`] or not finite: (feature, stored value, normalised value).
fn far_input(data: &Dataset, i: usize) -> Option<(usize, f64, f32)> {
    (0..data.n_features())
        .map(|j| (j, data.raw(i, j), data.normalised(i, j)))
        .filter(|(_, _, z)| z.is_nan() || z.abs() > FAR_INPUT)
        .max_by(|a, b| a.2.abs().total_cmp(&b.2.abs()))
}

/// The error for example `i` of `data` (read from `file`, its lines `lines`), whose feature
/// `j` (named by `names`) is `v` as read and `z` normalised, beyond [`FAR_INPUT`].
fn far_input_error(
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

/// The run's network: the layers of `--layers` or `--net` (see [`crate::netspec`]) on the
/// data's input shape, or the dense network of `--hidden`; memory checked before anything is
/// reserved.
fn network_of_settings(
    settings: &Settings,
    train_set: &Dataset,
    optimizer: &crate::optim::OptimizerConfig,
    cfg: &train::TrainConfig,
    init: Init,
    rng: &mut Rng,
) -> Result<Network<f32>> {
    if let Some((input, layers)) = crate::netspec::from_settings(
        settings.layers.as_deref(),
        settings.net.as_deref(),
        settings.image_shape.as_deref(),
        train_set.n_features(),
        train_set.n_outputs(),
        train_set.image,
    )? {
        let init = settings
            .init_scheme
            .unwrap_or_else(|| Init::default_for_layers(&layers, settings.activation));
        return Network::<f32>::with_input(input, layers, init, rng);
    }
    let mut sizes = vec![train_set.n_features()];
    sizes.extend(&settings.hidden);
    sizes.push(train_set.n_outputs());
    let dense: Vec<(usize, usize)> = sizes.windows(2).map(|w| (w[0], w[1])).collect();
    train::check_training_memory(
        &dense,
        optimizer.buffers(),
        cfg.batch_size.min(train_set.len()),
        cfg.threads,
        std::mem::size_of::<f32>(),
    )?;
    Network::<f32>::mlp(&sizes, settings.activation, settings.dropout, init, rng)
}
