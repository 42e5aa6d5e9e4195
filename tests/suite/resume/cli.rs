//! Resume through the binary for every optimiser and variant, bit for bit: a run trained for 2
//! epochs and continued with `--resume DIR --epochs 3` ends with the same weights as the run
//! asked for 3 epochs at the start; a run stopped by Ctrl-C (SIGINT) mid-epoch and resumed ends
//! where the uninterrupted run ends. Tiny data and networks, so the matrix stays fast.

use std::path::Path;

use crate::common::{downhill, exe, signal, wait_for_epochs};

/// 60 rows, 3 features, 3 classes.
fn write_csv(path: &Path) {
    let mut s = String::from("a,b,c,label\n");
    for i in 0..60 {
        let (a, b, c) = (
            ((i * 37) % 17) as f64 / 7.0,
            ((i * 61) % 13) as f64 / 5.0,
            ((i * 11) % 7) as f64,
        );
        let label = ["x", "y", "z"][(a + b) as usize % 3];
        s += &format!("{a},{b},{c},{label}\n");
    }
    std::fs::write(path, s).unwrap();
}

fn params(path: &Path) -> Vec<u32> {
    downhill::io::load(path)
        .unwrap()
        .net
        .params()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn train(csv: &Path, out: &Path, epochs: &str, variant: &[&str]) {
    let o = downhill()
        .args(["train", "--quiet", "--data"])
        .arg(csv)
        .args([
            "--hidden",
            "5",
            "--batch-size",
            "8",
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0",
            "--epochs",
            epochs,
        ])
        .args(variant)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{variant:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const VARIANTS: &[&[&str]] = &[
    &["--optimizer", "sgd", "--momentum", "0"],
    &[
        "--optimizer",
        "sgd",
        "--momentum",
        "0",
        "--weight-decay",
        "0.01",
    ],
    &["--optimizer", "sgd", "--momentum", "0.9"],
    &[
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--dampening",
        "0.5",
    ],
    &["--optimizer", "sgd", "--momentum", "0.9", "--nesterov"],
    &[
        "--optimizer",
        "sgd",
        "--momentum",
        "0.8",
        "--weight-decay",
        "0.01",
    ],
    &["--optimizer", "sgd", "--momentum", "0.9", "--threads", "2"],
    &["--optimizer", "adam", "--lr", "0.01"],
    &[
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--weight-decay",
        "0.01",
    ],
    &["--optimizer", "adamw", "--lr", "0.01"],
    &["--optimizer", "adamw", "--lr", "0.01", "--threads", "2"],
    &["--optimizer", "rmsprop", "--lr", "0.005"],
    &["--optimizer", "rmsprop", "--lr", "0.005", "--centered"],
    &[
        "--optimizer",
        "rmsprop",
        "--lr",
        "0.005",
        "--momentum",
        "0.9",
    ],
    &[
        "--optimizer",
        "rmsprop",
        "--lr",
        "0.005",
        "--centered",
        "--momentum",
        "0.5",
        "--weight-decay",
        "0.01",
    ],
    &["--optimizer", "adagrad", "--lr", "0.05"],
    &[
        "--optimizer",
        "adagrad",
        "--lr",
        "0.05",
        "--weight-decay",
        "0.01",
    ],
    &[
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--dropout",
        "0.3",
        "--l2",
        "0.001",
    ],
];

#[test]
fn every_optimizer_variant_extends_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    for (i, v) in VARIANTS.iter().enumerate() {
        let (whole, part) = (
            dir.path().join(format!("w{i}")),
            dir.path().join(format!("p{i}")),
        );
        train(&csv, &whole, "3", v);
        train(&csv, &part, "2", v);
        let o = downhill()
            .args(["train", "--quiet", "--epochs", "3", "--resume"])
            .arg(&part)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{v:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            params(&whole.join("model.safetensors")),
            params(&part.join("model.safetensors")),
            "{v:?}: continued for a third epoch"
        );
        // The metrics continue too: three epochs, the first two as the first run wrote them.
        let lines = std::fs::read_to_string(part.join("metrics.jsonl")).unwrap();
        let whole_lines = std::fs::read_to_string(whole.join("metrics.jsonl")).unwrap();
        let strip = |s: &str| -> Vec<(f64, Option<f64>)> {
            s.lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (v["train_loss"].as_f64().unwrap(), v["val_loss"].as_f64())
                })
                .collect()
        };
        assert_eq!(strip(&lines), strip(&whole_lines), "{v:?}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(part.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["epochs"], 3);
        assert_eq!(summary["interrupted"], false);
    }
}

/// A resumed run with fewer epochs than it already trained is refused, naming the flag.
#[test]
fn extending_to_fewer_epochs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("r");
    train(&csv, &run, "3", &[]);
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    let o = downhill()
        .args(["train", "--epochs", "2", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("epochs") && err.contains("already trained 3"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );
    // Other settings stay refused with --resume.
    let o = downhill()
        .args(["train", "--lr", "0.1", "--epochs", "5", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume alone"));
}

/// Ctrl-C: the run finishes its step, publishes the model so far (marked interrupted) and a
/// checkpoint, says how to resume and exits 130; resumed, it ends bit for bit where the
/// uninterrupted run ends, with its metrics and --snapshots trajectory complete.
#[test]
fn ctrl_c_saves_and_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("run");
    let common = [
        "train",
        "--hidden",
        "5",
        "--batch-size",
        "8",
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--snapshots",
        // No early stopping (on by default with a validation split since issue 11).
        "--patience",
        "0",
    ];
    let bin = exe();
    let mut child = std::process::Command::new(&bin)
        .args(common)
        .args(["--epochs", "1000000", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, &run, 1);
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["interrupted"], true);
    let model = downhill::io::load(&run.join("model.safetensors")).unwrap();
    assert!(model.meta.interrupted);
    let ck = downhill::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    let done = ck.state.epoch;
    assert!(done < 1_000_000);
    let total = (done + 2).to_string();
    // The uninterrupted run of done + 2 epochs …
    let whole = dir.path().join("whole");
    let o = downhill()
        .args(common)
        .args(["--quiet", "--epochs", &total, "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success());
    // … equals the interrupted one continued to done + 2 epochs.
    let o = downhill()
        .args(["train", "--quiet", "--epochs", &total, "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        params(&whole.join("model.safetensors")),
        params(&run.join("model.safetensors"))
    );
    let n = |d: &Path| {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(n(&run), done + 2);
    // The trajectory keeps the epochs before the interruption: one snapshot per epoch and the start.
    let p = model.net.param_count();
    let t1 = downhill::landscape::trajectory::load(&run.join("trajectory.safetensors"), p).unwrap();
    let t2 =
        downhill::landscape::trajectory::load(&whole.join("trajectory.safetensors"), p).unwrap();
    assert_eq!(t1.len(), done + 3);
    assert_eq!(t1, t2);
    assert!(!run.join("unfinished").exists());
}

/// Starts a new run of 1,000,000 epochs into `run`, interrupts it (SIGINT) once it has trained
/// three epochs (its log in `unfinished/` has three lines) and returns its stdout and stderr;
/// it must exit with 130.
fn interrupt_new_run(csv: &Path, run: &Path, seed: &str) -> (String, String) {
    let bin = exe();
    let mut child = std::process::Command::new(&bin)
        .args([
            "train",
            "--hidden",
            "5",
            "--batch-size",
            "8",
            "--patience",
            "0",
        ])
        .args(["--epochs", "1000000", "--seed", seed, "--data"])
        .arg(csv)
        .arg("--out")
        .arg(run)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, run, 3);
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{err}");
    (String::from_utf8_lossy(&out.stdout).to_string(), err)
}

/// A Ctrl-C of a new run (or of a resumed one) into a folder holding a finished run leaves that
/// run as it was: the interrupted one stays in `unfinished/`, where `--resume` continues it.
#[test]
fn an_interrupted_run_does_not_replace_a_finished_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("run");
    train(&csv, &run, "2", &[]);
    let before: Vec<(String, Vec<u8>)> = [
        "model.safetensors",
        "summary.json",
        "checkpoint.safetensors",
        "metrics.jsonl",
    ]
    .iter()
    .map(|f| (f.to_string(), std::fs::read(run.join(f)).unwrap()))
    .collect();
    let (_, err) = interrupt_new_run(&csv, &run, "0");
    assert!(err.contains("still holds the run it held before"), "{err}");
    assert!(
        err.contains(&format!("--resume {}", run.display())),
        "{err}"
    );
    for (f, bytes) in &before {
        assert_eq!(
            &std::fs::read(run.join(f)).unwrap(),
            bytes,
            "{f} was changed"
        );
    }
    let stage = run.join("unfinished");
    let staged = downhill::io::load(&stage.join("model.safetensors")).unwrap();
    assert!(staged.meta.interrupted);
    let done = downhill::checkpoint::load(&stage.join("checkpoint.safetensors"))
        .unwrap()
        .state
        .history
        .len();
    assert!(done >= 3, "{done}");
    // A new run is refused until the interrupted one is resumed or dropped …
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "1", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("killed or interrupted"));
    // … and --resume continues the interrupted run, then publishes it.
    let total = (done + 1).to_string();
    let o = downhill()
        .args(["train", "--quiet", "--epochs", &total, "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stage.exists());
    let lines = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, done + 1);
    assert!(
        !downhill::io::load(&run.join("model.safetensors"))
            .unwrap()
            .meta
            .interrupted
    );
}

/// SIGTERM is handled like Ctrl-C; two Ctrl-Cs in a row end the process at once with 130.
#[test]
fn sigterm_saves_and_a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let bin = exe();
    let spawn = |out: &Path| {
        std::process::Command::new(&bin)
            .args([
                "train",
                "--quiet",
                "--hidden",
                "4",
                "--epochs",
                "10000000",
                "--patience",
                "0",
                "--data",
            ])
            .arg(&csv)
            .arg("--out")
            .arg(out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let term = dir.path().join("term");
    let mut child = spawn(&term);
    wait_for_epochs(&mut child, &term, 1);
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        downhill::io::load(&term.join("model.safetensors"))
            .unwrap()
            .meta
            .interrupted
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));

    let twice = dir.path().join("twice");
    let mut child = spawn(&twice);
    wait_for_epochs(&mut child, &twice, 1);
    let started = std::time::Instant::now();
    signal(child.id(), "-INT");
    signal(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(started.elapsed().as_secs() < 5);
    // Whatever moment the second signal caught, the folder holds no half-written file.
    if twice.join("summary.json").exists() {
        downhill::io::load(&twice.join("model.safetensors")).unwrap();
    } else {
        assert!(!twice.join("model.safetensors").exists());
    }
}

/// A run resumed on data that changed since its checkpoint is refused, not silently continued.
#[test]
fn resuming_on_changed_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("r");
    train(&csv, &run, "2", &[]);
    let text = std::fs::read_to_string(&csv).unwrap();
    // One value changed; the same number of rows and columns.
    std::fs::write(&csv, text.replacen("\n0,", "\n0.5,", 1)).unwrap();
    assert_ne!(std::fs::read_to_string(&csv).unwrap(), text);
    let before = std::fs::read(run.join("model.safetensors")).unwrap();
    let o = downhill()
        .args(["train", "--epochs", "3", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("resumed training data"), "{err}");
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );
    // Restored, it resumes.
    std::fs::write(&csv, text).unwrap();
    downhill()
        .args(["train", "--quiet", "--epochs", "3", "--resume"])
        .arg(&run)
        .assert()
        .success();
}

/// Work with nothing to save and no step boundary to stop at — the `--lr auto` range test
/// before training, the test of a learning rate after a run diverged — ends at once with 130 on
/// the first Ctrl-C (issue 19, item 12: it was ignored for the whole range test or diagnosis).
/// The network is large enough that either takes seconds; the signal comes one second in.
#[test]
fn ctrl_c_during_the_range_test_or_the_divergence_diagnosis_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bin = exe();
    for (name, lr) in [("auto", "auto"), ("diverged", "10000")] {
        let out = dir.path().join(name);
        let child = std::process::Command::new(&bin)
            .args([
                "train",
                "--quiet",
                "--hidden",
                "2000,2000",
                "--threads",
                "1",
            ])
            .args(["--epochs", "1", "--lr", lr, "--out"])
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let sent = std::time::Instant::now();
        signal(child.id(), "-INT");
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{name}: {err}");
        assert!(
            sent.elapsed().as_secs_f64() < 2.0,
            "{name}: {:?}",
            sent.elapsed()
        );
        // No model was published: the run ended before training (or after it failed), and the
        // folder it had made is gone (it was left with .lock and an empty unfinished/).
        assert!(!out.join("model.safetensors").exists(), "{name}");
        assert!(
            !out.exists(),
            "{name}: {:?}",
            std::fs::read_dir(&out).map(|d| d.count())
        );
    }
}

/// A checkpoint does not copy the per-epoch history (issue 19, item 5: checkpointing every
/// epoch rewrote it each time, quadratic in the epochs, and past 100 MB the file could not be
/// written): its size does not grow with the epochs, the history is the run's `metrics.jsonl`,
/// resume reads it back, and a log that is edited or gone is refused by name, the run left as
/// it was.
#[test]
fn checkpoints_cover_the_history_log_instead_of_copying_it() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let (short, long) = (d.path().join("short"), d.path().join("long"));
    let every = ["--checkpoint-every", "epoch", "--patience", "0"];
    train(&csv, &short, "20", &every);
    train(&csv, &long, "400", &every);
    let size = |dir: &Path| {
        std::fs::metadata(dir.join("checkpoint.safetensors"))
            .unwrap()
            .len() as i64
    };
    assert!(
        (size(&long) - size(&short)).abs() < 64,
        "checkpoint of 400 epochs {} bytes, of 20 epochs {}",
        size(&long),
        size(&short)
    );
    let lines = |dir: &Path| {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines(&long), 400);
    let ck = downhill::checkpoint::load(&long.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.state.history.len(), 400);
    assert_eq!(ck.state.history[399].epoch, 400);

    // Resumed, the earlier epochs are carried over from the log.
    downhill()
        .arg("train")
        .arg("--resume")
        .arg(&short)
        .args(["--epochs", "25"])
        .assert()
        .success();
    assert_eq!(lines(&short), 25);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(short.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["epochs"], 25, "{summary}");

    // A log that is edited, cut short or gone is refused, naming it; the model stays as it was.
    let log = short.join("metrics.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let model = std::fs::read(short.join("model.safetensors")).unwrap();
    let refused = |needles: [&str; 2]| {
        let out = downhill()
            .arg("train")
            .arg("--resume")
            .arg(&short)
            .args(["--epochs", "30"])
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(needles.iter().all(|n| err.contains(n)), "{err}");
        assert_eq!(
            std::fs::read(short.join("model.safetensors")).unwrap(),
            model
        );
    };
    let edited = text.replacen("\"epoch\":2,", "\"epoch\":2 ,", 1);
    assert_ne!(edited, text);
    std::fs::write(&log, &edited).unwrap();
    refused(["metrics.jsonl", "edited or replaced"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), edited);
    let cut: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, cut).unwrap();
    refused(["metrics.jsonl: line 8", "covers 25 epochs"]);
    std::fs::remove_file(&log).unwrap();
    refused(["metrics.jsonl: missing", "together with the checkpoint"]);
}

/// Sixth hostile pass (issue 19): a new run interrupted in a folder whose published run was
/// itself interrupted does not replace it (its checkpoint was the only way to continue that
/// run); the summary says where this run's files are.
#[test]
fn an_interrupted_new_run_does_not_replace_an_interrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    write_csv(&csv);
    let run = dir.path().join("run");
    interrupt_new_run(&csv, &run, "3");
    assert!(
        !run.join("unfinished").exists(),
        "the first run is published"
    );
    let before: Vec<Vec<u8>> = [
        "model.safetensors",
        "summary.json",
        "checkpoint.safetensors",
    ]
    .iter()
    .map(|f| std::fs::read(run.join(f)).unwrap())
    .collect();
    let (out, err) = interrupt_new_run(&csv, &run, "4");
    assert!(err.contains("still holds the run it held before"), "{err}");
    let stage = run.join("unfinished");
    assert!(
        out.contains(&format!("model and report in {}", stage.display())),
        "{out}"
    );
    for (f, bytes) in [
        "model.safetensors",
        "summary.json",
        "checkpoint.safetensors",
    ]
    .iter()
    .zip(&before)
    {
        assert_eq!(
            &std::fs::read(run.join(f)).unwrap(),
            bytes,
            "{f} was changed"
        );
    }
    assert!(stage.join("checkpoint.safetensors").exists());
}

/// Seventh hostile pass, item 2: the checkpoint records how many snapshots the `--snapshots`
/// trajectory held and their hash, so a resumed run continues its own training path: one
/// copied from another run, cut short or gone is refused by name, the run left as it was (it
/// was spliced in, or the path silently restarted mid-run, and `landscape` drew it).
#[test]
fn a_resumed_run_continues_only_its_own_trajectory() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let (own, other) = (d.path().join("own"), d.path().join("other"));
    train(
        &csv,
        &own,
        "4",
        &["--snapshots", "--patience", "0", "--seed", "1"],
    );
    train(
        &csv,
        &other,
        "4",
        &["--snapshots", "--patience", "0", "--seed", "2"],
    );
    let traj = own.join("trajectory.safetensors");
    let kept = std::fs::read(&traj).unwrap();
    let model = std::fs::read(own.join("model.safetensors")).unwrap();
    let p = downhill::io::load(&own.join("model.safetensors"))
        .unwrap()
        .net
        .param_count();
    let snaps = downhill::landscape::trajectory::load(&traj, p).unwrap();
    assert_eq!(snaps.len(), 5);
    let refused = |needles: &[&str]| {
        let out = downhill()
            .arg("train")
            .arg("--resume")
            .arg(&own)
            .args(["--epochs", "6"])
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(needles.iter().all(|n| err.contains(n)), "{err}");
        assert_eq!(std::fs::read(own.join("model.safetensors")).unwrap(), model);
    };
    let name = traj.display().to_string();
    std::fs::copy(other.join("trajectory.safetensors"), &traj).unwrap();
    refused(&[&name, "not the ones the checkpoint recorded"]);
    downhill::landscape::trajectory::save(&traj, &snaps[..3]).unwrap();
    refused(&[
        &name,
        "holds 3 snapshots, but the checkpoint was written after 5",
    ]);
    let mut edited = snaps.clone();
    edited[1][0] += 1.0;
    downhill::landscape::trajectory::save(&traj, &edited).unwrap();
    refused(&[&name, "not the ones the checkpoint recorded"]);
    std::fs::remove_file(&traj).unwrap();
    refused(&[&format!("{name}: missing")]);
    // Its own path: continued, the first five snapshots kept.
    std::fs::write(&traj, kept).unwrap();
    downhill()
        .arg("train")
        .arg("--resume")
        .arg(&own)
        .args(["--epochs", "6"])
        .assert()
        .success();
    let longer = downhill::landscape::trajectory::load(&traj, p).unwrap();
    assert_eq!(longer.len(), 7);
    assert_eq!(longer[..5], snaps[..]);
}

