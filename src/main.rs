//! The `downhill` binary: parse flags, call the library, print errors for people.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::cap_malloc_arenas();
    let args = cli::args::Cli::parse();
    match cli::run(args.command) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(2)
        }
    }
}
