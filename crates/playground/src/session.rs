//! A training session the playground drives a few mini-batches at a time: the network, its data
//! (a 2-D data set, the embedded digits, or a table), and a [`Stepper`] — which runs the
//! training loop's own step, so the page runs exactly the update the CLI runs.

use rand::SeedableRng;

use super::data2d;
use downhill_core::data::{Dataset, Normalization, Targets, split};
use downhill_core::error::{Error, Result};
use downhill_core::layers::{Activation, Layer};
use downhill_core::loss::Loss;
use downhill_core::network::{Network, Workspace};
use downhill_core::optim::{OptimizerConfig, Schedule};
use downhill_core::rng::Rng;
use downhill_core::train::{Evaluation, Stepper, TrainConfig, evaluate};

/// What a session trains: the playground's settings panel.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetSpec {
    /// A 2-D data set ([`data2d::DATASETS`]), or `"digits"` (the embedded MNIST digits), or
    /// `"table"` (a data set handed to [`Session::from_csv`]).
    pub data: String,
    /// How many 2-D points, or how many digits (at most 5,000).
    pub points: usize,
    /// The 2-D data's jitter, in [0, 1] (see [`data2d::generate`]).
    pub noise: f64,
    /// The share of the examples held out as the test set, in (0, 1).
    pub test_fraction: f64,
    /// The input features of 2-D data ([`data2d::FEATURES`]).
    pub features: Vec<String>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// A network as `--layers` describes it (`conv 8 3 pad 1, relu, maxpool 2, flatten, dense`,
    /// see [`downhill_core::netspec`]), instead of `hidden` and `activation`; on the digits, image
    /// layers see 1 × 28 × 28 images.
    pub layers: Option<String>,
    /// `None`: cross-entropy to classify, MSE to regress.
    pub loss: Option<Loss>,
    /// μ of the L1 penalty μ Σ |w|.
    pub l1: f64,
    /// λ of the L2 penalty λ Σ w².
    pub l2: f64,
    pub optimizer: OptimizerConfig,
    /// A schedule as the CLI's `--schedule` takes it (`constant`, `step:10:0.5`, `cosine`, …).
    pub schedule: String,
    /// The schedule's horizon in epochs (after it, the rate stays where the schedule ends).
    pub epochs: usize,
    /// 1 … the training set's size (full-batch gradient descent).
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for NetSpec {
    /// The spiral with every feature and two hidden layers of 8 tanh units, Adam at η = 0.03.
    fn default() -> Self {
        NetSpec {
            data: "spiral".into(),
            points: 500,
            noise: 0.0,
            test_fraction: 0.5,
            features: data2d::FEATURES.iter().map(|s| s.to_string()).collect(),
            hidden: vec![8, 8],
            activation: Activation::Tanh,
            layers: None,
            loss: None,
            l1: 0.0,
            l2: 0.0,
            optimizer: OptimizerConfig::Adam(downhill_core::optim::AdamConfig {
                lr: 0.03,
                ..Default::default()
            }),
            schedule: "constant".into(),
            epochs: 100,
            batch_size: 10,
            seed: 1,
        }
    }
}

/// The losses after the latest steps.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Progress {
    pub step: usize,
    pub epoch: usize,
    /// The mean loss of the training and test sets (data loss, without the penalty).
    pub train_loss: f64,
    pub test_loss: f64,
    pub train_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// The learning rate of the latest step.
    pub lr: f64,
}

/// A network being trained step by step.
pub struct Session {
    pub spec: NetSpec,
    pub net: Network<f32>,
    pub loss: Loss,
    pub train: Dataset,
    pub test: Dataset,
    /// The 2-D points of the training and test sets (empty for other data).
    pub train_points: Vec<[f64; 2]>,
    pub test_points: Vec<[f64; 2]>,
    stepper: Stepper<f32>,
    rng: Rng,
    /// Steps taken, and completed epochs.
    pub step: usize,
    pub epoch: usize,
    /// The largest batch the scratch workspace for grids and predictions holds.
    scratch: Option<Workspace<f32>>,
    /// An uploaded table's column map, names and target scaling, for its model file.
    table: Option<TableInfo>,
}

