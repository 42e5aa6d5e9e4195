//! The size checks made before training reserves anything.

use super::*;
use crate::error::Result;
use crate::network::Network;
use crate::optim::OptimizerConfig;
use crate::tensor::Scalar;

/// Fails before anything is reserved if training would need more memory than is available
/// (see [`training_values`]).
pub(super) fn check_memory<T: Scalar>(
    net: &Network<T>,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    bs: usize,
) -> Result<()> {
    let what = format!(
        "training a {}-layer network on {} inputs ({} parameters, batches of {bs}, {} thread(s))",
        net.layers().len(),
        net.input_shape().batch(),
        net.param_count(),
        cfg.threads.max(1)
    );
    let bytes = training_values(net, optimizer.buffers(), cfg.threads, bs)
        .and_then(|v| v.checked_mul(std::mem::size_of::<T>() as u128));
    crate::memory::check(what, bytes)
}

/// Values training `net` on batches of `bs` with `threads` threads holds at its peak, counted as
/// `step::Buffers` allocates them: the step's workspace ([`Network::workspace_len`]: every
/// layer's activation and its gradient, dropout masks, pooling indices, BatchNorm statistics,
/// scratch) and gradient; when the batch is split between threads (see `parallel`), each
/// thread's own workspace for its share and its gradient; the optimiser's `optimizer_buffers`
/// buffers, and early stopping's copy of the weights. The evaluation afterwards (256 rows at a
/// time, [`Network::inference_len`]) is counted if it needs more.
pub fn training_values<T: Scalar>(
    net: &Network<T>,
    optimizer_buffers: usize,
    threads: usize,
    bs: usize,
) -> Option<u128> {
    let p = net.param_count() as u128;
    let threads = threads.max(1);
    let mut values = net.workspace_len(bs)?.checked_add(p)?;
    let pass_rows = crate::parallel::DataParallel::<T>::pass_rows(net, threads);
    let split =
        cfg!(feature = "threads") && (threads > 1 || pass_rows < bs) && !net.has_batchnorm();
    if split {
        let rows = bs.div_ceil(threads).min(pass_rows).max(1);
        let shard = net.workspace_len(rows)?.checked_add(p)?;
        values = values.checked_add(shard.checked_mul(threads as u128)?)?;
    }
    values = values.checked_add(p.checked_mul(optimizer_buffers as u128 + 2)?)?;
    let eval = net.inference_len(256)?.checked_add(p.checked_mul(2)?)?;
    Some(values.max(eval))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netspec::from_settings;
    use crate::network::Workspace;

    fn net(spec: &str, shape: &str) -> Network<f32> {
        let features = crate::netspec::parse_image_shape(shape).unwrap().len();
        let (input, layers) = from_settings(Some(spec), None, Some(shape), features, 10, None)
            .unwrap()
            .unwrap();
        Network::<f32>::with_zero_params_shaped(input, layers).unwrap()
    }

    /// The estimate counts what the workspaces really hold, for specs heavy in activations,
    /// convolutions, pooling, BatchNorm and dropout.
    #[test]
    fn workspace_estimates_match_the_allocations() {
        let relus = format!("{}flatten, dense", "relu, ".repeat(50));
        for (spec, shape) in [
            (relus.as_str(), "1x28x28"),
            (
                "conv 6 5 pad 2, relu, maxpool 2, conv 16 5, relu, maxpool 2, flatten, dense 120, relu, dropout 0.5, dense",
                "1x28x28",
            ),
            (
                "conv 8 3, batchnorm, relu, avgpool 2, flatten, batchnorm1d, dense",
                "3x16x16",
            ),
            ("flatten, dense 64, tanh, dropout 0.2, dense", "1x8x8"),
        ] {
            let n = net(spec, shape);
            for bs in [1, 7, 64] {
                let ws = Workspace::new(&n, bs).allocated_len() as f64;
                let est = n.workspace_len(bs).unwrap() as f64;
                assert!(
                    (est / ws - 1.0).abs() <= 0.25,
                    "{spec}, batch {bs}: estimate {est}, allocated {ws}"
                );
                let inf = Workspace::inference(&n, bs).allocated_len() as f64;
                let est = n.inference_len(bs).unwrap() as f64;
                assert!(
                    (est / inf - 1.0).abs() <= 0.25,
                    "{spec} inference, batch {bs}: {est} vs {inf}"
                );
            }
        }
    }

    /// Training with two threads holds the step's workspace and each thread's for its half: about
    /// twice one workspace, which the estimate now counts (it counted one).
    #[test]
    fn split_batches_count_every_threads_workspace() {
        let n = net(&format!("{}flatten, dense", "relu, ".repeat(20)), "1x28x28");
        let one = n.workspace_len(64).unwrap();
        let est = training_values(&n, 0, 2, 64).unwrap();
        if cfg!(feature = "threads") {
            let real =
                Workspace::new(&n, 64).allocated_len() + 2 * Workspace::new(&n, 32).allocated_len();
            assert!(
                (est as f64 / real as f64 - 1.0).abs() <= 0.25,
                "{est} vs {real}"
            );
            assert!(est as f64 > 1.8 * one as f64);
        }
        // Evaluation 256 rows at a time needs more than a batch of 8's training.
        assert!(training_values(&n, 0, 1, 8).unwrap() >= n.inference_len(256).unwrap());
    }
}
