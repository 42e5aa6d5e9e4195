//! The checkpoint state: everything needed to continue a run exactly where it was
//! ([`TrainState`]), when to take it ([`Every`], [`Checkpointing`]) and the data's [`Fingerprint`].

use super::*;
use crate::data::{BatchBuf, Dataset};
use crate::error::{Error, Result};
use crate::network::{BatchLoss, Network};
use crate::optim::Sharded;
use crate::rng::Rng;
use crate::tensor::Scalar;

/// The running sums of the epoch in progress, from which its training loss and accuracy are
/// computed at its end; a checkpoint taken mid-epoch carries them over.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochSums {
    /// Σᵢ ℓᵢ of the steps taken so far (data loss, no penalty).
    pub loss_sum: f64,
    /// Examples classified correctly so far.
    pub correct: usize,
    /// Whether the loss classifies (there is an accuracy).
    pub has_accuracy: bool,
    /// Training seconds of the epoch so far.
    pub seconds: f64,
}

impl EpochSums {
    /// Adds one mini-batch's summed loss and correct count.
    pub(super) fn add(&mut self, batch: BatchLoss) {
        self.loss_sum += batch.sum;
        if let Some(c) = batch.correct {
            self.correct += c;
            self.has_accuracy = true;
        }
    }
}

/// Everything needed to continue a run exactly where it was: what a checkpoint holds.
///
/// Resuming from a state taken by [`train_with`] gives the same final weights, bit for bit, as
/// the run that was never interrupted (same data, settings and thread count).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState<T> {
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Steps of that epoch already taken (0: the epoch has not started).
    pub step: usize,
    /// The epoch's batch order (empty when `step` is 0: it is drawn when the epoch starts).
    pub order: Vec<usize>,
    /// The generator, as it is after drawing `order`.
    pub rng: Rng,
    pub params: Vec<T>,
    /// BatchNorm's running statistics ([`Network::buffers`]; empty without BatchNorm).
    pub buffers: Vec<T>,
    /// BatchNorm's `num_batches_tracked` per layer ([`Network::tracked`]).
    pub tracked: Vec<i64>,
    pub optimizer_steps: u64,
    /// The optimiser's named buffers (see [`crate::optim::Optimizer::state`]).
    pub optimizer_state: Vec<(String, Vec<T>)>,
    /// Running sums of the epoch in progress.
    pub sums: EpochSums,
    pub history: Vec<EpochMetrics>,
    /// Early stopping's best so far: validation loss, 1-based epoch, weights (the parameters
    /// followed by the buffers, [`Network::weights_and_buffers`]).
    pub best: Option<(f64, usize, Vec<T>)>,
    /// The divergence rule's reference loss (once the first step has set it) and how many
    /// steps in a row have been above it (see [`Divergence`]).
    pub divergence: (Option<f64>, usize),
    /// Whether a mini-batch loss has been above the divergence rule's factor × its reference
    /// (the run must then end below chance level, see [`Divergence`]).
    pub spiked: bool,
    /// The training data's [`Fingerprint`] (`None` in the oldest checkpoints: not checked).
    pub data_fingerprint: Option<Fingerprint>,
}

/// A training set's fingerprint as a checkpoint records it, so that a resumed run can tell it
/// is given other data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fingerprint {
    /// [`Dataset::fingerprint`] (XXH3-64): what checkpoints record.
    Xxh3(u64),
    /// A byte-serial FNV-1a over the normalised values, from checkpoints of earlier versions;
    /// computed ([`fnv1a`]) only to resume such a file.
    Fnv1a(u64),
}

impl Fingerprint {
    /// Whether `data` is the data this fingerprint was taken of; `xxh3` caches the run's own
    /// [`Dataset::fingerprint`] (computed at most once).
    pub fn matches(self, data: &Dataset, xxh3: &mut Option<u64>) -> bool {
        match self {
            Fingerprint::Xxh3(v) => v == *xxh3.get_or_insert_with(|| data.fingerprint()),
            Fingerprint::Fnv1a(v) => v == fnv1a(data),
        }
    }
}