/// What a model trained on an uploaded CSV records about its columns, as `downhill train`'s do.
#[derive(Clone, Debug)]
struct TableInfo {
    columns: downhill_data::columns::Columns,
    feature_names: Vec<String>,
    target_names: Vec<String>,
    target_scaling: Option<downhill_data::columns::TargetScaling>,
    /// One line per column: how it was read (the CLI's data report).
    report: Vec<String>,
}

/// Checks the settings `build` cannot leave to the network: the test share, the hidden
/// widths and the penalties.
fn check_settings(spec: &NetSpec) -> Result<()> {
    if !(spec.test_fraction > 0.0 && spec.test_fraction < 1.0) {
        return Err(Error::setting(
            "test_fraction",
            spec.test_fraction,
            "must be in (0, 1)",
        ));
    }
    if spec.hidden.len() > 8 || spec.hidden.iter().any(|&w| w == 0 || w > 1024) {
        return Err(Error::setting(
            "hidden",
            format!("{:?}", spec.hidden),
            "at most 8 hidden layers of 1 … 1024 units",
        ));
    }
    if !(spec.l1 >= 0.0 && spec.l1.is_finite() && spec.l2 >= 0.0 && spec.l2.is_finite()) {
        return Err(Error::setting(
            "l1/l2",
            format!("{}/{}", spec.l1, spec.l2),
            "penalties must be finite numbers ≥ 0",
        ));
    }
    Ok(())
}

/// Fits the data's targets to the loss: two classes under a one-output loss (BCE, or MSE onto
/// 0/1) become values; a loss the targets cannot feed is an error.
fn targets_for_loss(data: Dataset, classes: Option<usize>, loss: Loss) -> Result<Dataset> {
    Ok(match (classes, loss) {
        (Some(2), Loss::Bce | Loss::Mse) => match data.targets() {
            Targets::Classes { labels, .. } => {
                let y = labels.iter().map(|&l| l as f32).collect();
                let mut d = Dataset::new(
                    data.features().clone(),
                    data.n_features(),
                    Targets::Values { data: y, cols: 1 },
                )?;
                d.set_normalizer(data.normalizer().clone())?;
                d
            }
            Targets::Values { .. } => unreachable!("classes"),
        },
        (Some(_), Loss::CrossEntropy) | (None, Loss::Mse) => data,
        (None, Loss::Bce) => {
            if let Targets::Values { data: y, .. } = data.targets()
                && y.iter().any(|&v| !(0.0..=1.0).contains(&v))
            {
                return Err(Error::setting(
                    "loss",
                    "bce",
                    "binary cross-entropy needs targets in [0, 1]; this data's values are not",
                ));
            }
            data
        }
        (None, Loss::CrossEntropy) => {
            return Err(Error::setting(
                "loss",
                "cross-entropy",
                "cross-entropy needs classes; this data has values (use mse)",
            ));
        }
        (Some(k), l) => {
            return Err(Error::setting(
                "loss",
                format!("{l:?}"),
                format!("{k} classes need cross-entropy"),
            ));
        }
    })
}

/// The network `spec` describes for `train`: its `layers`, or else an MLP of `hidden` widths,
/// initialised as the CLI's would be.
fn network_for(spec: &NetSpec, train: &Dataset, rng: &mut Rng) -> Result<Network<f32>> {
    let description = downhill_core::netspec::Description {
        layers: spec.layers.as_deref().filter(|t| !t.trim().is_empty()),
        net: None,
        image_shape: None,
        hidden: &spec.hidden,
        activation: spec.activation,
        dropout: 0.0,
        init: None,
    };
    let resolved = description.resolve(train.n_features(), train.n_outputs(), train.image)?;
    description.build(resolved, rng)
}

