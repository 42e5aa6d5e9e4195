//! Issue 11's training half, tried as a hostile user would, through the binary: metrics that
//! are undefined, early-stopping flags that cannot act, `lr = "auto"` in a config file, and the
//! same seed twice with `--lr auto` and early stopping.

use crate::common::downhill;
use std::path::{Path, PathBuf};

/// 200 rows, three features, label a + b > 0 (deterministic, no generator needed).
fn table(dir: &Path) -> PathBuf {
    let mut s = String::from("a,b,c,y\n");
    for i in 0..200 {
        let a = ((i * 37) % 101) as f64 / 50.0 - 1.0;
        let b = ((i * 61) % 97) as f64 / 48.0 - 1.0;
        let c = ((i * 13) % 89) as f64 / 44.0 - 1.0;
        s += &format!("{a},{b},{c},{}\n", u8::from(a + b > 0.0));
    }
    let p = dir.join("t.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn json(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// A test set holding one class only: ROC-AUC is undefined (scikit-learn raises). It is said so,
/// in the text report, in `--json` and by `eval` — never a silent gap or a NaN.
#[test]
fn roc_auc_of_a_one_class_test_set_is_reported_undefined() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let test = d.path().join("ones.csv");
    std::fs::write(
        &test,
        "a,b,c,y\n0.5,0.5,0,1\n0.9,0.1,0.2,1\n0.2,0.3,-0.5,1\n",
    )
    .unwrap();
    let run = d.path().join("r");
    let base = [
        "train", "--epochs", "2", "--hidden", "4", "--seed", "1", "--data",
    ];
    let out = downhill()
        .args(base)
        .arg(&data)
        .arg("--test")
        .arg(&test)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let line = text.lines().find(|l| l.starts_with("test ")).unwrap();
    assert!(
        line.contains("ROC-AUC undefined (one class only)"),
        "{line}"
    );
    let val = text.lines().find(|l| l.starts_with("val ")).unwrap();
    assert!(
        val.contains("ROC-AUC 0.") || val.contains("ROC-AUC 1."),
        "{val}"
    );

    let v = json(
        &downhill()
            .args(base)
            .arg(&data)
            .arg("--test")
            .arg(&test)
            .arg("--out")
            .arg(d.path().join("r2"))
            .args(["--json", "--quiet"])
            .assert()
            .success(),
    );
    let t = &v["test"];
    assert!(t.get("roc_auc").is_none(), "{t}");
    assert_eq!(
        t["roc_auc_undefined"],
        "the set holds examples of one class only"
    );
    assert!(v["val"]["roc_auc"].is_f64());
    assert!(v["val"].get("roc_auc_undefined").is_none());

    let out = downhill()
        .arg("eval")
        .arg("--model")
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&test)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("ROC-AUC   undefined (the set holds examples of one class only)"),
        "{text}"
    );
}

/// `--monitor accuracy` on a regression used to be accepted, recorded, and silently replaced by
/// the loss; `--patience N` without a validation split used to be ignored. Both are refused,
/// naming the flag.
#[test]
fn early_stopping_flags_that_cannot_act_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let out = downhill()
        .args([
            "train",
            "--epochs",
            "1",
            "--task",
            "regress",
            "--monitor",
            "accuracy",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(d.path().join("a"))
        .assert()
        .failure()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("monitor = accuracy"), "{err}");
    assert!(err.contains("--monitor loss"), "{err}");

    let out = downhill()
        .args([
            "train",
            "--epochs",
            "1",
            "--patience",
            "5",
            "--val-fraction",
            "0",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(d.path().join("b"))
        .assert()
        .failure()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("patience = 5"), "{err}");
    assert!(err.contains("validation split"), "{err}");

    // Still fine: --patience 0 without a split, the default without a split, --monitor loss on
    // a regression.
    for (i, extra) in [
        &["--patience", "0", "--val-fraction", "0"][..],
        &["--val-fraction", "0"][..],
        &["--task", "regress", "--monitor", "loss"][..],
    ]
    .iter()
    .enumerate()
    {
        downhill()
            .args(["train", "--epochs", "1", "--quiet"])
            .args(*extra)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(d.path().join(format!("ok{i}")))
            .assert()
            .success();
    }
}

/// Config keys are the long flag names, so `lr = "auto"` is what a user writes for `--lr auto`;
/// it used to fail with "expected f64". A flag still overrides it.
#[test]
fn config_lr_auto_is_read_like_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "lr = \"auto\"\nepochs = 1\nhidden = [4]\n").unwrap();
    let run = |name: &str, extra: &[&str]| {
        json(
            &downhill()
                .args(["train", "--json", "--quiet", "--config"])
                .arg(&cfg)
                .arg("--data")
                .arg(&data)
                .arg("--out")
                .arg(d.path().join(name))
                .args(extra)
                .assert()
                .success(),
        )
    };
    let v = run("a", &[]);
    assert_eq!(v["settings"]["lr-auto"], true);
    assert!(v["lr_find"].is_object(), "{}", v["lr_find"]);
    let v = run("b", &["--lr", "0.01"]);
    assert_eq!(v["settings"]["lr-auto"], false);
    assert_eq!(v["settings"]["lr"], 0.01);
    // A bad value is still named.
    std::fs::write(&cfg, "lr = \"fast\"\n").unwrap();
    let out = downhill()
        .args(["train", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("c.toml") && err.contains("fast"), "{err}");
}

