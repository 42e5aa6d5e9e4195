//! Each optimiser's first three steps against values computed in the test from the update rule
//! as PyTorch documents it (torch.optim docs, "Algorithm" boxes), one scalar at a time, on the
//! quadratic f(w) = ½ Σ aⱼ wⱼ² whose gradient is aⱼ wⱼ. Then `downhill train --optimizer sgd`
//! (without momentum, with momentum, Nesterov with weight decay) through the binary, six
//! mini-batch steps of a small network, against final weights computed by torch.optim.SGD
//! (`scripts/sgd_golden.py`).

use crate::common::downhill;
use downhill::optim::{AdagradConfig, AdamConfig, OptimizerConfig, RmsPropConfig, SgdConfig};

const A: [f64; 3] = [1.0, -0.5, 4.0]; // curvatures (one negative: a saddle direction)
const W0: [f64; 3] = [1.0, 2.0, -0.3];

fn grad(w: &[f64]) -> Vec<f64> {
    w.iter().zip(A).map(|(w, a)| a * w).collect()
}

/// Runs three steps of the library's optimiser and returns the iterates w₁, w₂, w₃.
fn library(cfg: OptimizerConfig) -> Vec<Vec<f64>> {
    let mut opt = cfg.build::<f64>(3);
    let mut w = W0.to_vec();
    (0..3)
        .map(|_| {
            let g = grad(&w);
            opt.step(&mut w, &g, cfg.lr());
            w.clone()
        })
        .collect()
}

/// Runs three steps of a scalar reference rule `step(t, j, w, g, state) -> w'`.
fn reference(mut step: impl FnMut(u32, usize, f64, f64) -> f64) -> Vec<Vec<f64>> {
    let mut w = W0.to_vec();
    (1..=3)
        .map(|t| {
            let g = grad(&w);
            for j in 0..3 {
                w[j] = step(t, j, w[j], g[j]);
            }
            w.clone()
        })
        .collect()
}

fn assert_close(name: &str, got: Vec<Vec<f64>>, want: Vec<Vec<f64>>) {
    for (t, (g, w)) in got.iter().zip(&want).enumerate() {
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{name}: step {} coordinate {j}: {a} vs {b}",
                t + 1
            );
        }
    }
    // And the optimiser actually moved.
    assert_ne!(got[2], W0.to_vec(), "{name} did not move");
}

#[test]
fn sgd_plain_is_the_notes_step() {
    let lr = 0.1;
    let got = library(OptimizerConfig::Sgd(SgdConfig {
        lr,
        ..Default::default()
    }));
    assert_close("sgd", got, reference(|_, _, w, g| w - lr * g));
}

#[test]
fn sgd_momentum_dampening_weight_decay() {
    let (lr, mu, tau, wd) = (0.1, 0.9, 0.2, 0.05);
    let got = library(OptimizerConfig::Sgd(SgdConfig {
        lr,
        momentum: mu,
        dampening: tau,
        weight_decay: wd,
        nesterov: false,
    }));
    let mut b = [0.0; 3];
    let want = reference(|t, j, w, g| {
        let g = g + wd * w;
        b[j] = if t == 1 {
            g
        } else {
            mu * b[j] + (1.0 - tau) * g
        };
        w - lr * b[j]
    });
    assert_close("sgd momentum", got, want);
}

#[test]
fn sgd_nesterov() {
    let (lr, mu) = (0.05, 0.9);
    let got = library(OptimizerConfig::Sgd(SgdConfig {
        lr,
        momentum: mu,
        nesterov: true,
        ..Default::default()
    }));
    let mut b = [0.0; 3];
    let want = reference(|t, j, w, g| {
        b[j] = if t == 1 { g } else { mu * b[j] + g };
        w - lr * (g + mu * b[j])
    });
    assert_close("nesterov", got, want);
}

#[test]
fn sgd_hand_computed_numbers() {
    // w₀ = 1, a = 1, η = 0.1, μ = 0.9: b₁ = 1, w₁ = 0.9; g = 0.9, b₂ = 0.9 + 0.9 = 1.8, w₂ = 0.72;
    // g = 0.72, b₃ = 1.62 + 0.72 = 2.34, w₃ = 0.486.
    let got = library(OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    }));
    for (t, want) in [0.9, 0.72, 0.486].into_iter().enumerate() {
        assert!(
            (got[t][0] - want).abs() < 1e-15,
            "step {}: {}",
            t + 1,
            got[t][0]
        );
    }
}

