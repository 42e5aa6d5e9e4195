//! Ctrl-C and SIGTERM: the first asks training to stop after the current step (it then writes a
//! checkpoint and the model so far, and says how to resume); a second one exits at once with
//! status 130, the shell's code for Ctrl-C.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing). Without them (e.g. a platform that
/// refuses), Ctrl-C keeps its default effect.
pub fn install() {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The order matters: the conditional exit sees the flag as the first signal left it.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    });
}

/// With `on`, the next Ctrl-C or SIGTERM exits at once with 130 (a stop asked for already does
/// so now): for work with nothing to save. With `false`, a signal asks again for a stop after
/// the current step.
pub fn stop_at_once(on: bool) {
    if let Some(flag) = FLAG.get() {
        if on {
            // The conditional exit fires when the flag is already set as the signal arrives.
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        } else {
            flag.store(false, Ordering::SeqCst);
        }
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
