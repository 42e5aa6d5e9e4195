//! A team of threads that stays together for a whole training run: the calling thread and
//! `threads − 1` helpers, which between jobs wait by spinning (then, after a while, sleeping).
//!
//! [`Team::run`] runs `f(0)` on the calling thread and `f(1)`, …, `f(threads − 1)` on the helpers,
//! and returns when all are done — the fork and join of one data-parallel phase. A training step
//! has two such phases of a few hundred microseconds each; a pool whose idle workers go to sleep
//! after tens of microseconds (rayon's) pays a wake-up per phase, which on a virtual machine
//! costs ~100 µs — as much as the second phase itself. Here a helper that finished its part spins
//! for [`SPIN`] before it sleeps, so the next phase starts within a fraction of a microsecond,
//! and the caller need not run inside any pool.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! let team = downhill_core::parallel::Team::new(3).unwrap();
//! let sum = AtomicUsize::new(0);
//! team.run(&|i| { sum.fetch_add(i + 1, Ordering::Relaxed); });
//! assert_eq!(sum.into_inner(), 1 + 2 + 3);
//! ```

use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long an idle thread spins before it sleeps (helpers) or yields (the caller).
pub const SPIN: Duration = Duration::from_micros(200);

/// The job of the current phase, lifetime erased: `call(data, i)` calls the caller's closure.
#[derive(Clone, Copy)]
struct Job {
    data: *const (),
    call: unsafe fn(*const (), usize),
}

/// Calls the closure of type `F` behind `data`.
///
/// # Safety
/// `data` must point to a live `F`.
unsafe fn call<F: Fn(usize) + Sync>(data: *const (), i: usize) {
    // SAFETY: the caller guarantees `data` is a live `F`.
    let f = unsafe { &*data.cast::<F>() };
    f(i)
}

struct Shared {
    /// Bumped by every `run` (and by `drop`); a helper starts when it sees a new value.
    generation: AtomicU64,
    /// Written by `run` before it bumps `generation`, read by helpers after they see the bump.
    job: UnsafeCell<Job>,
    /// Helpers done with the current generation.
    done: AtomicUsize,
    stop: AtomicBool,
    /// Per helper: it is (about to be) parked and needs an unpark to see the next job.
    sleeping: Vec<AtomicBool>,
    /// The first panic of a helper in the current phase, re-raised by `run`.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` is written only by `run` while no helper reads it (all helpers have finished the
// previous generation, and the new one is published after the write with Release ordering), and
// read by helpers only after an Acquire load of the new generation. The closure behind it is
// `Sync`, and `run` does not return (so the closure stays alive) until every helper is done.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// The calling thread plus `threads − 1` persistent helper threads (see the module docs).
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Team {
    /// A team of `threads` (at least 1; a team of 1 runs everything on the caller). Fails with
    /// an error naming the `threads` setting if the operating system refuses to start a helper
    /// thread (the helpers already started are stopped and joined first).
    pub fn new(threads: usize) -> Result<Team> {
        Team::start(threads, |builder, body| builder.spawn(body))
    }

    /// [`Team::new`] with the threads started by `spawn` (a test can make it fail).
    fn start(
        threads: usize,
        mut spawn: impl FnMut(thread::Builder, Box<dyn FnOnce() + Send>) -> io::Result<JoinHandle<()>>,
    ) -> Result<Team> {
        let helpers = threads.max(1) - 1;
        let noop: Job = Job {
            data: std::ptr::null(),
            call: call::<fn(usize)>,
        };
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            job: UnsafeCell::new(noop),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            sleeping: (0..helpers).map(|_| AtomicBool::new(false)).collect(),
            panic: Mutex::new(None),
        });
        let mut team = Team {
            shared,
            helpers: Vec::with_capacity(helpers),
        };
        // The helpers compute in the caller's floating-point environment: they flush
        // subnormals when it does (see `crate::subnormals`).
        let fp = crate::subnormals::bits();
        for h in 0..helpers {
            let shared = Arc::clone(&team.shared);
            let builder = thread::Builder::new().name(format!("downhill-{}", h + 1));
            let body = move || {
                crate::subnormals::adopt(fp);
                helper(&shared, h)
            };
            match spawn(builder, Box::new(body)) {
                Ok(handle) => team.helpers.push(handle),
                // Dropping `team` stops and joins the helpers started so far.
                Err(e) => {
                    return Err(Error::setting(
                        "threads",
                        threads,
                        format!(
                            "the operating system refused to start thread {} of {threads} ({e}); \
                             use fewer --threads",
                            h + 2
                        ),
                    ));
                }
            }
        }
        Ok(team)
    }

    /// Number of threads, the caller included.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `f(i)` for every i in `0..threads()`, `f(0)` on the calling thread, and returns when
    /// all have returned. A panic in any of them is re-raised here (after all have finished).
    pub fn run<F: Fn(usize) + Sync>(&self, f: &F) {
        if self.helpers.is_empty() {
            return f(0);
        }
        let s = &*self.shared;
        s.done.store(0, Ordering::Relaxed);
        // SAFETY: every helper finished the previous generation (`run` waited for it), so none
        // reads `job` now; the new value is published by the SeqCst bump below.
        unsafe {
            *s.job.get() = Job {
                data: (f as *const F).cast(),
                call: call::<F>,
            }
        };
        s.generation.fetch_add(1, Ordering::SeqCst);
        for (sleeping, h) in s.sleeping.iter().zip(&self.helpers) {
            if sleeping.load(Ordering::SeqCst) {
                h.thread().unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        // `f` must outlive every helper's use of it: wait for all, even if `f(0)` panicked.
        let helpers = self.helpers.len();
        wait(
            || s.done.load(Ordering::Acquire) == helpers,
            thread::yield_now,
        );
        if let Err(p) = mine {
            resume_unwind(p);
        }
        let theirs = s.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = theirs {
            resume_unwind(p);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, Ordering::SeqCst);
        s.generation.fetch_add(1, Ordering::SeqCst);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            // A helper never panics outside a job (jobs are caught), so join cannot fail.
            let _ = h.join();
        }
    }
}

