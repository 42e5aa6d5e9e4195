//! The stopping rules besides the epoch limit: divergence (a non-finite loss or weight, the rule
//! of [`super::Divergence`]) and the gradient tolerance's full-gradient norm ‖∇L(w)‖.

use super::*;
use crate::data::{BatchBuf, Dataset};
use crate::error::{Error, Result};
use crate::loss::Penalty;
use crate::network::{Network, Workspace};
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
        net.loss_and_gradient(
            ws,
            m,
            batch.targets(),
            &cfg.objective(n),
            None,
            (grads, beta),
        );
    }
    penalty.add_gradient(net.params(), grads);
    grads.iter().map(|g| g.f64() * g.f64()).sum::<f64>().sqrt()
}
