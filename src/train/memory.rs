//! The size checks made before training reserves anything.

use super::*;
use crate::error::Result;
use crate::network::Network;
use crate::optim::OptimizerConfig;
use crate::tensor::Scalar;

/// Fails before anything is reserved if training would need more memory than is available:
/// per thread a workspace (activations, deltas, dropout masks and scratch for a batch of `bs`)
/// and a gradient; the optimiser's buffers; early stopping's copy of the weights.
pub(super) fn check_memory<T: Scalar>(
    net: &Network<T>,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    bs: usize,
) -> Result<()> {
    let shaped = net.layers().iter().any(|l| {
        !matches!(
            l,
            crate::Layer::Dense(_) | crate::Layer::Activation(_) | crate::Layer::Dropout(_)
        )
    });
    if shaped {
        return check_shaped_memory(net, optimizer, cfg, bs);
    }
    let dense: Vec<(usize, usize)> = net
        .layers()
        .iter()
        .filter_map(|l| match l {
            crate::Layer::Dense(d) => Some((d.inputs, d.outputs)),
            _ => None,
        })
        .collect();
    check_training_memory(
        &dense,
        optimizer.buffers(),
        bs,
        cfg.threads,
        std::mem::size_of::<T>(),
    )
}

/// The size check of training (see `check_memory`) for dense layers `(inputs, outputs)`, before
/// the network itself exists: the network's weights are counted too.
pub fn check_training_memory(
    dense: &[(usize, usize)],
    optimizer_buffers: usize,
    bs: usize,
    threads: usize,
    value_size: usize,
) -> Result<()> {
    let p = dense.iter().try_fold(0u128, |acc, &(i, o)| {
        (i as u128)
            .checked_mul(o as u128)
            .and_then(|w| w.checked_add(o as u128 + acc))
    });
    let widths: u128 = dense.iter().map(|&(i, o)| i as u128 + o as u128).sum();
    let threads = threads.max(1) as u128;
    let per_thread = (bs as u128)
        .checked_mul(widths)
        .and_then(|v| v.checked_mul(4))
        .and_then(|v| v.checked_add(p?));
    let values = per_thread
        .and_then(|v| v.checked_mul(threads))
        .and_then(|v| v.checked_add(p? * (optimizer_buffers as u128 + 2)));
    let bytes = values.and_then(|v| v.checked_mul(value_size as u128));
    let mut sizes: Vec<String> = dense.first().map(|d| d.0.to_string()).into_iter().collect();
    sizes.extend(dense.iter().map(|d| d.1.to_string()));
    crate::memory::check(
        format!(
            "training the network {} ({} parameters, batches of {bs}, {threads} thread(s))",
            sizes.join("-"),
            p.map_or("more than 2¹²⁸".into(), |p| p.to_string())
        ),
        bytes,
    )
}

/// [`check_memory`] for networks with image layers: per thread a workspace
/// ([`Network::workspace_len`]) and a gradient, plus the optimiser's buffers and early stopping's
/// copy of the weights.
fn check_shaped_memory<T: Scalar>(
    net: &Network<T>,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    bs: usize,
) -> Result<()> {
    let p = net.param_count() as u128;
    let values = net
        .workspace_len(bs)
        .and_then(|w| w.checked_add(p))
        .and_then(|v| v.checked_mul(cfg.threads.max(1) as u128))
        .and_then(|v| v.checked_add(p * (optimizer.buffers() as u128 + 2)))
        .and_then(|v| v.checked_mul(std::mem::size_of::<T>() as u128));
    let what = format!(
        "training a {}-layer network on {} inputs, batch {bs}",
        net.layers().len(),
        net.input_shape().batch()
    );
    crate::memory::check(what, values)
}
