//! The run-folder transaction (see the module docs of [`crate::run`]): the lock, the staging
//! folder `unfinished/`, publishing, and the checks that refuse a folder that is not a run
//! folder to write into or resume.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io;

/// The checkpoint file of a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The checkpoint `--resume DIR` continues: a killed run's (`DIR/unfinished/`) if there is
/// one, else the one the last run published.
pub fn checkpoint_to_resume(dir: &Path) -> PathBuf {
    let staged = dir.join(UNFINISHED).join(CHECKPOINT);
    if staged.exists() {
        staged
    } else {
        dir.join(CHECKPOINT)
    }
}

/// Whether the run in `dir` has nothing left to do for `--resume` (with `--epochs` if given):
/// it ended by a stopping rule (early stopping, the gradient tolerance: more epochs would not
/// change that), or it ran all its epochs and no larger total is asked for. Then the reason,
/// for a message: the folder is left exactly as it is. A killed or interrupted run, or one
/// without a summary, is not finished.
pub fn finished_run(dir: &Path, epochs: Option<usize>) -> Option<String> {
    if dir.join(UNFINISHED).join(CHECKPOINT).exists() {
        return None;
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).ok()?).ok()?;
    if summary["interrupted"].as_bool() != Some(false) {
        return None;
    }
    let reason = summary["stop_reason"].as_str().unwrap_or("");
    let done = summary["epochs"].as_u64()? as usize;
    // Summaries of earlier versions say it only in words.
    let by = summary["stopped_by"].as_str().unwrap_or(match reason {
        r if r.starts_with("all ") => "max-epochs",
        r if r.starts_with("interrupted") => "interrupted",
        r if r.starts_with("gradient") => "gradient-tolerance",
        _ => "early-stopping",
    });
    let shown = dir.display();
    match by {
        "early-stopping" | "gradient-tolerance" => Some(format!(
            "the run in {shown} has finished ({reason}); nothing to resume, its files are unchanged"
        )),
        "max-epochs" if epochs.is_none_or(|n| n == done) => Some(format!(
            "the run in {shown} has finished all its {done} epochs; nothing to resume, its files \
             are unchanged (--resume {shown} --epochs N with N > {done} trains on)"
        )),
        _ => None,
    }
}

/// The staging folder of a run folder (see the module docs).
pub const UNFINISHED: &str = "unfinished";

/// The marker in the staging folder that says its files are complete and being published.
pub const PUBLISH: &str = "PUBLISH";

/// The lock file of a run folder.
pub const LOCK: &str = ".lock";

/// The files a run may publish, in publishing order: `summary.json`, the mark of a consistent
/// folder, last.
pub const RUN_FILES: [&str; 8] = [
    "metrics.jsonl",
    CHECKPOINT,
    crate::landscape::trajectory::FILE,
    "model.safetensors",
    "curves.svg",
    "confusion.svg",
    "lr-find.svg",
    "summary.json",
];

/// A run folder, locked for one run, with its staging folder (see the module docs).
pub struct RunFolder {
    pub dir: PathBuf,
    pub stage: PathBuf,
    /// This run made the folder (it did not exist before).
    created: bool,
    /// The folder holds a finished run (a `summary.json` that is not an interrupted run's):
    /// an interrupted run then keeps its files in `unfinished/` instead of replacing it.
    pub(super) holds_finished: bool,
    /// The folder holds a published run (finished or interrupted): an interrupted *new* run
    /// does not replace it either (a resumed one continues it, and may).
    pub(super) holds_run: bool,
    _lock: std::fs::File,
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RunFolder {
    /// Creates (if needed) and locks the folder, completes an interrupted publish and removes
    /// temporary files left by killed writes.
    pub fn open(out: Option<&Path>) -> Result<RunFolder> {
        let created = out.is_none_or(|d| !d.exists());
        let dir = run_dir(out)?;
        let lock_path = dir.join(LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Io {
                    path: dir.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::WouldBlock,
                        "another downhill run is using this run folder (it holds the lock on .lock); \
                         wait for it to end or choose another --out",
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let mut folder = RunFolder {
            stage: dir.join(UNFINISHED),
            dir,
            created,
            holds_finished: false,
            holds_run: false,
            _lock: lock,
        };
        remove_temporaries(&folder.dir);
        remove_temporaries(&folder.stage);
        if folder.stage.join(PUBLISH).exists() {
            folder.publish_staged()?;
        } else if folder.stage.is_dir() && !folder.stage.join(CHECKPOINT).exists() {
            // A run that failed or was killed before its first checkpoint: nothing to keep.
            std::fs::remove_dir_all(&folder.stage).map_err(io_err(&folder.stage))?;
        }
        let published = std::fs::read(folder.dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        folder.holds_run = published.is_some();
        folder.holds_finished =
            published.is_some_and(|v| v["interrupted"].as_bool() == Some(false));
        Ok(folder)
    }

    /// What exiting at once (Ctrl-C with nothing to save) removes: the folder if this run made
    /// it, else the staging folder unless it holds a checkpoint to resume.
    pub(super) fn leave_on_exit(&self) -> Vec<PathBuf> {
        if self.created {
            vec![self.dir.clone()]
        } else if self.stage.join(CHECKPOINT).exists() {
            Vec::new()
        } else {
            vec![self.stage.clone()]
        }
    }

    /// An empty staging folder.
    pub(super) fn clear_stage(&self) -> Result<()> {
        if self.stage.exists() {
            std::fs::remove_dir_all(&self.stage).map_err(io_err(&self.stage))?;
        }
        std::fs::create_dir_all(&self.stage).map_err(io_err(&self.stage))
    }

    /// Marks the staged files complete (the marker lists them), then publishes them.
    pub(super) fn publish(&self) -> Result<()> {
        let list: String = RUN_FILES
            .iter()
            .filter(|f| self.stage.join(f).exists())
            .map(|f| format!("{f}\n"))
            .collect();
        io::write_atomic(&self.stage.join(PUBLISH), list.as_bytes())?;
        self.publish_staged()
    }

    /// Moves the staged files into the folder (see the module docs): removes `summary.json`,
    /// moves each listed file, removes the previous run's files that are not listed, moves
    /// `summary.json` last. Idempotent, so that a publish a crash cut short can be completed.
    fn publish_staged(&self) -> Result<()> {
        let marker = self.stage.join(PUBLISH);
        let list = std::fs::read_to_string(&marker).map_err(io_err(&marker))?;
        let listed: Vec<&str> = list.lines().collect();
        let summary = self.dir.join("summary.json");
        if self.stage.join("summary.json").exists() && summary.exists() {
            std::fs::remove_file(&summary).map_err(io_err(&summary))?;
        }
        for name in RUN_FILES {
            let (new, old) = (self.stage.join(name), self.dir.join(name));
            if new.exists() {
                std::fs::rename(&new, &old).map_err(io_err(&old))?;
            } else if !listed.contains(&name) && old.exists() {
                // A file of the previous run that this run does not produce.
                std::fs::remove_file(&old).map_err(io_err(&old))?;
            }
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        std::fs::remove_dir_all(&self.stage).map_err(io_err(&self.stage))
    }
}

/// Refuses a `--resume DIR` that is no run folder to continue: missing, not a folder, a run
/// folder's `unfinished/` (which names the run folder to give instead), or another tool's.
pub fn check_resume_folder(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        // (`DIR/unfinished` that is gone is still named for what it was.)
        check_staging(dir, true)?;
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such run folder"),
        });
    }
    check_foreign(dir, true)?;
    // A run still starting there holds the lock before it has a checkpoint.
    if let Ok(lock) = std::fs::File::open(dir.join(LOCK))
        && let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock()
    {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another downhill run is using this run folder (it holds the lock on .lock); \
                 wait for it to end, then resume it",
            ),
        });
    }
    if !checkpoint_to_resume(dir).exists() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "holds no checkpoint to resume (neither {CHECKPOINT} nor {UNFINISHED}/{CHECKPOINT}): \
                     a run there writes its first at its first checkpoint (--checkpoint-every), \
                     and a run that is still starting, or another that failed early, has none; \
                     start a new run with --out {}",
                    dir.display()
                ),
            ),
        });
    }
    Ok(())
}

