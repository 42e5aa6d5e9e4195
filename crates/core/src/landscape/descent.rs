//! Optimiser paths on a surface: the same optimiser code that trains networks (built from an
//! [`OptimizerConfig`] over the two parameters (x, y)), stepped on the surface's analytic
//! gradient, optionally with Gaussian noise N(0, σ²) added to each component — the "stochastic"
//! of SGD in two dimensions.

use rand_distr::{Distribution, Normal};

use super::Surface;
use crate::error::{Error, Result};
use crate::optim::{AdagradConfig, AdamConfig, OptimizerConfig, RmsPropConfig, SgdConfig};
use crate::rng::Rng;

/// The optimiser names of `downhill landscape --optimizers`.
pub const METHODS: [&str; 6] = ["gd", "momentum", "nesterov", "adam", "rmsprop", "adagrad"];

/// A learning rate that shows each method sensibly on `surface` (the CLI's default).
pub fn default_lr(method: &str, surface: &Surface) -> f64 {
    let table: [f64; 6] = match surface {
        Surface::Quadratic { condition } => {
            let g = 1.0 / condition.max(1.0); // stable for η < 2/κ
            [g, 0.3 * g, 0.3 * g, 0.1, 0.05, 0.5]
        }
        Surface::Rosenbrock => [1e-3, 2e-4, 2e-4, 0.05, 5e-3, 0.3],
        Surface::Beale => [1e-3, 5e-4, 5e-4, 0.05, 5e-3, 0.3],
        _ => [0.01, 3e-3, 3e-3, 0.05, 0.01, 0.3],
    };
    METHODS
        .iter()
        .position(|m| *m == method)
        .map_or(0.01, |i| table[i])
}

/// The optimiser behind a method name: gd = SGD; momentum = SGD with μ = 0.9; nesterov = the
/// same with Nesterov; adam, rmsprop, adagrad with PyTorch's defaults; all with learning rate `lr`.
pub fn method(name: &str, lr: f64) -> Result<OptimizerConfig> {
    let sgd = |momentum: f64, nesterov: bool| {
        OptimizerConfig::Sgd(SgdConfig {
            lr,
            momentum,
            nesterov,
            ..Default::default()
        })
    };
    let cfg = match name {
        "gd" => sgd(0.0, false),
        "momentum" => sgd(0.9, false),
        "nesterov" => sgd(0.9, true),
        "adam" => OptimizerConfig::Adam(AdamConfig {
            lr,
            ..Default::default()
        }),
        "rmsprop" => OptimizerConfig::RmsProp(RmsPropConfig {
            lr,
            ..Default::default()
        }),
        "adagrad" => OptimizerConfig::Adagrad(AdagradConfig {
            lr,
            ..Default::default()
        }),
        other => {
            return Err(Error::setting(
                "optimizers",
                other,
                format!("accepted: {}", METHODS.join(", ")),
            ));
        }
    };
    cfg.validate()?;
    Ok(cfg)
}

/// One optimiser's walk.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Path {
    pub label: String,
    pub lr: f64,
    /// (x, y) at steps 0, 1, …; ends early on divergence.
    #[serde(skip)]
    pub points: Vec<[f64; 2]>,
    /// f at each point.
    #[serde(skip)]
    pub losses: Vec<f64>,
    pub final_point: [f64; 2],
    pub final_loss: f64,
    /// First step at which f − f_min ≤ tolerance (None: never, or the surface has no minimum).
    pub steps_to_tolerance: Option<usize>,
    /// The iterate left the region ten times the size of the drawn frame (around its centre), or
    /// f stopped being finite.
    pub diverged: bool,
    /// Steps actually taken.
    pub steps: usize,
}

/// The most steps a path may take: each is kept and drawn.
pub const MAX_STEPS: usize = 1_000_000;

/// One optimiser rolling on a surface, a step at a time: `downhill landscape` walks it to the
/// end at once ([`descend`]), the browser playground a few steps per frame.
pub struct Walker {
    opt: Box<dyn crate::optim::Optimizer<f64>>,
    lr: f64,
    noise: Option<Normal<f64>>,
    /// The current point (x, y).
    pub w: [f64; 2],
    /// The iterate left the region ten times the size of the drawn frame (around its centre), or
    /// f stopped being finite: it takes no more steps.
    pub diverged: bool,
    /// Steps taken.
    pub steps: usize,
}

impl Walker {
    /// `opt` at `start`, with gradient noise σ = `noise` (0: exact gradients).
    pub fn new(opt: &OptimizerConfig, start: [f64; 2], noise: f64) -> Result<Walker> {
        if !(noise >= 0.0 && noise.is_finite()) {
            return Err(Error::setting("noise", noise, "must be a number ≥ 0"));
        }
        opt.validate()?;
        Ok(Walker {
            opt: opt.build::<f64>(2),
            lr: opt.lr(),
            noise: (noise > 0.0).then(|| Normal::new(0.0, noise).expect("σ > 0")),
            w: start,
            diverged: false,
            steps: 0,
        })
    }

