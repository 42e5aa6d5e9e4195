//! `downhill explain`: one step of backpropagation and descent, every number printed in the
//! notes' order and notation (the formulas (F1)…(U) are those of [`downhill::explain`]).

use std::fmt::Write as _;
use std::process::ExitCode;

use downhill::explain::{DenseTensors, Trace};
use downhill::loss::BatchTargets;
use downhill::netspec::Description;
use downhill::optim::{AdagradConfig, AdamConfig, OptimizerConfig, RmsPropConfig, SgdConfig};
use downhill::{Activation, Error, Loss, Rng};
use rand::SeedableRng;

use crate::cli::args::ExplainArgs;

/// The built-in examples: two inputs, two classes (the first is the default mini-batch of one).
pub const EXAMPLES: [([f64; 2], u32); 8] = [
    ([0.5, -1.0], 1),
    ([-0.8, 0.3], 0),
    ([1.2, 0.7], 1),
    ([-0.4, -0.9], 0),
    ([0.9, -0.2], 1),
    ([-1.1, 1.0], 0),
    ([0.2, 0.8], 0),
    ([-0.3, -0.5], 1),
];

/// Parses a comma-separated list of numbers given to `flag`.
fn numbers(flag: &'static str, s: &str) -> Result<Vec<f64>, Error> {
    s.split(',')
        .map(|v| {
            let v = v.trim();
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    Error::setting(
                        flag,
                        s,
                        format!("`{v}` is not a finite number (give numbers separated by commas)"),
                    )
                })
        })
        .collect()
}

/// The optimiser the flags ask for.
fn optimizer(a: &ExplainArgs) -> Result<OptimizerConfig, Error> {
    let mut c = OptimizerConfig::default_for(&a.optimizer).expect("clap checked the name");
    let lr =
        a.lr.unwrap_or(if a.optimizer == "sgd" { 0.5 } else { c.lr() });
    c = c.with_lr(lr);
    let wd = a.weight_decay;
    match &mut c {
        OptimizerConfig::Sgd(SgdConfig {
            momentum,
            nesterov,
            weight_decay,
            ..
        }) => {
            *momentum = a.momentum.unwrap_or(0.0);
            *nesterov = a.nesterov;
            *weight_decay = wd.unwrap_or(0.0);
        }
        OptimizerConfig::RmsProp(RmsPropConfig {
            momentum,
            weight_decay,
            ..
        }) => {
            *momentum = a.momentum.unwrap_or(0.0);
            *weight_decay = wd.unwrap_or(0.0);
        }
        OptimizerConfig::Adam(AdamConfig { weight_decay, .. })
        | OptimizerConfig::AdamW(AdamConfig { weight_decay, .. })
        | OptimizerConfig::Adagrad(AdagradConfig { weight_decay, .. }) => {
            if let Some(w) = wd {
                *weight_decay = w;
            }
        }
    }
    if a.optimizer != "sgd" && a.optimizer != "rmsprop" && a.momentum.is_some() {
        return Err(Error::setting(
            "--momentum",
            a.momentum.unwrap_or(0.0),
            format!("{} has no momentum flag (sgd and rmsprop do)", a.optimizer),
        ));
    }
    if a.nesterov && a.optimizer != "sgd" {
        return Err(Error::setting(
            "--nesterov",
            true,
            "Nesterov momentum is sgd's (with --momentum)",
        ));
    }
    c.validate().map_err(|e| match e {
        Error::Setting {
            name: "lr",
            value,
            reason,
        } => Error::setting("--lr", value, reason),
        other => other,
    })?;
    Ok(c)
}

