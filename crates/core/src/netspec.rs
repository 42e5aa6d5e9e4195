//! The compact network description of `--layers` (and `layers = "…"` in a TOML config), and the
//! presets of `--net`.
//!
//! A network is a comma-separated list of layers, in order, as PyTorch's `nn.Sequential` lists
//! them (each item takes one index in the model file's `state_dict`):
//!
//! ```text
//! conv 32 3, relu, maxpool 2, conv 64 3, relu, maxpool 2, flatten, dropout 0.5, dense 10
//! ```
//!
//! | item | layer | PyTorch |
//! |------|-------|---------|
//! | `dense N` (or `linear N`) | fully connected, N outputs; plain `dense` = as many as the data has outputs | `nn.Linear(in, N)` |
//! | `conv O K [stride S] [pad P] [nobias]` | 2-d convolution, O output channels, K×K kernel (`KxL` for K×L) | `nn.Conv2d(C, O, K, stride=S, padding=P, bias=…)` |
//! | `maxpool K [stride S] [pad P]` | max pooling, K×K windows (stride K unless given) | `nn.MaxPool2d(K, S, P)` |
//! | `avgpool K [stride S] [pad P]` | average pooling (padding counted) | `nn.AvgPool2d(K, S, P)` |
//! | `batchnorm` (or `bn`) | BatchNorm2d on images, BatchNorm1d on features | `nn.BatchNorm2d(C)` / `nn.BatchNorm1d(C)` |
//! | `batchnorm2d`, `batchnorm1d` | the same, naming which | |
//! | `flatten` | `[N, C, H, W]` → `[N, C·H·W]` | `nn.Flatten()` |
//! | `dropout P` | inverted dropout, drop probability P in [0, 1) | `nn.Dropout(P)` |
//! | `relu`, `tanh`, `sigmoid`, `gelu`, `leaky-relu`, `identity` | activation | `nn.ReLU()`, … |
//!
//! Input channels, dense inputs and BatchNorm channels come from the shape arriving at the
//! layer, so they are never written; shapes are checked when the network is built, and an error
//! prints them (`layer 0 (conv 32 3): expected 4-D input [N, C, H, W], got [N, 784]`). The
//! network must end with `[N, outputs]`, the data's classes or target columns.
//!
//! Presets (`--net`), the same networks layer for layer as `bench/torch_cnn.py`'s:
//!
//! - `dense`: the multi-layer perceptron of `--hidden` and `--activation` (the default);
//! - `lenet5`: [`LENET5`];
//! - `keras-convnet`: [`KERAS_CONVNET`], the Keras "simple MNIST convnet".
//!
//! ```
//! use downhill_core::netspec::{parse, resolve};
//! use downhill_core::network::Shape;
//! use downhill_core::layers::ImageShape;
//! let spec = parse("conv 6 5 pad 2, relu, maxpool 2, flatten, dense").unwrap();
//! let layers = resolve(&spec, Shape::Image(ImageShape::new(1, 28, 28)), 10).unwrap();
//! assert_eq!(layers.len(), 5);
//! assert_eq!(layers[4].spec(), "dense 10");
//! ```

use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Dense, Layer, MaxPool2d, PoolWindow,
};
use crate::network::{Network, Shape, layer_output};
use crate::rng::Rng;
use crate::tensor::Scalar;

/// LeNet-5 as `bench/torch_cnn.py` builds it (ReLU, max pooling).
pub const LENET5: &str = "conv 6 5 pad 2, relu, maxpool 2, conv 16 5, relu, maxpool 2, flatten, \
                          dense 120, relu, dense 84, relu, dense";

/// The Keras "simple MNIST convnet" (keras.io/examples/vision/mnist_convnet).
pub const KERAS_CONVNET: &str = "conv 32 3, relu, maxpool 2, conv 64 3, relu, maxpool 2, \
                                 flatten, dropout 0.5, dense";

/// The preset names `--net` accepts.
pub const PRESETS: [&str; 3] = ["dense", "lenet5", "keras-convnet"];

