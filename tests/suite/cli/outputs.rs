//! A second hostile pass over issue 10's promises, through the binary: what broke, now tests.
//!
//! - A finite blow-up that does not last 5 steps but kills the network (plain SGD at `--lr 5`
//!   on the digits: a few huge mini-batch losses, then chance level for good) used to end with
//!   exit 0 at chance accuracy.
//! - `predict --output` to a device or FIFO replaced it with a regular file (as root,
//!   `--output /dev/null` would have replaced the system's /dev/null); through a symbolic link it
//!   replaced the link. Predictions written to a full stdout were lost with exit 0.
//! - `lr-find` panicked (exit 101) when its stdout was a closed pipe.
//! - `eval` of the model of an interrupted run did not say so (nor did `predict`).
//! - A setting refused once the data was read left a new folder holding only `.lock`.
//! - `--out` naming another tool's non-empty folder had its files replaced or removed.
//! - The summary of an interrupted run said "trained 0 epochs … (weights of epoch 0)".
//! - `train --json`, `eval --json` and `lr-find` to a full stdout exited 0, the output lost.

use std::path::Path;
use std::process::{Command as Std, Stdio};

use crate::common::{downhill, exe, signal, wait_for_epochs};

fn write_csv(path: &Path) {
    let mut s = String::from("a,b,c,y\n");
    for i in 0..120 {
        let (a, b, c) = ((i % 7) as f32, (i % 5) as f32 * 0.5, (i % 11) as f32 - 5.0);
        s.push_str(&format!("{a},{b},{c},{}\n", (a + b > 3.0) as u8));
    }
    std::fs::write(path, s).unwrap();
}

