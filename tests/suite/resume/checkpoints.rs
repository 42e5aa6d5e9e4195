//! Checkpoints: a run resumed from any saved state ends with the same weights, bit for bit, as
//! the run that was never interrupted — mid-epoch or at an epoch boundary, with momentum or
//! Adam state, dropout masks, the L2 penalty and early stopping's best weights in play.

use crate::common::{downhill, exe};
use downhill::data::Dataset;
use downhill::optim::{AdamConfig, OptimizerConfig, Schedule, SgdConfig};
use downhill::train::{
    Checkpointing, Every, Extras, NoObserver, TrainConfig, TrainState, train_with,
};
use downhill::{Activation, Init, Network, Rng};
use rand::SeedableRng;

fn problem() -> (Dataset, Dataset) {
    let x: Vec<f32> = (0..300 * 6)
        .map(|i| ((i * 7919 % 997) as f32 / 997.0) - 0.5)
        .collect();
    let y: Vec<u32> = (0..300).map(|i| ((i * 31) % 3) as u32).collect();
    let all = Dataset::classification(x, 6, y, 3).unwrap();
    (
        all.subset(&(0..250).collect::<Vec<_>>()),
        all.subset(&(250..300).collect::<Vec<_>>()),
    )
}

fn run(
    opt: &OptimizerConfig,
    resume: Option<TrainState<f32>>,
    every: Option<Every>,
) -> (Vec<f32>, Vec<TrainState<f32>>) {
    run_on(1, opt, resume, every)
}

/// One thread with dropout; or `threads > 1` without dropout, the data-parallel path, whose
/// optimiser state lives in one part per thread.
fn run_on(
    threads: usize,
    opt: &OptimizerConfig,
    resume: Option<TrainState<f32>>,
    every: Option<Every>,
) -> (Vec<f32>, Vec<TrainState<f32>>) {
    let dropout = if threads == 1 { 0.3 } else { 0.0 };
    run_with(threads, dropout, opt, resume, every)
}

/// [`run_on`] with the dropout probability given.
fn run_with(
    threads: usize,
    dropout: f64,
    opt: &OptimizerConfig,
    resume: Option<TrainState<f32>>,
    every: Option<Every>,
) -> (Vec<f32>, Vec<TrainState<f32>>) {
    let (data, val) = problem();
    let mut rng = Rng::seed_from_u64(11);
    let mut net = Network::<f32>::mlp(
        &[6, 16, 3],
        Activation::Relu,
        dropout,
        Init::HeNormal,
        &mut rng,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 32,
        l2: 1e-3,
        patience: Some(10),
        threads,
        ..Default::default()
    };
    let mut saved = Vec::new();
    let mut save = |s: &TrainState<f32>| {
        saved.push(s.clone());
        Ok(())
    };
    let ck = every.map(|every| Checkpointing {
        every,
        save: &mut save,
    });
    let extras = Extras {
        val: Some(&val),
        observer: Some(&mut NoObserver),
        resume,
        checkpoint: ck,
    };
    train_with(
        &mut net,
        &data,
        opt,
        &Schedule::default(),
        &cfg,
        &mut rng,
        extras,
    )
    .unwrap();
    (net.params().to_vec(), saved)
}

#[test]
fn resuming_from_any_checkpoint_gives_the_same_weights() {
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    });
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    for opt in [sgd, adam] {
        let (uninterrupted, _) = run(&opt, None, None);
        // 250 examples in batches of 32: 8 steps an epoch; every 5 steps lands mid-epoch and on boundaries.
        let (same, states) = run(&opt, None, Some(Every::Steps(5)));
        assert_eq!(same, uninterrupted, "checkpointing must not change the run");
        assert!(
            states.iter().any(|s| s.step > 0) && states.iter().any(|s| s.step == 0 && s.epoch > 0)
        );
        for s in &states {
            let (resumed, _) = run(&opt, Some(s.clone()), None);
            assert_eq!(
                resumed, uninterrupted,
                "{opt:?}: resumed at epoch {} step {}",
                s.epoch, s.step
            );
        }
        let (_, epochs) = run(&opt, None, Some(Every::Epoch));
        assert_eq!(
            epochs.iter().map(|s| (s.epoch, s.step)).collect::<Vec<_>>(),
            // … and the final state, from which the run can be continued for more epochs.
            [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)]
        );
        let (resumed, _) = run(&opt, Some(epochs[2].clone()), None);
        assert_eq!(resumed, uninterrupted);
    }
}

