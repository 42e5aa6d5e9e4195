//! Standard training workloads, timed, next to the arithmetic floor of their matrix products.
//!
//! For an MLP with layer sizes d₀ → d₁ → … → d_L and batch n, one step multiplies
//!
//! ```text
//! forward            Z_l = X_l·W_lᵀ          2·n·d_l·d_{l+1} flops per layer
//! weight gradient    ∂W_l = δZ_lᵀ·X_l         2·n·d_l·d_{l+1}
//! input gradient     δX_l = δZ_l·W_l          2·n·d_l·d_{l+1}  (not for the first layer)
//! ```
//!
//! The floor of a workload is the time of exactly those products, measured here through
//! [`crate::tensor::gemm`] at the same shapes and thread count, times the steps of an epoch.
//! `share of floor` = floor / measured epoch time: 1.0 would mean nothing but matrix products.
//!
//! The vision workloads — the Keras "simple MNIST convnet" and LeNet-5 (the `--net` presets) on
//! 1×28×28 images, Adam η 0.001, as `bench/torch_cnn.py` trains them — count a convolution's
//! products per image, as [`crate::layers::Conv2d`] computes them (im2col: U is K × P with
//! K = C·kh·kw and P = H'·W'):
//!
//! ```text
//! forward            Y = W·U              2·O·K·P flops per image
//! weight gradient    ∂W += δY·Uᵀ          2·O·K·P
//! input gradient     δU = Wᵀ·δY           2·O·K·P  (not for the first layer)
//! ```
//!
//! and their floor is those products timed one image at a time on one thread, times the images
//! of an epoch, divided by the threads (each data-parallel thread runs its images' products
//! alone); the dense layers' products are counted as above.

use std::time::Instant;

use rand::{Rng as _, SeedableRng};

use crate::data::{Dataset, Features, Normalization, Targets};
use crate::error::Result;
use crate::init::Init;
use crate::layers::{Activation, ImageShape, Layer};
use crate::netspec;
use crate::network::{Network, Shape};
use crate::optim::{AdamConfig, OptimizerConfig, Schedule, SgdConfig};
use crate::rng::Rng;
use crate::tensor::{Beta, MatView, Threads, gemm};
use crate::train::{NoObserver, TrainConfig, train};

/// One workload: network sizes (or a layer spec), batch, threads.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Workload {
    pub name: String,
    /// The MLP's layer sizes (empty for a vision workload).
    pub sizes: Vec<usize>,
    pub batch: usize,
    pub threads: usize,
    /// A vision workload's network in the `--layers` syntax, on 1×28×28 images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
}

impl Workload {
    pub fn new(sizes: &[usize], batch: usize, threads: usize) -> Workload {
        let arch = sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-");
        Workload {
            name: format!(
                "mlp {arch}, batch {batch}, {threads} thread{}",
                if threads == 1 { "" } else { "s" }
            ),
            sizes: sizes.to_vec(),
            batch,
            threads,
            layers: None,
        }
    }

    /// A vision workload: the preset `net` (`keras-convnet`, `lenet5`) on 1×28×28 images.
    pub fn vision(net: &str, batch: usize, threads: usize) -> Result<Workload> {
        let spec = crate::netspec::preset(net)?.ok_or_else(|| {
            crate::Error::setting("net", net, "a vision workload needs a convolutional preset")
        })?;
        Ok(Workload {
            name: format!(
                "cnn {net}, batch {batch}, {threads} thread{}",
                if threads == 1 { "" } else { "s" }
            ),
            sizes: Vec::new(),
            batch,
            threads,
            layers: Some(spec.to_string()),
        })
    }

    /// The issue's standard workloads: 784-100-10 at batch 64; 784-256-128-10 at 64 and 256; the
    /// latter with 2 threads.
    /// Then the vision workloads: the Keras convnet and LeNet-5 at batch 128 (Adam), one and
    /// two threads.
    pub fn standard() -> Vec<Workload> {
        let mut all = vec![
            Workload::new(&[784, 100, 10], 64, 1),
            Workload::new(&[784, 256, 128, 10], 64, 1),
            Workload::new(&[784, 256, 128, 10], 256, 1),
            Workload::new(&[784, 256, 128, 10], 256, 2),
        ];
        for net in ["keras-convnet", "lenet5"] {
            for threads in [1, 2] {
                all.push(Workload::vision(net, 128, threads).expect("a preset"));
            }
        }
        all
    }

    /// Matrix-product flops of one step with `n` examples.
    pub fn step_flops(&self, n: usize) -> f64 {
        self.sizes
            .windows(2)
            .enumerate()
            .map(|(l, d)| {
                let per = 2.0 * (n * d[0] * d[1]) as f64;
                if l == 0 { 2.0 * per } else { 3.0 * per }
            })
            .sum()
    }
}