/// Refuses `DIR/unfinished` of a run folder, the run's staging folder: a run there would take
/// over DIR (its next run would call it a killed run, and resuming it would replace DIR's
/// model). `resuming`: the message names `--resume DIR`, else `--out`.
fn check_staging(dir: &Path, resuming: bool) -> Result<()> {
    if dir.file_name().is_some_and(|n| n == UNFINISHED)
        && let Some(parent) = dir.parent()
        && [LOCK, CHECKPOINT, "summary.json"]
            .iter()
            .any(|f| parent.join(f).exists())
    {
        let why = if resuming {
            format!(
                "is the staging folder of the run in {0}, not a run folder; resume that run \
                 with --resume {0} (it continues from {0}/{UNFINISHED} when a checkpoint is there)",
                parent.display()
            )
        } else {
            format!(
                "is the staging folder of the run in {}, not a run folder; choose another name \
                 for --out",
                parent.display()
            )
        };
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, why),
        });
    }
    Ok(())
}

/// Refuses an `--out` that is not a folder, or a non-empty folder that was never a downhill run
/// folder (no downhill `summary.json`, `unfinished/` or `.lock`): publishing would replace or
/// remove another tool's files of the same names. `resuming`: a folder holding a checkpoint
/// (copied there to be continued) is one too.
pub(super) fn check_foreign(dir: &Path, resuming: bool) -> Result<()> {
    let refuse = |why: &str| Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, why.to_string()),
    };
    check_staging(dir, resuming)?;
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(refuse(
            "exists and is not a folder; --out names the run folder (choose another name)",
        ));
    }
    let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    if entries.next().is_none() {
        return Ok(());
    }
    let summary = dir.join("summary.json");
    let downhill_summary = std::fs::read(&summary)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("downhill_version").is_some());
    if downhill_summary
        || dir.join(UNFINISHED).is_dir()
        || dir.join(LOCK).is_file()
        || (resuming && dir.join(CHECKPOINT).is_file())
    {
        return Ok(());
    }
    Err(refuse(if resuming {
        "is not a downhill run folder (no checkpoint.safetensors, downhill summary.json, \
         unfinished/ or .lock): --resume takes the folder a run wrote (its --out)"
    } else {
        "is not empty and is not a downhill run folder (no downhill summary.json, unfinished/ or \
         .lock); a run would replace files there: choose a new or empty folder for --out"
    }))
}

/// Removes `.downhill-*.tmp` files (left by writes a kill interrupted) from `dir`.
fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".downhill-") && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The run folder: as given, or `runs/<UTC timestamp>` (with a suffix if that exists).
fn run_dir(out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string()
                .replace(':', "-")
                .trim_end_matches('Z')
                .to_string();
            let base = Path::new("runs").join(stamp);
            std::fs::create_dir_all("runs").map_err(io_err(Path::new("runs")))?;
            // Created, not merely found free: two runs started in the same second get
            // different folders.
            let mut dir = base.clone();
            let mut i = 2;
            loop {
                match std::fs::create_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && i < 10_000 => {
                        dir = PathBuf::from(format!("{}-{i}", base.display()));
                        i += 1;
                    }
                    Err(e) => return Err(io_err(&dir)(e)),
                }
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}
