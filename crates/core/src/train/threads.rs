//! `--threads auto`: as many threads as make a training step faster on this machine, measured.
//!
//! Whether a second thread helps depends on the machine, not only on its core count: on a
//! virtual machine whose two vCPUs share one physical core's vector units, two matrix products
//! at once each run at half speed, and data-parallel threads make a step slower. So the steps
//! are timed: for t = 1, 2, …, `max`, a few steps of this run (on a copy of the network, from a
//! copy of the generator, so the run itself is untouched) with t threads, the best of three
//! rounds per step. The fewest threads within 10 % of the fastest are chosen — more threads only
//! where they make the step at least 10 % faster than fewer.

use web_time::Instant;

use super::{Stepper, TrainConfig};
use crate::data::Dataset;
use crate::error::Result;
use crate::network::Network;
use crate::optim::{OptimizerConfig, Schedule};
use crate::rng::Rng;
use crate::tensor::Scalar;

/// What [`calibrate_threads`] measured and chose.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub threads: usize,
    /// Seconds per step with each thread count tried (a count that could not start is absent).
    pub step_seconds: Vec<(usize, f64)>,
}

impl Calibration {
    /// One line for the run's report: `threads: auto → 2 (ms per step: 1 → 3.10, 2 → 1.95)`.
    pub fn line(&self) -> String {
        let each: Vec<String> = self
            .step_seconds
            .iter()
            .map(|(t, s)| format!("{t} → {:.2}", s * 1e3))
            .collect();
        format!(
            "threads: auto → {} (ms per step: {})",
            self.threads,
            each.join(", ")
        )
    }
}

/// Times steps of training `net` on `data` with 1 ..= `max` threads and chooses (see the module
/// docs). Fails only if one thread cannot take a step (settings the run refuses as well).
pub fn calibrate_threads<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    (optimizer, schedule): (&OptimizerConfig, &Schedule),
    cfg: &TrainConfig,
    rng: &Rng,
    max: usize,
) -> Result<Calibration> {
    let mut step_seconds = Vec::new();
    for threads in 1..=max.max(1) {
        match time_steps(net, data, (optimizer, schedule), cfg, rng, threads) {
            Ok(s) => step_seconds.push((threads, s)),
            Err(e) if threads == 1 => return Err(e),
            // Too little memory or a refused thread for more: fewer it is.
            Err(_) => break,
        }
    }
    Ok(Calibration {
        threads: choose(&step_seconds),
        step_seconds,
    })
}

/// The fewest threads whose step is within 10 % of the fastest (1 if none was timed).
fn choose(step_seconds: &[(usize, f64)]) -> usize {
    let fastest = step_seconds
        .iter()
        .map(|&(_, s)| s)
        .fold(f64::INFINITY, f64::min);
    step_seconds
        .iter()
        .find(|&&(_, s)| s <= fastest * 1.1)
        .map_or(1, |&(t, _)| t)
}

/// Seconds per training step with `threads` threads: two steps to warm up, then three rounds of
/// about 20 ms (at least one step each), the fastest round.
fn time_steps<T: Scalar>(
    net: &Network<T>,
    data: &Dataset,
    (optimizer, schedule): (&OptimizerConfig, &Schedule),
    cfg: &TrainConfig,
    rng: &Rng,
    threads: usize,
) -> Result<f64> {
    let cfg = TrainConfig {
        threads,
        ..cfg.clone()
    };
    let (mut net, mut rng) = (net.clone(), rng.clone());
    let mut stepper = Stepper::new(&net, data, optimizer, schedule, &cfg)?;
    let started = Instant::now();
    stepper.run(&mut net, data, &mut rng, 2)?;
    let warm = started.elapsed().as_secs_f64() / 2.0;
    let steps = ((0.02 / warm.max(1e-9)) as usize).clamp(1, 200);
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        stepper.run(&mut net, data, &mut rng, steps)?;
        best = best.min(t.elapsed().as_secs_f64() / steps as f64);
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_threads_only_where_they_make_the_step_at_least_ten_percent_faster() {
        assert_eq!(choose(&[(1, 1.0), (2, 0.95)]), 1);
        assert_eq!(choose(&[(1, 1.0), (2, 1.4)]), 1);
        assert_eq!(choose(&[(1, 1.0), (2, 0.6)]), 2);
        assert_eq!(choose(&[(1, 1.0), (2, 0.6), (3, 0.58)]), 2);
        assert_eq!(choose(&[(1, 1.0), (2, 0.8), (3, 0.5)]), 3);
        assert_eq!(choose(&[]), 1);
    }

    #[test]
    fn calibration_times_each_count_and_leaves_the_network_and_generator_alone() {
        use crate::{Activation, Init};
        use rand::SeedableRng;
        let x: Vec<f32> = (0..400 * 5).map(|i| (i % 13) as f32 / 13.0).collect();
        let y: Vec<u32> = (0..400).map(|i| (i % 3) as u32).collect();
        let data = Dataset::classification(x, 5, y, 3).unwrap();
        let mut rng = Rng::seed_from_u64(1);
        let net = Network::<f32>::mlp(&[5, 8, 3], Activation::Relu, 0.0, Init::HeNormal, &mut rng)
            .unwrap();
        let (before, rng_before) = (net.params().to_vec(), rng.clone());
        let cfg = TrainConfig {
            batch_size: 32,
            ..Default::default()
        };
        let opt = OptimizerConfig::Sgd(crate::optim::SgdConfig::default());
        let c =
            calibrate_threads(&net, &data, (&opt, &Schedule::default()), &cfg, &rng, 2).unwrap();
        let counts: Vec<usize> = c.step_seconds.iter().map(|p| p.0).collect();
        assert_eq!(counts, [1, 2]);
        assert!(c.step_seconds.iter().all(|p| p.1 > 0.0 && p.1.is_finite()));
        assert!([1, 2].contains(&c.threads));
        assert_eq!(net.params(), &before[..]);
        assert_eq!(format!("{rng:?}"), format!("{rng_before:?}"));
        assert!(c.line().starts_with("threads: auto → "), "{}", c.line());
    }
}
