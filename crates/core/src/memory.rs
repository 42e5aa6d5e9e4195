//! Sizes checked before memory is reserved: every allocation whose size comes from input (flags,
//! file metadata, data) is computed with checked arithmetic and compared with the memory the
//! machine has available, so an absurd size is a clear error that says how much would be needed
//! — never a capacity-overflow panic or an aborted multi-gigabyte allocation.

use crate::error::{Error, Result};

/// Bytes of memory available to this process: the least of the machine's `MemAvailable`
/// (`/proc/meminfo`), what the process's memory cgroup still allows (v2 `memory.max` −
/// `memory.current`, or v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`: a container's
/// limit), and what its address-space limit still allows (`ulimit -v`: the soft "Max address
/// space" of `/proc/self/limits` − `VmSize` of `/proc/self/status`). Where none can be read (not
/// Linux), 16 GiB.
pub fn available() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let machine = read("/proc/meminfo").and_then(|s| kib_field(&s, "MemAvailable:"));
    let cgroup = read("/proc/self/cgroup").and_then(|c| cgroup_room(&c, &|p| read(p)));
    let address = read("/proc/self/limits").and_then(|l| {
        let used = read("/proc/self/status").and_then(|s| kib_field(&s, "VmSize:"));
        address_room(&l, used.unwrap_or(0))
    });
    [machine, cgroup, address]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(16 << 30)
}

/// A `Name:   123 kB` line of `/proc/meminfo` or `/proc/self/status`, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    })
}

/// The room left under the memory cgroup's limit, for `/proc/self/cgroup`'s text; `read` reads
/// a file of the cgroup filesystem. `None` without a limit (or where none can be read). The
/// cgroup's own folder is tried first, then the mount's root (a container sees its own cgroup
/// there).
fn cgroup_room(cgroups: &str, read: &dyn Fn(&str) -> Option<String>) -> Option<u64> {
    let num = |p: String| read(&p).and_then(|t| t.trim().parse::<u64>().ok());
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (controllers, path) = match (f.next(), f.next(), f.next()) {
            (Some(_), Some(c), Some(p)) => (c, p.trim_end_matches('/')),
            _ => continue,
        };
        let (dir, limit, usage) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        for base in [format!("{dir}{path}"), dir.to_string()] {
            // "max" (v2) or a page-rounded 2⁶³ (v1) is no limit.
            if let Some(max) = num(format!("{base}/{limit}")).filter(|&m| m < 1 << 62) {
                let used = num(format!("{base}/{usage}")).unwrap_or(0);
                return Some(max.saturating_sub(used));
            }
        }
    }
    None
}

/// The room left under the soft address-space limit, for `/proc/self/limits`' text and the
/// process's current virtual size in bytes; `None` when unlimited.
fn address_room(limits: &str, used: u64) -> Option<u64> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line["Max address space".len()..]
        .split_whitespace()
        .next()?;
    soft.parse::<u64>().ok().map(|max| max.saturating_sub(used))
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

/// Address space the matrix products reserve on each thread that runs them: the x86 kernels
/// under faer keep a thread-local packing buffer of twice the CPU's last-level (L3) cache, taken
/// whole at the first product (pages untouched until used, but counted by `ulimit -v`). 0 where
/// the cache size cannot be read or on other CPUs.
pub fn product_buffers() -> u64 {
    if !cfg!(target_arch = "x86_64") {
        return 0;
    }
    let size = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size")
        .ok()
        .and_then(|t| cache_size(&t));
    size.map_or(0, |b| b.saturating_mul(2))
}

/// A sysfs cache size (`491520K`, `32M`, `1024`) in bytes.
fn cache_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.as_bytes().last()? {
        b'K' => (&t[..t.len() - 1], 1u64 << 10),
        b'M' => (&t[..t.len() - 1], 1 << 20),
        b'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits.parse::<u64>().ok().map(|n| n.saturating_mul(unit))
}

/// Address space kept beside the product buffers for the rest of a small run.
const PRODUCT_MARGIN: u128 = 16 << 20;

/// The room left under the address-space limit (`ulimit -v`), if there is one.
fn address_space_room() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    read("/proc/self/limits").and_then(|l| {
        let used = read("/proc/self/status").and_then(|s| kib_field(&s, "VmSize:"));
        address_room(&l, used.unwrap_or(0))
    })
}

/// Whether the process runs under an address-space limit (`ulimit -v`).
pub fn address_space_limited() -> bool {
    address_space_room().is_some()
}