/// The fingerprint of earlier versions' checkpoints: a 64-bit FNV-1a hash of the data as
/// training sees it (normalised features and targets, in order), one byte at a time.
pub fn fnv1a(data: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bits: u32| {
        for b in bits.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let chunk = data.len().clamp(1, 256);
    let mut x = vec![0f32; chunk * data.n_features()];
    let mut batch = BatchBuf::<f32>::new(data, chunk);
    let mut idx = Vec::with_capacity(chunk);
    for start in (0..data.len()).step_by(chunk) {
        idx.clear();
        idx.extend(start..(start + chunk).min(data.len()));
        let m = idx.len();
        data.gather(&idx, &mut x[..m * data.n_features()], &mut batch);
        x[..m * data.n_features()]
            .iter()
            .for_each(|v| eat(v.to_bits()));
        match batch.targets() {
            crate::loss::BatchTargets::Classes(y) => y[..m].iter().for_each(|&c| eat(c)),
            crate::loss::BatchTargets::Values(y) => y[..m * data.n_outputs()]
                .iter()
                .for_each(|v| eat(v.to_bits())),
        }
    }
    eat(data.len() as u32);
    h
}

/// When to take a checkpoint: `epoch`, or a number of steps (as the CLI and config files spell it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// After each epoch (after its validation and stopping checks).
    Epoch,
    /// After every N optimiser steps (counted over the whole run).
    Steps(usize),
    /// Only the final state, when training ends or is interrupted (`end`).
    End,
}

/// Reads a setting written either as a number (`64`) or a word (`"full"`, `"epoch"`), through
/// `FromStr`: for serde, [`Every`] here and the program's batch size.
pub fn number_or_word<'de, D: serde::Deserializer<'de>, T: std::str::FromStr<Err = Error>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    let text = match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::N(n) => n.to_string(),
        Raw::S(s) => s,
    };
    text.parse().map_err(serde::de::Error::custom)
}

impl std::str::FromStr for Every {
    type Err = Error;
    fn from_str(s: &str) -> Result<Every> {
        match s {
            "epoch" => Ok(Every::Epoch),
            "end" => Ok(Every::End),
            _ => match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Every::Steps(n)),
                _ => Err(Error::setting(
                    "checkpoint-every",
                    s,
                    "a whole number of steps ≥ 1, `epoch`, or `end`",
                )),
            },
        }
    }
}

impl serde::Serialize for Every {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Every::Steps(n) => s.serialize_u64(*n as u64),
            Every::Epoch => s.serialize_str("epoch"),
            Every::End => s.serialize_str("end"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        number_or_word(d)
    }
}

/// Checkpointing: when, and what to call with the state (e.g. to write it to a file). Besides
/// the states `every` asks for, `save` is called once more when training ends (normally, by a
/// stopping rule or interrupted) with the final state, from which training can be continued
/// for more epochs.
pub struct Checkpointing<'a, T> {
    pub every: Every,
    pub save: &'a mut dyn FnMut(&TrainState<T>) -> Result<()>,
}

/// What the loop carries from step to step and from epoch to epoch besides the weights, the
/// optimiser and the generator: with them, what a [`TrainState`] holds.
pub(super) struct Progress<T> {
    /// The epoch's batch order.
    pub(super) order: Vec<usize>,
    /// Running sums of the epoch in progress (`seconds`: of the sessions before this one).
    pub(super) sums: EpochSums,
    pub(super) history: Vec<EpochMetrics>,
    /// Early stopping's best so far: validation key, 1-based epoch, weights and buffers
    /// ([`Network::weights_and_buffers`]).
    pub(super) best: Option<(f64, usize, Vec<T>)>,
    /// The divergence rule's reference loss and the steps in a row above it (see [`Divergence`]).
    pub(super) reference: Option<f64>,
    pub(super) above: usize,
    /// Whether a mini-batch loss has gone above the divergence rule's factor × its reference.
    pub(super) spiked: bool,
}

impl<T> Progress<T> {
    /// The progress of a run that has not started, on `n` examples.
    pub(super) fn new(n: usize) -> Self {
        Progress {
            order: Vec::with_capacity(n),
            sums: EpochSums::default(),
            history: Vec::new(),
            best: None,
            reference: None,
            above: 0,
            spiked: false,
        }
    }
}

/// Whether `order` holds each of 0..len exactly once.
pub fn is_permutation(order: &[usize]) -> bool {
    let mut seen = vec![false; order.len()];
    order
        .iter()
        .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true))
}

