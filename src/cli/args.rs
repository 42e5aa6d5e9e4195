//! The raw command-line flags, and their resolution (over an optional TOML file) into the
//! library's [`Settings`]. Nothing here trains; it only reads what the user typed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use downhill::data::{Normalization, Task};
use downhill::settings::{BatchSize, Settings};
use downhill::train::Every;
use downhill::{Activation, Init, Loss};

/// Train neural networks by gradient descent, the way the textbook says — and fast.
///
/// downhill minimises a loss L(w) over a training set by walking downhill, w ← w − η∇L, with the
/// gradient ∇L computed by backpropagation over mini-batches.
#[derive(Parser, Debug)]
#[command(name = "downhill", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  downhill train                                   train 784-100-10 on the embedded MNIST digits
  downhill train --optimizer adam --lr 0.001 --epochs 20 --hidden 256,128
  downhill train --data houses.csv --target price  regression on a CSV file
  downhill eval --model runs/<time>/model.safetensors --data digits
  downhill gradcheck --hidden 5,4 --activation tanh";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train and evaluate a network; writes a run folder with the model, metrics and pictures.
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// Evaluate a saved model: loss, accuracy (or RMSE and R²), per-class precision/recall, confusion matrix.
    Eval(EvalArgs),
    /// Predict with a saved model, one output row per input row.
    Predict(PredictArgs),
    /// Time the standard training workloads next to the floor of their matrix products.
    Bench(BenchArgs),
    /// Draw optimisers' paths on a 2-parameter loss surface (the ball rolling downhill).
    #[command(allow_negative_numbers = true)]
    Landscape(LandscapeArgs),
    /// Learning-rate range test: an exponential ramp of η over a few hundred mini-batch steps
    /// from the initial weights; prints the suggested rate and draws loss against η.
    #[command(allow_negative_numbers = true)]
    LrFind(Box<LrFindArgs>),
    /// Check backpropagation against central finite differences, in f64, on a small random batch.
    #[command(allow_negative_numbers = true)]
    Gradcheck(GradcheckArgs),
    /// Serve the browser playground (built by scripts/build-playground.sh) on localhost.
    Playground(PlaygroundArgs),
    /// Backpropagation, visible: one mini-batch through a tiny network — z, a, the loss, δ at
    /// every layer, ∂L/∂W and ∂L/∂b beside their central differences, the update and the loss
    /// after it.
    #[command(allow_negative_numbers = true, after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
}

const EXPLAIN_EXAMPLES: &str = "Examples:
  downhill explain                                 2-3-2 sigmoid network, one built-in example
  downhill explain --batch 4 --optimizer adam --lr 0.01
  downhill explain --input 0.5,-1 --target 1 --hidden 4,3 --activation tanh
  downhill explain --loss mse --input 1,2 --target 0.5,-0.5 --json";

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Hidden layer widths, comma-separated (default 3; each at most 16).
    #[arg(long, value_delimiter = ',', value_name = "N,N,…")]
    pub hidden: Option<Vec<usize>>,
    /// The network as a list of dense layers and activations, as `train --layers` takes it
    /// (`dense 4, tanh, dense 3, relu, dense 2`; the last width is the outputs). Replaces
    /// --hidden and --activation.
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["hidden", "activation"])]
    pub layers: Option<String>,
    /// Activation σ after each hidden layer (default sigmoid, the notes' σ).
    #[arg(long, value_parser = parse_activation, value_name = "relu|sigmoid|tanh|leaky-relu|gelu|identity")]
    pub activation: Option<Activation>,
    /// Loss (default cross-entropy; its targets are class indices, mse's and bce's values).
    #[arg(long, value_parser = parse_loss, value_name = "cross-entropy|mse|bce")]
    pub loss: Option<Loss>,
    /// Weight initialiser (default glorot-uniform for sigmoid and tanh, he-normal for the ReLU
    /// family; with --layers, he-normal when every activation in it is of the ReLU family).
    #[arg(long, value_parser = parse_init, value_name = "glorot-uniform|glorot-normal|he-normal|he-uniform|lecun-normal", conflicts_with = "weights")]
    pub init_scheme: Option<Init>,
    /// Seed of the initial weights (not with --weights, which gives them).
    #[arg(long, default_value_t = 0, conflicts_with = "weights")]
    pub seed: u64,
    /// Outputs of the network (default 2; with --target values, their count).
    #[arg(long)]
    pub outputs: Option<usize>,
    /// One example's inputs, comma-separated; repeat for a mini-batch (replaces the built-in
    /// examples).
    #[arg(long, value_name = "X1,X2,…", allow_hyphen_values = true)]
    pub input: Vec<String>,
    /// The target of each --input: a class index (cross-entropy) or values, comma-separated.
    #[arg(long, value_name = "Y", allow_hyphen_values = true)]
    pub target: Vec<String>,
    /// Examples in the mini-batch, taken from the built-in examples (default 1, at most 8).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Weights to start from: a JSON file with `params` as `explain --json` prints them
    /// (layers 1 … L, each `{"weight": [[…]], "bias": […]}`).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Optimiser taking the step (PyTorch's rule and defaults).
    #[arg(long, default_value = "sgd", value_parser = ["sgd", "adam", "adamw", "rmsprop", "adagrad"])]
    pub optimizer: String,
    /// Learning rate η (default 0.5 for sgd, PyTorch's default otherwise).
    #[arg(long, value_name = "η")]
    pub lr: Option<f64>,
    /// Momentum μ (sgd, rmsprop).
    #[arg(long, value_name = "μ")]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// PyTorch's weight_decay (decoupled for adamw).
    #[arg(long, value_name = "WD")]
    pub weight_decay: Option<f64>,
    /// Step h of the central differences.
    #[arg(long, default_value_t = 1e-5)]
    pub h: f64,
    /// Print everything as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Flags that describe the network (shared by train and gradcheck).