/// One `--seed` fixes everything, also with `--lr auto` (the range test) and early stopping:
/// the chosen rate, the stop and every figure are identical on a second run.
#[test]
fn same_seed_with_lr_auto_and_early_stopping_gives_identical_figures() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let run = |name: &str| {
        json(
            &downhill()
                .args([
                    "train",
                    "--json",
                    "--quiet",
                    "--lr",
                    "auto",
                    "--seed",
                    "7",
                    "--hidden",
                    "8",
                    "--epochs",
                    "40",
                    "--patience",
                    "3",
                    "--batch-size",
                    "32",
                    "--data",
                ])
                .arg(&data)
                .arg("--out")
                .arg(d.path().join(name))
                .assert()
                .success(),
        )
    };
    let (a, b) = (run("a"), run("b"));
    for key in [
        "train",
        "val",
        "test",
        "epochs",
        "best_epoch",
        "stop_reason",
        "lr_find",
    ] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    assert_eq!(a["settings"]["lr"], b["settings"]["lr"]);
    assert!(a["settings"]["lr"].as_f64().unwrap() > 0.0);
}

/// A BCE model's outputs are logits of 0/1 targets: the run used to report their RMSE and R²
/// (R² −20 on a good model) and `eval` showed only those. Now the run reports accuracy,
/// macro-F1 and ROC-AUC only, and `eval` the same figures.
#[test]
fn bce_reports_decision_figures_not_the_rmse_of_logits() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let run = d.path().join("r");
    let v = json(
        &downhill()
            .args([
                "train", "--json", "--quiet", "--epochs", "60", "--lr", "0.05", "--hidden", "8",
                "--task", "regress", "--loss", "bce", "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&run)
            .assert()
            .success(),
    );
    let t = &v["test"];
    assert!(t.get("rmse").is_none() && t.get("r2").is_none(), "{t}");
    assert!(t["accuracy"].as_f64().unwrap() > 0.8, "{t}");
    assert!(t["macro_f1"].is_f64() && t["roc_auc"].is_f64(), "{t}");
    let out = downhill()
        .arg("eval")
        .arg("--model")
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for needle in ["accuracy  ", "macro-F1  ", "ROC-AUC   "] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(
        !text.contains("R²") && !text.contains("undefined"),
        "{text}"
    );
    let e = json(
        &downhill()
            .arg("eval")
            .arg("--json")
            .arg("--model")
            .arg(run.join("model.safetensors"))
            .arg("--data")
            .arg(&data)
            .assert()
            .success(),
    );
    let acc = e["accuracy"].as_f64().unwrap();
    assert!((acc - text_figure(&text, "accuracy")).abs() < 1e-4, "{acc}");
    assert!(e["roc_auc"].is_f64());
}

fn text_figure(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(name)).unwrap();
    let v: f64 = line[name.len()..].trim().parse().unwrap();
    (v * 1e4).round() / 1e4
}