/// Spins until `ready()`, for at most [`SPIN`]; then calls `idle()` between checks.
fn wait(ready: impl Fn() -> bool, idle: impl Fn()) {
    let start = Instant::now();
    let mut spins = 0u32;
    while !ready() {
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else if start.elapsed() < SPIN {
            spins = 0;
        } else {
            idle();
        }
    }
}

/// A helper's loop: wait for a new generation, run its part of the job, report done.
fn helper(s: &Shared, h: usize) {
    let mut seen = 0;
    loop {
        let sleeping = &s.sleeping[h];
        wait(
            || s.generation.load(Ordering::Acquire) != seen,
            || {
                sleeping.store(true, Ordering::SeqCst);
                // Re-check after announcing: either `run` sees the flag and unparks, or we see
                // its new generation here (both accesses are SeqCst).
                if s.generation.load(Ordering::SeqCst) == seen {
                    thread::park();
                }
                sleeping.store(false, Ordering::SeqCst);
            },
        );
        seen = s.generation.load(Ordering::Acquire);
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: `run` wrote `job` before publishing this generation and keeps the closure
        // alive until `done` counts every helper.
        let job = unsafe { *s.job.get() };
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (job.call)(job.data, h + 1) }));
        if let Err(p) = result {
            s.panic
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(p);
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

/// A mutable slice that the members of a team write in disjoint parts.
pub struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: handing out disjoint `&mut` parts to other threads is sending `T`s.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}
unsafe impl<T: Send> Send for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        Disjoint {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _slice: std::marker::PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part at `range`.
    ///
    /// # Safety
    /// Parts in use at the same time must not overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, range: std::ops::Range<usize>) -> &'a mut [T] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "part {range:?} of a slice of {}",
            self.len
        );
        // SAFETY: in bounds (checked); not aliased, by the caller's guarantee.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (On Linux a new thread inherits its creator's MXCSR anyway; `adopt` makes it so on every
    /// system, and this test pins the outcome.)
    #[test]
    fn helpers_flush_subnormals_exactly_when_the_caller_that_started_them_does() {
        let flags = |team: &Team| {
            let seen: Vec<AtomicBool> = (0..team.threads())
                .map(|_| AtomicBool::new(false))
                .collect();
            team.run(&|i| seen[i].store(crate::subnormals::flushing(), Ordering::Relaxed));
            seen.iter()
                .map(|f| f.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        };
        let can = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
        {
            let _flush = crate::subnormals::Flush::new(true, 1);
            assert_eq!(flags(&Team::new(3).unwrap()), [can; 3]);
        }
        assert_eq!(flags(&Team::new(3).unwrap()), [false; 3]);
    }

    #[test]
    fn every_member_runs_once_per_phase_and_sees_the_previous_phase() {
        let team = Team::new(4).unwrap();
        let mut v = vec![0usize; 4];
        for phase in 1..=1000 {
            let d = Disjoint::new(&mut v);
            // SAFETY: member i touches element i only.
            team.run(&|i| unsafe { d.part(i..i + 1)[0] += i + 1 });
            assert_eq!(v, [phase, 2 * phase, 3 * phase, 4 * phase]);
        }
    }

    /// One run of `team` in which each member adds one to `n`.
    fn count_members(team: &Team, n: &AtomicUsize) {
        team.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
    }

    #[test]
    fn helpers_wake_after_sleeping() {
        let team = Team::new(2).unwrap();
        let n = AtomicUsize::new(0);
        for _ in 0..3 {
            std::thread::sleep(SPIN * 5);
            count_members(&team, &n);
        }
        assert_eq!(n.into_inner(), 6);
    }

    #[test]
    fn a_helpers_panic_reaches_the_caller_and_the_team_still_works() {
        let team = Team::new(3).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|i| assert!(i != 2, "member 2"))
        }));
        let p = r.unwrap_err();
        let msg = p
            .downcast_ref::<&str>()
            .copied()
            .or(p.downcast_ref::<String>().map(String::as_str));
        assert_eq!(msg, Some("member 2"));
        let n = AtomicUsize::new(0);
        count_members(&team, &n);
        assert_eq!(n.into_inner(), 3);
    }

    #[test]
    fn a_team_of_one_runs_on_the_caller() {
        let team = Team::new(1).unwrap();
        let here = thread::current().id();
        team.run(&|i| {
            assert_eq!(i, 0);
            assert_eq!(thread::current().id(), here);
        });
    }

    #[test]
    fn a_thread_the_system_refuses_is_an_error_naming_the_setting() {
        let mut started = 0;
        let r = Team::start(4, |builder, body| {
            if started == 2 {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "no more threads"));
            }
            started += 1;
            builder.spawn(body)
        });
        let Err(e) = r else {
            panic!("the team started anyway")
        };
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                Error::Setting {
                    name: "threads",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("thread 4 of 4"), "{msg}");
        assert!(msg.contains("no more threads"), "{msg}");
        assert!(msg.contains("--threads"), "{msg}");
        // The two helpers that did start were stopped and joined: a new team still works.
        let team = Team::new(2).unwrap();
        let n = AtomicUsize::new(0);
        count_members(&team, &n);
        assert_eq!(n.into_inner(), 2);
    }
}
