//! The settings resolved once (`settings::Plan`): a bad flag fails before the data is read, and
//! a plan records every default that depends on the data.

use downhill::Loss;
use downhill::data::Task;
use downhill::settings::{DataShape, Settings};

#[test]
fn a_bad_setting_fails_before_the_data_is_read() {
    for (bad, flag) in [
        (
            Settings {
                dropout: 1.0,
                ..Default::default()
            },
            "dropout",
        ),
        (
            Settings {
                optimizer: Some("adam".into()),
                momentum: Some(0.9),
                ..Default::default()
            },
            "momentum",
        ),
        (
            Settings {
                divergence_factor: Some(0.5),
                ..Default::default()
            },
            "divergence-factor",
        ),
    ] {
        let s = Settings {
            data: "/nonexistent/table.csv".into(),
            ..bad
        };
        let e = downhill::run::train(&s, &mut downhill::train::NoObserver)
            .unwrap_err()
            .to_string();
        assert!(e.contains(flag) && !e.contains("nonexistent"), "{e}");
        assert!(s.check().is_err());
    }
}

#[test]
fn a_plan_records_the_defaults_that_depend_on_the_data() {
    let table = DataShape {
        task: Task::Classify,
        n: 150,
        has_validation: true,
        tabular: true,
    };
    let p = Settings::default().plan(table, Loss::CrossEntropy).unwrap();
    assert_eq!(p.settings.optimizer.as_deref(), Some("adam"));
    assert_eq!(p.settings.lr, Some(p.optimizer.lr()));
    assert_eq!(p.settings.epochs, Some(p.train.epochs));
    assert_eq!(p.settings.patience.filter(|&n| n > 0), p.train.patience);
    assert_eq!(p.settings.monitor, Some(p.train.monitor));
    let images = DataShape {
        tabular: false,
        n: 60_000,
        ..table
    };
    let p = Settings::default()
        .plan(images, Loss::CrossEntropy)
        .unwrap();
    assert_eq!(p.settings.optimizer.as_deref(), Some("sgd"));
    assert_eq!(p.settings.momentum, Some(0.9));
    // A plan with --lr auto's rate records it, and its optimiser uses it.
    let p = p.with_lr(0.0123).unwrap();
    assert_eq!((p.settings.lr, p.optimizer.lr()), (Some(0.0123), 0.0123));
    // The checks that need the data: early stopping without a validation split.
    let none = DataShape {
        has_validation: false,
        ..table
    };
    let s = Settings {
        patience: Some(3),
        ..Default::default()
    };
    assert!(s.plan(none, Loss::CrossEntropy).is_err());
}
