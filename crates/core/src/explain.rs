//! Backpropagation, visible: one mini-batch through a small dense network, every number the
//! engine computes on the way from the input to the update — read from the engine's own
//! buffers ([`Workspace::activation`], [`Workspace::delta`]), not recomputed.
//!
//! The notation is the notes'. Layers are numbered l = 1 … L (the dense layers; an activation
//! belongs to the dense layer before it), a⁰ = x is the input, and for one example
//!
//! ```text
//! (F1) zˡ = Wˡ·aˡ⁻¹ + bˡ                      forward: the dense layer
//! (F2) aˡ = σ(zˡ)                             forward: the activation (aᴸ = zᴸ without one)
//! (L)  ℓ = ℓ(aᴸ, y)                           the loss of the example (see `loss`)
//! (B1) δᴸ = ∂ℓ/∂zᴸ = ∂ℓ/∂aᴸ ⊙ σ′(zᴸ)           the output's δ (softmax − onehot for cross-entropy)
//! (B2) δˡ = (Wˡ⁺¹)ᵀ δˡ⁺¹ ⊙ σ′(zˡ)              δ going back, layer by layer
//! (B3) ∂ℓ/∂Wˡ = δˡ·(aˡ⁻¹)ᵀ,  ∂ℓ/∂bˡ = δˡ        each layer's gradient
//! (M)  L = (1/n) Σᵢ ℓᵢ,  ∇L = (1/n) Σᵢ ∇ℓᵢ      the mini-batch: one loss, one gradient
//! (FD) ∂L/∂wⱼ ≈ (L(w + h·eⱼ) − L(w − h·eⱼ)) / 2h  the check, every entry (see `gradcheck`)
//! (U)  w ← w − η∇L                            the step (or the optimiser's rule, see `optim`)
//! ```
//!
//! Each example's values (F1)–(B3) come from a pass of the engine over that example alone (a
//! batch of one, its loss not divided), the mini-batch's L and ∇L (M) from one pass over the
//! whole batch — the pass the training loop makes — and the update (U) from the optimiser's own
//! `step`. The test `tests/suite/cli/explain.rs` holds every number against central differences and
//! against PyTorch's autograd.
//!
//! ```
//! use downhill_core::{Activation, Init, Network, Rng, explain, loss::{BatchTargets, Loss}};
//! use downhill_core::optim::{OptimizerConfig, SgdConfig};
//! use rand::SeedableRng;
//! let net = Network::<f64>::mlp(&[2, 3, 2], Activation::Sigmoid, 0.0, Init::GlorotUniform,
//!     &mut Rng::seed_from_u64(1)).unwrap();
//! let opt = OptimizerConfig::Sgd(SgdConfig { lr: 0.5, ..Default::default() });
//! let t = explain::trace(&net, &[0.5, -1.0], 1, BatchTargets::Classes(&[1]), Loss::CrossEntropy,
//!     &opt, 1e-5).unwrap();
//! assert!(t.batch.max_abs_error < 1e-8);
//! assert!(t.step.loss < t.batch.loss); // a small step downhill
//! ```

use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::layers::{Activation, Layer};
use crate::loss::{BatchTargets, Loss};
use crate::network::{MiniBatch, Network, Objective, Workspace};
use crate::optim::OptimizerConfig;
use crate::rng::Rng;
use crate::tensor::Beta;

/// The widest layer (inputs included) whose numbers are still worth reading.
pub const MAX_WIDTH: usize = 16;
/// The most parameters a trace prints (the playground's 7-8-8-2 has 154).
pub const MAX_PARAMS: usize = 600;
/// The largest mini-batch a trace shows example by example.
pub const MAX_BATCH: usize = 32;

/// One dense layer's weight `[out][in]` and bias `[out]` (or their gradients, or an optimiser's
/// buffers for them), rows as the notes write W.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenseTensors {
    pub weight: Vec<Vec<f64>>,
    pub bias: Vec<f64>,
}

/// An example's target: a class index (cross-entropy) or values (MSE, BCE).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Target {
    Class(u32),
    Values(Vec<f64>),
}

/// One layer l of one example: forward (F1), (F2) and backward (B1)/(B2).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerTrace {
    /// zˡ = Wˡ·aˡ⁻¹ + bˡ.
    pub z: Vec<f64>,
    /// aˡ = σ(zˡ) (= zˡ for a layer without activation).
    pub a: Vec<f64>,
    /// ∂ℓ/∂aˡ: (Wˡ⁺¹)ᵀ δˡ⁺¹ below the output, the loss's derivative at the output.
    pub delta_a: Vec<f64>,
    /// δˡ = ∂ℓ/∂zˡ = ∂ℓ/∂aˡ ⊙ σ′(zˡ).
    pub delta: Vec<f64>,
}