impl Session {
    /// A session on the data `spec.data` names (a 2-D data set or the digits).
    pub fn new(spec: NetSpec) -> Result<Session> {
        let mut rng = Rng::seed_from_u64(spec.seed);
        let (data, points) = if spec.data == "digits" {
            let mut d = downhill_data::digits::load()?;
            let n = spec.points.clamp(20, d.len());
            if n < d.len() {
                // The rows are sorted by label: a stratified random subset.
                let (_, keep) = split::hold_out_indices(&d, n as f64 / d.len() as f64, &mut rng);
                d = d.subset(&keep);
            }
            let norm = d.fit_normalizer(Normalization::Scale);
            d.set_normalizer(norm)?;
            (d, Vec::new())
        } else if spec.data == "table" {
            return Err(Error::setting(
                "data",
                "table",
                "a table is given with its rows (Session::with_data)",
            ));
        } else {
            data2d::check_features(&spec.features)?;
            let (pts, ys) = data2d::generate(&spec.data, spec.points, spec.noise, &mut rng)?;
            let x = data2d::features_of(&pts, &spec.features);
            let d = if data2d::is_regression(&spec.data) {
                Dataset::regression(
                    x,
                    spec.features.len(),
                    ys.iter().map(|&v| v as f32).collect(),
                    1,
                )?
            } else {
                Dataset::classification(
                    x,
                    spec.features.len(),
                    ys.iter().map(|&v| v as u32).collect(),
                    2,
                )?
            };
            (d, pts)
        };
        Session::build(spec, data, points, rng, None)
    }

    /// A session on an uploaded CSV file (`name` names it in errors), read with the CLI's
    /// column handling (`data::csv::load_bytes`: header detection, the last column the target,
    /// numbers, booleans and categories, missing cells), split by `spec.test_fraction`, features
    /// standardised on the training part (one-hot and boolean columns stay 0/1) and regression
    /// targets standardised, as `downhill train` does.
    pub fn from_csv(spec: NetSpec, name: &str, bytes: Vec<u8>) -> Result<Session> {
        let path = std::path::PathBuf::from(name);
        let bytes = downhill_data::csv::gunzip_if_gz(&path, bytes)?;
        let loaded = downhill_data::csv::load_bytes(&path, &bytes, &Default::default())?;
        let rng = Rng::seed_from_u64(spec.seed);
        let info = TableInfo {
            feature_names: loaded.feature_names.clone(),
            target_names: loaded.target_names.clone(),
            report: loaded.columns.report(),
            columns: loaded.columns,
            target_scaling: None,
        };
        Session::build(spec, loaded.data, Vec::new(), rng, Some(info))
    }

    /// How an uploaded table's columns were read (empty for other data).
    pub fn table_report(&self) -> Vec<String> {
        self.table
            .as_ref()
            .map_or_else(Vec::new, |t| t.report.clone())
    }

    /// Checks the settings, fits the targets to the loss, splits off the test set and builds
    /// the network and its stepper.
    fn build(
        spec: NetSpec,
        data: Dataset,
        points: Vec<[f64; 2]>,
        mut rng: Rng,
        mut table: Option<TableInfo>,
    ) -> Result<Session> {
        check_settings(&spec)?;
        spec.optimizer.validate()?;
        let schedule: Schedule = spec.schedule.parse()?;
        let classes = match data.targets() {
            Targets::Classes { n_classes, .. } => Some(*n_classes),
            Targets::Values { .. } => None,
        };
        let loss = spec.loss.unwrap_or(if classes.is_some() {
            Loss::CrossEntropy
        } else {
            Loss::Mse
        });
        let data = targets_for_loss(data, classes, loss)?;
        let (keep, held) = split::hold_out_indices(&data, spec.test_fraction, &mut rng);
        if keep.is_empty() || held.is_empty() {
            return Err(Error::setting(
                "test_fraction",
                spec.test_fraction,
                format!(
                    "leaves an empty training or test set of {} examples",
                    data.len()
                ),
            ));
        }
        let (mut train, mut test) = (data.subset(&keep), data.subset(&held));
        if let Some(t) = table.as_mut() {
            scale_table(t, &mut train, &mut test, loss)?;
        }
        let pick = |idx: &[usize]| idx.iter().filter_map(|&i| points.get(i).copied()).collect();
        let (train_points, test_points) = (pick(&keep), pick(&held));
        let net = network_for(&spec, &train, &mut rng)?;
        let bs = spec.batch_size.clamp(1, train.len());
        if spec.batch_size == 0 {
            return Err(Error::setting("batch_size", 0, "must be ≥ 1"));
        }
        let cfg = TrainConfig {
            batch_size: bs,
            loss,
            l2: spec.l2,
            threads: 1,
            epochs: spec.epochs.max(1),
            ..TrainConfig::default()
        };
        let mut stepper = Stepper::new(&net, &train, &spec.optimizer, &schedule, &cfg)?;
        stepper.set_penalty(net.penalty(spec.l2).with_l1(spec.l1));
        Ok(Session {
            spec,
            net,
            loss,
            train,
            test,
            train_points,
            test_points,
            stepper,
            rng,
            step: 0,
            epoch: 0,
            scratch: None,
            table,
        })
    }

