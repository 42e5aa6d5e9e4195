//! Checkpoints and resume of networks with image layers, bit for bit through the binary: the
//! weights, BatchNorm's running statistics and num_batches_tracked of a run extended with
//! `--resume DIR --epochs N` (or stopped by Ctrl-C mid-epoch and resumed) equal those of the run
//! that was never stopped — for SGD with momentum and Adam, with early stopping's best weights
//! (which include the running statistics), and with two threads (BatchNorm networks split the
//! matrix products, never the batch: see `train::step`).

use std::path::Path;

use crate::common::{downhill, exe, signal, wait_for_epochs};

const NET: &str =
    "conv 4 3 stride 2, batchnorm, relu, maxpool 2, flatten, dropout 0.1, batchnorm, dense";

/// Parameters, buffers and num_batches_tracked of a model file, as bits.
fn state(path: &Path) -> (Vec<u32>, Vec<u32>, Vec<i64>) {
    let m = downhill::io::load(path).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (
        bits(m.net.params()),
        bits(m.net.buffers()),
        m.net.tracked().to_vec(),
    )
}

fn train(out: &Path, epochs: &str, variant: &[&str]) {
    let o = downhill()
        .args(["train", "--quiet", "--data", "digits", "--layers", NET])
        .args(["--batch-size", "50", "--epochs", epochs])
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

#[test]
fn conv_batchnorm_runs_extend_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [&[&str]; 4] = [
        &[
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--lr",
            "0.05",
            "--patience",
            "0",
        ],
        &["--optimizer", "adam", "--lr", "0.001", "--patience", "0"],
        // Early stopping's best (weights and running statistics) carried through the checkpoint.
        &["--optimizer", "adam", "--lr", "0.001", "--patience", "2"],
        &[
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--threads",
            "2",
            "--patience",
            "0",
        ],
    ];
    for (i, v) in variants.iter().enumerate() {
        let (whole, part) = (
            dir.path().join(format!("w{i}")),
            dir.path().join(format!("p{i}")),
        );
        train(&whole, "3", v);
        train(&part, "2", v);
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
        let (a, b) = (
            state(&whole.join("model.safetensors")),
            state(&part.join("model.safetensors")),
        );
        assert!(!a.1.is_empty());
        assert_eq!(a, b, "{v:?}: continued for a third epoch");
        // 3 epochs of ceil(3,600 / 50) = 72 steps, each BatchNorm layer counted them.
        assert_eq!(a.2.iter().filter(|&&t| t > 0).count(), 2);
        if i == 2 {
            continue; // early stopping may have restored an earlier epoch's statistics
        }
        assert!(a.2.iter().all(|&t| t == 0 || t == 216), "{:?}", a.2);
    }
}

/// Two threads give the one-thread run's numbers to rounding (the products are split, the
/// statistics are the whole batch's).
#[test]
fn two_threads_agree_with_one_to_rounding() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let common = ["--optimizer", "sgd", "--lr", "0.05", "--patience", "0"];
    train(&one, "1", &common);
    train(&two, "1", &[&common[..], &["--threads", "2"]].concat());
    let (a, b) = (
        downhill::io::load(&one.join("model.safetensors"))
            .unwrap()
            .net,
        downhill::io::load(&two.join("model.safetensors"))
            .unwrap()
            .net,
    );
    let diff = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        diff(a.params(), b.params()) < 1e-3,
        "{}",
        diff(a.params(), b.params())
    );
    assert!(diff(a.buffers(), b.buffers()) < 1e-3);
    assert_eq!(a.tracked(), b.tracked());
}

/// Ctrl-C mid-epoch: the checkpoint holds the running statistics of the last step, and the
/// resumed run ends bit for bit where the uninterrupted run ends.
#[test]
fn ctrl_c_mid_epoch_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let common = [
        "train",
        "--data",
        "digits",
        "--layers",
        NET,
        "--batch-size",
        "20",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--patience",
        "0",
    ];
    let bin = exe();
    let mut child = std::process::Command::new(&bin)
        .args(common)
        .args(["--epochs", "1000000", "--out"])
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
    let ck = downhill::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert!(!ck.state.buffers.is_empty());
    let steps = ck.state.epoch * 180 + ck.state.step;
    assert!(
        ck.state.tracked.contains(&(steps as i64)),
        "{:?} after {steps} steps",
        ck.state.tracked
    );
    let total = (ck.state.epoch + 2).to_string();
    let whole = dir.path().join("whole");
    let o = downhill()
        .args(common)
        .args(["--quiet", "--epochs", &total, "--out"])
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = downhill()
        .args(["train", "--quiet", "--epochs", &total, "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        state(&whole.join("model.safetensors")),
        state(&run.join("model.safetensors"))
    );
}