/// One example of the mini-batch, alone through the engine.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExampleTrace {
    /// a⁰ = x.
    pub x: Vec<f64>,
    pub target: Target,
    /// Layers 1 … L.
    pub layers: Vec<LayerTrace>,
    /// What the loss reads from aᴸ: softmax(aᴸ) for cross-entropy, σ(aᴸ) for BCE, aᴸ for MSE.
    pub prediction: Vec<f64>,
    /// ℓ(aᴸ, y).
    pub loss: f64,
    /// ∂ℓ/∂Wˡ = δˡ·(aˡ⁻¹)ᵀ and ∂ℓ/∂bˡ = δˡ, layers 1 … L.
    pub grads: Vec<DenseTensors>,
}

/// The mini-batch: its loss, its gradient and the gradient's check (M), (FD).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BatchTrace {
    pub n: usize,
    /// L = (1/n) Σᵢ ℓᵢ.
    pub loss: f64,
    /// ∇L by backpropagation over the whole batch, layers 1 … L.
    pub grads: Vec<DenseTensors>,
    /// The central difference of every entry of ∇L, through the engine's forward pass and loss.
    pub numeric: Vec<DenseTensors>,
    /// maxⱼ |gⱼ − nⱼ| over every entry.
    pub max_abs_error: f64,
    /// maxⱼ |gⱼ − nⱼ| / max(|gⱼ|, |nⱼ|, 1e-4), as `gradcheck` measures it.
    pub max_rel_error: f64,
    /// Entries whose finite differences straddle a ReLU kink (left out of the maxima).
    pub kinks: usize,
}

/// An optimiser buffer after the step (PyTorch's name, e.g. `momentum_buffer`, `exp_avg`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StateTrace {
    pub name: String,
    pub layers: Vec<DenseTensors>,
}

/// The update (U) and what it did to the loss.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepTrace {
    /// η.
    pub lr: f64,
    /// The optimiser's buffers after the step (none for plain SGD).
    pub state: Vec<StateTrace>,
    /// w after the step, layers 1 … L.
    pub params: Vec<DenseTensors>,
    /// L on the same mini-batch after the step.
    pub loss: f64,
}

/// Everything one step does, in the order the notes derive it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trace {
    /// Widths [inputs, layer 1, …, layer L].
    pub sizes: Vec<usize>,
    /// Each layer's activation σ (`None`: none, aˡ = zˡ).
    pub activations: Vec<Option<Activation>>,
    pub loss: Loss,
    pub optimizer: OptimizerConfig,
    /// The finite-difference step.
    pub h: f64,
    /// w before the step, layers 1 … L.
    pub params: Vec<DenseTensors>,
    pub examples: Vec<ExampleTrace>,
    pub batch: BatchTrace,
    pub step: StepTrace,
}

/// A dense layer of the network and the activation right after it, if any: (layer index,
/// activation layer index and function).
type Stage = (usize, Option<(usize, Activation)>);

