//! The learning-rate range test (Smith 2017, "Cyclical learning rates"; the fastai `lr_find`):
//! the notes' "too big overshoots, too small crawls", measured on the network and data at hand.
//!
//! From the current weights, take up to `steps` mini-batch steps with the learning rate rising
//! exponentially from `start` to `end`,
//!
//! ```text
//! ηᵢ = start · (end / start)^(i / (steps − 1)),      i = 0, 1, …, steps − 1
//! ```
//!
//! recording each batch's loss ℓᵢ (data loss plus the L2 penalty: the objective being minimised)
//! and its exponential moving average with bias correction (as Adam corrects its moments),
//!
//! ```text
//! aᵢ = β·aᵢ₋₁ + (1 − β)·ℓᵢ,  a₋₁ = 0,      sᵢ = aᵢ / (1 − β^(i+1))
//! ```
//!
//! and stop as soon as sᵢ > `blowup` × minⱼ≤ᵢ sⱼ (or a loss is not finite): past that point the
//! steps overshoot. The steps are the training loop's own ([`crate::train::Stepper::step_at`]:
//! batch order, dropout masks, threads and optimiser as `train` has them); only the learning
//! rate is the ramp's, and the stopping rule this one. Afterwards the weights are put back exactly as they were; the test uses its
//! own optimiser state (a fresh one of the given configuration) and its own copy of the random
//! generator, so the caller's optimiser, generator and weights are all untouched, and training
//! with the suggested rate afterwards is the same run as training with that rate typed in.
//!
//! ## The suggestion
//! `suggestion = η at the minimum of the smoothed loss / 10` (fastai's "minimum/10" rule).
//! The minimum of the curve lies where the steps already overshoot (on a quadratic it lies
//! *past* the stability limit, because a divergence takes some steps to show in the loss); a
//! tenth of it is back on the descending part. On a quadratic with largest curvature L
//! (gradient descent is stable exactly for η < 2/L) the suggestion lands below 2/L and within a
//! factor of 5 of it — measured 2/(2.9L) to 2/(2.5L) for L from 1 to 900
//! (`tests/suite/training/lr_find.rs`: full-batch linear regression with a known Hessian, f32
//! weights).
//! The steepest point of the curve (most negative ds/d log η) is reported as well, for
//! comparison; it is noisier, so it is not the suggestion.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::network::Network;
use crate::optim::{OptimizerConfig, Schedule};
use crate::rng::Rng;
use crate::tensor::Scalar;
use crate::train::{Stepper, TrainConfig, check_run};

/// Settings of the range test.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrFindConfig {
    /// First learning rate of the ramp.
    pub start: f64,
    /// Last learning rate of the ramp (reached only if the loss never blows up).
    pub end: f64,
    /// Steps of the ramp (mini-batches; the data is reshuffled each time it runs out).
    pub steps: usize,
    /// β of the moving average.
    pub smoothing: f64,
    /// Stop when the smoothed loss exceeds this multiple of its minimum so far.
    pub blowup: f64,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        LrFindConfig {
            start: 1e-7,
            end: 10.0,
            steps: 200,
            smoothing: 0.9,
            blowup: 4.0,
        }
    }
}

impl LrFindConfig {
    /// Checks the ranges, naming the bad setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.start.is_finite() && self.start > 0.0) {
            return Err(Error::setting(
                "start-lr",
                self.start,
                "must be a number > 0",
            ));
        }
        if !(self.end.is_finite() && self.end > self.start) {
            return Err(Error::setting(
                "end-lr",
                self.end,
                format!("must be a finite number > start-lr ({})", self.start),
            ));
        }
        if self.steps < 10 {
            return Err(Error::setting(
                "steps",
                self.steps,
                "the ramp needs at least 10 steps",
            ));
        }
        if self.steps > 100_000 {
            return Err(Error::setting("steps", self.steps, "at most 100000"));
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(Error::setting(
                "smoothing",
                self.smoothing,
                "must be in [0, 1)",
            ));
        }
        if !(self.blowup.is_finite() && self.blowup > 1.0) {
            return Err(Error::setting(
                "blowup",
                self.blowup,
                "must be a number > 1",
            ));
        }
        Ok(())
    }
}

