//! End-to-end tests of the `downhill` binary: every command, the run folder, `--json`, and the
//! error paths (a message naming the flag or file, a non-zero exit, nothing overwritten).

use std::path::Path;

use crate::common::{downhill, json};
use serde_json::Value;

fn stderr_of(args: &[&str]) -> String {
    let out = downhill().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small CSV classification problem: two features, string classes by the sign of x − y.
fn write_csv(path: &Path, rows: usize) {
    let mut s = String::from("x,y,label\n");
    for i in 0..rows {
        let (x, y) = (
            ((i * 37) % 100) as f64 / 10.0,
            ((i * 61) % 100) as f64 / 10.0,
        );
        s += &format!("{x},{y},{}\n", if x > y { "above" } else { "below" });
    }
    std::fs::write(path, s).unwrap();
}

/// `downhill train` with defaults: ≥ 94% on the embedded digits, the documented JSON fields,
/// and a complete run folder.
#[test]
fn train_defaults_on_digits_with_json_and_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let res = downhill()
        .args(["train", "--json", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.94, "test accuracy {acc}");
    assert_eq!(v["test"]["examples"], 1000);
    for key in ["loss", "accuracy"] {
        assert!(
            v["train"][key].is_number() && v["val"][key].is_number() && v["test"][key].is_number(),
            "{key}"
        );
    }
    // Issue 11 changed the defaults: epochs sized to the data (up to 176 for 3,600 training
    // digits) and early stopping on the validation split, restoring the best epoch.
    let epochs = v["epochs"].as_u64().unwrap();
    let max = v["settings"]["epochs"].as_u64().unwrap();
    assert_eq!(
        max,
        downhill::settings::epochs_for(3600, downhill::settings::BatchSize::Examples(64)) as u64
    );
    assert!(epochs <= max && epochs >= 1, "{epochs}");
    assert_eq!(v["settings"]["patience"], 10);
    let best = v["best_epoch"].as_u64().unwrap();
    assert!(
        best <= epochs && epochs - best <= 10,
        "best {best} of {epochs}"
    );
    assert!(v["stop_reason"].as_str().unwrap().contains("epoch"));
    assert_eq!(v["epoch_seconds"].as_array().unwrap().len() as u64, epochs);
    assert!(v["examples_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["seed"], 0);
    assert_eq!(
        Path::new(v["model"].as_str().unwrap()),
        out.join("model.safetensors")
    );
    for f in [
        "model.safetensors",
        "metrics.jsonl",
        "summary.json",
        "curves.svg",
        "confusion.svg",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{f} missing or empty");
    }
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count() as u64, epochs);
    for l in lines.lines() {
        let m = json(l.as_bytes());
        assert!(m["val_loss"].is_number() && m["lr"].is_number() && m["seconds"].is_number());
    }
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("epoch") && svg.contains("validation"));

    // eval on the same held-out 1,000 gives the same accuracy.
    let res = downhill()
        .args(["eval", "--json", "--data", "digits", "--model"])
        .arg(out.join("model.safetensors"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let e = json(&res.stdout);
    assert_eq!(e["accuracy"].as_f64().unwrap(), acc);
    assert_eq!(e["confusion"].as_array().unwrap().len(), 10);
    assert_eq!(e["precision"].as_array().unwrap().len(), 10);
    let text = downhill()
        .args(["eval", "--data", "digits", "--model"])
        .arg(out.join("model.safetensors"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("precision") && text.contains("confusion matrix"),
        "{text}"
    );
}

#[test]
fn quiet_prints_nothing_and_epoch_lines_go_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let res = downhill()
        .args(["train", "--epochs", "2", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(res.status.success());
    assert!(res.stdout.is_empty() && res.stderr.is_empty());
    let res = downhill()
        .args(["train", "--epochs", "2", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("epoch")).count(),
        2,
        "{err}"
    );
    assert!(String::from_utf8_lossy(&res.stdout).contains("test"));
}

#[test]
fn csv_classification_train_predict_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("points.csv");
    write_csv(&data, 400);
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "hidden = [16]\nactivation = \"tanh\"\noptimizer = \"adam\"\nlr = 0.01\nepochs = 3\nseed = 5\n").unwrap();
    let out = dir.path().join("run");
    // The flag --epochs overrides the file's 3.
    let res = downhill()
        .args(["train", "--json", "--epochs", "40", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(v["epochs"], 40);
    assert_eq!(v["seed"], 5);
    assert_eq!(v["settings"]["optimizer"], "adam");
    assert_eq!(v["settings"]["hidden"], serde_json::json!([16]));
    assert_eq!(v["test"]["examples"], 80);
    assert!(v["test"]["accuracy"].as_f64().unwrap() >= 0.9, "{v}");

    let input = dir.path().join("new.csv");
    std::fs::write(&input, "x,y\n9,1\n1,9\n").unwrap();
    let res = downhill()
        .args(["predict", "--proba", "--model"])
        .arg(out.join("model.safetensors"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = String::from_utf8(res.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "prediction,p_above,p_below");
    assert!(
        lines[1].starts_with("above,") && lines[2].starts_with("below,"),
        "{text}"
    );
    for l in &lines[1..] {
        let p: f64 = l
            .split(',')
            .skip(1)
            .map(|f| f.parse::<f64>().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-5, "probabilities sum to {p}");
    }
    let pred = dir.path().join("pred.csv");
    downhill()
        .args(["predict", "--model"])
        .arg(out.join("model.safetensors"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&pred)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&pred).unwrap(),
        "prediction\nabove\nbelow\n"
    );
}

/// A separate --test file (its labels mapped to the training classes), a header-less CSV with the
/// target by index, and eval on data of the wrong width.
#[test]
fn separate_test_file_header_flags_and_width_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.csv"), dir.path().join("test.csv"));
    write_csv(&train, 300);
    write_csv(&test, 50);
    let out = dir.path().join("r");
    let res = downhill()
        .args(["train", "--json", "--epochs", "30", "--header", "--data"])
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(
        (
            v["test"]["examples"].as_u64(),
            v["data"]["train_examples"].as_u64()
        ),
        (Some(50), Some(270))
    );
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.85, "{v}");

    // No header; the label (0/1) in the first column, chosen by index.
    let bare = dir.path().join("bare.csv");
    let rows: String = (0..200)
        .map(|i| {
            format!(
                "{},{},{}\n",
                i % 2,
                (i % 2) as f64 * 2.0 - 1.0,
                (i % 7) as f64 / 7.0
            )
        })
        .collect();
    std::fs::write(&bare, rows).unwrap();
    let res = downhill()
        .args([
            "train",
            "--json",
            "--epochs",
            "5",
            "--no-header",
            "--target",
            "0",
            "--data",
        ])
        .arg(&bare)
        .arg("--out")
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(
        (v["data"]["features"].as_u64(), v["data"]["task"].as_str()),
        (Some(2), Some("classify"))
    );
    assert_eq!(
        v["data"]["train_examples"].as_u64().unwrap()
            + v["data"]["val_examples"].as_u64().unwrap()
            + v["data"]["test_examples"].as_u64().unwrap(),
        200
    );

    // A model for 2 features evaluated on the 784-pixel digits: the widths are named.
    let err = stderr_of(&[
        "eval",
        "--model",
        out.join("model.safetensors").to_str().unwrap(),
        "--data",
        "digits",
    ]);
    assert!(err.contains("784") && err.contains('2'), "{err}");
    // A test file of another width is named.
    let wide = dir.path().join("wide.csv");
    std::fs::write(&wide, "a,b,c,label\n1,2,3,above\n").unwrap();
    let err = stderr_of(&[
        "train",
        "--data",
        train.to_str().unwrap(),
        "--test",
        wide.to_str().unwrap(),
    ]);
    assert!(
        // Matched by header name (issue 10): the missing and the unknown columns are named.
        err.contains("wide.csv")
            && err.contains("missing: x, y")
            && err.contains("not in the training data: a, b, c"),
        "{err}"
    );
}

#[test]
fn csv_regression_reports_rmse_and_r2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lin.csv");
    let mut s = String::from("a,b,price\n");
    for i in 0..300 {
        let (a, b) = ((i % 17) as f64 * 0.3, (i % 11) as f64 * 0.5);
        s += &format!("{a},{b},{:.4}\n", 2.0 * a - b + 0.25);
    }
    std::fs::write(&data, s).unwrap();
    let res = downhill()
        .args([
            "train",
            "--json",
            "--target",
            "price",
            "--hidden",
            "8",
            "--epochs",
            "60",
            "--batch-size",
            "full",
            "--lr",
            "0.1",
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("r"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(v["data"]["task"], "regress");
    assert!(v["test"]["r2"].as_f64().unwrap() > 0.9, "{v}");
    assert!(v["test"]["rmse"].is_number() && v["test"].get("accuracy").is_none());
}

/// Every training flag is accepted and has its effect (one short run each).
#[test]
fn training_flags_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("p.csv");
    write_csv(&data, 200);
    let d = data.to_str().unwrap();
    let runs: &[&[&str]] = &[
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.5",
            "--nesterov",
            "--weight-decay",
            "1e-4",
            "--schedule",
            "step:1:0.5",
            "--warmup",
            "1",
        ],
        &[
            "--optimizer",
            "adamw",
            "--schedule",
            "cosine",
            "--batch-size",
            "full",
            "--no-shuffle",
        ],
        &[
            "--optimizer",
            "rmsprop",
            "--momentum",
            "0.1",
            "--schedule",
            "exp:0.9",
            "--activation",
            "gelu",
            "--dropout",
            "0.2",
        ],
        &[
            "--optimizer",
            "adagrad",
            "--schedule",
            "inv-time:0.5",
            "--init-scheme",
            "lecun-normal",
            "--l2",
            "1e-3",
        ],
        &[
            "--activation",
            "sigmoid",
            "--threads",
            "2",
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
            "--normalize",
            "none",
        ],
        &[
            "--activation",
            "leaky-relu",
            "--patience",
            "1",
            "--grad-tol",
            "1e-9",
            "--hidden",
            "8,4",
            "--task",
            "classify",
        ],
    ];
    for (i, extra) in runs.iter().enumerate() {
        let out = dir.path().join(format!("r{i}"));
        let res = downhill()
            .args(["train", "--json", "--epochs", "3", "--data", d])
            .args(*extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let v = json(&res.stdout);
        assert!(v["epochs"].as_u64().unwrap() >= 1, "{extra:?}");
    }
    // --test-fraction 0 and --val-fraction 0: no test or val figures.
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r4/summary.json")).unwrap())
            .unwrap();
    assert!(v["test"].is_null() && v["val"].is_null());
    // The warm-up and step schedule show in the learning rates of metrics.jsonl.
    let lrs: Vec<f64> = std::fs::read_to_string(dir.path().join("r0/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| json(l.as_bytes())["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, vec![0.025, 0.05, 0.025]);
}

#[test]
fn init_from_a_model_and_a_mismatched_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    downhill()
        .args([
            "train", "--epochs", "1", "--quiet", "--hidden", "32", "--out",
        ])
        .arg(&a)
        .assert()
        .success();
    let model = a.join("model.safetensors");
    let b = dir.path().join("b");
    downhill()
        .args([
            "train", "--epochs", "1", "--quiet", "--hidden", "32", "--init",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&b)
        .assert()
        .success();
    let err = stderr_of(&[
        "train",
        "--epochs",
        "1",
        "--hidden",
        "64",
        "--init",
        model.to_str().unwrap(),
        "--out",
        dir.path().join("c").to_str().unwrap(),
    ]);
    assert!(
        err.contains("model.safetensors")
            && err.contains("0.weight")
            && err.contains("[32, 784]")
            && err.contains("[64, 784]"),
        "{err}"
    );
}

/// A run that diverges exits non-zero with advice and leaves the existing model untouched.
#[test]
fn divergence_keeps_the_previous_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    downhill()
        .args(["train", "--epochs", "1", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let err = stderr_of(&[
        "train",
        "--lr",
        "1e6",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("diverged") && err.contains("epoch 1") && err.contains("try --lr"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
}

#[test]
fn bad_flag_values_name_the_flag_and_the_accepted_values() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["train", "--activation", "softplus"],
            &["--activation", "relu", "gelu"],
        ),
        (
            &["train", "--optimizer", "lbfgs"],
            &["--optimizer", "adam", "rmsprop"],
        ),
        (&["train", "--loss", "hinge"], &["--loss", "cross-entropy"]),
        (&["train", "--batch-size", "0"], &["--batch-size", "full"]),
        (
            &["train", "--schedule", "linear"],
            &["schedule", "step:EVERY:GAMMA"],
        ),
        (
            &["train", "--normalize", "minmax"],
            &["--normalize", "standardize"],
        ),
        (
            &["train", "--init-scheme", "zeros"],
            &["--init-scheme", "he-normal"],
        ),
        (&["train", "--epochs", "-3"], &["--epochs"]),
        (&["train", "--lr", "-0.1"], &["lr", "≥ 0"]),
        (
            &["train", "--val-fraction", "1.5"],
            &["val-fraction", "[0, 1)"],
        ),
        (&["train", "--dropout", "1"], &["dropout", "[0, 1)"]),
        (
            &["train", "--optimizer", "adam", "--nesterov"],
            &["nesterov"],
        ),
        (
            &["train", "--data", "no/such.csv"],
            &["no/such.csv", "digits"],
        ),
        (&["train", "--config", "no/such.toml"], &["no/such.toml"]),
        (
            &["eval", "--model", "no/such.safetensors", "--data", "digits"],
            &["no/such.safetensors"],
        ),
    ];
    for (args, needles) in cases {
        let err = stderr_of(args);
        for n in *needles {
            assert!(err.contains(n), "{args:?}: {n:?} missing from: {err}");
        }
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}

#[test]
fn config_file_with_an_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "epochs = 2\nlearning-rate = 0.1\n").unwrap();
    let err = stderr_of(&["train", "--config", cfg.to_str().unwrap()]);
    assert!(
        err.contains("c.toml") && err.contains("learning-rate"),
        "{err}"
    );
}

#[test]
fn gradcheck_command_passes_and_reports_json() {
    let res = downhill()
        .args([
            "gradcheck",
            "--json",
            "--activation",
            "gelu",
            "--loss",
            "mse",
            "--l2",
            "0.1",
        ])
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stdout)
    );
    let v = json(&res.stdout);
    assert_eq!(v["passed"], true);
    assert!(v["max_rel_error"].as_f64().unwrap() <= 1e-6);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);
    let text = downhill().arg("gradcheck").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("PASS"));
    // An impossible tolerance fails with exit status 1 (0 itself is a flag error, exit 2).
    downhill()
        .args(["gradcheck", "--tol", "1e-300"])
        .assert()
        .code(1);
    downhill()
        .args(["gradcheck", "--tol", "0"])
        .assert()
        .code(2);
}

#[test]
fn help_teaches() {
    let out = downhill().args(["train", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--lr",
        "--momentum",
        "--l2",
        "weight_decay = 2λ",
        "full-batch",
        "--patience",
        "--seed",
    ] {
        assert!(help.contains(needle), "train --help lacks {needle}");
    }
}

#[test]
fn landscape_draws_paths_reports_json_and_divergence() {
    let dir = tempfile::tempdir().unwrap();
    for surface in downhill::landscape::surface::SURFACES {
        let out = dir.path().join(format!("{surface}.svg"));
        let res = downhill()
            .args([
                "landscape",
                "--json",
                "--steps",
                "200",
                "--surface",
                surface,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "{surface}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let v = json(&res.stdout);
        assert_eq!(v["optimizers"].as_array().unwrap().len(), 6, "{surface}");
        for o in v["optimizers"].as_array().unwrap() {
            assert!(
                o["final_point"].is_array()
                    && o["final_loss"].is_number()
                    && o["diverged"].is_boolean(),
                "{o}"
            );
        }
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            svg.len() > 10_000 && svg.contains("Loss against step") && svg.contains("adam"),
            "{surface}: picture too small"
        );
    }
    // An LR sweep on the bowl: the stable rates converge, η > 2/κ is reported as diverged.
    let out = dir.path().join("sweep.svg");
    let res = downhill()
        .args([
            "landscape",
            "--json",
            "--surface",
            "quadratic",
            "--lr-sweep",
            "0.1,0.25",
            "--steps",
            "300",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let v = json(&res.stdout);
    let o = v["optimizers"].as_array().unwrap();
    assert_eq!(
        (o[0]["diverged"].as_bool(), o[1]["diverged"].as_bool()),
        (Some(false), Some(true)),
        "{v}"
    );
    assert!(o[0]["steps_to_tolerance"].is_number() && o[1]["steps_to_tolerance"].is_null());
    // Per-optimiser learning rates and noise; bad values are named.
    let res = downhill()
        .args([
            "landscape",
            "--json",
            "--optimizers",
            "gd,adam",
            "--lr",
            "gd=0.002,adam=0.1",
            "--noise",
            "0.1",
            "--out",
        ])
        .arg(dir.path().join("n.svg"))
        .output()
        .unwrap();
    let v = json(&res.stdout);
    assert_eq!(v["optimizers"][1]["lr"], 0.1);
    let err = stderr_of(&[
        "landscape",
        "--optimizers",
        "gd,lbfgs",
        "--out",
        dir.path().join("x.svg").to_str().unwrap(),
    ]);
    assert!(err.contains("lbfgs") && err.contains("adam"), "{err}");
    let err = stderr_of(&[
        "landscape",
        "--out",
        dir.path().join("x.gif").to_str().unwrap(),
    ]);
    assert!(err.contains(".svg or .png"), "{err}");
    // PNG: a real PNG file (by its signature), not a small one.
    let png = dir.path().join("p.png");
    downhill()
        .args(["landscape", "--steps", "50", "--out"])
        .arg(&png)
        .assert()
        .success();
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(&[0x89, b'P', b'N', b'G']) && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
}

/// --loss on train (bce on 0/1 targets, cross-entropy named explicitly), and --data with a
/// folder of MNIST-format IDX files (written here) including its t10k test pair.
#[test]
fn loss_flag_and_an_idx_folder() {
    let dir = tempfile::tempdir().unwrap();
    let bits = dir.path().join("bits.csv");
    let rows: String = (0..300)
        .map(|i| {
            format!(
                "{},{},{}\n",
                (i % 7) as f64 / 7.0,
                (i % 5) as f64 / 5.0,
                u8::from((i % 7) * 5 > (i % 5) * 7)
            )
        })
        .collect();
    std::fs::write(&bits, format!("a,b,y\n{rows}")).unwrap();
    let res = downhill()
        .args([
            "train", "--json", "--epochs", "30", "--task", "regress", "--loss", "bce", "--data",
        ])
        .arg(&bits)
        .arg("--out")
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(v["settings"]["loss"], "bce");
    assert!(v["test"]["loss"].as_f64().unwrap() < 0.69, "{v}");
    let res = downhill()
        .args([
            "train",
            "--json",
            "--epochs",
            "2",
            "--loss",
            "cross-entropy",
            "--data",
        ])
        .arg(&bits)
        .arg("--out")
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert_eq!(json(&res.stdout)["data"]["task"], "classify");

    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    let write = |name: &str, dims: &[u32], data: Vec<u8>| {
        let mut v = vec![0u8, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        std::fs::write(idx.join(name), v).unwrap();
    };
    // 200 training and 50 test "images" of 4×4 pixels whose brightness encodes the label 0..9.
    let images = |n: usize| {
        (0..n)
            .flat_map(|i| [((i % 10) * 25) as u8; 16])
            .collect::<Vec<u8>>()
    };
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    write("train-images-idx3-ubyte", &[200, 4, 4], images(200));
    write("train-labels-idx1-ubyte", &[200], labels(200));
    write("t10k-images-idx3-ubyte", &[50, 4, 4], images(50));
    write("t10k-labels-idx1-ubyte", &[50], labels(50));
    let res = downhill()
        .args(["train", "--json", "--epochs", "2", "--data"])
        .arg(&idx)
        .arg("--out")
        .arg(dir.path().join("i"))
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    assert_eq!(
        (
            v["data"]["features"].as_u64(),
            v["test"]["examples"].as_u64()
        ),
        (Some(16), Some(50))
    );
}

/// The slice through a trained network: the trained weights sit in a basin (the loss at the
/// centre, which must equal `eval`'s, is below every corner's), and the picture is written.
#[test]
fn landscape_of_a_trained_network() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    downhill()
        .args(["train", "--quiet", "--epochs", "5", "--out"])
        .arg(&run)
        .assert()
        .success();
    let model = run.join("model.safetensors");
    let out = dir.path().join("net.svg");
    let res = downhill()
        .args([
            "landscape",
            "--json",
            "--points",
            "9",
            "--data",
            "digits",
            "--model",
        ])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    let center = v["slice"]["center"].as_f64().unwrap();
    let grid = v["slice"]["loss"].as_array().unwrap();
    assert_eq!(grid.len(), 9);
    assert!(
        (grid[4][4].as_f64().unwrap() - center).abs() < 1e-6,
        "the grid's centre is the trained point"
    );
    for (i, j) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
        assert!(
            grid[i][j].as_f64().unwrap() > center,
            "corner ({i}, {j}) below the trained loss"
        );
    }
    let e = downhill()
        .args(["eval", "--json", "--data", "digits", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!((json(&e.stdout)["loss"].as_f64().unwrap() - center).abs() < 1e-9);
    assert!(std::fs::metadata(&out).unwrap().len() > 5_000);
}

/// `--snapshots` keeps the trajectory; the landscape then draws it in its principal plane: one
/// point per snapshot, the last (the final weights) at the origin, shares of variance ≤ 1.
#[test]
fn landscape_draws_the_training_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    downhill()
        .args(["train", "--quiet", "--epochs", "4", "--snapshots", "--out"])
        .arg(&run)
        .assert()
        .success();
    assert!(run.join("trajectory.safetensors").exists());
    let out = dir.path().join("t.svg");
    let res = downhill()
        .args([
            "landscape",
            "--json",
            "--points",
            "7",
            "--data",
            "digits",
            "--model",
        ])
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let v = json(&res.stdout);
    let coords = v["trajectory"]["coords"].as_array().unwrap();
    assert_eq!(coords.len(), 5, "initial weights and 4 epochs");
    let last = &coords[4];
    assert!(last[0].as_f64().unwrap().abs() < 1e-6 && last[1].as_f64().unwrap().abs() < 1e-6);
    let ex: Vec<f64> = v["trajectory"]["explained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(ex[0] >= ex[1] && ex[0] + ex[1] <= 1.0 + 1e-9, "{ex:?}");
    let losses = v["trajectory_loss"].as_array().unwrap();
    assert!(
        losses[4].as_f64().unwrap() < losses[0].as_f64().unwrap(),
        "training lowered the loss"
    );
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("training trajectory")
    );
    // --random-directions ignores the trajectory.
    let res = downhill()
        .args([
            "landscape",
            "--json",
            "--points",
            "5",
            "--random-directions",
            "--data",
            "digits",
            "--model",
        ])
        .arg(run.join("model.safetensors"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(json(&res.stdout)["trajectory"].is_null());
}
