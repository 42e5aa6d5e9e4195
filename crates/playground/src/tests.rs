use super::*;
use downhill_core::optim::{AdamConfig, OptimizerConfig, Schedule};
use downhill_core::train::{NoObserver, TrainConfig, train};

/// One epoch of the session's steps gives the weights `train` gives for one epoch from the same
/// network, data and generator: the same step, not a second implementation.
#[test]
fn session_steps_are_the_training_loops_steps() {
    let spec = NetSpec {
        data: "circle".into(),
        points: 120,
        l2: 1e-3,
        batch_size: 16,
        ..NetSpec::default()
    };
    let mut s = Session::new(spec.clone()).unwrap();
    let mut net = s.net.clone();
    let steps = s.train.len().div_ceil(16);
    // The generator as the session holds it before its first step.
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 16,
        l2: 1e-3,
        divergence: None,
        ..TrainConfig::default()
    };
    let mut r = s.rng_for_test();
    train(
        &mut net,
        &s.train.clone(),
        None,
        &spec.optimizer,
        &Schedule::default(),
        &cfg,
        &mut r,
        &mut NoObserver,
    )
    .unwrap();
    s.run(steps).unwrap();
    assert_eq!((s.epoch, s.step), (1, steps));
    assert_eq!(net.params(), s.net.params());
}

/// The default spiral network learns the spiral: the test loss falls well below chance (ln 2).
#[test]
fn spiral_test_loss_falls() {
    let mut s = Session::new(NetSpec::default()).unwrap();
    let before = s.progress().unwrap();
    s.run(3000).unwrap();
    let after = s.progress().unwrap();
    assert!(before.test_loss > 0.6, "{before:?}");
    assert!(after.test_loss < 0.3, "{after:?}");
    assert!(after.test_accuracy.unwrap() > 0.9, "{after:?}");
    let pic = s.surface(20).unwrap();
    assert_eq!(pic.len(), 400);
    assert!(pic.iter().all(|p| (0.0..=1.0).contains(p)));
    let neurons = s.neurons(10).unwrap();
    // 7 features, 8 + 8 hidden units, 2 outputs.
    assert_eq!(neurons.len(), (7 + 16 + 2) * 100);
    assert_eq!(s.widths(), vec![7, 8, 8, 2]);
}

/// Each optimiser, loss and the L1 penalty train (regression with MSE, BCE on two classes).
#[test]
fn every_optimiser_and_loss_trains() {
    for name in OptimizerConfig::NAMES {
        let opt = OptimizerConfig::default_for(name).unwrap().with_lr(0.05);
        let spec = NetSpec {
            data: "gauss".into(),
            points: 200,
            optimizer: opt,
            l1: 1e-3,
            features: vec!["x".into(), "y".into()],
            ..NetSpec::default()
        };
        let mut s = Session::new(spec).unwrap();
        s.run(200).unwrap();
        let p = s.progress().unwrap();
        assert!(p.test_accuracy.unwrap() > 0.85, "{name}: {p:?}");
    }
    let reg = NetSpec {
        data: "reg-plane".into(),
        points: 200,
        ..NetSpec::default()
    };
    let mut s = Session::new(reg).unwrap();
    let before = s.progress().unwrap().test_loss;
    s.run(300).unwrap();
    assert!(s.progress().unwrap().test_loss < before / 5.0);
    assert!(s.confusion().unwrap().is_empty());
    let bce = NetSpec {
        data: "xor".into(),
        points: 200,
        loss: Some(downhill_core::loss::Loss::Bce),
        schedule: "cosine".into(),
        epochs: 20,
        ..NetSpec::default()
    };
    let mut s = Session::new(bce).unwrap();
    s.run(400).unwrap();
    assert!(s.progress().unwrap().test_accuracy.unwrap() > 0.9);
    assert_eq!(s.widths().last(), Some(&1));
}

/// Bad settings are refused with the setting's name.
#[test]
fn bad_settings_are_refused() {
    let bad = |f: fn(&mut NetSpec)| {
        let mut spec = NetSpec::default();
        f(&mut spec);
        match Session::new(spec) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    assert!(bad(|s| s.data = "moons".into()).contains("moons"));
    assert!(bad(|s| s.features.clear()).contains("feature"));
    assert!(bad(|s| s.hidden = vec![0]).contains("hidden"));
    assert!(bad(|s| s.test_fraction = 1.0).contains("test_fraction"));
    assert!(bad(|s| s.batch_size = 0).contains("batch"));
    assert!(bad(|s| s.l1 = -1.0).contains("l1"));
    assert!(bad(|s| s.schedule = "sometimes".into()).contains("schedule"));
    let mut reg = NetSpec {
        data: "reg-gauss".into(),
        ..NetSpec::default()
    };
    reg.loss = Some(downhill_core::loss::Loss::CrossEntropy);
    assert!(Session::new(reg).is_err());
    let huge = NetSpec {
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e6,
            ..Default::default()
        }),
        activation: downhill_core::Activation::Relu,
        ..NetSpec::default()
    };
    let mut s = Session::new(huge).unwrap();
    // A huge rate either diverges with a clear error or stays finite; never panics.
    if let Err(e) = s.run(2000) {
        assert!(e.to_string().contains("diverged"), "{e}");
    }
}

