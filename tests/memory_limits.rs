//! The size check before allocating honours the process's own limits, not only the machine's
//! free memory: under `ulimit -v` (an address-space limit) a network too large for it is a clear
//! error with exit 2 — before, the check passed on the machine's 20 GiB and the first large
//! allocation aborted the process (exit 134, "memory allocation of 835213440 bytes failed").

use std::process::Command;

/// `downhill ARGS` in a shell that first sets `ulimit -v KIB`.
fn under_ulimit(kib: u64, args: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {kib} && exec {} {args}",
            env!("CARGO_BIN_EXE_downhill")
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
