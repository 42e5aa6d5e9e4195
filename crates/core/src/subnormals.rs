//! Subnormal floats flushed to zero while training.
//!
//! A float below the smallest normal number (1.18·10⁻³⁸ for `f32`, 2.2·10⁻³⁰⁸ for `f64`) is
//! *subnormal*. Training makes many of them: a weight whose input is almost always 0 (a border
//! pixel) gets a gradient now and then, and its momentum or Adam buffer then decays
//! geometrically, v ← μ·v, through the whole subnormal range. Intel cores handle each arithmetic
//! operation on a subnormal with a microcode assist of ~100 cycles; AMD Zen cores do not. On an
//! Intel Xeon a third of an MNIST epoch of SGD with momentum went to such assists.
//!
//! So the training threads run with subnormals flushed to zero. On x86-64 these are two bits of
//! the MXCSR register: FTZ (an operation whose result would be subnormal gives ±0) and DAZ
//! (subnormal inputs are read as ±0). On AArch64 it is FPCR's FZ bit. The change is below
//! 1.2·10⁻³⁸ (`f32`), far below anything a loss or an update can feel. TensorFlow and oneDNN set
//! the same bits for their training threads, and PyTorch offers `torch.set_flush_denormal(True)`.
//! On other targets, WebAssembly among them (its floats are IEEE with no such switch), nothing
//! changes.
//!
//! [`Flush::new`] sets the bits on the calling thread and restores what it found when dropped.
//! The training loop ([`crate::train::train_with`]), the learning-rate range test and the
//! playground's stepper hold one for as long as they run (and while they start their threads). [`crate::parallel::Team`]'s helper
//! threads start with the caller's bits, and with `threads > 1` the rayon pool that the matrix
//! products use gets them too, restored afterwards. `TrainConfig::flush_subnormals = false`
//! (`--keep-subnormals` on the command line) keeps exact IEEE arithmetic.
//!
//! ```
//! use downhill_core::subnormals::{Flush, flushing};
//! let tiny = std::hint::black_box(1e-20f32);
//! {
//!     let _flush = Flush::new(true, 1);
//!     // 10⁻⁴⁰ is below f32's smallest normal number: flushed, it is 0.
//!     if flushing() {
//!         assert_eq!(tiny * tiny, 0.0);
//!     }
//! }
//! assert!(!flushing());
//! assert!((tiny * tiny).is_subnormal()); // exact IEEE again
//! ```

use std::cell::Cell;

/// The bits of the floating-point control register that flush subnormals (x86-64: MXCSR's
/// FTZ, bit 15, and DAZ, bit 6; AArch64: FPCR's FZ, bit 24).
#[cfg(target_arch = "x86_64")]
const FLUSH: u64 = (1 << 15) | (1 << 6);
#[cfg(target_arch = "aarch64")]
const FLUSH: u64 = 1 << 24;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const FLUSH: u64 = 0;

/// The calling thread's floating-point control register (0 where there is none).
#[inline]
fn control() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut mxcsr: u32 = 0;
        // SAFETY: stmxcsr stores the 32-bit MXCSR register to the given, valid address.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack, preserves_flags))
        };
        mxcsr as u64
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
        fpcr
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        0
    }
}

/// Writes the calling thread's floating-point control register.
#[inline]
fn set_control(value: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        let mxcsr = value as u32;
        // SAFETY: ldmxcsr loads MXCSR from a valid address; the value is one read from the
        // register with only the FTZ/DAZ bits changed, so no reserved bit is set.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack, readonly, preserves_flags))
        };
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: the value is one read from FPCR with only the FZ bit changed.
        unsafe { std::arch::asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack)) };
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = value;
    }
}

/// Whether the calling thread flushes subnormals to zero (always false where it cannot).
// FLUSH is 0 on targets without flush bits (WebAssembly), where the mask test is vacuous.
#[allow(clippy::bad_bit_mask)]
pub fn flushing() -> bool {
    FLUSH != 0 && control() & FLUSH == FLUSH
}

/// The calling thread's flush bits, for a thread started on its behalf ([`adopt`]).
pub(crate) fn bits() -> u64 {
    control() & FLUSH
}

