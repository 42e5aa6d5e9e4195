//! Evaluation of a network on a data set, the fit checks of data against a network, and R²'s SST.

use super::*;
use crate::data::{BatchBuf, Dataset};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::network::{Network, Workspace};
use crate::tensor::Scalar;

/// Σ (y − ȳ)² over a regression data set's targets, each column about its own mean (the SST
/// of R²); `None` for class labels.
pub(super) fn total_sum_of_squares(data: &Dataset) -> Option<f64> {
    match data.targets() {
        crate::data::Targets::Values { data: y, cols } if *cols > 0 => {
            let n = y.len() / cols;
            let mut sst = 0.0;
            for j in 0..*cols {
                let mean = (0..n).map(|i| y[i * cols + j] as f64).sum::<f64>() / n.max(1) as f64;
                sst += (0..n)
                    .map(|i| (y[i * cols + j] as f64 - mean).powi(2))
                    .sum::<f64>();
            }
            Some(sst)
        }
        _ => None,
    }
}

/// Mean loss and accuracy of `net` on `data`, in evaluation mode (no dropout), 256 rows at a time.
pub fn evaluate<T: Scalar>(net: &Network<T>, data: &Dataset, loss: Loss) -> Result<Evaluation> {
    check_fit(net, data, loss, "data")?;
    let chunk = data.len().clamp(1, 256);
    let mut ws = Workspace::inference(net, chunk);
    let mut batch = BatchBuf::new(data, chunk);
    Ok(evaluate_with(net, data, loss, &mut ws, &mut batch))
}

pub(super) fn evaluate_with<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    loss: Loss,
    ws: &mut Workspace<T>,
    batch: &mut BatchBuf<T>,
) -> Evaluation {
    let k = net.outputs();
    let (mut total, mut correct, mut has_acc) = (0.0, 0, false);
    let mut idx: Vec<usize> = Vec::with_capacity(ws.max_batch());
    for start in (0..data.len()).step_by(ws.max_batch()) {
        idx.clear();
        idx.extend(start..(start + ws.max_batch()).min(data.len()));
        let m = idx.len();
        data.gather(&idx, ws.input_mut(m), batch);
        let out = net.forward(ws, m, None);
        total += loss.evaluate(out, m, k, batch.targets(), None).f64();
        if let Some(c) = loss.correct(out, m, k, batch.targets()) {
            correct += c;
            has_acc = true;
        }
    }
    let n = data.len().max(1) as f64;
    // A bce model's accuracy counts p > ½ against y > ½: meaningless for soft targets.
    let has_acc = has_acc && (loss != Loss::Bce || data.hard_targets());
    Evaluation {
        loss: total / n,
        accuracy: has_acc.then(|| correct as f64 / n),
    }
}

/// Checks that `data` fits `net` and `loss`: feature width, output width, kind of targets.
pub fn check_fit<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    loss: Loss,
    what: &str,
) -> Result<()> {
    if data.n_features() != net.inputs() {
        return Err(Error::shape(
            format!("{what}: features per example vs. network inputs"),
            net.inputs(),
            data.n_features(),
        ));
    }
    if data.n_outputs() != net.outputs() {
        return Err(Error::shape(
            format!("{what}: classes or target columns vs. network outputs"),
            net.outputs(),
            data.n_outputs(),
        ));
    }
    let classes = matches!(data.targets(), crate::data::Targets::Classes { .. });
    if classes != loss.takes_classes() {
        let want = if loss.takes_classes() {
            "class labels"
        } else {
            "numeric targets"
        };
        let got = if classes {
            "class labels"
        } else {
            "numeric targets"
        };
        return Err(Error::shape(
            format!("{what}: targets for the {} loss", loss.name()),
            want,
            got,
        ));
    }
    // Binary cross-entropy −[y ln p + (1 − y) ln(1 − p)] is a loss (≥ 0, least at p = y) only
    // for targets y in [0, 1]: a target of 3 would give a negative loss and a gradient that
    // pushes the logit to infinity.
    if loss == Loss::Bce
        && let crate::data::Targets::Values { data: y, cols } = data.targets()
        && let Some((k, &v)) = y
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
    {
        return Err(Error::shape(
            format!(
                "{what}: target {} of example {} (counting from 1) for the bce loss",
                k % cols + 1,
                k / cols + 1
            ),
            "a value in [0, 1] (a probability, or a 0/1 label)",
            v,
        ));
    }
    Ok(())
}
