//! How fast the two cores of this machine hand data to each other: the round trip of one cache
//! line between two threads, and the rate at which 512 KB written by one core is read by the
//! other. Data-parallel training moves about 1 MB between the cores per step (the shard
//! gradients one way, the updated parameters the other), so on a virtual machine whose virtual
//! CPUs the host places sometimes on neighbouring cores and sometimes far apart, these figures
//! explain why `downhill bench`'s two-thread speed-up varies from run to run.
//!
//! ```text
//! cargo run --release --example core_latency
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn main() {
    let line = AtomicU64::new(0);
    let trips = 200_000u64;
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..trips {
                while line.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                line.store(2 * i + 2, Ordering::Release);
            }
        });
        for i in 0..trips {
            line.store(2 * i + 1, Ordering::Release);
            while line.load(Ordering::Acquire) != 2 * i + 2 {
                std::hint::spin_loop();
            }
        }
    });
    let round_trip = started.elapsed().as_secs_f64() / trips as f64;

    let buf: Vec<AtomicU64> = (0..65_536).map(|_| AtomicU64::new(0)).collect();
    let turn = AtomicU64::new(0);
    let rounds = 200u64;
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for r in 0..rounds {
                while turn.load(Ordering::Acquire) != 2 * r {
                    std::hint::spin_loop();
                }
                buf.iter().for_each(|x| x.store(r, Ordering::Relaxed));
                turn.store(2 * r + 1, Ordering::Release);
            }
        });
        let mut sum = 0;
        for r in 0..rounds {
            while turn.load(Ordering::Acquire) != 2 * r + 1 {
                std::hint::spin_loop();
            }
            sum += buf.iter().map(|x| x.load(Ordering::Relaxed)).sum::<u64>();
            turn.store(2 * r + 2, Ordering::Release);
        }
        std::hint::black_box(sum);
    });
    let bytes = rounds as f64 * 2.0 * (buf.len() * 8) as f64;
    println!(
        "cache-line round trip between two threads: {:.0} ns; 512 KB written by one core, read by the other: {:.1} GB/s",
        round_trip * 1e9,
        bytes / started.elapsed().as_secs_f64() / 1e9
    );
}
