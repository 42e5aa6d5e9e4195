//! Checkpoint files: a model file (so `eval` and `--init` read it too) that also holds what is
//! needed to continue training exactly — the optimiser's buffers (`optimizer.<name>`), the epoch's
//! batch order (`train.order`, U64), early stopping's best weights (`train.best`), and under the
//! metadata key `"checkpoint"` the epoch, step, generator state, running sums and the run's
//! settings. Written atomically, like every file of downhill.
//!
//! The per-epoch history is not copied into every checkpoint (checkpointing every epoch would
//! then rewrite all earlier epochs each time: quadratic in the epochs, and past 100 MB the
//! safetensors header refuses it). It lives in the append-only [`HistoryLog`], the run folder's
//! `metrics.jsonl` beside the checkpoint; the checkpoint records how many of its lines it covers
//! and the XXH3 of their bytes, and [`load`] reads them back and checks both.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use crate as io;
use crate::{ModelMeta, bad};
use downhill_core::error::{Error, Result};
use downhill_core::network::Network;
use downhill_core::train::{EpochMetrics, EpochSums, Fingerprint, TrainState};

/// The non-tensor part of a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    epoch: usize,
    step: usize,
    rng: downhill_core::rng::Rng,
    optimizer_steps: u64,
    /// Names and lengths of the optimiser's buffers (empty ones are not stored as tensors).
    optimizer_buffers: Vec<(String, usize)>,
    /// The epoch's running sums, as flat fields `loss_sum`, `correct`, `has_accuracy`, `seconds`.
    #[serde(flatten)]
    sums: EpochSums,
    /// The history inline (files before the history log; read, no longer written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<EpochMetrics>,
    /// The history's lines in the [`HistoryLog`] beside the checkpoint: how many, and their XXH3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history_log: Option<Covered>,
    best: Option<(f64, usize)>,
    /// The divergence rule's reference loss and run of steps above it (absent in older files).
    #[serde(default)]
    divergence: (Option<f64>, usize),
    /// Whether a mini-batch loss went above the divergence rule's threshold (absent in older
    /// files: false).
    #[serde(default)]
    spiked: bool,
    /// The training data's fingerprint of earlier versions, FNV-1a (absent in the oldest
    /// files: not checked; files of this version write `data_xxh3` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_fingerprint: Option<u64>,
    /// The training data's fingerprint, [`downhill_core::data::Dataset::fingerprint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_xxh3: Option<u64>,
    /// The snapshots in the `--snapshots` trajectory file beside the checkpoint: how many, and
    /// the XXH3 of their bytes (absent in older files and in runs without snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trajectory: Option<Covered>,
    /// The run's settings, so that `--resume` rebuilds the same run.
    settings: serde_json::Value,
}

/// The name of the history log, in the folder of the checkpoint.
pub const HISTORY_LOG: &str = "metrics.jsonl";

/// The lines of a [`HistoryLog`] a checkpoint covers: their number (one per epoch) and the XXH3
/// of their bytes, newlines included.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Covered {
    pub epochs: usize,
    pub xxh3: u64,
}

/// `metrics.jsonl`: one JSON object per epoch ([`EpochMetrics`]), appended as each epoch ends,
/// and the running hash of what was appended, so that a checkpoint records it in O(1).
pub struct HistoryLog {
    file: std::fs::File,
    path: PathBuf,
    covered: Covered,
    hash: xxhash_rust::xxh3::Xxh3,
    /// The first write that failed, reported by [`HistoryLog::sync`].
    error: Option<Error>,
}

impl HistoryLog {
    /// The log at `path`, holding `earlier` (a resumed run's epochs). With earlier epochs the
    /// file is replaced atomically, so that the checkpoint that covers them stays readable
    /// whatever happens to this run.
    pub fn create(path: &Path, earlier: &[EpochMetrics]) -> Result<HistoryLog> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        for m in earlier {
            bytes.extend_from_slice(line(m).as_bytes());
        }
        let file = if earlier.is_empty() {
            std::fs::File::create(path).map_err(io_err)?
        } else {
            io::write_atomic(path, &bytes)?;
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io_err)?
        };
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        hash.update(&bytes);
        Ok(HistoryLog {
            file,
            path: path.to_path_buf(),
            covered: Covered {
                epochs: earlier.len(),
                xxh3: hash.digest(),
            },
            hash,
            error: None,
        })
    }

    /// Appends epoch `m`; a failed write is kept for [`HistoryLog::sync`] (and the run's end).
    pub fn append(&mut self, m: &EpochMetrics) {
        let line = line(m);
        if let Err(source) = self.file.write_all(line.as_bytes())
            && self.error.is_none()
        {
            self.error = Some(Error::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.hash.update(line.as_bytes());
        self.covered = Covered {
            epochs: self.covered.epochs + 1,
            xxh3: self.hash.digest(),
        };
    }

    /// The first failed write, if any: the run must fail with it.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// Flushes the log to the disk and says what a checkpoint written now covers; fails if a
    /// write failed.
    pub fn sync(&mut self) -> Result<Covered> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.file.sync_data().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.covered)
    }
}

