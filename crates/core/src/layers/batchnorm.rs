//! Batch normalisation (PyTorch's `nn.BatchNorm1d` over `[N, C]` or `[N, C, L]` and
//! `nn.BatchNorm2d` over `[N, C, H, W]`: affine, eps = 1e-5, momentum = 0.1), a whole mini-batch
//! at a time. Both are one kernel over a batch stored `[N, C, S]` row-major, S = 1 (1d on
//! `[N, C]`), L or H·W; every statistic is per channel c over the M = N·S values x[n, c, s].
//!
//! Training mode normalises with the batch's own statistics (the biased variance) and updates the
//! running estimates with the unbiased one:
//!
//! ```text
//! μ_c = (1/M) Σ x,   σ²_c = (1/M) Σ (x − μ_c)²,   x̂ = (x − μ_c) / √(σ²_c + ε)
//! y = γ_c · x̂ + β_c
//! running_mean ← (1 − m)·running_mean + m·μ_c
//! running_var  ← (1 − m)·running_var  + m·σ²_c · M/(M − 1)
//! num_batches_tracked ← num_batches_tracked + 1
//! ```
//!
//! and its backward pass goes through μ and σ² (both depend on every x of the channel):
//!
//! ```text
//! ∂L/∂β_c = Σ δy,   ∂L/∂γ_c = Σ δy·x̂
//! ∂L/∂x   = (γ_c / √(σ²_c + ε)) · (δy − (1/M)·∂L/∂β_c − x̂·(1/M)·∂L/∂γ_c)
//! ```
//!
//! Eval mode uses the running statistics, so each channel is an affine map of its input:
//!
//! ```text
//! y = γ_c · (x − running_mean_c) / √(running_var_c + ε) + β_c
//! ∂L/∂x = δy · γ_c / √(running_var_c + ε),   ∂L/∂γ_c = Σ δy·x̂,   ∂L/∂β_c = Σ δy
//! ```
//!
//! The per-channel sums of the statistics run in `f64` whatever `T` (as PyTorch's CPU kernel
//! accumulates in double). Training needs M > 1, as in PyTorch. The parameter gradients are
//! written or accumulated (`Beta`), ∂L/∂x written, as for the dense layer.
//!
//! ```
//! use downhill_core::layers::{BatchNorm, BnForward, RunningStats};
//! let bn = BatchNorm::new(1);
//! let (mut rm, mut rv, mut tracked) = ([0.0f64], [1.0f64], 0i64);
//! let (mut y, mut saved) = ([0.0; 2], [0.0; 2]);
//! let pass = BnForward { n: 2, spatial: 1, x: &[1.0, 3.0], gamma: &[1.0], beta: &[0.0], y: &mut y };
//! let running = RunningStats { mean: &mut rm, var: &mut rv, num_batches_tracked: &mut tracked };
//! bn.forward_train(pass, running, &mut saved).unwrap();
//! assert!((y[0] + 1.0).abs() < 1e-5 && (y[1] - 1.0).abs() < 1e-5);
//! assert_eq!((rm[0], tracked), (0.2, 1)); // 0.9·0 + 0.1·2
//! assert!((rv[0] - 1.1).abs() < 1e-12); // 0.9·1 + 0.1·(1 · 2/1)
//! ```

use crate::error::{Error, Result};
use std::fmt;

use crate::layers::image::{ImageShape, Lazy, batch_len, check_len, sum_and_centered_dot, sum_f64};
use crate::tensor::{Beta, Scalar};

/// Batch normalisation over `channels` features (γ, β, running mean and variance each have
/// `channels` entries, held by the caller).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchNorm {
    pub channels: usize,
    /// Added to the variance, 1e-5 by default.
    pub eps: f64,
    /// Weight of the new batch in the running statistics, 0.1 by default.
    pub momentum: f64,
}

/// The tensors of one forward pass ([`BatchNorm::forward_train`], [`BatchNorm::forward_eval`]):
/// `n` examples `x` of `channels × spatial` values (`[N, C, S]` row-major), the affine weight
/// `gamma` (γ) and bias `beta` (β), one per channel, and the output `y` that the pass overwrites.
#[derive(Debug)]
pub struct BnForward<'a, T> {
    pub n: usize,
    pub spatial: usize,
    pub x: &'a [T],
    pub gamma: &'a [T],
    pub beta: &'a [T],
    pub y: &'a mut [T],
}

