//! `downhill landscape`: loss-landscape pictures of a toy problem or a saved model, with the
//! paths of the optimisers over them.

use std::process::ExitCode;

use downhill::Error;

use crate::cli::args::LandscapeArgs;
use crate::cli::picture_name;

pub(in crate::cli) fn landscape(a: &LandscapeArgs) -> Result<ExitCode, Error> {
    use downhill::landscape::{plot, walk};
    if let Some(out) = &a.out {
        picture_name("out", out)?;
    }
    if let Some(model_path) = &a.model {
        return landscape_model(a, model_path);
    }
    if let Some(start) = &a.start
        && start.iter().any(|v| !v.is_finite())
    {
        let shown: Vec<String> = start.iter().map(f64::to_string).collect();
        return Err(Error::setting(
            "start",
            shown.join(","),
            "a start point is two finite numbers X,Y",
        ));
    }
    if let Some(seed) = a.seed
        && a.noise == 0.0
    {
        return Err(Error::setting(
            "seed",
            seed,
            "seeds the gradient noise only, and without --noise σ > 0 every path is \
             deterministic",
        ));
    }
    let spec = landscape_spec(a)?;
    let paths = walk(&spec)?;
    let surface = &spec.surface;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| format!("landscape-{}.svg", surface.name()).into());
    plot::draw(&out, surface, &paths, &landscape_title(a, &spec))?;
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "surface": surface, "picture": out, "optimizers": paths })
        );
    } else {
        print_paths(&paths);
        outln!("picture: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `landscape --model`: the loss surface around a trained model's weights, and its training path.
fn landscape_model(a: &LandscapeArgs, model_path: &std::path::Path) -> Result<ExitCode, Error> {
    let spec = a
        .data
        .as_deref()
        .expect("clap requires --data with --model");
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| "landscape-model.svg".into());
    if a.examples == 0 {
        return Err(Error::setting(
            "examples",
            0,
            "the loss is averaged over ≥ 1 example",
        ));
    }
    let trajectory = model_path.with_file_name(downhill::landscape::trajectory::FILE);
    if let Some(seed) = a.seed
        && trajectory.exists()
        && !a.random_directions
    {
        return Err(Error::setting(
            "seed",
            seed,
            format!(
                "has no effect with the training path in {}: that slice is the path's plane, \
                 drawn without randomness; add --random-directions for a slice along random \
                 directions from this seed",
                trajectory.display()
            ),
        ));
    }
    let opts = downhill::landscape::ModelOptions {
        span: a.span,
        points: a.points,
        examples: a.examples,
        seed: a.seed.unwrap_or(0),
        random_directions: a.random_directions,
    };
    let model = downhill::io::load(model_path)?;
    let (data, notes) = downhill::run::eval_data_noted(&model, spec)?;
    // Eval's checks: a loss or output that is not finite is refused, not drawn.
    downhill::run::check_model_on(model_path, &model, (spec, &data, &notes.lines))?;
    let r = downhill::landscape::model_picture(model_path, &model, (spec, data), &opts, &out)?;
    if a.json {
        outln!(
            "{}",
            serde_json::json!({ "picture": out, "slice": r.slice, "trajectory": r.trajectory, "trajectory_loss": r.trajectory_loss })
        );
        return Ok(ExitCode::SUCCESS);
    }
    let g = &r.slice.loss;
    let corners = [
        g[0][0],
        g[0][g.len() - 1],
        g[g.len() - 1][0],
        g[g.len() - 1][g.len() - 1],
    ];
    outln!(
        "loss at the trained weights {:.4}; at the corners of the slice {:.4} to {:.4}",
        r.slice.center,
        corners.iter().copied().fold(f64::INFINITY, f64::min),
        corners.iter().copied().fold(0.0, f64::max)
    );
    if let Some(t) = &r.trajectory {
        outln!(
            "training path of {} snapshots; its principal directions explain {:.0}% and {:.0}% of its variance",
            t.coords.len(),
            100.0 * t.explained[0],
            100.0 * t.explained[1]
        );
    }
    outln!("picture: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The walks `landscape` draws: the surface, each optimiser with its learning rate, the start.
fn landscape_spec(a: &LandscapeArgs) -> Result<downhill::landscape::Spec, Error> {
    use downhill::landscape::{Spec, Surface, descent};
    let condition = a.condition.unwrap_or(10.0);
    if !(condition.is_finite() && condition > 0.0) {
        return Err(Error::setting(
            "condition",
            condition,
            "must be a number > 0",
        ));
    }
    if a.condition.is_some() && a.surface != "quadratic" {
        return Err(Error::setting(
            "condition",
            condition,
            format!(
                "shapes the quadratic bowl only (--surface quadratic), not {}",
                a.surface
            ),
        ));
    }
    if !(a.tol.is_finite() && a.tol > 0.0) {
        return Err(Error::setting(
            "tol",
            a.tol,
            "must be a finite number > 0 (a path has converged when f − f_min ≤ tol)",
        ));
    }
    let twice = |flag: &'static str, values: Vec<String>| {
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(Error::setting(
                    flag,
                    values.join(","),
                    format!("lists {v} twice: its path would be drawn twice"),
                ));
            }
        }
        Ok(())
    };
    twice("optimizers", a.optimizers.clone())?;
    if let Some(sweep) = &a.lr_sweep {
        twice("lr-sweep", sweep.iter().map(f64::to_string).collect())?;
    }
    let surface = Surface::from_name(&a.surface, condition).expect("clap checked the name");
    let (lrs, all) = landscape_lrs(a)?;
    let methods = a
        .optimizers
        .iter()
        .map(|m| {
            let lr = lrs
                .iter()
                .find(|(n, _)| n == m)
                .map(|p| p.1)
                .or(all)
                .unwrap_or(descent::default_lr(m, &surface));
            (m.clone(), lr)
        })
        .collect();
    let start = match &a.start {
        Some(v) if v.len() == 2 => [v[0], v[1]],
        Some(v) => {
            return Err(Error::setting(
                "start",
                format!("{v:?}"),
                "two numbers: X,Y",
            ));
        }
        None => surface.default_start(),
    };
    Ok(Spec {
        surface,
        methods,
        lr_sweep: a.lr_sweep.clone(),
        start,
        steps: a.steps,
        noise: a.noise,
        tol: a.tol,
        seed: a.seed.unwrap_or(0),
    })
}