/// Every file under `dir` (relative name) with its bytes and modification time.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.push((name, std::fs::read(&p).unwrap(), modified));
            }
        }
    }
    out.sort();
    out
}

/// A copy of the run folder `from` at `to`.
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The checkpoint file's JSON header, its `checkpoint` entry, and where its tensor data start.
fn checkpoint_header(bytes: &[u8]) -> (serde_json::Value, serde_json::Value, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let c = serde_json::from_str(header["__metadata__"]["checkpoint"].as_str().unwrap()).unwrap();
    (header, c, 8 + n)
}

/// The checkpoint at `path` with its `checkpoint` entry edited (the tensors keep their offsets).
fn edit_checkpoint(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let (mut header, mut c, start) = checkpoint_header(&bytes);
    edit(&mut c);
    header["__metadata__"]["checkpoint"] = serde_json::Value::String(c.to_string());
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[start..]);
    std::fs::write(path, out).unwrap();
}

/// Ninth hostile pass, left open then: a checkpoint's bookkeeping (Adam's step count, the
/// running sums, the divergence rule's state, early stopping's best epoch, the epoch) was not
/// range-checked, so a hand-edited checkpoint resumed a different run. Each edit is refused,
/// naming the file and the field, and leaves the folder as it was; the unedited copy resumes.
#[test]
fn a_checkpoint_with_edited_bookkeeping_is_refused_by_field() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let run = d.path().join("r");
    // 48 training rows in batches of 8: 6 steps an epoch, 12 after 2 epochs.
    train(&csv, &run, "2", &["--patience", "3"]);
    let ck = run.join("checkpoint.safetensors");
    let (header, c, _) = checkpoint_header(&std::fs::read(&ck).unwrap());
    assert_eq!(c["optimizer_steps"], 12, "{c}");
    assert!(header.get("optimizer.exp_avg_sq").is_some(), "{header}");
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 11] = [
        (
            |c| c["optimizer_steps"] = 0.into(),
            "optimizer_steps: expected 12",
        ),
        (
            |c| c["optimizer_steps"] = 13.into(),
            "optimizer_steps: expected 12",
        ),
        (|c| c["seconds"] = (-1.0).into(), "checkpoint.seconds: -1"),
        (
            |c| c["loss_sum"] = (-2.5).into(),
            "checkpoint.loss_sum: -2.5",
        ),
        (
            |c| c["divergence"][1] = 9.into(),
            "checkpoint.divergence: 9 steps",
        ),
        (
            |c| c["divergence"] = serde_json::json!([null, 2]),
            "checkpoint.divergence: 2 steps above a reference loss that was never set",
        ),
        (
            |c| c["divergence"][0] = (-1.0).into(),
            "checkpoint.divergence: reference loss -1",
        ),
        (
            |c| c["divergence"][1] = 2.into(),
            "checkpoint.spiked: false",
        ),
        (|c| c["best"][1] = 0.into(), "checkpoint.best: epoch 0"),
        (
            |c| c["best"][0] = (-0.5).into(),
            "checkpoint.best: figure -0.5",
        ),
        (|c| c["epoch"] = 1.into(), "checkpoint.epoch: 1"),
    ];
    for (i, (edit, needle)) in cases.into_iter().enumerate() {
        let copy = d.path().join(format!("e{i}"));
        copy_run(&run, &copy);
        edit_checkpoint(&copy.join("checkpoint.safetensors"), edit);
        let before = files_of(&copy);
        let o = downhill()
            .args(["train", "--quiet", "--epochs", "3", "--resume"])
            .arg(&copy)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{needle}: {err}");
        assert!(
            err.contains("checkpoint.safetensors: ") && err.contains(needle),
            "{needle}: {err}"
        );
        assert!(files_of(&copy) == before, "{needle}: the folder changed");
    }
    // A sum of squares below 0 in Adam's state.
    let copy = d.path().join("sq");
    copy_run(&run, &copy);
    let path = copy.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let (header, _, start) = checkpoint_header(&bytes);
    let at = start
        + header["optimizer.exp_avg_sq"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize;
    bytes[at..at + 4].copy_from_slice(&(-1f32).to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "3", "--resume"])
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tensor optimizer.exp_avg_sq element 0") && err.contains("≥ 0"),
        "{err}"
    );
    // Unedited, the copy resumes.
    let copy = d.path().join("same");
    copy_run(&run, &copy);
    downhill()
        .args(["train", "--quiet", "--epochs", "3", "--resume"])
        .arg(&copy)
        .assert()
        .success();
}