/// The mini-batch: the --input rows with their --target, or the first --batch built-in examples.
/// Returns (x, n, inputs, classes, values, outputs).
#[allow(clippy::type_complexity)]
/// `outputs` is the network's output count when known: `--outputs`, or the last width of
/// `--layers` (`from` names which).
fn batch(
    a: &ExplainArgs,
    loss: Loss,
    (outputs, from): (Option<usize>, &'static str),
) -> Result<(Vec<f64>, usize, usize, Vec<u32>, Vec<f64>, usize), Error> {
    if a.input.is_empty() {
        if !a.target.is_empty() {
            return Err(Error::setting(
                "--target",
                a.target.join(" "),
                "give one --input per --target (without --input the built-in examples carry their own targets)",
            ));
        }
        let n = a.batch.unwrap_or(1);
        if n == 0 || n > EXAMPLES.len() {
            return Err(Error::setting(
                "--batch",
                n,
                format!(
                    "the built-in examples are {}; ask for 1 to {} of them, or give your own with --input",
                    EXAMPLES.len(),
                    EXAMPLES.len()
                ),
            ));
        }
        let k = outputs.unwrap_or(2);
        if k < 2 {
            return Err(Error::setting(
                from,
                if from == "--layers" {
                    a.layers.clone().unwrap_or_default()
                } else {
                    k.to_string()
                },
                format!("the built-in examples have two classes: at least 2 outputs, not {k}"),
            ));
        }
        let x = EXAMPLES[..n].iter().flat_map(|(x, _)| *x).collect();
        let classes: Vec<u32> = EXAMPLES[..n].iter().map(|e| e.1).collect();
        let values = classes
            .iter()
            .flat_map(|&c| (0..k).map(move |j| f64::from(u8::from(j == c as usize))))
            .collect();
        return Ok((x, n, 2, classes, values, k));
    }
    if let Some(b) = a.batch.filter(|&b| b != a.input.len()) {
        return Err(Error::setting(
            "--batch",
            b,
            format!(
                "{} --input rows given: the mini-batch is those",
                a.input.len()
            ),
        ));
    }
    if a.target.len() != a.input.len() {
        return Err(Error::setting(
            "--target",
            format!("given {} times", a.target.len()),
            format!("give one --target per --input ({} given)", a.input.len()),
        ));
    }
    if a.input.len() > downhill::explain::MAX_BATCH {
        return Err(Error::setting(
            "--input",
            a.input.len(),
            format!(
                "explain shows at most {} examples",
                downhill::explain::MAX_BATCH
            ),
        ));
    }
    let rows: Vec<Vec<f64>> = a
        .input
        .iter()
        .map(|s| numbers("--input", s))
        .collect::<Result<_, _>>()?;
    let d = rows[0].len();
    if let Some(r) = rows.iter().find(|r| r.len() != d) {
        return Err(Error::setting(
            "--input",
            r.len(),
            format!("every --input needs the same number of values ({d} in the first)"),
        ));
    }
    let n = rows.len();
    let x = rows.concat();
    if loss.takes_classes() {
        let classes = a
            .target
            .iter()
            .map(|t| {
                t.trim().parse::<u32>().map_err(|_| {
                    Error::setting(
                        "--target",
                        t,
                        "cross-entropy's target is a class index 0, 1, …",
                    )
                })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let k = outputs.unwrap_or(2.max(classes.iter().max().map_or(0, |&c| c as usize + 1)));
        return Ok((x, n, d, classes, Vec::new(), k));
    }
    let vals: Vec<Vec<f64>> = a
        .target
        .iter()
        .map(|s| numbers("--target", s))
        .collect::<Result<_, _>>()?;
    let k = vals[0].len();
    if vals.iter().any(|v| v.len() != k) {
        return Err(Error::setting(
            "--target",
            a.target.join(" "),
            "every --target needs the same number of values",
        ));
    }
    if let Some(o) = outputs.filter(|&o| o != k) {
        return Err(Error::setting(
            from,
            o,
            format!(
                "each --target has {k} values: the network has {k} outputs{}",
                if from == "--layers" {
                    format!(" (end the layers with `dense {k}`)")
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok((x, n, d, Vec::new(), vals.concat(), k))
}

/// Reads `--weights FILE`: `params` of an `explain --json` (or a bare list of layers).
fn read_weights(path: &std::path::Path) -> Result<Vec<DenseTensors>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        Error::setting(
            "--weights",
            path.display(),
            format!("cannot read it: {source}"),
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::setting("--weights", path.display(), format!("not JSON: {e}")))?;
    let params = v.get("params").cloned().unwrap_or(v);
    serde_json::from_value(params).map_err(|e| {
        Error::setting(
            "--weights",
            path.display(),
            format!(
                "expected `params`: a list of layers {{\"weight\": [[…]], \"bias\": […]}} ({e})"
            ),
        )
    })
}

/// `downhill explain`.
pub fn run(a: &ExplainArgs) -> Result<ExitCode, Error> {
    let loss = a.loss.unwrap_or(Loss::CrossEntropy);
    let activation = a.activation.unwrap_or(Activation::Sigmoid);
    let opt = optimizer(a)?;
    // Below 1e-10 round-off (ε·|L|/h) swamps the difference, above 0.1 the O(h²) error does.
    if !(1e-10..=0.1).contains(&a.h) {
        return Err(Error::setting(
            "--h",
            // (As written: 1e300, not three hundred digits.)
            format!("{:e}", a.h),
            "the finite-difference step must be in [1e-10, 0.1] (1e-5 is about best in f64)",
        ));
    }
    // With --layers, the last dense width (if it gives one) is the outputs.
    let spec_outputs = match &a.layers {
        Some(spec) => downhill::netspec::parse(spec)?
            .iter()
            .rev()
            .find_map(|l| match l {
                downhill::netspec::LayerSpec::Dense(w) => Some(*w),
                _ => None,
            })
            .flatten(),
        None => None,
    };
    let outputs = match (a.outputs, spec_outputs) {
        (Some(o), Some(w)) if o != w => {
            return Err(Error::setting(
                "--outputs",
                o,
                format!(
                    "--layers ends with `dense {w}`: the network has {w} outputs (drop --outputs, \
                     or end the layers with `dense {o}` or `dense`)"
                ),
            ));
        }
        (Some(o), _) => (Some(o), "--outputs"),
        (None, Some(w)) => (Some(w), "--layers"),
        (None, None) => (None, "--outputs"),
    };
    let (x, n, d, classes, values, k) = batch(a, loss, outputs)?;
    if loss == Loss::CrossEntropy && k == 1 {
        return Err(Error::setting(
            outputs.1,
            if outputs.1 == "--layers" {
                a.layers.clone().unwrap_or_default()
            } else {
                k.to_string()
            },
            "cross-entropy over one output is 0 whatever the weights (softmax of one value is \
             1), so there is no gradient and the step moves nothing; use 2 or more outputs, or \
             --loss bce or mse",
        ));
    }
    let hidden = a.hidden.clone().unwrap_or_else(|| vec![3]);
    let mut sizes = vec![d];
    sizes.extend(&hidden);
    sizes.push(k);
    let limit = downhill::explain::MAX_WIDTH;
    if let Some(&w) = hidden.iter().find(|&&w| w == 0 || w > limit) {
        return Err(Error::setting(
            "--hidden",
            w,
            format!(
                "explain prints every number: hidden widths 1 to {limit} (try --hidden 3 or --hidden 4,3; `downhill gradcheck` checks big networks)"
            ),
        ));
    }
    if k == 0 || k > limit {
        return Err(Error::setting(
            "--outputs",
            k,
            format!("1 to {limit} outputs"),
        ));
    }
    let mut rng = Rng::seed_from_u64(a.seed);
    let description = Description {
        layers: a.layers.as_deref(),
        net: None,
        image_shape: None,
        hidden: &hidden,
        activation,
        dropout: 0.0,
        init: a.init_scheme,
    };
    // The spec's own check names its faults; explain's (dense and activations only, the
    // sizes) follows in `trace`.
    let resolved = description.resolve(d, k, None)?;
    let mut net = description.build::<f64>(resolved, &mut rng)?;
    if let Some(p) = &a.weights {
        downhill::explain::set_params(&mut net, &read_weights(p)?)
            .map_err(|e| Error::setting("--weights", p.display(), e.to_string()))?;
    }
    let targets = if loss.takes_classes() {
        BatchTargets::Classes(&classes[..])
    } else {
        BatchTargets::Values(&values[..])
    };
    let t =
        downhill::explain::trace(&net, &x, n, targets, loss, &opt, a.h).map_err(|e| match e {
            // The sizes are the spec's when the network came from --layers.
            Error::Setting {
                name: "hidden",
                value,
                reason,
            } if a.layers.is_some() => Error::Setting {
                name: "layers",
                value,
                reason: reason.replace(
                    "try --hidden 3 or --hidden 4,3",
                    "try `dense 3, tanh, dense 2`",
                ),
            },
            e => e,
        })?;
    check_finite(a, &t)?;
    if a.json {
        outln!("{}", serde_json::to_string(&t).expect("trace serialises"));
    } else {
        out!("{}", text(&t));
    }
    Ok(ExitCode::SUCCESS)
}

/// The first number of `t` that is not finite, as (where, value).
fn first_non_finite(t: &Trace) -> Option<(String, f64)> {
    let bad = |v: &[f64]| v.iter().copied().find(|x| !x.is_finite());
    let tensors = |ts: &[DenseTensors], what: &str| {
        ts.iter().enumerate().find_map(|(l, p)| {
            p.weight
                .iter()
                .find_map(|r| bad(r))
                .map(|v| (format!("{what} W{}", sup(l + 1)), v))
                .or_else(|| bad(&p.bias).map(|v| (format!("{what} b{}", sup(l + 1)), v)))
        })
    };
    for (i, e) in t.examples.iter().enumerate() {
        let ex = format!("example {}", i + 1);
        for (l, lt) in e.layers.iter().enumerate() {
            if let Some(v) = bad(&lt.z).or_else(|| bad(&lt.a)) {
                return Some((format!("{ex}: z{} or a{}", sup(l + 1), sup(l + 1)), v));
            }
        }
        if let Some(v) = bad(&e.prediction).or_else(|| bad(&[e.loss])) {
            return Some((format!("{ex}: the loss ℓ"), v));
        }
        for (l, lt) in e.layers.iter().enumerate() {
            if let Some(v) = bad(&lt.delta).or_else(|| bad(&lt.delta_a)) {
                return Some((format!("{ex}: δ{}", sup(l + 1)), v));
            }
        }
        if let Some(found) = tensors(&e.grads, &format!("{ex}: the gradient of")) {
            return Some(found);
        }
    }
    let b = &t.batch;
    if !b.loss.is_finite() {
        return Some(("the mini-batch loss L".into(), b.loss));
    }
    if let Some(found) = tensors(&b.grads, "the mini-batch gradient of") {
        return Some(found);
    }
    if let Some(found) = tensors(&b.numeric, "the central difference (FD) of L for") {
        return Some(found);
    }
    if let Some(v) = bad(&[b.max_abs_error, b.max_rel_error]) {
        return Some(("the largest difference".into(), v));
    }
    for s in &t.step.state {
        if let Some(found) = tensors(&s.layers, &format!("the optimiser's {} for", s.name)) {
            return Some(found);
        }
    }
    if let Some(found) = tensors(&t.step.params, "after the step,") {
        return Some(found);
    }
    if !t.step.loss.is_finite() {
        return Some(("the loss after the step".into(), t.step.loss));
    }
    None
}

/// Refuses a trace with a number that is not finite (an overflow in f64): explain exists to show
/// every number, and a NaN shows none of them. Before the step it is the inputs' (or weights')
/// doing, in the step the learning rate's.
fn check_finite(a: &ExplainArgs, t: &Trace) -> Result<(), Error> {
    let Some((place, v)) = first_non_finite(t) else {
        return Ok(());
    };
    let in_step = place.starts_with("the optimiser's")
        || place.starts_with("after the step")
        || place.starts_with("the loss after");
    if in_step {
        let lr = t.step.lr;
        return Err(Error::setting(
            "--lr",
            if (1e-4..1e6).contains(&lr.abs()) {
                lr.to_string()
            } else {
                format!("{lr:e}")
            },
            format!("the step overflows: {place} is {v}, not a finite number; try a smaller --lr"),
        ));
    }
    let (name, value) = if a.weights.is_some() {
        ("--input/--weights", "these inputs and weights".to_string())
    } else if a.input.is_empty() {
        ("--input", "the built-in examples".to_string())
    } else {
        ("--input", a.input.join(" "))
    };
    Err(Error::setting(
        name,
        value,
        format!(
            "{place} is {v}, not a finite number: the numbers overflow f64 before the step, \
             so there is nothing to explain; give smaller inputs (or weights)"
        ),
    ))
}

/// A number as printed: sign, 6 decimals (scientific below 1e-4 and from 1e6).
fn num(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:+.3e}")
    } else {
        format!("{v:+.6}")
    }
}

fn vector(v: &[f64]) -> String {
    format!(
        "[{}]",
        v.iter().map(|&x| num(x)).collect::<Vec<_>>().join(", ")
    )
}

/// Superscript digits for layer numbers.
fn sup(l: usize) -> String {
    l.to_string()
        .chars()
        .map(|c| {
            "⁰¹²³⁴⁵⁶⁷⁸⁹"
                .chars()
                .nth(c.to_digit(10).unwrap_or(0) as usize)
                .unwrap_or(c)
        })
        .collect()
}

fn matrix(out: &mut String, indent: &str, m: &[Vec<f64>]) {
    for r in m {
        let _ = writeln!(out, "{indent}{}", vector(r));
    }
}

/// A gradient with each entry's central difference beside it.
fn with_numeric(out: &mut String, indent: &str, g: &[f64], fd: &[f64]) {
    let cells: Vec<String> = g
        .iter()
        .zip(fd)
        .map(|(&g, &f)| format!("{} ({})", num(g), num(f)))
        .collect();
    let _ = writeln!(out, "{indent}{}", cells.join("  "));
}

/// The hidden layers' activations for the header: one name when they share it, else each
/// in order (`relu/sigmoid`); `no` without hidden layers.
fn hidden_activations(t: &Trace, layers: usize) -> String {
    if layers < 2 {
        return "no".into();
    }
    let names: Vec<&str> = t.activations[..layers - 1]
        .iter()
        .map(|a| act_name(*a))
        .collect();
    if names.iter().all(|n| *n == names[0]) {
        names[0].to_string()
    } else {
        names.join("/")
    }
}

fn act_name(a: Option<Activation>) -> &'static str {
    a.map_or("none", Activation::name)
}

/// The trace for people, block by block, each block tagged with its formula.
pub fn text(t: &Trace) -> String {
    let mut o = String::new();
    let layers = t.sizes.len() - 1;
    let sizes: Vec<String> = t.sizes.iter().map(usize::to_string).collect();
    let out_act = match t.activations.last().copied().flatten() {
        Some(a) => a.name(),
        None => "linear",
    };
    let _ = writeln!(
        o,
        "network {} ({} hidden, {out_act} output), loss {}, mini-batch of {}, {} η = {}",
        sizes.join("-"),
        hidden_activations(t, layers),
        t.loss.name(),
        t.batch.n,
        t.optimizer.name(),
        t.step.lr
    );
    let _ = writeln!(o, "\n== weights before the step ==");
    for (l, p) in t.params.iter().enumerate() {
        let _ = writeln!(
            o,
            "W{} ({}×{}):",
            sup(l + 1),
            p.weight.len(),
            p.weight[0].len()
        );
        matrix(&mut o, "  ", &p.weight);
        let _ = writeln!(o, "b{} = {}", sup(l + 1), vector(&p.bias));
    }
    for (i, e) in t.examples.iter().enumerate() {
        let target = match &e.target {
            downhill::explain::Target::Class(c) => format!("class {c}"),
            downhill::explain::Target::Values(v) => vector(v),
        };
        let _ = writeln!(
            o,
            "\n== example {} of {}: x = {}, y = {} ==",
            i + 1,
            t.batch.n,
            vector(&e.x),
            target
        );
        let _ = writeln!(o, "forward (F1) z = W·a + b, (F2) a = σ(z):");
        let _ = writeln!(o, "  a⁰ = x = {}", vector(&e.x));
        for (l, lt) in e.layers.iter().enumerate() {
            let s = sup(l + 1);
            let _ = writeln!(o, "  z{s} = W{s}·a{} + b{s} = {}", sup(l), vector(&lt.z));
            match t.activations[l] {
                Some(a) => {
                    let _ = writeln!(o, "  a{s} = {}(z{s}) = {}", a.name(), vector(&lt.a));
                }
                None => {
                    let _ = writeln!(
                        o,
                        "  a{s} = z{s} (no activation: the loss reads the logits)"
                    );
                }
            }
        }
        let what = match t.loss {
            Loss::CrossEntropy => "softmax(aᴸ)",
            Loss::Bce => "sigmoid(aᴸ)",
            Loss::Mse => "aᴸ",
        };
        let _ = writeln!(
            o,
            "loss (L): ŷ = {what} = {}, ℓ = {}",
            vector(&e.prediction),
            num(e.loss)
        );
        let _ = writeln!(
            o,
            "backward (B1) δᴸ = ∂ℓ/∂zᴸ, (B2) δˡ = (Wˡ⁺¹)ᵀδˡ⁺¹ ⊙ σ′(zˡ):"
        );
        for l in (0..e.layers.len()).rev() {
            let s = sup(l + 1);
            let lt = &e.layers[l];
            if l + 1 == e.layers.len() {
                let _ = writeln!(o, "  ∂ℓ/∂a{s} = {}", vector(&lt.delta_a));
                let _ = writeln!(o, "  δ{s} = {}", vector(&lt.delta));
            } else {
                let _ = writeln!(
                    o,
                    "  (W{})ᵀδ{} = {}",
                    sup(l + 2),
                    sup(l + 2),
                    vector(&lt.delta_a)
                );
                let _ = writeln!(
                    o,
                    "  δ{s} = (W{})ᵀδ{} ⊙ σ′(z{s}) = {}",
                    sup(l + 2),
                    sup(l + 2),
                    vector(&lt.delta)
                );
            }
        }
        let _ = writeln!(o, "gradient (B3) ∂ℓ/∂Wˡ = δˡ·(aˡ⁻¹)ᵀ, ∂ℓ/∂bˡ = δˡ:");
        for (l, g) in e.grads.iter().enumerate() {
            let _ = writeln!(o, "  ∂ℓ/∂W{}:", sup(l + 1));
            matrix(&mut o, "    ", &g.weight);
            let _ = writeln!(o, "  ∂ℓ/∂b{} = {}", sup(l + 1), vector(&g.bias));
        }
    }
    let b = &t.batch;
    let _ = writeln!(
        o,
        "\n== the mini-batch (M): L = (1/{n}) Σᵢ ℓᵢ = {}, ∇L = (1/{n}) Σᵢ ∇ℓᵢ ==",
        num(b.loss),
        n = b.n
    );
    let _ = writeln!(
        o,
        "each entry: backprop (central difference (FD), h = {:e})",
        t.h
    );
    for (l, (g, fd)) in b.grads.iter().zip(&b.numeric).enumerate() {
        let _ = writeln!(o, "∂L/∂W{}:", sup(l + 1));
        for (gr, fr) in g.weight.iter().zip(&fd.weight) {
            with_numeric(&mut o, "  ", gr, fr);
        }
        let _ = writeln!(o, "∂L/∂b{}:", sup(l + 1));
        with_numeric(&mut o, "  ", &g.bias, &fd.bias);
    }
    let _ = writeln!(
        o,
        "largest difference: {:.2e} absolute, {:.2e} relative{}",
        b.max_abs_error,
        b.max_rel_error,
        if b.kinks > 0 {
            format!(" ({} entries at a ReLU kink left out)", b.kinks)
        } else {
            String::new()
        }
    );
    // (L(w+h) − L(w−h))/2h carries L's rounding |L|·ε over h: at a huge loss the central
    // differences are noise, not a check of backpropagation.
    let noise = b.loss.abs() * f64::EPSILON / t.h;
    if noise > 1e-6 {
        let _ = writeln!(
            o,
            "note: at L = {:.3e} rounding alone puts ~{noise:.1e} of error in each central \
             difference (FD), so they cannot check backpropagation here",
            b.loss
        );
    }
    let rule = match t.optimizer {
        OptimizerConfig::Sgd(c) if c.momentum == 0.0 && c.weight_decay == 0.0 => {
            "w ← w − η∇L".to_string()
        }
        OptimizerConfig::Sgd(c) => format!(
            "momentum μ = {}{}: b = μb + ∇L (b₁ = ∇L), w ← w − η{}",
            c.momentum,
            if c.nesterov { ", Nesterov" } else { "" },
            if c.nesterov { "(∇L + μb)" } else { "b" }
        ),
        OptimizerConfig::Adam(c) | OptimizerConfig::AdamW(c) => format!(
            "m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², w ← w − η·m̂/(√v̂ + ε), β₁ = {}, β₂ = {}",
            c.beta1, c.beta2
        ),
        _ => format!("{}'s rule (see crates/core/src/optim)", t.optimizer.name()),
    };
    let _ = writeln!(o, "\n== the step (U): {rule}, η = {} ==", t.step.lr);
    for s in &t.step.state {
        let _ = writeln!(o, "{} after the step:", s.name);
        for (l, p) in s.layers.iter().enumerate() {
            let _ = writeln!(o, "  for W{}:", sup(l + 1));
            matrix(&mut o, "    ", &p.weight);
            let _ = writeln!(o, "  for b{} = {}", sup(l + 1), vector(&p.bias));
        }
    }
    for (l, p) in t.step.params.iter().enumerate() {
        let _ = writeln!(o, "W{} after:", sup(l + 1));
        matrix(&mut o, "  ", &p.weight);
        let _ = writeln!(o, "b{} after = {}", sup(l + 1), vector(&p.bias));
    }
    let _ = writeln!(
        o,
        "\nloss on the same mini-batch: {} before, {} after the step ({})",
        num(b.loss),
        num(t.step.loss),
        if t.step.loss < b.loss {
            "downhill"
        } else if t.step.loss == b.loss {
            "unchanged: the step moved nothing (η = 0?)"
        } else {
            "not lower: try a smaller --lr"
        }
    );
    o
}