/// Plain SGD at `--lr 5` on the digits: the loss spikes above 10 × its reference for 3 steps,
/// then the network sits at chance level. That is divergence (exit 2, no model, the existing
/// folder untouched), unless the rule is turned off.
#[test]
fn a_blow_up_the_network_never_recovers_from_is_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let ok = downhill()
        .args(["train", "--quiet", "--epochs", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    let args = [
        "train",
        "--quiet",
        "--optimizer",
        "sgd",
        "--lr",
        "5",
        "--epochs",
        "3",
    ];
    let o = downhill()
        .args(args)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("never recovered") && err.contains("chance level") && err.contains("--lr"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    // The rule is the blow-up rule: --divergence-factor 0 turns it off.
    let off = dir.path().join("off");
    let o = downhill()
        .args(args)
        .args(["--divergence-factor", "0", "--out"])
        .arg(&off)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A rate that trains well is not caught.
    let fine = dir.path().join("fine");
    let o = downhill()
        .args(["train", "--quiet", "--optimizer", "sgd", "--lr", "0.3"])
        .args(["--epochs", "3", "--out"])
        .arg(&fine)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `predict --output` writes into a FIFO (or device) instead of replacing it, follows a symbolic
/// link to its file, and a stdout that cannot take the predictions is an error.
#[cfg(unix)]
#[test]
fn predictions_go_into_devices_fifos_and_links_and_are_never_lost_silently() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("run");
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "2", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let model = run.join("model.safetensors");
    let expected = downhill()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(expected.status.success());
    assert_eq!(expected.stdout.iter().filter(|&&b| b == b'\n').count(), 121);

    // A FIFO: a reader gets the predictions, and the FIFO stays a FIFO.
    let fifo = dir.path().join("fifo");
    assert!(Std::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = downhill()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&csv)
        .arg("--output")
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(reader.join().unwrap(), expected.stdout);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A symbolic link: the file it points to gets the predictions, the link stays a link.
    let target = dir.path().join("target.csv");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = downhill()
        .args(["predict", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&csv)
        .arg("--output")
        .arg(&link)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), expected.stdout);

    // A full stdout (/dev/full, where the machine has it as a device): an error, not exit 0.
    if std::fs::metadata("/dev/full").is_ok_and(|m| m.file_type().is_char_device()) {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Std::new(exe())
            .args(["predict", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&csv)
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("standard output"));
    }
}

/// `lr-find` whose reader has gone (a closed pipe) ends normally instead of panicking.
#[test]
fn lr_find_survives_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Std::new(exe())
        .args(["lr-find", "--plot"])
        .arg(dir.path().join("lr.svg"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `eval` of the model an interrupted run left says that it is one.
#[test]
fn eval_says_a_model_is_from_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("run");
    let mut child = Std::new(exe())
        .args([
            "train",
            "--hidden",
            "5",
            "--batch-size",
            "8",
            "--patience",
            "0",
        ])
        .args(["--epochs", "1000000", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, &run, 1);
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = downhill()
        .args(["eval", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    assert!(String::from_utf8_lossy(&e.stderr).contains("interrupted run"));
    let j = downhill()
        .args(["eval", "--json", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(&csv)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["interrupted"], true);
}

/// A setting refused only once the data is read (after the folder was opened) leaves no new
/// folder behind, not even a parent the run created, and an existing folder exactly as it was.
#[test]
fn a_refused_setting_leaves_no_new_folder_and_an_existing_one_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let refused: [&[&str]; 3] = [
        &["--class-weight", "balanced", "--task", "regress"],
        &["--monitor", "accuracy", "--task", "regress"],
        &["--patience", "5", "--val-fraction", "0"],
    ];
    for (i, flags) in refused.iter().enumerate() {
        let out = dir.path().join(format!("new{i}")).join("run");
        let o = downhill()
            .args(["train", "--quiet", "--epochs", "1", "--data"])
            .arg(&csv)
            .args(*flags)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{flags:?} was accepted");
        assert!(
            !dir.path().join(format!("new{i}")).exists(),
            "{flags:?} left a folder behind"
        );
        // An existing empty folder stays empty (no .lock left in it).
        let empty = dir.path().join(format!("empty{i}"));
        std::fs::create_dir(&empty).unwrap();
        let o = downhill()
            .args(["train", "--quiet", "--epochs", "1", "--data"])
            .arg(&csv)
            .args(*flags)
            .arg("--out")
            .arg(&empty)
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{flags:?}");
    }
    // Without --out: neither runs/<time> nor runs/ is left behind.
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let o = downhill()
        .current_dir(&cwd)
        .args(["train", "--quiet", "--epochs", "1", "--data"])
        .arg(&csv)
        .args(["--patience", "5", "--val-fraction", "0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
    // A run folder left by a good run keeps every file, byte for byte.
    let run = dir.path().join("run");
    let ok = downhill()
        .args([
            "train", "--quiet", "--epochs", "1", "--hidden", "4", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let before = snapshot(&run);
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "1", "--data"])
        .arg(&csv)
        .args(["--monitor", "accuracy", "--task", "regress", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(snapshot(&run), before);
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = if p.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    v.sort();
    v
}

/// `--out` naming a non-empty folder of another tool is refused before any work, naming it, and
/// its files stay as they were; `--out` naming a regular file says it is not a folder.
#[test]
fn out_refuses_a_foreign_non_empty_folder_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for (name, text) in [
        ("summary.json", "{\"tool\": \"other\"}"),
        ("confusion.svg", "<svg/>"),
        ("model.safetensors", "not ours"),
    ] {
        std::fs::write(other.join(name), text).unwrap();
    }
    let before = snapshot(&other);
    let o = downhill()
        .args([
            "train", "--quiet", "--epochs", "1", "--hidden", "4", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(101), "{err}");
    assert!(
        err.contains("not a downhill run folder") && err.contains("other"),
        "{err}"
    );
    assert_eq!(snapshot(&other), before);
    // --resume into it is refused the same way, and leaves no .lock.
    let o = downhill()
        .args(["train", "--resume"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(snapshot(&other), before);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "1", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("not a folder") && err.contains("a-file"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // An empty folder and a downhill run folder are fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for _ in 0..2 {
        let o = downhill()
            .args([
                "train", "--quiet", "--epochs", "1", "--hidden", "4", "--data",
            ])
            .arg(&csv)
            .arg("--out")
            .arg(&empty)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// After Ctrl-C the summary says what was trained (epochs and steps into the next), and
/// `predict` with the interrupted model says it is one, as `eval` does.
#[test]
fn an_interrupted_summary_counts_the_steps_and_predict_notes_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = Std::new(exe())
        .args([
            "train",
            "--batch-size",
            "1",
            "--epochs",
            "100000",
            "--patience",
            "0",
        ])
        .args(["--hidden", "100"])
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, &run, 1);
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    let trained = stdout
        .lines()
        .find(|l| l.starts_with("trained "))
        .unwrap_or_else(|| panic!("{stdout}"));
    // Interrupted mid-epoch (an epoch has 3,600 steps): "trained E epochs and S of 3600 steps
    // of epoch E+1", never "trained 0 epochs" alone, and no "(weights of epoch 0)". (Almost
    // always mid-epoch; at an epoch's end the stop line names no steps and E > 0.)
    let stopped = stdout.lines().find(|l| l.starts_with("stopped: ")).unwrap();
    assert!(stopped.contains("interrupted after epoch"), "{stdout}");
    if stopped.contains(" steps of epoch ") {
        assert!(trained.contains(" of 3600 steps of epoch "), "{stdout}");
    } else {
        assert!(!trained.starts_with("trained 0 epochs"), "{stdout}");
    }
    assert!(!stdout.contains("(weights of epoch"), "{stdout}");

    let csv = dir.path().join("pixels.csv");
    let header: Vec<String> = (0..784).map(|i| format!("p{i}")).collect();
    std::fs::write(
        &csv,
        format!("{}\n{}\n", header.join(","), vec!["0"; 784].join(",")),
    )
    .unwrap();
    let p = downhill()
        .args(["predict", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--input")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    assert!(
        String::from_utf8_lossy(&p.stderr).contains("holds the weights of an interrupted run"),
        "{}",
        String::from_utf8_lossy(&p.stderr)
    );
}

/// `train --json`, `eval --json` and `lr-find` to a full stdout fail naming standard output
/// (their output would be lost); a closed pipe stays fine (see `lr_find_survives_a_closed_pipe`).
#[cfg(target_os = "linux")]
#[test]
fn data_on_a_full_stdout_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let train = Std::new(exe())
        .args([
            "train", "--json", "--epochs", "1", "--hidden", "4", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdout(full())
        .output()
        .unwrap();
    let eval = Std::new(exe())
        .args(["eval", "--json", "--model"])
        .arg(dir.path().join("run").join("model.safetensors"))
        .arg("--data")
        .arg(&csv)
        .stdout(full())
        .output()
        .unwrap();
    let mut cases = vec![("train --json", train), ("eval --json", eval)];
    for json in [false, true] {
        let mut c = Std::new(exe());
        c.args(["lr-find", "--hidden", "4", "--data"])
            .arg(&csv)
            .arg("--plot")
            .arg(dir.path().join("lr.svg"));
        if json {
            c.arg("--json");
        }
        cases.push(("lr-find", c.stdout(full()).output().unwrap()));
    }
    for (what, o) in cases {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: exit 0 on a full stdout");
        assert_ne!(o.status.code(), Some(101), "{what}: {err}");
        assert!(err.contains("standard output"), "{what}: {err}");
    }
}
