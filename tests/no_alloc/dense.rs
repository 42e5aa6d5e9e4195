//! The step loop allocates nothing after the first step: a counting global allocator, read by an
//! observer at every step, sees no allocation between the second and the last step of an epoch.

use downhill::data::Dataset;
use downhill::optim::{OptimizerConfig, Schedule};
use downhill::train::{TrainConfig, train};
use downhill::{Activation, Init, Network, Rng};
use rand::SeedableRng;

use crate::alloc_watch::Watch;

pub fn no_allocation_per_step() {
    let mut rng = Rng::seed_from_u64(0);
    let n = 640;
    let x: Vec<f32> = (0..n * 50)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let y: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    let data = Dataset::classification(x, 50, y, 10).unwrap();
    // Every optimiser with and without dropout on one thread, and on the data-parallel path (two
    // threads, with and without dropout).
    let cases = OptimizerConfig::NAMES
        .into_iter()
        .flat_map(|o| [(o, 0.0, 1), (o, 0.2, 1), (o, 0.0, 2), (o, 0.2, 2)]);
    for (opt, dropout, threads) in cases {
        let mut net = Network::<f32>::mlp(
            &[50, 64, 32, 10],
            Activation::Relu,
            dropout,
            Init::HeNormal,
            &mut rng,
        )
        .unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 64,
            l2: 1e-4,
            threads,
            ..Default::default()
        };
        let mut watch = Watch {
            at_second_step: None,
            during: Vec::new(),
        };
        let opt_cfg = OptimizerConfig::default_for(opt).unwrap();
        train(
            &mut net,
            &data,
            None,
            &opt_cfg,
            &Schedule::default(),
            &cfg,
            &mut rng,
            &mut watch,
        )
        .unwrap();
        let what = format!(
            "{opt}, dropout {dropout}, {threads} thread(s): allocations during steps 2..last: {:?}",
            watch.during
        );
        assert_eq!(watch.during, vec![0, 0], "{what}");
    }
}
