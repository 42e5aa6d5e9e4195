//! The settings of a training run, as a configuration file (`--config run.toml`) and the
//! command line both spell them, and their resolution into the engine's configurations.
//!
//! Keys are the long flag names: `hidden = [100, 50]`, `batch-size = 64` (or `"full"`),
//! `optimizer = "adam"`, `lr = 0.001`, … Flags given on the command line override the file.
//!
//! ```
//! let s: downhill::settings::Settings = toml::from_str("hidden = [32]\nepochs = 3\nbatch-size = \"full\"").unwrap();
//! assert_eq!(s.hidden, vec![32]);
//! assert_eq!(s.batch_size, Some(downhill::settings::BatchSize::Full));
//! ```

use std::path::PathBuf;

use crate::data::{Normalization, Task};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::Activation;
use crate::loss::Loss;
use crate::optim::{OptimizerConfig, Schedule};
use crate::train::{Every, TrainConfig, number_or_word};

/// The most threads `--threads` accepts.
pub const MAX_THREADS: usize = 256;

/// Mini-batch size: a number of examples, or the whole training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    Examples(usize),
    /// Full-batch gradient descent.
    Full,
}

impl std::str::FromStr for BatchSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<BatchSize> {
        match s {
            "full" => Ok(BatchSize::Full),
            _ => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(BatchSize::Examples(n)),
                _ => Err(Error::setting(
                    "batch-size",
                    s,
                    "a whole number ≥ 1, or `full` for full-batch gradient descent",
                )),
            },
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Examples(n) => write!(f, "{n}"),
            BatchSize::Full => write!(f, "full"),
        }
    }
}

impl serde::Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            BatchSize::Examples(n) => s.serialize_u64(*n as u64),
            BatchSize::Full => s.serialize_str("full"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        number_or_word(d)
    }
}