/// The network as the notes' layers: dense layers, each followed by at most one activation.
/// Anything else (convolution, pooling, BatchNorm, dropout, two activations in a row) is
/// refused, naming the layer.
fn stages(net: &Network<f64>) -> Result<Vec<Stage>> {
    let mut out: Vec<Stage> = Vec::new();
    for (l, layer) in net.layers().iter().enumerate() {
        match layer {
            Layer::Dense(_) => out.push((l, None)),
            Layer::Activation(a) => match out.last_mut() {
                Some(last) if last.1.is_none() => last.1 = Some((l, *a)),
                _ => {
                    return Err(Error::setting(
                        "layers",
                        layer.spec(),
                        format!(
                            "explain shows dense layers each followed by at most one activation; \
                             layer {l} is an activation {}",
                            if out.is_empty() {
                                "before any dense layer"
                            } else {
                                "right after another"
                            }
                        ),
                    ));
                }
            },
            _ => {
                return Err(Error::setting(
                    "layers",
                    layer.spec(),
                    format!(
                        "explain shows dense layers and activations only (layer {l} is not \
                         one); use `downhill gradcheck` to check other layers"
                    ),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::setting(
            "layers",
            "",
            "the network has no dense layer",
        ));
    }
    Ok(out)
}

/// Refuses a network or batch too big to read, naming what to change.
fn check_size(net: &Network<f64>, n: usize) -> Result<()> {
    if net.inputs() > MAX_WIDTH {
        return Err(Error::setting(
            "inputs",
            net.inputs(),
            format!(
                "explain prints every number, so at most {MAX_WIDTH} input features per example"
            ),
        ));
    }
    let widest = (0..=net.layers().len())
        .map(|i| net.width(i))
        .max()
        .unwrap_or(0);
    if widest > MAX_WIDTH {
        return Err(Error::setting(
            "hidden",
            widest,
            format!(
                "explain prints every number, so layers (inputs included) are at most \
                 {MAX_WIDTH} wide; try --hidden 3 or --hidden 4,3 (use `downhill gradcheck` \
                 for big networks)"
            ),
        ));
    }
    if net.param_count() > MAX_PARAMS {
        return Err(Error::setting(
            "hidden",
            net.param_count(),
            format!(
                "explain prints every parameter, at most {MAX_PARAMS}; use fewer or narrower \
                 hidden layers"
            ),
        ));
    }
    if n == 0 || n > MAX_BATCH {
        return Err(Error::setting(
            "batch",
            n,
            format!("explain shows 1 to {MAX_BATCH} examples, one by one"),
        ));
    }
    Ok(())
}

/// Refuses inputs and targets the loss cannot read.
fn check_data(
    net: &Network<f64>,
    x: &[f64],
    n: usize,
    targets: BatchTargets<'_, f64>,
    loss: Loss,
) -> Result<()> {
    if x.len() != n * net.inputs() {
        return Err(Error::shape(
            "explain input",
            format!("{n} × {} values", net.inputs()),
            x.len(),
        ));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::setting(
            "input",
            x[i],
            format!(
                "example {}, feature {}: inputs must be finite numbers",
                i / net.inputs() + 1,
                i % net.inputs() + 1
            ),
        ));
    }
    let k = net.outputs();
    match (loss, targets) {
        (Loss::CrossEntropy, BatchTargets::Classes(y)) => {
            if y.len() != n {
                return Err(Error::shape("explain targets", n, y.len()));
            }
            if let Some(&c) = y.iter().find(|&&c| c as usize >= k) {
                return Err(Error::setting(
                    "target",
                    c,
                    format!(
                        "a class index must be below the {k} outputs (0 … {})",
                        k - 1
                    ),
                ));
            }
        }
        (Loss::Mse | Loss::Bce, BatchTargets::Values(y)) => {
            if y.len() != n * k {
                return Err(Error::shape(
                    "explain targets",
                    format!("{n} × {k} values"),
                    y.len(),
                ));
            }
            if let Some(&v) = y.iter().find(|v| !v.is_finite()) {
                return Err(Error::setting(
                    "target",
                    v,
                    "targets must be finite numbers",
                ));
            }
            if loss == Loss::Bce
                && let Some(&v) = y.iter().find(|v| !(0.0..=1.0).contains(*v))
            {
                return Err(Error::setting("target", v, "bce targets must be in [0, 1]"));
            }
        }
        (loss, _) => {
            return Err(Error::setting(
                "loss",
                loss.name(),
                if loss.takes_classes() {
                    "cross-entropy takes class indices as targets"
                } else {
                    "mse and bce take values as targets, one per output"
                },
            ));
        }
    }
    Ok(())
}

/// Each layer's weight and bias out of the flat vector `v` (parameters, gradients or an
/// optimiser buffer laid out as the parameters).
fn per_layer(net: &Network<f64>, stages: &[Stage], v: &[f64]) -> Vec<DenseTensors> {
    let tensors = net.tensors();
    stages
        .iter()
        .map(|&(l, _)| {
            let w = tensors
                .iter()
                .find(|t| t.name == format!("{l}.weight"))
                .expect("dense weight");
            let b = tensors
                .iter()
                .find(|t| t.name == format!("{l}.bias"))
                .expect("dense bias");
            let cols = w.shape[1];
            DenseTensors {
                weight: v[w.range.clone()]
                    .chunks(cols)
                    .map(<[f64]>::to_vec)
                    .collect(),
                bias: v[b.range.clone()].to_vec(),
            }
        })
        .collect()
}

/// One step on the mini-batch `x` (`n × inputs`) with `targets`, shown whole: every example's
/// forward pass and δ at every layer (a pass of the engine over that example alone), the batch's
/// loss and gradient (one pass over the batch, as training makes it), the central difference of
/// every gradient entry with step `h`, the optimiser's step (its own `step`, from a fresh
/// state) and the loss after it. `net` is not changed.
///
/// Refuses networks other than dense layers with activations, ones wider than [`MAX_WIDTH`] or
/// with more than [`MAX_PARAMS`] parameters, batches of 0 or more than [`MAX_BATCH`], inputs
/// or targets that are not finite numbers or do not fit the loss, bad optimiser settings and a
/// step `h` that is not > 0.
pub fn trace(
    net: &Network<f64>,
    x: &[f64],
    n: usize,
    targets: BatchTargets<'_, f64>,
    loss: Loss,
    optimizer: &OptimizerConfig,
    h: f64,
) -> Result<Trace> {
    let stages = stages(net)?;
    check_size(net, n)?;
    check_data(net, x, n, targets, loss)?;
    optimizer.validate()?;
    // Below 1e-10 round-off (ε·|L|/h) swamps the difference, above 0.1 the O(h²) error does.
    if !(1e-10..=0.1).contains(&h) {
        return Err(Error::setting(
            "h",
            h,
            "the finite-difference step must be in [1e-10, 0.1] (1e-5 is about best in f64)",
        ));
    }
    if let Some(i) = net.params().iter().position(|v| !v.is_finite()) {
        return Err(Error::setting(
            "weights",
            net.params()[i],
            format!("parameter {i} is not a finite number"),
        ));
    }
    let ins = net.inputs();
    let k = net.outputs();
    let mut ws = Workspace::new(net, n);
    let mut grads = vec![0.0; net.param_count()];
    // Training mode, as a step is taken (no layer here draws from the generator).
    let mut rng = Rng::seed_from_u64(0);

    // Each example alone: (F1)–(B3), ℓᵢ not divided (denom 1).
    let mut examples = Vec::with_capacity(n);
    for i in 0..n {
        ws.input_mut(1).copy_from_slice(&x[i * ins..(i + 1) * ins]);
        let (cls, vals);
        let t = match targets {
            BatchTargets::Classes(y) => {
                cls = [y[i]];
                BatchTargets::Classes(&cls[..])
            }
            BatchTargets::Values(y) => {
                vals = y[i * k..(i + 1) * k].to_vec();
                BatchTargets::Values(&vals[..])
            }
        };
        let batch = MiniBatch {
            n: 1,
            targets: t,
            objective: Objective {
                loss,
                class_weights: None,
                denom: 1.0,
            },
            rng: Some(&mut rng),
        };
        let l = net.loss_and_gradient(&mut ws, batch, (grads.as_mut_slice(), Beta::Replace));
        let layers = stages
            .iter()
            .map(|&(d, act)| {
                let z = ws.activation(d + 1, 1).to_vec();
                let delta = ws.delta(d + 1, 1).to_vec();
                let (a, delta_a) = match act {
                    Some((j, _)) => (
                        ws.activation(j + 1, 1).to_vec(),
                        ws.delta(j + 1, 1).to_vec(),
                    ),
                    None => (z.clone(), delta.clone()),
                };
                LayerTrace {
                    z,
                    a,
                    delta_a,
                    delta,
                }
            })
            .collect();
        let out = ws.activation(net.layers().len(), 1);
        let mut prediction = vec![0.0; k];
        match loss {
            Loss::CrossEntropy => crate::loss::softmax_into(out, &mut prediction),
            Loss::Bce => prediction
                .iter_mut()
                .zip(out)
                .for_each(|(p, &z)| *p = crate::loss::sigmoid(z)),
            Loss::Mse => prediction.copy_from_slice(out),
        }
        examples.push(ExampleTrace {
            x: x[i * ins..(i + 1) * ins].to_vec(),
            target: match targets {
                BatchTargets::Classes(y) => Target::Class(y[i]),
                BatchTargets::Values(y) => Target::Values(y[i * k..(i + 1) * k].to_vec()),
            },
            layers,
            prediction,
            loss: l.sum,
            grads: per_layer(net, &stages, &grads),
        });
    }

    // The mini-batch (M): one pass over all n rows, L = Σℓᵢ / n, as the training loop does.
    ws.input_mut(n).copy_from_slice(x);
    let objective = Objective {
        loss,
        class_weights: None,
        denom: n as f64,
    };
    let batch = MiniBatch {
        n,
        targets,
        objective,
        rng: Some(&mut rng),
    };
    let l = net.loss_and_gradient(&mut ws, batch, (grads.as_mut_slice(), Beta::Replace));
    let batch_loss = l.sum / n as f64;

    // (FD) every entry, through the engine's forward pass and loss.
    let mut probe = net.clone();
    let mut value = |net: &Network<f64>| {
        ws.input_mut(n).copy_from_slice(x);
        let out = net.forward(&mut ws, n, Some(&mut Rng::seed_from_u64(0)));
        loss.evaluate(out, n, k, targets, None) / n as f64
    };
    let mut numeric = vec![0.0; grads.len()];
    let (mut max_abs, mut max_rel, mut kinks) = (0.0f64, 0.0f64, 0);
    for p in 0..grads.len() {
        let (hi, lo) = crate::gradcheck::plus_minus(&mut probe, p, h, &mut value);
        numeric[p] = (hi - lo) / (2.0 * h);
        let abs = (grads[p] - numeric[p]).abs();
        let rel = abs
            / grads[p]
                .abs()
                .max(numeric[p].abs())
                .max(crate::gradcheck::REL_FLOOR);
        if rel > 1e-6
            && crate::gradcheck::at_kink(grads[p], (hi - batch_loss) / h, (batch_loss - lo) / h)
        {
            kinks += 1;
            continue;
        }
        max_abs = if abs.is_nan() { abs } else { max_abs.max(abs) };
        max_rel = if rel.is_nan() { rel } else { max_rel.max(rel) };
    }

    // (U) the optimiser's own step from a fresh state, then L again on the same batch.
    let mut after = net.clone();
    let mut opt = optimizer.build::<f64>(after.param_count());
    opt.step(after.params_mut(), &grads, optimizer.lr());
    let state = opt
        .state()
        .into_iter()
        .map(|(name, buf)| StateTrace {
            name: name.to_string(),
            layers: per_layer(net, &stages, buf),
        })
        .collect();
    ws.input_mut(n).copy_from_slice(x);
    let out = after.forward(&mut ws, n, Some(&mut rng));
    let loss_after = loss.evaluate(out, n, k, targets, None) / n as f64;

    let mut sizes = vec![ins];
    sizes.extend(stages.iter().map(|&(d, _)| net.width(d + 1)));
    Ok(Trace {
        sizes,
        activations: stages.iter().map(|&(_, a)| a.map(|(_, a)| a)).collect(),
        loss,
        optimizer: *optimizer,
        h,
        params: per_layer(net, &stages, net.params()),
        examples,
        batch: BatchTrace {
            n,
            loss: batch_loss,
            grads: per_layer(net, &stages, &grads),
            numeric: per_layer(net, &stages, &numeric),
            max_abs_error: max_abs,
            max_rel_error: max_rel,
            kinks,
        },
        step: StepTrace {
            lr: optimizer.lr(),
            state,
            params: per_layer(net, &stages, after.params()),
            loss: loss_after,
        },
    })
}

/// Sets the dense layers' weights and biases of `net` (built with the same sizes) from `params`
/// as a [`Trace`] lists them (layers 1 … L, W as rows), e.g. to rerun a trace on the weights
/// another program saved. Fails, naming the layer, on a shape that does not fit or a value that
/// is not a finite number.
pub fn set_params(net: &mut Network<f64>, params: &[DenseTensors]) -> Result<()> {
    let stages = stages(net)?;
    if params.len() != stages.len() {
        return Err(Error::shape(
            "weights: dense layers",
            stages.len(),
            params.len(),
        ));
    }
    let tensors = net.tensors();
    for (s, (&(l, _), p)) in stages.iter().zip(params).enumerate() {
        let w = tensors
            .iter()
            .find(|t| t.name == format!("{l}.weight"))
            .expect("dense weight");
        let b = tensors
            .iter()
            .find(|t| t.name == format!("{l}.bias"))
            .expect("dense bias");
        let (rows, cols) = (w.shape[0], w.shape[1]);
        let fits = p.weight.len() == rows
            && p.weight.iter().all(|r| r.len() == cols)
            && p.bias.len() == rows;
        if !fits {
            return Err(Error::shape(
                format!("weights: layer {} (W {rows}×{cols}, b {rows})", s + 1),
                format!("{rows} rows of {cols} and {rows} biases"),
                format!(
                    "{} rows of {:?} and {} biases",
                    p.weight.len(),
                    p.weight.iter().map(Vec::len).collect::<Vec<_>>(),
                    p.bias.len()
                ),
            ));
        }
        let values = p.weight.iter().flatten().chain(&p.bias);
        if let Some(v) = values.clone().find(|v| !v.is_finite()) {
            return Err(Error::setting(
                "weights",
                v,
                format!("layer {}: weights must be finite numbers", s + 1),
            ));
        }
        let flat: Vec<f64> = p.weight.iter().flatten().copied().collect();
        net.params_mut()[w.range.clone()].copy_from_slice(&flat);
        net.params_mut()[b.range.clone()].copy_from_slice(&p.bias);
    }
    Ok(())
}
