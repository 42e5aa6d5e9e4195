//! `train::train_with` with its optional parts in `train::Extras` (issue 12's restructure):
//! they are checked before any step.

use downhill::data::Dataset;
use downhill::optim::{OptimizerConfig, Schedule, SgdConfig};
use downhill::train::{Extras, TrainConfig, train_with};
use downhill::{Activation, Init, Network, Rng};
use rand::SeedableRng;

fn net_and_data() -> (Network<f32>, Dataset, Dataset) {
    let x: Vec<f32> = (0..120 * 4)
        .map(|i| ((i * 7919 % 997) as f32 / 997.0) - 0.5)
        .collect();
    let y: Vec<u32> = (0..120).map(|i| ((i * 31) % 3) as u32).collect();
    let all = Dataset::classification(x, 4, y, 3).unwrap();
    let (data, val) = (
        all.subset(&(0..100).collect::<Vec<_>>()),
        all.subset(&(100..120).collect::<Vec<_>>()),
    );
    let mut rng = Rng::seed_from_u64(5);
    let net =
        Network::<f32>::mlp(&[4, 8, 3], Activation::Tanh, 0.2, Init::HeNormal, &mut rng).unwrap();
    (net, data, val)
}

/// `train_with`'s optional parts are checked like its settings: a zero checkpoint interval is
/// refused by its flag's name before any step, and the network is left as it was. (`train` is
/// `train_with` with a validation set and an observer, so comparing the two would hold by
/// construction; training itself is tested in `training::learning`.)
#[test]
fn train_with_refuses_a_zero_checkpoint_interval_before_any_step() {
    let opt = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    });
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 16,
        ..Default::default()
    };
    let (mut net, data, val) = net_and_data();
    let before = net.params().to_vec();
    let mut saved = 0;
    let mut save = |_: &downhill::train::TrainState<f32>| {
        saved += 1;
        Ok(())
    };
    let extras = Extras {
        val: Some(&val),
        checkpoint: Some(downhill::train::Checkpointing {
            every: downhill::train::Every::Steps(0),
            save: &mut save,
        }),
        ..Extras::default()
    };
    let err = train_with(
        &mut net,
        &data,
        &opt,
        &Schedule::default(),
        &cfg,
        &mut Rng::seed_from_u64(1),
        extras,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("checkpoint-every"), "{err}");
    assert_eq!(net.params(), &before[..]);
    assert_eq!(saved, 0);
}
