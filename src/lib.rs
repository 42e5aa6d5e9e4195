//! # downhill
//!
//! Train neural networks the way the textbook says, and as fast as the machine allows. This crate
//! is the program `downhill` (its run folders, settings, reports and pictures) and, for a Rust
//! user, one library that gathers the workspace's crates under one name:
//!
//! | crate                 | what                                                          | here as |
//! |-----------------------|---------------------------------------------------------------|---------|
//! | `downhill-core`       | tensors, layers, losses, optimisers, the network, training, in-memory data; no files | [`tensor`], [`layers`], [`loss`], [`optim`], [`network`], [`train`], … |
//! | `downhill-data`       | CSV tables, column roles and encoding, IDX images, the embedded digits | [`data`] (with the core's data sets) |
//! | `downhill-io`         | model files and checkpoints                                   | [`io`], [`checkpoint`] |
//! | `downhill-playground` | the browser playground's engine side and bindings             | [`playground`] |
//! | `downhill` (this one) | run folders, settings, reports, pictures, the landscape, benchmarks | [`run`], [`settings`], [`plot`], [`landscape`], [`bench`](mod@bench), [`lr_find`] |
//!
//! ## Example: a softmax classifier on two clusters
//!
//! ```
//! use downhill::{Activation, Init, Network, Rng, data::Dataset, loss::Loss};
//! use downhill::optim::{OptimizerConfig, SgdConfig, Schedule};
//! use downhill::train::{train, TrainConfig, NoObserver};
//! use rand::SeedableRng;
//!
//! let mut rng = Rng::seed_from_u64(42);
//! let x: Vec<f32> = (0..40).flat_map(|i| [if i % 2 == 0 { -2.0 } else { 2.0 }, (i as f32 * 0.37).sin()]).collect();
//! let y: Vec<u32> = (0..40).map(|i| (i % 2) as u32).collect();
//! let data = Dataset::classification(x, 2, y, 2).unwrap();
//! let mut net = Network::<f32>::mlp(&[2, 8, 2], Activation::Tanh, 0.0, Init::GlorotUniform, &mut rng).unwrap();
//! let opt = OptimizerConfig::Sgd(SgdConfig { lr: 0.5, ..Default::default() });
//! let cfg = TrainConfig { epochs: 20, batch_size: 8, loss: Loss::CrossEntropy, ..Default::default() };
//! let report = train(&mut net, &data, None, &opt, &Schedule::default(), &cfg, &mut rng, &mut NoObserver).unwrap();
//! assert_eq!(report.history.last().unwrap().train_accuracy, Some(1.0));
//! ```

pub use downhill_core::{Activation, Error, Init, Layer, Loss, Network, Result, Rng, Workspace};
pub use downhill_core::{
    error, explain, gradcheck, init, layers, loss, memory, metrics, netspec, network, optim,
    parallel, rng, subnormals, tensor, train,
};
pub use downhill_io as io;
pub use downhill_io::checkpoint;
pub use downhill_playground as playground;

/// Data sets: the core's in-memory sets, splits and normalisation ([`downhill_core::data`]) and
/// the files they are read from ([`downhill_data`]: CSV tables, columns, IDX images, digits).
pub mod data {
    pub use downhill_core::data::*;
    pub use downhill_data::{columns, csv, digits, idx, source, table};
}

pub mod bench;
pub mod landscape;
pub mod lr_find;
pub mod plot;
pub mod run;
pub mod settings;
