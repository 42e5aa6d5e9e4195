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
pub mod explain;
pub mod interrupt;
pub mod playground;
pub mod progress;

use std::process::ExitCode;

use args::{
    BenchArgs, Command, EvalArgs, GradcheckArgs, LandscapeArgs, LrFindArgs, PredictArgs, TrainArgs,
};
use downhill::metrics::Report;
use downhill::run::{self, Figures};
use downhill::settings::Settings;
use downhill::{Error, Init, Loss};

/// Runs one command; errors come back for `main` to print.
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
        Command::Playground(a) => playground::serve(&a),
        Command::Explain(a) => stdout_lost(explain::run(&a)?),
    }
}

fn lr_find(a: &LrFindArgs) -> Result<ExitCode, Error> {
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

/// Bytes free (to an unprivileged user) on the file system that would hold `path`.
fn free_disk(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized output buffer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn bench(a: &BenchArgs) -> Result<ExitCode, Error> {
    let examples = a.examples.unwrap_or(60_000);
    let data_name = a.data.as_deref().unwrap_or("fashion-mnist");
    let epochs = a.epochs.unwrap_or(3);
    let table_rows = a.table_rows.unwrap_or(1_000_000);
    if let Some(path) = &a.write_table {
        if table_rows < 10 {
            return Err(Error::setting("table-rows", table_rows, "must be ≥ 10"));
        }
        if path.exists() {
            return Err(Error::setting(
                "write-table",
                path.display(),
                "exists; name a new file (it is not overwritten)",
            ));
        }
        // Written line by line (no memory to check), ~400 bytes a row: the disk is checked.
        let needed = (table_rows as u128) * 400;
        if let Some(free) = free_disk(path)
            && needed > free as u128
        {
            return Err(Error::setting(
                "table-rows",
                table_rows,
                format!(
                    "the table would take about {} on disk, but {} is free where {} goes",
                    downhill::memory::human(needed),
                    downhill::memory::human(free as u128),
                    path.display()
                ),
            ));
        }
        downhill::bench::write_table(path, table_rows, 0)?;
        outln!(
            "wrote {} ({} rows × 42 columns; target y)",
            path.display(),
            table_rows
        );
        return Ok(ExitCode::SUCCESS);
    }
    let workloads = downhill::bench::Workload::standard();
    let table = downhill::bench::table_name(table_rows);
    let wanted = |name: &str| a.only.as_ref().is_none_or(|o| name.contains(o.as_str()));
    // Flags no workload that runs reads are refused, not ignored.
    if let Some(n) = a.examples {
        if data_name != "synthetic" {
            return Err(Error::setting(
                "examples",
                n,
                format!(
                    "sizes the synthetic data only (--data synthetic); --data {} is its whole \
                     training set",
                    data_name
                ),
            ));
        }
        if !workloads.iter().any(|w| wanted(&w.name)) && wanted(&table) {
            return Err(Error::setting(
                "examples",
                n,
                "no workload on the synthetic images runs (--only picks the table's alone)",
            ));
        }
    }
    // The image workloads' flags, when only the table's runs.
    if wanted(&table) && !workloads.iter().any(|w| wanted(&w.name)) {
        for (flag, given) in [("epochs", a.epochs.is_some()), ("data", a.data.is_some())] {
            if given {
                return Err(Error::setting(
                    flag,
                    if flag == "epochs" {
                        epochs.to_string()
                    } else {
                        data_name.to_string()
                    },
                    "is for the image workloads, and --only picks the table's alone (which \
                     loads its table and trains one epoch)",
                ));
            }
        }
    }
    if let Some(f) = &a.table_file {
        if !wanted(&table) {
            return Err(Error::setting(
                "table-file",
                f.display(),
                format!(
                    "is the big-table workload's file, which --only {} leaves out",
                    a.only.as_deref().unwrap_or_default()
                ),
            ));
        }
        // Checked before any workload runs.
        if !f.is_file() {
            return Err(Error::setting(
                "table-file",
                f.display(),
                "is not a file (a CSV whose target column y holds two classes)",
            ));
        }
    }
    if let Some(n) = a.table_rows
        && !wanted(&table)
    {
        return Err(Error::setting(
            "table-rows",
            n,
            format!(
                "sizes the big-table workload, which --only {} leaves out",
                a.only.as_deref().unwrap_or_default()
            ),
        ));
    }
    // Sizes first, before anything is generated: 784 pixel bytes and a label per synthetic
    // example; per table row the file's ~340 bytes and, loaded, ~1.7 kB at the peak (measured
    // on the 1,000,000-row table).
    if data_name == "synthetic" {
        if examples == 0 {
            return Err(Error::setting("examples", 0, "must be ≥ 1"));
        }
        downhill::memory::check(
            format!("{examples} synthetic examples (--examples)"),
            downhill::memory::product(&[examples, 784 + 4]),
        )?;
    }
    if !matches!(data_name, "synthetic" | "digits" | "fashion-mnist") {
        return Err(Error::setting(
            "data",
            data_name,
            "accepted: fashion-mnist, digits, synthetic",
        ));
    }
    if epochs == 0 {
        return Err(Error::setting("epochs", 0, "must be ≥ 1"));
    }
    let mut all = Vec::new();
    // The images only when a workload trains on them (not for the table alone).
    let data = if workloads.iter().any(|w| wanted(&w.name)) {
        match data_name {
            "synthetic" => downhill::bench::synthetic(examples, 0),
            "digits" => downhill::data::digits::load()?,
            _ => downhill::data::idx::fashion_mnist()?.0,
        }
    } else {
        downhill::bench::synthetic(1, 0)
    };
    // The generated table is split into training and test parts, each of which needs rows of
    // both classes (at 3 rows the training part had one class only).
    const MIN_TABLE_ROWS: usize = 10;
    if table_rows < MIN_TABLE_ROWS {
        return Err(Error::setting(
            "table-rows",
            table_rows,
            format!(
                "must be ≥ {MIN_TABLE_ROWS}: the table is split into training and test rows, \
                 and each part needs both classes"
            ),
        ));
    }
    if wanted(&table) && a.table_file.is_none() {
        downhill::memory::check(
            format!("the benchmark table of {table_rows} rows (--table-rows)"),
            downhill::memory::product(&[table_rows, 1700 + 340]),
        )?;
    }
    if let Some(o) = &a.only
        && !workloads.iter().any(|w| w.name.contains(o.as_str()))
        && !table.contains(o.as_str())
    {
        let mut names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
        names.push(&table);
        return Err(Error::setting(
            "only",
            o,
            format!("matches no workload; they are: {}", names.join("; ")),
        ));
    }
    // A given table file is measured first, so that a file that cannot be trained on fails
    // before the other workloads' minutes (its figures are printed in their usual place).
    let mut table_measured = match &a.table_file {
        Some(path) if wanted(&table) => Some(downhill::bench::measure_table_file(path, 0)?),
        _ => None,
    };
    for w in workloads {
        if !wanted(&w.name) {
            continue;
        }
        let m = downhill::bench::measure(&w, &data, epochs, 0)?;
        if !a.json {
            outln!(
                "{:<42} {:>8.3} s/epoch {:>9.0} ex/s {:>6.1} GFLOP/s   floor {:.3} s ({:.0} GFLOP/s)  share {:.2}",
                w.name,
                m.seconds_per_epoch,
                m.examples_per_second,
                m.effective_gflops,
                m.floor_seconds_per_epoch,
                m.gemm_gflops,
                m.share_of_floor
            );
        }
        all.push(m);
    }
    let speedups = downhill::bench::thread_speedups(&all);
    let mut json: Vec<serde_json::Value> = all
        .iter()
        .map(|m| serde_json::to_value(m).expect("measurements serialise"))
        .collect();
    if !a.json {
        for s in &speedups {
            outln!("{}", s.line());
        }
    }
    if wanted(&table) {
        let t = match table_measured.take() {
            Some(t) => t,
            None => downhill::bench::measure_table(table_rows, 0)?,
        };
        if !a.json {
            let mb = |b: u64| b as f64 / 1e6;
            outln!(
                "{:<42} load {:.2} s (read {:.2} s; {:.0} MB file, {} features)  epoch {:.2} s  peak memory {}  (encoded matrices {:.0} MB)",
                t.name,
                t.load_seconds,
                t.read_seconds,
                mb(t.file_bytes),
                t.features,
                t.epoch_seconds,
                t.peak_rss_bytes
                    .map_or("unknown".into(), |b| format!("{:.0} MB", mb(b))),
                mb(t.encoded_bytes),
            );
        }
        json.push(serde_json::to_value(&t).expect("measurements serialise"));
    }
    if a.json {
        // (The speed-ups follow from the measurements; the array holds measurements only.)
        outln!(
            "{}",
            serde_json::to_string(&json).expect("measurements serialise")
        );
    }
    Ok(ExitCode::SUCCESS)
}

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

fn train(a: &TrainArgs) -> Result<ExitCode, Error> {
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

fn eval(a: &EvalArgs) -> Result<ExitCode, Error> {
    let e = run::evaluate(&a.model, &a.data)?;
    for line in e.notes.lines() {
        errln!("{line}");
    }
    if e.interrupted {
        interrupted_note(&a.model);
    }
    if a.json {
        write_stdout(&format!(
            "{}\n",
            serde_json::to_string(&e).expect("report serialises")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{} on {} ({} examples)",
        a.model.display(),
        e.data,
        e.examples
    );
    outln!("loss      {:.4}", e.loss);
    match &e.report {
        // A BCE model: the figures of its 0/1 decisions.
        Report::Regression(_) if e.decisions.macro_f1.is_some() => {
            let d = &e.decisions;
            if let Some(a) = e.accuracy {
                outln!("accuracy  {a:.4}");
            }
            if let Some(m) = d.macro_f1 {
                outln!("macro-F1  {m:.4}");
            }
            if let Some(a) = d.roc_auc {
                outln!("ROC-AUC   {a:.4}");
            } else if let Some(why) = &d.roc_auc_undefined {
                outln!("ROC-AUC   undefined ({why})");
            }
        }
        Report::Regression(r) => {
            outln!("RMSE      {:.4}", r.rmse);
            match &r.r2_undefined {
                Some(why) => outln!("R²        undefined ({why})"),
                None => outln!("R²        {:.4}", r.r2),
            }
        }
        Report::Classes(c) => print_classes(c, e.class_names.as_deref()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A classification's figures for people: accuracy, macro-F1, ROC-AUC, each class's precision,
/// recall and F1, and the confusion matrix (for at most `MAX_CONFUSION_CLASSES` classes).
fn print_classes(c: &downhill::metrics::ClassReport, class_names: Option<&[String]>) {
    outln!("accuracy  {:.4}", c.accuracy);
    outln!("macro-F1  {:.4}", c.macro_f1);
    if let Some(a) = c.roc_auc {
        outln!("ROC-AUC   {a:.4}");
    } else if c.confusion.len() == 2 {
        outln!("ROC-AUC   undefined ({})", downhill::run::ROC_AUC_UNDEFINED);
    }
    let k = c.confusion.len();
    let names: Vec<String> = class_names
        .map(<[String]>::to_vec)
        .unwrap_or_else(|| (0..k).map(|i| i.to_string()).collect());
    let w = names.iter().map(String::len).max().unwrap_or(1).max(5);
    outln!("\n{:>w$}  precision  recall      F1  support", "class");
    for (i, name) in names.iter().enumerate() {
        let support: usize = c.confusion[i].iter().sum();
        outln!(
            "{name:>w$}  {:>9.4}  {:>6.4}  {:>6.4}  {support:>7}",
            c.precision[i],
            c.recall[i],
            c.f1[i]
        );
    }
    if k > downhill::plot::MAX_CONFUSION_CLASSES {
        outln!(
            "\nconfusion matrix omitted: {k} classes (shown for at most {}; --json has it)",
            downhill::plot::MAX_CONFUSION_CLASSES
        );
        return;
    }
    outln!("\nconfusion matrix (rows: true class, columns: predicted)");
    let cw = c
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    out!("{:>w$}", "");
    for i in 0..k {
        out!(" {:>cw$}", i);
    }
    outln!();
    for (i, row) in c.confusion.iter().enumerate() {
        out!("{:>w$}", names[i]);
        for v in row {
            out!(" {v:>cw$}");
        }
        outln!();
    }
}

/// Says on stderr that a model holds the weights of an interrupted run (eval, predict).
fn interrupted_note(model: &std::path::Path) {
    errln!(
        "note: {} holds the weights of an interrupted run, not a finished one (continue it with `downhill train --resume DIR`)",
        model.display()
    );
}

fn predict(a: &PredictArgs) -> Result<ExitCode, Error> {
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

fn gradcheck(a: &GradcheckArgs) -> Result<ExitCode, Error> {
    if !(a.tol > 0.0 && a.tol.is_finite()) {
        return Err(Error::setting(
            "--tol",
            a.tol,
            "the largest acceptable relative error must be a finite number > 0",
        ));
    }
    let spec = gradcheck_spec(a)?;
    let r = downhill::gradcheck::random_with(&spec, &mut gradcheck_estimate())?;
    // A central difference (L(w+h) − L(w−h)) / 2h carries L's rounding, |L|·ε, over h: at a
    // loss of 10⁷ that is ~10⁻⁴ of error in every entry whatever backpropagation computed.
    let noise = r.loss.abs() * f64::EPSILON / 1e-5;
    if r.max_rel_error > a.tol && noise > 1e-4 * a.tol {
        // A failure that rounding alone can explain for small entries: say so.
        errln!(
            "note: at a loss of {:.3e} rounding alone puts ~{noise:.1e} of error in every finite \
             difference (h = 1e-5), so entries with a gradient below ~{:.1e} cannot pass the \
             tolerance {}, whatever backpropagation computed",
            r.loss,
            noise / a.tol,
            a.tol
        );
    } else if noise > 1e-4 {
        errln!(
            "note: the loss is {:.3e}; at that size the finite differences (h = 1e-5) carry \
             errors of ~{noise:.1e} from rounding alone, so a large error here says nothing \
             about backpropagation (check with a smaller --l2 or network)",
            r.loss
        );
    }
    let ok = r.max_rel_error <= a.tol;
    if a.json {
        let mut v = serde_json::to_value(&r).expect("report serialises");
        v["passed"] = ok.into();
        v["tolerance"] = a.tol.into();
        outln!("{v}");
    } else {
        print_gradcheck(&spec, &r, a.tol);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Seconds of a gradient check beyond which it says, once, how long it will take.
const GRADCHECK_SAY_AFTER: f64 = 2.0;

/// The progress of a gradient check: once it has run [`GRADCHECK_SAY_AFTER`] seconds, a line
/// on stderr with the number of loss evaluations (two per parameter) and the time they will
/// take at the rate so far.
fn gradcheck_estimate() -> impl FnMut(usize, usize) {
    let started = std::time::Instant::now();
    let mut said = false;
    move |done, total| {
        let secs = started.elapsed().as_secs_f64();
        if !said && secs > GRADCHECK_SAY_AFTER {
            said = true;
            errln!(
                "gradcheck: {total} loss evaluations (two per parameter), {done} done in {secs:.1} \
                 s: about {:.0} s in all here (a smaller network or --batch is faster)",
                secs / done as f64 * total as f64
            );
        }
    }
}

/// The random network and batch `gradcheck` checks: by default a tanh network 5-4, else the
/// network flags' (with an image shape, the inputs are its values).
fn gradcheck_spec(a: &GradcheckArgs) -> Result<downhill::gradcheck::RandomCheck, Error> {
    // The dense network's flags beside --layers or a conv --net are refused, as by `train`.
    let mut given = Settings::default();
    a.net.apply(&mut given);
    given.check_network_source()?;
    let mut s = Settings {
        hidden: vec![5, 4],
        activation: downhill::Activation::Tanh,
        ..Settings::default()
    };
    a.net.apply(&mut s);
    let inputs = match &s.image_shape {
        Some(t) => {
            let len = downhill::netspec::parse_image_shape(t)?.len();
            if let Some(n) = a.inputs.filter(|&n| n != len) {
                return Err(Error::setting(
                    "--inputs",
                    n,
                    format!("--image-shape {t} holds {len} values per example"),
                ));
            }
            len
        }
        None => a.inputs.unwrap_or(6),
    };
    Ok(downhill::gradcheck::RandomCheck {
        inputs,
        hidden: s.hidden.clone(),
        outputs: a.outputs,
        activation: s.activation,
        dropout: s.dropout,
        init: s.init_scheme.unwrap_or(Init::default_for(s.activation)),
        loss: s.loss.unwrap_or(Loss::CrossEntropy),
        l2: s.l2,
        batch: a.batch,
        seed: s.seed,
        layers: s.layers.clone(),
        net: s.net.clone(),
        image: s.image_shape.clone(),
    })
}

/// The gradient check for people: what was checked, each tensor's worst errors, the verdict
/// against `tol`.
fn print_gradcheck(
    spec: &downhill::gradcheck::RandomCheck,
    r: &downhill::gradcheck::GradcheckReport,
    tol: f64,
) {
    if let Some(l) = spec.layers.as_ref().or(spec.net.as_ref()) {
        outln!(
            "gradient check: network \"{l}\" on {} inputs{}, {} loss, batch {}, h = 1e-5, f64, training mode",
            spec.inputs,
            spec.image
                .as_ref()
                .map_or(String::new(), |s| format!(" ({s})")),
            spec.loss.name(),
            spec.batch
        );
    } else {
        outln!(
            "gradient check: {} network {}-{}-{} ({}), {} loss, batch {}, h = 1e-5, f64",
            if spec.dropout > 0.0 {
                "dropout"
            } else {
                "plain"
            },
            spec.inputs,
            spec.hidden
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            spec.outputs,
            spec.activation.name(),
            spec.loss.name(),
            spec.batch
        );
    }
    outln!(
        "{:<12} {:>10} {:>16} {:>16}",
        "tensor",
        "shape",
        "max rel error",
        "max abs error"
    );
    for t in &r.tensors {
        outln!(
            "{:<12} {:>10} {:>16.3e} {:>16.3e}",
            t.name,
            format!("{:?}", t.shape),
            t.max_rel_error,
            t.max_abs_error
        );
    }
    if r.kinks > 0 {
        outln!(
            "{} parameter(s) left out: their differences ±h straddle a ReLU or max-pooling kink \
             (the one-sided differences disagree and the backpropagated gradient matches one side)",
            r.kinks
        );
    }
    let ok = r.max_rel_error <= tol;
    outln!(
        "{}: max relative error {:.3e} (tolerance {:.0e})",
        if ok { "PASS" } else { "FAIL" },
        r.max_rel_error,
        tol
    );
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

fn landscape(a: &LandscapeArgs) -> Result<ExitCode, Error> {
    use downhill::landscape::{plot, walk};
    if let Some(out) = &a.out {
        picture_name("out", out)?;
    }
    if let Some(model_path) = &a.model {
        return landscape_model(a, model_path);
    }
    if let Some(start) = &a.start
        && start.iter().any(|v| !v.is_finite())
    {
        let shown: Vec<String> = start.iter().map(f64::to_string).collect();
        return Err(Error::setting(
            "start",
            shown.join(","),
            "a start point is two finite numbers X,Y",
        ));
    }
    if let Some(seed) = a.seed
        && a.noise == 0.0
    {
        return Err(Error::setting(
            "seed",
            seed,
            "seeds the gradient noise only, and without --noise σ > 0 every path is \
             deterministic",
        ));
    }
    let spec = landscape_spec(a)?;
    let paths = walk(&spec)?;
    let surface = &spec.surface;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| format!("landscape-{}.svg", surface.name()).into());
    plot::draw(&out, surface, &paths, &landscape_title(a, &spec))?;
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "surface": surface, "picture": out, "optimizers": paths })
        );
    } else {
        print_paths(&paths);
        outln!("picture: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `landscape --model`: the loss surface around a trained model's weights, and its training path.
fn landscape_model(a: &LandscapeArgs, model_path: &std::path::Path) -> Result<ExitCode, Error> {
    let spec = a
        .data
        .as_deref()
        .expect("clap requires --data with --model");
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| "landscape-model.svg".into());
    if a.examples == 0 {
        return Err(Error::setting(
            "examples",
            0,
            "the loss is averaged over ≥ 1 example",
        ));
    }
    let trajectory = model_path.with_file_name(downhill::landscape::trajectory::FILE);
    if let Some(seed) = a.seed
        && trajectory.exists()
        && !a.random_directions
    {
        return Err(Error::setting(
            "seed",
            seed,
            format!(
                "has no effect with the training path in {}: that slice is the path's plane, \
                 drawn without randomness; add --random-directions for a slice along random \
                 directions from this seed",
                trajectory.display()
            ),
        ));
    }
    let opts = downhill::landscape::ModelOptions {
        span: a.span,
        points: a.points,
        examples: a.examples,
        seed: a.seed.unwrap_or(0),
        random_directions: a.random_directions,
    };
    let model = downhill::io::load(model_path)?;
    let (data, notes) = downhill::run::eval_data_noted(&model, spec)?;
    // Eval's checks: a loss or output that is not finite is refused, not drawn.
    downhill::run::check_model_on(model_path, &model, (spec, &data, &notes.lines))?;
    let r = downhill::landscape::model_picture(model_path, &model, (spec, data), &opts, &out)?;
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "picture": out, "slice": r.slice, "trajectory": r.trajectory, "trajectory_loss": r.trajectory_loss })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let g = &r.slice.loss;
    let corners = [
        g[0][0],
        g[0][g.len() - 1],
        g[g.len() - 1][0],
        g[g.len() - 1][g.len() - 1],
    ];
    outln!(
        "loss at the trained weights {:.4}; at the corners of the slice {:.4} to {:.4}",
        r.slice.center,
        corners.iter().copied().fold(f64::INFINITY, f64::min),
        corners.iter().copied().fold(0.0, f64::max)
    );
    if let Some(t) = &r.trajectory {
        outln!(
            "training path of {} snapshots; its principal directions explain {:.0}% and {:.0}% of its variance",
            t.coords.len(),
            100.0 * t.explained[0],
            100.0 * t.explained[1]
        );
    }
    outln!("picture: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The walks `landscape` draws: the surface, each optimiser with its learning rate, the start.
fn landscape_spec(a: &LandscapeArgs) -> Result<downhill::landscape::Spec, Error> {
    use downhill::landscape::{Spec, Surface, descent};
    let condition = a.condition.unwrap_or(10.0);
    if !(condition.is_finite() && condition > 0.0) {
        return Err(Error::setting(
            "condition",
            condition,
            "must be a number > 0",
        ));
    }
    if a.condition.is_some() && a.surface != "quadratic" {
        return Err(Error::setting(
            "condition",
            condition,
            format!(
                "shapes the quadratic bowl only (--surface quadratic), not {}",
                a.surface
            ),
        ));
    }
    if !(a.tol.is_finite() && a.tol > 0.0) {
        return Err(Error::setting(
            "tol",
            a.tol,
            "must be a finite number > 0 (a path has converged when f − f_min ≤ tol)",
        ));
    }
    let twice = |flag: &'static str, values: Vec<String>| {
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(Error::setting(
                    flag,
                    values.join(","),
                    format!("lists {v} twice: its path would be drawn twice"),
                ));
            }
        }
        Ok(())
    };
    twice("optimizers", a.optimizers.clone())?;
    if let Some(sweep) = &a.lr_sweep {
        twice("lr-sweep", sweep.iter().map(f64::to_string).collect())?;
    }
    let surface = Surface::from_name(&a.surface, condition).expect("clap checked the name");
    let (lrs, all) = landscape_lrs(a)?;
    let methods = a
        .optimizers
        .iter()
        .map(|m| {
            let lr = lrs
                .iter()
                .find(|(n, _)| n == m)
                .map(|p| p.1)
                .or(all)
                .unwrap_or(descent::default_lr(m, &surface));
            (m.clone(), lr)
        })
        .collect();
    let start = match &a.start {
        Some(v) if v.len() == 2 => [v[0], v[1]],
        Some(v) => {
            return Err(Error::setting(
                "start",
                format!("{v:?}"),
                "two numbers: X,Y",
            ));
        }
        None => surface.default_start(),
    };
    Ok(Spec {
        surface,
        methods,
        lr_sweep: a.lr_sweep.clone(),
        start,
        steps: a.steps,
        noise: a.noise,
        tol: a.tol,
        seed: a.seed.unwrap_or(0),
    })
}

/// `landscape --lr`: one number for all (the second value), or NAME=η pairs for optimisers
/// that are drawn.
type NamedLrs = (Vec<(String, f64)>, Option<f64>);
fn landscape_lrs(a: &LandscapeArgs) -> Result<NamedLrs, Error> {
    let mut lrs: Vec<(String, f64)> = Vec::new();
    let mut all: Option<f64> = None;
    let Some(spec) = &a.lr else {
        return Ok((lrs, all));
    };
    let bad = || {
        Error::setting(
            "lr",
            spec,
            "a learning rate for all (0.01) or NAME=η pairs (gd=0.001,adam=0.05)",
        )
    };
    for part in spec.split(',') {
        match part.split_once('=') {
            Some((name, v)) => {
                let name = name.trim().to_string();
                if lrs.iter().any(|(n, _)| *n == name) {
                    return Err(Error::setting(
                        "lr",
                        spec,
                        format!("gives {name} two learning rates: give each optimizer one"),
                    ));
                }
                lrs.push((name, v.trim().parse().map_err(|_| bad())?));
            }
            None if all.is_some() => {
                return Err(Error::setting(
                    "lr",
                    spec,
                    "gives more than one learning rate for all: one number (0.01), NAME=η pairs \
                     (gd=0.001,adam=0.05), or --lr-sweep for gradient descent at several rates",
                ));
            }
            None => all = Some(part.trim().parse().map_err(|_| bad())?),
        }
    }
    if let Some((name, _)) = lrs.iter().find(|(n, _)| !a.optimizers.contains(n)) {
        return Err(Error::setting(
            "lr",
            name,
            format!(
                "names an optimizer that is not drawn (drawn: {})",
                a.optimizers.join(", ")
            ),
        ));
    }
    Ok((lrs, all))
}

/// The picture's title: the surface and the walk (a sweep, noisy steps, or steps from a start).
fn landscape_title(a: &LandscapeArgs, spec: &downhill::landscape::Spec) -> String {
    let name = spec.surface.name();
    match (&spec.lr_sweep, a.noise > 0.0) {
        (Some(_), _) => format!("{name}: gradient descent, learning-rate sweep"),
        (None, true) => format!("{name}: {} steps, gradient noise σ = {}", a.steps, a.noise),
        (None, false) => format!(
            "{name}: {} steps from ({}, {})",
            a.steps, spec.start[0], spec.start[1]
        ),
    }
}

/// The table of the walks: each optimiser's rate, final point and loss, steps to tolerance.
fn print_paths(paths: &[downhill::landscape::Path]) {
    outln!(
        "{:<12} {:>10} {:>24} {:>14} {:>12}",
        "optimizer",
        "η",
        "final point",
        "final loss",
        "steps to tol"
    );
    for p in paths {
        let reached = p.steps_to_tolerance.map_or(
            if p.diverged {
                "diverged".into()
            } else {
                "—".into()
            },
            |s| s.to_string(),
        );
        outln!(
            "{:<12} {:>10} {:>24} {:>14.4e} {:>12}",
            p.label,
            p.lr,
            format!("({:.4}, {:.4})", p.final_point[0], p.final_point[1]),
            p.final_loss,
            reached
        );
    }
}
