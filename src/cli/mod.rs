//! The `downhill` command line: flags in, library calls, figures out for people.

/// `println!` that never panics: a closed stdout (`downhill … | head -1`) must not stop a run.
/// A failure other than a closed pipe (a full disk) is kept for [`stdout_lost`].
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::note_stdout(writeln!(std::io::stdout(), $($t)*));
    }};
}
/// `print!` that never panics (see [`outln!`]).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::cli::note_stdout(write!(std::io::stdout(), $($t)*));
    }};
}

/// The first failure to write standard output other than a closed pipe.
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Keeps the first failure of a write to stdout (a reader that stopped early is not one).
pub fn note_stdout(r: std::io::Result<()>) {
    if let Err(e) = r
        && e.kind() != std::io::ErrorKind::BrokenPipe
        && let Ok(mut slot) = STDOUT_ERROR.lock()
        && slot.is_none()
    {
        *slot = Some(e);
    }
}

/// For commands whose output is their result (`eval`, `gradcheck`, `landscape`, `bench`): a
/// stdout that could not be written (`> /dev/full`) is an error naming it, never exit 0.
fn stdout_lost(code: ExitCode) -> Result<ExitCode, Error> {
    use std::io::Write as _;
    note_stdout(std::io::stdout().flush());
    match STDOUT_ERROR.lock().ok().and_then(|mut s| s.take()) {
        Some(source) => Err(Error::Io {
            path: "standard output".into(),
            source,
        }),
        None => Ok(code),
    }
}
/// `eprintln!` that never panics (see [`outln!`]).
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use errln;

pub mod args;
mod cmd;
pub mod interrupt;
pub mod progress;

use std::process::ExitCode;

use args::Command;
use downhill::Error;

use cmd::bench::bench;
use cmd::eval::eval;
use cmd::gradcheck::gradcheck;
use cmd::landscape::landscape;
use cmd::lr_find::lr_find;
use cmd::predict::predict;
use cmd::train::train;

/// Under an address-space limit (`ulimit -v`), one malloc arena for every thread. glibc gives
/// each new thread that allocates an arena of its own, reserving 64 MiB of address space on a
/// 64-bit system: `--threads 2` aborted (`memory allocation of 67108864 bytes failed`) under a
/// limit that one thread trains within, before the limit checks could count it. The threads
/// allocate little once a run has started (its steps allocate nothing), so sharing one arena
/// costs no measurable time. Without a limit nothing changes.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if downhill::memory::address_space_limited() {
        // SAFETY: mallopt only sets a parameter of the allocator; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Runs one command; errors come back for `main` to print.
pub fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Train(a) => train(&a),
        Command::Eval(a) => {
            downhill::memory::check_room_for_products(1)?;
            stdout_lost(eval(&a)?)
        }
        Command::Predict(a) => {
            downhill::memory::check_room_for_products(1)?;
            predict(&a)
        }
        Command::Gradcheck(a) => stdout_lost(gradcheck(&a)?),
        Command::Bench(a) => {
            if a.write_table.is_none() {
                downhill::memory::check_room_for_products(1)?;
            }
            stdout_lost(bench(&a)?)
        }
        Command::Landscape(a) => {
            if a.model.is_some() {
                downhill::memory::check_room_for_products(1)?;
            }
            stdout_lost(landscape(&a)?)
        }
        Command::LrFind(a) => {
            downhill::memory::check_room_for_products(1)?;
            lr_find(&a)
        }
        Command::Playground(a) => cmd::playground::serve(&a),
        Command::Explain(a) => stdout_lost(cmd::explain::run(&a)?),
    }
}

/// Says on stderr that a model holds the weights of an interrupted run (eval, predict).
fn interrupted_note(model: &std::path::Path) {
    errln!(
        "note: {} holds the weights of an interrupted run, not a finished one (continue it with `downhill train --resume DIR`)",
        model.display()
    );
}

/// Writes data (predictions) to stdout, checked: a reader that stopped early (`| head`, a
/// broken pipe) is fine, but any other failure (a full disk, a closed stdout) loses the output,
/// so it is an error, not exit 0.
fn write_stdout(text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// A picture's file name must end in `.svg` or `.png`: checked before the work that draws it.
fn picture_name(flag: &'static str, path: &std::path::Path) -> Result<(), Error> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        _ => Err(Error::setting(
            flag,
            path.display(),
            "a picture file name ends in .svg or .png",
        )),
    }
}