/// PyTorch's running-statistics buffers (`running_mean`, `running_var`, one per channel, and
/// `num_batches_tracked`), which each training forward pass updates.
#[derive(Debug)]
pub struct RunningStats<'a, T> {
    pub mean: &'a mut [T],
    pub var: &'a mut [T],
    pub num_batches_tracked: &'a mut i64,
}

/// The statistics a forward pass normalised with, as [`BatchNorm::backward`] is given them.
#[derive(Clone, Copy, Debug)]
pub enum BnStats<'a, T> {
    /// Training mode: the `saved` buffer of [`BatchNorm::forward_train`] (the batch's mean and
    /// 1/√(σ² + ε) per channel); the gradient flows through them.
    Saved(&'a [T]),
    /// Eval mode: the running mean and variance, constants.
    Running { mean: &'a [T], var: &'a [T] },
}

/// The per-channel statistics one backward pass normalised with.
enum Stats<'a, T> {
    /// The batch's mean and 1/√(σ² + ε), saved by the training forward: gradients flow through.
    Batch { mean: &'a [T], istd: &'a [T] },
    /// The running mean and variance: constants.
    Running {
        mean: &'a [T],
        var: &'a [T],
        eps: f64,
    },
}

impl<T: Scalar> Stats<'_, T> {
    /// (mean, 1/√(var + ε)) of channel `c`.
    fn get(&self, c: usize) -> (f64, f64) {
        match self {
            Stats::Batch { mean, istd } => (mean[c].f64(), istd[c].f64()),
            Stats::Running { mean, var, eps } => (mean[c].f64(), 1.0 / (var[c].f64() + eps).sqrt()),
        }
    }
}