/// `--resume` of a folder with no checkpoint says so (it gave the bare "No such file" of the
/// checkpoint), and of a folder a starting run has locked says that another run is using it
/// (tenth hostile pass); `--init-scheme` beside `--init`, which replaces every weight, is
/// refused by name (it only moved the batch order).
#[test]
fn resume_without_a_checkpoint_and_init_with_a_scheme_are_named() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = |args: &[&str], dir: &Path| {
        let o = downhill().args(args).arg(dir).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = err(&["train", "--resume"], &empty);
    assert!(e.contains("holds no checkpoint to resume"), "{e}");
    let run = d.path().join("r");
    train(&csv, &run, "1", &[]);
    std::fs::rename(run.join("checkpoint.safetensors"), d.path().join("kept")).unwrap();
    let lock = std::fs::File::open(run.join(".lock")).unwrap();
    lock.lock().unwrap();
    let e = err(&["train", "--resume"], &run);
    assert!(
        e.contains("another downhill run is using this run folder"),
        "{e}"
    );
    drop(lock);
    let e = err(&["train", "--resume"], &run);
    assert!(e.contains("holds no checkpoint to resume"), "{e}");
    let model = run.join("model.safetensors");
    let o = downhill()
        .args(["train", "--quiet", "--data"])
        .arg(&csv)
        .args(["--hidden", "5", "--init-scheme", "he-uniform", "--init"])
        .arg(&model)
        .arg("--out")
        .arg(d.path().join("i"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("init-scheme") && e.contains("has no effect with --init"),
        "{e}"
    );
    assert!(!d.path().join("i").exists());
}

/// Ninth hostile pass, left open then: `--resume DIR/unfinished` was refused in words about
/// `--out`; it now names the folder to give `--resume`, whether or not `unfinished/` is there.
/// A folder that is not a run's is refused in words about `--resume` too.
#[test]
fn resume_of_the_staging_folder_names_the_run_folder() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let run = d.path().join("r");
    train(&csv, &run, "1", &[]);
    let stage = run.join("unfinished");
    for exists in [false, true] {
        if exists {
            std::fs::create_dir(&stage).unwrap();
        }
        let o = downhill()
            .args(["train", "--epochs", "2", "--resume"])
            .arg(&stage)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("is the staging folder of the run in")
                && err.contains(&format!("--resume {}", run.display()))
                && !err.contains("--out"),
            "{err}"
        );
    }
    let foreign = d.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let o = downhill()
        .args(["train", "--resume"])
        .arg(&foreign)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is not a downhill run folder") && err.contains("--resume takes"),
        "{err}"
    );
    assert_eq!(std::fs::read(foreign.join("notes.txt")).unwrap(), b"mine");
}