#[derive(Args, Debug, Default, Clone)]
pub struct NetworkFlags {
    /// Hidden layer widths, comma-separated (default 100); `none`: no hidden layer (linear or
    /// logistic regression; `hidden = []` in a config file).
    #[arg(long, value_parser = parse_hidden, value_name = "N,N,…|none")]
    pub hidden: Option<HiddenWidths>,
    /// Activation after each hidden layer.
    #[arg(long, value_parser = parse_activation, value_name = "relu|sigmoid|tanh|leaky-relu|gelu|identity")]
    pub activation: Option<Activation>,
    /// Training loss (default: cross-entropy to classify, mse to regress).
    #[arg(long, value_parser = parse_loss, value_name = "cross-entropy|mse|bce")]
    pub loss: Option<Loss>,
    /// Weight initialiser (default he-normal for the ReLU family, glorot-uniform otherwise; with
    /// --layers or --net, he-normal when every activation in it is of the ReLU family).
    #[arg(long, value_parser = parse_init, value_name = "glorot-uniform|glorot-normal|he-normal|he-uniform|lecun-normal")]
    pub init_scheme: Option<Init>,
    /// Dropout probability after each hidden activation (training only).
    #[arg(long, value_name = "P")]
    pub dropout: Option<f64>,
    /// The notes' L2 penalty λ: minimise L(w) + λ Σ w² over weights (PyTorch's weight_decay = 2λ).
    #[arg(long, value_name = "λ")]
    pub l2: Option<f64>,
    /// Seed for initial weights, splits, batch order and dropout.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The network as a list of layers, e.g. "conv 32 3, relu, maxpool 2, flatten, dense 10"
    /// (dense N, conv O K [stride S] [pad P] [nobias], maxpool K, avgpool K, batchnorm, flatten,
    /// dropout P, activations; input sizes are inferred). Replaces --hidden.
    #[arg(long, value_name = "SPEC", conflicts_with = "net")]
    pub layers: Option<String>,
    /// A preset network: dense (--hidden), lenet5, keras-convnet.
    #[arg(long, value_name = "dense|lenet5|keras-convnet")]
    pub net: Option<String>,
    /// The shape of one example as an image, CxHxW (e.g. 1x28x28 for a CSV of pixels).
    #[arg(long, value_name = "CxHxW")]
    pub image_shape: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// digits (embedded 5,000 MNIST digits), fashion-mnist, a folder of MNIST-format IDX files, or a CSV file.
    #[arg(long, value_name = "SPEC")]
    pub data: Option<String>,
    /// A separate test set (CSV, or an IDX images file with its labels file beside it).
    #[arg(long, value_name = "FILE", conflicts_with = "test_fraction")]
    pub test: Option<PathBuf>,
    /// Share held out as the test set when there is none (default 0.2; the digits' 1,000). 0 allowed.
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// CSV target column: name or 0-based index, several comma-separated for regression (default: the last).
    #[arg(long, value_name = "COL")]
    pub target: Option<String>,
    /// The CSV's first row is a header (default: detected).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The CSV has no header row.
    #[arg(long)]
    pub no_header: bool,
    /// classify or regress (default: inferred from the target).
    #[arg(long, value_parser = parse_task, value_name = "classify|regress")]
    pub task: Option<Task>,
    /// Feature normalisation (default: scale for images, standardize for CSV).
    #[arg(long, value_parser = parse_normalize, value_name = "standardize|scale|none")]
    pub normalize: Option<Normalization>,
    #[command(flatten)]
    pub net: NetworkFlags,
    /// Optimiser (PyTorch's update rule and defaults; `sgd` is plain w ← w − η∇L unless
    /// --momentum is given). Default: Adam, η 0.001, for a CSV table; SGD with momentum 0.9,
    /// η 0.05 for images (recorded in the settings).
    #[arg(long, value_parser = ["sgd", "adam", "adamw", "rmsprop", "adagrad"], value_name = "sgd|adam|adamw|rmsprop|adagrad")]
    pub optimizer: Option<String>,
    /// Learning rate η (default: 0.05 for sgd, PyTorch's default otherwise), or `auto`: chosen
    /// by the learning-rate range test (see `downhill lr-find`) before training.
    #[arg(long, value_parser = parse_lr, value_name = "η|auto")]
    pub lr: Option<LrFlag>,
    /// Momentum μ for sgd or rmsprop (default 0, as in PyTorch; the images' default recipe
    /// without --optimizer is SGD with momentum 0.9, and a table given --momentum uses SGD).
    #[arg(long, value_name = "μ")]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// PyTorch's weight_decay: adds wd·w to every parameter's gradient (decoupled for adamw).
    #[arg(long, value_name = "WD")]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule, per epoch; one-cycle is PyTorch's OneCycleLR per batch (peak = --lr,
    /// pct_start 0.3 or PCT, momentum/β₁ cycled 0.95–0.85–0.95).
    #[arg(
        long,
        value_name = "constant|step:EVERY:GAMMA|exp:GAMMA|cosine|inv-time:D|one-cycle[:PCT]"
    )]
    pub schedule: Option<String>,
    /// Epochs of linear learning-rate warm-up before the schedule.
    #[arg(long, value_name = "EPOCHS")]
    pub warmup: Option<usize>,
    /// Examples per mini-batch, or `full` for full-batch gradient descent (default 64 for
    /// images, 200 for tables).
    #[arg(long, value_parser = parse_batch, value_name = "N|full")]
    pub batch_size: Option<BatchSize>,
    /// Maximum number of epochs (passes over the training set). Default: sized to the data —
    /// enough for 10,000 optimiser steps, between 20 and 200 epochs.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Share of the training data held out for validation (default 0.1). 0 allowed.
    #[arg(long, value_name = "F")]
    pub val_fraction: Option<f64>,
    /// Early stopping: stop after N epochs without a better validation figure (--monitor), keep
    /// the best weights. Default with a validation split: 10 epochs, or enough epochs for 500
    /// optimiser steps if that is more (on a small table it can exceed --epochs: then only the
    /// best weights are kept); without one, off. 0 turns it off.
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Stop when the full training gradient's norm ‖∇L‖ is at most T.
    #[arg(long, value_name = "T")]
    pub grad_tol: Option<f64>,
    /// Threads: each batch split between them (with dropout, each thread drawing its own masks);
    /// `auto`: as many as make a step faster on this machine, timed before training (default 1,
    /// so that a seed gives the same run on every machine).
    #[arg(long, value_parser = parse_threads, value_name = "N|auto")]
    pub threads: Option<ThreadsFlag>,
    /// Start from the weights in this safetensors file (same architecture).
    #[arg(long, value_name = "FILE.safetensors")]
    pub init: Option<PathBuf>,
    /// Take mini-batches in data order (to reproduce another framework's run step for step).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Keep subnormal floats (exact IEEE arithmetic) instead of flushing them to zero on the
    /// training threads; on Intel cores this can make steps several times slower.
    #[arg(long)]
    pub keep_subnormals: bool,
    /// Write checkpoint.safetensors into the run folder every N steps, or every `epoch`.
    #[arg(long, value_parser = parse_every, value_name = "N|epoch")]
    pub checkpoint_every: Option<Every>,
    /// Keep the weights before training and after each epoch (trajectory.safetensors), so that
    /// `downhill landscape --model` can draw the training path.
    #[arg(long)]
    pub snapshots: bool,
    /// Continue the run in DIR from its checkpoint, with the settings recorded there.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// The run folder (default runs/<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Read settings from a TOML file (keys are the long flag names); flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// SGD's dampening τ of the momentum buffer (PyTorch's `dampening`, default 0).
    #[arg(long, value_name = "τ")]
    pub dampening: Option<f64>,
    /// RMSprop's centered variant (divides by the estimated variance of the gradient).
    #[arg(long)]
    pub centered: bool,
    /// Divergence rule: stop with an error when the mini-batch loss stays above F times its
    /// starting value (the first mini-batch's, at least chance level) for 5 steps in a row
    /// (default 10; 0 turns the rule off — NaN and infinite losses are always caught).
    #[arg(long, value_name = "F")]
    pub divergence_factor: Option<f64>,
    /// What early stopping watches on the validation set (default: accuracy to classify, loss
    /// to regress).
    #[arg(long, value_parser = parse_monitor, value_name = "loss|accuracy")]
    pub monitor: Option<downhill::train::Monitor>,
    /// CSV: use only these columns as features (names, or 0-based indices without a header).
    #[arg(long, value_delimiter = ',', value_name = "COL,COL,…")]
    pub features: Option<Vec<String>>,
    /// CSV: never use these columns as features.
    #[arg(long, value_delimiter = ',', value_name = "COL,COL,…")]
    pub drop: Option<Vec<String>>,
    /// CSV: one-hot encode these columns, even if they hold numbers.
    #[arg(long, value_delimiter = ',', value_name = "COL,COL,…")]
    pub categorical: Option<Vec<String>>,
    /// Weight the classification loss per class: `balanced` is scikit-learn's
    /// n / (classes × count), counted on the training part (default none).
    #[arg(long, value_parser = ["balanced", "none"], value_name = "balanced|none")]
    pub class_weight: Option<String>,
}