#[test]
fn data_parallel_runs_resume_bit_for_bit() {
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let sgd = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        ..Default::default()
    });
    // 163 parameters: two threads hold the optimiser state in parts 0..96 and 96..163, three in
    // 0..64, 64..128 and 128..163; a checkpoint stores the parts concatenated.
    for threads in [2, 3] {
        for opt in [sgd, adam] {
            let (uninterrupted, _) = run_on(threads, &opt, None, None);
            let (same, states) = run_on(threads, &opt, None, Some(Every::Steps(5)));
            assert_eq!(same, uninterrupted, "checkpointing must not change the run");
            for s in &states {
                let (resumed, _) = run_on(threads, &opt, Some(s.clone()), None);
                assert_eq!(
                    resumed, uninterrupted,
                    "{threads} threads, {opt:?}: resumed at epoch {} step {}",
                    s.epoch, s.step
                );
            }
            // The saved state is the whole optimiser's, so another thread count can resume it.
            let (other, _) = run_on(5 - threads, &opt, Some(states[3].clone()), None);
            let diff = other
                .iter()
                .zip(&uninterrupted)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff < 1e-4,
                "{threads} threads resumed on another count: {diff}"
            );
        }
    }
}

fn model_params(path: &std::path::Path) -> Vec<f32> {
    downhill::io::load(path).unwrap().net.params().to_vec()
}

#[test]
fn cli_resume_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = [
        "train",
        "--quiet",
        "--epochs",
        "3",
        "--dropout",
        "0.2",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--checkpoint-every",
        "40",
    ];
    downhill()
        .args(args)
        .arg("--out")
        .arg(&a)
        .assert()
        .success();
    // The last checkpoint A wrote stands for an interruption there: resume it in another folder
    // (with the history log it covers).
    std::fs::create_dir(&b).unwrap();
    for f in ["checkpoint.safetensors", "metrics.jsonl"] {
        std::fs::copy(a.join(f), b.join(f)).unwrap();
    }
    let out = downhill()
        .args(["train", "--json", "--resume"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["epochs"], 3);
    assert_eq!(
        model_params(&a.join("model.safetensors")),
        model_params(&b.join("model.safetensors"))
    );
    let lines = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines(&b), 3);
    // --resume takes its settings from the checkpoint; other settings are refused.
    let err = downhill()
        .args(["train", "--lr", "0.1", "--resume"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        !err.status.success() && String::from_utf8_lossy(&err.stderr).contains("--resume alone")
    );
    // A model file is not a checkpoint.
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    std::fs::copy(
        a.join("model.safetensors"),
        c.join("checkpoint.safetensors"),
    )
    .unwrap();
    let err = downhill()
        .args(["train", "--resume"])
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("not a checkpoint"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
}

/// Killed at an arbitrary moment while writing a checkpoint after every step, the run folder
/// holds a complete checkpoint that resumes, and no model file (training had not finished).
#[test]
fn a_killed_run_leaves_a_complete_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bin = exe();
    let mut child = std::process::Command::new(bin)
        .args([
            "train",
            "--quiet",
            "--epochs",
            "200",
            "--checkpoint-every",
            "1",
            "--out",
        ])
        .arg(&out)
        .spawn()
        .unwrap();
    // A run stages its files in unfinished/ until it has succeeded.
    let ck = out.join("unfinished").join("checkpoint.safetensors");
    let started = std::time::Instant::now();
    while !ck.exists() && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("model.safetensors").exists());
    let loaded = downhill::checkpoint::load(&ck).expect("the checkpoint is complete");
    assert!(loaded.state.epoch < 200);
    let leftovers: Vec<_> = std::fs::read_dir(out.join("unfinished"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    // A temporary file may remain from the write the kill interrupted; it is never the checkpoint.
    assert!(leftovers.len() <= 1);
}

/// Data-parallel threads with dropout: each thread's masks come from a generator seeded for each
/// step from the run's, so the run is reproducible and resumes bit for bit.
#[test]
fn data_parallel_runs_with_dropout_resume_bit_for_bit() {
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: 0.01,
        ..Default::default()
    });
    let (uninterrupted, _) = run_with(2, 0.3, &adam, None, None);
    let (again, states) = run_with(2, 0.3, &adam, None, Some(Every::Steps(5)));
    assert_eq!(
        again, uninterrupted,
        "same seed, same threads: same weights"
    );
    for s in &states {
        let (resumed, _) = run_with(2, 0.3, &adam, Some(s.clone()), None);
        assert_eq!(
            resumed, uninterrupted,
            "resumed at epoch {} step {}",
            s.epoch, s.step
        );
    }
    // The masks are drawn: the run is not the run without dropout.
    let (plain, _) = run_with(2, 0.0, &adam, None, None);
    assert_ne!(plain, uninterrupted, "dropout must change the run");
}

