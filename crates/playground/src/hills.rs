//! The height-map view: several optimisers rolling on one of `downhill landscape`'s surfaces at
//! once, each a [`Walker`] — the same optimiser code and the same step as the CLI's paths.

use rand::SeedableRng;

use downhill_core::error::{Error, Result};
use downhill_core::landscape::Surface;
use downhill_core::landscape::descent::{self, Walker};
use downhill_core::rng::Rng;

/// One rolling ball: its method, learning rate and path so far.
pub struct Ball {
    pub method: String,
    pub lr: f64,
    walker: Walker,
    rng: Rng,
    /// (x, y) at steps 0, 1, …
    pub points: Vec<[f64; 2]>,
    /// f at each point.
    pub losses: Vec<f64>,
}

/// Several optimisers on one surface, from one start.
pub struct Hills {
    pub surface: Surface,
    pub balls: Vec<Ball>,
}

/// The most points a path keeps (the page shows a few thousand steps).
pub const MAX_POINTS: usize = 100_000;

impl Hills {
    /// `methods` ((name, learning rate) as `downhill landscape --optimizers` names them) from
    /// `start` on `surface`, with gradient noise σ = `noise`; each ball draws its noise from its
    /// own stream of `seed`, as the CLI's do.
    pub fn new(
        surface: Surface,
        methods: &[(String, f64)],
        start: [f64; 2],
        noise: f64,
        seed: u64,
    ) -> Result<Hills> {
        if start.iter().any(|v| !v.is_finite()) {
            return Err(Error::setting(
                "start",
                format!("{start:?}"),
                "must be finite",
            ));
        }
        if let Surface::Quadratic { condition } = surface
            && !(condition.is_finite() && condition >= 1.0)
        {
            return Err(Error::setting(
                "condition",
                condition,
                "must be a number ≥ 1",
            ));
        }
        let balls = methods
            .iter()
            .enumerate()
            .map(|(i, (m, lr))| {
                let cfg = descent::method(m, *lr)?;
                Ok(Ball {
                    method: m.clone(),
                    lr: *lr,
                    walker: Walker::new(&cfg, start, noise)?,
                    rng: Rng::seed_from_u64(seed.wrapping_add(i as u64)),
                    points: vec![start],
                    losses: vec![surface.f(start[0], start[1])],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Hills { surface, balls })
    }

    /// `steps` more steps of every ball (a diverged ball stays where it left the frame).
    pub fn run(&mut self, steps: usize) {
        for b in &mut self.balls {
            for _ in 0..steps {
                if b.points.len() >= MAX_POINTS {
                    break;
                }
                match b.walker.step(&self.surface, &mut b.rng) {
                    Some((w, f)) => {
                        b.points.push(w);
                        b.losses.push(f);
                    }
                    None => break,
                }
            }
        }
    }

    /// Whether ball `i` has diverged.
    pub fn diverged(&self, i: usize) -> bool {
        self.balls[i].walker.diverged
    }

    /// f over a `res × res` grid of the surface's frame, rows from the top (largest y) down.
    pub fn heights(&self, res: usize) -> Vec<f64> {
        let ([x0, x1], [y0, y1]) = self.surface.frame();
        let res = res.clamp(2, 400);
        (0..res)
            .flat_map(|r| {
                (0..res).map(move |c| {
                    let x = x0 + (c as f64 + 0.5) / res as f64 * (x1 - x0);
                    let y = y1 - (r as f64 + 0.5) / res as f64 * (y1 - y0);
                    (x, y)
                })
            })
            .map(|(x, y)| self.surface.f(x, y))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use downhill_core::landscape::descend;

    /// A ball stepped a few steps at a time walks exactly the path `downhill landscape` draws.
    #[test]
    fn balls_walk_the_clis_paths() {
        let s = Surface::Rosenbrock;
        let methods = vec![("adam".to_string(), 0.05), ("momentum".to_string(), 2e-4)];
        let mut h = Hills::new(s, &methods, [-1.5, 2.0], 0.5, 7).unwrap();
        for _ in 0..10 {
            h.run(30);
        }
        for (i, (m, lr)) in methods.iter().enumerate() {
            let mut rng = Rng::seed_from_u64(7 + i as u64);
            let p = descend(
                &s,
                m,
                &descent::method(m, *lr).unwrap(),
                [-1.5, 2.0],
                300,
                0.5,
                1e-6,
                &mut rng,
            )
            .unwrap();
            assert_eq!(p.points, h.balls[i].points, "{m}");
        }
        let q = Hills::new(
            Surface::Quadratic { condition: 10.0 },
            &[("gd".into(), 0.25)],
            [1.0, 1.0],
            0.0,
            0,
        )
        .unwrap();
        let grid = q.heights(3);
        assert_eq!(grid.len(), 9);
        assert!(grid[4] < grid[0]);
        assert!(Hills::new(s, &[("newton".into(), 0.1)], [0.0, 0.0], 0.0, 0).is_err());
        assert!(Hills::new(s, &[("gd".into(), f64::NAN)], [0.0, 0.0], 0.0, 0).is_err());
        assert!(Hills::new(s, &[("gd".into(), 0.1)], [f64::NAN, 0.0], 0.0, 0).is_err());
        assert!(Hills::new(s, &[("gd".into(), 0.1)], [0.0, 0.0], -1.0, 0).is_err());
        for k in [0.5, f64::NAN, f64::INFINITY] {
            let q = Surface::Quadratic { condition: k };
            assert!(
                Hills::new(q, &[("gd".into(), 0.1)], [0.0, 0.0], 0.0, 0).is_err(),
                "{k}"
            );
        }
    }

    /// Too large a rate overshoots and leaves the frame; a diverged ball stops.
    #[test]
    fn too_large_a_rate_diverges() {
        let q = Surface::Quadratic { condition: 10.0 };
        let mut h = Hills::new(q, &[("gd".into(), 0.25)], [1.0, 1.0], 0.0, 0).unwrap();
        h.run(500);
        assert!(h.diverged(0));
        let n = h.balls[0].points.len();
        h.run(10);
        assert_eq!(h.balls[0].points.len(), n);
    }
}
