//! `downhill train`: the run-folder flags checked, the run (new or resumed) with its progress
//! and Ctrl-C handling, and the summary printed.

use std::process::ExitCode;

use downhill::Error;
use downhill::run::{self, Figures};
use downhill::settings::Settings;

use crate::cli::args::TrainArgs;
use crate::cli::{interrupt, progress, write_stdout};

fn fmt_figures(f: &Figures) -> String {
    let d = &f.decisions;
    let figure = |name: &str, v: Option<f64>| {
        v.filter(|v| !v.is_nan())
            .map_or(String::new(), |v| format!("  {name} {v:.4}"))
    };
    let undefined = |why: bool, text: &'static str| if why { text } else { "" };
    format!(
        "loss {:.4}{}{}{}{}{}{}{}  ({} examples)",
        f.loss,
        figure("accuracy", f.accuracy),
        figure("RMSE", f.rmse),
        figure("R²", f.r2),
        undefined(
            f.r2_undefined.is_some(),
            "  R² undefined (the targets do not vary)"
        ),
        figure("macro-F1", d.macro_f1),
        figure("ROC-AUC", d.roc_auc),
        undefined(
            d.roc_auc_undefined.is_some(),
            "  ROC-AUC undefined (one class only)"
        ),
        f.examples
    )
}

pub(in crate::cli) fn train(a: &TrainArgs) -> Result<ExitCode, Error> {
    let settings = a.settings()?;
    if let Some(dir) = &a.resume {
        // A resumed run is the recorded run: any other setting would make it a different one
        // (only the epoch total may grow, to continue the run for more epochs).
        let others = Settings {
            epochs: Settings::default().epochs,
            ..settings.clone()
        };
        if a.config.is_some() || others != Settings::default() {
            return Err(Error::setting(
                "resume",
                dir.display(),
                "takes every setting from the checkpoint; give --resume alone (with --epochs N to train to N epochs in all, --quiet or --json if wanted)",
            ));
        }
    }
    interrupt::install();
    let batch = match settings.batch() {
        downhill::settings::BatchSize::Examples(b) => b,
        downhill::settings::BatchSize::Full => 0,
    };
    let epochs = match &a.resume {
        // The epoch count of a resumed run is the checkpoint's, unless --epochs extends it.
        Some(dir) => {
            // The folder first: its checkpoint is read below only if it is a run folder.
            run::check_resume_folder(dir)?;
            match a.epochs {
                Some(n) => n,
                None => {
                    downhill::checkpoint::load(&run::checkpoint_to_resume(dir))?.settings["epochs"]
                        .as_u64()
                        .unwrap_or(0) as usize
                }
            }
        }
        // Sized to the data when unset: the progress lines learn it when training starts.
        None => settings.epochs.unwrap_or(0),
    };
    let mut progress = progress::Progress::new(a.quiet, epochs, batch);
    if let Some(dir) = &a.resume
        && let Some(done) = run::finished_run(dir, a.epochs)
    {
        errln!("{done}");
        if a.json {
            let text =
                std::fs::read_to_string(dir.join("summary.json")).map_err(|source| Error::Io {
                    path: dir.join("summary.json"),
                    source,
                })?;
            write_stdout(&format!("{}\n", text.trim_end()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let summary = match &a.resume {
        Some(dir) => run::resume(dir, a.epochs, &mut progress)?,
        None => run::train(&settings, &mut progress).map_err(|e| a.placed_setting(e))?,
    };
    let staged = summary.model.parent();
    let dir = if summary.kept_unfinished {
        staged.and_then(|p| p.parent())
    } else {
        staged
    };
    let folder = dir.map_or_else(|| ".".into(), |p| p.display().to_string());
    if summary.kept_unfinished {
        errln!(
            "{}: {folder} still holds the run it held before; this run's model so far and \
             its checkpoint are in {}; continue with `downhill train --resume {folder}`, or delete \
             {} to drop it",
            summary.stop_reason,
            staged.map_or_else(String::new, |p| p.display().to_string()),
            staged.map_or_else(String::new, |p| p.display().to_string()),
        );
    } else if summary.interrupted {
        errln!(
            "{}: the model so far and a checkpoint are in {folder}; continue with `downhill train --resume {folder}`",
            summary.stop_reason
        );
    }
    if a.json {
        write_stdout(&format!(
            "{}\n",
            serde_json::to_string(&summary).expect("summary serialises")
        ))?;
    } else if !a.quiet {
        // Where this run's files are (`DIR/unfinished` when kept there).
        let files = staged.map_or_else(|| ".".into(), |p| p.display().to_string());
        print_summary(&summary, progress.last_step, &files);
    }
    // 130: the shell's code for a run ended by Ctrl-C.
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// A finished (or interrupted) run for people: the chosen rate, why it stopped, the figures,
/// the time, where its folder is. `last_step`: the (epoch, steps done, steps) last seen.
fn print_summary(summary: &run::Summary, last_step: Option<(usize, usize, usize)>, folder: &str) {
    if let Some(f) = &summary.lr_find {
        outln!(
            "learning rate {:.3e}, chosen by the range test ({}; {} steps; curve in lr-find.svg)",
            f.chosen_lr,
            f.rule,
            f.steps
        );
    }
    outln!("stopped: {}", summary.stop_reason);
    outln!("train  {}", fmt_figures(&summary.train));
    if let Some(v) = &summary.val {
        outln!("val    {}", fmt_figures(v));
    }
    if let Some(t) = &summary.test {
        outln!("test   {}", fmt_figures(t));
    }
    // + 0.0: an empty sum is −0.0 (a run interrupted in its first epoch).
    let secs: f64 = summary.epoch_seconds.iter().sum::<f64>() + 0.0;
    // An interrupted run also trained part of the epoch after its last complete one.
    let partial = match last_step {
        Some((epoch, done, steps))
            if summary.interrupted && epoch == summary.epochs && done < steps =>
        {
            format!(" and {done} of {steps} steps of epoch {}", epoch + 1)
        }
        _ => String::new(),
    };
    outln!(
        "trained {} epochs{partial} in {:.2}s ({:.0} examples/s); whole run {:.2}s",
        summary.epochs,
        secs,
        summary.examples_per_second,
        summary.total_seconds
    );
    outln!("model and report in {folder}");
}