/// What one workload measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    pub workload: Workload,
    pub examples: usize,
    /// Training seconds of each epoch.
    pub epoch_seconds: Vec<f64>,
    /// Median of `epoch_seconds`.
    pub seconds_per_epoch: f64,
    pub examples_per_second: f64,
    /// Matrix-product flops per epoch / seconds per epoch.
    pub effective_gflops: f64,
    /// The same products alone, at the same shapes and threads: seconds per epoch.
    pub floor_seconds_per_epoch: f64,
    /// Their rate: GFLOP/s of the chosen GEMM crate at these shapes on this machine.
    pub gemm_gflops: f64,
    /// floor / measured.
    pub share_of_floor: f64,
}

/// Synthetic image data: `n` random 28×28 byte images with random labels 0..9.
pub fn synthetic(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed_from_u64(seed);
    let pixels: Vec<u8> = (0..n * 784).map(|_| rng.random()).collect();
    let labels = (0..n).map(|_| rng.random_range(0..10)).collect();
    Dataset::new(
        Features::U8(pixels),
        784,
        Targets::Classes {
            labels,
            n_classes: 10,
        },
    )
    .expect("consistent by construction")
}

/// Times `epochs` epochs of SGD (lr 0.1, momentum 0.9, cross-entropy, ReLU) on `data`, and
/// measures the floor.
/// A vision workload (`w.layers`) trains with Adam (η 0.001) instead, as `bench/torch_cnn.py`.
pub fn measure(w: &Workload, data: &Dataset, epochs: usize, seed: u64) -> Result<Measurement> {
    let mut data = data.clone();
    data.set_normalizer(data.fit_normalizer(Normalization::Scale))?;
    let mut rng = Rng::seed_from_u64(seed);
    let (mut net, opt) = match &w.layers {
        Some(spec) => {
            let input = Shape::Image(ImageShape::new(1, 28, 28));
            let layers = netspec::resolve(&netspec::parse(spec)?, input, data.n_outputs())?;
            let net = Network::<f32>::with_input(input, layers, Init::HeNormal, &mut rng)?;
            let adam = OptimizerConfig::Adam(AdamConfig {
                lr: 1e-3,
                ..Default::default()
            });
            (net, adam)
        }
        None => {
            let net =
                Network::<f32>::mlp(&w.sizes, Activation::Relu, 0.0, Init::HeNormal, &mut rng)?;
            let sgd = OptimizerConfig::Sgd(SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            });
            (net, sgd)
        }
    };
    let cfg = TrainConfig {
        epochs,
        batch_size: w.batch,
        threads: w.threads,
        ..Default::default()
    };
    let report = train(
        &mut net,
        &data,
        None,
        &opt,
        &Schedule::default(),
        &cfg,
        &mut rng,
        &mut NoObserver,
    )?;
    let epoch_seconds: Vec<f64> = report.history.iter().map(|m| m.seconds).collect();
    let seconds = median(&epoch_seconds);
    let n = data.len();
    let (full, last) = (n / w.batch, n % w.batch);
    let (flops, floor) = if w.layers.is_some() {
        let steps = |f: &dyn Fn(usize) -> f64| {
            full as f64 * f(w.batch) + if last > 0 { f(last) } else { 0.0 }
        };
        let flops = steps(&|b| vision_products(&net, b).iter().map(Product::flops).sum());
        let seconds = steps(&|b| vision_product_seconds(&vision_products(&net, b)));
        (flops, seconds / w.threads.max(1) as f64)
    } else {
        let flops = full as f64 * w.step_flops(w.batch) + w.step_flops(last);
        let floor = full as f64 * product_seconds(w, w.batch)
            + if last > 0 {
                product_seconds(w, last)
            } else {
                0.0
            };
        (flops, floor)
    };
    Ok(Measurement {
        workload: w.clone(),
        examples: n,
        epoch_seconds,
        seconds_per_epoch: seconds,
        examples_per_second: n as f64 / seconds,
        effective_gflops: flops / seconds / 1e9,
        floor_seconds_per_epoch: floor,
        gemm_gflops: flops / floor / 1e9,
        share_of_floor: floor / seconds,
    })
}

