//! Data-parallel threads through the binary: a helper thread the operating system refuses to
//! start is a clear error naming `--threads` (exit 2, no run folder), not a panic.
//!
//! The refusal is real, not simulated: `RUST_MIN_STACK` (read by the standard library for every
//! thread it starts) asks for a 1 PB stack, which `mmap` cannot reserve, so `pthread_create`
//! fails with EAGAIN. It only affects the child process the test starts.

use assert_cmd::Command;

/// A stack no machine can reserve (2⁵⁰ bytes).
const HUGE_STACK: &str = "1125899906842624";

#[test]
fn a_thread_the_system_refuses_is_an_error_naming_threads() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = Command::cargo_bin("downhill")
        .unwrap()
        .env("RUST_MIN_STACK", HUGE_STACK)
        .args([
            "train",
            "--data",
            "digits",
            "--threads",
            "2",
            "--epochs",
            "1",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads"), "{err}");
    assert!(err.contains("refused to start thread 2 of 2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !run.exists(),
        "a run folder was made for a run that never started"
    );

    // The same run on one thread starts no helper, so the stack setting does not matter.
    let out = Command::cargo_bin("downhill")
        .unwrap()
        .env("RUST_MIN_STACK", HUGE_STACK)
        .args([
            "train",
            "--data",
            "digits",
            "--threads",
            "1",
            "--epochs",
            "1",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