/// A checkpoint written by an earlier version (`tests/fixtures/fnv-checkpoint`: `downhill train
/// --hidden 3 --epochs 1 --seed 3` on the embedded digits, before checkpoints recorded the
/// data's XXH3 fingerprint) carries the old FNV-1a fingerprint: `--resume` checks the data
/// with it and continues to the same weights as a fresh two-epoch run.
#[test]
fn a_checkpoint_with_the_earlier_fingerprint_still_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (old, fresh) = (dir.path().join("old"), dir.path().join("fresh"));
    std::fs::create_dir(&old).unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fnv-checkpoint");
    for f in std::fs::read_dir(&fixture).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, old.join(f.file_name().unwrap())).unwrap();
    }
    let bytes = std::fs::read(old.join("checkpoint.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&bytes[..4096]).into_owned();
    assert!(header.contains("data_fingerprint") && !header.contains("data_xxh3"));
    // The same file with one digit of its fingerprint changed is refused as other data.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for f in ["summary.json", "model.safetensors", "metrics.jsonl"] {
        std::fs::copy(old.join(f), tampered.join(f)).unwrap();
    }
    let (from, to) = (&b"5834035514486526956"[..], &b"5834035514486526957"[..]);
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let mut changed = bytes.clone();
    changed[at..at + to.len()].copy_from_slice(to);
    std::fs::write(tampered.join("checkpoint.safetensors"), changed).unwrap();
    let out = downhill()
        .args([
            "train",
            "--quiet",
            "--resume",
            tampered.to_str().unwrap(),
            "--epochs",
            "2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("resumed training data"),
        "{err}"
    );
    downhill()
        .args([
            "train",
            "--quiet",
            "--resume",
            old.to_str().unwrap(),
            "--epochs",
            "2",
        ])
        .assert()
        .success();
    let args = [
        "train", "--quiet", "--hidden", "3", "--epochs", "2", "--seed", "3", "--out",
    ];
    downhill().args(args).arg(&fresh).assert().success();
    assert_eq!(
        model_params(&old.join("model.safetensors")),
        model_params(&fresh.join("model.safetensors"))
    );
    let header = std::fs::read(old.join("checkpoint.safetensors")).unwrap();
    assert!(String::from_utf8_lossy(&header[..4096]).contains("data_xxh3"));
}

/// A run that has finished is left as it is by `--resume`, which says so and exits 0: one
/// ended by early stopping (more epochs would not change that; it used to train one more epoch
/// each time and republish), and one that ran all its epochs when no larger total is asked
/// for. With `--epochs N` beyond them, the second trains on.
#[test]
fn resuming_a_finished_run_leaves_it_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let files = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let (early, full) = (dir.path().join("early"), dir.path().join("full"));
    let early_args = [
        "train",
        "--quiet",
        "--hidden",
        "8",
        "--epochs",
        "60",
        "--patience",
        "1",
    ];
    downhill()
        .args(early_args)
        .arg("--out")
        .arg(&early)
        .assert()
        .success();
    let summary = std::fs::read_to_string(early.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"stopped_by\": \"early-stopping\""),
        "{summary}"
    );
    let full_args = ["train", "--quiet", "--hidden", "8", "--epochs", "2"];
    downhill()
        .args(full_args)
        .arg("--out")
        .arg(&full)
        .assert()
        .success();
    for (run, epochs) in [
        (&early, None),
        (&early, Some("80")),
        (&full, None),
        (&full, Some("2")),
    ] {
        let before = files(run);
        let mut cmd = downhill();
        cmd.args(["train", "--resume", run.to_str().unwrap()]);
        if let Some(n) = epochs {
            cmd.args(["--epochs", n]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("has finished") && err.contains("unchanged"),
            "{err}"
        );
        assert!(files(run) == before, "{run:?} {epochs:?} changed");
    }
    downhill()
        .args([
            "train",
            "--quiet",
            "--resume",
            full.to_str().unwrap(),
            "--epochs",
            "3",
        ])
        .assert()
        .success();
    let summary = std::fs::read_to_string(full.join("summary.json")).unwrap();
    assert!(summary.contains("\"epochs\": 3"), "{summary}");
}