fn adam_reference(c: AdamConfig, decoupled: bool) -> Vec<Vec<f64>> {
    let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
    reference(move |t, j, mut w, mut g| {
        if decoupled {
            w -= c.lr * c.weight_decay * w;
        } else {
            g += c.weight_decay * w;
        }
        m[j] = c.beta1 * m[j] + (1.0 - c.beta1) * g;
        v[j] = c.beta2 * v[j] + (1.0 - c.beta2) * g * g;
        let m_hat = m[j] / (1.0 - c.beta1.powi(t as i32));
        let v_hat = v[j] / (1.0 - c.beta2.powi(t as i32));
        w - c.lr * m_hat / (v_hat.sqrt() + c.eps)
    })
}

#[test]
fn adam_defaults_and_weight_decay() {
    let c = AdamConfig {
        lr: 0.01,
        ..Default::default()
    };
    assert_eq!(
        (c.beta1, c.beta2, c.eps, c.weight_decay),
        (0.9, 0.999, 1e-8, 0.0),
        "PyTorch's defaults"
    );
    assert_close(
        "adam",
        library(OptimizerConfig::Adam(c)),
        adam_reference(c, false),
    );
    let c = AdamConfig {
        lr: 0.01,
        weight_decay: 0.1,
        ..Default::default()
    };
    assert_close(
        "adam wd",
        library(OptimizerConfig::Adam(c)),
        adam_reference(c, false),
    );
}

#[test]
fn adam_first_step_is_lr_times_sign() {
    // m̂₁ = g, v̂₁ = g², so w₁ = w₀ − η·g/(|g| + ε) ≈ w₀ − η·sign(g).
    let got = library(OptimizerConfig::Adam(AdamConfig {
        lr: 0.01,
        ..Default::default()
    }));
    for j in 0..3 {
        let g = A[j] * W0[j];
        assert!((got[0][j] - (W0[j] - 0.01 * g.signum())).abs() < 1e-9);
    }
}

#[test]
fn adamw_decouples_the_decay() {
    let c = AdamConfig {
        lr: 0.01,
        weight_decay: 0.1,
        ..Default::default()
    };
    let got = library(OptimizerConfig::AdamW(c));
    assert_close("adamw", got.clone(), adam_reference(c, true));
    assert!(
        got != adam_reference(c, false),
        "AdamW must differ from Adam with L2-style decay"
    );
    assert_eq!(
        OptimizerConfig::default_for("adamw"),
        Some(OptimizerConfig::AdamW(AdamConfig {
            weight_decay: 0.01,
            ..Default::default()
        }))
    );
}

fn rmsprop_reference(c: RmsPropConfig) -> Vec<Vec<f64>> {
    let (mut v, mut gbar, mut b) = ([0.0; 3], [0.0; 3], [0.0; 3]);
    reference(move |_, j, w, g| {
        let g = g + c.weight_decay * w;
        v[j] = c.alpha * v[j] + (1.0 - c.alpha) * g * g;
        let s = if c.centered {
            gbar[j] = c.alpha * gbar[j] + (1.0 - c.alpha) * g;
            (v[j] - gbar[j] * gbar[j]).sqrt() + c.eps
        } else {
            v[j].sqrt() + c.eps
        };
        if c.momentum > 0.0 {
            b[j] = c.momentum * b[j] + g / s;
            w - c.lr * b[j]
        } else {
            w - c.lr * g / s
        }
    })
}

#[test]
fn rmsprop_plain_centered_momentum() {
    let base = RmsPropConfig::default();
    assert_eq!(
        (base.lr, base.alpha, base.eps),
        (0.01, 0.99, 1e-8),
        "PyTorch's defaults"
    );
    for c in [
        base,
        RmsPropConfig {
            centered: true,
            ..base
        },
        RmsPropConfig {
            momentum: 0.9,
            weight_decay: 0.01,
            ..base
        },
        RmsPropConfig {
            momentum: 0.5,
            centered: true,
            alpha: 0.9,
            ..base
        },
    ] {
        assert_close(
            &format!("{c:?}"),
            library(OptimizerConfig::RmsProp(c)),
            rmsprop_reference(c),
        );
    }
}

