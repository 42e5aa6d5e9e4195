//! `--class-weight balanced`: scikit-learn's weights, the weighted losses' gradients against
//! central differences, and the flag through the binary on an imbalanced table.

use crate::common::downhill;
use downhill::loss::{BatchTargets, ClassWeights, Loss, evaluate_weighted};

/// compute_class_weight("balanced", classes=[0, 1, 2], y=[0,0,0,0,0,0,1,1,1,2]) =
/// [0.5555555555555556, 1.1111111111111112, 3.3333333333333335]
/// (`scripts/metrics_golden.py`, scikit-learn 1.9.1; `scripts/requirements-golden.txt`).
#[test]
fn balanced_weights_match_sklearn() {
    let ClassWeights::Classes { weights } =
        ClassWeights::balanced_classes(&[0, 0, 0, 0, 0, 0, 1, 1, 1, 2], 3).unwrap()
    else {
        panic!()
    };
    let want = [0.5555555555555556, 1.1111111111111112, 3.3333333333333335];
    for (a, b) in weights.iter().zip(want) {
        assert!((a - b).abs() < 1e-15, "{weights:?}");
    }
    let e = ClassWeights::balanced_classes(&[0, 0, 2], 3).unwrap_err();
    assert!(e.contains("class 1"), "{e}");
    let ClassWeights::Binary { negative, positive } =
        ClassWeights::balanced_binary(&[1.0, 0.0, 0.0, 0.0], 1).unwrap()
    else {
        panic!()
    };
    assert_eq!((negative, positive), (vec![4.0 / 6.0], vec![2.0]));
    assert!(ClassWeights::balanced_binary(&[1.0, 1.0], 1).is_err());
}