/// Everything that decides a training run. Defaults are the CLI's: `downhill train` with no
/// flags trains 784-100-10 (ReLU) on the embedded digits with the default recipe (SGD,
/// η = 0.05, momentum 0.9; see [`Settings::resolved`]), batch 64, epochs sized to the data
/// ([`epochs_for`]) with early stopping on the validation split ([`Settings::resolved_for`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// `digits`, `fashion-mnist`, a folder of MNIST-format IDX files, or a CSV file.
    pub data: String,
    /// A separate test file (CSV, or an IDX images file with its labels beside it).
    pub test: Option<PathBuf>,
    /// Share of the data held out for testing when there is no separate test set.
    pub test_fraction: Option<f64>,
    /// CSV target column(s): name or 0-based index.
    pub target: Option<String>,
    /// Whether a CSV's first row is a header (detected if unset).
    pub header: Option<bool>,
    pub task: Option<Task>,
    pub normalize: Option<Normalization>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub loss: Option<Loss>,
    pub init_scheme: Option<Init>,
    pub dropout: f64,
    /// `sgd`, `adam`, … as PyTorch defines them; unset: the default recipe
    /// ([`Settings::resolved`] writes it out, so recorded settings always name it).
    pub optimizer: Option<String>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub nesterov: bool,
    pub weight_decay: Option<f64>,
    pub l2: f64,
    pub schedule: String,
    pub warmup: usize,
    /// Examples per mini-batch; unset: 64 for images, 200 for tables (scikit-learn's
    /// `min(200, n)`; see [`Settings::resolved_recipe`]).
    pub batch_size: Option<BatchSize>,
    /// Maximum epochs; unset: sized to the data ([`epochs_for`]).
    pub epochs: Option<usize>,
    pub val_fraction: f64,
    /// Early stopping's patience; unset: [`patience_for`] when there is a validation split,
    /// off otherwise; 0: off.
    pub patience: Option<usize>,
    pub grad_tol: Option<f64>,
    pub seed: u64,
    pub threads: usize,
    /// Start from the weights in this safetensors file.
    pub init: Option<PathBuf>,
    pub no_shuffle: bool,
    /// Keep subnormal floats on the training threads (see [`crate::subnormals`]).
    pub keep_subnormals: bool,
    /// `--threads auto`: the run times its step with 1, 2, … threads first and records the
    /// count it chose in `threads` (see [`crate::train::calibrate_threads`]).
    pub threads_auto: bool,
    /// Write `checkpoint.safetensors` in the run folder every N steps, or every `epoch`.
    pub checkpoint_every: Option<Every>,
    /// Keep the weights before training and after each epoch in `trajectory.safetensors`
    /// (for `downhill landscape --model`).
    pub snapshots: bool,
    pub out: Option<PathBuf>,
    /// SGD's dampening τ (PyTorch's `dampening`, default 0).
    pub dampening: Option<f64>,
    /// RMSprop's centered variant (PyTorch's `centered`).
    pub centered: bool,
    /// The divergence rule's factor (see [`crate::train::Divergence`]); 0 turns it off.
    pub divergence_factor: Option<f64>,
    /// CSV: use only these columns as features (every other non-target column is dropped).
    pub features: Option<Vec<String>>,
    /// CSV: never use these columns.
    pub drop: Option<Vec<String>>,
    /// CSV: one-hot encode these columns even if they hold numbers.
    pub categorical: Option<Vec<String>>,
    /// Choose the learning rate with the range test before training (`--lr auto`); the chosen
    /// rate is then recorded in `lr`. A resumed run keeps the recorded rate.
    pub lr_auto: bool,
    /// `balanced`: weight the classification loss by n / (classes · count) per class
    /// (scikit-learn's `class_weight="balanced"`), counted on the training part.
    pub class_weight: Option<String>,
    /// What early stopping watches: `loss` or `accuracy` (default: accuracy when the loss has
    /// one, else loss).
    pub monitor: Option<crate::train::Monitor>,
    /// The network as a compact list of layers (`conv 32 3, relu, maxpool 2, flatten, dense 10`;
    /// see [`crate::netspec`]); unset: `net`, else the dense network of `hidden`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
    /// A preset network: `dense`, `lenet5`, `keras-convnet` (see [`crate::netspec`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    /// The shape of one example as an image, `CxHxW` (for a CSV of pixels; IDX files and the
    /// digits are 1x28x28 already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_shape: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data: "digits".into(),
            test: None,
            test_fraction: None,
            target: None,
            header: None,
            task: None,
            normalize: None,
            hidden: vec![100],
            activation: Activation::Relu,
            loss: None,
            init_scheme: None,
            dropout: 0.0,
            optimizer: None,
            lr: None,
            momentum: None,
            nesterov: false,
            weight_decay: None,
            l2: 0.0,
            schedule: "constant".into(),
            warmup: 0,
            batch_size: None,
            epochs: None,
            val_fraction: 0.1,
            patience: None,
            grad_tol: None,
            seed: 0,
            threads: 1,
            init: None,
            no_shuffle: false,
            keep_subnormals: false,
            threads_auto: false,
            checkpoint_every: None,
            snapshots: false,
            out: None,
            dampening: None,
            centered: false,
            divergence_factor: None,
            features: None,
            drop: None,
            categorical: None,
            lr_auto: false,
            class_weight: None,
            monitor: None,
            layers: None,
            net: None,
            image_shape: None,
        }
    }
}

/// Default mini-batch sizes: images, and tables (scikit-learn's `min(200, n)`; chosen by
/// `bench/tables.py`).
pub const IMAGE_BATCH: usize = 64;
pub const TABLE_BATCH: usize = 200;

/// Default early-stopping patience with a validation split, in epochs (scikit-learn's
/// `n_iter_no_change`), raised for small data so that it spans at least [`PATIENCE_STEPS`]
/// optimiser steps (see [`patience_for`]).
pub const DEFAULT_PATIENCE: usize = 10;
pub const PATIENCE_STEPS: usize = 500;

/// The default patience for `n` training examples in batches of `batch`: [`DEFAULT_PATIENCE`]
/// epochs, or enough epochs for [`PATIENCE_STEPS`] steps if that is more — ten epochs of a
/// 150-row table are 30 steps, too few to tell a plateau from noise.
pub fn patience_for(n: usize, batch: BatchSize) -> usize {
    DEFAULT_PATIENCE.max(PATIENCE_STEPS.div_ceil(steps_per_epoch(n, batch)))
}

