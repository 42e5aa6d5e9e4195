//! `downhill explain`: every printed number against its reference.
//!
//! - PyTorch: `tests/fixtures/explain_golden.json`, made by `scripts/explain_golden.py` from
//!   autograd (float64) on the weights the trace printed: z, a, δ, ∂ℓ/∂a, ∂ℓ/∂W, ∂ℓ/∂b of every
//!   example, L and ∇L of the batch, the weights, buffers and loss after one torch.optim step
//!   (SGD, momentum, Nesterov with weight decay, Adam, AdamW; cross-entropy, MSE, BCE).
//! - The definition of the derivative: every entry of ∇L against a central difference computed
//!   here through the engine's forward pass and loss, and the printed finite differences too.
//! - The formulas themselves, on the printed numbers: (F1) z = W·a + b, (B2) δ = Wᵀδ ⊙ σ′(z),
//!   (B3) ∂ℓ/∂W = δ·aᵀ, (M) ∇L = mean of the examples' ∇ℓ, (U) w ← w − η∇L.
//! - Hostile flags: clean errors naming the flag, never a panic.

use crate::common::{downhill, fails, json, ok, write};
use downhill::explain::{self, DenseTensors};
use downhill::loss::BatchTargets;
use downhill::optim::{OptimizerConfig, SgdConfig};
use downhill::{Activation, Init, Loss, Network, Rng};
use rand::{Rng as _, SeedableRng};
use serde_json::Value;