/// Epoch `m` as a line of the history log.
fn line(m: &EpochMetrics) -> String {
    let mut s = serde_json::to_string(m).expect("metrics serialise");
    s.push('\n');
    s
}

/// The first `covered.epochs` epochs of the history log at `path`, checked against the hash.
fn read_history(path: &Path, covered: Covered) -> Result<Vec<EpochMetrics>> {
    let file = std::fs::File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => bad(
            path,
            "missing",
            format!(
                "the checkpoint beside it keeps its {} epochs of history in this file: copy or move \
                 {HISTORY_LOG} together with the checkpoint",
                covered.epochs
            ),
        ),
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut reader = std::io::BufReader::new(file);
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    let mut history = Vec::new();
    let mut buf = Vec::new();
    for n in 1..=covered.epochs {
        buf.clear();
        // A line longer than any epoch's record is not one (and is not read whole).
        let got = (&mut reader)
            .take(1 << 16)
            .read_until(b'\n', &mut buf)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if got == 0 || buf.last() != Some(&b'\n') {
            return Err(bad(
                path,
                format!("line {n}"),
                format!(
                    "the checkpoint beside it covers {} epochs, but the log ends (or its line is too long) at line {n}",
                    covered.epochs
                ),
            ));
        }
        hash.update(&buf);
        let m: EpochMetrics = serde_json::from_slice(&buf)
            .map_err(|e| bad(path, format!("line {n}"), format!("unreadable: {e}")))?;
        history.push(m);
    }
    if hash.digest() != covered.xxh3 {
        return Err(bad(
            path,
            format!("lines 1-{}", covered.epochs),
            "not the lines the checkpoint beside it was written with (the file was edited or replaced)",
        ));
    }
    Ok(history)
}

/// Writes `state` (with the network's metadata and the run's settings) to `path`, atomically;
/// its history is the `covered` lines of the [`HistoryLog`] in the same folder, and its
/// training path (with `--snapshots`) the `trajectory` snapshots of the trajectory file there.
pub fn save(
    path: &Path,
    state: &TrainState<f32>,
    (covered, trajectory): (Covered, Option<Covered>),
    meta: &ModelMeta,
    settings: serde_json::Value,
) -> Result<()> {
    if covered.epochs != state.history.len() {
        return Err(Error::shape(
            "the history log",
            format!("{} epochs", state.history.len()),
            format!("{} epochs", covered.epochs),
        ));
    }
    let mut net = Network::<f32>::with_zero_params_shaped(meta.shape(), meta.layers.clone())?;
    net.params_mut().copy_from_slice(&state.params);
    if state.buffers.len() == net.buffers().len() {
        net.buffers_mut().copy_from_slice(&state.buffers);
    }
    if state.tracked.len() == net.tracked().len() {
        net.tracked_mut().copy_from_slice(&state.tracked);
    }
    let mut extra: Vec<io::ExtraTensor> = state
        .optimizer_state
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| {
            (
                format!("optimizer.{n}"),
                Dtype::F32,
                io::f32_bytes(v),
                vec![v.len()],
            )
        })
        .collect();
    if !state.order.is_empty() {
        let bytes = state
            .order
            .iter()
            .flat_map(|&i| (i as u64).to_le_bytes())
            .collect();
        extra.push((
            "train.order".into(),
            Dtype::U64,
            bytes,
            vec![state.order.len()],
        ));
    }
    if let Some((_, _, p)) = &state.best {
        extra.push((
            "train.best".into(),
            Dtype::F32,
            io::f32_bytes(p),
            vec![p.len()],
        ));
    }
    let header = Header {
        epoch: state.epoch,
        step: state.step,
        rng: state.rng.clone(),
        optimizer_steps: state.optimizer_steps,
        optimizer_buffers: state
            .optimizer_state
            .iter()
            .map(|(n, v)| (n.clone(), v.len()))
            .collect(),
        sums: state.sums,
        history: Vec::new(),
        history_log: Some(covered),
        best: state.best.as_ref().map(|(l, e, _)| (*l, *e)),
        divergence: state.divergence,
        spiked: state.spiked,
        data_fingerprint: match state.data_fingerprint {
            Some(Fingerprint::Fnv1a(v)) => Some(v),
            _ => None,
        },
        data_xxh3: match state.data_fingerprint {
            Some(Fingerprint::Xxh3(v)) => Some(v),
            _ => None,
        },
        trajectory,
        settings,
    };
    let json = serde_json::to_string(&header).expect("checkpoint header serialises");
    io::write_atomic(
        path,
        &io::to_bytes_with(&net, meta, &extra, &[("checkpoint", json)])?,
    )
}

