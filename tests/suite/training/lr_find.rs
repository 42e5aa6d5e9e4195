//! The learning-rate range test on problems whose best step size is known.

use crate::common::{downhill, json};
use downhill::data::Dataset;
use downhill::lr_find::{LrFindConfig, lr_find};
use downhill::optim::{OptimizerConfig, SgdConfig};
use downhill::train::TrainConfig;
use downhill::{Activation, Init, Loss, Network, Rng};
use rand::SeedableRng;

/// Linear regression (no hidden layer) on 8 rows whose feature columns are columns of a
/// Hadamard matrix scaled by s = (3, 1, 0.5): mean zero and orthogonal, so the Hessian of
/// L(w, b) = 1/(2n) Σ (x·w + b − y)² is diag(s₁², s₂², s₃², 1) and its largest curvature is
/// L = 9. Full-batch gradient descent is stable exactly for η < 2/L.
fn hadamard_problem() -> (Dataset, f64) {
    scaled_problem(3.0)
}

/// The same with s₁ = `top` (≥ 1): largest curvature L = top².
fn scaled_problem(top: f32) -> (Dataset, f64) {
    let h: [[f32; 8]; 3] = [
        [1., -1., 1., -1., 1., -1., 1., -1.],
        [1., 1., -1., -1., 1., 1., -1., -1.],
        [1., -1., -1., 1., 1., -1., -1., 1.],
    ];
    let s = [top, 1.0, 0.5];
    let x: Vec<f32> = (0..8)
        .flat_map(|i| (0..3).map(move |j| s[j] * h[j][i]))
        .collect();
    let y: Vec<f32> = (0..8)
        .map(|i| 2.0 * x[3 * i] - x[3 * i + 1] + 0.5 * x[3 * i + 2] + 1.0 + 0.1 * (i as f32).sin())
        .collect();
    (Dataset::regression(x, 3, y, 1).unwrap(), (top * top) as f64)
}

fn linear_net(rng: &mut Rng) -> Network<f32> {
    Network::<f32>::mlp(&[3, 1], Activation::Identity, 0.0, Init::GlorotUniform, rng).unwrap()
}

fn full_batch(loss: Loss) -> TrainConfig {
    TrainConfig {
        batch_size: usize::MAX,
        loss,
        shuffle: false,
        ..Default::default()
    }
}

/// The suggestion is below the stability limit 2/L and within the documented factor 5 of it;
/// the loss really blew up past 2/L; weights and the caller's generator are untouched.
#[test]
fn suggestion_on_a_quadratic_is_below_two_over_l_and_within_a_factor_5() {
    for (seed, top) in [(0, 1.0), (1, 3.0), (2, 10.0), (3, 30.0), (4, 3.0)] {
        let (data, l) = scaled_problem(top);
        let limit = 2.0 / l;
        let mut rng = Rng::seed_from_u64(seed);
        let mut net = linear_net(&mut rng);
        let before = net.params().to_vec();
        let rng_before = rng.clone();
        let opt = OptimizerConfig::Sgd(SgdConfig::default());
        let r = lr_find(
            &mut net,
            &data,
            &opt,
            &full_batch(Loss::Mse),
            &LrFindConfig::default(),
            &rng,
        )
        .unwrap();
        assert_eq!(net.params(), &before[..], "weights restored");
        assert_eq!(rng, rng_before);
        assert!(r.diverged, "the ramp to 10 must blow up on this problem");
        assert!(
            r.suggestion < limit && r.suggestion > limit / 5.0,
            "seed {seed}: suggestion {} vs 2/L = {limit} (min at {}, steepest {:?})",
            r.suggestion,
            r.min_lr,
            r.steepest_lr
        );
        // The loss was still finite and falling well below 2/L, and blew up past it.
        let last = r.curve.last().unwrap();
        assert!(last.lr > limit, "stopped at {} before 2/L", last.lr);
        eprintln!(
            "L = {l}: suggestion {:.4} = 2/L / {:.2}; min at {:.4}; steepest {:?}; stopped at {:.4} after {} steps",
            r.suggestion,
            limit / r.suggestion,
            r.min_lr,
            r.steepest_lr,
            last.lr,
            r.curve.len()
        );
    }
}

/// Gradient descent with the suggested rate converges on the quadratic.
#[test]
fn training_with_the_suggestion_converges() {
    let (data, _) = hadamard_problem();
    let mut rng = Rng::seed_from_u64(3);
    let mut net = linear_net(&mut rng);
    let opt = OptimizerConfig::Sgd(SgdConfig::default());
    let cfg = full_batch(Loss::Mse);
    let r = lr_find(&mut net, &data, &opt, &cfg, &LrFindConfig::default(), &rng).unwrap();
    let opt = OptimizerConfig::Sgd(SgdConfig {
        lr: r.suggestion,
        ..Default::default()
    });
    let cfg = TrainConfig {
        epochs: 2000,
        ..cfg
    };
    let before = downhill::train::evaluate(&net, &data, Loss::Mse)
        .unwrap()
        .loss;
    downhill::train::train(
        &mut net,
        &data,
        None,
        &opt,
        &Default::default(),
        &cfg,
        &mut rng,
        &mut downhill::train::NoObserver,
    )
    .unwrap();
    let after = downhill::train::evaluate(&net, &data, Loss::Mse)
        .unwrap()
        .loss;
    // The noise floor: ½ mean of the residual (0.1 sin i, minus its projection) squared ≤ 0.005.
    assert!(
        after < 0.005 && after < before / 100.0,
        "{before} → {after}"
    );
}