/// The spec of a preset (`None` for `dense`, which is built from `--hidden`), or an error
/// listing the presets.
pub fn preset(name: &str) -> Result<Option<&'static str>> {
    match name {
        "dense" => Ok(None),
        "lenet5" | "lenet" | "lenet-5" => Ok(Some(LENET5)),
        "keras-convnet" | "keras" => Ok(Some(KERAS_CONVNET)),
        _ => Err(Error::setting(
            "net",
            name,
            format!("unknown preset; one of {}", PRESETS.join(", ")),
        )),
    }
}

/// One item of a spec, before the shapes arriving at it are known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    /// `dense N`; `None`: the data's outputs.
    Dense(Option<usize>),
    Activation(Activation),
    Dropout(f64),
    Conv {
        out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        bias: bool,
    },
    MaxPool(PoolWindow),
    AvgPool(PoolWindow),
    /// `batchnorm` (by the input's shape), or `batchnorm1d` / `batchnorm2d` (`Some(1)`, `Some(2)`).
    BatchNorm(Option<u8>),
    Flatten,
}

/// The largest size a spec may name (channels, kernel, stride, padding, width): larger values
/// are refused at once, before any size arithmetic.
const MAX_SIZE: usize = 1 << 24;

/// Parses a spec such as `conv 32 3, relu, maxpool 2, flatten, dense 10`; the error names the
/// item and what it expected.
///
/// Items are separated by commas, semicolons or line breaks (a TOML multi-line string holds one
/// per line, or several); a separator at the end of a line and blank lines are allowed.
pub fn parse(text: &str) -> Result<Vec<LayerSpec>> {
    if text.trim().is_empty() {
        return Err(Error::setting(
            "layers",
            "\"\"",
            "an empty network; write layers such as \"conv 32 3, relu, maxpool 2, flatten, dense 10\"",
        ));
    }
    let items = text.lines().flat_map(|line| {
        let line = line.trim();
        let line = line.strip_suffix([',', ';']).unwrap_or(line);
        (!line.is_empty())
            .then(|| line.split([',', ';']))
            .into_iter()
            .flatten()
    });
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        let words: Vec<&str> = item.split_whitespace().collect();
        if words.is_empty() {
            return Err(Error::setting(
                "layers",
                text,
                format!("item {} is empty (two commas in a row?)", i + 1),
            ));
        }
        out.push(parse_item(&words).map_err(|reason| {
            Error::setting(
                "layers",
                format!("item {} \"{}\"", i + 1, item.trim()),
                reason,
            )
        })?);
    }
    Ok(out)
}

fn size(word: &str, what: &str) -> std::result::Result<usize, String> {
    match word.parse::<usize>() {
        Ok(v) if v > MAX_SIZE => Err(format!("{what} {v} is too large (at most {MAX_SIZE})")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("{what} must be a whole number, got \"{word}\"")),
    }
}

/// `3` or `3x5` (also `3×5`).
fn pair(word: &str, what: &str) -> std::result::Result<[usize; 2], String> {
    let parts: Vec<&str> = word.split(['x', 'X', '×']).collect();
    match parts.as_slice() {
        [a] => {
            let v = size(a, what)?;
            Ok([v, v])
        }
        [a, b] => Ok([size(a, what)?, size(b, what)?]),
        _ => Err(format!("{what} must be N or HxW, got \"{word}\"")),
    }
}

/// A layer's options: its stride (if given), its padding and whether it has a bias.
type Options = (Option<[usize; 2]>, [usize; 2], bool);

/// The `stride S`, `pad P`, `nobias` options after a layer's numbers.
fn options(words: &[&str], allow_bias: bool) -> std::result::Result<Options, String> {
    let (mut stride, mut pad, mut bias) = (None, [0, 0], true);
    let mut seen: Vec<&str> = Vec::new();
    let mut it = words.iter();
    while let Some(&w) = it.next() {
        let name = match w {
            "padding" => "pad",
            "no-bias" => "nobias",
            other => other,
        };
        if seen.contains(&name) {
            return Err(format!("option {name} given twice"));
        }
        seen.push(name);
        match w {
            "stride" | "padding" | "pad" => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("`{w}` needs a value, e.g. `{w} 2`"))?;
                if w == "stride" {
                    stride = Some(pair(v, "stride")?);
                } else {
                    pad = pair(v, "padding")?;
                }
            }
            "nobias" | "no-bias" if allow_bias => bias = false,
            other => {
                return Err(format!(
                    "unknown option \"{other}\" (options: stride S, pad P{})",
                    if allow_bias { ", nobias" } else { "" }
                ));
            }
        }
    }
    Ok((stride, pad, bias))
}

