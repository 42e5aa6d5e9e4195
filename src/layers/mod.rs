//! The layers of a sequential network, each with its forward and backward pass side by side.
//!
//! A network is a list of [`Layer`]s, indexed like PyTorch's `nn.Sequential`: an activation or a
//! dropout takes an index of its own, so the dense layers of `784-100-10` with ReLU are layers 0
//! and 2 (`"0.weight"`, `"2.weight"`).

pub mod activation;
pub mod batchnorm;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod image;
pub mod pool;

pub use activation::Activation;
pub use batchnorm::BatchNorm;
pub use conv::Conv2d;
pub use dense::Dense;
pub use image::ImageShape;
pub use pool::{AvgPool2d, MaxPool2d};

/// One layer of a sequential network. In model metadata it reads
/// `{"type": "dense", "args": {"inputs": 784, "outputs": 100}}`, `{"type": "activation", "args": "relu"}`,
/// `{"type": "dropout", "args": 0.5}`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "kebab-case")]
pub enum Layer {
    /// Fully connected: `Z = X·Wᵀ + b`.
    Dense(Dense),
    /// Elementwise `a = f(z)`.
    Activation(Activation),
    /// Inverted dropout with drop probability `p` (training only).
    Dropout(f64),
}