/// `landscape --lr`: one number for all (the second value), or NAME=η pairs for optimisers
/// that are drawn.
type NamedLrs = (Vec<(String, f64)>, Option<f64>);

fn landscape_lrs(a: &LandscapeArgs) -> Result<NamedLrs, Error> {
    let mut lrs: Vec<(String, f64)> = Vec::new();
    let mut all: Option<f64> = None;
    let Some(spec) = &a.lr else {
        return Ok((lrs, all));
    };
    let bad = || {
        Error::setting(
            "lr",
            spec,
            "a learning rate for all (0.01) or NAME=η pairs (gd=0.001,adam=0.05)",
        )
    };
    for part in spec.split(',') {
        match part.split_once('=') {
            Some((name, v)) => {
                let name = name.trim().to_string();
                if lrs.iter().any(|(n, _)| *n == name) {
                    return Err(Error::setting(
                        "lr",
                        spec,
                        format!("gives {name} two learning rates: give each optimizer one"),
                    ));
                }
                lrs.push((name, v.trim().parse().map_err(|_| bad())?));
            }
            None if all.is_some() => {
                return Err(Error::setting(
                    "lr",
                    spec,
                    "gives more than one learning rate for all: one number (0.01), NAME=η pairs \
                     (gd=0.001,adam=0.05), or --lr-sweep for gradient descent at several rates",
                ));
            }
            None => all = Some(part.trim().parse().map_err(|_| bad())?),
        }
    }
    if let Some((name, _)) = lrs.iter().find(|(n, _)| !a.optimizers.contains(n)) {
        return Err(Error::setting(
            "lr",
            name,
            format!(
                "names an optimizer that is not drawn (drawn: {})",
                a.optimizers.join(", ")
            ),
        ));
    }
    Ok((lrs, all))
}

/// The picture's title: the surface and the walk (a sweep, noisy steps, or steps from a start).
fn landscape_title(a: &LandscapeArgs, spec: &downhill::landscape::Spec) -> String {
    let name = spec.surface.name();
    match (&spec.lr_sweep, a.noise > 0.0) {
        (Some(_), _) => format!("{name}: gradient descent, learning-rate sweep"),
        (None, true) => format!("{name}: {} steps, gradient noise σ = {}", a.steps, a.noise),
        (None, false) => format!(
            "{name}: {} steps from ({}, {})",
            a.steps, spec.start[0], spec.start[1]
        ),
    }
}

/// The table of the walks: each optimiser's rate, final point and loss, steps to tolerance.
fn print_paths(paths: &[downhill::landscape::Path]) {
    outln!(
        "{:<12} {:>10} {:>24} {:>14} {:>12}",
        "optimizer",
        "η",
        "final point",
        "final loss",
        "steps to tol"
    );
    for p in paths {
        let reached = p.steps_to_tolerance.map_or(
            if p.diverged {
                "diverged".into()
            } else {
                "—".into()
            },
            |s| s.to_string(),
        );
        outln!(
            "{:<12} {:>10} {:>24} {:>14.4e} {:>12}",
            p.label,
            p.lr,
            format!("({:.4}, {:.4})", p.final_point[0], p.final_point[1]),
            p.final_loss,
            reached
        );
    }
}
