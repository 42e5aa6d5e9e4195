//! See the ball roll downhill: optimiser paths on two-parameter loss surfaces, with the same
//! optimiser code that trains networks, and the loss of a network on a 2-D slice of its weight
//! space. Drawing them and reading a run's saved path are the program's (`downhill_core::landscape`).

pub mod descent;
pub mod network;
pub mod surface;

pub use descent::{Path, Walker, descend};
pub use surface::Surface;

use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// What to draw: which optimisers (with their learning rates) walk which surface, from where.
#[derive(Clone, Debug)]
pub struct Spec {
    pub surface: Surface,
    /// (method name, learning rate), e.g. ("adam", 0.05). With `lr_sweep`, ignored.
    pub methods: Vec<(String, f64)>,
    /// Plain GD with each of these learning rates instead of `methods`.
    pub lr_sweep: Option<Vec<f64>>,
    pub start: [f64; 2],
    pub steps: usize,
    /// σ of the Gaussian noise added to each gradient component.
    pub noise: f64,
    /// A path has converged when f − f_min ≤ tol.
    pub tol: f64,
    pub seed: u64,
}

/// Walks every requested optimiser (each with its own generator stream from the seed, so
/// adding one does not change another's noise).
pub fn walk(spec: &Spec) -> Result<Vec<Path>> {
    if spec.steps == 0 {
        return Err(Error::setting("steps", 0, "must be ≥ 1"));
    }
    let runs: Vec<(String, String, f64)> = match &spec.lr_sweep {
        Some(lrs) => lrs
            .iter()
            .map(|&lr| ("gd".to_string(), format!("gd η={lr}"), lr))
            .collect(),
        None => spec
            .methods
            .iter()
            .map(|(m, lr)| (m.clone(), m.clone(), *lr))
            .collect(),
    };
    runs.iter()
        .enumerate()
        .map(|(i, (m, label, lr))| {
            let mut rng = Rng::seed_from_u64(spec.seed.wrapping_add(i as u64));
            descent::descend(
                &spec.surface,
                label,
                &descent::method(m, *lr)?,
                spec.start,
                spec.steps,
                spec.noise,
                spec.tol,
                &mut rng,
            )
        })
        .collect()
}
