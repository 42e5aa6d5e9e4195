//! # downhill-core
//!
//! Train neural networks the way the textbook says, and as fast as the machine allows: a loss
//! L(w) over a training set, its gradient by backpropagation over whole mini-batches, and a walk
//! downhill w ← w − η∇L by gradient descent and its descendants.
//!
//! Where each idea lives:
//!
//! | idea                                 | module                           |
//! |--------------------------------------|----------------------------------|
//! | matrices, the matrix product         | [`tensor`]                       |
//! | dense layer, activations, dropout    | [`layers`]                       |
//! | weight initialisation                | [`init`]                         |
//! | the network, forward and backprop    | [`network`]                      |
//! | losses and the L2 penalty            | [`loss`]                         |
//! | optimisers and learning-rate schedules | [`optim`]                     |
//! | epochs, mini-batches, stopping rules | [`train`]                        |
//! | backprop vs. finite differences      | [`gradcheck`]                    |
//! | data-parallel threads                | [`parallel`]                     |
//! | one step shown whole: z, a, δ, ∇L, w | [`explain`]                      |
//! | data sets in memory, splits, normalisation | [`data`]                   |
//! | optimisers on two-parameter surfaces | [`landscape`]                    |
//!
//! This crate touches no file: reading tables and images is `downhill-data`'s, model files and
//! checkpoints `downhill-io`'s, and the program around them is the `downhill` crate.
//!
//! ## Example: a softmax classifier on two clusters
//!
//! ```
//! use downhill_core::{Activation, Init, Network, Rng, data::Dataset, loss::Loss};
//! use downhill_core::optim::{OptimizerConfig, SgdConfig, Schedule};
//! use downhill_core::train::{train, TrainConfig, NoObserver};
//! use rand::SeedableRng;
//!
//! let mut rng = Rng::seed_from_u64(42);
//! // Class 0 around (−2, 0), class 1 around (+2, 0).
//! let x: Vec<f32> = (0..40).flat_map(|i| [if i % 2 == 0 { -2.0 } else { 2.0 }, (i as f32 * 0.37).sin()]).collect();
//! let y: Vec<u32> = (0..40).map(|i| (i % 2) as u32).collect();
//! let data = Dataset::classification(x, 2, y, 2).unwrap();
//! let mut net = Network::<f32>::mlp(&[2, 8, 2], Activation::Tanh, 0.0, Init::GlorotUniform, &mut rng).unwrap();
//! let opt = OptimizerConfig::Sgd(SgdConfig { lr: 0.5, ..Default::default() });
//! let cfg = TrainConfig { epochs: 20, batch_size: 8, loss: Loss::CrossEntropy, ..Default::default() };
//! let report = train(&mut net, &data, None, &opt, &Schedule::default(), &cfg, &mut rng, &mut NoObserver).unwrap();
//! assert_eq!(report.history.last().unwrap().train_accuracy, Some(1.0));
//! ```
//!
//! ## Reproducibility
//! One [`Rng`] (ChaCha8, portable across platforms) is created from the seed and passed
//! explicitly to everything that draws: initial weights, splits, batch order, dropout masks. The
//! same seed gives bit-identical weights on the same machine with the same thread count (tested).
//! Across thread counts results agree to float rounding, not bit for bit: with several threads
//! each mini-batch is split between the threads and their gradients summed ([`parallel`]),
//! which groups the additions differently; with dropout each thread draws its own masks, so
//! runs with different thread counts agree in distribution only.

pub mod data;
pub mod error;
pub mod explain;
pub mod gradcheck;
pub mod init;
pub mod landscape;
pub mod layers;
pub mod loss;
pub mod memory;
pub mod metrics;
pub mod netspec;
pub mod network;
pub mod optim;
pub mod parallel;
pub mod rng;
pub mod subnormals;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use init::Init;
pub use layers::{Activation, Layer};
pub use loss::Loss;
pub use network::{Network, Workspace};
pub use rng::Rng;
