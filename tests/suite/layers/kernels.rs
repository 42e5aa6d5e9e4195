//! The vision kernels (Conv2d, MaxPool2d, AvgPool2d, BatchNorm) checked against two independent
//! references:
//! - central finite differences in f64 (h = 1e-5, relative error ≤ 1e-6 as in
//!   `layers::gradcheck`, |g − n| / max(|g|, |n|, 1e-4)), for the loss L = Σ y ⊙ r with a
//!   fixed r;
//! - PyTorch: golden values printed by scripts/torch_vision_golden.py (torch 2.15.0, float64,
//!   the version is in the generated file's header), ≤ 1e-10 in f64 and ≤ 1e-5 in f32.
//!
//! Inputs are formulas (`seq`), the same as the script's.

#[rustfmt::skip]
#[allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]
mod golden;

use downhill::layers::pool::PoolWindow;
use downhill::layers::{
    AvgPool2d, BatchNorm, BnForward, BnStats, Conv2d, ConvBackward, ConvForward, ImageShape,
    MaxPool2d, Pool2d, RunningStats,
};
use downhill::tensor::{Beta, Scalar, Threads};
use golden as g;

const H: f64 = 1e-5;
const BOUND: f64 = 1e-6;

/// sin(a·i + b), the script's `seq`.
fn seq<T: Scalar>(n: usize, a: f64, b: f64) -> Vec<T> {
    (0..n).map(|i| T::c((a * i as f64 + b).sin())).collect()
}

/// `((i·mul) mod m)`, the script's `ties`: inputs with many equal values.
fn ties<T: Scalar>(n: usize, mul: usize, m: usize) -> Vec<T> {
    (0..n).map(|i| T::c(((i * mul) % m) as f64)).collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-4)
}

/// Max relative error between a backpropagated gradient and the central difference of `loss`
/// with respect to every entry of `at`.
fn check_grad(what: &str, at: &[f64], grad: &[f64], loss: impl Fn(&[f64]) -> f64) {
    assert_eq!(at.len(), grad.len(), "{what}: gradient length");
    let mut p = at.to_vec();
    let mut worst = (0.0, 0);
    for i in 0..p.len() {
        let v = p[i];
        p[i] = v + H;
        let up = loss(&p);
        p[i] = v - H;
        let down = loss(&p);
        p[i] = v;
        let e = rel(grad[i], (up - down) / (2.0 * H));
        if e > worst.0 {
            worst = (e, i);
        }
    }
    assert!(
        worst.0 <= BOUND,
        "{what}: relative error {:e} at entry {} (backprop {}, numerical)",
        worst.0,
        worst.1,
        grad[worst.1]
    );
}

fn dot(y: &[f64], r: &[f64]) -> f64 {
    y.iter().zip(r).map(|(a, b)| a * b).sum()
}

fn assert_close<T: Scalar>(what: &str, got: &[T], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a.f64() - b).abs() <= tol * b.abs().max(1.0),
            "{what}[{i}]: {a} vs PyTorch {b} (tolerance {tol:e})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Conv2d

struct ConvCase {
    name: &'static str,
    n: usize,
    conv: Conv2d,
    input: ImageShape,
}

#[allow(clippy::too_many_arguments)]
fn conv_case(
    name: &'static str,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    bias: bool,
) -> ConvCase {
    ConvCase {
        name,
        n,
        conv: Conv2d::new(c, o, k, s, p, bias).unwrap(),
        input: ImageShape::new(c, h, w),
    }
}

/// The script's CONV list.
fn conv_cases() -> Vec<ConvCase> {
    vec![
        conv_case("C1 3×3", 2, 2, 5, 6, 3, [3, 3], [1, 1], [0, 0], true),
        conv_case(
            "C2 stride 2 pad 1",
            2,
            2,
            7,
            5,
            2,
            [3, 3],
            [2, 2],
            [1, 1],
            true,
        ),
        conv_case(
            "C3 5×5 pad 2 > image",
            1,
            1,
            4,
            6,
            2,
            [5, 5],
            [1, 1],
            [2, 2],
            true,
        ),
        conv_case(
            "C4 kernel = image",
            2,
            3,
            3,
            4,
            2,
            [3, 4],
            [1, 1],
            [0, 0],
            false,
        ),
        conv_case("C5 1×1", 2, 3, 3, 3, 2, [1, 1], [1, 1], [0, 0], true),
        conv_case(
            "C6 2×3 stride 2×1 pad 1×0",
            1,
            2,
            6,
            5,
            3,
            [2, 3],
            [2, 1],
            [1, 0],
            true,
        ),
        conv_case("C7 O > K", 2, 1, 5, 4, 5, [2, 2], [1, 1], [0, 0], true),
        conv_case("C8 1×1 O > K", 2, 2, 3, 2, 3, [1, 1], [1, 1], [0, 0], false),
    ]
}

struct ConvRun<T> {
    y: Vec<T>,
    dx: Vec<T>,
    dw: Vec<T>,
    db: Vec<T>,
}

/// Forward and backward of a case on the script's inputs, by im2col (`direct` false) or by the
/// direct loops.
fn run_conv<T: Scalar>(case: &ConvCase, x: &[T], w: &[T], b: &[T], direct: bool) -> ConvRun<T> {
    run_conv_as(case, (x, w, b), direct, true, &[Beta::Replace])
}

/// [`run_conv`] with ∂X asked or not (`dx` empty when not: a first layer's backward), and the
/// backward run once per entry of `betas` into the same ∂W and ∂b.
fn run_conv_as<T: Scalar>(
    case: &ConvCase,
    (x, w, b): (&[T], &[T], &[T]),
    direct: bool,
    want_dx: bool,
    betas: &[Beta],
) -> ConvRun<T> {
    let (conv, input, n) = (&case.conv, case.input, case.n);
    let out = conv.output_shape(input).unwrap();
    let mut y = vec![T::nan(); n * out.len()];
    let mut scratch = vec![T::nan(); conv.scratch_len(input).unwrap()];
    let pass = ConvForward {
        input,
        n,
        x,
        w,
        b,
        y: &mut y,
    };
    if direct {
        conv.forward_direct(pass)
    } else {
        conv.forward(pass, &mut scratch, Threads::ONE)
    }
    .unwrap();
    let r: Vec<T> = seq(y.len(), 0.53, 0.7);
    let mut dx = vec![T::nan(); if want_dx { x.len() } else { 0 }];
    let mut dw = vec![T::nan(); w.len()];
    let mut db = vec![T::nan(); b.len()];
    for &beta in betas {
        let pass = ConvBackward {
            dy: &r,
            input,
            n,
            x,
            w,
            dw: &mut dw,
            db: &mut db,
            dx: want_dx.then_some(&mut dx[..]),
            beta,
        };
        if direct {
            conv.backward_direct(pass)
        } else {
            conv.backward(pass, &mut scratch, Threads::ONE)
        }
        .unwrap();
    }
    ConvRun { y, dx, dw, db }
}