/// A checkpoint read back: the training state, the model's metadata and the run's settings.
pub struct Loaded {
    pub state: TrainState<f32>,
    pub meta: ModelMeta,
    pub settings: serde_json::Value,
    /// The snapshots of the trajectory file the checkpoint covers (see [`save`]), if recorded.
    pub trajectory: Option<Covered>,
}

/// Reads a checkpoint written by [`save`], with its history from the log beside it.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = io::read(path)?;
    let model = io::load_bytes(path, &bytes)?;
    let json = io::metadata_entry(path, &bytes, "checkpoint")?.ok_or_else(|| {
        bad(
            path,
            "__metadata__",
            "no \"checkpoint\" entry: this is a model file, not a checkpoint (use it with --init)",
        )
    })?;
    let h: Header = serde_json::from_str(&json)
        .map_err(|e| bad(path, "__metadata__.checkpoint", format!("unreadable: {e}")))?;
    let st = io::parse(path, &bytes)?;
    let t = Tensors { path, st: &st };
    let mut optimizer_state = Vec::new();
    for (name, len) in &h.optimizer_buffers {
        let v = if *len == 0 {
            Vec::new()
        } else {
            t.f32s(&format!("optimizer.{name}"), *len)?
        };
        optimizer_state.push((name.clone(), v));
    }
    let order = if h.step > 0 { t.order()? } else { Vec::new() };
    let best = match h.best {
        Some((loss, epoch)) => Some((
            loss,
            epoch,
            t.f32s(
                "train.best",
                model.net.param_count() + model.net.buffers().len(),
            )?,
        )),
        None => None,
    };
    if h.settings.is_null() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            location: "__metadata__.checkpoint.settings".into(),
            message: "missing".into(),
        });
    }
    let history_path = match h.history_log {
        Some(_) => path.with_file_name(HISTORY_LOG),
        None => path.to_path_buf(),
    };
    let state = TrainState {
        epoch: h.epoch,
        step: h.step,
        order,
        rng: h.rng,
        params: model.net.params().to_vec(),
        buffers: model.net.buffers().to_vec(),
        tracked: model.net.tracked().to_vec(),
        optimizer_steps: h.optimizer_steps,
        optimizer_state,
        sums: h.sums,
        history: match h.history_log {
            Some(covered) => read_history(&path.with_file_name(HISTORY_LOG), covered)?,
            None => h.history,
        },
        best,
        divergence: h.divergence,
        spiked: h.spiked,
        data_fingerprint: h
            .data_xxh3
            .map(Fingerprint::Xxh3)
            .or(h.data_fingerprint.map(Fingerprint::Fnv1a)),
    };
    check_bookkeeping(path, &state)?;
    check_history(&history_path, &state.history)?;
    Ok(Loaded {
        state,
        meta: model.meta,
        settings: h.settings,
        trajectory: h.trajectory,
    })
}

