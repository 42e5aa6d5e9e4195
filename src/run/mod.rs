//! A whole training run, as `downhill train` performs it: load and split the data, normalise it
//! with training-set statistics, build (or load) the network, train, evaluate on training,
//! validation and test sets, and leave a run folder:
//!
//! | file                | contents                                                        |
//! |---------------------|-----------------------------------------------------------------|
//! | `model.safetensors` | the trained network (see [`crate::io`])                        |
//! | `metrics.jsonl`     | one JSON object per epoch ([`EpochMetrics`](crate::train::EpochMetrics)), written as it ends |
//! | `summary.json`      | [`Summary`]: final figures, settings, seed, versions, timings  |
//! | `curves.svg`        | loss and accuracy against epoch, training and validation       |
//! | `confusion.svg`     | the test set's confusion matrix (classification)               |
//!
//! plus `checkpoint.safetensors` (the final training state, from which `--resume DIR --epochs N`
//! continues) and, with `--snapshots`, `trajectory.safetensors`.
//!
//! ## Run folder safety (see [`RunFolder`])
//! - A run locks its folder (`DIR/.lock`, an OS file lock released when the process ends, even
//!   when killed): a second run into the same folder fails at once instead of interleaving.
//! - A run writes everything into `DIR/unfinished/` and touches none of the folder's existing
//!   files until it has succeeded. Then it *publishes*: it writes the marker
//!   `unfinished/PUBLISH` (listing the files), removes `DIR/summary.json`, moves each new file over the old one (and
//!   removes old run files the new run does not produce), moves `summary.json` last, and removes
//!   `unfinished/`. So a folder with a `summary.json` holds files of one run only; a publish
//!   that a crash interrupted is completed by the next run that opens the folder.
//! - Temporary files of killed writes (`.downhill-*.tmp`) are removed when a run opens the folder.
//! - A killed run leaves `unfinished/checkpoint.safetensors`: `--resume DIR` continues it; a new
//!   run into that folder is refused until it is resumed or `unfinished/` is deleted.
//! - An interrupted run (Ctrl-C, SIGTERM) publishes its model so far, unless the folder holds a
//!   finished run: that run is then left as it was, and the interrupted one stays in
//!   `unfinished/` (model, checkpoint, summary) for `--resume DIR`.
//!
//! The code, by idea: the run-folder transaction (`folder`), the training job (`job`, its data
//! in `data`), the report (`summary`) and using a saved model (`apply`).

mod apply;
mod data;
mod folder;
mod job;
mod summary;

pub use apply::{
    EvalSummary, FAR_INPUT, RowNotes, check_model_on, eval_data, eval_data_noted, evaluate,
    predict_csv, predict_csv_noted,
};
pub use data::LONG_LOAD_BYTES;
pub use folder::{
    CHECKPOINT, LOCK, PUBLISH, RUN_FILES, RunFolder, UNFINISHED, check_resume_folder,
    checkpoint_to_resume, finished_run,
};
pub use job::{LARGE_INIT_WEIGHT, lr_find, resume, train};
pub use summary::{
    DataSummary, Decisions, Figures, LrFound, ROC_AUC_UNDEFINED, Summary, report_in_units,
};
