//! Gradient checking: backpropagation against central finite differences.
//!
//! For every parameter wⱼ, the numerical derivative of the objective
//! L(w) = (1/n) Σᵢ ℓ(f(xᵢ; w), yᵢ) + λ Σ w² is
//!
//! ```text
//! ∂L/∂wⱼ ≈ (L(w + h·eⱼ) − L(w − h·eⱼ)) / (2h)        (error O(h²))
//! ```
//!
//! and it is compared with the backpropagated gradient gⱼ by the relative error
//! |gⱼ − nⱼ| / max(|gⱼ|, |nⱼ|, 1e-4). The quotient's round-off is about ε·|L|/h ≈ 1e-11 in `f64`
//! with h = 1e-5, so for entries much smaller than 1e-4 (a dead ReLU unit's zero, say) a relative
//! error would only measure that round-off; the floor judges them by absolute error instead. A
//! correct backward pass gives relative errors around 1e-9 to 1e-7; a wrong one, errors near 1.
//!
//! ReLU and max pooling make L piecewise smooth: when a unit's input (or a pooling window's
//! winner) changes within ±h of w, the central difference averages two slopes and measures
//! neither, while backpropagation gives the slope at w. Such entries (the one-sided differences
//! disagree and the gradient matches one of them, see [`at_kink`]) are counted apart and left out
//! of the maxima, as PyTorch's gradcheck would fail on them too.
//!
//! Dropout draws the same mask for every evaluation (the generator is re-seeded each time), so
//! the check covers networks with dropout too.
//!
//! ```
//! use downhill_core::{Activation, Init, Network, Rng, gradcheck, loss::{BatchTargets, Loss}};
//! use rand::SeedableRng;
//! let mut rng = Rng::seed_from_u64(0);
//! let mut net = Network::<f64>::mlp(&[3, 4, 2], Activation::Tanh, 0.0, Init::GlorotUniform, &mut rng).unwrap();
//! let x = [0.5, -1.0, 2.0, 0.1, 0.2, -0.3];
//! let report = gradcheck::check(&mut net, &x, 2, BatchTargets::Classes(&[1, 0]), Loss::CrossEntropy, 0.0, 1e-5, 7).unwrap();
//! assert!(report.max_rel_error < 1e-6);
//! ```

use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::loss::{BatchTargets, Loss};
use crate::network::{MiniBatch, Network, Objective, ParamTensor, Workspace};
use crate::rng::Rng;
use crate::tensor::Beta;

/// Floor of the relative error's denominator.
pub const REL_FLOOR: f64 = 1e-4;

/// The check of one parameter tensor.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorCheck {
    /// PyTorch `state_dict` name, e.g. `"0.weight"`.
    pub name: String,
    pub shape: Vec<usize>,
    pub max_rel_error: f64,
    pub max_abs_error: f64,
    /// Index (within the tensor, row-major) of the worst entry.
    pub worst_index: usize,
    /// Entries left out of the maxima because their finite differences straddle a kink (see
    /// [`at_kink`]).
    pub kinks: usize,
}

/// The check of a whole network.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GradcheckReport {
    pub tensors: Vec<TensorCheck>,
    pub max_rel_error: f64,
    /// The value L(w) at which the gradient was checked.
    pub loss: f64,
    /// Entries left out of the maxima because a ReLU or max-pooling kink lies within h of them.
    pub kinks: usize,
}

/// Checks ∂L/∂w by backpropagation against central differences with step `h`, for the batch `x`
/// (`n × inputs`) with `targets`, the given loss and L2 penalty `l2`. `dropout_seed` fixes the
/// dropout masks. The network's parameters are unchanged afterwards.
#[allow(clippy::too_many_arguments)]
pub fn check(
    net: &mut Network<f64>,
    x: &[f64],
    n: usize,
    targets: BatchTargets<'_, f64>,
    loss: Loss,
    l2: f64,
    h: f64,
    dropout_seed: u64,
) -> Result<GradcheckReport> {
    check_with(
        net,
        (x, n, targets),
        (loss, l2, h, dropout_seed),
        &mut |_, _| {},
    )
}

