//! A sequential feed-forward network: its layers, its parameters in one flat vector, and the
//! forward and backward passes over a whole mini-batch.
//!
//! Backpropagation is the chain rule applied layer by layer from the output back:
//! with a⁰ = X and aˡ⁺¹ = fₗ(aˡ), and δˡ = ∂L/∂aˡ,
//!
//! ```text
//! δᴸ = ∂L/∂aᴸ                         (from the loss, see `loss`)
//! δˡ = (∂aˡ⁺¹/∂aˡ)ᵀ δˡ⁺¹              (each layer's `backward`)
//! ```
//!
//! and each dense layer adds its ∂L/∂W, ∂L/∂b on the way. All parameters — every layer's weight
//! `[out, in]` then bias `[out]`, in layer order — live in one `Vec`, and so do their gradients,
//! so an optimiser updates the whole network with one pass over two slices.
//!
//! ```
//! use downhill_core::{Activation, Init, Network, Rng, Workspace};
//! use rand::SeedableRng;
//! let mut rng = Rng::seed_from_u64(0);
//! let net = Network::<f32>::mlp(&[4, 8, 3], Activation::Relu, 0.0, Init::HeNormal, &mut rng).unwrap();
//! assert_eq!(net.param_count(), 4 * 8 + 8 + 8 * 3 + 3);
//! let mut ws = Workspace::new(&net, 2);
//! ws.input_mut(2).copy_from_slice(&[0.1; 8]);
//! let out = net.forward(&mut ws, 2, None);
//! assert_eq!(out.len(), 2 * 3);
//! ```

use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::{
    Activation, BnForward, BnStats, ConvBackward, ConvForward, Dense, ImageShape, Layer, Pool2d,
    RunningStats, dropout,
};
use crate::loss::{BatchTargets, ClassWeights, Loss};
use crate::rng::Rng;
use crate::tensor::{Beta, Scalar, Threads};

/// What [`Network::backward_update`] calls per parameter tensor: `(params, grads, range, is_weight)`.
pub type UpdateFn<'a, T> = dyn FnMut(&mut [T], &mut [T], std::ops::Range<usize>, bool) + 'a;

/// A named parameter tensor of the network, as it appears in a PyTorch `state_dict`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamTensor {
    /// `"<layer index>.weight"` or `"<layer index>.bias"`.
    pub name: String,
    /// `[out, in]` for a weight, `[out]` for a bias.
    pub shape: Vec<usize>,
    /// Where it lives in the flat parameter vector.
    pub range: std::ops::Range<usize>,
    /// True for weights (which the L2 penalty covers), false for biases.
    pub is_weight: bool,
}

/// A sequential network with its parameters.
#[derive(Clone, Debug)]
pub struct Network<T> {
    layers: Vec<Layer>,
    /// Offset of each layer's parameters in `params` (meaningful for dense layers).
    offsets: Vec<usize>,
    /// Width of each activation: `widths[0]` inputs, `widths[l + 1]` the output of layer l.
    widths: Vec<usize>,
    /// Shape of each activation (`shapes[l].len() == widths[l]`).
    shapes: Vec<Shape>,
    params: Vec<T>,
    /// BatchNorm's running statistics, layer by layer: running mean `[C]` then running variance
    /// `[C]`. Not parameters: no optimiser updates them and no penalty covers them.
    buffers: Vec<T>,
    /// Offset of each layer's buffers in `buffers`.
    buffer_offsets: Vec<usize>,
    /// BatchNorm's `num_batches_tracked` per layer (0 for other layers).
    tracked: Vec<i64>,
}

/// The shape of one example's activation: a row of features (`[N, features]` for a batch) or
/// an image (`[N, C, H, W]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    Flat(usize),
    Image(ImageShape),
}

impl Shape {
    /// Values per example.
    pub fn len(&self) -> usize {
        match self {
            Shape::Flat(n) => *n,
            Shape::Image(s) => s.len(),
        }
    }

    /// Whether an example holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch's shape as PyTorch prints it: `[N, 784]` or `[N, 1, 28, 28]`.
    pub fn batch(&self) -> String {
        match self {
            Shape::Flat(n) => format!("[N, {n}]"),
            Shape::Image(s) => format!("[N, {}, {}, {}]", s.channels, s.height, s.width),
        }
    }

    /// The image shape, if this is one.
    pub fn image(&self) -> Option<ImageShape> {
        match self {
            Shape::Image(s) => Some(*s),
            Shape::Flat(_) => None,
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.batch())
    }
}

impl<T: Scalar> Network<T> {
    /// A network of the given layers, weights drawn by `init`, biases zero.
    ///
    /// Fails if two consecutive dense layers do not fit (outputs of one ≠ inputs of the next),
    /// a width is zero, or a dropout probability is outside [0, 1).
    pub fn new(inputs: usize, layers: Vec<Layer>, init: Init, rng: &mut Rng) -> Result<Self> {
        Network::with_input(Shape::Flat(inputs), layers, init, rng)
    }

    /// [`Network::new`] for inputs of any shape (images: `Shape::Image`). Dense and convolution
    /// weights are drawn by `init` (a convolution's fan-in is `C·kh·kw`, its fan-out `O·kh·kw`,
    /// as PyTorch counts them), biases are zero, BatchNorm starts at γ = 1, β = 0, running mean
    /// 0 and running variance 1 (PyTorch's initial values).
    pub fn with_input(input: Shape, layers: Vec<Layer>, init: Init, rng: &mut Rng) -> Result<Self> {
        let mut net = Network::with_zero_params_shaped(input, layers)?;
        for (l, layer) in net.layers.iter().enumerate() {
            let off = net.offsets[l];
            match layer {
                Layer::Dense(d) => init.fill(
                    &mut net.params[off..off + d.weight_len()],
                    d.inputs,
                    d.outputs,
                    rng,
                ),
                Layer::Conv2d(c) => {
                    let taps = c.kernel[0] * c.kernel[1];
                    init.fill(
                        &mut net.params[off..off + c.weight_len()],
                        c.in_channels * taps,
                        c.out_channels * taps,
                        rng,
                    )
                }
                _ => {}
            }
        }
        Ok(net)
    }