    /// One step w ← update(w, ∇f(w) + noise); returns the new point and f there, or `None` once
    /// diverged (the diverging point is returned once if it is finite, then nothing).
    pub fn step(&mut self, surface: &Surface, rng: &mut Rng) -> Option<([f64; 2], f64)> {
        if self.diverged {
            return None;
        }
        let mut g = surface.grad(self.w[0], self.w[1]);
        if let Some(normal) = &self.noise {
            g[0] += normal.sample(rng);
            g[1] += normal.sample(rng);
        }
        self.opt.step(&mut self.w, &g, self.lr);
        self.steps += 1;
        let w = self.w;
        let f = surface.f(w[0], w[1]);
        let ([x0, x1], [y0, y1]) = surface.frame();
        let (cx, cy, rx, ry) = (
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            5.0 * (x1 - x0),
            5.0 * (y1 - y0),
        );
        let escaped = (w[0] - cx).abs() > rx || (w[1] - cy).abs() > ry;
        if !f.is_finite() || w.iter().any(|v| !v.is_finite()) || escaped {
            self.diverged = true;
            return w.iter().all(|v| v.is_finite()).then_some((w, f));
        }
        Some((w, f))
    }
}

/// Walks `steps` steps of `opt` from `start`, with gradient noise σ (0: exact gradients).
#[allow(clippy::too_many_arguments)]
pub fn descend(
    surface: &Surface,
    label: &str,
    opt: &OptimizerConfig,
    start: [f64; 2],
    steps: usize,
    noise: f64,
    tol: f64,
    rng: &mut Rng,
) -> Result<Path> {
    if steps > MAX_STEPS {
        return Err(Error::setting(
            "steps",
            steps,
            format!("at most {MAX_STEPS} (every step is kept and drawn)"),
        ));
    }
    let mut walker = Walker::new(opt, start, noise)?;
    let mut points = vec![start];
    let mut losses = vec![surface.f(start[0], start[1])];
    let reached = |f: f64| surface.min_value().is_some_and(|m| f - m <= tol);
    let mut steps_to_tolerance = reached(losses[0]).then_some(0);
    for t in 1..=steps {
        let Some((w, f)) = walker.step(surface, rng) else {
            break;
        };
        points.push(w);
        losses.push(f);
        if walker.diverged {
            break;
        }
        if steps_to_tolerance.is_none() && reached(f) {
            steps_to_tolerance = Some(t);
        }
    }
    let last = *points.last().expect("starts with one point");
    Ok(Path {
        label: label.to_string(),
        lr: opt.lr(),
        final_point: last,
        final_loss: *losses.last().expect("starts with one loss"),
        steps: points.len() - 1,
        points,
        losses,
        steps_to_tolerance,
        diverged: walker.diverged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// GD on ½(x² + κy²) is xₜ = (1 − η)ᵗx₀, yₜ = (1 − ηκ)ᵗy₀ (closed form).
    #[test]
    fn gd_on_the_quadratic_bowl_is_the_closed_form_iterate() {
        let (kappa, lr) = (10.0, 0.05);
        let s = Surface::Quadratic { condition: kappa };
        let p = descend(
            &s,
            "gd",
            &method("gd", lr).unwrap(),
            [-2.0, 1.5],
            50,
            0.0,
            1e-8,
            &mut Rng::seed_from_u64(0),
        )
        .unwrap();
        for (t, pt) in p.points.iter().enumerate() {
            let want = [
                -2.0 * (1.0f64 - lr).powi(t as i32),
                1.5 * (1.0f64 - lr * kappa).powi(t as i32),
            ];
            assert!(
                (pt[0] - want[0]).abs() < 1e-12 && (pt[1] - want[1]).abs() < 1e-12,
                "step {t}: {pt:?} vs {want:?}"
            );
        }
        assert!(!p.diverged);
    }

    /// η > 2/κ makes GD on the bowl oscillate with growing amplitude: reported, not a crash.
    #[test]
    fn an_unstable_learning_rate_is_reported_as_divergence() {
        let s = Surface::Quadratic { condition: 10.0 };
        let gd = |lr: f64| {
            let m = method("gd", lr).unwrap();
            let mut rng = Rng::seed_from_u64(0);
            descend(&s, "gd", &m, [-2.0, 1.5], 1000, 0.0, 1e-8, &mut rng).unwrap()
        };
        let p = gd(0.25);
        assert!(
            p.diverged && p.steps < 1000 && p.steps_to_tolerance.is_none(),
            "{p:?}"
        );
        let ok = gd(0.15);
        assert!(!ok.diverged && ok.steps_to_tolerance.is_some());
    }

    #[test]
    fn every_method_reaches_the_bowls_minimum_and_noise_is_seeded() {
        let s = Surface::Quadratic { condition: 10.0 };
        for m in METHODS {
            let p = descend(
                &s,
                m,
                &method(m, default_lr(m, &s)).unwrap(),
                s.default_start(),
                2000,
                0.0,
                1e-4,
                &mut Rng::seed_from_u64(0),
            )
            .unwrap();
            assert!(p.steps_to_tolerance.is_some(), "{m}: {p:?}");
        }
        let noisy = |seed| {
            descend(
                &s,
                "gd",
                &method("gd", 0.05).unwrap(),
                [1.0, 1.0],
                20,
                0.5,
                1e-4,
                &mut Rng::seed_from_u64(seed),
            )
            .unwrap()
            .points
        };
        assert_eq!(noisy(1), noisy(1));
        assert_ne!(noisy(1), noisy(2));
    }
}