/// Optimiser steps in one epoch of `n` examples (at least one) in batches of `batch`.
fn steps_per_epoch(n: usize, batch: BatchSize) -> usize {
    match batch {
        BatchSize::Examples(b) => n.max(1).div_ceil(b),
        BatchSize::Full => 1,
    }
}
/// The epoch rule's target number of optimiser steps, and its bounds (see [`epochs_for`]).
pub const TARGET_STEPS: usize = 10_000;
pub const MIN_EPOCHS: usize = 20;
pub const MAX_EPOCHS: usize = 200;

/// The default maximum number of epochs for `n` training examples in batches of `batch`:
/// enough epochs for [`TARGET_STEPS`] optimiser steps, at least [`MIN_EPOCHS`] and at most
/// [`MAX_EPOCHS`] (scikit-learn's `max_iter`) — so a 150-row table gets 200 epochs (600 steps at
/// batch 64) instead of 20 (60 steps), and 60,000 images get 20. Early stopping (on by default
/// with a validation split) usually ends the run sooner.
pub fn epochs_for(n: usize, batch: BatchSize) -> usize {
    TARGET_STEPS
        .div_ceil(steps_per_epoch(n, batch))
        .clamp(MIN_EPOCHS, MAX_EPOCHS)
}

impl Settings {
    /// `--features`, `--drop` and `--categorical` for the CSV reader.
    pub fn column_overrides(&self) -> crate::data::columns::Overrides {
        crate::data::columns::Overrides {
            features: self.features.clone(),
            drop: self.drop.clone().unwrap_or_default(),
            categorical: self.categorical.clone().unwrap_or_default(),
            pixels: self.image_shape.is_some(),
        }
    }
}

/// The learning rate of `--optimizer sgd` without `--lr` (PyTorch's SGD has no default rate).
pub const SGD_DEFAULT_LR: f64 = 0.05;
/// The default recipe (no `--optimizer`): SGD with this momentum and [`SGD_DEFAULT_LR`].
/// `--optimizer sgd` alone is PyTorch's SGD, momentum 0.
pub const SGD_DEFAULT_MOMENTUM: f64 = 0.9;

impl Settings {
    /// The settings with the default recipe written out: without `optimizer`, SGD with
    /// momentum [`SGD_DEFAULT_MOMENTUM`] (unless `momentum` is set) and learning rate
    /// [`SGD_DEFAULT_LR`] (unless `lr` is set or chosen by `lr-auto`). A run records these, so
    /// its settings say which optimiser and momentum it used.
    pub fn resolved(&self) -> Settings {
        self.resolved_recipe(false)
    }

    /// [`Settings::resolved`] for images (`tabular = false`) or a table (`true`). Without
    /// `batch-size`, batches of [`IMAGE_BATCH`] or [`TABLE_BATCH`]. Without `optimizer`, a table
    /// gets Adam with PyTorch's defaults (η = 0.001) — with batches of 200, the recipe with the
    /// best worst case over the tuning tables of `bench/tables.py` (README) — unless `momentum`
    /// or `nesterov` is given (then SGD, as those ask for); images get SGD with momentum
    /// [`SGD_DEFAULT_MOMENTUM`], η = [`SGD_DEFAULT_LR`] (better than Adam on the digits).
    pub fn resolved_recipe(&self, tabular: bool) -> Settings {
        let mut s = self.clone();
        s.batch_size = Some(s.batch_size.unwrap_or(BatchSize::Examples(if tabular {
            TABLE_BATCH
        } else {
            IMAGE_BATCH
        })));
        if s.optimizer.is_none() {
            if tabular && s.momentum.is_none() && !s.nesterov {
                s.optimizer = Some("adam".into());
            } else {
                s.optimizer = Some("sgd".into());
                s.momentum = Some(s.momentum.unwrap_or(SGD_DEFAULT_MOMENTUM));
            }
        }
        if !s.lr_auto
            && s.lr.is_none()
            && let Ok(c) = s.optimizer_config()
        {
            s.lr = Some(c.lr());
        }
        if s.optimizer.as_deref() == Some("sgd") {
            // PyTorch's SGD: momentum 0 unless given. Written out so the record says so.
            s.momentum = Some(s.momentum.unwrap_or(0.0));
            if !s.lr_auto {
                s.lr = Some(s.lr.unwrap_or(SGD_DEFAULT_LR));
            }
        }
        s
    }

