//! Defaults sized to the data (issue 11): the epoch rule, early stopping on by default with a
//! validation split, and recorded settings that say what the run used.

use crate::common::downhill;
use downhill::settings::{BatchSize, MAX_EPOCHS, MIN_EPOCHS, epochs_for, patience_for};

#[test]
fn epoch_rule_gives_small_tables_enough_steps() {
    let b = BatchSize::Examples(64);
    // 135 rows: 3 steps per epoch → the 200-epoch cap (600 steps instead of 60).
    assert_eq!(epochs_for(135, b), MAX_EPOCHS);
    // 3,600 digits: 57 steps per epoch → ⌈10000/57⌉ = 176.
    assert_eq!(epochs_for(3600, b), 176);
    // 60,000 images: 938 steps per epoch → the floor of 20.
    assert_eq!(epochs_for(60_000, b), MIN_EPOCHS);
    assert_eq!(epochs_for(10, BatchSize::Full), MAX_EPOCHS);
    assert_eq!(epochs_for(0, b), MAX_EPOCHS);
    // Patience: 10 epochs, or 500 steps' worth on small data.
    assert_eq!(patience_for(3600, b), 10);
    assert_eq!(patience_for(135, b), 167);
    assert_eq!(patience_for(60_000, b), 10);
    assert_eq!(patience_for(100, BatchSize::Full), 500);
}

fn small_table(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = String::from("a,b,label\n");
    for i in 0..150 {
        let (a, b) = (
            ((i * 37) % 100) as f64 / 10.0,
            ((i * 61) % 100) as f64 / 10.0,
        );
        s += &format!("{a},{b},{}\n", if a > b { "x" } else { "y" });
    }
    let p = dir.join("t.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn train(
    dir: &std::path::Path,
    data: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> serde_json::Value {
    let o = downhill()
        .args(["train", "--json", "--target", "label", "--data"])
        .arg(data)
        .arg("--out")
        .arg(dir.join(name))
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn small_table_defaults_are_recorded_and_early_stopping_is_on() {
    let d = tempfile::tempdir().unwrap();
    let data = small_table(d.path());
    let v = train(d.path(), &data, "a", &[]);
    let s = &v["settings"];
    assert_eq!(s["epochs"], 200);
    // A table's batches are 200 rows: ~110 training rows are 1 step per epoch, so patience is
    // 500 epochs (more than all of them: the best epoch is restored at the end).
    assert_eq!(s["batch-size"], 200);
    let n = v["data"]["train_examples"].as_u64().unwrap() as usize;
    let patience = patience_for(n, BatchSize::Examples(200)) as u64;
    assert!(patience >= 167, "{n} rows");
    assert_eq!(s["patience"].as_u64(), Some(patience));
    assert_eq!(s["monitor"], "accuracy");
    assert!(s["optimizer"].is_string() && s["lr"].is_number());
    if s["optimizer"] == "sgd" {
        assert!(s["momentum"].is_number(), "the settings say the momentum");
    }
    let (epochs, best) = (
        v["epochs"].as_u64().unwrap(),
        v["best_epoch"].as_u64().unwrap(),
    );
    assert!(epochs <= 200 && best <= epochs);
    if epochs < 200 {
        assert!(v["stop_reason"].as_str().unwrap().contains("early stop"));
        assert_eq!(epochs - best, patience);
    }
    // Without a validation split there is no early stopping: all epochs run.
    let v = train(
        d.path(),
        &data,
        "b",
        &["--val-fraction", "0", "--epochs", "30"],
    );
    assert_eq!(v["settings"]["patience"], 0);
    assert_eq!(v["epochs"], 30);
    assert_eq!(v["best_epoch"], 30);
    // --patience 0 turns it off; --epochs is respected.
    let v = train(d.path(), &data, "c", &["--patience", "0", "--epochs", "25"]);
    assert_eq!(v["epochs"], 25);
    assert_eq!(v["best_epoch"], 25);
}

/// The new settings read from a config file as from flags: `lr-auto`, `monitor`, `batch-size`,
/// `class-weight` (a bad value named).
#[test]
fn config_file_spells_the_new_settings() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.toml");
    std::fs::write(
        &good,
        "lr-auto = true\nepochs = 1\nhidden = [16]\nmonitor = \"loss\"\nbatch-size = 128\n",
    )
    .unwrap();
    let o = downhill()
        .args(["train", "--json", "--config"])
        .arg(&good)
        .arg("--out")
        .arg(d.path().join("g"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["settings"]["lr-auto"], true);
    assert_eq!(v["settings"]["lr"], v["lr_find"]["chosen_lr"]);
    assert_eq!(v["settings"]["monitor"], "loss");
    assert_eq!(v["settings"]["batch-size"], 128);
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "class-weight = \"weird\"\nepochs = 1\n").unwrap();
    let o = downhill()
        .args(["train", "--config"])
        .arg(&bad)
        .arg("--out")
        .arg(d.path().join("b"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("class-weight"));
}
