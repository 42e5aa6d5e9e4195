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
//! use downhill::{Activation, Init, Network, Rng, Workspace};
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
use crate::layers::{Activation, Dense, Layer, dropout};
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
    params: Vec<T>,
}

impl<T: Scalar> Network<T> {
    /// A network of the given layers, weights drawn by `init`, biases zero.
    ///
    /// Fails if two consecutive dense layers do not fit (outputs of one ≠ inputs of the next),
    /// a width is zero, or a dropout probability is outside [0, 1).
    pub fn new(inputs: usize, layers: Vec<Layer>, init: Init, rng: &mut Rng) -> Result<Self> {
        let mut net = Network::with_zero_params(inputs, layers)?;
        for (l, layer) in net.layers.iter().enumerate() {
            if let Layer::Dense(d) = layer {
                let off = net.offsets[l];
                init.fill(
                    &mut net.params[off..off + d.weight_len()],
                    d.inputs,
                    d.outputs,
                    rng,
                );
            }
        }
        Ok(net)
    }

    /// The same network with every parameter zero (to be filled by a loader).
    pub fn with_zero_params(inputs: usize, layers: Vec<Layer>) -> Result<Self> {
        if inputs == 0 {
            return Err(Error::setting(
                "inputs",
                0,
                "a network needs at least one input",
            ));
        }
        let mut widths = vec![inputs];
        let mut offsets = Vec::with_capacity(layers.len());
        let mut count = 0;
        for (l, layer) in layers.iter().enumerate() {
            let w = *widths.last().expect("widths starts non-empty");
            offsets.push(count);
            match layer {
                Layer::Dense(d) => {
                    if d.inputs != w {
                        return Err(Error::shape(
                            format!("layer {l} (dense) inputs"),
                            w,
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
                    count = d
                        .inputs
                        .checked_mul(d.outputs)
                        .and_then(|w| w.checked_add(d.outputs))
                        .and_then(|p| p.checked_add(count))
                        .ok_or_else(|| Error::TooLarge {
                            what: format!("a network with a {} × {} layer", d.inputs, d.outputs),
                            needed: "more than 2⁶⁴ parameters".into(),
                            available: crate::memory::human(crate::memory::available() as u128),
                        })?;
                    widths.push(d.outputs);
                }
                Layer::Dropout(p) => {
                    if !(0.0..1.0).contains(p) {
                        return Err(Error::setting("dropout", p, "must be in [0, 1)"));
                    }
                    widths.push(w);
                }
                Layer::Activation(_) => widths.push(w),
            }
        }
        crate::memory::check(
            format!(
                "a network of {} layers with {count} parameters",
                layers.len()
            ),
            crate::memory::product(&[count, std::mem::size_of::<T>()]),
        )?;
        Ok(Network {
            layers,
            offsets,
            widths,
            params: vec![T::zero(); count],
        })
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

    /// The parameter tensors with their PyTorch `state_dict` names, shapes and places.
    pub fn tensors(&self) -> Vec<ParamTensor> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            if let Layer::Dense(d) = layer {
                let w = self.offsets[l];
                let b = w + d.weight_len();
                out.push(ParamTensor {
                    name: format!("{l}.weight"),
                    shape: vec![d.outputs, d.inputs],
                    range: w..b,
                    is_weight: true,
                });
                out.push(ParamTensor {
                    name: format!("{l}.bias"),
                    shape: vec![d.outputs],
                    range: b..b + d.outputs,
                    is_weight: false,
                });
            }
        }
        out
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
            }
        }
        &ws.acts[self.layers.len()][..n * self.outputs()]
    }

    /// Forward → loss and δ, the first phases of every mini-batch step: the forward pass over the
    /// first `n` rows of the workspace's input (training mode with `Some(rng)`), then the summed
    /// data loss Σᵢ ℓᵢ of the output against `targets` and δᴸ = ∂(Σᵢ ℓᵢ / denom)/∂z into the
    /// workspace, ready for [`Network::backward`]. The training loop, the data-parallel shards,
    /// the full-gradient norm, the learning-rate finder and gradcheck all go through here.
    pub fn forward_loss(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        targets: BatchTargets<'_, T>,
        objective: &Objective<'_>,
        rng: Option<&mut Rng>,
    ) -> BatchLoss {
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
    /// is the caller's to add ([`crate::loss::Penalty`]), once per gradient.
    pub fn loss_and_gradient(
        &self,
        ws: &mut Workspace<T>,
        n: usize,
        targets: BatchTargets<'_, T>,
        objective: &Objective<'_>,
        rng: Option<&mut Rng>,
        (grads, beta): (&mut [T], Beta),
    ) -> BatchLoss {
        let l = self.forward_loss(ws, n, targets, objective, rng);
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
            if let Layer::Dense(d) = self.layers[l] {
                let w = self.offsets[l]..self.offsets[l] + d.weight_len();
                let b = w.end..w.end + d.outputs;
                update(&mut self.params[w.clone()], &mut grads[w.clone()], w, true);
                update(&mut self.params[b.clone()], &mut grads[b.clone()], b, false);
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
        }
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

/// Preallocated buffers for forward and backward passes of up to `max_batch` rows: activations,
/// their gradients and dropout masks. Made once, reused by every step, so training allocates
/// nothing per step.
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
    /// Room for a dense layer's Zᵀ (see [`Dense::transposed_forward`]).
    scratch: Vec<T>,
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for `net` and batches of at most `max_batch` rows, single-threaded.
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
        let masks = net
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| match layer {
                Layer::Dropout(_) => vec![T::zero(); max_batch * widths[l]],
                _ => Vec::new(),
            })
            .collect();
        // A batch of any size up to `max_batch` may take the transposed route.
        let scratch = net
            .layers
            .iter()
            .filter_map(|l| match l {
                Layer::Dense(d) => Some(d.outputs * max_batch),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Workspace {
            max_batch,
            threads: Threads::ONE,
            acts,
            deltas,
            masks,
            scratch: vec![T::zero(); scratch],
        }
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

/// What [`Network::forward_loss`] measured on a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss {
    /// Σᵢ ℓᵢ (weighted), the data loss summed over the rows (no penalty, not divided).
    pub sum: f64,
    /// Rows classified correctly, for losses that classify.
    pub correct: Option<usize>,
}
