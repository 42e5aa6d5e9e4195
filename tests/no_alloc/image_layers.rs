//! The step loop of networks with image layers allocates nothing after the first step (as
//! `dense` checks for dense networks): convolution scratch, pooling indices and
//! BatchNorm statistics live in the workspace.

use downhill::data::Dataset;
use downhill::layers::ImageShape;
use downhill::netspec::{parse, resolve};
use downhill::network::Shape;
use downhill::optim::{OptimizerConfig, Schedule};
use downhill::train::{TrainConfig, train};
use downhill::{Init, Network, Rng};
use rand::SeedableRng;

use crate::alloc_watch::Watch;

pub fn no_allocation_per_step_with_image_layers() {
    let mut rng = Rng::seed_from_u64(0);
    let n = 320;
    let input = ImageShape::new(1, 12, 12);
    let x: Vec<f32> = (0..n * input.len())
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let y: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    let data = Dataset::classification(x, input.len(), y, 10).unwrap();
    let specs = [
        "conv 4 3 pad 1, batchnorm, relu, maxpool 2, conv 6 3 stride 2, avgpool 2, flatten, dropout 0.2, batchnorm, dense",
        "conv 8 1, relu, maxpool 3 stride 2 pad 1, flatten, dense",
        // Wide enough that two threads run passes of 8 rows (one thread: 16).
        "conv 64 3 pad 1, relu, maxpool 2, flatten, dropout 0.1, dense",
    ];
    for (spec, threads) in specs.iter().flat_map(|s| [(s, 1), (s, 2)]) {
        let layers = resolve(&parse(spec).unwrap(), Shape::Image(input), 10).unwrap();
        let mut net =
            Network::<f32>::with_input(Shape::Image(input), layers, Init::HeNormal, &mut rng)
                .unwrap();
        let cfg = TrainConfig {
            epochs: 4,
            batch_size: 32,
            l2: 1e-4,
            threads,
            ..Default::default()
        };
        let mut watch = Watch {
            at_second_step: None,
            during: Vec::with_capacity(4),
        };
        let opt = OptimizerConfig::default_for("adam").unwrap();
        train(
            &mut net,
            &data,
            None,
            &opt,
            &Schedule::default(),
            &cfg,
            &mut rng,
            &mut watch,
        )
        .unwrap();
        // Strict: without the test harness (whose threads allocated once in a while, a slow-test
        // warning, and made one window in four a tolerated miss) only training threads run.
        assert_eq!(
            watch.during,
            vec![0; 4],
            "{spec}, {threads} thread(s): allocations during steps 2..last"
        );
    }
}