#[derive(Args, Debug)]
pub struct LrFindArgs {
    /// The data, network and optimiser flags of `downhill train` (the learning rate is ramped).
    #[command(flatten)]
    pub train: TrainArgs,
    /// First learning rate of the ramp.
    #[arg(long, default_value_t = 1e-7, value_name = "η")]
    pub start_lr: f64,
    /// Last learning rate of the ramp (the test stops earlier when the loss blows up).
    #[arg(long, default_value_t = 10.0, value_name = "η")]
    pub end_lr: f64,
    /// Mini-batch steps of the ramp.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub steps: usize,
    /// Stop when the smoothed loss exceeds this multiple of its minimum.
    #[arg(long, default_value_t = 4.0, value_name = "K")]
    pub blowup: f64,
    /// The picture: loss against learning rate (.svg or .png).
    #[arg(long, default_value = "lr-find.svg", value_name = "FILE.svg|FILE.png")]
    pub plot: PathBuf,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A model written by downhill train.
    #[arg(long, value_name = "FILE.safetensors")]
    pub model: PathBuf,
    /// digits / fashion-mnist / an IDX folder (their test sets), or a CSV file (all its rows).
    #[arg(long, value_name = "SPEC")]
    pub data: String,
    /// Print the figures as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[arg(long, value_name = "FILE.safetensors")]
    pub model: PathBuf,
    /// CSV of features (a header naming the model's features selects them by name).
    #[arg(long, value_name = "FILE.csv")]
    pub input: PathBuf,
    /// Where to write the predictions (default: stdout).
    #[arg(long, value_name = "FILE.csv")]
    pub output: Option<PathBuf>,
    /// Also write each class's probability.
    #[arg(long)]
    pub proba: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// fashion-mnist (the 60,000 training images; the default), digits, or synthetic (random
    /// images): the image workloads' data.
    #[arg(long, value_name = "fashion-mnist|digits|synthetic")]
    pub data: Option<String>,
    /// Examples of synthetic data (default 60,000; with --data synthetic only).
    #[arg(long, value_name = "N")]
    pub examples: Option<usize>,
    /// Epochs per image workload (the median epoch is reported; default 3). The table workload
    /// runs one.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Only workloads whose name contains this (e.g. "batch 256", "table").
    #[arg(long)]
    pub only: Option<String>,
    /// Rows of the generated table of the big-table workload (written to a temporary folder;
    /// default 1,000,000; only when that workload runs).
    #[arg(long, value_name = "N")]
    pub table_rows: Option<usize>,
    /// Write the generated table of the big-table workload (--table-rows rows) to FILE and
    /// stop, e.g. to read the same file with pandas (bench/table_load.py).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["table_file", "only", "json", "examples", "epochs", "data"]
    )]
    pub write_table: Option<std::path::PathBuf>,
    /// Measure the big-table workload on FILE (a CSV whose target column is named y) instead of
    /// a generated table.
    #[arg(long, value_name = "FILE", conflicts_with = "table_rows")]
    pub table_file: Option<std::path::PathBuf>,
    /// Print the measurements as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LandscapeArgs {
    /// The surface.
    #[arg(long, default_value = "rosenbrock", value_parser = ["quadratic", "rosenbrock", "himmelblau", "beale", "saddle", "six-hump-camel"], conflicts_with = "model")]
    pub surface: String,
    /// Condition number κ of the quadratic bowl ½(x² + κy²) (default 10; --surface quadratic
    /// only).
    #[arg(long, value_name = "κ", conflicts_with = "model")]
    pub condition: Option<f64>,
    /// Optimisers, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gd,momentum,nesterov,adam,rmsprop,adagrad",
        value_name = "gd,momentum,nesterov,adam,rmsprop,adagrad",
        conflicts_with = "model"
    )]
    pub optimizers: Vec<String>,
    /// Learning rate for all (`0.01`) or per optimiser (`gd=0.001,adam=0.05`); others keep a default that suits the surface.
    #[arg(long, value_name = "η | NAME=η,…", conflicts_with = "model")]
    pub lr: Option<String>,
    /// Plain gradient descent with each of these learning rates, side by side (crawl, converge, oscillate, diverge).
    #[arg(long, value_delimiter = ',', value_name = "η,η,…", conflicts_with = "model", conflicts_with_all = ["optimizers", "lr"])]
    pub lr_sweep: Option<Vec<f64>>,
    /// Start point (default: one that shows the surface's character).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "X,Y",
        conflicts_with = "model"
    )]
    pub start: Option<Vec<f64>>,
    #[arg(long, default_value_t = 500, conflicts_with = "model")]
    pub steps: usize,
    /// σ of Gaussian noise added to each gradient component (the stochastic in SGD).
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "σ",
        conflicts_with = "model"
    )]
    pub noise: f64,
    /// A path has converged when f − f_min ≤ this.
    #[arg(long, default_value_t = 1e-4, conflicts_with = "model")]
    pub tol: f64,
    /// Seed of the gradient noise (--noise), or with --model of the random directions (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The picture (.svg or .png); default landscape-<surface>.svg (landscape-model.svg with --model).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub out: Option<PathBuf>,
    /// Instead of a surface: the loss of this trained model on a 2-D slice through its weights
    /// along two random filter-normalised directions (Li et al. 2018).
    #[arg(long, value_name = "FILE.safetensors", requires = "data")]
    pub model: Option<PathBuf>,
    /// The data for --model (as for eval: digits, fashion-mnist, a folder, a CSV).
    #[arg(long, value_name = "SPEC", requires = "model")]
    pub data: Option<String>,
    /// With --model: the slice spans [-S, S] along each random direction (default 1; not with a
    /// run's trajectory, whose slice is fitted to the path).
    #[arg(long, value_name = "S", requires = "model")]
    pub span: Option<f64>,
    /// With --model: grid points along each direction.
    #[arg(long, default_value_t = 31, requires = "model")]
    pub points: usize,
    /// With --model: use random filter-normalised directions even when the run kept a trajectory.
    #[arg(long, requires = "model")]
    pub random_directions: bool,
    /// With --model: at most this many examples of the data are evaluated per grid point.
    #[arg(long, default_value_t = 2000, requires = "model")]
    pub examples: usize,
    /// Print per optimiser: final point, final loss, steps to the tolerance, diverged.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GradcheckArgs {
    #[command(flatten)]
    pub net: NetworkFlags,
    /// Inputs of the random network (default 6; with --image-shape, its size).
    #[arg(long)]
    pub inputs: Option<usize>,
    /// Outputs (classes) of the random network.
    #[arg(long, default_value_t = 3)]
    pub outputs: usize,
    /// Examples in the random batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Largest acceptable relative error; exit status 1 above it.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    #[arg(long)]
    pub json: bool,
}

