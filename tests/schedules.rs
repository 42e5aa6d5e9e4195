//! Learning rates of the first epochs of each schedule, against the formulas in
//! `optim/schedule.rs` (PyTorch's StepLR, ExponentialLR, CosineAnnealingLR with eta_min = 0).

use downhill::optim::Schedule;

fn lrs(spec: &str, warmup: usize, epochs: usize) -> Vec<f64> {
    let s: Schedule = spec.parse::<Schedule>().unwrap().with_warmup(warmup);
    (0..epochs).map(|e| s.lr(0.1, e, epochs)).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-15, "{a:?} vs {b:?}");
    }
}

#[test]
fn constant_step_exp_inv_time() {
    close(&lrs("constant", 0, 3), &[0.1, 0.1, 0.1]);
    close(&lrs("step:2:0.1", 0, 5), &[0.1, 0.1, 0.01, 0.01, 0.001]);
    close(&lrs("exp:0.5", 0, 4), &[0.1, 0.05, 0.025, 0.0125]);
    close(&lrs("inv-time:1", 0, 4), &[0.1, 0.05, 0.1 / 3.0, 0.025]);
}

#[test]
fn cosine_over_the_run() {
    // T = 4 epochs: η₀(1 + cos(πt/4))/2 for t = 0..3.
    let want: Vec<f64> = (0..4)
        .map(|t| 0.1 * (1.0 + (std::f64::consts::PI * t as f64 / 4.0).cos()) / 2.0)
        .collect();
    close(&lrs("cosine", 0, 4), &want);
    assert!((lrs("cosine", 0, 4)[2] - 0.05).abs() < 1e-15);
}

#[test]
fn warmup_in_front_of_any_schedule() {
    // W = 3: 0.1·1/4, 0.1·2/4, 0.1·3/4, then the decay from t = 0.
    close(&lrs("constant", 3, 5), &[0.025, 0.05, 0.075, 0.1, 0.1]);
    close(&lrs("exp:0.5", 3, 5), &[0.025, 0.05, 0.075, 0.1, 0.05]);
    close(&lrs("step:1:0.1", 1, 3), &[0.05, 0.1, 0.01]);
}

#[test]
fn bad_specs_name_the_accepted_forms() {
    for bad in [
        "linear",
        "step:0:0.5",
        "step:2",
        "exp:-1",
        "exp:x",
        "inv-time:-2",
    ] {
        let e = bad.parse::<Schedule>().unwrap_err().to_string();
        assert!(
            e.contains("schedule") && e.contains("step:EVERY:GAMMA"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn spec_round_trips() {
    for spec in [
        "constant",
        "step:3:0.5",
        "exp:0.9",
        "cosine",
        "inv-time:0.1",
    ] {
        assert_eq!(spec.parse::<Schedule>().unwrap().spec(), spec);
    }
}