/// Gives the calling thread (a fresh helper) the flush bits of the thread that started it.
pub(crate) fn adopt(bits: u64) {
    if FLUSH != 0 {
        set_control((control() & !FLUSH) | (bits & FLUSH));
    }
}

thread_local! {
    /// Per thread: how many [`Flush`] guards (or pool broadcasts) are open, and the control
    /// register the outermost one found, to restore when the last one closes.
    static OPEN: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

/// Flushes on the calling thread (nested calls count; the outermost saves the register).
fn enter() {
    OPEN.with(|open| {
        let (depth, saved) = open.get();
        if depth == 0 {
            let now = control();
            set_control(now | FLUSH);
            open.set((1, now));
        } else {
            open.set((depth + 1, saved));
        }
    });
}

/// Undoes one [`enter`] on the calling thread; the last restores the saved register.
fn leave() {
    OPEN.with(|open| {
        let (depth, saved) = open.get();
        match depth {
            0 => {}
            1 => {
                set_control(saved);
                open.set((0, 0));
            }
            _ => open.set((depth - 1, saved)),
        }
    });
}

/// While alive, the calling thread (and with `threads > 1` the rayon pool of the matrix
/// products) flushes subnormals to zero; dropping it restores the state it found. See the
/// module docs.
#[must_use = "subnormals are flushed only while the guard lives"]
pub struct Flush {
    on: bool,
    pool: bool,
}

impl Flush {
    /// Flushes if `on` (else does nothing); `threads` is the run's thread count (the rayon
    /// pool is touched only when it is more than one, so a one-thread run starts no pool).
    pub fn new(on: bool, threads: usize) -> Flush {
        let on = on && FLUSH != 0;
        if on {
            enter();
        }
        let mut guard = Flush::pool(on, threads);
        guard.on = on;
        guard
    }

    /// Only the rayon pool's part of [`Flush::new`] (nothing with `threads` ≤ 1): for a caller
    /// that flushes its own thread already and starts its other threads first (so that a thread
    /// the system refuses is reported as such before the pool is asked to start).
    pub fn pool(on: bool, threads: usize) -> Flush {
        let pool = on && FLUSH != 0 && threads > 1 && cfg!(feature = "threads");
        if pool {
            #[cfg(feature = "threads")]
            rayon::broadcast(|_| enter());
        }
        Flush { on: false, pool }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        if self.pool {
            #[cfg(feature = "threads")]
            rayon::broadcast(|_| leave());
        }
        if self.on {
            leave();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest normal f32 halved: a subnormal, unless flushed.
    fn half_min() -> f32 {
        std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5)
    }

    #[test]
    fn flushes_while_the_guard_lives_and_restores_after() {
        assert!(!flushing());
        assert!(half_min().is_subnormal());
        {
            let _outer = Flush::new(true, 1);
            {
                let _inner = Flush::new(true, 1);
            }
            // The inner guard's drop leaves the outer one's flushing in place.
            if FLUSH != 0 {
                assert!(flushing());
                assert_eq!(half_min(), 0.0);
                // DAZ: a subnormal input reads as zero.
                let sub = std::hint::black_box(f32::from_bits(1));
                assert_eq!(sub * 1.0e30, 0.0);
            }
        }
        assert!(!flushing());
        assert!(half_min().is_subnormal());
    }

    #[test]
    fn off_does_nothing() {
        let _g = Flush::new(false, 4);
        assert!(!flushing());
        assert!(half_min().is_subnormal());
    }

    #[cfg(feature = "threads")]
    #[test]
    fn the_rayon_pool_flushes_with_more_than_one_thread_and_is_restored() {
        if FLUSH == 0 {
            return;
        }
        // A pool of this test's own (broadcasts reach the pool they are called in, as the
        // matrix products run in it), so that no other test's run can interfere.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let all = || {
                let seen = std::sync::Mutex::new(Vec::new());
                rayon::broadcast(|_| seen.lock().unwrap().push(flushing()));
                seen.into_inner().unwrap()
            };
            assert_eq!(all(), [false; 3]);
            {
                let _g = Flush::new(true, 2);
                assert_eq!(all(), [true; 3]);
            }
            assert_eq!(all(), [false; 3]);
        });
    }
}