    /// Runs `steps` mini-batch steps of the training loop (a fresh shuffled order at each
    /// epoch's start) and returns the mean loss of the last batch. Fails, as `downhill train`
    /// does, when the loss diverges.
    pub fn run(&mut self, steps: usize) -> Result<f64> {
        let result = self
            .stepper
            .run(&mut self.net, &self.train, &mut self.rng, steps);
        let (epoch, _) = self.stepper.position();
        self.epoch = epoch;
        self.step = self.stepper.steps_taken();
        result
    }

    /// A copy of the session's generator (tests compare its steps with the training loop's).
    #[cfg(test)]
    pub(crate) fn rng_for_test(&self) -> Rng {
        self.rng.clone()
    }

    /// The training and test sets' losses and accuracies now.
    pub fn progress(&self) -> Result<Progress> {
        let tr: Evaluation = evaluate(&self.net, &self.train, self.loss)?;
        let te: Evaluation = evaluate(&self.net, &self.test, self.loss)?;
        Ok(Progress {
            step: self.step,
            epoch: self.epoch,
            train_loss: tr.loss,
            test_loss: te.loss,
            train_accuracy: tr.accuracy,
            test_accuracy: te.accuracy,
            lr: self.stepper.lr(),
        })
    }

    /// The network's outputs for `rows` raw feature rows (normalised here as the data is), with
    /// softmax (cross-entropy) or sigmoid (BCE) applied: class probabilities, or values.
    pub fn predict(&mut self, rows: &[f32]) -> Result<Vec<f32>> {
        let d = self.net.inputs();
        if d == 0 || !rows.len().is_multiple_of(d) {
            return Err(Error::shape("prediction input", d, rows.len()));
        }
        let n = rows.len() / d;
        let k = self.net.outputs();
        let norm = self.train.normalizer().clone();
        let chunk = 1024;
        if self.scratch.as_ref().is_none_or(|w| w.max_batch() < chunk) {
            self.scratch = Some(Workspace::new(&self.net, chunk));
        }
        let ws = self.scratch.as_mut().expect("made above");
        let mut out = Vec::with_capacity(n * k);
        for start in (0..n).step_by(chunk) {
            let m = chunk.min(n - start);
            let input = ws.input_mut(m);
            for (i, v) in input.iter_mut().enumerate() {
                let j = i % d;
                *v = (rows[start * d + i] - norm.shift[j]) * norm.scale[j];
            }
            let z = self.net.forward(ws, m, None);
            for row in z.chunks(k) {
                match self.loss {
                    Loss::CrossEntropy => {
                        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                        let e: Vec<f32> = row.iter().map(|v| (v - mx).exp()).collect();
                        let s: f32 = e.iter().sum();
                        out.extend(e.iter().map(|v| v / s));
                    }
                    Loss::Bce => out.extend(row.iter().map(|&v| 1.0 / (1.0 + (-v).exp()))),
                    Loss::Mse => out.extend_from_slice(row),
                }
            }
        }
        Ok(out)
    }

    /// The 2-D picture: over a `res × res` grid of [−6, 6]² (rows from the top), the probability
    /// of class 1 (classification) or the predicted value (regression).
    pub fn surface(&mut self, res: usize) -> Result<Vec<f32>> {
        let rows = self.grid_features(res)?;
        let out = self.predict(&rows)?;
        let k = self.net.outputs();
        Ok(out.chunks(k).map(|r| *r.last().expect("k ≥ 1")).collect())
    }

    fn grid_features(&self, res: usize) -> Result<Vec<f32>> {
        if self.train_points.is_empty() {
            return Err(Error::setting(
                "view",
                "grid",
                "only 2-D data has a decision surface",
            ));
        }
        if !(2..=200).contains(&res) {
            return Err(Error::setting("res", res, "must be in 2 ..= 200"));
        }
        Ok(data2d::features_of(&data2d::grid(res), &self.spec.features))
    }