#[test]
fn adagrad_with_and_without_lr_decay() {
    let base = AdagradConfig::default();
    assert_eq!(
        (base.lr, base.eps, base.lr_decay),
        (0.01, 1e-10, 0.0),
        "PyTorch's defaults"
    );
    for c in [
        base,
        AdagradConfig {
            lr: 0.1,
            lr_decay: 0.5,
            weight_decay: 0.1,
            initial_accumulator_value: 0.2,
            ..base
        },
    ] {
        let mut s = [c.initial_accumulator_value; 3];
        let want = reference(move |t, j, w, g| {
            let g = g + c.weight_decay * w;
            let clr = c.lr / (1.0 + (t - 1) as f64 * c.lr_decay);
            s[j] += g * g;
            w - clr * g / (s[j].sqrt() + c.eps)
        });
        assert_close(
            &format!("{c:?}"),
            library(OptimizerConfig::Adagrad(c)),
            want,
        );
    }
}

#[test]
fn invalid_hyperparameters_are_named() {
    let bad = OptimizerConfig::Adam(AdamConfig {
        beta1: 1.0,
        ..Default::default()
    });
    assert!(bad.validate().unwrap_err().to_string().contains("beta1"));
    let bad = OptimizerConfig::Sgd(SgdConfig {
        nesterov: true,
        ..Default::default()
    });
    assert!(bad.validate().unwrap_err().to_string().contains("nesterov"));
    let bad = OptimizerConfig::Sgd(SgdConfig {
        lr: f64::NAN,
        ..Default::default()
    });
    assert!(bad.validate().unwrap_err().to_string().contains("lr"));
}

#[test]
fn state_round_trips_so_a_resumed_run_continues_identically() {
    for name in OptimizerConfig::NAMES {
        let mut cfg = OptimizerConfig::default_for(name).unwrap();
        if let OptimizerConfig::Sgd(c) = &mut cfg {
            c.momentum = 0.9;
        }
        let mut a = cfg.build::<f64>(3);
        let mut w = W0.to_vec();
        for _ in 0..2 {
            let g = grad(&w);
            a.step(&mut w, &g, 0.01);
        }
        let mut b = cfg.build::<f64>(3);
        let saved: Vec<(&str, Vec<f64>)> = a
            .state()
            .into_iter()
            .map(|(n, v)| (n, v.to_vec()))
            .collect();
        let view: Vec<(&str, &[f64])> = saved.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        b.set_state(a.steps(), &view).unwrap();
        let (mut wa, mut wb) = (w.clone(), w.clone());
        let g = grad(&w);
        a.step(&mut wa, &g, 0.01);
        b.step(&mut wb, &g, 0.01);
        assert_eq!(wa, wb, "{name}");
    }
}

// ---- step for step against PyTorch, through the binary ----

/// Golden final parameters (state_dict order) after 6 steps, from
/// `scripts/sgd_golden.py` (torch 2.15, float64; `scripts/requirements-golden.txt`): see the
/// script for the network, data and settings.
const GOLDEN_PLAIN: [f64; 17] = [
    0.10118874410377862,
    -0.27896134129487105,
    0.29021062516743823,
    0.4352426748489846,
    -0.5240374241690319,
    0.23694984244619682,
    0.050396030345572856,
    -0.07570104686435898,
    0.20074030147431704,
    0.5670058573947744,
    -0.36693986894514363,
    0.2844691482216757,
    -0.3670058573947745,
    0.5669398689451437,
    0.015530851778324323,
    -0.01455984312854386,
    0.11455984312854388,
];
const GOLDEN_MOMENTUM: [f64; 17] = [
    -0.21515371282116882,
    -0.4361102655430886,
    0.5902039908768218,
    0.5344040938189125,
    -0.5631856330637124,
    0.20918345741523037,
    0.052748563800368464,
    -0.05749140043725962,
    0.20346830376546507,
    0.5327603611531261,
    -0.4989561642632918,
    0.4091621819090044,
    -0.3327603611531262,
    0.6989561642632918,
    -0.10916218190900434,
    -0.02632082502512662,
    0.12632082502512668,
];
const GOLDEN_NESTEROV: [f64; 17] = [
    -0.03809576215925127,
    -0.3447606069294791,
    0.41766330468181895,
    0.47391983850646674,
    -0.5349883946805161,
    0.22305995534889,
    0.04942543464896466,
    -0.06489993376222172,
    0.1992299052200764,
    0.5438282934984002,
    -0.4189664393075614,
    0.33534028400161664,
    -0.34602695531616523,
    0.6167677774897965,
    -0.038638276728263955,
    -0.02100775977460339,
    0.11990842886572094,
];

