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
pub use batchnorm::{BatchNorm, BnForward, BnStats, RunningStats};
pub use conv::{Conv2d, ConvBackward, ConvForward};
pub use dense::Dense;
pub use image::ImageShape;
pub use pool::{AvgPool2d, MaxPool2d, Pool2d, PoolWindow};

/// One layer of a sequential network. In model metadata it reads
/// `{"type": "dense", "args": {"inputs": 784, "outputs": 100}}`, `{"type": "activation", "args": "relu"}`,
/// `{"type": "dropout", "args": 0.5}`, `{"type": "conv2d", "args": {"in_channels": 1, …}}`,
/// `{"type": "max-pool2d", "args": {"kernel": [2, 2], …}}`, `{"type": "batch-norm2d", "args":
/// {"channels": 32, "eps": 1e-5, "momentum": 0.1}}`, `{"type": "flatten"}`.
///
/// Dense, BatchNorm1d and dropout/activations take `[N, features]`; Conv2d, the pools and
/// BatchNorm2d take `[N, C, H, W]` (activations and dropout take either); Flatten turns
/// `[N, C, H, W]` into `[N, C·H·W]` (PyTorch's `nn.Flatten`, the same memory).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "kebab-case")]
pub enum Layer {
    /// Fully connected: `Z = X·Wᵀ + b`.
    Dense(Dense),
    /// Elementwise `a = f(z)`.
    Activation(Activation),
    /// Inverted dropout with drop probability `p` (training only).
    Dropout(f64),
    /// 2-d convolution (see [`conv`]).
    Conv2d(Conv2d),
    /// Max pooling (see [`pool`]).
    MaxPool2d(MaxPool2d),
    /// Average pooling, count_include_pad (see [`pool`]).
    AvgPool2d(AvgPool2d),
    /// Batch normalisation over the features of `[N, C]` (see [`batchnorm`]).
    BatchNorm1d(BatchNorm),
    /// Batch normalisation over the channels of `[N, C, H, W]` (see [`batchnorm`]).
    BatchNorm2d(BatchNorm),
    /// `[N, C, H, W]` → `[N, C·H·W]`.
    Flatten,
}

impl Layer {
    /// The layer in the compact spec syntax of [`crate::netspec`] (`dense 10`, `conv 32 3`,
    /// `maxpool 2`, …), as error messages and summaries print it.
    pub fn spec(&self) -> String {
        fn window(kind: &str, w: &pool::PoolWindow) -> String {
            let mut s = format!("{kind} {}", pair(w.kernel));
            if w.stride != w.kernel {
                s += &format!(" stride {}", pair(w.stride));
            }
            if w.padding != [0, 0] {
                s += &format!(" pad {}", pair(w.padding));
            }
            s
        }
        match self {
            Layer::Dense(d) => format!("dense {}", d.outputs),
            Layer::Activation(a) => a.name().to_string(),
            Layer::Dropout(p) => format!("dropout {p}"),
            Layer::Conv2d(c) => {
                let mut s = format!("conv {} {}", c.out_channels, pair(c.kernel));
                if c.stride != [1, 1] {
                    s += &format!(" stride {}", pair(c.stride));
                }
                if c.padding != [0, 0] {
                    s += &format!(" pad {}", pair(c.padding));
                }
                if !c.bias {
                    s += " nobias";
                }
                s
            }
            Layer::MaxPool2d(p) => window("maxpool", &p.0),
            Layer::AvgPool2d(p) => window("avgpool", &p.0),
            Layer::BatchNorm1d(_) | Layer::BatchNorm2d(_) => "batchnorm".to_string(),
            Layer::Flatten => "flatten".to_string(),
        }
    }

    /// The PyTorch module that computes the same function (`nn.Linear(784, 100)`,
    /// `nn.Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(0, 0), bias=True)`, …), as
    /// a "copy as PyTorch" snippet writes it; in an `nn.Sequential` its parameters have the names
    /// of the model files.
    pub fn torch_module(&self) -> String {
        fn window(kind: &str, w: &pool::PoolWindow, extra: &str) -> String {
            format!(
                "nn.{kind}(kernel_size={:?}, stride={:?}, padding={:?}{extra})",
                tuple(w.kernel),
                tuple(w.stride),
                tuple(w.padding)
            )
        }
        fn tuple(p: [usize; 2]) -> (usize, usize) {
            (p[0], p[1])
        }
        match self {
            Layer::Dense(d) => format!("nn.Linear({}, {})", d.inputs, d.outputs),
            Layer::Activation(a) => format!("nn.{}()", a.torch_module()),
            Layer::Dropout(p) => format!("nn.Dropout({p})"),
            Layer::Conv2d(c) => format!(
                "nn.Conv2d({}, {}, kernel_size={:?}, stride={:?}, padding={:?}, bias={})",
                c.in_channels,
                c.out_channels,
                tuple(c.kernel),
                tuple(c.stride),
                tuple(c.padding),
                if c.bias { "True" } else { "False" }
            ),
            Layer::MaxPool2d(p) => window("MaxPool2d", &p.0, ""),
            Layer::AvgPool2d(p) => window("AvgPool2d", &p.0, ", count_include_pad=True"),
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => format!(
                "nn.{}({}, eps={:e}, momentum={})",
                if matches!(self, Layer::BatchNorm1d(_)) {
                    "BatchNorm1d"
                } else {
                    "BatchNorm2d"
                },
                b.channels,
                b.eps,
                b.momentum
            ),
            Layer::Flatten => "nn.Flatten()".to_string(),
        }
    }

    /// Parameters the layer holds (learned: weights, biases, γ, β), or `None` if that count
    /// overflows. Depends on the layer alone, not on its input's spatial size.
    pub fn param_len(&self) -> Option<u128> {
        let n = |v: usize| v as u128;
        match self {
            Layer::Dense(d) => n(d.inputs)
                .checked_mul(n(d.outputs))?
                .checked_add(n(d.outputs)),
            Layer::Conv2d(c) => n(c.out_channels)
                .checked_mul(n(c.in_channels))?
                .checked_mul(n(c.kernel[0]))?
                .checked_mul(n(c.kernel[1]))?
                .checked_add(if c.bias { n(c.out_channels) } else { 0 }),
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => n(b.channels).checked_mul(2),
            _ => Some(0),
        }
    }

    /// Buffers the layer holds besides its parameters: BatchNorm's running mean and variance
    /// (`2·C`; `num_batches_tracked` is kept apart, as an integer).
    pub fn buffer_len(&self) -> usize {
        match self {
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => 2 * b.channels,
            _ => 0,
        }
    }

    /// Whether this is a BatchNorm layer.
    pub fn is_batchnorm(&self) -> bool {
        matches!(self, Layer::BatchNorm1d(_) | Layer::BatchNorm2d(_))
    }
}

/// `3` for a square `[3, 3]`, else `3x5`.
fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}x{}", v[0], v[1])
    }
}