fn conv_inputs<T: Scalar>(case: &ConvCase) -> (Vec<T>, Vec<T>, Vec<T>) {
    let x = seq(case.n * case.input.len(), 0.37, 0.1);
    let w: Vec<T> = seq::<f64>(case.conv.weight_len(), 0.71, 0.3)
        .into_iter()
        .map(|v| T::c(0.5 * v))
        .collect();
    let b: Vec<T> = seq::<f64>(case.conv.bias_len(), 1.1, 0.5)
        .into_iter()
        .map(|v| T::c(0.1 * v))
        .collect();
    (x, w, b)
}

#[test]
fn conv_gradients_match_finite_differences() {
    for case in conv_cases() {
        for direct in [false, true] {
            let (x, w, b) = conv_inputs::<f64>(&case);
            let run = run_conv(&case, &x, &w, &b, direct);
            let r = seq::<f64>(run.y.len(), 0.53, 0.7);
            let loss = |x: &[f64], w: &[f64], b: &[f64]| {
                let mut y = vec![0.0; run.y.len()];
                case.conv
                    .forward_direct(ConvForward {
                        input: case.input,
                        n: case.n,
                        x,
                        w,
                        b,
                        y: &mut y,
                    })
                    .unwrap();
                dot(&y, &r)
            };
            let name = format!("{} (direct: {direct})", case.name);
            check_grad(&format!("{name} ∂X"), &x, &run.dx, |p| loss(p, &w, &b));
            check_grad(&format!("{name} ∂W"), &w, &run.dw, |p| loss(&x, p, &b));
            check_grad(&format!("{name} ∂b"), &b, &run.db, |p| loss(&x, &w, p));
        }
    }
}

#[test]
#[allow(clippy::type_complexity)]
fn conv_matches_pytorch_in_f64_and_f32() {
    let golden: [(&[f64], &[f64], &[f64], &[f64]); 8] = [
        (g::C1_Y, g::C1_DX, g::C1_DW, g::C1_DB),
        (g::C2_Y, g::C2_DX, g::C2_DW, g::C2_DB),
        (g::C3_Y, g::C3_DX, g::C3_DW, g::C3_DB),
        (g::C4_Y, g::C4_DX, g::C4_DW, &[]),
        (g::C5_Y, g::C5_DX, g::C5_DW, g::C5_DB),
        (g::C6_Y, g::C6_DX, g::C6_DW, g::C6_DB),
        (g::C7_Y, g::C7_DX, g::C7_DW, g::C7_DB),
        (g::C8_Y, g::C8_DX, g::C8_DW, &[]),
    ];
    for (case, (y, dx, dw, db)) in conv_cases().iter().zip(golden) {
        for direct in [false, true] {
            let name = format!("{} (direct: {direct})", case.name);
            let (x, w, b) = conv_inputs::<f64>(case);
            let run = run_conv(case, &x, &w, &b, direct);
            assert_close(&format!("{name} f64 Y"), &run.y, y, 1e-10);
            assert_close(&format!("{name} f64 ∂X"), &run.dx, dx, 1e-10);
            assert_close(&format!("{name} f64 ∂W"), &run.dw, dw, 1e-10);
            assert_close(&format!("{name} f64 ∂b"), &run.db, db, 1e-10);
            let (x, w, b) = conv_inputs::<f32>(case);
            let run = run_conv(case, &x, &w, &b, direct);
            assert_close(&format!("{name} f32 Y"), &run.y, y, 1e-5);
            assert_close(&format!("{name} f32 ∂X"), &run.dx, dx, 1e-5);
            assert_close(&format!("{name} f32 ∂W"), &run.dw, dw, 1e-5);
            assert_close(&format!("{name} f32 ∂b"), &run.db, db, 1e-5);
        }
    }
}

#[test]
fn conv_backward_accumulates_with_beta_add_and_skips_dx() {
    for case in conv_cases() {
        let (x, w, b) = conv_inputs::<f64>(&case);
        let once = run_conv(&case, &x, &w, &b, false);
        let (input, n) = (case.input, case.n);
        let mut scratch = vec![0.0; case.conv.scratch_len(input).unwrap()];
        let mut dw = once.dw.clone();
        let mut db = once.db.clone();
        let r = seq::<f64>(once.y.len(), 0.53, 0.7);
        for direct in [false, true] {
            let pass = ConvBackward {
                dy: &r,
                input,
                n,
                x: &x,
                w: &w,
                dw: &mut dw,
                db: &mut db,
                dx: None,
                beta: Beta::Add,
            };
            if direct {
                case.conv.backward_direct(pass)
            } else {
                case.conv.backward(pass, &mut scratch, Threads::ONE)
            }
            .unwrap();
        }
        let three: Vec<f64> = once.dw.iter().map(|v| 3.0 * v).collect();
        assert_close(case.name, &dw, &three, 1e-12);
        let three: Vec<f64> = once.db.iter().map(|v| 3.0 * v).collect();
        assert_close(case.name, &db, &three, 1e-12);
    }
}

/// The two routes at a size where the GEMM is blocked (more than one kernel tile).
#[test]
fn conv_routes_agree_at_training_shapes() {
    let cases = [
        conv_case(
            "8→16 3×3 pad 1 on 14×13",
            3,
            8,
            14,
            13,
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            true,
        ),
        conv_case(
            "Keras conv1 1→32 3×3 on 28×28",
            3,
            1,
            28,
            28,
            32,
            [3, 3],
            [1, 1],
            [0, 0],
            true,
        ),
    ];
    for case in cases {
        let (x, w, b) = conv_inputs::<f64>(&case);
        let a = run_conv(&case, &x, &w, &b, false);
        let d = run_conv(&case, &x, &w, &b, true);
        assert_close(&format!("{} Y", case.name), &a.y, &d.y, 1e-12);
        assert_close(&format!("{} ∂X", case.name), &a.dx, &d.dx, 1e-12);
        assert_close(&format!("{} ∂W", case.name), &a.dw, &d.dw, 1e-12);
        assert_close(&format!("{} ∂b", case.name), &a.db, &d.db, 1e-12);
    }
}

