//! Checkpoint files: a model file (so `eval` and `--init` read it too) that also holds what is
//! needed to continue training exactly — the optimiser's buffers (`optimizer.<name>`), the epoch's
//! batch order (`train.order`, U64), early stopping's best weights (`train.best`), and under the
//! metadata key `"checkpoint"` the epoch, step, generator state, running sums, history and the
//! run's settings. Written atomically, like every file of downhill.

use std::path::Path;

use safetensors::Dtype;

use crate::error::{Error, Result};
use crate::io::{self, ModelMeta, bad};
use crate::network::Network;
use crate::train::{EpochMetrics, EpochSums, Fingerprint, TrainState};

/// The non-tensor part of a checkpoint.
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    epoch: usize,
    step: usize,
    rng: crate::rng::Rng,
    optimizer_steps: u64,
    /// Names and lengths of the optimiser's buffers (empty ones are not stored as tensors).
    optimizer_buffers: Vec<(String, usize)>,
    /// The epoch's running sums, as flat fields `loss_sum`, `correct`, `has_accuracy`, `seconds`.
    #[serde(flatten)]
    sums: EpochSums,
    history: Vec<EpochMetrics>,
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
    /// The training data's fingerprint, [`crate::data::Dataset::fingerprint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_xxh3: Option<u64>,
    /// The run's settings, so that `--resume` rebuilds the same run.
    settings: serde_json::Value,
}

/// Writes `state` (with the network's metadata and the run's settings) to `path`, atomically.
pub fn save(
    path: &Path,
    state: &TrainState<f32>,
    meta: &ModelMeta,
    settings: serde_json::Value,
) -> Result<()> {
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
        history: state.history.clone(),
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
}

/// Reads a checkpoint written by [`save`].
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
        history: h.history,
        best,
        divergence: h.divergence,
        spiked: h.spiked,
        data_fingerprint: h
            .data_xxh3
            .map(Fingerprint::Xxh3)
            .or(h.data_fingerprint.map(Fingerprint::Fnv1a)),
    };
    Ok(Loaded {
        state,
        meta: model.meta,
        settings: h.settings,
    })
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