/// The weighted losses' gradients against central differences (f64, h = 1e-6), and their values
/// against the per-example definition (1/n)Σ w_{yᵢ} ℓᵢ.
#[test]
fn gradcheck_weighted_cross_entropy_and_bce() {
    let z = [0.3f64, -1.2, 2.0, 0.7, 0.1, -0.4, 1.5, 0.2, -0.9];
    let (n, k) = (3, 3);
    let classes = [2u32, 0, 2];
    let cw = ClassWeights::Classes {
        weights: vec![0.5, 1.5, 3.0],
    };
    let bits = [1.0f64, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
    let bw = ClassWeights::Binary {
        negative: vec![0.7, 1.1, 0.6],
        positive: vec![1.8, 0.9, 2.5],
    };
    for (loss, t, w) in [
        (Loss::CrossEntropy, BatchTargets::Classes(&classes), &cw),
        (Loss::Bce, BatchTargets::Values(&bits), &bw),
    ] {
        let mut g = [0.0; 9];
        let total = evaluate_weighted(loss, Some(w), &z, n, k, t, Some((&mut g, n as f64)));
        for j in 0..9 {
            let (mut hi, mut lo) = (z, z);
            hi[j] += 1e-6;
            lo[j] -= 1e-6;
            let f = |z: &[f64]| evaluate_weighted(loss, Some(w), z, n, k, t, None);
            let num = (f(&hi) - f(&lo)) / 2e-6 / n as f64;
            assert!(
                (num - g[j]).abs() < 1e-8,
                "{loss:?} z[{j}]: {num} vs {}",
                g[j]
            );
        }
        // The value: Σᵢ w ℓᵢ from the unweighted loss of each row (element for BCE).
        let want: f64 = match (loss, t) {
            (Loss::CrossEntropy, BatchTargets::Classes(y)) => (0..n)
                .map(|i| {
                    [0.5, 1.5, 3.0][y[i] as usize]
                        * loss.evaluate(
                            &z[i * k..(i + 1) * k],
                            1,
                            k,
                            BatchTargets::Classes(&y[i..i + 1]),
                            None,
                        )
                })
                .sum(),
            (_, BatchTargets::Values(y)) => (0..n * k)
                .map(|e| {
                    let j = e % k;
                    let w = if y[e] > 0.5 {
                        [1.8, 0.9, 2.5][j]
                    } else {
                        [0.7, 1.1, 0.6][j]
                    };
                    // One element of BCE over k outputs is ℓ/k.
                    w * Loss::Bce.evaluate(
                        &z[e..e + 1],
                        1,
                        1,
                        BatchTargets::Values(&y[e..e + 1]),
                        None,
                    ) / k as f64
                })
                .sum(),
            _ => unreachable!(),
        };
        assert!((total - want).abs() < 1e-12, "{loss:?}: {total} vs {want}");
    }
}

/// Equal weights c scale the loss and gradient by c.
#[test]
fn uniform_weights_scale_the_loss() {
    let z = [0.3f64, -1.2, 2.0, 0.7];
    let y = [1u32, 0];
    let w = ClassWeights::Classes {
        weights: vec![2.0, 2.0],
    };
    let (mut g1, mut g2) = ([0.0; 4], [0.0; 4]);
    let a = Loss::CrossEntropy.evaluate(&z, 2, 2, BatchTargets::Classes(&y), Some((&mut g1, 2.0)));
    let b = evaluate_weighted(
        Loss::CrossEntropy,
        Some(&w),
        &z,
        2,
        2,
        BatchTargets::Classes(&y),
        Some((&mut g2, 2.0)),
    );
    assert!((b - 2.0 * a).abs() < 1e-14);
    for (x, y) in g1.iter().zip(g2) {
        assert!((2.0 * x - y).abs() < 1e-14);
    }
}

/// An imbalanced table (1 in 10 positive, overlapping): balanced weights raise the minority's
/// recall over the unweighted run; the summary records the weights; every report
/// has macro-F1 and ROC-AUC.
#[test]
fn balanced_through_the_binary_on_an_imbalanced_table() {
    let d = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b,label\n");
    for i in 0..600 {
        let pos = i % 10 == 0;
        let a = ((i * 37) % 101) as f64 / 50.0 - 1.0 + if pos { 0.6 } else { 0.0 };
        let b = ((i * 53) % 97) as f64 / 48.0 - 1.0;
        csv += &format!("{a},{b},{}\n", if pos { "yes" } else { "no" });
    }
    let data = d.path().join("imb.csv");
    std::fs::write(&data, csv).unwrap();
    let run = |extra: &[&str], name: &str| {
        let o = downhill()
            .args([
                "train", "--target", "label", "--hidden", "8", "--epochs", "30", "--json", "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(d.path().join(name))
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let plain = run(&[], "plain");
    let bal = run(&["--class-weight", "balanced"], "bal");
    for s in [&plain, &bal] {
        for part in ["train", "val", "test"] {
            assert!(s[part]["macro_f1"].as_f64().is_some(), "{part}: {s}");
            assert!(s[part]["roc_auc"].as_f64().is_some(), "{part}: {s}");
        }
    }
    let w = bal["class_weights"]["weights"].as_array().unwrap();
    assert_eq!(w.len(), 2);
    // Classes are "no" (≈ 90%) and "yes" (≈ 10%): weights ≈ 0.56 and 5.
    let (w0, w1) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
    assert!(
        (0.5..0.6).contains(&w0) && (4.0..6.0).contains(&w1),
        "{w0} {w1}"
    );
    assert!(plain.get("class_weights").is_none());
    assert_eq!(bal["settings"]["class-weight"], "balanced");
    // The minority class's recall over the whole table (eval): balanced weights raise it.
    let recall = |name: &str| {
        let o = downhill()
            .args(["eval", "--json", "--model"])
            .arg(d.path().join(name).join("model.safetensors"))
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            e["macro_f1"].as_f64().is_some() && e["roc_auc"].as_f64().is_some(),
            "{e}"
        );
        e["recall"][1].as_f64().unwrap()
    };
    let (rp, rb) = (recall("plain"), recall("bal"));
    assert!(
        rb > rp + 0.2,
        "minority recall: balanced {rb} vs plain {rp}"
    );

    // Regression has no classes to weight.
    let mut reg = String::from("x,y\n");
    for i in 0..50 {
        reg += &format!("{i},{}\n", 2 * i);
    }
    std::fs::write(d.path().join("reg.csv"), reg).unwrap();
    let o = downhill()
        .args(["train", "--class-weight", "balanced", "--data"])
        .arg(d.path().join("reg.csv"))
        .arg("--out")
        .arg(d.path().join("r"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("class-weight"));
}