/// A 2-row table: the 10% validation and 20% test shares hold no row. They used to be reported
/// as figures on 0 examples, and early stopping watched the empty validation set and restored
/// the first epoch's weights after 200 epochs (training accuracy 0). Now there is no split.
#[test]
fn a_two_row_table_has_no_empty_splits_and_keeps_its_training() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("two.csv");
    std::fs::write(&data, "a,b,y\n-1,0.5,n\n1,-0.5,p\n").unwrap();
    let v = json(
        &downhill()
            .args(["train", "--json", "--quiet", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(d.path().join("r"))
            .assert()
            .success(),
    );
    assert!(v.get("val").is_none_or(|x| x.is_null()), "{}", v["val"]);
    assert!(v.get("test").is_none_or(|x| x.is_null()), "{}", v["test"]);
    assert_eq!(v["settings"]["patience"], 0);
    assert_eq!(v["train"]["accuracy"], 1.0, "{}", v["train"]);
    assert_eq!(v["best_epoch"], v["epochs"]);
    // Asking for early stopping there is refused, saying why.
    let out = downhill()
        .args(["train", "--patience", "3", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(d.path().join("p"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("validation split"), "{err}");
}

/// A test set whose regression target does not vary (3·10⁸ and the next f32 up, 3·10⁸ + 32):
/// R² was −10⁵-ish, a rounding artefact. It is reported undefined, with the reason, in the text
/// report, in `--json` (no `r2` key) and by `eval`; RMSE is still there.
#[test]
fn r2_of_targets_that_do_not_vary_is_reported_undefined() {
    let d = tempfile::tempdir().unwrap();
    let mut train = String::from("a,b,y\n");
    for i in 0..120 {
        let (a, b) = (
            ((i * 37) % 101) as f64 / 50.0 - 1.0,
            ((i * 61) % 97) as f64 / 48.0 - 1.0,
        );
        train += &format!("{a},{b},{}\n", 3e8 + 1e7 * (a + b));
    }
    let mut flat = String::from("a,b,y\n");
    for i in 0..10 {
        flat += &format!(
            "{},0.1,{}\n",
            i as f64 / 10.0,
            if i % 2 == 0 { 300000000 } else { 300000032 }
        );
    }
    let (data, test) = (d.path().join("t.csv"), d.path().join("flat.csv"));
    std::fs::write(&data, train).unwrap();
    std::fs::write(&test, flat).unwrap();
    let run = d.path().join("r");
    let v = json(
        &downhill()
            .args(["train", "--json", "--quiet", "--epochs", "3", "--data"])
            .arg(&data)
            .arg("--test")
            .arg(&test)
            .arg("--out")
            .arg(&run)
            .assert()
            .success(),
    );
    let t = &v["test"];
    // Undefined R² is a `null` key beside the reason (issue 19, item 13), not a missing key.
    assert!(t["r2"].is_null() && t.get("r2").is_some(), "{t}");
    assert!(t["rmse"].is_f64(), "{t}");
    let why = t["r2_undefined"].as_str().unwrap();
    assert!(why.contains("does not vary"), "{why}");
    assert!(v["train"]["r2"].is_f64() && v["train"].get("r2_undefined").is_none());
    let out = downhill()
        .arg("eval")
        .arg("--model")
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&test)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("R²        undefined (the target does not vary"),
        "{text}"
    );
    assert!(!text.contains("NaN"), "{text}");
    let out = downhill()
        .args(["eval", "--json", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&test)
        .assert()
        .success();
    let e: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(e["r2"].is_null() && e.get("r2").is_some(), "{e}");
    assert!(
        e["r2_undefined"]
            .as_str()
            .unwrap()
            .contains("does not vary"),
        "{e}"
    );
}

/// `lr-find --plot` into a folder that does not exist used to run the whole range test and then
/// fail naming a temporary file; it is refused first, naming the flag and the folder.
#[test]
fn lr_find_plot_into_a_missing_folder_is_refused_before_the_test() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let plot = d.path().join("no/such/folder/lr.svg");
    let out = downhill()
        .args(["lr-find", "--data"])
        .arg(&data)
        .arg("--plot")
        .arg(&plot)
        .assert()
        .failure()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("plot =") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains(".downhill-"), "{err}");
}

/// A category cell so long that the model file's header would pass safetensors' 100 MB: the run
/// fails before training, naming the file and the column (issue 19, item 5: it trained to the
/// end and then failed with "<model>: serialising: header too large", the work lost).
#[test]
fn a_model_file_that_could_not_be_written_fails_before_training() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.csv");
    let mut s = String::from("x,colour,y\n");
    for i in 0..40 {
        let c = if i == 3 {
            "Z".repeat(101_000_000)
        } else {
            ["red", "blue"][i % 2].to_string()
        };
        s += &format!("{i},{c},{}\n", i % 2);
    }
    std::fs::write(&p, s).unwrap();
    let run = d.path().join("r");
    let out = downhill()
        .args(["train", "--epochs", "2", "--quiet", "--data"])
        .arg(&p)
        .arg("--out")
        .arg(&run)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("big.csv: column colour:") && err.contains("100 MB"),
        "{}",
        &err[..err.len().min(400)]
    );
    assert!(
        err.len() < 1000,
        "the cell is not quoted: {} bytes",
        err.len()
    );
    assert!(!run.exists());
}

