//! `downhill predict`: a saved model's predictions for a CSV of features, written as CSV.

use std::process::ExitCode;

use downhill::Error;
use downhill::run;

use crate::cli::args::PredictArgs;
use crate::cli::{interrupted_note, write_stdout};

pub(in crate::cli) fn predict(a: &PredictArgs) -> Result<ExitCode, Error> {
    if let Some(out) = &a.output {
        for (flag, path) in [("model", &a.model), ("input", &a.input)] {
            if same_file(out, path) {
                return Err(Error::setting(
                    "output",
                    out.display(),
                    format!("is the --{flag} file; the predictions would replace it"),
                ));
            }
        }
    }
    let (text, notes) = run::predict_csv_noted(&a.model, &a.input, a.proba)?;
    for line in notes.lines() {
        errln!("{line}");
    }
    if notes.interrupted_model {
        interrupted_note(&a.model);
    }
    match &a.output {
        Some(path) => downhill::io::write_atomic(path, text.as_bytes())?,
        None => write_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `a` and `b` name the same existing file (through links and `..`).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
