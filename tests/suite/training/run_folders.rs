//! Runs a user can trust, through the binary: divergence caught wherever it shows (never a model
//! of NaNs, never exit 0 at chance after a blow-up), and a run folder that is never damaged — a
//! failing run leaves it byte for byte as it was, runs lock it, publish so its files agree,
//! complete an interrupted publish, and clean up after killed runs. Closed pipes never stop a run.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{downhill, exe};

/// Every file under `dir` (relative path → bytes), the lock file excepted.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name() != ".lock" {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn fails(args: &[&str], out: &Path) -> String {
    let o = downhill()
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn good_run(out: &Path) {
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "2", "--snapshots", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Each way of diverging exits 2 with its cause and advice, and leaves a good run folder as it was.
#[test]
fn divergence_is_caught_wherever_it_shows_and_damages_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    good_run(&run);
    let before = snapshot(&run);
    let cases: [(&[&str], &str); 5] = [
        // A finite blow-up: the loss climbs to hundreds, then the network dies at chance level.
        (
            &["train", "--epochs", "2", "--lr", "5"],
            "for 5 steps in a row",
        ),
        // Adam at an absurd rate: loss 1e14 and more, still finite.
        (
            &[
                "train",
                "--epochs",
                "2",
                "--optimizer",
                "adam",
                "--lr",
                "1e6",
            ],
            "for 5 steps in a row",
        ),
        // One full-batch step whose update makes the weights NaN: the last step of the run.
        (
            &[
                "train",
                "--epochs",
                "1",
                "--batch-size",
                "full",
                "--lr",
                "1e300",
            ],
            "after the update",
        ),
        // Finite weights whose validation loss is NaN.
        (
            &[
                "train",
                "--epochs",
                "1",
                "--batch-size",
                "full",
                "--lr",
                "1e35",
                "--momentum",
                "0",
            ],
            "validation loss became NaN",
        ),
        // The checkpointed variant: never a checkpoint of NaNs.
        (
            &[
                "train",
                "--epochs",
                "3",
                "--lr",
                "1e300",
                "--checkpoint-every",
                "1",
            ],
            "diverged",
        ),
    ];
    for (args, cause) in cases {
        let err = fails(args, &run);
        assert!(
            err.contains("training diverged") && err.contains(cause),
            "{args:?}: {err}"
        );
        // The advice names a learning rate that was tested (or, failing that, a smaller one).
        assert!(
            err.contains("range test") && err.contains("smaller one: try --lr")
                || err.contains("smaller"),
            "{args:?}: {err}"
        );
        assert!(err.contains("No model was written"), "{err}");
        assert!(snapshot(&run) == before, "{args:?} changed the run folder");
    }
    // A fresh folder gets no model either.
    let fresh = dir.path().join("fresh");
    let err = fails(&["train", "--epochs", "2", "--lr", "5"], &fresh);
    assert!(!fresh.join("model.safetensors").exists());
    assert!(!fresh.join("unfinished").exists());
    // The rate it names works: the same run at that rate trains, well above chance.
    let lr = err
        .split("smaller one: try --lr ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .map(|t| t.trim_end_matches(['.', ')']))
        .expect("advice names a rate")
        .to_string();
    let o = downhill()
        .args(["train", "--json", "--epochs", "2", "--lr", &lr, "--out"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "--lr {lr}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["test"]["accuracy"].as_f64().unwrap() > 0.8,
        "--lr {lr}: {v}"
    );
    // The blow-up rule can be turned off (the run then ends at chance level, as asked) …
    let off = dir.path().join("off");
    let o = downhill()
        .args([
            "train",
            "--quiet",
            "--epochs",
            "1",
            "--lr",
            "5",
            "--divergence-factor",
            "0",
            "--out",
        ])
        .arg(&off)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // … or tuned, but not to nonsense.
    for bad in ["0.5", "1", "-3", "nan", "inf"] {
        let err = fails(
            &["train", "--epochs", "1", "--divergence-factor", bad],
            &dir.path().join("x"),
        );
        assert!(err.contains("divergence-factor"), "{bad}: {err}");
    }
}

/// A failing run of any kind leaves an existing run folder byte for byte as it was.
#[test]
fn a_failing_run_never_touches_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    good_run(&run);
    let before = snapshot(&run);
    for args in [
        &["train", "--data", "/nonexistent.csv"][..],
        &["train", "--hidden", "0"],
        &["train", "--epochs", "0"],
        &["train", "--init", "/nonexistent.safetensors"],
        &["train", "--epochs", "1", "--lr", "1e300"],
    ] {
        fails(args, &run);
        assert!(snapshot(&run) == before, "{args:?} changed the run folder");
    }
    assert!(!run.join("unfinished").exists());
}

/// Publishing replaces every file of the previous run: a regression run over a classification
/// run's folder leaves no confusion matrix or trajectory of the old run behind.
#[test]
fn publishing_leaves_no_file_of_the_previous_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    good_run(&run);
    assert!(run.join("confusion.svg").exists() && run.join("trajectory.safetensors").exists());
    let csv = dir.path().join("r.csv");
    let mut s = String::from("x,y\n");
    for i in 0..50 {
        s += &format!("{},{}\n", i as f64 / 10.0, 2.0 * i as f64 / 10.0 + 1.0);
    }
    std::fs::write(&csv, s).unwrap();
    let o = downhill()
        .args([
            "train", "--quiet", "--epochs", "2", "--hidden", "3", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names: Vec<String> = snapshot(&run).into_keys().collect();
    assert_eq!(
        names,
        [
            "checkpoint.safetensors",
            "curves.svg",
            "metrics.jsonl",
            "model.safetensors",
            "summary.json"
        ]
    );
}

/// A publish cut short (a crash after the marker) is completed by the next run that opens the
/// folder, even one that then fails; stale temporary files are removed.
#[test]
fn an_interrupted_publish_is_completed_and_temporaries_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    good_run(&old);
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "1", "--seed", "7", "--out"])
        .arg(&new)
        .output()
        .unwrap();
    assert!(o.status.success());
    // Build the state a crash in the middle of publishing `new` over `old` leaves: the marker,
    // some files already moved (the model), the rest still staged.
    let stage = old.join("unfinished");
    std::fs::create_dir(&stage).unwrap();
    for f in [
        "metrics.jsonl",
        "checkpoint.safetensors",
        "curves.svg",
        "confusion.svg",
        "summary.json",
    ] {
        std::fs::copy(new.join(f), stage.join(f)).unwrap();
    }
    std::fs::copy(new.join("model.safetensors"), old.join("model.safetensors")).unwrap();
    std::fs::remove_file(old.join("summary.json")).unwrap();
    std::fs::write(
        stage.join("PUBLISH"),
        "metrics.jsonl\ncheckpoint.safetensors\nmodel.safetensors\ncurves.svg\nconfusion.svg\nsummary.json\n",
    )
    .unwrap();
    std::fs::write(old.join(".downhill-killed.tmp"), "half a file").unwrap();
    std::fs::write(stage.join(".downhill-killed2.tmp"), "half a file").unwrap();
    fails(&["train", "--data", "/nonexistent.csv"], &old);
    let mut expected = snapshot(&new);
    expected.remove("trajectory.safetensors");
    let got = snapshot(&old);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        assert!(got[k] == *v, "{k} differs: the publish was not completed");
    }
}