#[test]
fn conv_shape_errors_print_the_shapes() {
    let conv = Conv2d::new(3, 8, [5, 5], [1, 1], [0, 0], true).unwrap();
    let err = conv
        .output_shape(ImageShape::new(1, 28, 28))
        .unwrap_err()
        .to_string();
    assert!(err.contains("3×H×W") && err.contains("1×28×28"), "{err}");
    let err = conv
        .output_shape(ImageShape::new(3, 4, 28))
        .unwrap_err()
        .to_string();
    assert!(err.contains("5×5") && err.contains("3×4×28"), "{err}");
    let input = ImageShape::new(3, 6, 6);
    let mut y = vec![0.0f32; 2 * 8 * 2 * 2 - 1];
    let mut scratch = vec![0.0f32; conv.scratch_len(input).unwrap()];
    let x = vec![0.0f32; 2 * input.len()];
    let w = vec![0.0f32; conv.weight_len()];
    let err = conv
        .forward(
            ConvForward {
                input,
                n: 2,
                x: &x,
                w: &w,
                b: &[0.0; 8],
                y: &mut y,
            },
            &mut scratch,
            Threads::ONE,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 8, 2, 2]") && err.contains("63 elements"),
        "{err}"
    );
    let err = conv
        .forward(
            ConvForward {
                input,
                n: 3,
                x: &x,
                w: &w,
                b: &[0.0; 8],
                y: &mut y,
            },
            &mut scratch,
            Threads::ONE,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[3, 3, 6, 6]") && err.contains("input"),
        "{err}"
    );
    let err = Conv2d::new(1, 1, [0, 3], [1, 1], [0, 0], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("kernel height"), "{err}");
    let err = Conv2d::new(1, 1, [3, 3], [1, 0], [0, 0], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("stride width"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Pooling

fn window(k: [usize; 2], s: [usize; 2], p: [usize; 2]) -> PoolWindow {
    PoolWindow {
        kernel: k,
        stride: s,
        padding: p,
    }
}

/// The script's MAX list: (name, n, shape, window, ties (mul, mod) or sin).
#[allow(clippy::type_complexity)]
fn max_cases() -> Vec<(
    &'static str,
    usize,
    ImageShape,
    PoolWindow,
    Option<(usize, usize)>,
)> {
    vec![
        (
            "M1 2×2",
            1,
            ImageShape::new(2, 4, 5),
            window([2, 2], [2, 2], [0, 0]),
            Some((7, 5)),
        ),
        (
            "M2 3×3 s2 p1",
            2,
            ImageShape::new(1, 5, 5),
            window([3, 3], [2, 2], [1, 1]),
            Some((7, 5)),
        ),
        (
            "M3 3×3 s1 overlap",
            1,
            ImageShape::new(2, 4, 4),
            window([3, 3], [1, 1], [0, 0]),
            Some((3, 4)),
        ),
        (
            "M4 2×3 s1×2 p1",
            1,
            ImageShape::new(2, 5, 6),
            window([2, 3], [1, 2], [1, 1]),
            None,
        ),
    ]
}

/// The script's AVG list.
fn avg_cases() -> Vec<(&'static str, usize, ImageShape, PoolWindow)> {
    vec![
        (
            "A1 2×2",
            1,
            ImageShape::new(2, 4, 5),
            window([2, 2], [2, 2], [0, 0]),
        ),
        (
            "A2 3×3 s2 p1",
            2,
            ImageShape::new(1, 5, 5),
            window([3, 3], [2, 2], [1, 1]),
        ),
        (
            "A3 2×3 s1×2 p1",
            1,
            ImageShape::new(2, 5, 6),
            window([2, 3], [1, 2], [1, 1]),
        ),
    ]
}

fn max_run<T: Scalar>(pool: MaxPool2d, input: ImageShape, n: usize, x: &[T]) -> (Vec<T>, Vec<T>) {
    let out = pool.output_shape(input).unwrap();
    let mut y = vec![T::nan(); n * out.len()];
    pool.forward(input, n, x, &mut y).unwrap();
    let r = seq::<T>(y.len(), 0.53, 0.7);
    let mut dx = vec![T::nan(); x.len()];
    pool.backward(input, n, x, &r, &mut dx).unwrap();
    (y, dx)
}

fn avg_run<T: Scalar>(pool: AvgPool2d, input: ImageShape, n: usize, x: &[T]) -> (Vec<T>, Vec<T>) {
    let out = pool.output_shape(input).unwrap();
    let mut y = vec![T::nan(); n * out.len()];
    pool.forward(input, n, x, &mut y).unwrap();
    let r = seq::<T>(y.len(), 0.53, 0.7);
    let mut dx = vec![T::nan(); x.len()];
    pool.backward(input, n, &r, &mut dx).unwrap();
    (y, dx)
}

#[test]
fn pooling_gradients_match_finite_differences() {
    // Distinct inputs (no ties within h), every window shape of the golden cases plus a window
    // as large as the image.
    let mut windows: Vec<(ImageShape, PoolWindow)> =
        max_cases().into_iter().map(|c| (c.2, c.3)).collect();
    windows.push((ImageShape::new(2, 3, 4), window([3, 4], [1, 1], [0, 0])));
    windows.push((ImageShape::new(2, 5, 7), PoolWindow::square(2)));
    windows.push((ImageShape::new(1, 7, 3), window([3, 2], [3, 1], [1, 1])));
    for (input, win) in windows {
        let n = 2;
        let x: Vec<f64> = seq(n * input.len(), 0.37, 0.1);
        let (y, dx) = max_run(MaxPool2d(win), input, n, &x);
        let r = seq::<f64>(y.len(), 0.53, 0.7);
        check_grad(&format!("MaxPool2d({win}) on {input}"), &x, &dx, |p| {
            let mut y = vec![0.0; r.len()];
            MaxPool2d(win).forward(input, n, p, &mut y).unwrap();
            dot(&y, &r)
        });
        let (y, dx) = avg_run(AvgPool2d(win), input, n, &x);
        let r = seq::<f64>(y.len(), 0.53, 0.7);
        check_grad(&format!("AvgPool2d({win}) on {input}"), &x, &dx, |p| {
            let mut y = vec![0.0; r.len()];
            AvgPool2d(win).forward(input, n, p, &mut y).unwrap();
            dot(&y, &r)
        });
    }
}

#[test]
fn max_pooling_matches_pytorch_including_ties() {
    let golden: [(&[f64], &[f64]); 4] = [
        (g::M1_Y, g::M1_DX),
        (g::M2_Y, g::M2_DX),
        (g::M3_Y, g::M3_DX),
        (g::M4_Y, g::M4_DX),
    ];
    for ((name, n, input, win, src), (y, dx)) in max_cases().into_iter().zip(golden) {
        let len = n * input.len();
        let x: Vec<f64> = match src {
            Some((mul, m)) => ties(len, mul, m),
            None => seq(len, 0.37, 0.1),
        };
        let (got_y, got_dx) = max_run(MaxPool2d(win), input, n, &x);
        assert_close(&format!("{name} f64 Y"), &got_y, y, 1e-10);
        assert_close(&format!("{name} f64 ∂X"), &got_dx, dx, 1e-10);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (got_y, got_dx) = max_run(MaxPool2d(win), input, n, &x32);
        assert_close(&format!("{name} f32 Y"), &got_y, y, 1e-5);
        assert_close(&format!("{name} f32 ∂X"), &got_dx, dx, 1e-5);
    }
}

#[test]
fn max_pooling_tie_goes_to_the_first_maximum() {
    let pool = MaxPool2d::new(2);
    let input = ImageShape::new(1, 2, 2);
    let mut dx = [0.0f64; 4];
    pool.backward(input, 1, &[1.0, 4.0, 4.0, 4.0], &[1.0], &mut dx)
        .unwrap();
    assert_eq!(dx, [0.0, 1.0, 0.0, 0.0]);
    // All −∞: the first pixel of the window, as PyTorch.
    let x = [f64::NEG_INFINITY; 4];
    pool.backward(input, 1, &x, &[1.0], &mut dx).unwrap();
    assert_eq!(dx, [1.0, 0.0, 0.0, 0.0]);
    // A NaN propagates (PyTorch: a NaN always replaces the running maximum).
    let mut y = [0.0f64];
    pool.forward(input, 1, &[1.0, f64::NAN, 5.0, 2.0], &mut y)
        .unwrap();
    assert!(y[0].is_nan());
    // With several NaNs the last one gets the gradient, in the 2×2 fast path and the general one
    // (checked with torch 2.15: max_pool2d of [[1, nan], [5, nan]] sends the gradient to [1][1]).
    let nan = f64::NAN;
    pool.backward(input, 1, &[1.0, nan, 5.0, nan], &[1.0], &mut dx)
        .unwrap();
    assert_eq!(dx, [0.0, 0.0, 0.0, 1.0]);
    pool.backward(input, 1, &[nan, 1.0, 5.0, 2.0], &[1.0], &mut dx)
        .unwrap();
    assert_eq!(dx, [1.0, 0.0, 0.0, 0.0]);
    let general = MaxPool2d(window([3, 3], [1, 1], [1, 1]));
    general
        .backward(input, 1, &[1.0, nan, 5.0, nan], &[1.0; 4], &mut dx)
        .unwrap();
    assert_eq!(dx, [0.0, 0.0, 0.0, 4.0]);
    general
        .backward(input, 1, &[nan, 1.0, 5.0, 2.0], &[1.0; 4], &mut dx)
        .unwrap();
    assert_eq!(dx, [4.0, 0.0, 0.0, 0.0]);
}

#[test]
fn avg_pooling_matches_pytorch() {
    let golden: [(&[f64], &[f64]); 3] = [
        (g::A1_Y, g::A1_DX),
        (g::A2_Y, g::A2_DX),
        (g::A3_Y, g::A3_DX),
    ];
    for ((name, n, input, win), (y, dx)) in avg_cases().into_iter().zip(golden) {
        let x: Vec<f64> = seq(n * input.len(), 0.37, 0.1);
        let (got_y, got_dx) = avg_run(AvgPool2d(win), input, n, &x);
        assert_close(&format!("{name} f64 Y"), &got_y, y, 1e-10);
        assert_close(&format!("{name} f64 ∂X"), &got_dx, dx, 1e-10);
        let x32: Vec<f32> = seq(n * input.len(), 0.37, 0.1);
        let (got_y, got_dx) = avg_run(AvgPool2d(win), input, n, &x32);
        assert_close(&format!("{name} f32 Y"), &got_y, y, 1e-5);
        assert_close(&format!("{name} f32 ∂X"), &got_dx, dx, 1e-5);
    }
}

#[test]
fn pooling_shape_errors_print_the_shapes() {
    let err = MaxPool2d::new(3)
        .output_shape(ImageShape::new(4, 2, 9))
        .unwrap_err()
        .to_string();
    assert!(err.contains("4×2×9") && err.contains("3×3"), "{err}");
    let err = AvgPool2d(window([2, 2], [2, 2], [2, 0]))
        .output_shape(ImageShape::new(1, 8, 8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("half the kernel"), "{err}");
    let err = MaxPool2d(window([2, 2], [0, 2], [0, 0]))
        .output_shape(ImageShape::new(1, 8, 8))
        .unwrap_err()
        .to_string();
    assert!(err.contains("stride height"), "{err}");
    let input = ImageShape::new(2, 4, 4);
    let mut y = vec![0.0f32; 2 * 2 * 2 * 2];
    let err = MaxPool2d::new(2)
        .forward(input, 3, &vec![0.0; 3 * 32], &mut y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[3, 2, 2, 2]") && err.contains("output"),
        "{err}"
    );
    let mut dx = vec![0.0f32; 5];
    let err = AvgPool2d::new(2)
        .backward(input, 2, &y, &mut dx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 2, 4, 4]") && err.contains("5 elements"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// BatchNorm

/// The script's BN list: (name, channels, batch size, spatial size).
const BN_CASES: [(&str, usize, usize, usize); 2] =
    [("B1 1d [4, 3]", 3, 4, 1), ("B2 2d [3, 2, 2, 3]", 2, 3, 6)];

fn bn_params<T: Scalar>(c: usize) -> (Vec<T>, Vec<T>) {
    let gamma = seq::<f64>(c, 0.9, 0.4)
        .iter()
        .map(|v| T::c(1.0 + 0.2 * v))
        .collect();
    let beta = seq::<f64>(c, 1.3, 0.2)
        .iter()
        .map(|v| T::c(0.1 * v))
        .collect();
    (gamma, beta)
}

/// One [`BnForward`] from `(n, spatial)`, the input and the affine γ, β, and the output.
fn bn_pass<'a, T>(
    (n, spatial): (usize, usize),
    (x, gamma, beta): (&'a [T], &'a [T], &'a [T]),
    y: &'a mut [T],
) -> BnForward<'a, T> {
    BnForward {
        n,
        spatial,
        x,
        gamma,
        beta,
        y,
    }
}

/// [`BatchNorm::forward_train`] with its buffers in PyTorch's order: as [`bn_pass`], with the
/// running mean, variance and batch count before the output, and the saved statistics last.
fn train_bn<T: Scalar>(
    bn: &BatchNorm,
    shape: (usize, usize),
    io: (&[T], &[T], &[T]),
    (mean, var, num_batches_tracked): (&mut [T], &mut [T], &mut i64),
    y: &mut [T],
    saved: &mut [T],
) -> downhill::Result<()> {
    let running = RunningStats {
        mean,
        var,
        num_batches_tracked,
    };
    bn.forward_train(bn_pass(shape, io, y), running, saved)
}

/// [`BatchNorm::forward_eval`] with its buffers in the order of [`train_bn`].
fn eval_bn<T: Scalar>(
    bn: &BatchNorm,
    shape: (usize, usize),
    io: (&[T], &[T], &[T]),
    (mean, var): (&[T], &[T]),
    y: &mut [T],
) -> downhill::Result<()> {
    bn.forward_eval(bn_pass(shape, io, y), mean, var)
}

fn bn_train_input<T: Scalar>(len: usize, step: usize) -> Vec<T> {
    let (a, b) = [(0.37, 0.1), (0.61, 1.7)][step];
    seq::<f64>(len, a, b)
        .iter()
        .map(|v| T::c(2.0 * v + 0.5))
        .collect()
}

#[test]
fn batchnorm_gradients_match_finite_differences() {
    for (name, c, n, s) in BN_CASES {
        let bn = BatchNorm::new(c);
        let len = n * c * s;
        let (gamma, beta) = bn_params::<f64>(c);
        let x: Vec<f64> = bn_train_input(len, 0);
        let r = seq::<f64>(len, 0.53, 0.7);
        let train_loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let (mut rm, mut rv, mut t) = (vec![0.0; c], vec![1.0; c], 0);
            let (mut y, mut saved) = (vec![0.0; len], vec![0.0; bn.saved_len()]);
            train_bn(
                &bn,
                (n, s),
                (x, gamma, beta),
                (&mut rm, &mut rv, &mut t),
                &mut y,
                &mut saved,
            )
            .unwrap();
            dot(&y, &r)
        };
        let (mut rm, mut rv, mut t) = (vec![0.0; c], vec![1.0; c], 0);
        let (mut y, mut saved) = (vec![0.0; len], vec![0.0; bn.saved_len()]);
        let (io, running) = (
            (&x[..], &gamma[..], &beta[..]),
            (&mut rm[..], &mut rv[..], &mut t),
        );
        train_bn(&bn, (n, s), io, running, &mut y, &mut saved).unwrap();
        let (mut dx, mut dg, mut db) = (vec![0.0; len], vec![0.0; c], vec![0.0; c]);
        bn.backward(
            n,
            s,
            &x,
            &gamma,
            BnStats::Saved(&saved),
            &r,
            &mut dg,
            &mut db,
            Some(&mut dx),
            Beta::Replace,
        )
        .unwrap();
        check_grad(&format!("{name} train ∂x"), &x, &dx, |p| {
            train_loss(p, &gamma, &beta)
        });
        check_grad(&format!("{name} train ∂γ"), &gamma, &dg, |p| {
            train_loss(&x, p, &beta)
        });
        check_grad(&format!("{name} train ∂β"), &beta, &db, |p| {
            train_loss(&x, &gamma, p)
        });

        // Eval mode, at running statistics that are not (0, 1).
        let rm: Vec<f64> = seq(c, 0.8, 0.3);
        let rv: Vec<f64> = seq::<f64>(c, 0.5, 0.9).iter().map(|v| 1.5 + v).collect();
        let eval_loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let mut y = vec![0.0; len];
            eval_bn(&bn, (n, s), (x, gamma, beta), (&rm, &rv), &mut y).unwrap();
            dot(&y, &r)
        };
        bn.backward(
            n,
            s,
            &x,
            &gamma,
            BnStats::Running {
                mean: &rm,
                var: &rv,
            },
            &r,
            &mut dg,
            &mut db,
            Some(&mut dx),
            Beta::Replace,
        )
        .unwrap();
        check_grad(&format!("{name} eval ∂x"), &x, &dx, |p| {
            eval_loss(p, &gamma, &beta)
        });
        check_grad(&format!("{name} eval ∂γ"), &gamma, &dg, |p| {
            eval_loss(&x, p, &beta)
        });
        check_grad(&format!("{name} eval ∂β"), &beta, &db, |p| {
            eval_loss(&x, &gamma, p)
        });
    }
}

fn batchnorm_against_pytorch<T: Scalar>(tol: f64) {
    #[allow(clippy::type_complexity)]
    let golden: [([[&[f64]; 4]; 2], &[f64], &[f64], i64, [&[f64]; 4]); 2] = [
        (
            [
                [
                    g::B1_TRAIN1_Y,
                    g::B1_TRAIN1_DX,
                    g::B1_TRAIN1_DGAMMA,
                    g::B1_TRAIN1_DBETA,
                ],
                [
                    g::B1_TRAIN2_Y,
                    g::B1_TRAIN2_DX,
                    g::B1_TRAIN2_DGAMMA,
                    g::B1_TRAIN2_DBETA,
                ],
            ],
            g::B1_RUNNING_MEAN,
            g::B1_RUNNING_VAR,
            g::B1_NUM_BATCHES_TRACKED,
            [
                g::B1_EVAL_Y,
                g::B1_EVAL_DX,
                g::B1_EVAL_DGAMMA,
                g::B1_EVAL_DBETA,
            ],
        ),
        (
            [
                [
                    g::B2_TRAIN1_Y,
                    g::B2_TRAIN1_DX,
                    g::B2_TRAIN1_DGAMMA,
                    g::B2_TRAIN1_DBETA,
                ],
                [
                    g::B2_TRAIN2_Y,
                    g::B2_TRAIN2_DX,
                    g::B2_TRAIN2_DGAMMA,
                    g::B2_TRAIN2_DBETA,
                ],
            ],
            g::B2_RUNNING_MEAN,
            g::B2_RUNNING_VAR,
            g::B2_NUM_BATCHES_TRACKED,
            [
                g::B2_EVAL_Y,
                g::B2_EVAL_DX,
                g::B2_EVAL_DGAMMA,
                g::B2_EVAL_DBETA,
            ],
        ),
    ];
    for ((name, c, n, s), (train, mean, var, tracked, eval)) in BN_CASES.into_iter().zip(golden) {
        let bn = BatchNorm::new(c);
        let len = n * c * s;
        let (gamma, beta) = bn_params::<T>(c);
        let r = seq::<T>(len, 0.53, 0.7);
        let (mut rm, mut rv, mut t) = (vec![T::zero(); c], vec![T::one(); c], 0i64);
        let (mut y, mut saved) = (vec![T::nan(); len], vec![T::nan(); bn.saved_len()]);
        let (mut dx, mut dg, mut db) = (vec![T::nan(); len], vec![T::nan(); c], vec![T::nan(); c]);
        for (step, [gy, gdx, gdg, gdb]) in train.into_iter().enumerate() {
            let x = bn_train_input::<T>(len, step);
            let (io, running) = (
                (&x[..], &gamma[..], &beta[..]),
                (&mut rm[..], &mut rv[..], &mut t),
            );
            train_bn(&bn, (n, s), io, running, &mut y, &mut saved).unwrap();
            bn.backward(
                n,
                s,
                &x,
                &gamma,
                BnStats::Saved(&saved),
                &r,
                &mut dg,
                &mut db,
                Some(&mut dx),
                Beta::Replace,
            )
            .unwrap();
            let what = format!("{name} {} train step {}", T::DTYPE, step + 1);
            assert_close(&format!("{what} y"), &y, gy, tol);
            assert_close(&format!("{what} ∂x"), &dx, gdx, tol);
            assert_close(&format!("{what} ∂γ"), &dg, gdg, tol);
            assert_close(&format!("{what} ∂β"), &db, gdb, tol);
        }
        assert_close(&format!("{name} running_mean"), &rm, mean, tol);
        assert_close(&format!("{name} running_var"), &rv, var, tol);
        assert_eq!(t, tracked, "{name} num_batches_tracked");
        let x = seq::<T>(len, 0.29, 2.3);
        eval_bn(&bn, (n, s), (&x, &gamma, &beta), (&rm, &rv), &mut y).unwrap();
        bn.backward(
            n,
            s,
            &x,
            &gamma,
            BnStats::Running {
                mean: &rm,
                var: &rv,
            },
            &r,
            &mut dg,
            &mut db,
            Some(&mut dx),
            Beta::Replace,
        )
        .unwrap();
        let [gy, gdx, gdg, gdb] = eval;
        assert_close(&format!("{name} {} eval y", T::DTYPE), &y, gy, tol);
        assert_close(&format!("{name} {} eval ∂x", T::DTYPE), &dx, gdx, tol);
        assert_close(&format!("{name} {} eval ∂γ", T::DTYPE), &dg, gdg, tol);
        assert_close(&format!("{name} {} eval ∂β", T::DTYPE), &db, gdb, tol);
    }
}

#[test]
fn batchnorm_matches_pytorch_over_two_training_steps_and_eval() {
    batchnorm_against_pytorch::<f64>(1e-10);
    batchnorm_against_pytorch::<f32>(1e-5);
}

#[test]
fn batchnorm_shape_errors_print_the_shapes() {
    let bn = BatchNorm::new(3);
    let (mut rm, mut rv, mut t) = (vec![0.0f32; 3], vec![1.0f32; 3], 0);
    let (mut y, mut saved) = (vec![0.0f32; 3], vec![0.0f32; 6]);
    // One value per channel cannot be normalised in training (PyTorch refuses it too).
    let err = train_bn(
        &bn,
        (1, 1),
        (&[1.0, 2.0, 3.0], &[1.0; 3], &[0.0; 3]),
        (&mut rm, &mut rv, &mut t),
        &mut y,
        &mut saved,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("more than 1 value per channel") && err.contains("1 × 1"),
        "{err}"
    );
    assert_eq!(t, 0, "a refused batch is not counted");
    let mut y = vec![0.0f32; 12];
    let err = train_bn(
        &bn,
        (2, 2),
        (&[0.0; 11], &[1.0; 3], &[0.0; 3]),
        (&mut rm, &mut rv, &mut t),
        &mut y,
        &mut saved,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("[2, 3, 2]") && err.contains("11 elements"),
        "{err}"
    );
    let err = eval_bn(
        &bn,
        (4, 1),
        (&[0.0; 12], &[1.0; 2], &[0.0; 3]),
        (&rm, &rv),
        &mut y,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("[4, 3]") && err.contains("weight γ"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Hostile shapes: absurd sizes are refused with the shapes in the message, never a panic or a
// wrapped multiplication.

#[test]
fn absurd_sizes_are_refused_not_wrapped() {
    let huge = usize::MAX / 2;
    let err = Conv2d::new(huge, 2, [3, 3], [1, 1], [0, 0], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more weights than fit"), "{err}");
    let conv = Conv2d::new(1, 2, [3, 3], [1, 1], [huge, 0], true).unwrap();
    let err = conv
        .output_shape(ImageShape::new(1, 5, 5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("1×5×5"), "{err}");
    // A batch whose element count overflows: refused before any buffer is touched.
    let conv = Conv2d::new(1, 2, [3, 3], [1, 1], [0, 0], true).unwrap();
    let input = ImageShape::new(1, 1 << 20, 1 << 20);
    let mut y = [0.0f32; 4];
    let err = conv
        .forward(
            ConvForward {
                input,
                n: 1 << 30,
                x: &[0.0; 4],
                w: &[0.0; 18],
                b: &[0.0; 2],
                y: &mut y,
            },
            &mut [],
            Threads::ONE,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fits in memory") && err.contains("[1073741824, 1, 1048576, 1048576]"),
        "{err}"
    );
    let err = MaxPool2d::new(2)
        .forward(input, 1 << 30, &[0.0f32; 4], &mut y)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fits in memory"), "{err}");
    let bn = BatchNorm::new(3);
    let err = eval_bn(
        &bn,
        (huge, huge),
        (&[0.0f32; 4], &[1.0; 3], &[0.0; 3]),
        (&[0.0; 3], &[1.0; 3]),
        &mut y,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fits in memory"), "{err}");
    // Bad hyperparameters of a value built field by field.
    let bad = BatchNorm {
        momentum: f64::NAN,
        ..BatchNorm::new(3)
    };
    let err = eval_bn(
        &bad,
        (1, 1),
        (&[0.0f32; 3], &[1.0; 3], &[0.0; 3]),
        (&[0.0; 3], &[1.0; 3]),
        &mut y,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("momentum"), "{err}");
}

#[test]
fn zero_sized_dimensions_are_refused_or_harmless() {
    let err = MaxPool2d::new(2)
        .output_shape(ImageShape::new(0, 4, 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("0×4×4"), "{err}");
    let err = Conv2d::new(1, 1, [1, 1], [1, 1], [0, 0], true)
        .unwrap()
        .output_shape(ImageShape::new(1, 0, 3))
        .unwrap_err()
        .to_string();
    assert!(err.contains("1×0×3"), "{err}");
    // BatchNorm over an empty spatial extent: eval writes nothing, training is refused.
    let bn = BatchNorm::new(2);
    let mut y: [f64; 0] = [];
    eval_bn(
        &bn,
        (3, 0),
        (&[], &[1.0; 2], &[0.0; 2]),
        (&[0.0; 2], &[1.0; 2]),
        &mut y,
    )
    .unwrap();
    let (mut rm, mut rv, mut t) = ([0.0; 2], [1.0; 2], 0);
    let err = train_bn(
        &bn,
        (3, 0),
        (&[], &[1.0; 2], &[0.0; 2]),
        (&mut rm, &mut rv, &mut t),
        &mut y,
        &mut [0.0; 4],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("more than 1 value"), "{err}");
}

#[test]
fn empty_batch_writes_zero_gradients() {
    let conv = Conv2d::new(2, 3, [3, 3], [1, 1], [1, 1], true).unwrap();
    let input = ImageShape::new(2, 4, 4);
    let mut scratch = vec![0.0f64; conv.scratch_len(input).unwrap()];
    let (mut dw, mut db) = (vec![7.0; conv.weight_len()], vec![7.0; 3]);
    let w = vec![1.0; conv.weight_len()];
    conv.backward(
        ConvBackward {
            dy: &[],
            input,
            n: 0,
            x: &[],
            w: &w,
            dw: &mut dw,
            db: &mut db,
            dx: Some(&mut []),
            beta: Beta::Replace,
        },
        &mut scratch,
        Threads::ONE,
    )
    .unwrap();
    assert!(dw.iter().chain(&db).all(|&g| g == 0.0));
}

/// Strides larger than the kernel leave pixels no window reads: their gradient is 0, and the
/// others still match finite differences.
#[test]
fn strides_larger_than_the_kernel() {
    let conv = Conv2d::new(2, 2, [2, 2], [3, 3], [1, 0], true).unwrap();
    let case = ConvCase {
        name: "2×2 stride 3 pad 1×0 on 8×7",
        n: 2,
        conv,
        input: ImageShape::new(2, 8, 7),
    };
    let (x, w, b) = conv_inputs::<f64>(&case);
    for direct in [false, true] {
        let run = run_conv(&case, &x, &w, &b, direct);
        let r = seq::<f64>(run.y.len(), 0.53, 0.7);
        let loss = |x: &[f64], w: &[f64]| {
            let mut y = vec![0.0; run.y.len()];
            conv.forward_direct(ConvForward {
                input: case.input,
                n: case.n,
                x,
                w,
                b: &b,
                y: &mut y,
            })
            .unwrap();
            dot(&y, &r)
        };
        check_grad(&format!("{} ∂X", case.name), &x, &run.dx, |p| loss(p, &w));
        check_grad(&format!("{} ∂W", case.name), &w, &run.dw, |p| loss(&x, p));
        // With stride 3 and a 2-wide kernel, every third column is never read.
        assert!(run.dx.contains(&0.0));
    }
    let pool = MaxPool2d(window([2, 2], [3, 3], [0, 0]));
    let input = ImageShape::new(1, 7, 7);
    let x: Vec<f64> = seq(input.len(), 0.37, 0.1);
    let (y, dx) = max_run(pool, input, 1, &x);
    let r = seq::<f64>(y.len(), 0.53, 0.7);
    check_grad("MaxPool2d 2×2 stride 3", &x, &dx, |p| {
        let mut y = vec![0.0; r.len()];
        pool.forward(input, 1, p, &mut y).unwrap();
        dot(&y, &r)
    });
}

/// The recorded-index route gives exactly the results of the searching route (ties, NaN,
/// padding, overlapping windows, the 2×2 fast path), and matches PyTorch's golden values.
#[test]
fn max_pooling_with_indices_is_the_same_pooling() {
    let golden: [(&[f64], &[f64]); 4] = [
        (g::M1_Y, g::M1_DX),
        (g::M2_Y, g::M2_DX),
        (g::M3_Y, g::M3_DX),
        (g::M4_Y, g::M4_DX),
    ];
    let mut cases: Vec<(usize, ImageShape, PoolWindow, Vec<f64>)> = max_cases()
        .into_iter()
        .map(|(_, n, input, win, src)| {
            let len = n * input.len();
            let x = match src {
                Some((mul, m)) => ties(len, mul, m),
                None => seq(len, 0.37, 0.1),
            };
            (n, input, win, x)
        })
        .collect();
    let nan = f64::NAN;
    let odd = ImageShape::new(2, 5, 7);
    let mut x: Vec<f64> = ties(2 * odd.len(), 5, 3);
    x[3] = nan;
    x[8] = nan;
    x[40] = f64::NEG_INFINITY;
    cases.push((2, odd, PoolWindow::square(2), x.clone()));
    cases.push((2, odd, window([3, 3], [2, 1], [1, 1]), x));
    for (i, (n, input, win, x)) in cases.into_iter().enumerate() {
        let pool = MaxPool2d(win);
        let (y, dx) = max_run(pool, input, n, &x);
        let mut indices = vec![u32::MAX; pool.indices_len(input, n).unwrap()];
        let mut yi = vec![0.0; y.len()];
        pool.forward_indexed(input, n, &x, &mut yi, &mut indices)
            .unwrap();
        let r = seq::<f64>(y.len(), 0.53, 0.7);
        let mut dxi = vec![7.0; dx.len()];
        pool.backward_indexed(input, n, &indices, &r, &mut dxi)
            .unwrap();
        let same = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
        };
        assert!(same(&y, &yi), "case {i}: forward {y:?} vs {yi:?}");
        assert!(same(&dx, &dxi), "case {i}: backward {dx:?} vs {dxi:?}");
        if let Some((gy, gdx)) = golden.get(i) {
            assert_close(&format!("case {i} Y"), &yi, gy, 1e-10);
            assert_close(&format!("case {i} ∂X"), &dxi, gdx, 1e-10);
        }
    }
    // An index outside its plane is refused, not followed.
    let pool = MaxPool2d::new(2);
    let input = ImageShape::new(1, 2, 2);
    let mut dx = [0.0f32; 4];
    let err = pool
        .backward_indexed(input, 1, &[4], &[1.0], &mut dx)
        .unwrap_err()
        .to_string();
    assert!(err.contains("below 4") && err.contains("1×2×2"), "{err}");
    let err = pool
        .forward_indexed(input, 1, &[0.0f32; 4], &mut [0.0], &mut [])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("indices") && err.contains("[1, 1, 1, 1]"),
        "{err}"
    );
}

/// ReLU and max pooling commute, gradients included (for finite inputs, ties and zeros too):
/// maxpool(relu(x)) = relu(maxpool(x)), so a network may apply the ReLU after the pooling, on a
/// quarter of the values. (The integration may rely on this; see the design note of issue 13.)
#[test]
fn relu_and_max_pooling_commute() {
    use downhill::layers::Activation;
    let input = ImageShape::new(3, 6, 5);
    let n = 2;
    let x: Vec<f64> = (0..n * input.len())
        .map(|i| ((i * 7) % 5) as f64 - 2.0 + if i % 11 == 0 { 0.5 } else { 0.0 })
        .collect();
    for win in [PoolWindow::square(2), window([3, 3], [1, 2], [1, 1])] {
        let pool = MaxPool2d(win);
        let out = pool.output_shape(input).unwrap();
        let dy: Vec<f64> = seq(n * out.len(), 0.53, 0.7);
        // relu, then pool
        let mut a = vec![0.0; x.len()];
        Activation::Relu.forward(&x, &mut a);
        let mut y1 = vec![0.0; dy.len()];
        pool.forward(input, n, &a, &mut y1).unwrap();
        let mut da = vec![0.0; x.len()];
        pool.backward(input, n, &a, &dy, &mut da).unwrap();
        let mut dx1 = vec![0.0; x.len()];
        Activation::Relu.backward(&x, &a, &da, &mut dx1);
        // pool, then relu
        let mut p = vec![0.0; dy.len()];
        pool.forward(input, n, &x, &mut p).unwrap();
        let mut y2 = vec![0.0; dy.len()];
        Activation::Relu.forward(&p, &mut y2);
        let mut dp = vec![0.0; dy.len()];
        Activation::Relu.backward(&p, &y2, &dy, &mut dp);
        let mut dx2 = vec![0.0; x.len()];
        pool.backward(input, n, &x, &dp, &mut dx2).unwrap();
        assert_eq!(y1, y2, "{win}");
        assert_eq!(dx1, dx2, "{win}");
        assert!(dx1.iter().any(|&g| g != 0.0));
    }
}

/// One-channel layers in f32 — computed on AVX-512 CPUs without a patch matrix (the direct
/// kernels of `Conv2d::forward` and, with no ∂X asked, `Conv2d::backward`) — against the
/// portable direct loops in f64, over kernel sizes, paddings, widths of one to four blocks of 16
/// columns, channel counts that split into uneven groups, with and without bias, and the
/// accumulation of `Beta::Add`.
#[test]
fn one_channel_layers_in_f32_agree_with_the_reference_in_f64() {
    let shapes = [
        ([5, 5], [2, 2], 28, 28, 6, true),
        ([3, 3], [0, 0], 28, 28, 32, true),
        ([3, 5], [1, 2], 9, 13, 7, false),
        ([1, 1], [0, 0], 5, 5, 1, true),
        ([2, 4], [0, 1], 6, 40, 13, true),
        ([4, 3], [2, 0], 7, 64, 25, false),
        ([5, 1], [0, 0], 11, 17, 33, true),
        ([7, 16], [3, 8], 10, 50, 5, true),
    ];
    for (k, p, h, w, o, bias) in shapes {
        let case = ConvCase {
            name: "one channel",
            n: 3,
            conv: Conv2d::new(1, o, k, [1, 1], p, bias).unwrap(),
            input: ImageShape::new(1, h, w),
        };
        let what = format!("{o} channels {k:?} pad {p:?} on {h}×{w}, bias {bias}");
        let (x, wt, b) = conv_inputs::<f64>(&case);
        let reference = run_conv(&case, &x, &wt, &b, true);
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (xf, wf, bf) = (f(&x), f(&wt), f(&b));
        let ConvRun { y, dw, db, .. } = run_conv_as(
            &case,
            (&xf, &wf, &bf),
            false,
            false,
            &[Beta::Replace, Beta::Add],
        );
        assert_close(&format!("{what}: Y"), &y, &reference.y, 1e-5);
        // (Sums of up to 2·3·28·28 products in f32: within 1e-4 of their size; a wrong tap,
        // mask or channel is off by the size of a whole term.)
        let twice = |v: &[f64]| v.iter().map(|&a| 2.0 * a).collect::<Vec<f64>>();
        assert_close(&format!("{what}: ∂W"), &dw, &twice(&reference.dw), 1e-4);
        assert_close(&format!("{what}: ∂b"), &db, &twice(&reference.db), 1e-4);
    }
}