/// Writes the script's data and initial weights; returns the folder.
fn golden_problem() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let rows = [
        (0.5, -1.0, 0),
        (1.5, 0.25, 1),
        (-0.75, 0.5, 0),
        (0.0, 1.25, 1),
        (2.0, -0.5, 1),
        (-1.25, -1.5, 0),
    ];
    let mut csv = String::from("x1,x2,label\n");
    for (a, b, y) in rows {
        csv += &format!("{a},{b},{y}\n");
    }
    std::fs::write(d.path().join("data.csv"), csv).unwrap();
    let tensors: [(&str, Vec<usize>, Vec<f32>); 4] = [
        (
            "0.weight",
            vec![3, 2],
            vec![0.3, -0.2, 0.1, 0.4, -0.5, 0.25],
        ),
        ("0.bias", vec![3], vec![0.05, -0.1, 0.2]),
        ("2.weight", vec![2, 3], vec![0.6, -0.3, 0.2, -0.4, 0.5, 0.1]),
        ("2.bias", vec![2], vec![0.0, 0.1]),
    ];
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.2.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            (
                t.0,
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.1.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(
        d.path().join("init.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    d
}

/// Trains the golden problem through the binary with `flags`; returns the final parameters and
/// the recorded settings.
fn train_golden(d: &std::path::Path, name: &str, flags: &[&str]) -> (Vec<f64>, serde_json::Value) {
    let out = d.join(name);
    let o = downhill()
        .current_dir(d)
        .args([
            "train",
            "--data",
            "data.csv",
            "--target",
            "label",
            "--task",
            "classify",
            "--normalize",
            "none",
            "--hidden",
            "3",
            "--activation",
            "tanh",
            "--init",
            "init.safetensors",
            "--batch-size",
            "2",
            "--epochs",
            "2",
            "--no-shuffle",
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .args(flags)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = downhill::io::load(&out.join("model.safetensors")).unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    (
        model.net.params().iter().map(|&v| v as f64).collect(),
        summary["settings"].clone(),
    )
}

fn assert_golden(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() < 2e-6,
            "{name}: parameter {i}: {a} vs PyTorch {b}"
        );
    }
}

/// `--optimizer sgd` is torch.optim.SGD with momentum 0: w ← w − η∇L, step for step.
#[test]
fn binary_sgd_without_momentum_matches_pytorch() {
    let d = golden_problem();
    let (w, s) = train_golden(d.path(), "plain", &["--optimizer", "sgd", "--lr", "0.1"]);
    assert_golden("sgd", &w, &GOLDEN_PLAIN);
    assert_eq!(s["optimizer"], "sgd");
    assert_eq!(s["momentum"].as_f64(), Some(0.0), "settings say momentum 0");
    // Without --optimizer, --momentum asks for SGD with that momentum (the runs differ: momentum
    // 0 really is momentum 0).
    let (w, s) = train_golden(d.path(), "default", &["--lr", "0.1", "--momentum", "0.9"]);
    assert_golden("recipe with --momentum", &w, &GOLDEN_MOMENTUM);
    assert_eq!(s["optimizer"], "sgd");
    assert_eq!(s["momentum"].as_f64(), Some(0.9));
    // With no optimiser flag at all, a table's recipe is Adam at PyTorch's rate, and the
    // settings say so.
    let (_, s) = train_golden(d.path(), "none", &[]);
    assert_eq!(s["optimizer"], "adam");
    assert_eq!(s["lr"].as_f64(), Some(0.001));
}

#[test]
fn binary_sgd_momentum_and_nesterov_match_pytorch() {
    let d = golden_problem();
    let (w, _) = train_golden(
        d.path(),
        "m",
        &["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9"],
    );
    assert_golden("sgd momentum", &w, &GOLDEN_MOMENTUM);
    let (w, _) = train_golden(
        d.path(),
        "n",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--momentum",
            "0.9",
            "--nesterov",
            "--weight-decay",
            "0.01",
        ],
    );
    assert_golden("sgd nesterov", &w, &GOLDEN_NESTEROV);
}

/// `--schedule one-cycle`, stepped per batch with its momentum (β₁ for Adam) cycle, against
/// torch.optim.SGD/Adam with OneCycleLR stepped after every optimiser step
/// (`scripts/sgd_golden.py`, cases one_cycle_sgd and one_cycle_adam).
#[test]
fn binary_one_cycle_matches_pytorch_one_cycle_lr() {
    const SGD: [f64; 17] = [
        0.11293555701367523,
        -0.2909137820356636,
        0.27859393285973993,
        0.44872688459711935,
        -0.5179351938087171,
        0.23884904986890051,
        0.05313325719518335,
        -0.08099813044856419,
        0.200077540727338,
        0.5609435689634098,
        -0.36025943765715673,
        0.2760585851693424,
        -0.3609435689634099,
        0.5602594376571568,
        0.023941414830657648,
        -0.011571775883584727,
        0.11157177588358476,
    ];
    const ADAM: [f64; 17] = [
        0.19268760376759914,
        -0.29496827945242565,
        0.206476805153023,
        0.45501249350990214,
        -0.6076688646208677,
        0.15197929849251676,
        0.06457182902771132,
        -0.06212991099991823,
        0.22149237878776293,
        0.5002850721987453,
        -0.401115435222381,
        0.30800130043290647,
        -0.30028507219874545,
        0.6011154352223811,
        -0.008001300432906385,
        -0.028377044862419938,
        0.12837704486241994,
    ];
    let d = golden_problem();
    let (w, _) = train_golden(
        d.path(),
        "oc-sgd",
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--schedule",
            "one-cycle",
        ],
    );
    assert_golden("one-cycle sgd", &w, &SGD);
    let (w, _) = train_golden(
        d.path(),
        "oc-adam",
        &[
            "--optimizer",
            "adam",
            "--lr",
            "0.05",
            "--schedule",
            "one-cycle:0.5",
        ],
    );
    assert_golden("one-cycle adam", &w, &ADAM);
}