impl BatchNorm {
    /// PyTorch's defaults: eps 1e-5, momentum 0.1.
    pub fn new(channels: usize) -> BatchNorm {
        BatchNorm {
            channels,
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// Length of the buffer [`BatchNorm::forward_train`] fills for the backward pass: the batch
    /// mean and 1/√(σ² + ε) of each channel, `2·C`.
    pub fn saved_len(&self) -> usize {
        2 * self.channels
    }

    /// Checks the hyperparameters (for a value built field by field or read from a file).
    pub fn validate(&self) -> Result<()> {
        if self.channels == 0 {
            return Err(Error::setting(
                "batchnorm channels",
                0,
                "must be at least 1",
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::setting(
                "batchnorm eps",
                self.eps,
                "must be positive",
            ));
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::setting(
                "batchnorm momentum",
                self.momentum,
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }

    /// Checks `[N, C, S]` buffers and per-channel buffers (`saved` is `2·C`), naming the shapes.
    fn check(
        &self,
        n: usize,
        spatial: usize,
        batch: &[(&str, usize)],
        per_channel: &[(&str, usize)],
    ) -> Result<()> {
        self.validate()?;
        let layer =
            Lazy(|f: &mut fmt::Formatter<'_>| write!(f, "BatchNorm({} channels)", self.channels));
        let shape = Lazy(|f: &mut fmt::Formatter<'_>| {
            if spatial == 1 {
                write!(f, "[{n}, {}]", self.channels)
            } else {
                write!(f, "[{n}, {}, {spatial}]", self.channels)
            }
        });
        let want = batch_len(&layer, n, ImageShape::new(self.channels, spatial, 1))?;
        for &(what, len) in batch {
            check_len(&layer, what, &shape, want, len)?;
        }
        for &(what, len) in per_channel {
            let want = if what == "saved statistics" {
                self.saved_len()
            } else {
                self.channels
            };
            check_len(&layer, what, &shape, want, len)?;
        }
        Ok(())
    }

    /// The checks both forward passes share: the input `x` and output `y` are batches; γ, β,
    /// the running mean and variance (`[mean, var]`: their lengths) and, in training, the saved
    /// statistics are per channel, as in [`BatchNorm::check`].
    fn check_forward<T>(
        &self,
        pass: &BnForward<'_, T>,
        [mean, var]: [usize; 2],
        saved: Option<usize>,
    ) -> Result<()> {
        let params = [
            ("weight γ", pass.gamma.len()),
            ("bias β", pass.beta.len()),
            ("running_mean", mean),
            ("running_var", var),
            ("saved statistics", saved.unwrap_or(usize::MAX)),
        ];
        let batch = [("input", pass.x.len()), ("output", pass.y.len())];
        self.check(pass.n, pass.spatial, &batch, &params)
    }

    /// The checks both backward passes share: the input, ∂L/∂y and (if asked) ∂L/∂x are
    /// batches, `per_channel` as in [`BatchNorm::check`].
    fn check_backward<T>(
        &self,
        n: usize,
        spatial: usize,
        x: &[T],
        dy: &[T],
        dx: Option<&[T]>,
        per_channel: &[(&str, usize)],
    ) -> Result<()> {
        let dx_len = dx.map_or(usize::MAX, |d| d.len());
        self.check(
            n,
            spatial,
            &[
                ("input", x.len()),
                ("output gradient", dy.len()),
                ("input gradient", dx_len),
            ],
            per_channel,
        )
    }

    /// The `n` rows (of `spatial` values) of channel `c` in a `[N, C, S]` buffer.
    fn rows<'a, T>(
        &self,
        n: usize,
        spatial: usize,
        c: usize,
        x: &'a [T],
    ) -> impl Iterator<Item = &'a [T]> {
        let cs = self.channels * spatial;
        (0..n).map(move |i| &x[i * cs + c * spatial..][..spatial])
    }

    /// Training-mode forward for `n` examples of `channels × spatial` values: normalises with
    /// the batch statistics, updates the `running` statistics and `num_batches_tracked`, and
    /// saves each channel's mean and 1/√(σ² + ε) in `saved` (length [`BatchNorm::saved_len`]).
    pub fn forward_train<T: Scalar>(
        &self,
        pass: BnForward<'_, T>,
        running: RunningStats<'_, T>,
        saved: &mut [T],
    ) -> Result<()> {
        let lens = [running.mean.len(), running.var.len()];
        self.check_forward(&pass, lens, Some(saved.len()))?;
        let (n, spatial, x) = (pass.n, pass.spatial, pass.x);
        let m = n * spatial;
        if m < 2 {
            return Err(Error::shape(
                format!("BatchNorm({} channels) in training mode", self.channels),
                "more than 1 value per channel (batch × spatial size)",
                format!("{n} × {spatial}"),
            ));
        }
        let (mean_s, istd_s) = saved.split_at_mut(self.channels);
        let mom = self.momentum;
        let (rm, rv) = (running.mean, running.var);
        for c in 0..self.channels {
            let sum: f64 = self.rows(n, spatial, c, x).map(|r| sum_f64(r, |v| v)).sum();
            let mean = sum / m as f64;
            let ss: f64 = self
                .rows(n, spatial, c, x)
                .map(|r| sum_f64(r, |v| (v - mean) * (v - mean)))
                .sum();
            let istd = 1.0 / (ss / m as f64 + self.eps).sqrt();
            mean_s[c] = T::c(mean);
            istd_s[c] = T::c(istd);
            rm[c] = T::c((1.0 - mom) * rm[c].f64() + mom * mean);
            rv[c] = T::c((1.0 - mom) * rv[c].f64() + mom * ss / (m - 1) as f64);
        }
        let tracked = running.num_batches_tracked;
        *tracked = tracked.saturating_add(1);
        let stats = Stats::Batch {
            mean: mean_s,
            istd: istd_s,
        };
        self.normalize(pass, &stats);
        Ok(())
    }

    /// Eval-mode forward: normalises with the running statistics `mean` and `var` (which stay
    /// unchanged).
    pub fn forward_eval<T: Scalar>(
        &self,
        pass: BnForward<'_, T>,
        mean: &[T],
        var: &[T],
    ) -> Result<()> {
        self.check_forward(&pass, [mean.len(), var.len()], None)?;
        let stats = Stats::Running {
            mean,
            var,
            eps: self.eps,
        };
        self.normalize(pass, &stats);
        Ok(())
    }

    /// `y = γ·(x − mean)·istd + β = x·scale + shift`, channel by channel.
    fn normalize<T: Scalar>(&self, pass: BnForward<'_, T>, stats: &Stats<'_, T>) {
        let (n, spatial, x, y) = (pass.n, pass.spatial, pass.x, pass.y);
        for c in 0..self.channels {
            let (mean, istd) = stats.get(c);
            let scale = pass.gamma[c].f64() * istd;
            let (scale, shift) = (T::c(scale), T::c(pass.beta[c].f64() - mean * scale));
            let cs = self.channels * spatial;
            for (i, xr) in self.rows(n, spatial, c, x).enumerate() {
                let yr = &mut y[i * cs + c * spatial..][..spatial];
                for (y, &x) in yr.iter_mut().zip(xr) {
                    *y = x * scale + shift;
                }
            }
        }
    }

    /// Backward pass, given the forward input `x`, the statistics the forward pass normalised
    /// with (`stats`: in training mode the `saved` buffer of [`BatchNorm::forward_train`], in
    /// eval mode the running statistics) and `dy` = ∂L/∂y: writes or accumulates ∂L/∂γ, ∂L/∂β
    /// and writes ∂L/∂x if asked — through the batch statistics in training mode, as
    /// δy·γ/√(var + ε) in eval mode, where the running statistics are constants.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        n: usize,
        spatial: usize,
        x: &[T],
        gamma: &[T],
        stats: BnStats<'_, T>,
        dy: &[T],
        dgamma: &mut [T],
        dbeta: &mut [T],
        dx: Option<&mut [T]>,
        beta: Beta,
    ) -> Result<()> {
        let (first, second) = match stats {
            BnStats::Saved(s) => (("saved statistics", s.len()), ("saved statistics", s.len())),
            BnStats::Running { mean, var } => {
                (("running_mean", mean.len()), ("running_var", var.len()))
            }
        };
        self.check_backward(
            n,
            spatial,
            x,
            dy,
            dx.as_deref(),
            &[
                ("weight γ", gamma.len()),
                first,
                second,
                ("weight gradient", dgamma.len()),
                ("bias gradient", dbeta.len()),
            ],
        )?;
        let stats = match stats {
            BnStats::Saved(saved) => {
                let (mean, istd) = saved.split_at(self.channels);
                Stats::Batch { mean, istd }
            }
            BnStats::Running { mean, var } => Stats::Running {
                mean,
                var,
                eps: self.eps,
            },
        };
        self.backward_with(n, spatial, x, gamma, &stats, dy, dgamma, dbeta, dx, beta);
        Ok(())
    }

    /// The backward formulas of the module doc; the terms through μ and σ² only for batch
    /// statistics.
    #[allow(clippy::too_many_arguments)]
    fn backward_with<T: Scalar>(
        &self,
        n: usize,
        spatial: usize,
        x: &[T],
        gamma: &[T],
        stats: &Stats<'_, T>,
        dy: &[T],
        dgamma: &mut [T],
        dbeta: &mut [T],
        mut dx: Option<&mut [T]>,
        beta: Beta,
    ) {
        let m = (n * spatial) as f64;
        let cs = self.channels * spatial;
        let through_stats = matches!(stats, Stats::Batch { .. });
        for c in 0..self.channels {
            let (mean, istd) = stats.get(c);
            let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
            for (xr, dr) in self
                .rows(n, spatial, c, x)
                .zip(self.rows(n, spatial, c, dy))
            {
                let (s, t) = sum_and_centered_dot(xr, dr, mean);
                sum_dy += s;
                sum_dy_xhat += t * istd;
            }
            match beta {
                Beta::Replace => {
                    dgamma[c] = T::c(sum_dy_xhat);
                    dbeta[c] = T::c(sum_dy);
                }
                Beta::Add => {
                    dgamma[c] += T::c(sum_dy_xhat);
                    dbeta[c] += T::c(sum_dy);
                }
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            let k = gamma[c].f64() * istd;
            // ∂L/∂x = k·δy − k·(Σδy)/M − k·x̂·(Σδy·x̂)/M with x̂ = (x − μ)·istd:
            // = a·δy + b·x + d, with a, b, d per channel.
            let (b, d) = if through_stats {
                let b = -k * istd * sum_dy_xhat / m;
                (b, -k * sum_dy / m - b * mean)
            } else {
                (0.0, 0.0)
            };
            let (a, b, d) = (T::c(k), T::c(b), T::c(d));
            for (i, (xr, dr)) in self
                .rows(n, spatial, c, x)
                .zip(self.rows(n, spatial, c, dy))
                .enumerate()
            {
                let out = &mut dx[i * cs + c * spatial..][..spatial];
                for ((o, &x), &dy) in out.iter_mut().zip(xr).zip(dr) {
                    *o = a * dy + b * x + d;
                }
            }
        }
    }
}