/// How many of `max` threads can run matrix products under the address-space limit (their
/// buffers, [`product_buffers`], come on top of what the process holds now): at least 1.
pub fn product_threads_with_room(max: usize) -> usize {
    let per = product_buffers() as u128;
    match address_space_room() {
        Some(room) if per > 0 => {
            let fit = (room as u128).saturating_sub(PRODUCT_MARGIN) / per;
            (fit.min(max as u128) as usize).max(1)
        }
        _ => max.max(1),
    }
}

/// Fails (naming `ulimit -v`) when the address-space limit (`ulimit -v`) leaves no room for
/// the matrix products' buffers of `threads` threads ([`product_buffers`]): the library would
/// abort the process at the first product. Passes once and then no longer checks (the buffers
/// are then taken).
pub fn check_room_for_products(threads: usize) -> Result<()> {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let room = address_space_room();
    let per = product_buffers();
    // Room for the buffers and a little for the rest of a small run.
    let need = (per as u128) * threads.max(1) as u128 + PRODUCT_MARGIN;
    match room {
        Some(r) if per > 0 && (r as u128) < need => Err(Error::setting(
            "address-space limit (ulimit -v)",
            format!("{} free", human(r as u128)),
            format!(
                "the matrix products reserve {} of address space on each thread that runs them \
                 (twice the CPU's L3 cache), at the first product; {} thread(s) need about {} \
                 free: raise the limit",
                human(per as u128),
                threads.max(1),
                human(need)
            ),
        )),
        _ => {
            DONE.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }
}

/// `a × b` and more, in u128 (which no product of two usize overflows), for size estimates.
pub fn product(factors: &[usize]) -> Option<u128> {
    factors
        .iter()
        .try_fold(1u128, |acc, &f| acc.checked_mul(f as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_v1_limit_leaves_the_room_under_it() {
        let files = |p: &str| match p {
            "/sys/fs/cgroup/memory/box/a/memory.limit_in_bytes" => Some("4294967296\n".into()),
            "/sys/fs/cgroup/memory/box/a/memory.usage_in_bytes" => Some("1073741824\n".into()),
            _ => None,
        };
        let text = "5:pids:/\n4:memory:/box/a\n0::/\n";
        assert_eq!(cgroup_room(text, &files), Some(3 << 30));
        // Unlimited (2⁶³ rounded to pages): no limit.
        let open = |p: &str| {
            p.ends_with("limit_in_bytes")
                .then(|| "9223372036854771712".into())
        };
        assert_eq!(cgroup_room(text, &open), None);
    }

    #[test]
    fn a_cgroup_v2_limit_is_read_from_the_cgroup_or_the_mount_root() {
        let text = "0::/user.slice/run-1.scope\n";
        let own = |p: &str| match p {
            "/sys/fs/cgroup/user.slice/run-1.scope/memory.max" => Some("2000\n".into()),
            "/sys/fs/cgroup/user.slice/run-1.scope/memory.current" => Some("500\n".into()),
            _ => None,
        };
        assert_eq!(cgroup_room(text, &own), Some(1500));
        let root = |p: &str| match p {
            "/sys/fs/cgroup/memory.max" => Some("1000".into()),
            "/sys/fs/cgroup/memory.current" => Some("1200".into()),
            _ => None,
        };
        assert_eq!(cgroup_room(text, &root), Some(0));
        let max = |p: &str| p.ends_with("memory.max").then(|| "max\n".into());
        assert_eq!(cgroup_room(text, &max), None);
    }

    #[test]
    fn cache_sizes_as_sysfs_writes_them() {
        assert_eq!(cache_size("491520K\n"), Some(491_520 << 10));
        assert_eq!(cache_size("32M"), Some(32 << 20));
        assert_eq!(cache_size("1024"), Some(1024));
        assert_eq!(cache_size("big"), None);
    }

    #[test]
    fn the_address_space_limit_leaves_the_room_under_it() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max stack size            8388608              unlimited            bytes\n\
                      Max address space         2048000000           unlimited            bytes\n";
        assert_eq!(address_room(limits, 48_000_000), Some(2_000_000_000));
        let open = limits.replace("2048000000", "unlimited");
        assert_eq!(address_room(&open, 48_000_000), None);
        assert_eq!(
            kib_field("MemTotal: 10 kB\nMemAvailable:   2 kB\n", "MemAvailable:"),
            Some(2048)
        );
    }
}