/// Counts the subnormal values in every f32 tensor of a safetensors file, by tensor name.
fn subnormals_in(path: &std::path::Path) -> Vec<(String, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut found: Vec<(String, usize)> = st
        .tensors()
        .into_iter()
        .filter(|(_, t)| t.dtype() == safetensors::Dtype::F32)
        .map(|(name, t)| {
            let n = t
                .data()
                .chunks_exact(4)
                .filter(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_subnormal())
                .count();
            (name, n)
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    found.sort();
    found
}

/// SGD with momentum on the digits: the momentum buffers of rarely lit border pixels decay
/// geometrically (v ← 0.9 v) through the subnormal range. With exact IEEE arithmetic
/// (`--keep-subnormals`) the final checkpoint holds thousands of subnormals, on any CPU; by
/// default the training threads flush them (see `downhill::subnormals`), on one thread and on
/// two (the helper thread must flush too), and neither the checkpoint nor the model holds one.
#[test]
fn training_threads_flush_subnormals_unless_told_to_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "train",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--lr",
            "0.05",
        ];
        args.extend([
            "--epochs",
            "20",
            "--seed",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]);
        args.extend(extra);
        let o = downhill().args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let kept = run("kept", &["--keep-subnormals"]);
    let kept = subnormals_in(&kept.join("checkpoint.safetensors"));
    let in_buffer = kept
        .iter()
        .find(|(n, _)| n == "optimizer.momentum_buffer")
        .map_or(0, |f| f.1);
    assert!(in_buffer > 100, "the data should make subnormals: {kept:?}");
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        for (name, threads) in [("flushed", "1"), ("flushed2", "2")] {
            let out = run(name, &["--threads", threads]);
            for file in ["checkpoint.safetensors", "model.safetensors"] {
                let found = subnormals_in(&out.join(file));
                assert!(found.is_empty(), "--threads {threads}, {file}: {found:?}");
            }
        }
    }
}