fn failure(args: &[&str], dir: &Path) -> String {
    let out = downhill().current_dir(dir).args(args).assert().failure();
    String::from_utf8_lossy(&out.get_output().stderr).to_string()
}

/// Issue 19, item 13: messages name the right place and the right cause — line numbers after
/// blank lines, TOML errors by line and column, a multi-line TOML `layers`, a target that varies
/// below float32's resolution, a loss that is not finite before any update, a missing pixel
/// under `--image-shape`, a huge cell cut short, and a bce target by its file line.
#[test]
fn messages_name_the_place_and_the_cause() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w("p.csv", "a,b,y\n1,2,0\n2,3,1\n3,1,0\n4,4,1\n5,2,0\n6,1,1\n");
    let quiet = ["--quiet", "--val-fraction", "0", "--test-fraction", "0"];
    downhill()
        .current_dir(dir)
        .args(["train", "--data", "p.csv", "--target", "y", "--epochs", "1"])
        .args(quiet)
        .args(["--out", "p"])
        .assert()
        .success();

    // Line 6, after three blank lines (was "line 4").
    w("q.csv", "a,b,y\n1,2,0\n\n\n\n2,x,1\n");
    let err = failure(
        &["eval", "--model", "p/model.safetensors", "--data", "q.csv"],
        dir,
    );
    assert!(err.contains("q.csv: line 6, column b:"), "{err}");

    // TOML: line and column, not a byte offset, also beside lr = "auto".
    w("c.toml", "epochs = 3\nlr = [\n");
    let err = failure(&["train", "--config", "c.toml"], dir);
    assert!(err.contains("c.toml: line 2, column 7:"), "{err}");
    w("c2.toml", "epochs = 2\nlr = \"auto\"\nhidden = \"x\"\n");
    let err = failure(&["train", "--config", "c2.toml"], dir);
    assert!(err.contains("c2.toml: line 3, column 10:"), "{err}");
    // A multi-line string of layers, one per line (was "item 3 is empty").
    w(
        "c3.toml",
        "epochs = 1\ntarget = \"y\"\nlayers = \"\"\"\ndense 8, relu,\ndense 2\n\"\"\"\n",
    );
    downhill()
        .current_dir(dir)
        .args(["train", "--data", "p.csv", "--config", "c3.toml"])
        .args(quiet)
        .args(["--out", "c3"])
        .assert()
        .success();

    // A target that varies only below float32's resolution is not called constant.
    let mut big = String::from("x,y\n");
    for i in 0..50 {
        big += &format!("{i},{}\n", 1_000_000_000 + i % 5);
    }
    w("big.csv", &big);
    let err = failure(
        &[
            "train", "--data", "big.csv", "--target", "y", "--task", "regress",
        ],
        dir,
    );
    assert!(
        err.contains("varies only from 1000000000 to 1000000004")
            && err.contains("steps of 64")
            && !err.contains("on every row"),
        "{err}"
    );

    // Absurd starting weights: the loss is not finite before any update; no rate is blamed.
    let mut model = downhill::io::load(&dir.join("p/model.safetensors")).unwrap();
    model.net.params_mut().iter_mut().for_each(|v| *v = 3e37);
    downhill::io::save(&dir.join("huge.safetensors"), &model.net, &model.meta).unwrap();
    for lr in ["0.01", "0"] {
        let err = failure(
            &[
                "train",
                "--data",
                "p.csv",
                "--target",
                "y",
                "--init",
                "huge.safetensors",
                "--lr",
                lr,
                "--out",
                "h",
            ],
            dir,
        );
        assert!(
            err.contains("no learning rate is to blame") && !err.contains("try a smaller"),
            "{err}"
        );
    }
    assert!(!dir.join("h").exists());

    // A missing pixel under --image-shape is filled, with no hidden indicator feature.
    let mut im = (0..16).map(|i| format!("p{i},")).collect::<String>() + "y\n";
    for k in 0..40 {
        for i in 0..16 {
            let v = (k * 7 + i * 13) % 256;
            im += &if k == 5 && i == 3 {
                ",".into()
            } else {
                format!("{v},")
            };
        }
        im += &format!("{}\n", k % 2);
    }
    w("im.csv", &im);
    downhill()
        .current_dir(dir)
        .args(["train", "--data", "im.csv", "--image-shape", "1x4x4"])
        .args([
            "--layers",
            "conv 2 3, relu, flatten, dense 2",
            "--epochs",
            "1",
        ])
        .args(quiet)
        .args(["--out", "im"])
        .assert()
        .success();

    // A 20 MB cell is quoted by its first characters and its size.
    let mut cell = String::from("x,y\n");
    for i in 0..60 {
        let x = if i == 7 {
            "Q".repeat(20_000_000)
        } else {
            i.to_string()
        };
        cell += &format!("{x},{}\n", i % 2);
    }
    w("cell.csv", &cell);
    let err = failure(&["train", "--data", "cell.csv", "--target", "y"], dir);
    assert!(
        err.len() < 1000 && err.contains("line 9, column x") && err.contains("(20000000 bytes)"),
        "{}",
        &err[..err.len().min(500)]
    );

    // A bce target out of range by its file line (after a blank one) and in the test file.
    w("bce.csv", "a,y\n1,0\n2,1\n\n3,3\n4,0.5\n5,1\n6,0\n");
    let bce = [
        "train", "--target", "y", "--task", "regress", "--loss", "bce",
    ];
    let err = failure(&[&bce[..], &["--data", "bce.csv"]].concat(), dir);
    assert!(
        err.contains("bce.csv: line 5, column y: the target is 3"),
        "{err}"
    );
    w("bce2.csv", "a,y\n1,0\n2,1\n3,0\n4,0.5\n5,1\n6,0\n");
    w("bcet.csv", "y,a\n1,0\n\n2,1\n");
    let err = failure(
        &[&bce[..], &["--data", "bce2.csv", "--test", "bcet.csv"]].concat(),
        dir,
    );
    assert!(
        err.contains("bcet.csv: line 4, column y: the target is 2"),
        "{err}"
    );
}