    /// Every neuron's output over the `res × res` grid, one picture per neuron: first each input
    /// feature, then each hidden layer's units after their activation, then the output units
    /// (before softmax/sigmoid). Pictures are concatenated, `res²` values each.
    pub fn neurons(&self, res: usize) -> Result<Vec<f32>> {
        let rows = self.grid_features(res)?;
        let n = res * res;
        let mut pictures = rows_to_columns(&rows, self.net.inputs());
        // The network cut after each activation (and the whole one): its outputs are that
        // layer's units. The parameters of a prefix of the layers are a prefix of the vector.
        let layers = self.net.layers();
        let cuts: Vec<usize> = (0..layers.len())
            .filter(|&l| matches!(layers[l], Layer::Activation(_)) || l + 1 == layers.len())
            .collect();
        for cut in cuts {
            let mut part =
                Network::<f32>::with_zero_params(self.net.inputs(), layers[..=cut].to_vec())?;
            let len = part.param_count();
            part.params_mut().copy_from_slice(&self.net.params()[..len]);
            let mut ws = Workspace::new(&part, n);
            ws.input_mut(n).copy_from_slice(&rows);
            let z = part.forward(&mut ws, n, None);
            pictures.extend(rows_to_columns(z, part.outputs()));
        }
        Ok(pictures)
    }
    /// The "Backprop" panel's numbers for training example `index` (0-based, as
    /// [`Session::train_points`]): [`downhill_core::explain::trace`] on the session's weights (as f64,
    /// exactly) and that one example as the network sees it (normalised), with the session's
    /// loss and optimiser — the forward values, δ at every layer, ∂ℓ/∂W, and the step one
    /// example would take from a fresh optimiser state (without the session's L1/L2 penalties;
    /// the session's own weights are not changed). What `downhill explain --weights` prints for
    /// the same weights and input.
    pub fn explain(&self, index: usize) -> Result<downhill_core::explain::Trace> {
        if index >= self.train.len() {
            return Err(Error::setting(
                "point",
                index,
                format!("the training set has {} examples", self.train.len()),
            ));
        }
        let mut net = Network::<f64>::with_zero_params_shaped(
            self.net.input_shape(),
            self.net.layers().to_vec(),
        )?;
        for (d, &s) in net.params_mut().iter_mut().zip(self.net.params()) {
            *d = f64::from(s);
        }
        let mut x = vec![0.0f64; self.train.n_features()];
        let mut y = downhill_core::data::BatchBuf::<f64>::new(&self.train, 1);
        self.train.gather(&[index], &mut x, &mut y);
        downhill_core::explain::trace(
            &net,
            &x,
            1,
            y.targets(),
            self.loss,
            &self.spec.optimizer,
            1e-5,
        )
    }

    /// Widths of the network's layers of units: inputs, each hidden layer, outputs.
    pub fn widths(&self) -> Vec<usize> {
        if self
            .spec
            .layers
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
        {
            return vec![self.net.inputs(), self.net.outputs()];
        }
        let mut w = vec![self.net.inputs()];
        w.extend(&self.spec.hidden);
        w.push(self.net.outputs());
        w
    }

    /// The confusion matrix on the test set, `k × k` row-major: row = true class, column = the
    /// predicted one. Empty for regression.
    pub fn confusion(&mut self) -> Result<Vec<u32>> {
        let Targets::Classes { labels, n_classes } = self.test.targets().clone() else {
            return Ok(Vec::new());
        };
        let k = n_classes;
        let rows: Vec<f32> = self.raw_rows(&self.test);
        let p = self.predict(&rows)?;
        let mut m = vec![0u32; k * k];
        for (row, &y) in p.chunks(k).zip(&labels) {
            let pred = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0;
            m[y as usize * k + pred] += 1;
        }
        Ok(m)
    }

    /// The data set's feature rows as stored (before normalisation), as `f32`.
    fn raw_rows(&self, d: &Dataset) -> Vec<f32> {
        match d.features() {
            downhill_core::data::Features::F32(v) => v.clone(),
            downhill_core::data::Features::U8(v) => v.iter().map(|&b| b as f32).collect(),
        }
    }