/// [`check`], calling `progress(done, total)` after each of the `total` = 2·parameters loss
/// evaluations of the central differences (so that a caller can say how long it will take).
pub fn check_with(
    net: &mut Network<f64>,
    (x, n, targets): (&[f64], usize, BatchTargets<'_, f64>),
    (loss, l2, h, dropout_seed): (Loss, f64, f64, u64),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradcheckReport> {
    check_args(net, x, n, h)?;
    let mut ws = Workspace::new(net, n);
    let k = net.outputs();

    // Backpropagation.
    let mut grads = vec![0.0; net.param_count()];
    ws.input_mut(n).copy_from_slice(x);
    let objective = Objective {
        loss,
        class_weights: None,
        denom: n as f64,
    };
    let mut dropout = Rng::seed_from_u64(dropout_seed);
    let batch = MiniBatch {
        n,
        targets,
        objective,
        rng: Some(&mut dropout),
    };
    net.loss_and_gradient(&mut ws, batch, (grads.as_mut_slice(), Beta::Replace));
    let penalty = net.penalty(l2);
    penalty.add_gradient(net.params(), &mut grads);

    let objective = |net: &Network<f64>, ws: &mut Workspace<f64>| {
        ws.input_mut(n).copy_from_slice(x);
        let out = net.forward(ws, n, Some(&mut Rng::seed_from_u64(dropout_seed)));
        let data = loss.evaluate(out, n, k, targets, None) / n as f64;
        data + penalty.value(net.params())
    };
    let at = objective(net, &mut ws);
    let (total, mut done) = (2 * net.param_count(), 0);
    check_against(net, &grads, h, at, &mut |net| {
        done += 1;
        progress(done, total);
        objective(net, &mut ws)
    })
}

/// Compares `grads` (a backpropagated ∂L/∂w) with the central differences of `objective`
/// (whose value at the network's parameters is `at`), tensor by tensor.
pub fn check_against(
    net: &mut Network<f64>,
    grads: &[f64],
    h: f64,
    at: f64,
    objective: &mut dyn FnMut(&Network<f64>) -> f64,
) -> Result<GradcheckReport> {
    if grads.len() != net.param_count() {
        return Err(Error::shape("gradient", net.param_count(), grads.len()));
    }
    let tensors = net.tensors();
    let mut report = Vec::with_capacity(tensors.len());
    for t in &tensors {
        report.push(compare(net, t, grads, h, at, objective));
    }
    // A NaN error is the largest (f64::max would skip it and report a pass).
    let max_rel_error = report.iter().map(|t| t.max_rel_error).fold(0.0f64, |a, e| {
        if e.is_nan() || a.is_nan() {
            f64::NAN
        } else {
            a.max(e)
        }
    });
    let kinks = report.iter().map(|t| t.kinks).sum();
    Ok(GradcheckReport {
        tensors: report,
        max_rel_error,
        loss: at,
        kinks,
    })
}

/// Whether a parameter's finite differences straddle a kink of L (a ReLU unit or a max-pooling
/// window changing its mind between w − h and w + h), where the central difference measures
/// neither side's slope: the one-sided differences `fwd` = (L(w+h) − L(w))/h and
/// `bwd` = (L(w) − L(w−h))/h disagree (on a smooth L they differ by about h·|L″|, and the
/// backpropagated `g` sits halfway between them, as the central difference does), and `g`
/// matches one of them: the slope on the side where L is smooth. A wrong gradient matches
/// neither side and is still reported.
pub fn at_kink(g: f64, fwd: f64, bwd: f64) -> bool {
    let gap = (fwd - bwd).abs();
    let scale = g.abs().max(fwd.abs()).max(bwd.abs()).max(REL_FLOOR);
    gap > 1e-5 * scale && (g - fwd).abs().min((g - bwd).abs()) < 0.05 * gap
}

/// The most multiply-adds a random check of a dense `--hidden` network may take: 10¹⁸, over
/// eleven days even at 10¹² a second, far beyond a CPU core's f64 pace.
const MAX_CHECK_WORK: f64 = 1e18;

/// Refuses a `--hidden` network whose check cannot finish, before anything is allocated: its
/// 2·P loss evaluations each take at least P·batch multiply-adds (a network of 10⁸ hidden
/// units spent its time building the network, silently, before the first evaluation).
fn check_work(spec: &RandomCheck) -> Result<()> {
    if spec.layers.is_some() || spec.net.is_some() || spec.image.is_some() {
        return Ok(());
    }
    let mut widths = vec![spec.inputs as f64];
    widths.extend(spec.hidden.iter().map(|&h| h as f64));
    widths.push(spec.outputs as f64);
    let params: f64 = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    let work = 2.0 * params * params * spec.batch as f64;
    if work > MAX_CHECK_WORK {
        let hidden: Vec<String> = spec.hidden.iter().map(usize::to_string).collect();
        return Err(Error::setting(
            "hidden",
            hidden.join(","),
            format!(
                "a check of this network's {} parameters takes {} loss evaluations (two per \
                 parameter) of at least {} multiply-adds each on --batch {}, {} in all: more \
                 than {:e}, which would run for weeks; check a smaller network",
                crate::error::short(params),
                crate::error::short(2.0 * params),
                crate::error::short(params * spec.batch as f64),
                spec.batch,
                crate::error::short(work),
                MAX_CHECK_WORK
            ),
        ));
    }
    Ok(())
}

/// The input has `n` rows of the network's width, and the step `h` is a number > 0.
fn check_args(net: &Network<f64>, x: &[f64], n: usize, h: f64) -> Result<()> {
    if x.len() != n * net.inputs() {
        return Err(Error::shape(
            "gradcheck input",
            format!("{n} × {} values", net.inputs()),
            x.len(),
        ));
    }
    if !(h > 0.0 && h.is_finite()) {
        return Err(Error::setting(
            "h",
            h,
            "the finite-difference step must be > 0",
        ));
    }
    net.check_train_batch(n)
}

/// The objective at parameter `p` moved by ±h, (L(w + h·eₚ), L(w − h·eₚ)), the parameter
/// restored after: the two evaluations of the central difference
/// ∂L/∂wₚ ≈ (L(w + h·eₚ) − L(w − h·eₚ)) / 2h.
pub fn plus_minus(
    net: &mut Network<f64>,
    p: usize,
    h: f64,
    objective: &mut dyn FnMut(&Network<f64>) -> f64,
) -> (f64, f64) {
    let w = net.params()[p];
    net.params_mut()[p] = w + h;
    let hi = objective(net);
    net.params_mut()[p] = w - h;
    let lo = objective(net);
    net.params_mut()[p] = w;
    (hi, lo)
}

/// Tensor `t`'s backpropagated gradient (in `grads`) against the central differences
/// (L(w + h) − L(w − h)) / 2h of `objective`, one parameter at a time (restored after); entries
/// at a kink ([`at_kink`]) are counted apart.
fn compare(
    net: &mut Network<f64>,
    t: &ParamTensor,
    grads: &[f64],
    h: f64,
    at: f64,
    objective: &mut dyn FnMut(&Network<f64>) -> f64,
) -> TensorCheck {
    let (mut max_rel, mut max_abs, mut worst, mut kinks) = (0.0f64, 0.0f64, 0, 0);
    for (j, p) in t.range.clone().enumerate() {
        let (hi, lo) = plus_minus(net, p, h, objective);
        let numeric = (hi - lo) / (2.0 * h);
        let abs = (grads[p] - numeric).abs();
        let rel = abs / grads[p].abs().max(numeric.abs()).max(REL_FLOOR);
        if rel > 1e-6 && at_kink(grads[p], (hi - at) / h, (at - lo) / h) {
            kinks += 1;
            continue;
        }
        // A NaN (a gradient or a loss that is not a number) is the worst error, never skipped.
        if (rel > max_rel || rel.is_nan()) && !max_rel.is_nan() {
            (max_rel, worst) = (rel, j);
        }
        max_abs = if abs.is_nan() { abs } else { max_abs.max(abs) };
    }
    TensorCheck {
        name: t.name.clone(),
        shape: t.shape.clone(),
        max_rel_error: max_rel,
        max_abs_error: max_abs,
        worst_index: worst,
        kinks,
    }
}

/// The network and batch of a random gradient check (what `downhill gradcheck` builds).
#[derive(Clone, Debug)]
pub struct RandomCheck {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub outputs: usize,
    pub activation: crate::Activation,
    pub dropout: f64,
    pub init: crate::Init,
    pub loss: Loss,
    pub l2: f64,
    pub batch: usize,
    pub seed: u64,
    /// A network spec (`--layers`, see [`crate::netspec`]) or preset (`--net`) instead of
    /// `hidden`: its input is `image` if given (then `inputs` must be its size), else `inputs`
    /// features.
    pub layers: Option<String>,
    pub net: Option<String>,
    pub image: Option<String>,
}

/// Builds a random f64 network and batch (inputs uniform in [−2, 2], random targets of the
/// loss's kind, non-zero biases) and runs [`check`] with h = 1e-5.
pub fn random(spec: &RandomCheck) -> Result<GradcheckReport> {
    random_with(spec, &mut |_, _| {})
}

/// [`random`], with the progress of [`check_with`].
pub fn random_with(
    spec: &RandomCheck,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<GradcheckReport> {
    use rand::Rng as _;
    // The same ranges as training's: a NaN penalty made every error NaN, which compared as 0.
    if !(spec.l2.is_finite() && spec.l2 >= 0.0) {
        return Err(Error::setting("l2", spec.l2, "must be a finite number ≥ 0"));
    }
    if !(0.0..1.0).contains(&spec.dropout) {
        return Err(Error::setting("dropout", spec.dropout, "must be in [0, 1)"));
    }
    if spec.outputs == 1 && spec.loss == crate::Loss::CrossEntropy {
        return Err(Error::setting(
            "outputs",
            1,
            "cross-entropy over one output is 0 whatever the weights (softmax of one value is \
             1), so there is no gradient to check; use --outputs 2 or more, or --loss bce or mse",
        ));
    }
    if spec.batch == 0 || spec.outputs == 0 {
        return Err(Error::setting(
            "batch/outputs",
            0,
            "the random check needs at least one example and one output",
        ));
    }
    let widths = spec
        .hidden
        .iter()
        .try_fold(spec.inputs as u128 + spec.outputs as u128, |a, &h| {
            a.checked_add(h as u128)
        });
    crate::memory::check(
        format!("a gradient check on a batch of {}", spec.batch),
        widths
            .and_then(|w| w.checked_mul(spec.batch as u128))
            .and_then(|v| v.checked_mul(3 * 8)),
    )?;
    check_work(spec)?;
    let mut rng = Rng::seed_from_u64(spec.seed);
    let mut net = match crate::netspec::from_settings(
        spec.layers.as_deref(),
        spec.net.as_deref(),
        spec.image.as_deref(),
        spec.inputs,
        spec.outputs,
        None,
    )? {
        Some((input, layers)) => {
            let net = Network::<f64>::with_zero_params_shaped(input, layers.clone())?;
            crate::memory::check(
                format!("a gradient check on a batch of {}", spec.batch),
                net.workspace_len(spec.batch)
                    .and_then(|v| v.checked_mul(8 * 2)),
            )?;
            Network::<f64>::with_input(input, layers, spec.init, &mut rng)?
        }
        None => {
            let mut sizes = vec![spec.inputs];
            sizes.extend(&spec.hidden);
            sizes.push(spec.outputs);
            Network::<f64>::mlp(&sizes, spec.activation, spec.dropout, spec.init, &mut rng)?
        }
    };
    for t in net.tensors().into_iter().filter(|t| !t.is_weight) {
        for p in t.range {
            net.params_mut()[p] = rng.random_range(-0.5..0.5);
        }
    }
    let x: Vec<f64> = (0..spec.batch * spec.inputs)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    let classes: Vec<u32> = (0..spec.batch)
        .map(|_| rng.random_range(0..spec.outputs as u32))
        .collect();
    let values: Vec<f64> = (0..spec.batch * spec.outputs)
        .map(|_| {
            if spec.loss == Loss::Bce {
                f64::from(rng.random_range(0..2u8))
            } else {
                rng.random_range(-1.0..1.0)
            }
        })
        .collect();
    let targets = if spec.loss.takes_classes() {
        BatchTargets::Classes(&classes)
    } else {
        BatchTargets::Values(&values)
    };
    check_with(
        &mut net,
        (&x, spec.batch, targets),
        (spec.loss, spec.l2, 1e-5, spec.seed),
        progress,
    )
}
