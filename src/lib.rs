//! # downhill
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
//! | one step shown whole: z, a, δ, ∇L, w | [`explain`]                      |
//! | data sets, splits, normalisation     | [`data`]                         |
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

#[cfg(feature = "fs")]
pub mod bench;
#[cfg(feature = "fs")]
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod explain;
pub mod gradcheck;
pub mod init;
#[cfg(any(feature = "fs", feature = "wasm"))]
pub mod io;
pub mod landscape;
pub mod layers;
pub mod loss;
#[cfg(feature = "fs")]
pub mod lr_find;
pub mod memory;
pub mod metrics;
pub mod netspec;
pub mod network;
pub mod optim;
pub mod parallel;
pub mod playground;
#[cfg(feature = "fs")]
pub mod plot;
pub mod rng;
#[cfg(feature = "fs")]
pub mod run;
#[cfg(feature = "fs")]
pub mod settings;
pub mod subnormals;
pub mod tensor;
pub mod train;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use error::{Error, Result};
pub use init::Init;
pub use layers::{Activation, Layer};
pub use loss::Loss;
pub use network::{Network, Workspace};
pub use rng::Rng;
