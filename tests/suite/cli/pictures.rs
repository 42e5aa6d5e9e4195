//! Pictures that used to read wrong, checked through the binary: a two-class confusion matrix
//! is wide enough for its title; a regression run's loss curve is on a log axis beside R²; an
//! optimiser has the same colour in both landscape panels.

use crate::common::{downhill, exe};

/// The picture's width, from the SVG's `width="…"`.
/// `downhill ARGS` fails, saying `needle` on stderr.
fn refused(args: &[&str], needle: &str) {
    let out = downhill().args(args).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains(needle), "{args:?}: {err}");
}

fn svg_width(svg: &str) -> f64 {
    svg.split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn two_class_confusion_matrix_fits_its_title() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("two.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..80 {
        s += &format!(
            "{},{},{}\n",
            i % 7,
            i % 5,
            if i % 7 > 3 { "yes" } else { "no" }
        );
    }
    std::fs::write(&csv, s).unwrap();
    let run = dir.path().join("run");
    downhill()
        .args([
            "train", "--quiet", "--epochs", "3", "--hidden", "4", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let svg = std::fs::read_to_string(run.join("confusion.svg")).unwrap();
    // The title starts at x = 130 and is about 270 px wide at its font size.
    assert!(svg.contains("Confusion matrix (test set)"));
    assert!(
        svg_width(&svg) >= 130.0 + 270.0,
        "width {}",
        svg_width(&svg)
    );
}

#[test]
fn regression_curves_have_a_log_loss_axis_and_r2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reg.csv");
    let mut s = String::from("a,b,y\n");
    for i in 0..120 {
        let (a, b) = ((i % 11) as f64, (i % 7) as f64);
        s += &format!("{a},{b},{}\n", 100.0 + 30.0 * a - 12.0 * b);
    }
    std::fs::write(&csv, s).unwrap();
    let run = dir.path().join("run");
    downhill()
        .args([
            "train", "--quiet", "--epochs", "20", "--hidden", "8", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    assert!(
        svg.contains("Loss (log scale)") && svg.contains("R² (last epoch"),
        "{svg:.300}"
    );
    // Every epoch records R², and the last validation R² is the summary's.
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let (a, b) = (
        last["val_r2"].as_f64().unwrap(),
        summary["val"]["r2"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    assert!(lines.lines().all(|l| l.contains("\"train_r2\"")));
}

#[test]
fn an_optimizer_has_one_colour_in_both_landscape_panels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l.svg");
    downhill()
        .args(["landscape", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    let count = |c: &str| svg.matches(&format!("stroke=\"{c}\"")).count();
    // Six optimisers: each colour strokes its path and legend entry on the map, and its curve and
    // legend entry in the loss panel.
    for c in [
        "#E62828", "#FF8C00", "#E63CD2", "#00B4F0", "#28C83C", "#9664FF",
    ] {
        assert_eq!(count(c), 4, "{c}");
    }
}

/// Flags another command would refuse are refused here too (issue 19, item 11): `gradcheck`'s
/// dense-network flags beside `--layers` or a conv `--net` (they were silently ignored), and
/// `landscape --model`'s `--span` when it is NaN or 0, or when the run's trajectory decides the
/// slice (it was accepted and ignored), and the `--model` options without `--model`.
#[test]
fn gradcheck_and_landscape_refuse_what_they_would_ignore() {
    let layers = ["gradcheck", "--layers", "dense 8, relu, dense 3"];
    for (flag, value) in [
        ("--dropout", "0.3"),
        ("--activation", "tanh"),
        ("--hidden", "4"),
    ] {
        let args = [&layers[..], &[flag, value]].concat();
        refused(&args, "has no effect with --layers");
    }
    refused(
        &["gradcheck", "--net", "lenet5", "--dropout", "0.2"],
        "has no effect with --net",
    );
    // The dense network's flags on their own still work.
    downhill()
        .args([
            "gradcheck",
            "--hidden",
            "3",
            "--activation",
            "relu",
            "--dropout",
            "0.2",
        ])
        .assert()
        .success();
    downhill().args(layers).assert().success();

    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("r");
    downhill()
        .args([
            "train", "--data", "digits", "--epochs", "2", "--hidden", "8",
        ])
        .args(["--snapshots", "--quiet", "--out"])
        .arg(&run)
        .assert()
        .success();
    let model = run.join("model.safetensors").display().to_string();
    let pic = d.path().join("l.svg").display().to_string();
    let base = [
        "landscape",
        "--model",
        &model,
        "--data",
        "digits",
        "--points",
        "5",
        "--out",
        &pic,
    ];
    for span in ["nan", "0", "-1", "inf"] {
        let args = [&base[..], &["--span", span, "--random-directions"]].concat();
        refused(&args, "invalid setting span");
    }
    refused(
        &[&base[..], &["--span", "2"]].concat(),
        "has no effect with the training path",
    );
    downhill()
        .args([&base[..], &["--span", "2", "--random-directions"]].concat())
        .assert()
        .success();
    downhill().args(base).assert().success();
    // The training path of another run of the same architecture is refused, not drawn.
    let other = d.path().join("other");
    downhill()
        .args([
            "train", "--data", "digits", "--epochs", "2", "--hidden", "8",
        ])
        .args(["--seed", "7", "--snapshots", "--quiet", "--out"])
        .arg(&other)
        .assert()
        .success();
    std::fs::copy(
        other.join("trajectory.safetensors"),
        run.join("trajectory.safetensors"),
    )
    .unwrap();
    refused(&base, "is not this model's training path");
    downhill()
        .args([&base[..], &["--random-directions"]].concat())
        .assert()
        .success();
    for flag in [
        &["--span", "2"][..],
        &["--random-directions"],
        &["--points", "9"],
    ] {
        let args = [&["landscape"][..], flag].concat();
        refused(&args, "--model");
    }
}

/// The fourth hostile pass (issue 19): `gradcheck` refused what `train` refuses and never
/// passed on NaN (`--l2 nan` gave every error 0 and PASS), nor on a loss that is 0 whatever the
/// weights (cross-entropy over one output); `landscape --model` refuses the surface flags it
/// would ignore, `--lr-sweep` the flags it replaces, and `--start` must be finite; and a
/// command whose output is its result fails when stdout cannot be written.
#[test]
fn gradcheck_and_landscape_refuse_nan_and_flags_they_ignore() {
    for (flag, value, needle) in [
        ("--l2", "nan", "l2 = NaN"),
        ("--l2", "inf", "l2 = inf"),
        ("--l2", "-1", "l2 = -1"),
        ("--dropout", "nan", "dropout = NaN"),
        ("--dropout", "-0.5", "dropout = -0.5"),
        ("--outputs", "1", "cross-entropy over one output"),
    ] {
        refused(&["gradcheck", "--hidden", "3", flag, value], needle);
    }
    downhill()
        .args([
            "gradcheck",
            "--hidden",
            "3",
            "--outputs",
            "1",
            "--loss",
            "mse",
        ])
        .assert()
        .success();
    refused(&["landscape", "--start", "nan,0"], "start = NaN,0");
    refused(
        &["landscape", "--lr-sweep", "0.1", "--optimizers", "adam"],
        "cannot be used",
    );
    refused(
        &["landscape", "--lr-sweep", "0.1", "--lr", "0.5"],
        "cannot be used",
    );
    for flag in [
        &["--steps", "3"][..],
        &["--surface", "beale"],
        &["--lr", "5"],
    ] {
        let args = [
            &["landscape", "--model", "m.safetensors", "--data", "digits"][..],
            flag,
        ]
        .concat();
        refused(&args, "cannot be used with");
    }
    refused(&["landscape", "--data", "digits"], "--model");
    if std::path::Path::new("/dev/full").exists() {
        let full = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
        };
        for args in [&["gradcheck"][..], &["gradcheck", "--json"]] {
            let out = std::process::Command::new(exe())
                .args(args)
                .stdout(full())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(err.contains("standard output"), "{args:?}: {err}");
        }
    }
}

/// A fifth hostile pass (issue 19): at a loss of 10³¹ (`--l2 1e30`) the finite differences are
/// rounding noise; gradcheck says so instead of only blaming backpropagation.
#[test]
fn gradcheck_says_when_the_loss_is_too_large_to_check() {
    let out = downhill()
        .args(["gradcheck", "--hidden", "3", "--l2", "1e30"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("whatever backpropagation computed"), "{err}");
    let ok = downhill()
        .args(["gradcheck", "--hidden", "3"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&ok.get_output().stderr).to_string();
    assert!(!err.contains("note:"), "{err}");
}

/// The fifth hostile pass (issue 19): `landscape --lr` with several rates for all, or one
/// optimiser named twice, kept one silently; `--tol` ≤ 0, an optimiser or a swept rate listed
/// twice were drawn; a picture into a missing folder named a temporary file; and `bench
/// --table-rows 3` failed on its own table with advice about `--target`.
#[test]
fn landscape_and_bench_refuse_what_they_would_resolve_silently() {
    let d = tempfile::tempdir().unwrap();
    let pic = d.path().join("l.svg").display().to_string();
    for (args, needle) in [
        (
            &["--lr", "0.1,0.2,0.3"][..],
            "more than one learning rate for all",
        ),
        (
            &["--lr", "gd=0.1,gd=0.0001", "--optimizers", "gd"],
            "gives gd two learning rates",
        ),
        (&["--tol", "-1"], "invalid setting tol"),
        (&["--tol", "0"], "invalid setting tol"),
        (&["--optimizers", "gd,adam,gd"], "lists gd twice"),
        (&["--lr-sweep", "0.1,0.2,0.1"], "lists 0.1 twice"),
    ] {
        refused(&[&["landscape", "--out", &pic][..], args].concat(), needle);
    }
    downhill()
        .args(["landscape", "--out", &pic, "--lr", "0.01,adam=0.05"])
        .assert()
        .success();
    let missing = d.path().join("nodir").join("l.svg");
    let missing = missing.display().to_string();
    refused(
        &["landscape", "--out", &missing],
        &format!(
            "{missing}: the folder {} does not exist",
            d.path().join("nodir").display()
        ),
    );
    refused(
        &["bench", "--only", "table", "--table-rows", "3"],
        "invalid setting table-rows = 3: must be ≥ 10",
    );
}

/// Sixth hostile pass (issue 19): a trajectory of many snapshots (here 2,500 epochs) is drawn
/// from at most 1,000 of them, evenly spaced; the plane's snapshots² matrix of all of them
/// panicked at 100,000 epochs (an 80 GB allocation).
#[test]
fn a_long_training_path_is_thinned_before_its_plane_is_fitted() {
    let d = tempfile::tempdir().unwrap();
    let mut t = String::from("a,b,y\n");
    for i in 0..40 {
        t += &format!("{},{},{}\n", i % 7, (i * 3) % 5, i % 2);
    }
    std::fs::write(d.path().join("t.csv"), t).unwrap();
    downhill()
        .current_dir(d.path())
        .args([
            "train",
            "--data",
            "t.csv",
            "--hidden",
            "none",
            "--batch-size",
            "full",
        ])
        .args([
            "--epochs",
            "2500",
            "--patience",
            "0",
            "--snapshots",
            "--quiet",
            "--out",
            "r",
        ])
        .assert()
        .success();
    let out = downhill()
        .current_dir(d.path())
        .args([
            "landscape",
            "--model",
            "r/model.safetensors",
            "--data",
            "t.csv",
        ])
        .args(["--points", "3", "--out", "l.svg"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("training path of 1000 snapshots"), "{text}");
}

/// A run's weights and its trajectory file, trained on a tiny table with `--snapshots`.
fn run_with_path(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let csv = dir.join("t.csv");
    let mut s = String::from("a,b,y\n");
    for i in 0..60 {
        let (a, b) = (
            ((i * 37) % 17) as f64 / 8.0 - 1.0,
            ((i * 11) % 13) as f64 / 6.0 - 1.0,
        );
        s += &format!("{a},{b},{}\n", u8::from(a + b > 0.0));
    }
    std::fs::write(&csv, s).unwrap();
    let run = dir.join("run");
    downhill()
        .args(["train", "--epochs", "4", "--patience", "0", "--hidden", "3"])
        .args(["--snapshots", "--quiet", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    (csv, run)
}

/// Seventh hostile pass, item 11: a snapshot that is not a finite number, wherever it is in the
/// trajectory, is an error naming the file and the snapshot (it was "invalid setting snapshots
/// = NoConvergence" at the first snapshot, and dropped by the thinning in the middle of a long
/// path).
#[test]
fn a_non_finite_snapshot_is_refused_naming_the_file_and_the_snapshot() {
    let d = tempfile::tempdir().unwrap();
    let (csv, run) = run_with_path(d.path());
    let model = run.join("model.safetensors");
    let traj = run.join("trajectory.safetensors");
    let params = downhill::io::load(&model).unwrap().net.param_count();
    let snaps = downhill::landscape::trajectory::load(&traj, params).unwrap();
    assert_eq!(snaps.len(), 5);
    for (k, v, said) in [
        (
            0,
            f32::NAN,
            "snapshot 1 of 5 (the weights before training), value 4: NaN",
        ),
        (
            2,
            f32::INFINITY,
            "snapshot 3 of 5 (the weights after epoch 2), value 4: inf",
        ),
    ] {
        let mut bad = snaps.clone();
        bad[k][3] = v;
        downhill::landscape::trajectory::save(&traj, &bad).unwrap();
        let out = d.path().join("t.svg");
        let args = [
            "landscape",
            "--model",
            model.to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        refused(
            &args,
            &format!("{}: tensor trajectory, {said}", traj.display()),
        );
        assert!(!out.exists());
    }
}

/// Seventh hostile pass, item 13: `landscape --seed` is refused where nothing random reads it —
/// a surface without `--noise`, a model's slice along its training path — and works where
/// something does (the picture was byte-identical to `--seed 0`).
#[test]
fn landscape_refuses_a_seed_nothing_reads() {
    let d = tempfile::tempdir().unwrap();
    let svg = d.path().join("s.svg");
    let s = svg.to_str().unwrap();
    refused(
        &["landscape", "--seed", "5", "--out", s],
        "invalid setting seed = 5: seeds the gradient noise only",
    );
    downhill()
        .args([
            "landscape",
            "--seed",
            "5",
            "--noise",
            "0.1",
            "--steps",
            "50",
            "--out",
            s,
        ])
        .assert()
        .success();
    let (csv, run) = run_with_path(d.path());
    let model = run.join("model.safetensors");
    let base = [
        "landscape",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--points",
        "5",
        "--out",
        s,
        "--seed",
        "3",
    ];
    refused(
        &base,
        "invalid setting seed = 3: has no effect with the training path",
    );
    downhill()
        .args([&base[..], &["--random-directions"]].concat())
        .assert()
        .success();
}

/// Tenth hostile pass, item 1: `landscape --model` runs eval's checks before it draws. Data whose
/// outputs overflow float32 (a cell of 3·10³⁸) panicked in the plotting library, handed a NaN
/// range; it is refused naming the cell, as eval refuses it. A model edited so one weight is
/// 3·10³⁸ (a NaN loss at the trained weights) was drawn with exit 0; it is refused as eval
/// refuses it.
#[test]
fn landscape_refuses_what_eval_refuses() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    let mut s = String::from("x1,x2,y\n");
    for i in 0..120 {
        let (a, b) = (
            ((i * 37) % 17) as f64 / 8.0 - 1.0,
            ((i * 11) % 13) as f64 / 6.0 - 1.0,
        );
        s += &format!("{a},{b},{}\n", if a > 0.0 { "p" } else { "n" });
    }
    std::fs::write(&csv, s).unwrap();
    let run = d.path().join("run");
    downhill()
        .args(["train", "--epochs", "3", "--quiet", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let model = run.join("model.safetensors");
    let big = d.path().join("big.csv");
    std::fs::write(&big, "x1,x2,y\n3e38,0.5,p\n-3e38,0.5,n\n").unwrap();
    let out = d.path().join("ls.svg");
    for cmd in ["eval", "landscape"] {
        let mut args = vec![cmd, "--model", model.to_str().unwrap()];
        args.extend(["--data", big.to_str().unwrap()]);
        if cmd == "landscape" {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        let o = downhill().args(&args).output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {e}");
        assert!(
            e.contains("big.csv: line 2, column x1: 3e38") && !e.contains("panicked"),
            "{cmd}: {e}"
        );
    }
    assert!(!out.exists());
    // One weight of the first layer 3·10³⁸: the outputs overflow on ordinary rows.
    let bytes = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let at = 8 + n + header["0.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
    let mut edited = bytes.clone();
    edited[at..at + 4].copy_from_slice(&3e38f32.to_le_bytes());
    let bad = run.join("bad.safetensors");
    std::fs::write(&bad, edited).unwrap();
    for cmd in ["eval", "landscape"] {
        let mut args = vec![cmd, "--model", bad.to_str().unwrap()];
        args.extend(["--data", csv.to_str().unwrap()]);
        if cmd == "landscape" {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        refused(&args, "overflow float32 (was the file edited?)");
    }
    assert!(!out.exists());
}