/// The fourth hostile pass (issue 19): `bench` checks its sizes before generating data (an
/// `--examples` of 10⁸ aborted with exit 134), `--out DIR/unfinished` of a run folder is refused
/// (it took over DIR, and resuming it replaced DIR's model), and bce on targets read as classes
/// says to add `--task regress`.
#[test]
fn sizes_staging_folders_and_bce_classes_are_refused_clearly() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let err = failure(
        &[
            "bench",
            "--data",
            "synthetic",
            "--examples",
            "100000000000",
            "--epochs",
            "1",
        ],
        dir,
    );
    assert!(
        err.contains("--examples") && err.contains("would need"),
        "{err}"
    );
    let err = failure(
        &["bench", "--table-rows", "99999999999", "--only", "table"],
        dir,
    );
    assert!(
        err.contains("--table-rows") && err.contains("would need"),
        "{err}"
    );

    std::fs::write(dir.join("p.csv"), "a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n").unwrap();
    let train = [
        "train", "--data", "p.csv", "--target", "y", "--epochs", "1", "--quiet",
    ];
    downhill()
        .current_dir(dir)
        .args(train)
        .args(["--out", "good"])
        .assert()
        .success();
    let model = std::fs::read(dir.join("good/model.safetensors")).unwrap();
    let err = failure(&[&train[..], &["--out", "good/unfinished"]].concat(), dir);
    assert!(
        err.contains("is the staging folder of the run in good"),
        "{err}"
    );
    assert!(!dir.join("good/unfinished").exists());
    assert_eq!(
        std::fs::read(dir.join("good/model.safetensors")).unwrap(),
        model
    );

    let err = failure(&[&train[..], &["--loss", "bce"]].concat(), dir);
    assert!(
        err.contains("loss = bce") && err.contains("--task regress"),
        "{err}"
    );
}