fn one_of<T: Copy>(s: &str, all: &[T], name: impl Fn(T) -> &'static str) -> Result<T, String> {
    all.iter().copied().find(|&v| name(v) == s).ok_or_else(|| {
        format!(
            "accepted values: {}",
            all.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", ")
        )
    })
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    one_of(s, &Activation::ALL, Activation::name)
}

fn parse_loss(s: &str) -> Result<Loss, String> {
    one_of(s, &Loss::ALL, Loss::name)
}

fn parse_init(s: &str) -> Result<Init, String> {
    one_of(s, &Init::ALL, Init::name)
}

fn parse_task(s: &str) -> Result<Task, String> {
    one_of(s, &[Task::Classify, Task::Regress], |t| match t {
        Task::Classify => "classify",
        Task::Regress => "regress",
    })
}

fn parse_normalize(s: &str) -> Result<Normalization, String> {
    one_of(
        s,
        &[
            Normalization::Standardize,
            Normalization::Scale,
            Normalization::None,
        ],
        |n| match n {
            Normalization::Standardize => "standardize",
            Normalization::Scale => "scale",
            Normalization::None => "none",
        },
    )
}

/// `--lr`: a rate, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrFlag {
    Rate(f64),
    Auto,
}

#[derive(Clone, Copy, Debug)]
pub enum ThreadsFlag {
    Count(usize),
    Auto,
}

