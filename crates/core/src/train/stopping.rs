//! The stopping rules besides the epoch limit: divergence (a non-finite loss or weight, the rule
//! of [`super::Divergence`]) and the gradient tolerance's full-gradient norm ‖∇L(w)‖.

use super::*;
use crate::data::{BatchBuf, Dataset};
use crate::error::{Error, Result};
use crate::loss::Penalty;
use crate::network::{MiniBatch, Network, Workspace};
use crate::tensor::{Beta, Scalar};

/// [`Error::Diverged`] at 0-based (epoch, step), with the generic advice (the run layer replaces
/// it with a learning rate it has tested, where it can).
pub(super) fn diverged((epoch, step): (usize, usize), loss: f64, lr: f64, cause: String) -> Error {
    Error::Diverged {
        epoch: epoch + 1,
        step: step + 1,
        loss,
        lr,
        cause,
        advice: format!(
            "try a smaller one — at most {}, a tenth of it (untested) — or find one with `downhill lr-find`",
            crate::error::short(lr / 10.0)
        ),
    }
}

/// Divergence if any weight is not a finite number.
pub(super) fn check_weights<T: Scalar>(
    net: &Network<T>,
    at: (usize, usize),
    lr: f64,
) -> Result<()> {
    match net.params().iter().position(|v| !v.f64().is_finite()) {
        None => Ok(()),
        Some(i) => Err(diverged(
            at,
            f64::NAN,
            lr,
            format!(
                "weight {i} became {} after the update",
                net.params()[i].f64()
            ),
        )),
    }
}

/// ‖∇L(w)‖ for the whole training set: the batch gradients summed with weights |B|/n.
pub(super) fn full_gradient_norm<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    cfg: &TrainConfig,
    ws: &mut Workspace<T>,
    batch: &mut BatchBuf<T>,
    grads: &mut [T],
    penalty: &Penalty<T>,
) -> f64 {
    let n = data.len();
    let idx: Vec<usize> = (0..n).collect();
    for (i, chunk) in idx.chunks(ws.max_batch()).enumerate() {
        let m = chunk.len();
        data.gather(chunk, ws.input_mut(m), batch);
        let beta = if i == 0 { Beta::Replace } else { Beta::Add };
        let rows = MiniBatch {
            n: m,
            targets: batch.targets(),
            objective: cfg.objective(n),
            rng: None,
        };
        net.loss_and_gradient(ws, rows, (grads, beta));
    }
    penalty.add_gradient(net.params(), grads);
    grads.iter().map(|g| g.f64() * g.f64()).sum::<f64>().sqrt()
}

/// The divergence rule of [`Divergence`]: `reference` is set by the first mini-batch (its loss,
/// or the chance-level `floor` if higher), `above` counts the steps in a row above
/// `factor` × reference. Returns the cause when the rule trips.
pub(super) fn divergence_rule(
    d: Divergence,
    reference: &mut Option<f64>,
    above: &mut usize,
    mean: f64,
    floor: f64,
) -> Option<String> {
    let r = *reference.get_or_insert(mean.max(floor));
    *above = if mean > d.factor * r { *above + 1 } else { 0 };
    (*above >= d.steps.max(1)).then(|| {
        format!(
            "the mini-batch loss stayed above {} × its reference {r:.4} (the first mini-batch loss, or chance level if higher) for {} steps in a row, now {mean:.4e} (the rule of --divergence-factor)",
            d.factor, d.steps
        )
    })
}

/// The divergence rule's floor: the loss of the all-zero output (chance level: ln k for
/// cross-entropy, ln 2 for BCE, the mean square of the targets for MSE) on the first `bs`
/// examples.
pub(super) fn chance_level<T: Scalar>(
    data: &Dataset,
    loss: Loss,
    bs: usize,
    k: usize,
    ws: &mut Workspace<T>,
    batch: &mut BatchBuf<T>,
) -> f64 {
    let idx: Vec<usize> = (0..bs).collect();
    data.gather(&idx, ws.input_mut(bs), batch);
    let zeros = vec![T::zero(); bs * k];
    (loss.evaluate(&zeros, bs, k, batch.targets(), None).f64() / bs as f64).max(f64::MIN_POSITIVE)
}

/// Early stopping after 0-based `epoch` with the monitored `key`: keeps the best weights so far
/// in `best`, and when `patience` epochs have passed without a strictly lower key, restores
/// them into `net` and returns the reason to stop.
pub(super) fn early_stopping<T: Scalar>(
    best: &mut Option<(f64, usize, Vec<T>)>,
    key: f64,
    epoch: usize,
    patience: usize,
    net: &mut Network<T>,
) -> Option<StopReason> {
    match best {
        // Only a strictly lower key is an improvement (a NaN is never one; it has
        // stopped training above in any case).
        Some((loss, at, params)) if key.partial_cmp(loss) != Some(std::cmp::Ordering::Less) => {
            if epoch + 1 - *at >= patience {
                net.set_weights_and_buffers(params);
                return Some(StopReason::EarlyStopping { best_epoch: *at });
            }
        }
        Some((loss, at, params)) => {
            (*loss, *at) = (key, epoch + 1);
            params.clear();
            params.extend_from_slice(net.params());
            params.extend_from_slice(net.buffers());
        }
        None => *best = Some((key, epoch + 1, net.weights_and_buffers())),
    }
    None
}

/// A blow-up the network did not recover from: a mini-batch loss went above the factor × its
/// reference, and the last epoch's training loss is still no lower than 95 % of chance level
/// `floor` (a network killed by the blow-up: dead ReLUs, a constant output).
pub(super) fn never_recovered(
    cfg: &TrainConfig,
    history: &[EpochMetrics],
    (floor, reference): (f64, Option<f64>),
    steps: usize,
) -> Result<()> {
    if let (Some(d), Some(last)) = (cfg.divergence, history.last())
        && last.train_loss >= 0.95 * floor
    {
        return Err(diverged(
            (history.len() - 1, steps - 1),
            last.train_loss,
            last.lr,
            format!(
                "a mini-batch loss went above {} × its reference {:.4} and the network never recovered: the last epoch's training loss {:.4} is no lower than chance level {floor:.4} (the rule of --divergence-factor)",
                d.factor,
                reference.unwrap_or(floor),
                last.train_loss
            ),
        ));
    }
    Ok(())
}