/// One step of the ramp.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LrPoint {
    pub lr: f64,
    /// The batch's objective (data loss + L2 penalty) before the step.
    pub loss: f64,
    /// The bias-corrected moving average of `loss`.
    pub smoothed: f64,
}

/// The outcome of [`lr_find`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LrFindResult {
    pub curve: Vec<LrPoint>,
    /// The suggested learning rate: `min_lr / 10`.
    pub suggestion: f64,
    /// The rule that chose `suggestion`.
    pub rule: String,
    /// η at the minimum of the smoothed loss.
    pub min_lr: f64,
    /// η where the smoothed loss falls fastest against log η (for comparison).
    pub steepest_lr: Option<f64>,
    /// Whether the test stopped because the loss blew up (false: the ramp reached `end`).
    pub diverged: bool,
}

/// The rule, as printed and recorded.
pub const RULE: &str = "minimum of the smoothed loss / 10";

/// Runs the range test on `net` with `data` (see the module documentation). Uses the loss,
/// batch size, L2 penalty, shuffling and thread count of `cfg`; the optimiser of `optimizer`
/// (its own learning rate is ignored: the ramp sets it). The weights are restored afterwards,
/// also when an error is returned.
pub fn lr_find<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    find: &LrFindConfig,
    rng: &Rng,
) -> Result<LrFindResult> {
    find.validate()?;
    check_run(
        net,
        data,
        optimizer,
        cfg,
        "run the learning-rate range test on",
    )?;
    let saved = net.params().to_vec();
    let result = ramp(net, data, optimizer, cfg, find, &mut rng.clone());
    net.params_mut().copy_from_slice(&saved);
    result
}

/// The ramp: the training loop's own steps ([`Stepper::step_at`]: batch order, dropout masks,
/// threads and the optimiser as `train` has them), each at the next rate of the exponential
/// ramp, recording the objective before the step until the smoothed loss blows up or is not
/// finite.
fn ramp<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset,
    optimizer: &OptimizerConfig,
    cfg: &TrainConfig,
    find: &LrFindConfig,
    rng: &mut Rng,
) -> Result<LrFindResult> {
    // The range test's own rule ends it (a blow-up of the smoothed loss), not the divergence
    // rule of training; a loss that is not finite ends both.
    let cfg = TrainConfig {
        divergence: None,
        ..cfg.clone()
    };
    let mut stepper = Stepper::new(net, data, optimizer, &Schedule::default(), &cfg)?;
    let penalty = net.penalty(cfg.l2);
    let ratio = (find.end / find.start).ln();
    let beta = find.smoothing;
    let (mut avg, mut best) = (0.0f64, f64::INFINITY);
    let mut curve = Vec::with_capacity(find.steps);
    let mut diverged = false;
    for i in 0..find.steps {
        let lr = find.start * (ratio * i as f64 / (find.steps - 1) as f64).exp();
        let penalty_before = penalty.value(net.params());
        let l = match stepper.step_at(net, data, rng, lr) {
            Ok(data_loss) => data_loss + penalty_before,
            Err(Error::NotFinite { .. } | Error::Diverged { .. }) => {
                diverged = true;
                break;
            }
            Err(e) => return Err(e),
        };
        avg = beta * avg + (1.0 - beta) * l;
        let smoothed = avg / (1.0 - beta.powi(i as i32 + 1));
        curve.push(LrPoint {
            lr,
            loss: l,
            smoothed,
        });
        if smoothed > find.blowup * best {
            diverged = true;
            break;
        }
        best = best.min(smoothed);
    }
    suggest(curve, diverged, find)
}