/// Ninth hostile pass, left open then: a resume refused once the run folder is open (here for
/// changed data, found when the checkpoint is checked against it) rewrote `metrics.jsonl`
/// first — cutting off the epoch a killed run had logged after its last checkpoint. Now no
/// file of the folder is written, or touched, until the resume is accepted: for a killed run
/// (`unfinished/`) and for a published one alike.
#[test]
fn a_refused_resume_leaves_every_file_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("t.csv");
    write_csv(&csv);
    let run = d.path().join("r");
    train(&csv, &run, "2", &[]);
    // A run killed after its second checkpoint, its log one epoch further.
    let killed = d.path().join("killed");
    copy_run(&run, &killed);
    let stage = killed.join("unfinished");
    std::fs::create_dir(&stage).unwrap();
    for f in ["checkpoint.safetensors", "metrics.jsonl"] {
        std::fs::rename(killed.join(f), stage.join(f)).unwrap();
    }
    let log = stage.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    let last = text
        .lines()
        .last()
        .unwrap()
        .replacen("\"epoch\":2", "\"epoch\":3", 1);
    text += &format!("{last}\n");
    std::fs::write(&log, text).unwrap();
    let good = std::fs::read_to_string(&csv).unwrap();
    let changed: String = good
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            _ => format!("1{l}\n"),
        })
        .collect();
    std::fs::write(&csv, changed).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for folder in [&killed, &run] {
        let before = files_of(folder);
        let o = downhill()
            .args(["train", "--quiet", "--epochs", "4", "--resume"])
            .arg(folder)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("resumed training data"), "{err}");
        let after = files_of(folder);
        let names = |f: &[(String, Vec<u8>, std::time::SystemTime)]| {
            f.iter().map(|(n, _, _)| n.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&after), names(&before), "{}", folder.display());
        for (a, b) in after.iter().zip(&before) {
            assert!(a == b, "{}: {} was written", folder.display(), a.0);
        }
    }
    // With the data back, the killed run resumes from its checkpoint.
    std::fs::write(&csv, good).unwrap();
    downhill()
        .args(["train", "--quiet", "--epochs", "3", "--resume"])
        .arg(&killed)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(killed.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}