/// `eval --data digits` of a model trained on the digits with `--test-fraction 0` has no
/// held-out part: it says its figures include the training examples (the fourth hostile pass:
/// accuracy 0.9946 on 5,000 digits, 4,500 of them trained on, with no word of it).
#[test]
fn eval_says_when_its_examples_include_the_training_set() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("r");
    let train = ["train", "--epochs", "1", "--hidden", "8", "--quiet"];
    downhill()
        .args(train)
        .args(["--test-fraction", "0", "--out"])
        .arg(&run)
        .assert()
        .success();
    let model = run.join("model.safetensors");
    let out = downhill()
        .args(["eval", "--json", "--data", "digits", "--model"])
        .arg(&model)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("its training examples included"), "{err}");
    assert_eq!(json(&out)["examples"], 5000);
    assert_eq!(json(&out)["notes"]["includes_training"], true);
    // With the default held-out part there is no such note.
    let run2 = d.path().join("r2");
    downhill()
        .args(train)
        .arg("--out")
        .arg(&run2)
        .assert()
        .success();
    let out = downhill()
        .args(["eval", "--json", "--data", "digits", "--model"])
        .arg(run2.join("model.safetensors"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!err.contains("training examples included"), "{err}");
    assert_eq!(json(&out)["examples"], 1000);
}

/// Issue 19, fourth pass: a config file that answers one question twice (`lr` and `lr-auto`,
/// `threads` and `threads-auto`, `test` and `test-fraction`) is refused by its line, as are
/// `--test` with `--test-fraction`; a flag replaces the file's answer of either kind; and no
/// hidden layer is said as `--hidden none` (`hidden = []`), the same network.
#[test]
fn one_setting_given_two_ways_is_refused_and_no_hidden_layer_is_said() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w("a.toml", "epochs = 1\nlr = 0.1\nlr-auto = true\n");
    w("b.toml", "threads = 2\n\"threads-auto\" = true\n");
    w("c.toml", "test = \"x.csv\"\ntest-fraction = 0.3\n");
    for (file, needle) in [
        (
            "a.toml",
            "a.toml: line 3, key lr-auto: contradicts the key lr",
        ),
        (
            "b.toml",
            "b.toml: line 2, key threads-auto: contradicts the key threads",
        ),
        (
            "c.toml",
            "c.toml: line 2, key test-fraction: contradicts the key test",
        ),
    ] {
        let err = failure(&["train", "--data", "digits", "--config", file], dir);
        assert!(err.contains(needle), "{file}: {err}");
    }
    let err = failure(
        &[
            "train",
            "--data",
            "digits",
            "--test",
            "x.csv",
            "--test-fraction",
            "0.1",
        ],
        dir,
    );
    assert!(err.contains("cannot be used with"), "{err}");
    w("d.toml", "lr = \"auto\"\nlr-auto = false\n");
    let err = failure(&["train", "--data", "digits", "--config", "d.toml"], dir);
    assert!(err.contains("d.toml: key lr-auto: is false"), "{err}");
    // `threads = "auto"` reads as `lr = "auto"` does.
    w("e.toml", "threads = \"auto\"\nepochs = 1\n");
    downhill()
        .current_dir(dir)
        .args([
            "train", "--data", "digits", "--config", "e.toml", "--quiet", "--out", "te",
        ])
        .assert()
        .success();
    for flag in [["--dropout", "0.5"], ["--activation", "tanh"]] {
        let err = failure(
            &[
                "train", "--data", "digits", "--hidden", "none", flag[0], flag[1],
            ],
            dir,
        );
        assert!(
            err.contains("has no effect with --hidden none"),
            "{flag:?}: {err}"
        );
    }
    // The flag replaces the file's test file: the split is the flag's.
    w("t.toml", "test = \"missing.csv\"\nepochs = 1\n");
    let out = downhill()
        .current_dir(dir)
        .args(["train", "--data", "digits", "--config", "t.toml"])
        .args(["--test-fraction", "0.5", "--json", "--out", "r"])
        .assert()
        .success();
    assert_eq!(json(&out)["data"]["test_examples"], 2500);
    // `--hidden none` and `hidden = []`: the same model without a hidden layer.
    w("h.toml", "hidden = []\nepochs = 1\n");
    let run = |extra: &[&str], out: &str| {
        downhill()
            .current_dir(dir)
            .args([
                "train", "--data", "digits", "--quiet", "--epochs", "1", "--out", out,
            ])
            .args(extra)
            .assert()
            .success();
        let m = downhill::io::load(&dir.join(out).join("model.safetensors")).unwrap();
        m.net
            .params()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    };
    let a = run(&["--hidden", "none"], "n1");
    let b = run(&["--config", "h.toml"], "n2");
    assert_eq!(a, b);
    let model = downhill::io::load(&dir.join("n1/model.safetensors")).unwrap();
    assert_eq!(model.net.param_count(), 784 * 10 + 10);
    let err = failure(&["train", "--data", "digits", "--hidden", "3,x"], dir);
    assert!(err.contains("`x` is not a width"), "{err}");
}