/// The digits: accuracy rises within a few hundred steps; the confusion matrix counts the test set.
#[test]
fn digits_accuracy_rises() {
    let spec = NetSpec {
        data: "digits".into(),
        points: 1000,
        test_fraction: 0.2,
        hidden: vec![32],
        activation: downhill_core::Activation::Relu,
        batch_size: 32,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e-3,
            ..Default::default()
        }),
        ..NetSpec::default()
    };
    let mut s = Session::new(spec).unwrap();
    let before = s.progress().unwrap().test_accuracy.unwrap();
    s.run(200).unwrap();
    let after = s.progress().unwrap().test_accuracy.unwrap();
    assert!(before < 0.3 && after > 0.75, "{before} → {after}");
    let m = s.confusion().unwrap();
    assert_eq!(m.len(), 100);
    assert_eq!(m.iter().sum::<u32>() as usize, s.test.len());
    let p = s.predict(&vec![0.0; 784]).unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(s.surface(10).is_err());
}

/// An uploaded CSV trains with the CLI's column handling; its model file carries the column map
/// and reads back (through `io::load_bytes`) to the same predictions.
#[test]
fn csv_upload_trains_and_its_model_reads_back() {
    let mut text = String::from("size,colour,ok,label\n");
    for i in 0..200 {
        let size = (i % 20) as f64 / 2.0;
        let colour = ["red", "green", "blue"][i % 3];
        let label = if size > 4.5 || colour == "blue" {
            "yes"
        } else {
            "no"
        };
        text += &format!("{size},{colour},{},{label}\n", i % 2 == 0);
    }
    let spec = NetSpec {
        data: "table".into(),
        hidden: vec![8],
        ..NetSpec::default()
    };
    let mut s = Session::from_csv(spec.clone(), "upload.csv", text.into_bytes()).unwrap();
    assert_eq!(s.train.n_features(), 1 + 3 + 1, "size, colour one-hot, ok");
    assert!(
        s.table_report().iter().any(|l| l.contains("colour")),
        "{:?}",
        s.table_report()
    );
    s.run(400).unwrap();
    let p = s.progress().unwrap();
    assert!(p.test_accuracy.unwrap() > 0.9, "{p:?}");
    let bytes = s.model_bytes().unwrap();
    let model = downhill_io::load_bytes(std::path::Path::new("m.safetensors"), &bytes).unwrap();
    assert!(model.meta.columns.is_some());
    assert_eq!(
        model.meta.class_names,
        Some(vec!["no".to_string(), "yes".to_string()])
    );
    assert_eq!(model.net.params(), s.net.params());
    assert!(s.surface(10).is_err());
    assert!(Session::from_csv(spec.clone(), "bad.csv", b"a\n1\n".to_vec()).is_err());
    assert!(Session::from_csv(spec, "empty.csv", Vec::new()).is_err());
}

/// A small convolutional network on the digits, described as `--layers` describes it, trains
/// through the same step.
#[test]
fn a_conv_net_trains_on_the_digits() {
    let spec = NetSpec {
        data: "digits".into(),
        points: 600,
        test_fraction: 0.25,
        layers: Some("conv 4 3 pad 1, relu, maxpool 2, flatten, dense".into()),
        batch_size: 32,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 3e-3,
            ..Default::default()
        }),
        ..NetSpec::default()
    };
    let mut s = Session::new(spec.clone()).unwrap();
    assert!(s.pytorch().contains("nn.Conv2d(1, 4"), "{}", s.pytorch());
    s.run(150).unwrap();
    let acc = s.progress().unwrap().test_accuracy.unwrap();
    assert!(acc > 0.7, "{acc}");
    let bad = NetSpec {
        layers: Some("conv 4 3, flatten, dense".into()),
        data: "spiral".into(),
        ..NetSpec::default()
    };
    assert!(Session::new(bad).is_err(), "image layers on 2-D points");
}
