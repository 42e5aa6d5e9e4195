//! See the ball roll downhill: the engine's surfaces, descents and slices
//! ([`downhill_core::landscape`], re-exported here), drawn over their height maps ([`plot`]), and
//! the path a run kept in its folder ([`trajectory`]) drawn over the loss around a saved model
//! ([`model_picture`]).

pub mod plot;
pub mod trajectory;

pub use downhill_core::landscape::*;

use crate::data::Dataset;
use crate::error::{Error, Result};

/// Options of the picture of a trained model's landscape.
#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// Random directions: the slice spans [-span, span] along each (`None`: 1). Refused with a
    /// trajectory, whose slice is fitted to the training path.
    pub span: Option<f64>,
    pub points: usize,
    /// At most this many examples are evaluated per grid point.
    pub examples: usize,
    pub seed: u64,
    /// Use random directions even when the run kept a trajectory.
    pub random_directions: bool,
}

/// What [`model_picture`] drew.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelLandscape {
    pub slice: network::Slice,
    /// When the run kept snapshots: the path in its principal plane, and the loss at each snapshot.
    pub trajectory: Option<trajectory::Trajectory>,
    pub trajectory_loss: Option<Vec<f64>>,
}

/// `downhill landscape --model FILE --data SPEC`: the loss around a trained model (loaded from
/// `model_path`) on its evaluation data (the specification, for the title, and the data set
/// read from it by `run::eval_data`), on a 2-D slice of weight
/// space, drawn to `out`. If the model's run folder holds `trajectory.safetensors`
/// (`downhill train --snapshots`), the slice is the trajectory's principal plane and the path is
/// drawn over it; otherwise (or with `random_directions`) two random filter-normalised directions.
pub fn model_picture(
    model_path: &std::path::Path,
    model: &crate::io::Model,
    (spec, data): (&str, Dataset),
    opts: &ModelOptions,
    out: &std::path::Path,
) -> Result<ModelLandscape> {
    let data = if data.len() > opts.examples {
        data.subset(&(0..opts.examples).collect::<Vec<_>>())
    } else {
        data
    };
    let name = model_path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let snapshots = model_path.with_file_name(trajectory::FILE);
    let along_path = snapshots.exists() && !opts.random_directions;
    if let Some(span) = opts.span {
        network::check_span(span)?;
        if along_path {
            return Err(Error::setting(
                "span",
                span,
                format!(
                    "has no effect with the training path in {}: that slice is fitted to the \
                     path; add --random-directions for a slice of ±{span} along random directions",
                    snapshots.display()
                ),
            ));
        }
    }
    let result = if along_path {
        let snaps = trajectory::load(&snapshots, model.net.param_count())?;
        trajectory::check_belongs(
            &snapshots,
            &snaps,
            model.net.params(),
            model.meta.interrupted,
        )?;
        let snaps = trajectory::thin(snaps, trajectory::MAX_PATH_POINTS);
        let t = trajectory::principal_plane(&snaps, model.net.params())?;
        let range = |k: usize| {
            let (lo, hi) = t
                .coords
                .iter()
                .fold((0.0f64, 0.0f64), |(a, b), c| (a.min(c[k]), b.max(c[k])));
            let pad = 0.25 * (hi - lo).max(1e-3);
            [lo - pad, hi + pad]
        };
        let slice = network::slice_along(
            &model.net,
            model.meta.loss,
            &data,
            (&t.d1, &t.d2),
            range(0),
            range(1),
            opts.points,
        )?;
        let mut probe = model.net.clone();
        let mut losses = Vec::with_capacity(snaps.len());
        for s in &snaps {
            probe.params_mut().copy_from_slice(s);
            losses.push(crate::train::evaluate(&probe, &data, model.meta.loss)?.loss);
        }
        ModelLandscape {
            slice,
            trajectory: Some(t),
            trajectory_loss: Some(losses),
        }
    } else {
        let slice = network::slice(
            &model.net,
            model.meta.loss,
            &data,
            opts.span.unwrap_or(1.0),
            opts.points,
            opts.seed,
        )?;
        ModelLandscape {
            slice,
            trajectory: None,
            trajectory_loss: None,
        }
    };
    let title = match &result.trajectory {
        Some(_) => format!(
            "Training path of {name} on {spec} ({} examples), log₁₀ loss",
            data.len()
        ),
        None => format!(
            "Loss of {name} on {spec} ({} examples), log₁₀ colours",
            data.len()
        ),
    };
    let path = result
        .trajectory
        .as_ref()
        .zip(result.trajectory_loss.as_deref());
    plot::draw_slice(out, &result.slice, path, &title)?;
    Ok(result)
}