impl<T: Scalar> TrainState<T> {
    /// Checks a state to resume from against a network of `param_count` parameters and
    /// `buffer_count` buffer values, and a training set of `n` examples in `steps` mini-batches,
    /// before anything is restored.
    pub(super) fn check(
        &self,
        param_count: usize,
        buffer_count: usize,
        n: usize,
        steps: usize,
    ) -> Result<()> {
        if self.params.len() != param_count {
            return Err(Error::shape(
                "resumed parameters",
                param_count,
                self.params.len(),
            ));
        }
        if self.buffers.len() != buffer_count {
            return Err(Error::shape(
                "resumed BatchNorm running statistics",
                buffer_count,
                self.buffers.len(),
            ));
        }
        let param_count = param_count + buffer_count;
        if self.step > 0 && (self.order.len() != n || self.step >= steps) {
            return Err(Error::shape(
                "resumed batch order",
                format!("{n} examples, step < {steps}"),
                format!("{} examples, step {}", self.order.len(), self.step),
            ));
        }
        if self.step > 0 && !is_permutation(&self.order) {
            return Err(Error::shape(
                "resumed batch order",
                format!("a permutation of 0..{n}"),
                "repeated or out-of-range indices",
            ));
        }
        if let Some(i) = self.params.iter().position(|v| !v.f64().is_finite()) {
            return Err(Error::shape(
                format!("resumed parameter {i}"),
                "a finite number",
                self.params[i].f64(),
            ));
        }
        if let Some((_, at, p)) = &self.best
            && (p.len() != param_count || *at > self.history.len())
        {
            return Err(Error::shape(
                "resumed best weights",
                format!(
                    "{} values from an epoch ≤ {}",
                    param_count,
                    self.history.len()
                ),
                format!("{} values from epoch {at}", p.len()),
            ));
        }
        if self.history.len() != self.epoch {
            return Err(Error::shape(
                "resumed history",
                format!("{} epochs", self.epoch),
                format!("{} epochs", self.history.len()),
            ));
        }
        // Every step of every epoch so far moved the optimiser once: its count (Adam's t, which
        // its bias correction reads) follows from the epoch and step.
        let taken = (self.epoch as u64)
            .checked_mul(steps as u64)
            .and_then(|v| v.checked_add(self.step as u64));
        if taken != Some(self.optimizer_steps) {
            return Err(Error::shape(
                "resumed optimizer_steps",
                format!(
                    "{} (epoch {} × {steps} steps per epoch + step {})",
                    taken.map_or("beyond 2^64".to_string(), |t| t.to_string()),
                    self.epoch,
                    self.step
                ),
                self.optimizer_steps,
            ));
        }
        Ok(())
    }

    /// The checks [`train_with`] makes of this state before it restores anything, made
    /// beforehand (so that a refused resume writes nothing): the state against a network like
    /// `net` and the training set `data` in mini-batches of `cfg`'s size, and the data against
    /// the state's fingerprint.
    pub fn check_resumable(
        &self,
        net: &Network<T>,
        data: &Dataset,
        cfg: &TrainConfig,
    ) -> Result<()> {
        let bs = cfg.batch_size.min(data.len()).max(1);
        self.check(
            net.param_count(),
            net.buffers().len(),
            data.len(),
            data.len().div_ceil(bs),
        )?;
        self.check_data(data, &mut None)
    }

    /// Fails if the training data (with the run's cached [`Dataset::fingerprint`]) is not the
    /// data the state was taken on.
    fn check_data(&self, data: &Dataset, xxh3: &mut Option<u64>) -> Result<()> {
        if let Some(saved) = self.data_fingerprint
            && !saved.matches(data, xxh3)
        {
            return Err(Error::shape(
                "resumed training data",
                "the data the checkpoint was taken on",
                "other data (the file changed, or other settings select other rows or columns)",
            ));
        }
        Ok(())
    }

    /// Puts the weights, the optimiser's state and the generator back as they were, after
    /// [`TrainState::check`]; fails, before anything is restored, if the training data (with the
    /// run's cached [`Dataset::fingerprint`]) is not the data the state was taken on.
    pub(super) fn restore(
        &self,
        net: &mut Network<T>,
        opt: &mut Sharded<T>,
        rng: &mut Rng,
        (data, xxh3): (&Dataset, &mut Option<u64>),
    ) -> Result<()> {
        self.check_data(data, xxh3)?;
        net.params_mut().copy_from_slice(&self.params);
        net.buffers_mut().copy_from_slice(&self.buffers);
        if self.tracked.len() == net.tracked().len() {
            net.tracked_mut().copy_from_slice(&self.tracked);
        }
        let buffers: Vec<(&str, &[T])> = self
            .optimizer_state
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        opt.set_state(self.optimizer_steps, &buffers)?;
        *rng = self.rng.clone();
        Ok(())
    }
}