    /// The settings with the defaults that depend on the data written out, for a training part
    /// of `n` examples, with or without a validation split, of a table or of images: the
    /// recipe ([`Settings::resolved_recipe`]), the epoch rule ([`epochs_for`]) and early
    /// stopping ([`patience_for`] with a validation split, else 0 = off).
    pub fn resolved_for(&self, n: usize, has_validation: bool, tabular: bool) -> Settings {
        let mut s = self.resolved_recipe(tabular);
        let batch = s.batch_size.unwrap_or(BatchSize::Examples(IMAGE_BATCH));
        s.epochs = Some(s.epochs.unwrap_or_else(|| epochs_for(n, batch)));
        s.patience = Some(s.patience.unwrap_or(if has_validation {
            patience_for(n, batch)
        } else {
            0
        }));
        s
    }

    /// The mini-batch size: as set, else the images' default [`IMAGE_BATCH`] (runs resolve the
    /// tables' default first, see [`Settings::resolved_recipe`]).
    pub fn batch(&self) -> BatchSize {
        self.batch_size.unwrap_or(BatchSize::Examples(IMAGE_BATCH))
    }

    /// The optimiser with its hyperparameters: PyTorch's defaults for the named one (for SGD:
    /// momentum 0, learning rate [`SGD_DEFAULT_LR`]), then `lr`, `momentum`, `nesterov` and
    /// `weight_decay` where set. Without `optimizer`, the default recipe of [`Settings::resolved`].
    pub fn optimizer_config(&self) -> Result<OptimizerConfig> {
        if self.optimizer.is_none() {
            return self.resolved().optimizer_config();
        }
        let name = self.optimizer.as_deref().unwrap_or("sgd");
        let mut cfg = OptimizerConfig::default_for(name).ok_or_else(|| {
            Error::setting(
                "optimizer",
                name,
                format!("accepted: {}", OptimizerConfig::NAMES.join(", ")),
            )
        })?;
        match &mut cfg {
            OptimizerConfig::Sgd(c) => {
                c.lr = self.lr.unwrap_or(SGD_DEFAULT_LR);
                c.momentum = self.momentum.unwrap_or(0.0);
                c.nesterov = self.nesterov;
                c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
                c.dampening = self.dampening.unwrap_or(c.dampening);
                self.only_for("centered", self.centered, "rmsprop")?;
                // Dampening scales the gradient into the momentum buffer: without momentum
                // there is none, and nothing reads it (PyTorch accepts it silently).
                if let Some(d) = self.dampening
                    && c.momentum == 0.0
                {
                    return Err(Error::setting(
                        "dampening",
                        d,
                        "nothing reads it: dampening scales the gradient added to SGD's momentum \
                         buffer, and with momentum 0 (--momentum not given, or 0) there is none; \
                         give --momentum above 0, or leave --dampening out",
                    ));
                }
            }
            OptimizerConfig::Adam(c) | OptimizerConfig::AdamW(c) => {
                c.lr = self.lr.unwrap_or(c.lr);
                c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
                self.no_momentum_flags()?;
            }
            OptimizerConfig::RmsProp(c) => {
                c.centered = self.centered;
                self.only_for("dampening", self.dampening.is_some(), "sgd")?;
                c.lr = self.lr.unwrap_or(c.lr);
                c.momentum = self.momentum.unwrap_or(c.momentum);
                c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
                if self.nesterov {
                    return Err(Error::setting(
                        "nesterov",
                        true,
                        "only SGD has Nesterov momentum",
                    ));
                }
            }
            OptimizerConfig::Adagrad(c) => {
                c.lr = self.lr.unwrap_or(c.lr);
                c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
                self.no_momentum_flags()?;
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses the flag `name` (set when `on`) for optimisers other than `owner`.
    fn only_for(&self, name: &'static str, on: bool, owner: &str) -> Result<()> {
        if on {
            return Err(Error::setting(
                name,
                "set",
                format!(
                    "only {owner} has this setting, not {}",
                    self.optimizer.as_deref().unwrap_or("sgd")
                ),
            ));
        }
        Ok(())
    }

    fn no_momentum_flags(&self) -> Result<()> {
        self.only_for("dampening", self.dampening.is_some(), "sgd")?;
        self.only_for("centered", self.centered, "rmsprop")?;
        if let Some(m) = self.momentum {
            return Err(Error::setting(
                "momentum",
                m,
                format!(
                    "{} has no momentum setting (sgd and rmsprop do)",
                    self.optimizer.as_deref().unwrap_or("sgd")
                ),
            ));
        }
        if self.nesterov {
            return Err(Error::setting(
                "nesterov",
                true,
                "only SGD has Nesterov momentum",
            ));
        }
        Ok(())
    }

    /// The learning-rate schedule with its warm-up.
    pub fn schedule(&self) -> Result<Schedule> {
        let s = self.schedule.parse::<Schedule>()?;
        if s.per_step() && self.warmup > 0 {
            return Err(Error::setting(
                "warmup",
                self.warmup,
                "one-cycle has its own warm-up (its first phase, --schedule one-cycle:PCT_START); leave --warmup out",
            ));
        }
        Ok(s.with_warmup(self.warmup))
    }

    /// The loss: as set, else cross-entropy for classification and MSE for regression.
    pub fn loss_for(&self, task: Task) -> Result<Loss> {
        let loss = self.loss.unwrap_or(match task {
            Task::Classify => Loss::CrossEntropy,
            Task::Regress => Loss::Mse,
        });
        match (task, loss) {
            (Task::Classify, Loss::Mse) => Err(Error::setting(
                "loss",
                "mse",
                "a classification task takes cross-entropy (or bce with numeric 0/1 targets and --task regress)",
            )),
            (Task::Classify, Loss::Bce) => Err(Error::setting(
                "loss",
                "bce",
                "the target is read as class labels, and bce takes numeric 0/1 targets (one \
                 output, a probability): add --task regress, or use cross-entropy",
            )),
            (Task::Regress, Loss::CrossEntropy) => Err(Error::setting(
                "loss",
                "cross-entropy",
                "cross-entropy needs class labels; use --task classify",
            )),
            _ => Ok(loss),
        }
    }

    /// The run's plan for data of `task` with a training part of `n` examples, with or
    /// without a validation split, of a table or of images, trained with `loss`: the settings
    /// with every default that depends on the data written out, and the optimiser, schedule
    /// and loop settings they give, each validated (see [`Plan`]).
    pub fn plan(&self, data: DataShape, loss: Loss) -> Result<Plan> {
        self.check_early_stopping(data.task, data.has_validation)?;
        let mut settings = self.resolved_for(data.n, data.has_validation, data.tabular);
        let optimizer = settings.optimizer_config()?;
        let schedule = settings.schedule()?;
        let train = settings.train_config(loss, data.n)?;
        settings.monitor = Some(train.monitor);
        Ok(Plan {
            settings,
            optimizer,
            schedule,
            train,
        })
    }

    /// `patience` needs a validation split to watch, and `monitor = accuracy` a task with an
    /// accuracy: refused rather than silently ignored (or silently replaced by the loss).
    fn check_early_stopping(&self, task: Task, has_validation: bool) -> Result<()> {
        if let Some(p) = self.patience.filter(|&p| p > 0)
            && !has_validation
        {
            return Err(Error::setting(
                "patience",
                p,
                "early stopping needs a validation split, and this run has none: give --val-fraction above 0 (a share large enough to hold at least one row), or --patience 0",
            ));
        }
        if self.monitor == Some(crate::train::Monitor::Accuracy) && task == Task::Regress {
            return Err(Error::setting(
                "monitor",
                "accuracy",
                "a regression has no accuracy: use --monitor loss",
            ));
        }
        Ok(())
    }

    /// `monitor` chooses what early stopping watches: given (by a flag or the config file)
    /// where early stopping is off — no validation split, or `patience = 0` — nothing reads
    /// it, and it is refused by name rather than silently ignored (Keras warns that `val_loss`
    /// is unavailable and stops nothing). A resumed run's recorded settings always hold the
    /// monitor, so [`crate::run`] makes this check for new runs only.
    pub fn check_monitor_read(&self, has_validation: bool) -> Result<()> {
        let Some(m) = self.monitor else {
            return Ok(());
        };
        let name = match m {
            crate::train::Monitor::Loss => "loss",
            crate::train::Monitor::Accuracy => "accuracy",
        };
        if !has_validation {
            return Err(Error::setting(
                "monitor",
                name,
                format!(
                    "nothing reads it: --monitor chooses the validation figure early stopping \
                     watches, and this run has no validation split (--val-fraction {}); give \
                     --val-fraction above 0, or leave --monitor out",
                    self.val_fraction
                ),
            ));
        }
        if self.patience == Some(0) {
            return Err(Error::setting(
                "monitor",
                name,
                "nothing reads it: --monitor chooses the validation figure early stopping \
                 watches, and --patience 0 turns early stopping off; give --patience N, or leave \
                 --monitor out",
            ));
        }
        Ok(())
    }

    /// Every check of the settings that needs no data, each made here once: the optimiser and
    /// its flags, the schedule, the loop's and the network's settings. A run makes them before
    /// it loads the data, so that a bad flag fails before a long load.
    pub fn check(&self) -> Result<()> {
        self.optimizer_config()?;
        self.schedule()?;
        self.check_loop()
    }

    /// With `--layers` or a convolutional `--net` the network is that list of layers: the dense
    /// network's settings (`--hidden`, `--activation`, `--dropout`) would be silently ignored,
    /// so setting them too is an error that says where they go instead.
    /// A dense network without hidden layers (`--hidden none`) has no hidden activation for
    /// `--activation` to choose nor for `--dropout` to follow: either would be ignored.
    fn check_no_hidden(&self) -> Result<()> {
        let d = Settings::default();
        if !self.hidden.is_empty() {
            return Ok(());
        }
        let why = "has no effect with --hidden none: there is no hidden layer (the network is \
                   one dense layer from inputs to outputs)";
        if self.dropout != d.dropout {
            return Err(Error::setting("dropout", self.dropout, why));
        }
        if self.activation != d.activation {
            return Err(Error::setting("activation", self.activation.name(), why));
        }
        Ok(())
    }

    pub fn check_network_source(&self) -> Result<()> {
        let source = match (&self.layers, self.net.as_deref()) {
            (Some(_), Some(net)) => {
                return Err(Error::setting(
                    "net",
                    net,
                    "cannot be used with layers: give one description of the network",
                ));
            }
            (Some(_), _) => "--layers",
            (None, Some(net)) if net != "dense" => "--net",
            _ => return self.check_no_hidden(),
        };
        let d = Settings::default();
        let hidden = self.hidden.iter().map(usize::to_string).collect::<Vec<_>>();
        let hidden = if hidden.is_empty() {
            "none".to_string()
        } else {
            hidden.join(",")
        };
        let given: [(&'static str, String, bool); 3] = [
            ("hidden", hidden, self.hidden != d.hidden),
            (
                "activation",
                self.activation.name().to_string(),
                self.activation != d.activation,
            ),
            (
                "dropout",
                self.dropout.to_string(),
                self.dropout != d.dropout,
            ),
        ];
        match given.into_iter().find(|g| g.2) {
            Some((flag, value, _)) => Err(Error::setting(
                flag,
                value,
                format!(
                    "has no effect with {source}: the network is its list of layers \
                     (write dense widths, activations and dropout there)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The checks of the settings [`Settings::train_config`] reads, and of the network's.
    fn check_loop(&self) -> Result<()> {
        self.check_network_source()?;
        check_fraction("val-fraction", self.val_fraction)?;
        if let Some(f) = self.test_fraction {
            check_fraction("test-fraction", f)?;
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::setting("dropout", self.dropout, "must be in [0, 1)"));
        }
        if self.epochs == Some(0) {
            return Err(Error::setting("epochs", 0, "must be ≥ 1"));
        }
        if self.threads == 0 {
            return Err(Error::setting("threads", 0, "must be ≥ 1"));
        }
        if self.threads > MAX_THREADS {
            return Err(Error::setting(
                "threads",
                self.threads,
                format!(
                    "must be at most {MAX_THREADS} (each thread is an operating-system thread)"
                ),
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::setting("l2", self.l2, "must be a finite number ≥ 0"));
        }
        if let Some(t) = self.grad_tol
            && !(t.is_finite() && t > 0.0)
        {
            return Err(Error::setting("grad-tol", t, "must be a number > 0"));
        }
        if let Some(w) = &self.class_weight
            && w != "balanced"
            && w != "none"
        {
            return Err(Error::setting(
                "class-weight",
                w,
                "accepted: balanced, none",
            ));
        }
        if self.hidden.contains(&0) {
            return Err(Error::setting(
                "hidden",
                format!("{:?}", self.hidden),
                "every hidden width must be ≥ 1",
            ));
        }
        self.divergence().map(|_| ())
    }

    /// The divergence rule: the default, or with `divergence-factor`'s factor, or none (0).
    fn divergence(&self) -> Result<Option<crate::train::Divergence>> {
        match self.divergence_factor {
            None => Ok(Some(crate::train::Divergence::default())),
            Some(0.0) => Ok(None),
            Some(f) if f.is_finite() && f > 1.0 => Ok(Some(crate::train::Divergence {
                factor: f,
                ..Default::default()
            })),
            Some(f) => Err(Error::setting(
                "divergence-factor",
                f,
                "must be a number > 1, or 0 to turn the rule off",
            )),
        }
    }

    /// The training-loop settings for a training set of `n` examples.
    pub fn train_config(&self, loss: Loss, n: usize) -> Result<TrainConfig> {
        self.check_loop()?;
        Ok(TrainConfig {
            divergence: self.divergence()?,
            epochs: self.epochs.unwrap_or_else(|| epochs_for(n, self.batch())),
            batch_size: match self.batch() {
                BatchSize::Examples(b) => b,
                BatchSize::Full => n.max(1),
            },
            loss,
            l2: self.l2,
            grad_tol: self.grad_tol,
            patience: self.patience.filter(|&p| p > 0),
            shuffle: !self.no_shuffle,
            flush_subnormals: !self.keep_subnormals,
            threads: self.threads,
            class_weights: None,
            monitor: self.monitor.unwrap_or(match loss {
                Loss::CrossEntropy | Loss::Bce => crate::train::Monitor::Accuracy,
                Loss::Mse => crate::train::Monitor::Loss,
            }),
        })
    }
}

/// What a run's [`Plan`] depends on in its data.
#[derive(Clone, Copy, Debug)]
pub struct DataShape {
    pub task: Task,
    /// Examples in the training part.
    pub n: usize,
    pub has_validation: bool,
    /// A table (its default recipe differs from images').
    pub tabular: bool,
}

/// A run's settings resolved once, in the manner of raw flags turned into a configuration:
/// [`Settings`] are what the flags and the config file say (and what a run records), a plan is
/// what the run does — the settings with the defaults that depend on the data written out, and
/// the validated optimiser, schedule and loop settings built from them.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The settings as the run records them (optimiser, rate, momentum, epochs, patience and
    /// monitor written out).
    pub settings: Settings,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub train: TrainConfig,
}

impl Plan {
    /// The plan with learning rate `lr` (chosen by the range test, `--lr auto`), recorded in
    /// its settings.
    pub fn with_lr(mut self, lr: f64) -> Result<Plan> {
        self.settings.lr = Some(lr);
        self.optimizer = self.settings.optimizer_config()?;
        Ok(self)
    }
}

fn check_fraction(name: &'static str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(Error::setting(name, f, "must be in [0, 1)"))
    }
}