/// Seconds for the matrix products of one step with `n` examples, alone (medians of repeats):
/// each forward product the faster of its two orientations (see `Dense::transposed_forward`).
pub fn product_seconds(w: &Workload, n: usize) -> f64 {
    let threads = Threads(w.threads);
    let layers: Vec<(usize, usize)> = w.sizes.windows(2).map(|d| (d[0], d[1])).collect();
    let buf = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    let mut bufs: Vec<LayerBuffers> = layers
        .iter()
        .map(|&(i, o)| LayerBuffers {
            x: buf(n * i),
            w: buf(o * i),
            dz: buf(n * o),
            z: vec![0.0f32; n * o],
            dw: vec![0.0f32; o * i],
            dx: vec![0.0f32; n * i],
        })
        .collect();
    let mut once = |transposed: bool| step_products(&layers, &mut bufs, n, transposed, threads);
    for t in [false, true].repeat(10) {
        once(t);
    }
    // Alternating plain and transposed forward products, 100 steps each.
    let runs: Vec<_> = (0..200).map(|r| once(r % 2 == 1)).collect();
    // The floor takes each layer's forward product the faster way (median of its timings).
    let forward: f64 = (0..layers.len())
        .map(|l| {
            let way = |transposed: usize| {
                median(
                    &runs
                        .iter()
                        .skip(transposed)
                        .step_by(2)
                        .map(|r| r.0[l])
                        .collect::<Vec<_>>(),
                )
            };
            way(0).min(way(1))
        })
        .sum();
    let backward = median(&runs.iter().map(|r| r.1).collect::<Vec<_>>());
    forward + backward
}

/// One matrix product of a training step, `m × k` by `k × n`, run `count` times per step (a
/// convolution's, once per image; a dense layer's, once, with the batch's rows).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Product {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub count: usize,
}

impl Product {
    /// Flops of this product in one step.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64 * self.count as f64
    }
}

/// The products of one training step of `net` on `batch` examples (see the module doc): per
/// image for each convolution — forward, weight gradient and, except for the first layer with
/// parameters, input gradient — and the batch's three products for each dense layer.
pub fn vision_products<T: crate::tensor::Scalar>(net: &Network<T>, batch: usize) -> Vec<Product> {
    let mut out = Vec::new();
    let mut first = true;
    let mut push = |m, k, n, count| out.push(Product { m, k, n, count });
    for (l, layer) in net.layers().iter().enumerate() {
        match layer {
            Layer::Conv2d(c) => {
                let Some(shape) = net.shape(l + 1).image() else {
                    continue;
                };
                let (o, k, p) = (c.out_channels, c.patch_len(), shape.plane());
                push(o, k, p, batch);
                push(o, p, k, batch);
                if !first {
                    push(k, o, p, batch);
                }
            }
            Layer::Dense(d) => {
                let (i, o) = (d.inputs, d.outputs);
                push(batch, i, o, 1);
                push(o, batch, i, 1);
                if !first {
                    push(batch, o, i, 1);
                }
            }
            _ => continue,
        }
        first = false;
    }
    out
}

/// Seconds of one step's `products` on one thread, each product timed alone through [`gemm`]
/// (median of 200 repeats) and counted as often as the step runs it.
pub fn vision_product_seconds(products: &[Product]) -> f64 {
    let buf = |len: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect()
    };
    products
        .iter()
        .map(|p| {
            let (a, b) = (buf(p.m * p.k), buf(p.k * p.n));
            let mut c = vec![0.0f32; p.m * p.n];
            let mut times = Vec::with_capacity(200);
            for r in 0..220 {
                let started = Instant::now();
                gemm(
                    &mut c,
                    p.m,
                    p.n,
                    Beta::Replace,
                    MatView::new(&a, p.m, p.k),
                    MatView::new(&b, p.k, p.n),
                    Threads::ONE,
                );
                if r >= 20 {
                    times.push(started.elapsed().as_secs_f64());
                }
            }
            median(&times) * p.count as f64
        })
        .sum()
}

/// One dense layer's matrices for [`product_seconds`]: X, W, δZ, Z, ∂W, δX.
struct LayerBuffers {
    x: Vec<f32>,
    w: Vec<f32>,
    dz: Vec<f32>,
    z: Vec<f32>,
    dw: Vec<f32>,
    dx: Vec<f32>,
}