/// Issue 19, fourth pass: a bce model on soft targets (probabilities such as 0.3) has no
/// accuracy, F1 or ROC-AUC — they counted 0.3 as class 0 — in `train`'s figures, its per-epoch
/// log and `eval`; with 0/1 targets they are all there.
#[test]
fn soft_bce_targets_have_no_accuracy() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let table = |name: &str, soft: bool| {
        let mut t = String::from("a,b,y\n");
        for i in 0..80 {
            let (a, b) = ((i * 37 % 17) as f64 / 17.0, (i * 11 % 13) as f64 / 13.0);
            let y = if soft {
                (a + b) / 2.0
            } else {
                f64::from(u8::from(a > b))
            };
            t += &format!("{a:.4},{b:.4},{y:.4}\n");
        }
        std::fs::write(dir.join(name), t).unwrap();
    };
    table("soft.csv", true);
    table("hard.csv", false);
    for (file, hard) in [("soft.csv", false), ("hard.csv", true)] {
        let out = format!("r-{file}");
        let args = [
            "train", "--data", file, "--loss", "bce", "--task", "regress",
        ];
        let run = downhill()
            .current_dir(dir)
            .args(args)
            .args(["--epochs", "2", "--json", "--out", &out])
            .assert()
            .success();
        let s = json(&run);
        assert_eq!(s["train"]["accuracy"].is_number(), hard, "{file}: {s}");
        assert_eq!(s["test"]["macro_f1"].is_number(), hard, "{file}: {s}");
        assert!(s["test"]["roc_auc_undefined"].is_null(), "{file}: {s}");
        let log = std::fs::read_to_string(dir.join(&out).join("metrics.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        assert_eq!(first["train_accuracy"].is_number(), hard, "{file}: {first}");
        let model = format!("{out}/model.safetensors");
        let e = downhill()
            .current_dir(dir)
            .args(["eval", "--model", &model, "--data", file, "--json"])
            .assert()
            .success();
        let e = json(&e);
        assert_eq!(e["accuracy"].is_number(), hard, "{file}: {e}");
        assert!(e["roc_auc_undefined"].is_null(), "{file}: {e}");
    }
}

/// Issue 19, fourth pass: `--init` with weights far beyond any fresh or trained network's (a
/// finite 1e20) trains, but says which tensor holds them; ordinary weights get no note.
#[test]
fn absurd_init_weights_are_noted() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let base = [
        "train", "--data", "digits", "--hidden", "4", "--epochs", "1",
    ];
    downhill()
        .current_dir(dir)
        .args(base)
        .args(["--quiet", "--out", "a"])
        .assert()
        .success();
    let mut model = downhill::io::load(&dir.join("a/model.safetensors")).unwrap();
    let quiet = downhill()
        .current_dir(dir)
        .args(base)
        .args(["--init", "a/model.safetensors", "--out", "b"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&quiet.get_output().stderr).to_string();
    assert!(!err.contains("far beyond"), "{err}");
    let tensors = model.net.tensors();
    let n = tensors
        .iter()
        .find(|t| t.name == "2.weight")
        .unwrap()
        .range
        .start;
    model.net.params_mut()[n + 3] = -1e20;
    downhill::io::save(&dir.join("big.safetensors"), &model.net, &model.meta).unwrap();
    let out = downhill()
        .current_dir(dir)
        .args(base)
        .args(["--init", "big.safetensors", "--out", "c"])
        .assert();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("--init big.safetensors: tensor 2.weight holds a weight of size 1.000e20"),
        "{err}"
    );
}

/// The fifth hostile pass (issue 19): `predict` with a model trained on a file without a header
/// and an input file with one said `the column column 0 is numeric`; it now says what to do.
#[test]
fn a_header_given_to_a_headerless_model_is_named() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let mut t = String::new();
    for i in 0..60 {
        t += &format!("{},{},{}\n", i % 7, (i * 3) % 11, ["p", "n"][i % 2]);
    }
    std::fs::write(dir.join("nh.csv"), &t).unwrap();
    std::fs::write(dir.join("h.csv"), format!("a,b,label\n{t}")).unwrap();
    downhill()
        .current_dir(dir)
        .args([
            "train", "--data", "nh.csv", "--epochs", "1", "--quiet", "--out", "r",
        ])
        .assert()
        .success();
    let err = failure(
        &[
            "predict",
            "--model",
            "r/model.safetensors",
            "--input",
            "h.csv",
        ],
        dir,
    );
    assert!(err.contains("h.csv: line 1"), "{err}");
    assert!(
        err.contains("read without a header: if this first line is one, remove it"),
        "{err}"
    );
    assert!(!err.contains("column column"), "{err}");
}

