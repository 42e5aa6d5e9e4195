//! `train::train_with` with its optional parts in `train::Extras` (issue 12's restructure).

use downhill::data::Dataset;
use downhill::optim::{OptimizerConfig, Schedule, SgdConfig};
use downhill::train::{Extras, NoObserver, TrainConfig, train, train_with};
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

#[test]
fn train_is_train_with_its_extras() {
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
    let sched = Schedule::default();
    let (mut a, data, val) = net_and_data();
    let mut b = a.clone();
    let ra = train(
        &mut a,
        &data,
        Some(&val),
        &opt,
        &sched,
        &cfg,
        &mut Rng::seed_from_u64(1),
        &mut NoObserver,
    )
    .unwrap();
    // train_with on `b` with these settings and a fresh generator.
    let run = |b: &mut Network<f32>, extras| {
        train_with(
            b,
            &data,
            &opt,
            &sched,
            &cfg,
            &mut Rng::seed_from_u64(1),
            extras,
        )
    };
    let extras = Extras {
        val: Some(&val),
        ..Extras::default()
    };
    let rb = run(&mut b, extras).unwrap();
    assert_eq!(a.params(), b.params());
    assert_eq!(ra.history.len(), rb.history.len());
    // The optional parts are still checked: a zero checkpoint interval is refused.
    let mut save = |_: &downhill::train::TrainState<f32>| Ok(());
    let extras = Extras {
        checkpoint: Some(downhill::train::Checkpointing {
            every: downhill::train::Every::Steps(0),
            save: &mut save,
        }),
        ..Extras::default()
    };
    let err = run(&mut b, extras).unwrap_err().to_string();
    assert!(err.contains("checkpoint-every"), "{err}");
}