/// One step's products on `n` rows: each layer's forward product timed alone, as Z = X·Wᵀ or
/// (with `transposed`) as Zᵀ = W·Xᵀ; then all the backward products (∂W = δZᵀ·X, and below the
/// first layer δX = δZ·W) together. Returns the forward seconds per layer and the backward's.
fn step_products(
    layers: &[(usize, usize)],
    bufs: &mut [LayerBuffers],
    n: usize,
    transposed: bool,
    threads: Threads,
) -> (Vec<f64>, f64) {
    let mut forward = Vec::with_capacity(layers.len());
    for (&(i, o), b) in layers.iter().zip(bufs.iter_mut()) {
        let started = Instant::now();
        let (x, wt) = (MatView::new(&b.x, n, i), MatView::new(&b.w, o, i));
        if transposed {
            gemm(&mut b.z, o, n, Beta::Replace, wt, x.t(), threads);
        } else {
            gemm(&mut b.z, n, o, Beta::Replace, x, wt.t(), threads);
        }
        forward.push(started.elapsed().as_secs_f64());
    }
    let started = Instant::now();
    for (l, (&(i, o), b)) in layers.iter().zip(bufs.iter_mut()).enumerate() {
        let (x, dz) = (MatView::new(&b.x, n, i), MatView::new(&b.dz, n, o));
        gemm(&mut b.dw, o, i, Beta::Replace, dz.t(), x, threads);
        if l > 0 {
            let wt = MatView::new(&b.w, o, i);
            gemm(&mut b.dx, n, i, Beta::Replace, dz, wt, threads);
        }
    }
    (forward, started.elapsed().as_secs_f64())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() { 0.0 } else { s[s.len() / 2] }
}

/// The big-table workload: a generated CSV of `rows` rows × 42 columns — 38 numeric columns
/// (2 % of their cells empty), a city (five names, 1 % empty), a grade (A/B/C), a note
/// (`ok`/`late`/`NA`) and a 0/1 target `y` (the sign of an alternating sum of the numbers) —
/// loaded as `downhill train --data FILE --target y` loads it (read, columns fitted, encoded,
/// the validation split), then one epoch of features-256-256-2 (Adam, batch 200, one thread).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TableMeasurement {
    pub name: String,
    pub rows: usize,
    pub file_bytes: u64,
    /// Encoded features per row.
    pub features: usize,
    pub load_seconds: f64,
    /// Of `load_seconds`: reading the file into typed columns, the targets and the test split.
    pub read_seconds: f64,
    pub epoch_seconds: f64,
    /// The process's peak resident memory after the epoch (Linux's VmHWM), if known.
    pub peak_rss_bytes: Option<u64>,
    /// The encoded training, validation and test matrices (f32).
    pub encoded_bytes: u64,
}

/// The name of the big-table workload of `rows` rows.
pub fn table_name(rows: usize) -> String {
    format!("table {rows} rows x 42 columns, load + 1 epoch")
}