/// One item of the list, split into words: the layer it names, with its numbers and options.
fn parse_item(words: &[&str]) -> std::result::Result<LayerSpec, String> {
    let kind = words[0].to_ascii_lowercase();
    let rest = &words[1..];
    match kind.as_str() {
        "dense" | "linear" | "fc" => parse_dense(&kind, rest),
        "conv" | "conv2d" => parse_conv(rest),
        "maxpool" | "maxpool2d" | "avgpool" | "avgpool2d" => parse_pool(&kind, rest),
        "batchnorm" | "bn" | "batchnorm1d" | "batchnorm2d" => {
            none_after(&kind, rest, 0)?;
            Ok(LayerSpec::BatchNorm(match kind.as_str() {
                "batchnorm1d" => Some(1),
                "batchnorm2d" => Some(2),
                _ => None,
            }))
        }
        "flatten" => {
            none_after(&kind, rest, 0)?;
            Ok(LayerSpec::Flatten)
        }
        "dropout" => parse_dropout(&kind, rest),
        other => match Activation::from_name(other) {
            Some(a) => {
                none_after(&kind, rest, 0)?;
                Ok(LayerSpec::Activation(a))
            }
            None => Err(format!(
                "unknown layer \"{other}\"; layers: dense N, conv O K, maxpool K, avgpool K, \
                 batchnorm, flatten, dropout P, and the activations {}",
                Activation::ALL.map(|a| a.name()).join(", ")
            )),
        },
    }
}

/// An error if layer `kind` has a word after its first `n` ones.
fn none_after(kind: &str, rest: &[&str], n: usize) -> std::result::Result<(), String> {
    match rest.get(n) {
        Some(w) => Err(format!("unexpected \"{w}\" after `{kind}`")),
        None => Ok(()),
    }
}

/// `dense [N]`: N outputs, or (last layer) as many as the data's outputs.
fn parse_dense(kind: &str, rest: &[&str]) -> std::result::Result<LayerSpec, String> {
    none_after(kind, rest, 1)?;
    match rest.first() {
        None => Ok(LayerSpec::Dense(None)),
        Some(w) => {
            let n = size(w, "width")?;
            if n == 0 {
                return Err("a dense layer needs at least 1 output".into());
            }
            Ok(LayerSpec::Dense(Some(n)))
        }
    }
}

/// `conv O K [stride S] [pad P] [nobias]`.
fn parse_conv(rest: &[&str]) -> std::result::Result<LayerSpec, String> {
    let (Some(o), Some(k)) = (rest.first(), rest.get(1)) else {
        return Err("conv needs OUT_CHANNELS KERNEL, e.g. \"conv 32 3\"".into());
    };
    let out = size(o, "output channels")?;
    let kernel = pair(k, "kernel")?;
    let (stride, padding, bias) = options(&rest[2..], true)?;
    let stride = stride.unwrap_or([1, 1]);
    if out == 0 || kernel.contains(&0) || stride.contains(&0) {
        return Err("channels, kernel and stride must be at least 1".into());
    }
    Ok(LayerSpec::Conv {
        out,
        kernel,
        stride,
        padding,
        bias,
    })
}

/// `maxpool K [stride S] [pad P]` or `avgpool …`: stride K unless given.
fn parse_pool(kind: &str, rest: &[&str]) -> std::result::Result<LayerSpec, String> {
    let Some(k) = rest.first() else {
        return Err(format!("{kind} needs a window size, e.g. \"{kind} 2\""));
    };
    let kernel = pair(k, "window")?;
    let (stride, padding, _) = options(&rest[1..], false)?;
    let w = PoolWindow {
        kernel,
        stride: stride.unwrap_or(kernel),
        padding,
    };
    if kernel.contains(&0) || w.stride.contains(&0) {
        return Err("window and stride must be at least 1".into());
    }
    if (0..2).any(|d| padding[d] > kernel[d] / 2) {
        return Err("padding must be at most half the window (as in PyTorch)".into());
    }
    Ok(if kind.starts_with("max") {
        LayerSpec::MaxPool(w)
    } else {
        LayerSpec::AvgPool(w)
    })
}