    /// A PyTorch snippet that rebuilds this network (`nn.Sequential`, the same layer indices as
    /// the model file's `state_dict`) and loads the downloaded weights.
    pub fn pytorch(&self) -> String {
        let mut lines = vec![
            "import torch".to_string(),
            "from torch import nn".to_string(),
            "from safetensors.torch import load_file".to_string(),
            String::new(),
            "model = nn.Sequential(".to_string(),
        ];
        for layer in self.net.layers() {
            lines.push(format!("    {},", layer.torch_module()));
        }
        lines.push(")".into());
        lines.push("model.load_state_dict(load_file(\"playground.safetensors\"))".into());
        let norm = self.train.normalizer();
        let identity = norm.shift.iter().all(|&s| s == 0.0) && norm.scale.iter().all(|&s| s == 1.0);
        if !identity {
            lines.push(format!(
                "# inputs are normalised first: x = (raw - {:?}) * {:?}",
                norm.shift.first().copied().unwrap_or(0.0),
                norm.scale.first().copied().unwrap_or(1.0)
            ));
        }
        if !self.spec.features.is_empty() && !self.train_points.is_empty() {
            lines.push(format!(
                "# inputs, in this order: {}",
                self.spec.features.join(", ")
            ));
        }
        let head = match self.loss {
            Loss::CrossEntropy => "probs = model(x).softmax(-1)",
            Loss::Bce => "probs = model(x).sigmoid()",
            Loss::Mse => "y = model(x)",
        };
        lines.push(head.into());
        lines.join("\n") + "\n"
    }

    /// The trained model as the bytes of a `.safetensors` model file, as `downhill train` writes
    /// it: `downhill eval` and PyTorch's `load_state_dict` read it.
    pub fn model_bytes(&self) -> Result<Vec<u8>> {
        let mut meta =
            downhill_io::ModelMeta::new(&self.net, self.loss, self.train.normalizer().clone());
        if !self.train_points.is_empty() {
            meta.feature_names = Some(self.spec.features.clone());
        }
        if let Some(t) = &self.table {
            meta.columns = Some(t.columns.clone());
            meta.feature_names = Some(t.feature_names.clone());
            meta.target_scaling = t.target_scaling.clone();
            meta.class_names = self.train.class_names.clone();
            if matches!(self.train.targets(), Targets::Values { .. }) {
                meta.target_names = Some(t.target_names.clone());
            }
        }
        meta.settings = serde_json::to_value(&self.spec).unwrap_or_default();
        downhill_io::to_bytes(&self.net, &meta)
    }

    /// The test set as CSV text (features, then the target), readable by `downhill eval`.
    pub fn test_csv(&self) -> String {
        let d = self.test.n_features();
        let names: Vec<String> = if self.train_points.is_empty() {
            (0..d).map(|j| format!("f{j}")).collect()
        } else {
            self.spec.features.clone()
        };
        let mut s = names.join(",") + ",target\n";
        let rows = self.raw_rows(&self.test);
        for (i, row) in rows.chunks(d).enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            let target = match self.test.targets() {
                Targets::Classes { labels, .. } => labels[i].to_string(),
                Targets::Values { data, cols } => format!("{}", data[i * cols]),
            };
            s += &format!("{},{target}\n", cells.join(","));
        }
        s
    }
}

/// An uploaded table's scaling, as `downhill train` scales a CSV: features standardised with
/// the training part's statistics (one-hot and boolean columns stay 0/1), regression targets
/// standardised (MSE).
fn scale_table(
    t: &mut TableInfo,
    train: &mut Dataset,
    test: &mut Dataset,
    loss: Loss,
) -> Result<()> {
    let mut norm = train.fit_normalizer(Normalization::Standardize);
    for (k, numeric) in t.columns.standardized_mask().into_iter().enumerate() {
        if !numeric {
            norm.shift[k] = 0.0;
            norm.scale[k] = 1.0;
        }
    }
    t.target_scaling = (loss == Loss::Mse)
        .then(|| downhill_data::columns::TargetScaling::fit(train))
        .flatten();
    for d in [train, test] {
        if let Some(s) = &t.target_scaling {
            s.apply(d);
        }
        d.set_normalizer(norm.clone())?;
    }
    Ok(())
}

/// A row-major `n × d` block as its `d` columns, one after another.
fn rows_to_columns(rows: &[f32], d: usize) -> Vec<f32> {
    let n = rows.len() / d.max(1);
    let mut out = Vec::with_capacity(rows.len());
    for j in 0..d {
        out.extend((0..n).map(|i| rows[i * d + j]));
    }
    out
}