/// Seventh hostile pass, item 6: with `--layers` the default initialiser follows the spec's
/// activations as it follows `--activation` (he-normal for the ReLU family, glorot-uniform
/// otherwise): a tanh `--layers` network starts from the weights of `--hidden 5 --activation
/// tanh`, a relu one from those of `--hidden 5` (the tanh network got he-normal, from the
/// unused `--activation` default).
#[test]
fn the_default_initialiser_follows_the_activations_of_layers() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let start = |flags: &[&str], out: &str| {
        let run = d.path().join(out);
        downhill()
            .args([
                "train", "--epochs", "1", "--lr", "0", "--quiet", "--seed", "3",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&run)
            .args(flags)
            .assert()
            .success();
        let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
        m.net
            .params()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    };
    let tanh = start(&["--layers", "dense 5, tanh, dense"], "lt");
    assert_eq!(
        tanh,
        start(&["--hidden", "5", "--activation", "tanh"], "ht")
    );
    let relu = start(&["--layers", "dense 5, relu, dense"], "lr");
    assert_eq!(relu, start(&["--hidden", "5"], "hr"));
    assert_ne!(tanh, relu);
    // The scheme given wins.
    let given = start(
        &[
            "--layers",
            "dense 5, tanh, dense",
            "--init-scheme",
            "he-normal",
        ],
        "lg",
    );
    assert_eq!(given, relu);
}

/// Ninth hostile pass, left open then: `--monitor` where early stopping is off (no validation
/// split, or `--patience 0`) and `--dampening` without momentum were accepted, though nothing
/// reads them. Each is refused naming the flag and the setting that leaves it unread, and
/// leaves no folder behind; with early stopping or momentum on, both are still taken.
#[test]
fn monitor_without_early_stopping_and_dampening_without_momentum_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let data = table(d.path());
    let refused: [(&[&str], &[&str]); 5] = [
        (
            &["--monitor", "loss", "--val-fraction", "0"],
            &["monitor = loss", "--val-fraction 0", "no validation split"],
        ),
        (
            &["--monitor", "accuracy", "--val-fraction", "0"],
            &["monitor = accuracy", "--val-fraction 0"],
        ),
        (
            &["--monitor", "loss", "--patience", "0"],
            &["monitor = loss", "--patience 0"],
        ),
        (
            &["--optimizer", "sgd", "--dampening", "0.5"],
            &["dampening = 0.5", "momentum 0", "--momentum"],
        ),
        (
            &[
                "--optimizer",
                "sgd",
                "--momentum",
                "0",
                "--dampening",
                "0.1",
            ],
            &["dampening = 0.1", "momentum 0"],
        ),
    ];
    for (i, (flags, says)) in refused.iter().enumerate() {
        let out = d.path().join(format!("no{i}"));
        let o = downhill()
            .args(["train", "--epochs", "1", "--hidden", "4", "--data"])
            .arg(&data)
            .args(*flags)
            .arg("--out")
            .arg(&out)
            .assert()
            .failure()
            .code(2);
        let err = String::from_utf8_lossy(&o.get_output().stderr).to_string();
        for s in *says {
            assert!(err.contains(s), "{flags:?}: {s:?} not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{flags:?} left {}", out.display());
    }
    // Read, so taken: a monitor with a split and patience, dampening with momentum.
    for (i, flags) in [
        &["--monitor", "loss", "--patience", "3"][..],
        &["--monitor", "loss"][..],
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--dampening",
            "0.5",
        ][..],
    ]
    .iter()
    .enumerate()
    {
        downhill()
            .args([
                "train", "--epochs", "1", "--hidden", "4", "--quiet", "--data",
            ])
            .arg(&data)
            .args(*flags)
            .arg("--out")
            .arg(d.path().join(format!("ok{i}")))
            .assert()
            .success();
    }
    // A resumed run's recorded settings hold the monitor whatever was given: resuming a run
    // without a validation split is not refused for it.
    let run = d.path().join("nosplit");
    downhill()
        .args(["train", "--epochs", "1", "--hidden", "4", "--quiet"])
        .args(["--val-fraction", "0", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    downhill()
        .args(["train", "--quiet", "--epochs", "2", "--resume"])
        .arg(&run)
        .assert()
        .success();
}
