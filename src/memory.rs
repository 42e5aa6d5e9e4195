//! Sizes checked before memory is reserved: every allocation whose size comes from input (flags,
//! file metadata, data) is computed with checked arithmetic and compared with the memory the
//! machine has available, so an absurd size is a clear error that says how much would be needed
//! — never a capacity-overflow panic or an aborted multi-gigabyte allocation.

use crate::error::{Error, Result};

/// Bytes of memory available to this process: `MemAvailable` of `/proc/meminfo` (Linux), else
/// 16 GiB.
pub fn available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemAvailable:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(16 << 30, |kb| kb.saturating_mul(1024))
}

/// `n` bytes as people read them (KiB, MiB, GiB, TiB).
pub fn human(n: u128) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Fails with [`Error::TooLarge`] if `bytes` (`None`: beyond any count) exceeds the memory
/// available; `what` names what would need it.
pub fn check(what: impl Into<String>, bytes: Option<u128>) -> Result<()> {
    let avail = available();
    match bytes {
        Some(b) if b <= avail as u128 => Ok(()),
        _ => Err(Error::TooLarge {
            what: what.into(),
            needed: bytes.map_or("more than 2⁶⁴ bytes".into(), human),
            available: human(avail as u128),
        }),
    }
}

/// `a × b` and more, in u128 (which no product of two usize overflows), for size estimates.
pub fn product(factors: &[usize]) -> Option<u128> {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
}