/// |a − b| ≤ tol·max(1, |a|, |b|) for every pair of numbers in two JSON trees of the same shape.
fn close(path: &str, a: &Value, b: &Value, tol: f64) {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                close(&format!("{path}[{i}]"), x, y, tol);
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, y) in y {
                let x = x
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing from the trace"));
                close(&format!("{path}.{k}"), x, y, tol);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let scale = 1f64.max(x.abs()).max(y.abs());
            assert!(
                (x - y).abs() <= tol * scale,
                "{path}: downhill {x} vs reference {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// Two traces of the same weights read back from JSON: equal to 1e-12, but for the central
/// differences, which multiply a last-bit difference of a weight by 1/h (to 1e-8).
fn same_trace(what: &str, a: &Value, b: &Value) {
    let (mut a, mut b) = (a.clone(), b.clone());
    close(
        &format!("{what}: numeric"),
        &a["batch"]["numeric"],
        &b["batch"]["numeric"],
        1e-8,
    );
    a["batch"]["numeric"] = Value::Null;
    b["batch"]["numeric"] = Value::Null;
    close(what, &a, &b, 1e-12);
}

fn trace_json(flags: &[&str]) -> Value {
    let mut args = vec!["explain", "--json"];
    args.extend(flags);
    let (out, _) = ok(&args);
    json(out.as_bytes())
}

#[test]
fn every_number_matches_pytorch_autograd() {
    let golden: Value =
        serde_json::from_str(include_str!("../../fixtures/explain_golden.json")).unwrap();
    let reference = golden["reference"].as_str().unwrap();
    assert!(reference.contains("PyTorch") && reference.contains("scripts/explain_golden.py"));
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for c in cases {
        let flags: Vec<&str> = c["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let t = trace_json(&flags);
        let name = flags.join(" ");
        // The same starting weights (else the initialiser changed: regenerate the golden).
        close(&format!("{name}: params"), &t["params"], &c["params"], 0.0);
        close(
            &format!("{name}: examples"),
            &t["examples"],
            &c["examples"],
            1e-12,
        );
        close(&format!("{name}: batch"), &t["batch"], &c["batch"], 1e-12);
        close(
            &format!("{name}: step.params"),
            &t["step"]["params"],
            &c["step"]["params"],
            1e-12,
        );
        close(
            &format!("{name}: step.state"),
            &t["step"]["state"],
            &c["step"]["state"],
            1e-12,
        );
        close(
            &format!("{name}: step.loss"),
            &t["step"]["loss"],
            &c["step"]["loss"],
            1e-12,
        );
        // Every buffer the engine keeps, and no other, is in PyTorch's state.
        assert_eq!(
            t["step"]["state"].as_array().unwrap().len(),
            c["step"]["state"].as_array().unwrap().len(),
            "{name}"
        );
    }
}

/// The comparison fails on a wrong number (the test can fail).
#[test]
#[should_panic(expected = "downhill")]
fn the_golden_comparison_sees_a_changed_delta() {
    let golden: Value =
        serde_json::from_str(include_str!("../../fixtures/explain_golden.json")).unwrap();
    let c = &golden["cases"][0];
    let mut t = trace_json(&["--optimizer", "sgd", "--lr", "0.5"]);
    let d = t["examples"][0]["layers"][0]["delta"][1].as_f64().unwrap();
    t["examples"][0]["layers"][0]["delta"][1] = (d * (1.0 + 1e-9) + 1e-11).into();
    close("examples", &t["examples"], &c["examples"], 1e-12);
}

fn flat(t: &[DenseTensors]) -> Vec<f64> {
    t.iter()
        .flat_map(|l| {
            l.weight
                .iter()
                .flatten()
                .chain(&l.bias)
                .copied()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// ∇L, the printed finite differences and a central difference computed here agree, for every
/// entry, on networks from 2-3-2 to the playground's 7-8-8-2, every activation and loss.
#[test]
fn every_gradient_entry_matches_central_differences() {
    let mut rng = Rng::seed_from_u64(11);
    let shapes: [&[usize]; 4] = [&[2, 3, 2], &[3, 4, 3, 2], &[7, 8, 8, 2], &[2, 5, 1]];
    for (s, sizes) in shapes.iter().enumerate() {
        for (a, &act) in Activation::ALL.iter().enumerate() {
            for loss in Loss::ALL {
                let k = *sizes.last().unwrap();
                if loss == Loss::CrossEntropy && k == 1 {
                    continue;
                }
                let mut net = Network::<f64>::mlp(
                    sizes,
                    act,
                    0.0,
                    Init::GlorotUniform,
                    &mut Rng::seed_from_u64((s * 10 + a) as u64),
                )
                .unwrap();
                for p in net.params_mut() {
                    *p += rng.random_range(-0.2..0.2); // non-zero biases too
                }
                let n = 1 + (s + a) % 4;
                let x: Vec<f64> = (0..n * sizes[0])
                    .map(|_| rng.random_range(-2.0..2.0))
                    .collect();
                let classes: Vec<u32> = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
                let values: Vec<f64> = (0..n * k)
                    .map(|_| {
                        if loss == Loss::Bce {
                            f64::from(rng.random_range(0..2u8))
                        } else {
                            rng.random_range(-1.0..1.0)
                        }
                    })
                    .collect();
                let targets = if loss.takes_classes() {
                    BatchTargets::Classes(&classes[..])
                } else {
                    BatchTargets::Values(&values[..])
                };
                let opt = OptimizerConfig::Sgd(SgdConfig {
                    lr: 0.1,
                    ..Default::default()
                });
                let t = explain::trace(&net, &x, n, targets, loss, &opt, 1e-5).unwrap();
                let what = format!("{sizes:?} {} {}", act.name(), loss.name());
                let g = flat(&t.batch.grads);
                let printed = flat(&t.batch.numeric);
                // A central difference computed here, through the public forward pass and loss.
                let h = 1e-5;
                let mut probe = net.clone();
                let mut ws = downhill::Workspace::new(&net, n);
                let mut kinks = 0;
                for j in 0..g.len() {
                    let mut at = |probe: &Network<f64>| {
                        ws.input_mut(n).copy_from_slice(&x);
                        let out = probe.forward(&mut ws, n, None);
                        loss.evaluate(out, n, k, targets, None) / n as f64
                    };
                    let w = probe.params()[j];
                    probe.params_mut()[j] = w + h;
                    let hi = at(&probe);
                    probe.params_mut()[j] = w - h;
                    let lo = at(&probe);
                    probe.params_mut()[j] = w;
                    let mid = at(&probe);
                    let fd = (hi - lo) / (2.0 * h);
                    assert!(
                        (fd - printed[j]).abs() <= 1e-12 * 1f64.max(fd.abs()),
                        "{what}: printed FD {j}"
                    );
                    let err = (g[j] - fd).abs() / 1e-4f64.max(g[j].abs()).max(fd.abs());
                    if err > 1e-6
                        && downhill::gradcheck::at_kink(g[j], (hi - mid) / h, (mid - lo) / h)
                    {
                        kinks += 1;
                        continue;
                    }
                    assert!(
                        err < 1e-6,
                        "{what}: entry {j}: backprop {} vs central difference {fd}",
                        g[j]
                    );
                }
                assert_eq!(kinks, t.batch.kinks, "{what}");
                assert!(t.batch.max_rel_error < 1e-6, "{what}");
            }
        }
    }
}

/// The printed numbers obey the notes' formulas, block by block.
#[test]
fn printed_blocks_obey_the_formulas() {
    for flags in [
        &["--batch", "3", "--hidden", "4,3", "--activation", "tanh"][..],
        &["--batch", "2", "--activation", "sigmoid", "--loss", "mse"][..],
    ] {
        let t = trace_json(flags);
        let m = |v: &Value| -> Vec<Vec<f64>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        };
        let vecf = |v: &Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let params = t["params"].as_array().unwrap();
        let acts = t["activations"].as_array().unwrap();
        let examples = t["examples"].as_array().unwrap();
        let n = examples.len() as f64;
        let nl = params.len();
        let mut mean = vec![0.0; flat_json(&t["batch"]["grads"]).len()];
        for e in examples {
            let layers = e["layers"].as_array().unwrap();
            let mut prev = vecf(&e["x"]);
            for l in 0..nl {
                let (w, b) = (m(&params[l]["weight"]), vecf(&params[l]["bias"]));
                let z = vecf(&layers[l]["z"]);
                let a = vecf(&layers[l]["a"]);
                for i in 0..z.len() {
                    // (F1) z = W·a + b
                    let zi: f64 = w[i].iter().zip(&prev).map(|(w, a)| w * a).sum::<f64>() + b[i];
                    assert!((zi - z[i]).abs() < 1e-12, "{flags:?} (F1) layer {}", l + 1);
                }
                // (B3) ∂ℓ/∂W = δ·aᵀ, ∂ℓ/∂b = δ
                let delta = vecf(&layers[l]["delta"]);
                let gw = m(&e["grads"][l]["weight"]);
                for i in 0..delta.len() {
                    for j in 0..prev.len() {
                        assert!(
                            (gw[i][j] - delta[i] * prev[j]).abs() < 1e-12,
                            "{flags:?} (B3)"
                        );
                    }
                }
                assert_eq!(vecf(&e["grads"][l]["bias"]), delta, "{flags:?} (B3) bias");
                if l + 1 < nl {
                    // (B2) δˡ = (Wˡ⁺¹)ᵀ δˡ⁺¹ ⊙ σ′(zˡ)
                    let w1 = m(&params[l + 1]["weight"]);
                    let d1 = vecf(&layers[l + 1]["delta"]);
                    let da = vecf(&layers[l]["delta_a"]);
                    for j in 0..delta.len() {
                        let back: f64 = (0..d1.len()).map(|i| w1[i][j] * d1[i]).sum();
                        assert!((back - da[j]).abs() < 1e-12, "{flags:?} Wᵀδ");
                        let slope = match acts[l].as_str().unwrap() {
                            "tanh" => 1.0 - a[j] * a[j],
                            "sigmoid" => a[j] * (1.0 - a[j]),
                            other => panic!("{other}"),
                        };
                        assert!((back * slope - delta[j]).abs() < 1e-12, "{flags:?} (B2)");
                    }
                }
                prev = a;
            }
            for (s, g) in mean.iter_mut().zip(flat_json(&e["grads"])) {
                *s += g / n;
            }
        }
        // (M) ∇L is the mean of the examples' ∇ℓ, and L the mean of their ℓ.
        for (a, b) in mean.iter().zip(flat_json(&t["batch"]["grads"])) {
            assert!((a - b).abs() < 1e-12, "{flags:?} (M)");
        }
        let l_mean: f64 = examples
            .iter()
            .map(|e| e["loss"].as_f64().unwrap())
            .sum::<f64>()
            / n;
        assert!((l_mean - t["batch"]["loss"].as_f64().unwrap()).abs() < 1e-12);
        // (U) plain SGD: w ← w − η∇L
        let eta = t["step"]["lr"].as_f64().unwrap();
        let before = flat_json(&t["params"]);
        for ((w, g), after) in before
            .iter()
            .zip(flat_json(&t["batch"]["grads"]))
            .zip(flat_json(&t["step"]["params"]))
        {
            assert!((w - eta * g - after).abs() < 1e-14, "{flags:?} (U)");
        }
    }
}

fn flat_json(v: &Value) -> Vec<f64> {
    let layers: Vec<DenseTensors> = serde_json::from_value(v.clone()).unwrap();
    flat(&layers)
}

/// The text shows each block with its formula tag, and the numbers of the JSON.
#[test]
fn text_shows_every_block_in_order() {
    let (text, _) = ok(&["explain", "--optimizer", "sgd", "--momentum", "0.9"]);
    let t = trace_json(&["--optimizer", "sgd", "--momentum", "0.9"]);
    let mut at = 0;
    for block in [
        "== weights before the step ==",
        "W¹ (3×2):",
        "== example 1 of 1",
        "forward (F1)",
        "z¹ = W¹·a⁰ + b¹",
        "a¹ = sigmoid(z¹)",
        "loss (L)",
        "backward (B1)",
        "δ² = ",
        "δ¹ = (W²)ᵀδ² ⊙ σ′(z¹)",
        "gradient (B3)",
        "== the mini-batch (M)",
        "central difference (FD)",
        "== the step (U): momentum",
        "momentum_buffer after the step",
        "W¹ after:",
        "loss on the same mini-batch",
    ] {
        let i = text[at..]
            .find(block)
            .unwrap_or_else(|| panic!("{block:?} missing or out of order in:\n{text}"));
        at += i + block.len();
    }
    let ell = t["examples"][0]["loss"].as_f64().unwrap();
    assert!(text.contains(&format!("ℓ = {ell:+.6}")), "{text}");
    let after = t["step"]["loss"].as_f64().unwrap();
    assert!(
        text.contains(&format!("{after:+.6} after the step")),
        "{text}"
    );
}

/// η = 0 leaves the loss where it was, and the text says so (not "try a smaller --lr").
#[test]
fn a_zero_rate_is_called_unchanged() {
    let (text, _) = ok(&["explain", "--lr", "0"]);
    assert!(text.contains("unchanged"), "{text}");
    assert!(!text.contains("smaller --lr"), "{text}");
}

/// `--weights` takes the `params` of a trace: the same trace again, and other weights give
/// other numbers.
#[test]
fn weights_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace_json(&["--hidden", "4", "--seed", "5"]);
    let file = write(dir.path(), "w.json", t.to_string());
    let again = trace_json(&["--hidden", "4", "--weights", crate::common::s(&file)]);
    same_trace("again", &again, &t);
    let mut p = t["params"].clone();
    p[0]["bias"][0] = 0.25.into();
    let file = write(
        dir.path(),
        "w2.json",
        serde_json::json!({ "params": p }).to_string(),
    );
    let other = trace_json(&["--hidden", "4", "--weights", crate::common::s(&file)]);
    assert_eq!(other["params"][0]["bias"][0], 0.25);
    assert_ne!(
        other["examples"][0]["layers"][0]["z"],
        t["examples"][0]["layers"][0]["z"]
    );
}

#[test]
fn hostile_flags_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--hidden", "100"], "--hidden"),
        (&["--hidden", "0"], "--hidden"),
        (&["--hidden", "16,16,16"], "hidden"),
        (&["--batch", "0"], "--batch"),
        (&["--batch", "9"], "--batch"),
        (&["--batch", "18446744073709551615"], "--batch"),
        (&["--batch", "-1"], "batch"),
        (&["--lr", "nan"], "lr"),
        (&["--lr", "-1"], "lr"),
        (&["--lr", "inf"], "lr"),
        (&["--h", "0"], "--h"),
        (&["--h", "nan"], "--h"),
        (&["--h", "-1e-5"], "--h"),
        // The value as written, not 301 digits (eighth hostile pass, item 11).
        (&["--h", "1e300"], "--h = 1e300:"),
        (&["--h", "1e-300"], "--h"),
        (&["--momentum", "2"], "momentum"),
        (&["--momentum", "0.9", "--optimizer", "adam"], "--momentum"),
        (&["--nesterov"], "nesterov"),
        (&["--nesterov", "--optimizer", "adam"], "--nesterov"),
        (&["--weight-decay", "-1"], "weight_decay"),
        (&["--input", "0.5,nan", "--target", "1"], "--input"),
        (&["--input", "0.5,x", "--target", "1"], "--input"),
        (&["--input", "", "--target", "1"], "--input"),
        (
            &[
                "--input", "1,2", "--input", "1", "--target", "0", "--target", "1",
            ],
            "--input",
        ),
        (&["--input", "1,2"], "--target"),
        (&["--target", "1"], "--target"),
        (
            &["--input", "1,2", "--target", "7", "--outputs", "2"],
            "target",
        ),
        (&["--input", "1,2", "--target", "-1"], "--target"),
        (
            &["--input", "1,2", "--target", "1", "--batch", "3"],
            "--batch",
        ),
        (
            &["--input", "1,2", "--target", "2", "--loss", "bce"],
            "target",
        ),
        (
            &["--input", "1,2", "--target", "inf", "--loss", "mse"],
            "--target",
        ),
        (
            &[
                "--input",
                "1,2",
                "--target",
                "1,2",
                "--loss",
                "mse",
                "--outputs",
                "3",
            ],
            "--outputs",
        ),
        (
            &[
                "--input",
                "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
                "--target",
                "0",
            ],
            "inputs",
        ),
        (&["--outputs", "1"], "--outputs"),
        (&["--outputs", "0"], "--outputs"),
        (&["--outputs", "100"], "--outputs"),
        (&["--weights", "/no/such/file.json"], "--weights"),
        (&["--activation", "softmax"], "--activation"),
        (&["--optimizer", "lbfgs"], "--optimizer"),
        (&["--epochs", "3"], "--epochs"),
    ];
    for (args, name) in cases {
        let mut a = vec!["explain"];
        a.extend(*args);
        let e = fails(&a);
        assert!(
            e.contains(name),
            "{args:?}: stderr does not name {name}: {e}"
        );
    }
    // Weight files that do not fit.
    let t = trace_json(&[]);
    for (what, body) in [
        ("not JSON", "{".to_string()),
        (
            "wrong shape",
            serde_json::json!({ "params": [t["params"][0]] }).to_string(),
        ),
        (
            "wrong rows",
            serde_json::json!({ "params": [t["params"][1], t["params"][0]] }).to_string(),
        ),
        ("no params", "{\"x\": 1}".to_string()),
        ("empty", String::new()),
    ] {
        let f = write(dir.path(), "bad.json", &body);
        let e = fails(&["explain", "--weights", crate::common::s(&f)]);
        assert!(e.contains("--weights"), "{what}: {e}");
    }
    // A huge weight overflows to NaN: refused as not finite, or traced without panic.
    let mut p = t["params"].clone();
    p[0]["weight"][0][0] = 1e308.into();
    let f = write(
        dir.path(),
        "big.json",
        serde_json::json!({ "params": p }).to_string(),
    );
    let out = downhill()
        .args(["explain", "--json", "--weights", crate::common::s(&f)])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !e.contains("panicked") && out.status.code() != Some(101),
        "{e}"
    );
}

/// Bad settings through the library: named errors.
#[test]
fn the_library_refuses_what_it_cannot_show() {
    let mut rng = Rng::seed_from_u64(0);
    let opt = OptimizerConfig::Sgd(SgdConfig::default());
    let big = Network::<f64>::mlp(
        &[2, 40, 2],
        Activation::Tanh,
        0.0,
        Init::GlorotUniform,
        &mut rng,
    )
    .unwrap();
    let e = explain::trace(
        &big,
        &[0.0, 0.0],
        1,
        BatchTargets::Classes(&[0]),
        Loss::CrossEntropy,
        &opt,
        1e-5,
    )
    .unwrap_err();
    assert!(e.to_string().contains("hidden"), "{e}");
    let drop = Network::<f64>::mlp(
        &[2, 3, 2],
        Activation::Tanh,
        0.5,
        Init::GlorotUniform,
        &mut rng,
    )
    .unwrap();
    let e = explain::trace(
        &drop,
        &[0.0, 0.0],
        1,
        BatchTargets::Classes(&[0]),
        Loss::CrossEntropy,
        &opt,
        1e-5,
    )
    .unwrap_err();
    assert!(e.to_string().contains("dropout"), "{e}");
    let net = Network::<f64>::mlp(
        &[2, 3, 2],
        Activation::Tanh,
        0.0,
        Init::GlorotUniform,
        &mut rng,
    )
    .unwrap();
    let e = explain::trace(
        &net,
        &[0.0, 0.0],
        1,
        BatchTargets::Values(&[0.0, 1.0]),
        Loss::CrossEntropy,
        &opt,
        1e-5,
    )
    .unwrap_err();
    assert!(e.to_string().contains("class"), "{e}");
    let e = explain::trace(
        &net,
        &[0.0],
        1,
        BatchTargets::Classes(&[0]),
        Loss::CrossEntropy,
        &opt,
        1e-5,
    )
    .unwrap_err();
    assert!(e.to_string().contains("input"), "{e}");
    let mut nan = net.clone();
    nan.params_mut()[0] = f64::NAN;
    let e = explain::trace(
        &nan,
        &[0.0, 0.0],
        1,
        BatchTargets::Classes(&[0]),
        Loss::CrossEntropy,
        &opt,
        1e-5,
    )
    .unwrap_err();
    assert!(e.to_string().contains("weights"), "{e}");
}

/// The playground's Backprop panel reads `Session::explain`: for a chosen training point of
/// the default 7-8-8-2 session, after some training, its trace is what `downhill explain
/// --json` prints for the same weights and input (the browser shows these numbers).
#[test]
fn the_playground_panel_trace_is_the_clis() {
    use downhill::playground::{NetSpec, Session};
    let mut s = Session::new(NetSpec::default()).unwrap();
    s.run(30).unwrap();
    let panel = serde_json::to_value(s.explain(3).unwrap()).unwrap();
    assert_eq!(panel["sizes"], serde_json::json!([7, 8, 8, 2]));
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "w.json", panel.to_string());
    let x: Vec<String> = panel["examples"][0]["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let (x, y) = (x.join(","), panel["examples"][0]["target"].to_string());
    let cli = trace_json(&[
        "--weights",
        crate::common::s(&f),
        "--hidden",
        "8,8",
        "--activation",
        "tanh",
        "--input",
        &x,
        "--target",
        &y,
        "--optimizer",
        "adam",
        "--lr",
        "0.03",
    ]);
    // serde_json reads a float to within an ulp (no `float_roundtrip`): equal to 1e-12.
    same_trace("panel vs cli", &panel, &cli);
    assert!(s.explain(s.train.len()).is_err());
}

/// `--layers` builds the same network as `--hidden`/`--activation` when they describe one (the
/// same trace, number for number), takes an activation per layer (every gradient entry still
/// its central difference), and names itself when refused.
#[test]
fn layers_describe_the_network_like_train_layers() {
    same_trace(
        "--layers vs --hidden",
        &trace_json(&["--layers", "dense 3, sigmoid, dense 2"]),
        &trace_json(&[]),
    );
    same_trace(
        "two hidden layers",
        &trace_json(&[
            "--layers",
            "dense 4, tanh, dense 3, tanh, dense 2",
            "--batch",
            "3",
        ]),
        &trace_json(&["--hidden", "4,3", "--activation", "tanh", "--batch", "3"]),
    );
    let mixed = trace_json(&[
        "--layers",
        "dense 3, tanh, dense 3, gelu, dense 2",
        "--batch",
        "4",
    ]);
    assert_eq!(
        mixed["activations"],
        serde_json::json!(["tanh", "gelu", null])
    );
    let err = mixed["batch"]["max_rel_error"].as_f64().unwrap();
    assert!(err < 1e-6, "{err}");
    let (text, _) = ok(&[
        "explain",
        "--layers",
        "dense 3, tanh, dense 3, gelu, dense 2",
    ]);
    assert!(
        text.starts_with("network 2-3-3-2 (tanh/gelu hidden"),
        "{text}"
    );
    for (spec, needle) in [
        ("dense 40, relu, dense 2", "invalid setting layers = 40"),
        (
            "dense 4, dropout 0.2, dense 2",
            "dense layers and activations only",
        ),
    ] {
        let e = fails(&["explain", "--layers", spec]);
        assert!(e.contains(needle), "{spec}: {e}");
    }
    // Targets of two values, layers ending in three outputs.
    let e = fails(&[
        "explain",
        "--layers",
        "dense 4, tanh, dense 3",
        "--loss",
        "mse",
        "--input",
        "1,2",
        "--target",
        "0.5,0.5",
    ]);
    assert!(e.contains("end the layers with `dense 2`"), "{e}");
    let e = fails(&[
        "explain",
        "--layers",
        "dense 3, tanh, dense 2",
        "--hidden",
        "3",
    ]);
    assert!(e.contains("cannot be used with"), "{e}");
}

/// At a huge loss (a target of 10³⁹) the central differences are rounding noise: the text says
/// so, and prints the numbers in scientific notation (78 digits before); a normal step has no note.
#[test]
fn a_loss_too_large_for_finite_differences_is_noted() {
    let (text, _) = ok(&[
        "explain", "--loss", "mse", "--input", "1,2", "--target", "1e39",
    ]);
    assert!(text.contains("cannot check backpropagation here"), "{text}");
    assert!(text.contains("ℓ = +5.000e77"), "{text}");
    let (text, _) = ok(&["explain"]);
    assert!(!text.contains("note:"), "{text}");
    let e = fails(&["explain", "--input", "1,2"]);
    assert!(
        e.contains("--target = given 0 times: give one --target per --input (1 given)"),
        "{e}"
    );
}

/// Seventh hostile pass, item 9: with `--layers` the last dense width is the outputs, as its
/// help says (`dense 3, tanh, dense 4` was refused for not ending in `dense 2`); an `--outputs`
/// that disagrees with it is refused, naming both.
#[test]
fn the_last_width_of_layers_is_the_outputs() {
    let t = trace_json(&["--layers", "dense 3, tanh, dense 4"]);
    assert_eq!(t["sizes"], serde_json::json!([2, 3, 4]), "{t}");
    let t = trace_json(&["--layers", "dense 3, tanh, dense 4", "--outputs", "4"]);
    assert_eq!(t["sizes"], serde_json::json!([2, 3, 4]));
    let t = trace_json(&["--layers", "dense 3, tanh, dense", "--outputs", "3"]);
    assert_eq!(t["sizes"], serde_json::json!([2, 3, 3]));
    let e = fails(&[
        "explain",
        "--layers",
        "dense 3, tanh, dense 4",
        "--outputs",
        "2",
    ]);
    assert!(
        e.contains("invalid setting --outputs = 2: --layers ends with `dense 4`"),
        "{e}"
    );
}

/// Seventh hostile pass, item 8: cross-entropy over one output is refused whatever gives the
/// one output (`--outputs 1` with `--input`, or `--layers` ending in `dense 1`), as gradcheck
/// refuses it — explain printed zero gradients and blamed η = 0.
#[test]
fn cross_entropy_over_one_output_is_refused() {
    for args in [
        &["--outputs", "1", "--input", "1,2", "--target", "0"][..],
        &[
            "--layers",
            "dense 3, tanh, dense 1",
            "--input",
            "1,2",
            "--target",
            "0",
        ],
    ] {
        let e = fails(&[&["explain"][..], args].concat());
        assert!(
            e.contains("cross-entropy over one output is 0 whatever the weights"),
            "{args:?}: {e}"
        );
    }
    // The built-in examples have two classes.
    let e = fails(&["explain", "--layers", "dense 3, tanh, dense 1"]);
    assert!(
        e.contains("invalid setting --layers = dense 3, tanh, dense 1: the built-in examples have two classes"),
        "{e}"
    );
    // One output with bce or mse is a network explain shows.
    ok(&[
        "explain",
        "--outputs",
        "1",
        "--loss",
        "bce",
        "--input",
        "1,2",
        "--target",
        "1",
    ]);
}

/// Seventh hostile pass, item 4: numbers that overflow f64 are refused, naming the flag to
/// change — at the inputs (z² = inf) before the step, at the learning rate in it — rather than
/// printed as NaN (and `null` in `--json`) with exit 0.
#[test]
fn numbers_that_overflow_are_refused_not_printed_as_nan() {
    for json in [false, true] {
        let mut args = vec![
            "explain",
            "--input",
            "1e308,-1e308",
            "--target",
            "1",
            "--activation",
            "relu",
        ];
        if json {
            args.push("--json");
        }
        let e = fails(&args);
        assert!(
            e.contains("invalid setting --input = 1e308,-1e308")
                && e.contains("not a finite number"),
            "{e}"
        );
    }
    let e = fails(&["explain", "--optimizer", "adam", "--lr", "1e308"]);
    assert!(
        e.contains("invalid setting --lr = 1e308: the step overflows")
            && e.contains("try a smaller --lr"),
        "{e}"
    );
}

/// Seventh hostile pass, item 6: the default initialiser of a `--layers` network follows its
/// activations as `--activation`'s does: He for ReLU layers, Glorot for tanh ones (it took
/// explain's default sigmoid for every `--layers` network).
#[test]
fn the_default_initialiser_follows_the_activations_of_layers() {
    let w = |t: &Value| t["params"].clone();
    assert_eq!(
        w(&trace_json(&["--layers", "dense 3, relu, dense 2"])),
        w(&trace_json(&["--activation", "relu"]))
    );
    assert_eq!(
        w(&trace_json(&["--layers", "dense 3, tanh, dense 2"])),
        w(&trace_json(&["--activation", "tanh"]))
    );
    assert_ne!(
        w(&trace_json(&["--layers", "dense 3, relu, dense 2"])),
        w(&trace_json(&["--activation", "sigmoid"]))
    );
}
