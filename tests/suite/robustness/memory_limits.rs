//! The size check before allocating honours the process's own limits, not only the machine's
//! free memory: under `ulimit -v` (an address-space limit) a network too large for it is a clear
//! error with exit 2 — before, the check passed on the machine's 20 GiB and the first large
//! allocation aborted the process (exit 134, "memory allocation of 835213440 bytes failed").

use crate::common::exe;
use std::process::Command;

/// `downhill ARGS` in a shell that first sets `ulimit -v KIB`.
fn under_ulimit(kib: u64, args: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {kib} && exec {} {args}",
            exe().display()
        ))
        .output()
        .unwrap()
}

#[test]
fn a_network_too_large_for_the_address_space_limit_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = under_ulimit(
        2_000_000,
        &format!(
            "train --data digits --epochs 1 --out {} --layers 'conv 4096 3 pad 1, relu, conv 4096 3 pad 1, flatten, dense 10'",
            out.display()
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("would need") && err.contains("GiB") && err.contains("available"),
        "{err}"
    );
    assert!(!out.exists(), "no run folder for a refused run");
    // The default network fits in the same limit.
    let o = under_ulimit(
        2_000_000,
        &format!("train --data digits --epochs 1 --out {}", out.display()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// What a run keeps beside training is in the estimate (issue 19, item 4): `--snapshots` keeps
/// the weights after every epoch, and writing the checkpoint copies the weights and the
/// optimiser's buffers. `--hidden 100000 --snapshots` under `ulimit -v 2000000` passed the check
/// and aborted after 51 s (exit 134), leaving `unfinished/`; now it is refused at once, naming
/// the snapshots, while a network that fits with its snapshots trains and keeps them.
#[test]
fn snapshots_and_the_checkpoint_are_in_the_memory_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = under_ulimit(
        2_000_000,
        &format!(
            "train --epochs 3 --hidden 100000 --snapshots --quiet --out {}",
            out.display()
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--snapshots") && err.contains("would need") && err.contains("available"),
        "{err}"
    );
    assert!(!out.exists(), "no run folder for a refused run");
    let o = under_ulimit(
        2_000_000,
        &format!(
            "train --data digits --epochs 2 --hidden 64 --snapshots --quiet --out {}",
            out.display()
        ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("trajectory.safetensors").exists());
}

/// The matrix products' packing buffers (twice the L3 cache per thread, taken whole at the first
/// product) are checked against the address-space limit before a run starts: under a limit that
/// leaves no room for them, a 200-row run aborted (exit 134, "memory allocation of 1006632960
/// bytes failed") and left `unfinished/` behind (eighth hostile pass, item 1).
#[test]
fn the_matrix_products_buffers_are_checked_against_the_address_space_limit() {
    let buffers = downhill::memory::product_buffers();
    if buffers == 0 {
        eprintln!("no L3 size to read here: nothing to check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let kib = buffers / 1024;
    for args in [
        format!("train --data digits --epochs 1 --out {}", out.display()),
        "lr-find --data digits".to_string(),
    ] {
        let o = under_ulimit(kib, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args}: {err}");
        assert!(err.contains("ulimit -v") && err.contains("L3"), "{err}");
        assert!(!out.exists(), "no run folder for a refused run");
    }
    let o = under_ulimit(
        kib + 400_000,
        &format!("train --data digits --epochs 1 --out {}", out.display()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // predict too (ninth pass, item 1), and `--threads auto` times no more threads than the
    // limit leaves room for (item 2: its second thread aborted).
    let model = out.join("model.safetensors");
    let input = dir.path().join("in.csv");
    std::fs::write(
        &input,
        vec!["0"; 64].join(",")
            + "
",
    )
    .unwrap();
    let o = under_ulimit(
        kib,
        &format!(
            "predict --model {} --input {}",
            model.display(),
            input.display()
        ),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("ulimit -v"), "{err}");
    let auto = dir.path().join("auto");
    let o = under_ulimit(
        kib + 400_000,
        &format!(
            "train --data digits --epochs 1 --threads auto --out {}",
            auto.display()
        ),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Tenth hostile pass, item 2: under `ulimit -v 300000` a 300-row table trained on one thread
/// but aborted with `--threads 2` and `--threads auto` (exit 134, "memory allocation of 67108864
/// bytes failed"): each further thread's malloc arena reserved 64 MiB of address space, which no
/// check counted. Under a limit the threads share one arena; the runs succeed with room for two
/// threads' product buffers and 160 MB beside them, and a refused run leaves no folder.
#[test]
fn two_threads_train_where_their_product_buffers_fit() {
    let buffers = downhill::memory::product_buffers();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t.csv");
    let mut s = String::from("x1,x2,y\n");
    for i in 0..300 {
        let (a, b) = (((i * 37) % 101) as f64 / 50.0 - 1.0, ((i * 11) % 13) as f64);
        s += &format!("{a},{b},{}\n", if a > 0.0 { "p" } else { "n" });
    }
    std::fs::write(&data, s).unwrap();
    let kib = 2 * buffers / 1024 + 160_000;
    for threads in ["2", "auto"] {
        let out = dir.path().join(format!("run{threads}"));
        let args = format!(
            "train -q --data {} --epochs 2 --threads {threads} --out {}",
            data.display(),
            out.display()
        );
        let o = under_ulimit(kib, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args} under ulimit -v {kib}: {err}");
        assert!(out.join("model.safetensors").exists());
    }
    if buffers > 0 {
        let out = dir.path().join("refused");
        let args = format!(
            "train -q --data {} --epochs 2 --threads 2 --out {}",
            data.display(),
            out.display()
        );
        let o = under_ulimit(buffers / 1024 + 60_000, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("ulimit -v"), "{err}");
        assert!(!out.exists(), "no run folder for a refused run");
    }
}