/// Two runs into one folder: the second fails at once, naming the lock; the first is unharmed.
/// A run killed with SIGKILL leaves its checkpoint in unfinished/, which a new run will not
/// overwrite and `--resume` continues.
#[test]
fn runs_lock_their_folder_and_killed_runs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let bin = exe();
    let mut child = std::process::Command::new(&bin)
        .args([
            "train",
            "--quiet",
            "--epochs",
            "100000",
            "--patience",
            "0",
            "--checkpoint-every",
            "5",
            "--out",
        ])
        .arg(&run)
        .spawn()
        .unwrap();
    let ck = run.join("unfinished").join("checkpoint.safetensors");
    let t = std::time::Instant::now();
    while !ck.exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = fails(&["train", "--epochs", "1"], &run);
    assert!(err.contains("another downhill run"), "{err}");
    assert!(
        ck.exists(),
        "the second run must not touch the first one's files"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run.join("model.safetensors").exists());
    let err = fails(&["train", "--epochs", "1"], &run);
    assert!(err.contains("--resume") && err.contains("killed"), "{err}");
    assert!(ck.exists());
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "2", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    // The killed run may already be past epoch 2: then --epochs 2 is refused, naming the flag.
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("already trained"), "{err}");
        let done = downhill::checkpoint::load(&ck).unwrap().state.history.len();
        downhill()
            .args([
                "train",
                "--quiet",
                "--epochs",
                &(done + 1).to_string(),
                "--resume",
            ])
            .arg(&run)
            .assert()
            .success();
    }
    assert!(run.join("model.safetensors").exists() && run.join("summary.json").exists());
    assert!(!run.join("unfinished").exists());
}

/// stdout and stderr closed (as `downhill train | head -1` leaves them): training runs to the
/// end, the model is written, no panic.
#[test]
fn closed_pipes_never_stop_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let bin = exe();
    let mut child = std::process::Command::new(&bin)
        .args(["train", "--epochs", "3", "--out"])
        .arg(&run)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(run.join("model.safetensors").exists());
    // The same with --json (the summary goes to the closed stdout).
    let mut child = std::process::Command::new(&bin)
        .args(["train", "--json", "--epochs", "1", "--out"])
        .arg(dir.path().join("json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Runs started in the same second without --out get folders of their own.
#[test]
fn simultaneous_default_runs_get_their_own_folders() {
    let dir = tempfile::tempdir().unwrap();
    let bin = exe();
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(&bin)
                .args(["train", "--quiet", "--epochs", "1"])
                .current_dir(dir.path())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let folders: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(folders.len(), 3);
    for f in folders {
        assert!(f.path().join("summary.json").exists());
    }
}
