//! The [`Observer`]: who watches training (the CLI, a progress bar, a user) without the loop
//! knowing who.

use super::*;

/// Watches training without the loop knowing who watches (the CLI, a progress bar, a user).
pub trait Observer {
    /// After each epoch.
    fn on_epoch(&mut self, _metrics: &EpochMetrics) {}
    /// Before the first step: the maximum number of epochs and the steps per epoch.
    fn on_start(&mut self, _epochs: usize, _steps_per_epoch: usize) {}
    /// After each optimiser step: 0-based step within the epoch, steps per epoch, running mean loss.
    fn on_step(&mut self, _epoch: usize, _step: usize, _steps: usize, _running_loss: f64) {}
    /// Whether [`Observer::on_weights`] should be called (it costs a copy of the weights).
    fn wants_weights(&self) -> bool {
        false
    }
    /// The weights before training (epoch 0, unless resuming) and after each epoch.
    fn on_weights(&mut self, _epoch: usize, _weights: &[f64]) {}
    /// Asked after each step: `true` ends training there, with a checkpoint of the exact state
    /// and [`StopReason::Interrupted`] (used for Ctrl-C).
    fn should_stop(&mut self) -> bool {
        false
    }
    /// Before training: the data report (what a CSV's columns became), one line each.
    fn on_data(&mut self, _report: &[String]) {}
    /// Called with `true` before, and `false` after, work that holds no state worth saving and
    /// consults no [`Observer::should_stop`]: the `--lr auto` range test before training and the
    /// test of a learning rate after divergence. In between, a stop request may end the process
    /// at once (the CLI exits with 130 on Ctrl-C there), after removing the folders in `leave`
    /// (what the run made that holds nothing yet).
    fn stop_at_once(&mut self, _on: bool, _leave: &[std::path::PathBuf]) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}

impl<F: FnMut(&EpochMetrics)> Observer for F {
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self(m)
    }
}