/// The checkpoint's bookkeeping, checked where it can be told from the file alone (the step
/// count against the data is checked by [`TrainState::check_resumable`]): a hand-edited field
/// would otherwise resume a different run. Each refusal names the field.
fn check_bookkeeping(path: &Path, s: &TrainState<f32>) -> Result<()> {
    let field = |name: &str, message: String| {
        Err(bad(
            path,
            format!("__metadata__.checkpoint.{name}"),
            message,
        ))
    };
    let done = s.history.len();
    if s.epoch != done {
        return field(
            "epoch",
            format!(
                "{}, but the run's history holds {done} epochs (the epoch in progress is the \
                 next one, 0-based: {done})",
                s.epoch
            ),
        );
    }
    let sums = &s.sums;
    for (name, v) in [("loss_sum", sums.loss_sum), ("seconds", sums.seconds)] {
        if !(v.is_finite() && v >= 0.0) {
            return field(name, format!("{v}; a running sum is a finite number ≥ 0"));
        }
    }
    if s.step > 0 && sums.correct > s.order.len() {
        return field(
            "correct",
            format!(
                "{} examples classified correctly, but an epoch has {} examples",
                sums.correct,
                s.order.len()
            ),
        );
    }
    let steps = downhill_core::train::Divergence::default().steps;
    match s.divergence {
        (Some(r), _) if !(r.is_finite() && r >= 0.0) => {
            return field(
                "divergence",
                format!("reference loss {r}; a loss is a finite number ≥ 0"),
            );
        }
        (None, above) if above > 0 => {
            return field(
                "divergence",
                format!("{above} steps above a reference loss that was never set"),
            );
        }
        (_, above) if above >= steps => {
            return field(
                "divergence",
                format!(
                    "{above} steps in a row above the rule's threshold; the rule stops a run at \
                     {steps}, so a checkpoint holds fewer"
                ),
            );
        }
        (_, above) if above > 0 && !s.spiked => {
            return field(
                "spiked",
                format!("false, but {above} steps in a row were above the rule's threshold"),
            );
        }
        _ => {}
    }
    if let Some((key, at, _)) = &s.best {
        if !(key.is_finite() && *key >= 0.0) {
            return field(
                "best",
                format!("figure {key}; early stopping's figure is a finite number ≥ 0"),
            );
        }
        if *at == 0 || *at > done {
            return field(
                "best",
                format!("epoch {at}, but the run's history holds epochs 1 to {done}"),
            );
        }
    }
    for (name, v) in &s.optimizer_state {
        let squares = matches!(name.as_str(), "exp_avg_sq" | "square_avg" | "sum");
        if let Some(i) = v
            .iter()
            .position(|x| !x.is_finite() || (squares && *x < 0.0))
        {
            return Err(bad(
                path,
                format!("tensor optimizer.{name} element {i}"),
                format!(
                    "{}; the optimiser's buffers are finite{}",
                    v[i],
                    if squares {
                        ", and a running sum of squares is ≥ 0"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The history's epochs numbered 1, 2, … in order, with finite figures and seconds ≥ 0.
fn check_history(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    for (i, m) in history.iter().enumerate() {
        let at = || format!("epoch {} of the history", i + 1);
        if m.epoch != i + 1 {
            return Err(bad(
                path,
                at(),
                format!(
                    "numbered {}; the history's epochs are 1, 2, … in order",
                    m.epoch
                ),
            ));
        }
        if !(m.seconds.is_finite() && m.seconds >= 0.0) {
            return Err(bad(
                path,
                at(),
                format!("seconds {}; a duration is a finite number ≥ 0", m.seconds),
            ));
        }
        if !m.lr.is_finite() || m.lr < 0.0 {
            return Err(bad(
                path,
                at(),
                format!("lr {}; a learning rate is a finite number ≥ 0", m.lr),
            ));
        }
    }
    Ok(())
}

/// The tensors of a checkpoint file at `path`, read with their type and length checked.
struct Tensors<'a> {
    path: &'a Path,
    st: &'a safetensors::SafeTensors<'a>,
}

impl Tensors<'_> {
    /// The bytes of tensor `name`, which must hold `len` values of `dtype` (U64 or 4-byte).
    fn bytes(&self, name: &str, dtype: Dtype, len: usize) -> Result<&[u8]> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| bad(self.path, format!("tensor {name}"), "missing"))?;
        let size = if dtype == Dtype::U64 { 8 } else { 4 };
        if view.dtype() != dtype || view.data().len() != len * size {
            return Err(bad(
                self.path,
                format!("tensor {name}"),
                format!(
                    "expected {len} values of {dtype:?}, found {:?} {:?}",
                    view.shape(),
                    view.dtype()
                ),
            ));
        }
        Ok(view.data())
    }

    /// Tensor `name` as `len` f32 values.
    fn f32s(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let b = self.bytes(name, Dtype::F32, len)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// The epoch's batch order (`train.order`, U64), of whatever length it has.
    fn order(&self) -> Result<Vec<usize>> {
        let n = self
            .st
            .tensor("train.order")
            .map(|v| v.shape().iter().product())
            .unwrap_or(0);
        let b = self.bytes("train.order", Dtype::U64, n)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An epoch's line read back and written again is the same bytes: a resumed run rewrites
    /// the log from the parsed epochs, and the checkpoint beside it holds the hash of the
    /// original bytes. serde_json's default parser read 1.4020324647426605 one ulp off
    /// (…603), so a run killed twice could not be resumed (found by the kill-and-resume loop of
    /// tests/suite/robustness/battery.rs); `float_roundtrip` makes it exact.
    #[test]
    fn a_line_read_back_is_written_the_same() {
        let text = r#"{"epoch":2,"lr":0.001,"train_loss":1.2839075658056471,"train_accuracy":0.3472222222222222,"val_loss":1.4020324647426605,"val_accuracy":0.25,"grad_norm":null,"seconds":0.052264535,"examples_per_second":19129.783492033042}"#;
        let m: EpochMetrics = serde_json::from_str(text).unwrap();
        assert_eq!(line(&m), format!("{text}\n"));
    }
}
