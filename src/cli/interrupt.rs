//! Ctrl-C and SIGTERM: the first asks training to stop after the current step (it then writes a
//! checkpoint and the model so far, and says how to resume); a second one exits at once with
//! status 130, the shell's code for Ctrl-C. In work with nothing to save (see [`stop_at_once`])
//! the first exits at once, after removing what the run had made so far.
//!
//! The signals are taken by a thread of their own (`signal_hook::iterator`), not acted on in the
//! handler, so that exiting at once can remove folders first.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

struct State {
    /// A stop was asked for.
    flag: AtomicBool,
    /// The next signal exits at once.
    at_once: AtomicBool,
    /// Removed before exiting at once: what a run made that holds nothing yet.
    leave: Mutex<Vec<PathBuf>>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing). Without them (e.g. a platform that
/// refuses), Ctrl-C keeps its default effect.
pub fn install() {
    STATE.get_or_init(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for _ in signals.forever() {
                        let Some(s) = STATE.get() else { continue };
                        if s.flag.swap(true, Ordering::SeqCst) || s.at_once.load(Ordering::SeqCst) {
                            exit_now(s);
                        }
                    }
                });
        }
        State {
            flag: AtomicBool::new(false),
            at_once: AtomicBool::new(false),
            leave: Mutex::new(Vec::new()),
        }
    });
}

/// Removes what [`stop_at_once`] was given and exits with 130.
fn exit_now(s: &State) -> ! {
    if let Ok(leave) = s.leave.lock() {
        for p in leave.iter() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    std::process::exit(130);
}

/// With `on`, the next Ctrl-C or SIGTERM exits at once with 130 (a stop asked for already does
/// so now), first removing the folders in `leave`: for work with nothing to save. With `false`,
/// a signal asks again for a stop after the current step.
pub fn stop_at_once(on: bool, leave: &[PathBuf]) {
    let Some(s) = STATE.get() else { return };
    if let Ok(mut l) = s.leave.lock() {
        *l = if on { leave.to_vec() } else { Vec::new() };
    }
    if on {
        s.at_once.store(true, Ordering::SeqCst);
        if s.flag.load(Ordering::SeqCst) {
            exit_now(s);
        }
    } else {
        s.at_once.store(false, Ordering::SeqCst);
        s.flag.store(false, Ordering::SeqCst);
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    STATE.get().is_some_and(|s| s.flag.load(Ordering::Relaxed))
}