/// Writes the big-table workload's CSV (see [`TableMeasurement`]) to `path`, seeded.
pub fn write_table(path: &std::path::Path, rows: usize, seed: u64) -> Result<()> {
    use std::io::Write;
    let io = |source| crate::error::Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // Written under a temporary name beside `path`, which it takes only when complete (an
    // interrupted or failed write leaves no partial table).
    let tmp = crate::io::temporary_beside(path)?;
    let mut out = std::io::BufWriter::new(tmp.as_file());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<String> = (0..38).map(|i| format!("x{i}")).collect();
    writeln!(out, "{},city,grade,note,y", names.join(",")).map_err(io)?;
    let mut line = String::new();
    for _ in 0..rows {
        use std::fmt::Write as _;
        line.clear();
        let mut sum = 0.0f64;
        for i in 0..38 {
            if rng.random::<f64>() >= 0.02 {
                let v: f64 =
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng);
                let v = v * (i + 1) as f64;
                sum += if i % 2 == 0 { -v } else { v };
                let _ = write!(line, "{v:.6}");
            }
            line.push(',');
        }
        let city = ["paris", "lyon", "nice", "lille", "brest"][rng.random_range(0..5)];
        line.push_str(if rng.random::<f64>() < 0.01 { "" } else { city });
        line.push(',');
        line.push_str(["A", "B", "C"][rng.random_range(0..3)]);
        line.push(',');
        line.push_str(["ok", "late", "NA"][rng.random_range(0..3)]);
        line.push_str(if sum > 0.0 { ",1\n" } else { ",0\n" });
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    out.flush().map_err(io)?;
    drop(out);
    tmp.persist_noclobber(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Generates the big-table CSV in a temporary folder and measures it (see [`TableMeasurement`]).
pub fn measure_table(rows: usize, seed: u64) -> Result<TableMeasurement> {
    let dir = tempfile::tempdir().map_err(|source| crate::error::Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("table.csv");
    write_table(&path, rows, seed)?;
    measure_table_file(&path, seed)
}

/// The big-table workload (see [`TableMeasurement`]) on the CSV at `path`, whose target column
/// is named `y`.
pub fn measure_table_file(path: &std::path::Path, seed: u64) -> Result<TableMeasurement> {
    use crate::data::csv::CsvOptions;
    use crate::data::source::{SourceOptions, load, prepare};
    let file_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut rng = Rng::seed_from_u64(seed);
    let opts = SourceOptions {
        test: None,
        test_fraction: None,
        csv: CsvOptions {
            target: Some("y".into()),
            ..Default::default()
        },
    };
    // A file named like a built-in data set (`digits`) is still the file.
    let spec = path.to_str().unwrap_or_default();
    let spec = if path.is_relative() && !spec.starts_with('.') {
        format!("./{spec}")
    } else {
        spec.to_string()
    };
    let start = Instant::now();
    // (bench has no --target: the column is y.)
    let loaded = load(&spec, &opts, &mut rng).map_err(|e| match e {
        crate::error::Error::Data {
            path,
            location,
            message,
        } => crate::error::Error::Data {
            path,
            location,
            message: message.replace(
                "Check that --target names the column to predict",
                "bench --table-file trains on the column named y",
            ),
        },
        e => e,
    })?;
    let two_classes = matches!(
        loaded.train.targets(),
        crate::data::Targets::Classes { n_classes: 2, .. }
    );
    if !two_classes {
        return Err(crate::error::Error::setting(
            "table-file",
            path.display(),
            "the big-table workload trains a two-class network: its target column y must hold \
             two classes (such as 0/1)",
        ));
    }
    let columns = loaded.csv.as_ref().map_or(0, |c| c.table.width());
    let read_seconds = start.elapsed().as_secs_f64();
    let mut p = prepare(&loaded, 0.1, &mut rng)?;
    // Standardised with the training part's statistics (as a run does; the 0/1 columns too,
    // which changes nothing of the time).
    let normalizer = p.train.fit_normalizer(Normalization::Standardize);
    p.train.set_normalizer(normalizer)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let rows = loaded.train.len() + loaded.test.as_ref().map_or(0, |t| t.len());
    drop(loaded);
    let d = p.train.n_features();
    let encoded = [Some(&p.train), p.val.as_ref(), p.test.as_ref()]
        .iter()
        .flatten()
        .map(|s| (s.len() * s.n_features() * 4) as u64)
        .sum();
    let mut net = Network::<f32>::mlp(
        &[d, 256, 256, 2],
        Activation::Relu,
        0.0,
        Init::HeNormal,
        &mut rng,
    )?;
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 200,
        ..Default::default()
    };
    let adam = OptimizerConfig::Adam(AdamConfig::default());
    let report = train(
        &mut net,
        &p.train,
        None,
        &adam,
        &Schedule::default(),
        &cfg,
        &mut rng,
        &mut NoObserver,
    )?;
    Ok(TableMeasurement {
        name: format!("table {rows} rows x {columns} columns, load + 1 epoch"),
        rows,
        file_bytes,
        features: d,
        load_seconds,
        read_seconds,
        epoch_seconds: report.history.iter().map(|m| m.seconds).sum(),
        peak_rss_bytes: peak_rss(),
        encoded_bytes: encoded,
    })
}

/// The process's peak resident memory (Linux: VmHWM of /proc/self/status).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Two threads against one on the same workload (same network and batch).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ThreadSpeedup {
    /// The workload's name without its thread count.
    pub workload: String,
    pub threads: usize,
    /// One thread's epoch seconds over `threads` threads': above 1, the threads help.
    pub speedup: f64,
}

impl ThreadSpeedup {
    /// The line `downhill bench` prints, which says so when the extra threads do not help.
    pub fn line(&self) -> String {
        let verdict = if self.speedup < 1.05 {
            format!(
                " — {} threads do not speed up this step on this machine (its cores may share \
                 their vector units, as two vCPUs of one physical core do): use --threads 1",
                self.threads
            )
        } else {
            String::new()
        };
        format!(
            "{}: {} threads run {:.2}x as fast as 1{verdict}",
            self.workload, self.threads, self.speedup
        )
    }
}

/// For every workload measured with one thread and with more: how much faster the more were.
pub fn thread_speedups(all: &[Measurement]) -> Vec<ThreadSpeedup> {
    let key = |w: &Workload| (w.sizes.clone(), w.layers.clone(), w.batch);
    all.iter()
        .filter(|m| m.workload.threads > 1)
        .filter_map(|m| {
            let one = all
                .iter()
                .find(|o| o.workload.threads == 1 && key(&o.workload) == key(&m.workload))?;
            let name = one.workload.name.trim_end_matches(", 1 thread").to_string();
            Some(ThreadSpeedup {
                workload: name,
                threads: m.workload.threads,
                speedup: one.seconds_per_epoch / m.seconds_per_epoch,
            })
        })
        .collect()
}