/// The suggestion read off the ramp's `curve`: a tenth of the rate at the smoothed loss's
/// minimum, with the steepest descent before it; an error if the curve has fewer than two
/// points or never fell.
fn suggest(curve: Vec<LrPoint>, diverged: bool, find: &LrFindConfig) -> Result<LrFindResult> {
    if curve.len() < 2 {
        return Err(Error::setting(
            "start-lr",
            find.start,
            "the loss was not finite from the first steps of the range test; \
             check the data (or start the ramp lower)",
        ));
    }
    let (imin, _) = curve
        .iter()
        .enumerate()
        .fold((0, f64::INFINITY), |(bi, bv), (i, p)| {
            if p.smoothed < bv {
                (i, p.smoothed)
            } else {
                (bi, bv)
            }
        });
    if imin == 0 {
        // No rate of the ramp lowered the loss: the minimum "/ 10" would be a guess.
        return Err(Error::setting(
            "start-lr",
            find.start,
            format!(
                "the smoothed loss was lowest at the first step of the range test and rose from \
                 there ({} steps): no rate from {:e} up lowered it; start the ramp lower \
                 (downhill lr-find --start-lr) or check the data",
                curve.len(),
                find.start
            ),
        ));
    }
    let min_lr = curve[imin].lr;
    // Steepest descent up to the minimum: the most negative slope against log η.
    let steepest_lr = curve[..=imin]
        .windows(2)
        .map(|w| {
            (
                w[1].lr,
                (w[1].smoothed - w[0].smoothed) / (w[1].lr / w[0].lr).ln(),
            )
        })
        .filter(|(_, s)| *s < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(lr, _)| lr);
    Ok(LrFindResult {
        suggestion: min_lr / 10.0,
        rule: RULE.to_string(),
        min_lr,
        steepest_lr,
        diverged,
        curve,
    })
}

/// Draws the curve: raw and smoothed loss against the learning rate on a log axis, the
/// suggestion marked. `.svg` or `.png`.
pub fn picture(path: &std::path::Path, r: &LrFindResult) -> Result<()> {
    use crate::plot::labelled_line;
    use plotters::prelude::*;
    let err = |e: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing failed: {e}")),
    };
    let lo = r.curve.first().map_or(1e-7, |p| p.lr);
    let hi = r.curve.last().map_or(1.0, |p| p.lr).max(lo * 10.0);
    // The y range: from the lowest smoothed loss to a little above the first one, so that the
    // blow-up at the end does not flatten the interesting part.
    let ymin = r
        .curve
        .iter()
        .map(|p| p.smoothed)
        .fold(f64::INFINITY, f64::min);
    let ystart = r.curve.first().map_or(1.0, |p| p.smoothed);
    let ymax = r
        .curve
        .iter()
        .map(|p| p.smoothed)
        .fold(ystart, f64::max)
        .min(ystart.max(ymin) * 1.5 + 1e-12);
    let pad = ((ymax - ymin) * 0.08).max(1e-9);
    let (y0, y1) = (ymin - pad, ymax + pad);
    let clip = |v: f64| v.clamp(y0, y1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 460)).into_drawing_area();
        let draw = || -> std::result::Result<(), String> {
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "Learning-rate range test: suggestion η = {:.3e}",
                        r.suggestion
                    ),
                    ("sans-serif", 20),
                )
                .margin(14)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d((lo..hi).log_scale(), y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("learning rate η (log scale)")
                .y_desc("loss")
                .x_label_formatter(&|x| format!("{x:.0e}"))
                .y_label_formatter(&|y| format!("{y:.3}"))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| e.to_string())?;
            // The raw and the smoothed loss: one line each, the same blue, the raw one faint.
            let blue = RGBColor(31, 119, 180);
            // Each line: the value drawn, its style, its legend.
            type Line = (fn(&LrPoint) -> f64, ShapeStyle, &'static str);
            let lines: [Line; 2] = [
                (|p| p.loss, blue.mix(0.35).stroke_width(1), "batch loss"),
                (|p| p.smoothed, blue.stroke_width(2), "smoothed"),
            ];
            for (value, style, label) in lines {
                let points = r.curve.iter().map(|p| (p.lr, clip(value(p))));
                labelled_line(&mut chart, points, (style, label.into()), (style, 20))?;
            }
            let mark = RGBColor(214, 39, 40);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(r.suggestion, y0), (r.suggestion, y1)],
                    mark.stroke_width(2),
                )))
                .map_err(|e| e.to_string())?
                .label(format!("suggestion ({RULE})"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], mark.stroke_width(2))
                });
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        };
        draw().map_err(err)?;
    }
    crate::plot::save_picture(path, &svg)
}
