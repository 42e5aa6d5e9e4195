//! Helpers shared by the table tests (`tests/tables.rs`, `tests/tables_hostile.rs`): run the
//! binary expecting success or a clean failure, read its JSON, write a file.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn downhill() -> Command {
    Command::cargo_bin("downhill").unwrap()
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

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