fn parse_threads(s: &str) -> Result<ThreadsFlag, String> {
    if s == "auto" {
        return Ok(ThreadsFlag::Auto);
    }
    s.parse::<usize>()
        .map(ThreadsFlag::Count)
        .map_err(|_| "a whole number of threads ≥ 1, or `auto` to time the step".to_string())
}

fn parse_lr(s: &str) -> Result<LrFlag, String> {
    if s == "auto" {
        return Ok(LrFlag::Auto);
    }
    s.parse::<f64>()
        .map(LrFlag::Rate)
        .map_err(|_| "a number (the learning rate η), or `auto` for the range test".to_string())
}

fn parse_monitor(s: &str) -> Result<downhill::train::Monitor, String> {
    use downhill::train::Monitor;
    one_of(s, &[Monitor::Loss, Monitor::Accuracy], |m| match m {
        Monitor::Loss => "loss",
        Monitor::Accuracy => "accuracy",
    })
}

fn parse_every(s: &str) -> Result<Every, String> {
    s.parse()
        .map_err(|_| "a whole number of steps ≥ 1, or `epoch`".to_string())
}

fn parse_batch(s: &str) -> Result<BatchSize, String> {
    s.parse()
        .map_err(|_| "a whole number ≥ 1, or `full`".to_string())
}

