//! Helpers shared by the suite's modules: the binary (as an `assert_cmd` command or a path),
//! runs expecting success or a clean failure, its JSON, files and IDX bytes written for a test,
//! and signals sent to a child.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn downhill() -> Command {
    Command::cargo_bin("downhill").unwrap()
}

/// The path of the binary, for `std::process::Command` (children to signal or to feed).
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_downhill"))
}

pub fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Runs downhill, expecting success; returns (stdout, stderr).
pub fn ok(args: &[&str]) -> (String, String) {
    let out = downhill().args(args).output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?} failed: {e}");
    (o, e)
}

/// Runs downhill, expecting a clean failure (exit 1-2, no panic); returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = downhill().args(args).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        !e.contains("panicked") && matches!(out.status.code(), Some(1..=2)),
        "{args:?}: {e}"
    );
    e
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// An IDX file's bytes: the magic number with element type `magic_type` (8 = unsigned byte),
/// the dimensions (big-endian), then `data`.
pub fn idx_typed(dims: &[u32], magic_type: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, magic_type, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// An IDX file of unsigned bytes.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    idx_typed(dims, 8, data)
}

/// Sends `signal` (`"-INT"`, `"-TERM"`, …) to process `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Waits until the run `child` trains into the new folder `out` has finished `epochs` epochs —
/// their lines in its history log, `out/unfinished/metrics.jsonl` — so that a signal sent next
/// reaches it mid-training (not while it reads its data). Fails if the run ends first or takes
/// more than 60 s.
pub fn wait_for_epochs(child: &mut std::process::Child, out: &Path, epochs: usize) {
    let log = out.join("unfinished").join("metrics.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(true, |s| s.lines().count() < epochs) {
        assert!(t0.elapsed().as_secs() < 60, "the run did not start");
        assert!(child.try_wait().unwrap().is_none(), "the run ended");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