/// `dropout P`, P in [0, 1).
fn parse_dropout(kind: &str, rest: &[&str]) -> std::result::Result<LayerSpec, String> {
    none_after(kind, rest, 1)?;
    let Some(p) = rest.first() else {
        return Err("dropout needs a probability, e.g. \"dropout 0.5\"".into());
    };
    match p.parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(LayerSpec::Dropout(p)),
        _ => Err(format!(
            "dropout probability must be a number in [0, 1), got \"{p}\""
        )),
    }
}

/// The layers of `spec` for inputs of shape `input` and a network with `outputs` outputs: each
/// layer's input size taken from the shape arriving at it (checked, with the shapes in the error),
/// and the last shape checked against `[N, outputs]`.
pub fn resolve(spec: &[LayerSpec], input: Shape, outputs: usize) -> Result<Vec<Layer>> {
    let mut layers = Vec::with_capacity(spec.len());
    let mut shape = input;
    for (l, item) in spec.iter().enumerate() {
        let layer = match *item {
            LayerSpec::Dense(n) => Layer::Dense(Dense {
                inputs: shape.len(),
                outputs: n.unwrap_or(outputs),
            }),
            LayerSpec::Activation(a) => Layer::Activation(a),
            LayerSpec::Dropout(p) => Layer::Dropout(p),
            LayerSpec::Conv {
                out,
                kernel,
                stride,
                padding,
                bias,
            } => Layer::Conv2d(Conv2d {
                in_channels: shape.image().map_or(0, |s| s.channels),
                out_channels: out,
                kernel,
                stride,
                padding,
                bias,
            }),
            LayerSpec::MaxPool(w) => Layer::MaxPool2d(MaxPool2d(w)),
            LayerSpec::AvgPool(w) => Layer::AvgPool2d(AvgPool2d(w)),
            LayerSpec::BatchNorm(kind) => match (kind, shape) {
                (None | Some(2), Shape::Image(s)) => Layer::BatchNorm2d(BatchNorm::new(s.channels)),
                (Some(2), Shape::Flat(w)) => Layer::BatchNorm2d(BatchNorm::new(w)),
                (_, s) => Layer::BatchNorm1d(BatchNorm::new(s.len())),
            },
            LayerSpec::Flatten => Layer::Flatten,
        };
        shape = layer_output(l, &layer, shape)?;
        layers.push(layer);
    }
    if shape != Shape::Flat(outputs) {
        return Err(Error::shape(
            "the network's output",
            format!("[N, {outputs}] (the data's outputs)"),
            format!(
                "{} (end the layers with `{}dense {outputs}`)",
                shape.batch(),
                if shape.image().is_some() {
                    "flatten, "
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(layers)
}

/// Parses `CxHxW` (or `HxW` for one channel), as `--image-shape 1x28x28`.
pub fn parse_image_shape(text: &str) -> Result<crate::layers::ImageShape> {
    let bad = |why: String| Error::setting("image-shape", text, why);
    let parts: Vec<&str> = text.trim().split(['x', 'X', '×']).collect();
    let nums = parts
        .iter()
        .map(|p| size(p.trim(), "each size"))
        .collect::<std::result::Result<Vec<usize>, String>>()
        .map_err(bad)?;
    let (c, h, w) = match nums.as_slice() {
        [c, h, w] => (*c, *h, *w),
        [h, w] => (1, *h, *w),
        _ => {
            return Err(bad(
                "write CxHxW (channels × height × width), e.g. 1x28x28 or 3x32x32".into(),
            ));
        }
    };
    if c == 0 || h == 0 || w == 0 {
        return Err(bad("every size must be at least 1".into()));
    }
    Ok(crate::layers::ImageShape::new(c, h, w))
}

/// A network as a run describes it: the layers of `--layers` or of a `--net` preset (on the
/// data's input shape, or `--image-shape`'s), else the dense network features → `hidden` →
/// outputs with `activation` (and `dropout`) between its layers; initialised by `init`, or by
/// the default for its activations ([`Init::default_for_layers`], [`Init::default_for`]). The
/// one place where the program, the playground and `downhill explain` make their networks.
#[derive(Clone, Copy, Debug)]
pub struct Description<'a> {
    pub layers: Option<&'a str>,
    pub net: Option<&'a str>,
    pub image_shape: Option<&'a str>,
    pub hidden: &'a [usize],
    pub activation: Activation,
    pub dropout: f64,
    pub init: Option<Init>,
}

/// What a [`Description`] resolves to for the data at hand, before any weight is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// The described layers on their input shape.
    Layers(Shape, Vec<Layer>),
    /// The dense network of these widths, inputs to outputs.
    Dense(Vec<usize>),
}

impl Description<'_> {
    /// The network this describes for data with `features` values and `outputs` outputs per
    /// example (`image`: the data's own image shape, if it has one); see [`from_settings`].
    pub fn resolve(
        &self,
        features: usize,
        outputs: usize,
        image: Option<crate::layers::ImageShape>,
    ) -> Result<Resolved> {
        let described = from_settings(
            self.layers,
            self.net,
            self.image_shape,
            features,
            outputs,
            image,
        )?;
        Ok(match described {
            Some((input, layers)) => Resolved::Layers(input, layers),
            None => {
                let mut sizes = vec![features];
                sizes.extend(self.hidden);
                sizes.push(outputs);
                Resolved::Dense(sizes)
            }
        })
    }

    /// The network `resolved` (from [`Description::resolve`]), its weights drawn from `rng`.
    pub fn build<T: Scalar>(&self, resolved: Resolved, rng: &mut Rng) -> Result<Network<T>> {
        match resolved {
            Resolved::Layers(input, layers) => {
                let init = self
                    .init
                    .unwrap_or_else(|| Init::default_for_layers(&layers, self.activation));
                Network::with_input(input, layers, init, rng)
            }
            Resolved::Dense(sizes) => {
                let init = self.init.unwrap_or(Init::default_for(self.activation));
                Network::mlp(&sizes, self.activation, self.dropout, init, rng)
            }
        }
    }
}

/// The input shape and layers a run's settings describe, for data with `features` values and
/// `outputs` outputs per example (`image`: the data's own image shape, if it has one), or `None`
/// for the dense network of `--hidden` (no `--layers`, no `--net` or `--net dense`).
///
/// `--image-shape` must hold exactly `features` values and, for a source that knows its images'
/// shape (digits, Fashion-MNIST, IDX), be that shape; without it an image source's shape is
/// used, and a network with image layers on a table without one is an error saying so.
pub fn from_settings(
    layers: Option<&str>,
    net: Option<&str>,
    image_shape: Option<&str>,
    features: usize,
    outputs: usize,
    image: Option<crate::layers::ImageShape>,
) -> Result<Option<(Shape, Vec<Layer>)>> {
    let declared = image_shape.map(parse_image_shape).transpose()?;
    if let Some(s) = declared
        && s.channels
            .checked_mul(s.height)
            .and_then(|v| v.checked_mul(s.width))
            != Some(features)
    {
        return Err(Error::shape(
            format!("--image-shape {s}"),
            format!(
                "{} values per example",
                s.channels as u128 * s.height as u128 * s.width as u128
            ),
            format!("{features} (the data's features)"),
        ));
    }
    if let (Some(s), Some(known)) = (declared, image)
        && s != known
    {
        return Err(Error::setting(
            "image-shape",
            image_shape.unwrap_or_default(),
            format!(
                "the data's images are {known} (C×H×W) and --image-shape {s} would lay their \
                 pixels out differently; drop --image-shape (or image-shape in the config) or \
                 give {}x{}x{}",
                known.channels, known.height, known.width
            ),
        ));
    }
    let text = match (layers, net) {
        (Some(l), _) => l,
        (None, Some(n)) => match preset(n)? {
            Some(t) => t,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let spec = parse(text)?;
    let input = match declared.or(image) {
        Some(s) => Shape::Image(s),
        None => Shape::Flat(features),
    };
    resolve(&spec, input, outputs).map(|l| Some((input, l)))
}
