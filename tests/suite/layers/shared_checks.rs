//! The layers' shared checks (issue 12's restructure): batch norm's one `backward` told its
//! statistics (`BnStats`), pooling's and convolution's one buffer check each — each refusing
//! bad buffers with the buffer named, and each giving what the functions it replaced gave.

use downhill::layers::{AvgPool2d, BatchNorm, BnStats, Conv2d, ImageShape, MaxPool2d, Pool2d};
use downhill::tensor::Beta;

/// Eval-mode backward with the running statistics equals training-mode backward's ∂L/∂γ, ∂L/∂β
/// formulas with those statistics as constants: ∂L/∂x = δy·γ/√(var + ε).
#[test]
fn batchnorm_backward_takes_either_statistics_and_names_short_buffers() {
    let bn = BatchNorm::new(2);
    let (n, s) = (3, 2);
    let x: Vec<f64> = (0..n * 2 * s).map(|i| (i as f64 * 0.37).sin()).collect();
    let dy: Vec<f64> = (0..n * 2 * s).map(|i| (i as f64 * 0.11).cos()).collect();
    let gamma = [1.5, -0.5];
    let (rm, rv) = ([0.1, -0.2], [2.0, 0.5]);
    let (mut dg, mut db, mut dx) = ([0.0; 2], [0.0; 2], vec![0.0; x.len()]);
    let running = BnStats::Running {
        mean: &rm,
        var: &rv,
    };
    bn.backward(
        n,
        s,
        &x,
        &gamma,
        running,
        &dy,
        &mut dg,
        &mut db,
        Some(&mut dx),
        Beta::Replace,
    )
    .unwrap();
    for (i, (&d, &g)) in dx.iter().zip(&dy).enumerate() {
        let c = (i / s) % 2;
        let want = g * gamma[c] / (rv[c] + bn.eps).sqrt();
        assert!((d - want).abs() < 1e-12, "{i}: {d} vs {want}");
    }
    // A saved buffer shorter than 2·C, a running variance shorter than C: named, not a panic.
    let mut backward_err = |stats: BnStats<'_, f64>| {
        bn.backward(
            n,
            s,
            &x,
            &gamma,
            stats,
            &dy,
            &mut dg,
            &mut db,
            None,
            Beta::Add,
        )
        .unwrap_err()
        .to_string()
    };
    let short = [0.0; 3];
    let err = backward_err(BnStats::Saved(&short));
    assert!(
        err.contains("saved statistics") && err.contains("3 elements"),
        "{err}"
    );
    let running = BnStats::Running {
        mean: &rm,
        var: &rv[..1],
    };
    let err = backward_err(running);
    assert!(err.contains("running_var"), "{err}");
}

#[test]
fn pooling_checks_name_each_buffer() {
    let input = ImageShape::new(2, 4, 4);
    let x = vec![1.0f32; 2 * input.len()];
    let (mut y, mut idx) = (vec![0.0f32; 2 * 2 * 4], vec![0u32; 2 * 2 * 4]);
    let pool = MaxPool2d::new(2);
    let err = pool
        .forward_indexed(input, 2, &x, &mut y, &mut idx[..5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("indices") && err.contains("[2, 2, 2, 2]"),
        "{err}"
    );
    let err = pool
        .forward(input, 2, &x[..31], &mut y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input") && err.contains("31 elements"),
        "{err}"
    );
    let mut dx = vec![0.0f32; x.len()];
    let err = pool
        .backward(input, 2, &x, &y, &mut dx[..7])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input gradient") && err.contains("7 elements"),
        "{err}"
    );
    let err = AvgPool2d::new(2)
        .backward(input, 2, &y[..3], &mut dx)
        .unwrap_err()
        .to_string();
    assert!(err.contains("AvgPool2d") && err.contains("output"), "{err}");
    // A recorded index outside its plane is an error, not a write elsewhere.
    pool.forward_indexed(input, 2, &x, &mut y, &mut idx)
        .unwrap();
    idx[0] = 16;
    let err = pool
        .backward_indexed(input, 2, &idx, &y, &mut dx)
        .unwrap_err()
        .to_string();
    assert!(err.contains("index"), "{err}");
}

/// `unfold` then `fold` through the one checked entry: ⟨unfold(x), u⟩ = ⟨x, fold(u)⟩ (fold is
/// unfold's adjoint), at stride 2 with padding (the portable loops) and stride 1 (the vector
/// kernels where the CPU has them); short buffers named.
#[test]
fn unfold_and_fold_are_adjoint_and_checked() {
    for (stride, pad) in [(1, 1), (2, 1), (2, 0)] {
        let conv = Conv2d::new(2, 3, [3, 3], [stride; 2], [pad; 2], true).unwrap();
        let input = ImageShape::new(2, 7, 6);
        let out = conv.output_shape(input).unwrap();
        let kp = 2 * 9 * out.plane();
        let x: Vec<f32> = (0..input.len())
            .map(|i| ((i * 37 % 11) as f32) - 5.0)
            .collect();
        let u: Vec<f32> = (0..kp).map(|i| ((i * 13 % 7) as f32) - 3.0).collect();
        let (mut ux, mut fu) = (vec![0.0f32; kp], vec![9.0f32; input.len()]);
        conv.unfold(input, &x, &mut ux).unwrap();
        conv.fold(input, &u, &mut fu).unwrap();
        let lhs: f64 = ux.iter().zip(&u).map(|(a, b)| (a * b) as f64).sum();
        let rhs: f64 = x.iter().zip(&fu).map(|(a, b)| (a * b) as f64).sum();
        assert_eq!(lhs, rhs, "stride {stride} pad {pad}");
        let err = conv
            .unfold(input, &x, &mut ux[..kp - 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("patch matrix"), "{err}");
        let err = conv.fold(input, &u, &mut fu[..3]).unwrap_err().to_string();
        assert!(err.contains("image") && err.contains("3 elements"), "{err}");
    }
}
