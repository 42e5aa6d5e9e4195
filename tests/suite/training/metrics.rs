//! Imbalanced-class metrics against scikit-learn: values from
//! `scripts/metrics_golden.py` (scikit-learn 1.9.1, pinned in `scripts/requirements-golden.txt`).

use downhill::metrics::{classification, roc_auc};

const Y: [u32; 12] = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0];
const S: [f64; 12] = [
    0.1, 0.4, 0.35, 0.8, 0.4, 0.4, -1.0, 2.0, 0.1, 0.1, 0.7, 0.35,
];

/// roc_auc_score(Y, S) = 0.7083333333333334, with ties within and across classes.
#[test]
fn roc_auc_matches_sklearn_with_ties() {
    let pos: Vec<bool> = Y.iter().map(|&y| y == 1).collect();
    let auc = roc_auc(&S, &pos).unwrap();
    assert!((auc - 0.7083333333333334).abs() < 1e-15, "{auc}");
    // Through the classification report: logits (0, s) give the score z₁ − z₀ = s.
    let z: Vec<f64> = S.iter().flat_map(|&s| [0.0, s]).collect();
    let r = classification(&z, 2, &Y);
    assert!((r.roc_auc.unwrap() - 0.7083333333333334).abs() < 1e-15);
    // Undefined with one class.
    assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    // Perfect and reversed rankings.
    assert_eq!(roc_auc(&[0.0, 1.0, 2.0], &[false, true, true]), Some(1.0));
    assert_eq!(roc_auc(&[0.0, 1.0, 2.0], &[true, false, false]), Some(0.0));
    assert_eq!(roc_auc(&[1.0, 1.0], &[true, false]), Some(0.5));
}

/// f1_score(Y, S > 0.3, average='macro') = 0.6571428571428571.
#[test]
fn binary_macro_f1_matches_sklearn() {
    // Logits (0.3, s): class 1 predicted exactly when s > 0.3.
    let z: Vec<f64> = S.iter().flat_map(|&s| [0.3, s]).collect();
    let r = classification(&z, 2, &Y);
    assert!(
        (r.macro_f1 - 0.6571428571428571).abs() < 1e-15,
        "{}",
        r.macro_f1
    );
}

/// Four classes, class 3 never true nor predicted: scikit-learn averages over the three that
/// occur (0.5873015873015873); per class 0.857…, 0.333…, 0.571…, 0.
#[test]
fn multiclass_macro_f1_matches_sklearn_skipping_absent_classes() {
    let t = [0u32, 1, 2, 2, 1, 0, 2, 1, 0, 0];
    let p = [0usize, 2, 2, 1, 1, 0, 2, 2, 1, 0];
    let z: Vec<f64> = p
        .iter()
        .flat_map(|&c| (0..4).map(move |j| if j == c { 1.0 } else { 0.0 }))
        .collect();
    let r = classification(&z, 4, &t);
    assert!(
        (r.macro_f1 - 0.5873015873015873).abs() < 1e-15,
        "{}",
        r.macro_f1
    );
    let want = [
        0.8571428571428571,
        0.3333333333333333,
        0.5714285714285714,
        0.0,
    ];
    for (a, b) in r.f1.iter().zip(want) {
        assert!((a - b).abs() < 1e-15, "{:?}", r.f1);
    }
    assert_eq!(r.roc_auc, None);
}
