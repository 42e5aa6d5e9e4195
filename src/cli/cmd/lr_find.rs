//! `downhill lr-find`: the learning-rate range test, its flags checked first, and its result.

use std::process::ExitCode;

use downhill::Error;
use downhill::run;
use downhill::settings::Settings;

use crate::cli::args::{LrFindArgs, TrainArgs};
use crate::cli::{picture_name, write_stdout};

pub(in crate::cli) fn lr_find(a: &LrFindArgs) -> Result<ExitCode, Error> {
    check_no_run_folder(&a.train)?;
    let settings = a.train.settings()?;
    let find = downhill::lr_find::LrFindConfig {
        start: a.start_lr,
        end: a.end_lr,
        steps: a.steps,
        blowup: a.blowup,
        ..Default::default()
    };
    check_lr_find(a, &settings, &find)?;
    let r = run::lr_find(&settings, &find).map_err(|e| a.train.placed_setting(e))?;
    downhill::lr_find::picture(&a.plot, &r)?;
    // The result is data: written checked, as predict's (a full stdout is an error).
    let text = if a.train.json {
        format!(
            "{}\n",
            serde_json::to_string(&r).expect("result serialises")
        )
    } else if !a.train.quiet {
        lr_find_text(&r, &a.plot)
    } else {
        String::new()
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `lr-find` refuses the flags of a run folder: it resumes nothing and writes no folder.
fn check_no_run_folder(t: &TrainArgs) -> Result<(), Error> {
    if let Some(dir) = &t.resume {
        return Err(Error::setting(
            "resume",
            dir.display(),
            "lr-find starts from the initial (or --init) weights; it does not resume a run",
        ));
    }
    if t.checkpoint_every.is_some() || t.snapshots || t.out.is_some() {
        return Err(Error::setting(
            "lr-find",
            "--checkpoint-every/--snapshots/--out",
            "lr-find writes no run folder; its picture goes to --plot FILE",
        ));
    }
    // Flags of whole epochs, which the range test (a ramp of mini-batch steps) never reaches.
    let epoch_flags = [
        ("--epochs", t.epochs.is_some()),
        ("--patience", t.patience.is_some()),
        ("--schedule", t.schedule.is_some()),
        ("--warmup", t.warmup.is_some()),
        ("--grad-tol", t.grad_tol.is_some()),
        ("--divergence-factor", t.divergence_factor.is_some()),
        ("--monitor", t.monitor.is_some()),
    ];
    let given: Vec<&str> = epoch_flags
        .iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| *name)
        .collect();
    if !given.is_empty() {
        return Err(Error::setting(
            "lr-find",
            given.join(" "),
            "lr-find ignores these train flags: it ramps the learning rate over --steps \
             mini-batch steps from --start-lr to --end-lr (no epochs, schedule, early stopping or \
             divergence rule), stopping when the loss exceeds --blowup times its minimum",
        ));
    }
    Ok(())
}

/// What `lr-find` refuses before the range test, once the settings are read: a learning rate,
/// a bad ramp, a picture it cannot write.
fn check_lr_find(
    a: &LrFindArgs,
    settings: &Settings,
    find: &downhill::lr_find::LrFindConfig,
) -> Result<(), Error> {
    if settings.lr_auto || settings.lr.is_some() {
        return Err(Error::setting(
            "lr",
            settings.lr.map_or("auto".to_string(), |v| v.to_string()),
            "lr-find ramps the learning rate itself; use --start-lr and --end-lr",
        ));
    }
    find.validate()?;
    picture_name("plot", &a.plot)?;
    // The picture's folder must exist: say so before the range test, not after it.
    let folder = a.plot.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|p| !p.is_dir()) {
        return Err(Error::setting(
            "plot",
            a.plot.display(),
            format!("its folder {} does not exist", folder.display()),
        ));
    }
    Ok(())
}

/// The range test's result for people: the ramp, the smoothed minimum, the steepest descent,
/// the suggestion and the picture.
fn lr_find_text(r: &downhill::lr_find::LrFindResult, plot: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let last = r.curve.last().expect("at least two points");
    let _ = writeln!(
        text,
        "ramped η from {:.1e} to {:.3e} over {} steps ({})",
        r.curve[0].lr,
        last.lr,
        r.curve.len(),
        if r.diverged {
            "stopped: the smoothed loss blew up"
        } else {
            "the loss never blew up: try a larger --end-lr"
        }
    );
    let _ = writeln!(text, "smoothed loss lowest at η = {:.3e}", r.min_lr);
    if let Some(s) = r.steepest_lr {
        let _ = writeln!(text, "steepest descent at  η = {s:.3e}");
    }
    let _ = writeln!(
        text,
        "suggested learning rate: {:.3e}  ({})",
        r.suggestion, r.rule
    );
    let _ = writeln!(text, "picture: {}", plot.display());
    text
}
