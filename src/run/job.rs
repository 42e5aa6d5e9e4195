//! The training job: `train`, `resume` and `lr-find` from the settings to a published run
//! folder — the run made ready (data, plan, network, memory checked), trained with its
//! checkpoints and history log, and its results saved.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use rand::SeedableRng;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::{self, ModelMeta};
use crate::lr_find::{LrFindConfig, LrFindResult};
use crate::network::Network;
use crate::rng::Rng;
use crate::settings::{Plan, Settings};
use crate::train::{self, EpochMetrics, Observer, StopReason};

use super::data::RunData;
use super::folder::{
    CHECKPOINT, LOCK, RunFolder, UNFINISHED, check_foreign, check_resume_folder,
    checkpoint_to_resume, io_err,
};
use super::summary::{LrFound, Summary, figures, plot_run, stop_text, tested_advice};

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
        Some(Resumed {
            state: loaded.state,
            layers: loaded.meta.layers,
            snapshots,
            checkpoint: path,
        }),
        observer,
    )
}

/// A run to continue.
struct Resumed {
    /// The checkpoint's training state.
    state: train::TrainState<f32>,
    /// The checkpoint's layers, which the run's network must have.
    layers: Vec<crate::Layer>,
    /// The snapshots of the training path so far (`--snapshots`).
    snapshots: Vec<Vec<f32>>,
    /// The checkpoint file, named in refusals.
    checkpoint: PathBuf,
}

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
        Some(Resumed {
            state,
            layers,
            snapshots,
            checkpoint: path,
        }) => {
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
    let mut net = network_of_settings(settings, train_set, &plan.optimizer, cfg, rng)?;
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
pub(super) fn check_report_memory(n: usize, k: usize) -> Result<()> {
    let bytes = crate::memory::product(&[n, k, 4])
        .zip(crate::memory::product(&[k, k, 8]))
        .map(|(a, b)| a + b);
    crate::memory::check(
        format!("the evaluation report of {n} examples with {k} outputs"),
        bytes,
    )
}

/// The run's network ([`crate::netspec::Description`]): the layers of `--layers` or `--net` on
/// the data's input shape, or the dense network of `--hidden`; a dense network's training memory
/// is checked before anything is reserved.
fn network_of_settings(
    settings: &Settings,
    train_set: &Dataset,
    optimizer: &crate::optim::OptimizerConfig,
    cfg: &train::TrainConfig,
    rng: &mut Rng,
) -> Result<Network<f32>> {
    let description = crate::netspec::Description {
        layers: settings.layers.as_deref(),
        net: settings.net.as_deref(),
        image_shape: settings.image_shape.as_deref(),
        hidden: &settings.hidden,
        activation: settings.activation,
        dropout: settings.dropout,
        init: settings.init_scheme,
    };
    let resolved = description.resolve(
        train_set.n_features(),
        train_set.n_outputs(),
        train_set.image,
    )?;
    if let crate::netspec::Resolved::Dense(sizes) = &resolved {
        let dense: Vec<(usize, usize)> = sizes.windows(2).map(|w| (w[0], w[1])).collect();
        train::check_training_memory(
            &dense,
            optimizer.buffers(),
            cfg.batch_size.min(train_set.len()),
            cfg.threads,
            std::mem::size_of::<f32>(),
        )?;
    }
    description.build(resolved, rng)
}