/// The smoothed curve is the bias-corrected moving average of the raw losses, and the learning
/// rates ramp exponentially from start.
#[test]
fn curve_is_the_bias_corrected_average_of_an_exponential_ramp() {
    let (data, _) = hadamard_problem();
    let mut rng = Rng::seed_from_u64(1);
    let mut net = linear_net(&mut rng);
    let find = LrFindConfig {
        start: 1e-4,
        end: 1e-2,
        steps: 21,
        smoothing: 0.8,
        blowup: 4.0,
    };
    let opt = OptimizerConfig::Sgd(SgdConfig::default());
    let r = lr_find(&mut net, &data, &opt, &full_batch(Loss::Mse), &find, &rng).unwrap();
    assert_eq!(r.curve.len(), 21);
    assert!(!r.diverged);
    let mut avg = 0.0;
    for (i, p) in r.curve.iter().enumerate() {
        let lr = 1e-4 * 10f64.powf(2.0 * i as f64 / 20.0);
        assert!((p.lr - lr).abs() < 1e-12 * lr);
        avg = 0.8 * avg + 0.2 * p.loss;
        assert!((p.smoothed - avg / (1.0 - 0.8f64.powi(i as i32 + 1))).abs() < 1e-12);
    }
    assert_eq!(r.curve[0].smoothed, r.curve[0].loss);
}

#[test]
fn bad_settings_are_refused_by_name() {
    let (data, _) = hadamard_problem();
    let mut rng = Rng::seed_from_u64(1);
    let mut net = linear_net(&mut rng);
    let opt = OptimizerConfig::Sgd(SgdConfig::default());
    for (find, name) in [
        (
            LrFindConfig {
                start: 0.0,
                ..Default::default()
            },
            "start-lr",
        ),
        (
            LrFindConfig {
                end: 1e-9,
                ..Default::default()
            },
            "end-lr",
        ),
        (
            LrFindConfig {
                steps: 3,
                ..Default::default()
            },
            "steps",
        ),
        (
            LrFindConfig {
                smoothing: 1.0,
                ..Default::default()
            },
            "smoothing",
        ),
        (
            LrFindConfig {
                blowup: 1.0,
                ..Default::default()
            },
            "blowup",
        ),
    ] {
        let e = lr_find(&mut net, &data, &opt, &full_batch(Loss::Mse), &find, &rng).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

// ---- through the binary ----

/// `downhill lr-find`: prints the suggestion, writes the picture, and `--json` has the curve.
#[test]
fn lr_find_command_prints_suggestion_and_draws_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("curve.svg");
    let out = downhill()
        .args(["lr-find", "--hidden", "32", "--steps", "60", "--plot"])
        .arg(&svg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("suggested learning rate"), "{text}");
    let pic = std::fs::read_to_string(&svg).unwrap();
    assert!(
        pic.contains("<svg") && pic.contains("suggestion"),
        "picture"
    );

    let out = downhill()
        .args([
            "lr-find", "--hidden", "32", "--steps", "60", "--json", "--plot",
        ])
        .arg(dir.path().join("c.png"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = json(&out.stdout);
    let s = v["suggestion"].as_f64().unwrap();
    assert!(s > 0.0 && s == v["min_lr"].as_f64().unwrap() / 10.0);
    assert!(v["curve"].as_array().unwrap().len() >= 2);
    assert!(
        std::fs::read(dir.path().join("c.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
}

/// `train --lr auto` records the chosen rate in the settings and summary, draws lr-find.svg, and
/// trains exactly as `--lr <that rate>` does (the range test leaves weights and generator alone).
#[test]
fn train_lr_auto_records_the_rate_and_equals_the_typed_in_rate() {
    let dir = tempfile::tempdir().unwrap();
    let auto = dir.path().join("auto");
    let out = downhill()
        .args([
            "train", "--hidden", "32", "--epochs", "2", "--lr", "auto", "--json", "--out",
        ])
        .arg(&auto)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = json(&out.stdout);
    let lr = a["lr_find"]["chosen_lr"].as_f64().unwrap();
    assert_eq!(a["settings"]["lr"].as_f64(), Some(lr));
    assert_eq!(a["settings"]["lr-auto"], true);
    assert!(auto.join("lr-find.svg").exists());
    let saved = json(&std::fs::read(auto.join("summary.json")).unwrap());
    assert_eq!(saved["lr_find"]["chosen_lr"].as_f64(), Some(lr));

    let out = downhill()
        .args(["train", "--hidden", "32", "--epochs", "2", "--json", "--lr"])
        .arg(lr.to_string())
        .arg("--out")
        .arg(dir.path().join("typed"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let t = json(&out.stdout);
    assert_eq!(a["test"], t["test"]);
    assert!(t.get("lr_find").is_none());
}

#[test]
fn lr_find_refuses_bad_flags_by_name() {
    for (args, word) in [
        (vec!["lr-find", "--lr", "0.1"], "--start-lr"),
        (vec!["lr-find", "--steps", "2"], "steps"),
        (
            vec!["lr-find", "--start-lr", "1", "--end-lr", "0.1"],
            "end-lr",
        ),
        (vec!["lr-find", "--blowup", "0.5"], "blowup"),
        (vec!["lr-find", "--out", "x"], "--plot"),
        (
            vec!["lr-find", "--plot", "x.jpg", "--steps", "10"],
            ".svg or .png",
        ),
        (vec!["train", "--lr", "fast"], "auto"),
        // A ramp that starts above the blow-up finds no falling loss: refused, not a guess.
        (
            vec![
                "lr-find",
                "--hidden",
                "8",
                "--start-lr",
                "1e4",
                "--end-lr",
                "1e6",
                "--steps",
                "20",
            ],
            "start the ramp lower",
        ),
    ] {
        let out = downhill().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(word), "{args:?}: {err}");
    }
}