/// `--resume --epochs N` equals a fresh N-epoch run bit for bit when the schedule does not
/// depend on the total (here `step` decay with warm-up); with `cosine`, which anneals to the
/// last epoch, it cannot, and the run says so.
#[test]
fn extending_a_run_equals_a_fresh_one_unless_the_schedule_anneals_to_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "train", "--quiet", "--hidden", "8", "--seed", "1", "--warmup", "1",
    ];
    let (short, long) = (dir.path().join("short"), dir.path().join("long"));
    let step = ["--schedule", "step:2:0.5"];
    downhill()
        .args(base)
        .args(step)
        .args(["--epochs", "3", "--out"])
        .arg(&short)
        .assert()
        .success();
    downhill()
        .args(["train", "--quiet", "--resume"])
        .arg(&short)
        .args(["--epochs", "5"])
        .assert()
        .success();
    downhill()
        .args(base)
        .args(step)
        .args(["--epochs", "5", "--out"])
        .arg(&long)
        .assert()
        .success();
    assert_eq!(
        model_params(&short.join("model.safetensors")),
        model_params(&long.join("model.safetensors"))
    );
    let cosine = dir.path().join("cosine");
    downhill()
        .args(base)
        .args(["--schedule", "cosine", "--epochs", "3", "--out"])
        .arg(&cosine)
        .assert()
        .success();
    let out = downhill()
        .args(["train", "--resume"])
        .arg(&cosine)
        .args(["--epochs", "5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cosine schedule anneals") && err.contains("epochs 1 to 3"),
        "{err}"
    );
}

/// `--init` reads a checkpoint as the README says: its weights, with the training state
/// (`optimizer.*`, `train.*`) left aside. A run that ends with all its epochs keeps the same
/// weights in both files, so starting from either gives the same run.
#[test]
fn init_takes_the_weights_of_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    // No validation split: no early stopping, so the model holds the checkpoint's weights.
    let args = [
        "train",
        "--quiet",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--seed",
        "5",
        "--val-fraction",
        "0",
    ];
    downhill()
        .args(args)
        .arg("--out")
        .arg(&first)
        .assert()
        .success();
    let runs: Vec<_> = ["model.safetensors", "checkpoint.safetensors"]
        .iter()
        .map(|f| {
            let out = dir.path().join(f);
            let o = downhill()
                .args(args)
                .arg("--init")
                .arg(first.join(f))
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{f}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            model_params(&out.join("model.safetensors"))
        })
        .collect();
    assert!(
        runs[0] == runs[1],
        "--init from the model and the checkpoint differ"
    );
    assert!(runs[0] != model_params(&first.join("model.safetensors")));
}