    /// The same network with every parameter zero (to be filled by a loader), except
    /// BatchNorm's γ = 1 and running variance 1 (PyTorch's initial values).
    pub fn with_zero_params(inputs: usize, layers: Vec<Layer>) -> Result<Self> {
        Network::with_zero_params_shaped(Shape::Flat(inputs), layers)
    }

    /// [`Network::with_zero_params`] for inputs of any shape. Each layer's input shape is
    /// checked here, with errors that print the shapes.
    pub fn with_zero_params_shaped(input: Shape, layers: Vec<Layer>) -> Result<Self> {
        if input.is_empty() {
            return Err(Error::setting(
                "inputs",
                0,
                "a network needs at least one input",
            ));
        }
        if let Shape::Image(s) = input {
            crate::layers::image::batch_len(&"input image", 1, s)?;
        }
        let mut widths = vec![input.len()];
        let mut shapes = vec![input];
        let mut offsets = Vec::with_capacity(layers.len());
        let mut buffer_offsets = Vec::with_capacity(layers.len());
        let mut count = 0;
        let mut buffer_count = 0usize;
        for (l, layer) in layers.iter().enumerate() {
            let shape = *shapes.last().expect("shapes starts non-empty");
            offsets.push(count);
            buffer_offsets.push(buffer_count);
            let out = match layer {
                Layer::Dense(d) => dense_layer_shape(l, layer, d, shape)?,
                _ => image_layer_shape(l, layer, shape)?,
            };
            (count, buffer_count) = add_layer_sizes(layer, count, buffer_count)?;
            widths.push(out.len());
            shapes.push(out);
        }
        crate::memory::check(
            format!(
                "a network of {} layers with {count} parameters",
                layers.len()
            ),
            crate::memory::product(&[count.saturating_add(buffer_count), std::mem::size_of::<T>()]),
        )?;
        let mut net = Network {
            offsets,
            widths,
            shapes,
            params: vec![T::zero(); count],
            buffers: vec![T::zero(); buffer_count],
            buffer_offsets,
            tracked: vec![0; layers.len()],
            layers,
        };
        net.reset_batchnorm();
        Ok(net)
    }

