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

/// torch.optim.lr_scheduler.OneCycleLR's rate and momentum at every step, from
/// `scripts/one_cycle_golden.py` (torch 2.15; `scripts/requirements-golden.txt`).
#[test]
fn one_cycle_matches_pytorch_one_cycle_lr() {
    /// (schedule, peak rate, steps, PyTorch's rates, PyTorch's momenta)
    type Case<'a> = (&'a str, f64, usize, &'a [f64], &'a [f64]);
    let cases: [Case<'_>; 2] = [
        (
            "one-cycle",
            0.1,
            20,
            &[
                0.0040000000000000036,
                0.013167184270002533,
                0.037167184270002526,
                0.06683281572999747,
                0.09083281572999748,
                0.1,
                0.09874640062350874,
                0.09504846320134738,
                0.089091617757105,
                0.0811745653949763,
                0.07169430017913009,
                0.06112620219362893,
                0.0500002,
                0.03887419780637107,
                0.028306099820869922,
                0.0188258346050237,
                0.010908782242895003,
                0.004951936798652629,
                0.0012539993764912555,
                4e-07,
            ],
            &[
                0.95,
                0.9404508497187474,
                0.9154508497187474,
                0.8845491502812526,
                0.8595491502812526,
                0.85,
                0.8512536043909088,
                0.854951556604879,
                0.8609084258765984,
                0.8688255099070633,
                0.878305813044122,
                0.8888739533021842,
                0.8999999999999999,
                0.9111260466978157,
                0.9216941869558779,
                0.9311744900929366,
                0.9390915741234015,
                0.945048443395121,
                0.9487463956090911,
                0.95,
            ],
        ),
        (
            "one-cycle:0.25",
            2.0,
            7,
            &[
                0.08000000000000007,
                1.9888308709018234,
                1.7330529396223389,
                1.2225240438725786,
                0.6346644369977025,
                0.17376853063910258,
                8e-06,
            ],
            &[
                0.95,
                0.8505584586887436,
                0.8633474064085087,
                0.8888739533021842,
                0.9182670512183198,
                0.9413119387157997,
                0.95,
            ],
        ),
    ];
    for (spec, max_lr, total, lrs, moms) in cases {
        let s: Schedule = spec.parse().unwrap();
        assert!(s.per_step());
        for t in 0..total {
            let (lr, m) = (
                s.step_lr(max_lr, t, total),
                s.step_momentum(t, total).unwrap(),
            );
            assert!(
                (lr - lrs[t]).abs() <= 1e-12 * max_lr,
                "{spec} step {t}: lr {lr} vs {}",
                lrs[t]
            );
            assert!(
                (m - moms[t]).abs() <= 1e-12,
                "{spec} step {t}: momentum {m} vs {}",
                moms[t]
            );
        }
        assert_eq!(s.spec(), spec);
    }
    for bad in [
        "one-cycle:0",
        "one-cycle:1",
        "one-cycle:x",
        "one-cycle:0.3:2",
    ] {
        let e = bad.parse::<Schedule>().unwrap_err().to_string();
        assert!(e.contains("schedule"), "{e}");
    }
}