/// The widths of `--hidden` (empty for `none`).
#[derive(Clone, Debug)]
pub struct HiddenWidths(pub Vec<usize>);

fn parse_hidden(s: &str) -> Result<HiddenWidths, String> {
    if s.trim() == "none" {
        return Ok(HiddenWidths(Vec::new()));
    }
    s.split(',')
        .map(|w| {
            w.trim().parse::<usize>().map_err(|_| {
                format!(
                    "`{w}` is not a width: widths are whole numbers, comma-separated, or `none`"
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(HiddenWidths)
}

impl NetworkFlags {
    /// Writes the flags that were given over `s`.
    pub fn apply(&self, s: &mut Settings) {
        set(&mut s.hidden, self.hidden.clone().map(|h| h.0));
        set(&mut s.activation, self.activation);
        over(&self.loss, &mut s.loss);
        over(&self.init_scheme, &mut s.init_scheme);
        set(&mut s.dropout, self.dropout);
        set(&mut s.l2, self.l2);
        set(&mut s.seed, self.seed);
        if self.layers.is_some() {
            (s.layers, s.net) = (self.layers.clone(), None);
        }
        if self.net.is_some() {
            (s.net, s.layers) = (self.net.clone(), None);
        }
        over(&self.image_shape, &mut s.image_shape);
    }
}

/// An optional setting: the flag's value if given, else what the file or default said.
fn over<T: Clone>(v: &Option<T>, slot: &mut Option<T>) {
    if v.is_some() {
        slot.clone_from(v);
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// A `--config` file's settings. `lr = "auto"` is read as `--lr auto` is (the key
/// `lr-auto = true` also works): keys are the long flag names.
/// The settings of the TOML file `path` (`--config`), and its text.
fn read_config(path: &std::path::Path) -> Result<(Settings, String), downhill::Error> {
    let text = std::fs::read_to_string(path).map_err(|source| downhill::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_conflicts(path, &text)?;
    let s = parse_config(&text).map_err(|e| downhill::Error::Data {
        path: path.to_path_buf(),
        location: e.span().map_or("settings".into(), |r| {
            let before = &text[..r.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }),
        message: e.message().to_string(),
    })?;
    Ok((s, text))
}

/// Keys of one config file that say contradicting things (each pair: a value, and `auto` or
/// another source for the same setting). A flag overrides the file's key of either kind.
const CONFLICTING_KEYS: [(&str, &str); 3] = [
    ("lr", "lr-auto"),
    ("threads", "threads-auto"),
    ("test", "test-fraction"),
];

/// Refuses a config file that gives both keys of a [`CONFLICTING_KEYS`] pair (an `…-auto` key
/// only when true; `lr = "auto"` is `lr-auto = true`), naming the line of the second.
fn check_conflicts(path: &std::path::Path, text: &str) -> Result<(), downhill::Error> {
    let Ok(t) = text.parse::<toml::Table>() else {
        return Ok(()); // the parser's own error, with its place, follows
    };
    let given = |k: &str| match t.get(k) {
        Some(toml::Value::Boolean(b)) => *b,
        Some(toml::Value::String(v)) if k == "lr" || k == "threads" => v != "auto",
        Some(_) => true,
        None => false,
    };
    // `lr = "auto"` with `lr-auto = false` (or threads'): the same key both ways.
    for key in ["lr", "threads"] {
        let auto_key = format!("{key}-auto");
        if t.get(key).and_then(toml::Value::as_str) == Some("auto")
            && t.get(&auto_key).and_then(toml::Value::as_bool) == Some(false)
        {
            return Err(downhill::Error::Data {
                path: path.to_path_buf(),
                location: format!("key {auto_key}"),
                message: format!(
                    "is false, but {key} = \"auto\" in the same file asks for it: give one of them"
                ),
            });
        }
    }
    for (a, b) in CONFLICTING_KEYS {
        if given(a) && given(b) {
            let line = key_line(text, b).map_or(String::new(), |l| format!("line {l}, "));
            return Err(downhill::Error::Data {
                path: path.to_path_buf(),
                location: format!("{line}key {b}"),
                message: format!(
                    "contradicts the key {a} in the same file: give one of them (a flag on the \
                     command line overrides either)"
                ),
            });
        }
    }
    Ok(())
}

/// The line (from 1) of a TOML file's top-level `key = …`.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let k = l
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(['"', '\'']);
            k == key
        })
        .map(|i| i + 1)
}

fn parse_config(text: &str) -> Result<Settings, toml::de::Error> {
    let auto = |t: &toml::Table, k: &str| t.get(k).and_then(toml::Value::as_str) == Some("auto");
    if let Ok(mut t) = text.parse::<toml::Table>()
        && (auto(&t, "lr") || auto(&t, "threads"))
    {
        // `threads = "auto"` is `threads-auto = true`, as `lr = "auto"` is `lr-auto = true`.
        for key in ["lr", "threads"] {
            if auto(&t, key) {
                t.remove(key);
                t.insert(format!("{key}-auto"), toml::Value::Boolean(true));
            }
        }
        return toml::Value::Table(t).try_into().map_err(|e| {
            // The table has no places: the same error, placed, from the file with its
            // `lr = "auto"` line blanked (with as many spaces, so that the offsets hold).
            let blanked: String = text
                .split_inclusive('\n')
                .map(|l| {
                    let body = l.trim_end_matches(['\r', '\n']);
                    match is_lr_auto(body) {
                        true => format!("{}{}", " ".repeat(body.len()), &l[body.len()..]),
                        false => l.to_string(),
                    }
                })
                .collect();
            toml::from_str::<Settings>(&blanked)
                .err()
                .filter(|b| b.span().is_some())
                .unwrap_or(e)
        });
    }
    toml::from_str(text)
}

/// Whether a line of a TOML file is `lr = "auto"` (quotes of either kind, a comment after).
fn is_lr_auto(line: &str) -> bool {
    let Some((key, value)) = line.split_once('=') else {
        return false;
    };
    let value = value.split('#').next().unwrap_or("").trim();
    matches!(key.trim(), "lr" | "\"lr\"" | "'lr'") && matches!(value, "\"auto\"" | "'auto'")
}

impl TrainArgs {
    /// Settings: defaults, then the `--config` file, then the flags.
    pub fn settings(&self) -> Result<Settings, downhill::Error> {
        let Some(path) = &self.config else {
            let mut s = Settings::default();
            self.apply(&mut s);
            return Ok(s);
        };
        let (mut s, text) = read_config(path)?;
        self.replace_file_network(&mut s);
        self.apply(&mut s);
        // A contradiction left between the file's network keys (or a flag and one of them) is
        // said with the file and the key's line.
        s.check_network_source()
            .map_err(|e| self.placed_in_file(path, &text, e))?;
        Ok(s)
    }

    /// `e`, a setting out of range, placed in the `--config` file by its key's line when the
    /// value came from the file (the key is there and no flag replaced it), as the file's parse
    /// errors are: `run.toml: line 3, key lr: invalid setting lr = -1: …`. Other errors pass.
    pub fn placed_setting(&self, e: downhill::Error) -> downhill::Error {
        let (
            Some(path),
            downhill::Error::Setting {
                name,
                value,
                reason,
            },
        ) = (&self.config, &e)
        else {
            return e;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return e;
        };
        let Some(line) = key_line(&text, name).or_else(|| {
            // `lr = "auto"` and `threads = "auto"` are read as their `-auto` keys.
            name.strip_suffix("-auto").and_then(|k| key_line(&text, k))
        }) else {
            return e;
        };
        // A flag for the setting makes the flags alone differ from the defaults there.
        let key = |s: &Settings| {
            toml::Table::try_from(s)
                .ok()
                .and_then(|t| t.get(*name).cloned())
        };
        let mut flags_only = Settings::default();
        self.apply(&mut flags_only);
        if key(&flags_only) != key(&Settings::default()) {
            return e;
        }
        downhill::Error::Data {
            path: path.clone(),
            location: format!("line {line}, key {name}"),
            message: format!("invalid setting {name} = {value}: {reason}"),
        }
    }

    fn apply(&self, s: &mut Settings) {
        self.net.apply(s);
        self.apply_data(s);
        self.apply_optimizer(s);
        self.apply_loop(s);
    }

    /// A network described on the command line replaces the config file's description where
    /// they conflict, as any flag replaces the file's value: `--layers` or a convolutional
    /// `--net` the file's dense keys (`hidden`, `activation`, `dropout`); `--hidden`,
    /// `--activation` or `--dropout` the file's `layers` and `net`; `--hidden none` the file's
    /// `activation` and `dropout`, which it leaves without a hidden layer.
    fn replace_file_network(&self, s: &mut Settings) {
        let n = &self.net;
        let d = Settings::default();
        let list = n.layers.is_some() || n.net.as_deref().is_some_and(|v| v != "dense");
        let dense = n.hidden.is_some() || n.activation.is_some() || n.dropout.is_some();
        if list {
            (s.hidden, s.activation, s.dropout) = (d.hidden.clone(), d.activation, d.dropout);
        }
        if dense && !list {
            s.layers = None;
            if s.net.as_deref() != Some("dense") {
                s.net = None;
            }
        }
        if n.hidden.as_ref().is_some_and(|h| h.0.is_empty()) {
            (s.activation, s.dropout) = (d.activation, d.dropout);
        }
    }

    /// `e`, a conflict of network settings, placed in the config file `path` (holding `text`)
    /// when the key it names came from there and not from a flag.
    fn placed_in_file(
        &self,
        path: &std::path::Path,
        text: &str,
        e: downhill::Error,
    ) -> downhill::Error {
        let downhill::Error::Setting {
            name,
            value,
            reason,
        } = &e
        else {
            return e;
        };
        let name: &'static str = name;
        let n = &self.net;
        let flag_given = match name {
            "hidden" => n.hidden.is_some(),
            "activation" => n.activation.is_some(),
            "dropout" => n.dropout.is_some(),
            "net" => n.net.is_some(),
            "layers" => n.layers.is_some(),
            _ => return e,
        };
        let file = if flag_given {
            path.display().to_string()
        } else {
            "the same file".to_string()
        };
        // The other side of the conflict, as the file names it when it is there.
        let mut reason = reason.clone();
        for (key, flag) in [
            ("layers", "--layers"),
            ("net", "--net"),
            ("hidden", "--hidden none"),
        ] {
            let from_flag = match key {
                "layers" => n.layers.is_some(),
                "net" => n.net.is_some(),
                _ => n.hidden.is_some(),
            };
            if !from_flag && reason.contains(flag) {
                let place = key_line(text, key).map_or(String::new(), |l| format!(", line {l}"));
                let said = match key {
                    "hidden" => format!("no hidden layers (key hidden{place} of {file})"),
                    _ => format!("key {key}{place} of {file}"),
                };
                reason = reason.replacen(flag, &said, 1);
            }
        }
        if flag_given {
            return downhill::Error::Setting {
                name,
                value: value.clone(),
                reason,
            };
        }
        let line = key_line(text, name).map_or(String::new(), |l| format!("line {l}, "));
        downhill::Error::Data {
            path: path.to_path_buf(),
            location: format!("{line}key {name}"),
            message: format!(
                "{name} = {value} {reason}; a flag on the command line replaces the file's key"
            ),
        }
    }

    /// The data flags over `s`: the data, its test set and splits, the CSV's columns.
    fn apply_data(&self, s: &mut Settings) {
        set(&mut s.data, self.data.clone());
        // A test file and a test fraction are two answers to one question: the flag given
        // replaces the config file's answer of either kind.
        if self.test.is_some() {
            s.test_fraction = None;
        }
        if self.test_fraction.is_some() {
            s.test = None;
        }
        over(&self.test, &mut s.test);
        over(&self.test_fraction, &mut s.test_fraction);
        over(&self.target, &mut s.target);
        if self.header || self.no_header {
            s.header = Some(self.header);
        }
        over(&self.task, &mut s.task);
        over(&self.normalize, &mut s.normalize);
        set(&mut s.val_fraction, self.val_fraction);
        over(&self.features, &mut s.features);
        over(&self.drop, &mut s.drop);
        over(&self.categorical, &mut s.categorical);
        over(&self.class_weight, &mut s.class_weight);
    }

    /// The optimiser's flags over `s`: which, its rate (or `auto`), momentum and decay, the
    /// schedule.
    fn apply_optimizer(&self, s: &mut Settings) {
        over(&self.optimizer, &mut s.optimizer);
        match self.lr {
            Some(LrFlag::Rate(v)) => {
                s.lr = Some(v);
                s.lr_auto = false;
            }
            Some(LrFlag::Auto) => {
                s.lr = None;
                s.lr_auto = true;
            }
            None => {}
        }
        over(&self.momentum, &mut s.momentum);
        s.nesterov |= self.nesterov;
        over(&self.weight_decay, &mut s.weight_decay);
        over(&self.dampening, &mut s.dampening);
        s.centered |= self.centered;
        set(&mut s.schedule, self.schedule.clone());
        set(&mut s.warmup, self.warmup);
    }

    /// The training loop's flags over `s`: batches, epochs, stopping rules, threads, the
    /// starting weights, checkpoints and the run folder.
    fn apply_loop(&self, s: &mut Settings) {
        over(&self.batch_size, &mut s.batch_size);
        over(&self.epochs, &mut s.epochs);
        over(&self.patience, &mut s.patience);
        over(&self.grad_tol, &mut s.grad_tol);
        over(&self.monitor, &mut s.monitor);
        over(&self.divergence_factor, &mut s.divergence_factor);
        match self.threads {
            Some(ThreadsFlag::Count(n)) => {
                s.threads = n;
                s.threads_auto = false;
            }
            Some(ThreadsFlag::Auto) => s.threads_auto = true,
            None => {}
        }
        over(&self.init, &mut s.init);
        s.no_shuffle |= self.no_shuffle;
        s.keep_subnormals |= self.keep_subnormals;
        s.snapshots |= self.snapshots;
        over(&self.checkpoint_every, &mut s.checkpoint_every);
        over(&self.out, &mut s.out);
    }
}

/// `downhill playground`: serve the built playground folder.
#[derive(Args, Debug)]
pub struct PlaygroundArgs {
    /// The built site (scripts/build-playground.sh writes target/playground).
    #[arg(long, default_value = "target/playground", value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// Port on 127.0.0.1 (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
}