    /// Sets every BatchNorm's γ and running variance to 1 (PyTorch's initial values).
    fn reset_batchnorm(&mut self) {
        for l in 0..self.layers.len() {
            if let Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) = self.layers[l] {
                let (o, c) = (self.offsets[l], b.channels);
                self.params[o..o + c].fill(T::c(1.0));
                let bo = self.buffer_offsets[l];
                self.buffers[bo + c..bo + 2 * c].fill(T::c(1.0));
            }
        }
    }

    /// A multi-layer perceptron: `sizes = [inputs, hidden…, outputs]`, the activation after every
    /// hidden dense layer (followed by dropout if `dropout > 0`), and a linear output layer
    /// (its logits go to the loss, which applies softmax or sigmoid itself).
    pub fn mlp(
        sizes: &[usize],
        activation: Activation,
        dropout: f64,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::setting(
                "sizes",
                format!("{sizes:?}"),
                "need at least inputs and outputs",
            ));
        }
        let mut layers = Vec::new();
        for (i, pair) in sizes.windows(2).enumerate() {
            layers.push(Layer::Dense(Dense {
                inputs: pair[0],
                outputs: pair[1],
            }));
            if i + 2 < sizes.len() {
                layers.push(Layer::Activation(activation));
                if dropout > 0.0 {
                    layers.push(Layer::Dropout(dropout));
                }
            }
        }
        Network::new(sizes[0], layers, init, rng)
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn inputs(&self) -> usize {
        self.widths[0]
    }

    pub fn outputs(&self) -> usize {
        *self.widths.last().expect("widths is never empty")
    }

    /// All parameters, flat: for each dense layer, weight `[out, in]` row-major, then bias.
    pub fn params(&self) -> &[T] {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }

    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// The parameter tensors with their PyTorch `state_dict` names, shapes and places:
    /// `N.weight` `[out, in]` (dense) or `[out, in, kh, kw]` (convolution) or `[C]` (BatchNorm's
    /// γ), `N.bias` `[out]` (BatchNorm's β).
    pub fn tensors(&self) -> Vec<ParamTensor> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let [w, b] = self.param_ranges(l);
            let weight_shape = match layer {
                Layer::Dense(d) => vec![d.outputs, d.inputs],
                Layer::Conv2d(c) => vec![c.out_channels, c.in_channels, c.kernel[0], c.kernel[1]],
                Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => vec![b.channels],
                _ => continue,
            };
            if let Some((range, is_weight)) = w {
                out.push(ParamTensor {
                    name: format!("{l}.weight"),
                    shape: weight_shape,
                    range,
                    is_weight,
                });
            }
            if let Some((range, is_weight)) = b {
                out.push(ParamTensor {
                    name: format!("{l}.bias"),
                    shape: vec![range.len()],
                    range,
                    is_weight,
                });
            }
        }
        out
    }

    /// The buffer tensors (BatchNorm's `N.running_mean`, `N.running_var`, each `[C]`) with
    /// their places in [`Network::buffers`]; each BatchNorm layer also has an integer
    /// `N.num_batches_tracked` ([`Network::tracked`]).
    pub fn buffer_tensors(&self) -> Vec<ParamTensor> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            if let Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) = layer {
                let (o, c) = (self.buffer_offsets[l], b.channels);
                for (i, name) in ["running_mean", "running_var"].into_iter().enumerate() {
                    out.push(ParamTensor {
                        name: format!("{l}.{name}"),
                        shape: vec![c],
                        range: o + i * c..o + (i + 1) * c,
                        is_weight: false,
                    });
                }
            }
        }
        out
    }

    /// BatchNorm's running statistics, flat (see [`Network::buffer_tensors`]).
    pub fn buffers(&self) -> &[T] {
        &self.buffers
    }

    pub fn buffers_mut(&mut self) -> &mut [T] {
        &mut self.buffers
    }

    /// The parameters followed by the buffers (what early stopping keeps of its best epoch).
    pub fn weights_and_buffers(&self) -> Vec<T> {
        let mut v = Vec::with_capacity(self.params.len() + self.buffers.len());
        v.extend_from_slice(&self.params);
        v.extend_from_slice(&self.buffers);
        v
    }

    /// Puts back what [`Network::weights_and_buffers`] returned.
    pub fn set_weights_and_buffers(&mut self, v: &[T]) {
        let (p, b) = v.split_at(self.params.len());
        self.params.copy_from_slice(p);
        self.buffers.copy_from_slice(b);
    }

    /// `num_batches_tracked` of each layer (0 for layers other than BatchNorm).
    pub fn tracked(&self) -> &[i64] {
        &self.tracked
    }

    pub fn tracked_mut(&mut self) -> &mut [i64] {
        &mut self.tracked
    }

    /// The shape of the network's input.
    pub fn input_shape(&self) -> Shape {
        self.shapes[0]
    }

    /// Shape of activation `i` (0 = input, `layers().len()` = output).
    pub fn shape(&self, i: usize) -> Shape {
        self.shapes[i]
    }

    /// Values a [`Workspace`] for batches of `max_batch` holds (activations, their gradients,
    /// dropout masks, pooling indices, BatchNorm statistics, scratch), or `None` if that count
    /// overflows: what to check against the memory before making one.
    pub fn workspace_len(&self, max_batch: usize) -> Option<u128> {
        let b = max_batch as u128;
        let mut total = self.scratch_len(max_batch)? as u128;
        for (l, &w) in self.widths.iter().enumerate() {
            // activation and (but for the input's) its gradient
            let copies = if l == 0 { 1 } else { 2 };
            total = total.checked_add(b.checked_mul(w as u128)?.checked_mul(copies)?)?;
            if let Some(layer) = self.layers.get(l) {
                let extra = match layer {
                    Layer::Dropout(_) => b.checked_mul(w as u128)?,
                    Layer::MaxPool2d(_) => b.checked_mul(self.widths[l + 1] as u128)?,
                    _ => 2 * layer.buffer_len() as u128,
                };
                total = total.checked_add(extra)?;
            }
        }
        Some(total)
    }

    /// Values a [`Workspace::inference`] for batches of `max_batch` holds (activations, pooling
    /// indices, scratch), or `None` if that count overflows.
    pub fn inference_len(&self, max_batch: usize) -> Option<u128> {
        let b = max_batch as u128;
        let mut total = self.scratch_len(max_batch)? as u128;
        for (l, &w) in self.widths.iter().enumerate() {
            total = total.checked_add(b.checked_mul(w as u128)?)?;
            if let Some(Layer::MaxPool2d(_)) = self.layers.get(l) {
                total = total.checked_add(b.checked_mul(self.widths[l + 1] as u128)?)?;
            }
        }
        Some(total)
    }

    /// The shared scratch buffer's length for batches of `max_batch`: a dense layer's Zᵀ or a
    /// convolution's patch matrices, whichever is largest.
    fn scratch_len(&self, max_batch: usize) -> Option<usize> {
        let mut len = 0usize;
        for (l, layer) in self.layers.iter().enumerate() {
            let need = match layer {
                Layer::Dense(d) => d.outputs.checked_mul(max_batch)?,
                Layer::Conv2d(c) => c.scratch_len(self.shapes[l].image()?).ok()?,
                _ => 0,
            };
            len = len.max(need);
        }
        Some(len)
    }

    /// The notes' L2 penalty λ Σ w² over this network's weight tensors (not its biases).
    pub fn penalty(&self, lambda: f64) -> crate::loss::Penalty<T> {
        let weights = self
            .tensors()
            .into_iter()
            .filter(|t| t.is_weight)
            .map(|t| t.range)
            .collect();
        crate::loss::Penalty::new(lambda, weights)
    }

    /// Forward pass over the first `n` rows of the workspace's input (see [`Workspace::input_mut`]).
    /// With `Some(rng)` the network is in training mode (dropout draws masks from `rng`); with
    /// `None` in evaluation mode. Returns the output, `n × outputs`.
    pub fn forward<'w>(
        &self,
        ws: &'w mut Workspace<T>,
        n: usize,
        mut train: Option<&mut Rng>,
    ) -> &'w [T] {
        assert!(
            n <= ws.max_batch,
            "batch of {n} rows in a workspace for {}",
            ws.max_batch
        );
        let threads = ws.threads;
        ws.trained = train.is_some();
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = ws.acts.split_at_mut(l + 1);
            let x = &before[l][..n * self.widths[l]];
            let y = &mut after[0][..n * self.widths[l + 1]];
            match layer {
                Layer::Dense(d) => {
                    let (w, b) = self.dense_params(l, d);
                    d.forward(x, n, w, b, y, &mut ws.scratch, threads);
                }
                Layer::Activation(a) => a.forward(x, y),
                Layer::Dropout(p) => match train.as_deref_mut() {
                    Some(rng) => dropout::forward_train(*p, x, y, &mut ws.masks[l][..x.len()], rng),
                    None => y.copy_from_slice(x),
                },
                _ => self.image_forward(
                    l,
                    n,
                    (x, y),
                    (&mut ws.scratch, &mut ws.indices[l], &mut ws.bn[l]),
                    ws.trained,
                    threads,
                ),
            }
        }
        &ws.acts[self.layers.len()][..n * self.outputs()]
    }

    /// Forward → loss and δ, the first phases of every mini-batch step: the forward pass over the
    /// first `batch.n` rows of the workspace's input (training mode with `Some(batch.rng)`), then
    /// the summed data loss Σᵢ ℓᵢ of the output against the batch's targets and
    /// δᴸ = ∂(Σᵢ ℓᵢ / denom)/∂z into the workspace, ready for [`Network::backward`]. The training
    /// loop, the data-parallel shards, the full-gradient norm, the learning-rate finder and
    /// gradcheck all go through here.
    ///
    /// # Panics
    /// On a mini-batch the caller should have refused (the training loop does, before its
    /// first step): `batch.n` above the workspace's [`Workspace::max_batch`], targets for fewer
    /// than `n` rows, a class index not below the network's outputs, or a training batch that
    /// [`Network::check_train_batch`] refuses (BatchNorm needs more than one value per channel).
    pub fn forward_loss(&self, ws: &mut Workspace<T>, batch: MiniBatch<'_, T>) -> BatchLoss {
        let MiniBatch {
            n,
            targets,
            objective,
            rng,
        } = batch;
        self.forward(ws, n, rng);
        let k = self.outputs();
        let (out, delta) = ws.output_and_delta(n);
        let sum = crate::loss::evaluate_weighted(
            objective.loss,
            objective.class_weights,
            out,
            n,
            k,
            targets,
            Some((delta, T::c(objective.denom))),
        )
        .f64();
        BatchLoss {
            sum,
            correct: objective.loss.correct(out, n, k, targets),
        }
    }

    /// Forward → loss and δ → backward: [`Network::forward_loss`], then ∂(Σᵢ ℓᵢ / denom)/∂w
    /// written (`Beta::Replace`) or added (`Beta::Add`) into `grads`. The L2 penalty's gradient
    /// is the caller's to add ([`crate::loss::Penalty`]), once per gradient. Panics as
    /// [`Network::forward_loss`] does, and if `grads` does not hold the network's parameters.
    pub fn loss_and_gradient(
        &self,
        ws: &mut Workspace<T>,
        batch: MiniBatch<'_, T>,
        (grads, beta): (&mut [T], Beta),
    ) -> BatchLoss {
        let n = batch.n;
        let l = self.forward_loss(ws, batch);
        self.backward(ws, n, grads, beta);
        l
    }

    /// Backward pass after a training [`Network::forward`] of the same `n` rows, starting from
    /// δᴸ = ∂L/∂output that the caller wrote into [`Workspace::output_and_delta`]. Writes
    /// (`Beta::Replace`) or adds (`Beta::Add`) ∂L/∂params into `grads`.
    pub fn backward(&self, ws: &mut Workspace<T>, n: usize, grads: &mut [T], beta: Beta) {
        assert_eq!(
            grads.len(),
            self.params.len(),
            "gradient vector of the wrong length"
        );
        for l in (0..self.layers.len()).rev() {
            self.layer_backward(l, ws, n, grads, beta);
        }
    }

    /// [`Network::backward`] (writing the gradients) that hands each dense layer's weight, then
    /// bias, to `update(params, grads, range, is_weight)` as soon as their gradients are known.
    /// That is after the layer's own δX, and lower layers never read its weights, so updating
    /// there gives the same result as updating after the whole pass — while the gradient is still
    /// in cache.
    pub fn backward_update(
        &mut self,
        ws: &mut Workspace<T>,
        n: usize,
        grads: &mut [T],
        update: &mut UpdateFn<'_, T>,
    ) {
        assert_eq!(
            grads.len(),
            self.params.len(),
            "gradient vector of the wrong length"
        );
        for l in (0..self.layers.len()).rev() {
            self.layer_backward(l, ws, n, grads, Beta::Replace);
            for (r, is_weight) in self.param_ranges(l).into_iter().flatten() {
                update(
                    &mut self.params[r.clone()],
                    &mut grads[r.clone()],
                    r,
                    is_weight,
                );
            }
        }
    }

    /// Layer l's backward: δ of its input from δ of its output, and its parameters' gradients.
    fn layer_backward(
        &self,
        l: usize,
        ws: &mut Workspace<T>,
        n: usize,
        grads: &mut [T],
        beta: Beta,
    ) {
        let threads = ws.threads;
        let (lo, hi) = ws.deltas.split_at_mut(l + 1);
        let delta_out = &hi[0][..n * self.widths[l + 1]];
        let delta_in = if l > 0 {
            Some(&mut lo[l][..n * self.widths[l]])
        } else {
            None
        };
        let x = &ws.acts[l][..n * self.widths[l]];
        match &self.layers[l] {
            Layer::Dense(d) => {
                let (w, _) = self.dense_params(l, d);
                let off = self.offsets[l];
                let (dw, db) =
                    grads[off..off + d.weight_len() + d.outputs].split_at_mut(d.weight_len());
                d.backward(x, n, w, delta_out, dw, db, delta_in, beta, threads);
            }
            Layer::Activation(a) => {
                if let Some(delta_in) = delta_in {
                    a.backward(x, &ws.acts[l + 1][..x.len()], delta_out, delta_in);
                }
            }
            Layer::Dropout(_) => {
                if let Some(delta_in) = delta_in {
                    dropout::backward(&ws.masks[l][..x.len()], delta_out, delta_in);
                }
            }
            _ => self.image_backward(
                l,
                n,
                (x, delta_out, delta_in),
                (grads, beta),
                (&mut ws.scratch, &ws.indices[l], &ws.bn[l]),
                ws.trained,
                threads,
            ),
        }
    }

    /// Forward of layer l (convolution, pooling, BatchNorm, Flatten) over `n` examples:
    /// `x` → `y`. In training BatchNorm normalises with the batch's statistics and writes its
    /// running statistics, updated, into `bn` (see [`Network::commit_batch_stats`]); in
    /// evaluation it uses the network's running statistics.
    fn image_forward(
        &self,
        l: usize,
        n: usize,
        (x, y): (&[T], &mut [T]),
        (scratch, indices, bn): (&mut [T], &mut [u32], &mut BnState<T>),
        train: bool,
        threads: Threads,
    ) {
        let input = self.shapes[l].image();
        match &self.layers[l] {
            Layer::Conv2d(c) => {
                let (w, b) = self.conv_params(l, c);
                let input = input.expect(BUILT);
                let pass = ConvForward {
                    input,
                    n,
                    x,
                    w,
                    b,
                    y,
                };
                c.forward(pass, scratch, threads).expect(BUILT);
            }
            Layer::MaxPool2d(p) => p
                .forward_indexed(input.expect(BUILT), n, x, y, &mut indices[..y.len()])
                .expect(BUILT),
            Layer::AvgPool2d(p) => p.forward(input.expect(BUILT), n, x, y).expect(BUILT),
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => {
                let c = b.channels;
                let spatial = self.widths[l] / c;
                let off = self.offsets[l];
                let (gamma, beta) = self.params[off..off + 2 * c].split_at(c);
                let stats = &self.buffers[self.buffer_offsets[l]..][..2 * c];
                let pass = BnForward {
                    n,
                    spatial,
                    x,
                    gamma,
                    beta,
                    y,
                };
                if train {
                    bn.running.copy_from_slice(stats);
                    bn.tracked = self.tracked[l];
                    let (mean, var) = bn.running.split_at_mut(c);
                    let running = RunningStats {
                        mean,
                        var,
                        num_batches_tracked: &mut bn.tracked,
                    };
                    b.forward_train(pass, running, &mut bn.saved)
                    .expect("BatchNorm training batches are checked before training (check_train_batch)");
                } else {
                    let (mean, var) = stats.split_at(c);
                    b.forward_eval(pass, mean, var).expect(BUILT);
                }
            }
            Layer::Flatten => y.copy_from_slice(x),
            Layer::Dense(_) | Layer::Activation(_) | Layer::Dropout(_) => {
                unreachable!("handled by forward")
            }
        }
    }

    /// Backward of layer l (convolution, pooling, BatchNorm, Flatten): ∂L/∂x from `dy` (if
    /// `dx` is asked) and the layer's parameter gradients (written or added, `beta`).
    #[allow(clippy::too_many_arguments)]
    fn image_backward(
        &self,
        l: usize,
        n: usize,
        (x, dy, dx): (&[T], &[T], Option<&mut [T]>),
        (grads, beta): (&mut [T], Beta),
        (scratch, indices, bn): (&mut [T], &[u32], &BnState<T>),
        train: bool,
        threads: Threads,
    ) {
        let input = self.shapes[l].image();
        let off = self.offsets[l];
        match &self.layers[l] {
            Layer::Conv2d(c) => {
                let (w, _) = self.conv_params(l, c);
                let (dw, db) =
                    grads[off..off + c.weight_len() + c.bias_len()].split_at_mut(c.weight_len());
                let pass = ConvBackward {
                    dy,
                    input: input.expect(BUILT),
                    n,
                    x,
                    w,
                    dw,
                    db,
                    dx,
                    beta,
                };
                c.backward(pass, scratch, threads).expect(BUILT);
            }
            Layer::MaxPool2d(p) => {
                if let Some(dx) = dx {
                    p.backward_indexed(input.expect(BUILT), n, &indices[..dy.len()], dy, dx)
                        .expect(BUILT);
                }
            }
            Layer::AvgPool2d(p) => {
                if let Some(dx) = dx {
                    p.backward(input.expect(BUILT), n, dy, dx).expect(BUILT);
                }
            }
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => {
                let c = b.channels;
                let spatial = self.widths[l] / c;
                let gamma = &self.params[off..off + c];
                let (dgamma, dbeta) = grads[off..off + 2 * c].split_at_mut(c);
                let stats = if train {
                    BnStats::Saved(&bn.saved)
                } else {
                    let running = &self.buffers[self.buffer_offsets[l]..][..2 * c];
                    let (mean, var) = running.split_at(c);
                    BnStats::Running { mean, var }
                };
                b.backward(n, spatial, x, gamma, stats, dy, dgamma, dbeta, dx, beta)
                    .expect(BUILT);
            }
            Layer::Flatten => {
                if let Some(dx) = dx {
                    dx.copy_from_slice(dy);
                }
            }
            Layer::Dense(_) | Layer::Activation(_) | Layer::Dropout(_) => {
                unreachable!("handled by layer_backward")
            }
        }
    }

    fn conv_params(&self, l: usize, c: &crate::layers::Conv2d) -> (&[T], &[T]) {
        let off = self.offsets[l];
        self.params[off..off + c.weight_len() + c.bias_len()].split_at(c.weight_len())
    }

    /// Layer l's parameter tensors as (range in `params`, covered by the L2 penalty): a dense
    /// or convolution layer's weight (penalised) and bias, BatchNorm's γ and β (not penalised:
    /// they scale and shift normalised values rather than connect units).
    pub fn param_ranges(&self, l: usize) -> [Option<(std::ops::Range<usize>, bool)>; 2] {
        let off = self.offsets[l];
        match &self.layers[l] {
            Layer::Dense(d) => {
                let w = off + d.weight_len();
                [Some((off..w, true)), Some((w..w + d.outputs, false))]
            }
            Layer::Conv2d(c) => {
                let w = off + c.weight_len();
                [
                    Some((off..w, true)),
                    c.bias.then(|| (w..w + c.out_channels, false)),
                ]
            }
            Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => {
                let c = b.channels;
                [
                    Some((off..off + c, false)),
                    Some((off + c..off + 2 * c, false)),
                ]
            }
            _ => [None, None],
        }
    }

    /// After a training forward pass (`Some(rng)`): makes the BatchNorm running statistics and
    /// `num_batches_tracked` that pass computed (into the workspace) the network's own, as
    /// PyTorch's training-mode forward does. Training steps call this; gradcheck, the
    /// learning-rate finder and the full-gradient norm do not, so their forward passes leave the
    /// running statistics as they were.
    pub fn commit_batch_stats(&mut self, ws: &Workspace<T>) {
        if !ws.trained {
            return;
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.is_batchnorm() {
                let bo = self.buffer_offsets[l];
                let s = &ws.bn[l];
                self.buffers[bo..bo + s.running.len()].copy_from_slice(&s.running);
                self.tracked[l] = s.tracked;
            }
        }
    }

    /// Whether the network has a BatchNorm layer.
    pub fn has_batchnorm(&self) -> bool {
        self.layers.iter().any(Layer::is_batchnorm)
    }

    /// Checks that a training batch of `n` examples gives every BatchNorm layer more than one
    /// value per channel (PyTorch raises the same error in training mode).
    pub fn check_train_batch(&self, n: usize) -> Result<()> {
        for (l, layer) in self.layers.iter().enumerate() {
            if let Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) = layer {
                let spatial = self.widths[l] / b.channels;
                if n.saturating_mul(spatial) < 2 {
                    return Err(Error::shape(
                        format!("layer {l} (batchnorm) in training"),
                        "more than 1 value per channel: a batch of at least 2 examples (and no last batch of 1; change --batch-size)",
                        format!("a batch of {n} of {}", self.shapes[l].batch()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn dense_params(&self, l: usize, d: &Dense) -> (&[T], &[T]) {
        let off = self.offsets[l];
        self.params[off..off + d.weight_len() + d.outputs].split_at(d.weight_len())
    }

    /// Width of activation `i` (0 = input, `layers().len()` = output).
    pub fn width(&self, i: usize) -> usize {
        self.widths[i]
    }
}

/// The error of a layer whose parameter count does not fit in memory's address range.
fn too_large(layer: &Layer) -> Error {
    Error::TooLarge {
        what: format!("a network with a `{}` layer", layer.spec()),
        needed: "more parameters than fit in memory's address range".into(),
        available: crate::memory::human(crate::memory::available() as u128),
    }
}

/// The output shape of layer `l` for input `shape`, or an error that prints the layer and the
/// shapes (what [`Network::with_zero_params_shaped`] checks, one layer at a time).
pub fn layer_output(l: usize, layer: &Layer, shape: Shape) -> Result<Shape> {
    match (layer, shape) {
        (Layer::Dense(d), Shape::Flat(w)) => {
            if d.inputs != w {
                return Err(Error::shape(
                    format!("layer {l} ({}) inputs", layer.spec()),
                    w,
                    d.inputs,
                ));
            }
            Ok(Shape::Flat(d.outputs))
        }
        (Layer::Dense(_), Shape::Image(s)) => Err(dense_on_image(l, layer, s)),
        _ => image_layer_shape(l, layer, shape),
    }
}

/// What a layer that needs images on a flat input is told to do (a model file says it otherwise).
pub const IMAGE_SHAPE_HINT: &str = "add an image shape such as --image-shape 1x28x28";

/// "layer L (spec)" in errors, with BatchNorm's kind (1d or 2d), which its spec leaves out.
fn layer_label(l: usize, layer: &Layer) -> String {
    match layer {
        Layer::BatchNorm1d(_) => format!("layer {l} (batchnorm1d)"),
        Layer::BatchNorm2d(_) => format!("layer {l} (batchnorm2d)"),
        _ => format!("layer {l} ({})", layer.spec()),
    }
}

/// The error of a dense layer given images.
fn dense_on_image(l: usize, layer: &Layer, s: ImageShape) -> Error {
    Error::shape(
        format!("layer {l} ({})", layer.spec()),
        "2-D input [N, features] (add `flatten` before it)",
        format!("{} ({s} images)", Shape::Image(s).batch()),
    )
}

/// The output shape of dense layer `l` for input `shape`, or an error unless that input is flat
/// and as wide as the layer's inputs and the layer has outputs.
fn dense_layer_shape(l: usize, layer: &Layer, d: &Dense, shape: Shape) -> Result<Shape> {
    if let Shape::Image(s) = shape {
        return Err(dense_on_image(l, layer, s));
    }
    if d.inputs != shape.len() {
        return Err(Error::shape(
            format!("layer {l} (dense) inputs"),
            shape.len(),
            d.inputs,
        ));
    }
    if d.outputs == 0 {
        return Err(Error::setting(
            "layer width",
            0,
            format!("layer {l} has no outputs"),
        ));
    }
    Ok(Shape::Flat(d.outputs))
}

/// The parameter and buffer counts after adding `layer`'s to `count` and `buffer_count`, or an
/// error when they pass `usize`.
fn add_layer_sizes(layer: &Layer, count: usize, buffer_count: usize) -> Result<(usize, usize)> {
    if let Layer::Dense(d) = layer {
        let count = d
            .inputs
            .checked_mul(d.outputs)
            .and_then(|w| w.checked_add(d.outputs))
            .and_then(|p| p.checked_add(count))
            .ok_or_else(|| Error::TooLarge {
                what: format!("a network with a {} × {} layer", d.inputs, d.outputs),
                needed: "more than 2⁶⁴ parameters".into(),
                available: crate::memory::human(crate::memory::available() as u128),
            })?;
        return Ok((count, buffer_count));
    }
    let p = layer.param_len().and_then(|p| usize::try_from(p).ok());
    let count = p
        .and_then(|p| p.checked_add(count))
        .ok_or_else(|| too_large(layer))?;
    let buffer_count = buffer_count
        .checked_add(layer.buffer_len())
        .ok_or_else(|| too_large(layer))?;
    Ok((count, buffer_count))
}

/// Gives a shape error from a layer's own checks the layer's `name`.
fn renamed(name: &str) -> impl Fn(Error) -> Error + '_ {
    move |e: Error| match e {
        Error::Shape { expected, got, .. } => Error::shape(name.to_string(), expected, got),
        other => other,
    }
}

/// The output shape of a convolution for input images `s`: their channels must be its input
/// channels, and its output and scratch must fit in memory.
fn conv_layer_shape(name: &str, c: &crate::layers::Conv2d, s: ImageShape) -> Result<Shape> {
    if s.channels != c.in_channels {
        return Err(Error::shape(
            name.to_string(),
            format!(
                "[N, {}, H, W] ({} input channels)",
                c.in_channels, c.in_channels
            ),
            Shape::Image(s).batch(),
        ));
    }
    let out = c.output_shape(s).map_err(renamed(name))?;
    crate::layers::image::batch_len(&name, 1, out)?;
    c.scratch_len(s).map_err(renamed(name))?;
    Ok(Shape::Image(out))
}

/// The output shape of layer `l` (any but dense) for input `shape`, or an error that prints the
/// layer and both shapes.
fn image_layer_shape(l: usize, layer: &Layer, shape: Shape) -> Result<Shape> {
    let name = layer_label(l, layer);
    let need_image = |what: &str| {
        Error::shape(
            name.clone(),
            format!("4-D input [N, C, H, W]{what}"),
            format!(
                "{} ({IMAGE_SHAPE_HINT}, or move the layer before `flatten`)",
                shape.batch()
            ),
        )
    };
    Ok(match (layer, shape) {
        (Layer::Activation(_), s) => s,
        (Layer::Dropout(p), s) => {
            if !(0.0..1.0).contains(p) {
                return Err(Error::setting("dropout", p, "must be in [0, 1)"));
            }
            s
        }
        (Layer::Flatten, s) => Shape::Flat(s.len()),
        (Layer::Conv2d(c), Shape::Image(s)) => conv_layer_shape(&name, c, s)?,
        (Layer::MaxPool2d(p), Shape::Image(s)) => {
            Shape::Image(p.output_shape(s).map_err(renamed(&name))?)
        }
        (Layer::AvgPool2d(p), Shape::Image(s)) => {
            Shape::Image(p.output_shape(s).map_err(renamed(&name))?)
        }
        // BatchNorm2d on [N, C, H, W], BatchNorm1d on [N, C]: C must be its channel count.
        (Layer::BatchNorm2d(b), Shape::Image(ImageShape { channels: c, .. }))
        | (Layer::BatchNorm1d(b), Shape::Flat(c)) => {
            b.validate()?;
            if c != b.channels {
                let plane = if shape.image().is_some() {
                    ", H, W"
                } else {
                    ""
                };
                let want = format!("[N, {}{plane}]", b.channels);
                return Err(Error::shape(name, want, shape.batch()));
            }
            shape
        }
        (Layer::BatchNorm1d(_), Shape::Image(_)) => {
            return Err(Error::shape(
                name,
                "2-D input [N, features] (BatchNorm1d; use BatchNorm2d on images)",
                shape.batch(),
            ));
        }
        (Layer::Conv2d(_) | Layer::MaxPool2d(_) | Layer::AvgPool2d(_), Shape::Flat(_)) => {
            return Err(need_image(""));
        }
        (Layer::BatchNorm2d(_), Shape::Flat(_)) => {
            return Err(need_image(" (BatchNorm2d; use BatchNorm1d on features)"));
        }
        (Layer::Dense(_), _) => unreachable!("dense layers are checked by the caller"),
    })
}

/// Preallocated buffers for forward and backward passes of up to `max_batch` rows: activations,
/// their gradients, dropout masks, max-pooling indices and BatchNorm statistics. Made once, reused
/// by every step, so training allocates nothing per step.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    max_batch: usize,
    threads: Threads,
    /// `acts[0]` input batch, `acts[l + 1]` output of layer l.
    acts: Vec<Vec<T>>,
    /// `deltas[l]` = ∂L/∂`acts[l]` (`deltas[0]` is never needed and stays empty).
    deltas: Vec<Vec<T>>,
    /// Dropout masks, for dropout layers only.
    masks: Vec<Vec<T>>,
    /// Where each maximum of a max-pooling layer's last forward pass was (its layers only).
    indices: Vec<Vec<u32>>,
    /// BatchNorm's statistics of the last training forward pass (its layers only).
    bn: Vec<BnState<T>>,
    /// Whether the last forward pass ran in training mode.
    trained: bool,
    /// Room for a dense layer's Zᵀ (see [`Dense::transposed_forward`]) or a convolution's
    /// patch matrices.
    scratch: Vec<T>,
}

/// One BatchNorm layer's statistics from a training forward pass.
#[derive(Clone, Debug, Default)]
struct BnState<T> {
    /// The batch mean and 1/√(σ² + ε) per channel, for the backward pass.
    saved: Vec<T>,
    /// The running mean and variance after this batch (the network's, updated).
    running: Vec<T>,
    tracked: i64,
}

/// One buffer per layer of `net`, `len(l, layer)` copies of `zero` (empty for the layers that
/// keep none).
fn per_layer<T: Scalar, B: Clone>(
    net: &Network<T>,
    zero: B,
    len: impl Fn(usize, &Layer) -> usize,
) -> Vec<Vec<B>> {
    let layers = net.layers.iter().enumerate();
    layers
        .map(|(l, layer)| vec![zero.clone(); len(l, layer)])
        .collect()
}

/// Where each max-pooling layer writes its maxima's positions: one index per output value.
fn pool_indices<T: Scalar>(net: &Network<T>, max_batch: usize) -> Vec<Vec<u32>> {
    per_layer(net, 0u32, |l, layer| match layer {
        Layer::MaxPool2d(_) => max_batch * net.widths[l + 1],
        _ => 0,
    })
}

/// What a shape that the network's constructor accepted cannot fail.
const BUILT: &str = "shapes checked when the network was built";

impl<T: Scalar> Workspace<T> {
    /// Buffers for `net` and batches of at most `max_batch` rows, single-threaded. Check
    /// [`Network::workspace_len`] against the memory first for large networks or batches.
    pub fn new(net: &Network<T>, max_batch: usize) -> Self {
        let widths = &net.widths;
        let acts = widths
            .iter()
            .map(|&w| vec![T::zero(); max_batch * w])
            .collect();
        let deltas = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| vec![T::zero(); if i == 0 { 0 } else { max_batch * w }])
            .collect();
        let masks = per_layer(net, T::zero(), |l, layer| match layer {
            Layer::Dropout(_) => max_batch * widths[l],
            _ => 0,
        });
        let indices = pool_indices(net, max_batch);
        let bn = net
            .layers
            .iter()
            .map(|layer| match layer {
                Layer::BatchNorm1d(b) | Layer::BatchNorm2d(b) => BnState {
                    saved: vec![T::zero(); b.saved_len()],
                    running: vec![T::zero(); 2 * b.channels],
                    tracked: 0,
                },
                _ => BnState::default(),
            })
            .collect();
        // A batch of any size up to `max_batch` may take the transposed route.
        let scratch = net.scratch_len(max_batch).unwrap_or(0);
        Workspace {
            max_batch,
            threads: Threads::ONE,
            acts,
            deltas,
            masks,
            indices,
            bn,
            trained: false,
            scratch: vec![T::zero(); scratch],
        }
    }

    /// Buffers for evaluation-mode forward passes only ([`Network::forward`] with `None`): the
    /// activations without their gradients or dropout masks, about half of [`Workspace::new`]'s
    /// memory. Training (or `backward`) with it is a bug and panics.
    pub fn inference(net: &Network<T>, max_batch: usize) -> Self {
        let widths = &net.widths;
        Workspace {
            max_batch,
            threads: Threads::ONE,
            acts: widths
                .iter()
                .map(|&w| vec![T::zero(); max_batch * w])
                .collect(),
            deltas: vec![Vec::new(); widths.len()],
            masks: vec![Vec::new(); net.layers.len()],
            indices: pool_indices(net, max_batch),
            bn: vec![BnState::default(); net.layers.len()],
            trained: false,
            scratch: vec![T::zero(); net.scratch_len(max_batch).unwrap_or(0)],
        }
    }

    /// Values (and pooling indices) this workspace holds: what [`Network::workspace_len`] and
    /// [`Network::inference_len`] estimate.
    pub fn allocated_len(&self) -> usize {
        let sum = |v: &[Vec<T>]| v.iter().map(Vec::len).sum::<usize>();
        sum(&self.acts)
            + sum(&self.deltas)
            + sum(&self.masks)
            + self.indices.iter().map(Vec::len).sum::<usize>()
            + self
                .bn
                .iter()
                .map(|b| b.saved.len() + b.running.len())
                .sum::<usize>()
            + self.scratch.len()
    }

    /// Lets matrix products use up to `threads` threads.
    pub fn with_threads(mut self, threads: Threads) -> Self {
        self.threads = threads;
        self
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The input buffer for a batch of `n` rows (`n × inputs`), to be filled before `forward`.
    pub fn input_mut(&mut self, n: usize) -> &mut [T] {
        let w = self.acts[0].len() / self.max_batch.max(1);
        &mut self.acts[0][..n * w]
    }

    /// Activation `i` of the last forward pass over `n` rows (`n × width(i)`, row-major):
    /// `0` the input batch, `l + 1` the output of layer l. For a dense layer l that is
    /// z = W·x + b, for the activation after it a = σ(z). A view of the engine's own buffer,
    /// no copy.
    pub fn activation(&self, i: usize, n: usize) -> &[T] {
        let w = self.acts[i].len() / self.max_batch.max(1);
        &self.acts[i][..n * w]
    }

    /// ∂L/∂(activation `i`) from the last backward pass over `n` rows (`n × width(i)`): for
    /// the output of dense layer l it is the notes' δ = ∂L/∂z, for the output of an activation
    /// ∂L/∂a = Wᵀδ of the layer above. `i` ≥ 1 (the input's gradient is never computed), and
    /// only after [`Network::backward`] of the same rows. A view of the engine's own buffer.
    pub fn delta(&self, i: usize, n: usize) -> &[T] {
        let w = self.deltas[i].len() / self.max_batch.max(1);
        &self.deltas[i][..n * w]
    }

    /// The output of the last forward pass and the buffer for ∂L/∂output, both `n × outputs`.
    pub fn output_and_delta(&mut self, n: usize) -> (&[T], &mut [T]) {
        let last = self.acts.len() - 1;
        let w = self.acts[last].len() / self.max_batch.max(1);
        (&self.acts[last][..n * w], &mut self.deltas[last][..n * w])
    }
}

/// What a mini-batch's loss is: L = (1/denom) Σᵢ wᵢ ℓᵢ with the given loss and optional class
/// weights; `denom` is the batch size |B| for a step's mean, n for a whole-set gradient.
#[derive(Clone, Copy, Debug)]
pub struct Objective<'a> {
    pub loss: Loss,
    pub class_weights: Option<&'a ClassWeights>,
    pub denom: f64,
}

/// One mini-batch as [`Network::forward_loss`] reads it: the first `n` rows of the workspace's
/// input (the caller gathered them), their targets, what is minimised over them, and in
/// training mode the generator that draws the dropout masks (`None`: evaluation mode).
#[derive(Debug)]
pub struct MiniBatch<'a, T> {
    pub n: usize,
    pub targets: BatchTargets<'a, T>,
    pub objective: Objective<'a>,
    pub rng: Option<&'a mut Rng>,
}

/// What [`Network::forward_loss`] measured on a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss {
    /// Σᵢ ℓᵢ (weighted), the data loss summed over the rows (no penalty, not divided).
    pub sum: f64,
    /// Rows classified correctly, for losses that classify.
    pub correct: Option<usize>,
}
