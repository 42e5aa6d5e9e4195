//! The fast paths of the vision kernels against their definitions: `Conv2d::unfold` (im2col)
//! against the formula U[(c,p,q), (i,j)] = X[c, i·sh + p − ph, j·sw + q − pw] (0 in the
//! padding), written as a plain loop here; `Conv2d::fold` (col2im) as its adjoint,
//! ⟨unfold(x), u⟩ = ⟨x, fold(u)⟩, and against a scatter loop; in f32 (which takes the AVX-512
//! kernels where the CPU has them) and in f64 (the portable loops), over shapes that cover one and
//! several blocks of 16 columns, padding wider than the kernel's reach, strides and images wider
//! than the vector path takes.

use crate::common::exe;
use downhill::layers::{Conv2d, ConvBackward, ConvForward, ImageShape};
use downhill::tensor::Scalar;

fn seq<T: Scalar>(n: usize, a: f64) -> Vec<T> {
    (0..n).map(|i| T::c(((i as f64 + 1.0) * a).sin())).collect()
}

/// U by the formula, in f64.
fn unfold_ref(conv: &Conv2d, input: ImageShape, x: &[f64]) -> Vec<f64> {
    let out = conv.output_shape(input).unwrap();
    let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
    let mut u = vec![0.0; conv.patch_len() * out.plane()];
    for c in 0..input.channels {
        for p in 0..kh {
            for q in 0..kw {
                let r = (c * kh + p) * kw + q;
                for i in 0..out.height {
                    for j in 0..out.width {
                        let h = (i * sh + p) as isize - ph as isize;
                        let w = (j * sw + q) as isize - pw as isize;
                        if h >= 0
                            && w >= 0
                            && (h as usize) < input.height
                            && (w as usize) < input.width
                        {
                            u[r * out.plane() + i * out.width + j] =
                                x[(c * input.height + h as usize) * input.width + w as usize];
                        }
                    }
                }
            }
        }
    }
    u
}

/// fold by scattering each entry of δU back to its pixel, in f64.
fn fold_ref(conv: &Conv2d, input: ImageShape, du: &[f64]) -> Vec<f64> {
    let out = conv.output_shape(input).unwrap();
    let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
    let mut dx = vec![0.0; input.len()];
    for c in 0..input.channels {
        for p in 0..kh {
            for q in 0..kw {
                let r = (c * kh + p) * kw + q;
                for i in 0..out.height {
                    for j in 0..out.width {
                        let h = (i * sh + p) as isize - ph as isize;
                        let w = (j * sw + q) as isize - pw as isize;
                        if h >= 0
                            && w >= 0
                            && (h as usize) < input.height
                            && (w as usize) < input.width
                        {
                            dx[(c * input.height + h as usize) * input.width + w as usize] +=
                                du[r * out.plane() + i * out.width + j];
                        }
                    }
                }
            }
        }
    }
    dx
}

fn cases() -> Vec<(Conv2d, ImageShape)> {
    let conv =
        |c, k: [usize; 2], s: [usize; 2], p: [usize; 2]| Conv2d::new(c, 3, k, s, p, true).unwrap();
    vec![
        // The training shapes: Keras convnet and LeNet-5.
        (conv(1, [3, 3], [1, 1], [0, 0]), ImageShape::new(1, 28, 28)),
        (
            conv(32, [3, 3], [1, 1], [0, 0]),
            ImageShape::new(32, 13, 13),
        ),
        (conv(1, [5, 5], [1, 1], [2, 2]), ImageShape::new(1, 28, 28)),
        (conv(6, [5, 5], [1, 1], [0, 0]), ImageShape::new(6, 14, 14)),
        // One column, one row, exactly 16 and 17 columns, several blocks, the widest vector row.
        (conv(2, [1, 1], [1, 1], [0, 0]), ImageShape::new(2, 1, 1)),
        (conv(2, [1, 3], [1, 1], [0, 1]), ImageShape::new(2, 1, 1)),
        (conv(2, [3, 3], [1, 1], [1, 1]), ImageShape::new(2, 16, 16)),
        (conv(2, [3, 2], [1, 1], [1, 0]), ImageShape::new(2, 5, 17)),
        (conv(3, [2, 4], [1, 1], [1, 2]), ImageShape::new(3, 7, 40)),
        (conv(1, [3, 3], [1, 1], [1, 1]), ImageShape::new(1, 4, 64)),
        // Wider than the vector path (65 columns) and a kernel wider than it takes (17).
        (conv(1, [3, 3], [1, 1], [1, 1]), ImageShape::new(1, 3, 65)),
        (conv(1, [1, 17], [1, 1], [0, 8]), ImageShape::new(1, 2, 20)),
        // Padding as wide as the kernel (rows and columns that read only padding).
        (conv(2, [3, 3], [1, 1], [2, 2]), ImageShape::new(2, 4, 5)),
        (conv(1, [2, 2], [1, 1], [1, 1]), ImageShape::new(1, 1, 1)),
        // Strides (the portable path) and a kernel as large as the image.
        (conv(2, [3, 3], [2, 2], [1, 1]), ImageShape::new(2, 9, 9)),
        (conv(2, [2, 3], [3, 1], [0, 1]), ImageShape::new(2, 8, 19)),
        (conv(2, [6, 6], [1, 1], [0, 0]), ImageShape::new(2, 6, 6)),
    ]
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn run<T: Scalar>(conv: &Conv2d, input: ImageShape, tol: f64) {
    let out = conv.output_shape(input).unwrap();
    let kp = conv.patch_len() * out.plane();
    let what = format!("{conv} on {input} ({})", T::DTYPE);
    let x64: Vec<f64> = seq(input.len(), 0.73);
    let du64: Vec<f64> = seq(kp, 0.41);
    let x: Vec<T> = x64.iter().map(|&v| T::c(v)).collect();
    let du: Vec<T> = du64.iter().map(|&v| T::c(v)).collect();
    // Poisoned outputs, one element longer than needed: everything must be overwritten and the
    // extra element left alone.
    let mut u = vec![T::c(7.0); kp + 1];
    conv.unfold(input, &x, &mut u).unwrap();
    let got: Vec<f64> = u[..kp].iter().map(|v| v.f64()).collect();
    close(
        &format!("unfold {what}"),
        &got,
        &unfold_ref(conv, input, &x64),
        tol,
    );
    assert_eq!(u[kp].f64(), 7.0, "unfold {what} wrote past K·P");
    let mut dx = vec![T::c(7.0); input.len() + 1];
    conv.fold(input, &du, &mut dx).unwrap();
    let got: Vec<f64> = dx[..input.len()].iter().map(|v| v.f64()).collect();
    let want = fold_ref(conv, input, &du64);
    close(&format!("fold {what}"), &got, &want, tol);
    assert_eq!(
        dx[input.len()].f64(),
        7.0,
        "fold {what} wrote past the image"
    );
    // Adjoint: ⟨unfold(x), δU⟩ = ⟨x, fold(δU)⟩.
    let lhs: f64 = unfold_ref(conv, input, &x64)
        .iter()
        .zip(&du64)
        .map(|(a, b)| a * b)
        .sum();
    let rhs: f64 = x64.iter().zip(&want).map(|(a, b)| a * b).sum();
    assert!(
        (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
        "adjoint {what}: {lhs} vs {rhs}"
    );
}

#[test]
fn unfold_and_fold_match_their_definitions_in_f32_and_f64() {
    for (conv, input) in cases() {
        run::<f64>(&conv, input, 1e-15);
        // f32: sums of up to 25 terms of size ≤ 1, rounded in a different order.
        run::<f32>(&conv, input, 1e-5);
    }
}

#[test]
fn unfold_and_fold_reject_short_buffers_with_the_shapes() {
    let conv = Conv2d::new(2, 4, [3, 3], [1, 1], [0, 0], true).unwrap();
    let input = ImageShape::new(2, 5, 5);
    let kp = conv.patch_len() * 9;
    let err = conv
        .unfold(input, &[0.0f32; 49], &mut vec![0.0; kp])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 2, 5, 5]") && err.contains("50"), "{err}");
    let err = conv
        .unfold(input, &[0.0f32; 50], &mut vec![0.0; kp - 1])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("patch matrix") && err.contains(&kp.to_string()),
        "{err}"
    );
    let err = conv
        .fold(input, &vec![0.0f32; kp], &mut [0.0; 49])
        .unwrap_err()
        .to_string();
    assert!(err.contains("image") && err.contains("50"), "{err}");
    let err = conv
        .fold(ImageShape::new(3, 5, 5), &vec![0.0f32; kp], &mut [0.0; 75])
        .unwrap_err()
        .to_string();
    assert!(err.contains("3×5×5"), "{err}");
}

/// Forward and backward of a layer on `n` images, through `forward`/`backward` (the im2col route
/// and its vector kernels, in `T`) with the weight gradient accumulated onto `start` by
/// `Beta::Add`, against the direct loops in f64.
fn layer_case(conv: Conv2d, input: ImageShape, n: usize, with_dx: bool) {
    use downhill::tensor::{Beta, Threads};
    let out = conv.output_shape(input).unwrap();
    let x: Vec<f64> = seq(n * input.len(), 0.37);
    let w: Vec<f64> = seq(conv.weight_len(), 0.91)
        .iter()
        .map(|v: &f64| v * 0.3)
        .collect();
    let b: Vec<f64> = seq(conv.bias_len(), 1.3);
    let dy: Vec<f64> = seq(n * out.len(), 0.53);
    let start: Vec<f64> = seq(conv.weight_len() + conv.bias_len(), 2.1);
    // Reference in f64 by the direct loops.
    let mut y = vec![0.0; n * out.len()];
    conv.forward_direct(ConvForward {
        input,
        n,
        x: &x,
        w: &w,
        b: &b,
        y: &mut y,
    })
    .unwrap();
    let (mut dw, mut db) = (
        start[..conv.weight_len()].to_vec(),
        start[conv.weight_len()..].to_vec(),
    );
    let mut dx = vec![0.0; n * input.len()];
    let dxr = if with_dx { Some(&mut dx[..]) } else { None };
    conv.backward_direct(ConvBackward {
        dy: &dy,
        input,
        n,
        x: &x,
        w: &w,
        dw: &mut dw,
        db: &mut db,
        dx: dxr,
        beta: Beta::Add,
    })
    .unwrap();
    // The im2col route in f32.
    let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let (x32, w32, b32, dy32) = (f(&x), f(&w), f(&b), f(&dy));
    let mut scratch = vec![f32::NAN; conv.scratch_len(input).unwrap()];
    let mut y32 = vec![f32::NAN; y.len()];
    conv.forward(
        ConvForward {
            input,
            n,
            x: &x32,
            w: &w32,
            b: &b32,
            y: &mut y32,
        },
        &mut scratch,
        Threads::ONE,
    )
    .unwrap();
    let (mut dw32, mut db32) = (
        f(&start[..conv.weight_len()]),
        f(&start[conv.weight_len()..]),
    );
    let mut dx32 = vec![f32::NAN; dx.len()];
    let dxr = if with_dx { Some(&mut dx32[..]) } else { None };
    scratch.fill(f32::NAN);
    conv.backward(
        ConvBackward {
            dy: &dy32,
            input,
            n,
            x: &x32,
            w: &w32,
            dw: &mut dw32,
            db: &mut db32,
            dx: dxr,
            beta: Beta::Add,
        },
        &mut scratch,
        Threads::ONE,
    )
    .unwrap();
    let g = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    let what = format!("{conv} on {n} × {input}");
    // f32 sums of up to a few thousand terms of size ~1: 1e-4 relative to the largest value.
    let tol = |v: &[f64]| 1e-4 * v.iter().fold(1.0f64, |m, a| m.max(a.abs()));
    let near = |name: &str, got: &[f64], want: &[f64]| {
        let t = tol(want);
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= t, "{what} {name}[{i}]: {a} vs {b}");
        }
    };
    near("Y", &g(&y32), &y);
    near("∂W", &g(&dw32), &dw);
    near("∂b", &g(&db32), &db);
    if with_dx {
        near("∂X", &g(&dx32), &dx);
    }
}

#[test]
fn conv_layer_in_f32_matches_the_direct_loops_in_f64() {
    let c =
        |i, o, k: [usize; 2], p: [usize; 2], bias| Conv2d::new(i, o, k, [1, 1], p, bias).unwrap();
    // First layers (few patch rows: the small weight-gradient kernel), with and without bias,
    // an odd channel count, more than 8 patch rows, a width that is not a multiple of 16.
    layer_case(
        c(1, 32, [3, 3], [0, 0], true),
        ImageShape::new(1, 28, 28),
        3,
        false,
    );
    layer_case(
        c(1, 6, [5, 5], [2, 2], true),
        ImageShape::new(1, 28, 28),
        2,
        false,
    );
    layer_case(
        c(1, 5, [3, 3], [1, 1], false),
        ImageShape::new(1, 9, 23),
        2,
        true,
    );
    layer_case(
        c(3, 7, [3, 3], [0, 0], true),
        ImageShape::new(3, 10, 19),
        2,
        true,
    );
    // The second layers (the GEMM route), and one with 1 output channel.
    layer_case(
        c(32, 64, [3, 3], [0, 0], true),
        ImageShape::new(32, 13, 13),
        2,
        true,
    );
    layer_case(
        c(6, 16, [5, 5], [0, 0], true),
        ImageShape::new(6, 14, 14),
        2,
        true,
    );
    layer_case(
        c(2, 1, [2, 2], [1, 0], true),
        ImageShape::new(2, 5, 33),
        2,
        true,
    );
}

/// A convolutional network trains on one thread in passes of 16 images (see `parallel`): one
/// step of plain SGD over a batch of 64 moves the weights by −η times the gradient of the whole
/// batch computed in one pass, to float rounding; and two threads (each with its passes) agree
/// with it too.
#[test]
fn passes_of_a_convolutional_network_sum_to_the_batch_gradient() {
    use downhill::data::{BatchBuf, Dataset};
    use downhill::network::{MiniBatch, Objective, Shape};
    use downhill::optim::{OptimizerConfig, Schedule, SgdConfig};
    use downhill::tensor::Beta;
    use downhill::train::{NoObserver, TrainConfig, train};
    use downhill::{Init, Loss, Network, Rng, Workspace, netspec};
    use rand::SeedableRng;

    let (n, classes) = (64, 3);
    let shape = ImageShape::new(1, 12, 12);
    let x: Vec<f32> = seq::<f32>(n * shape.len(), 0.61)
        .iter()
        .map(|v| v.abs())
        .collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7) % classes as u32).collect();
    let data = Dataset::classification(x, shape.len(), labels, classes).unwrap();
    let spec =
        netspec::parse("conv 4 3, relu, maxpool 2, conv 6 3 pad 1, relu, flatten, dense").unwrap();
    let layers = netspec::resolve(&spec, Shape::Image(shape), classes).unwrap();
    let mut rng = Rng::seed_from_u64(5);
    let net0 =
        Network::<f32>::with_input(Shape::Image(shape), layers, Init::HeNormal, &mut rng).unwrap();
    // The whole batch's gradient in one pass.
    let mut ws = Workspace::new(&net0, n);
    let mut batch = BatchBuf::new(&data, n);
    let idx: Vec<usize> = (0..n).collect();
    data.gather(&idx, ws.input_mut(n), &mut batch);
    let mut g = vec![0.0f32; net0.param_count()];
    let objective = Objective {
        loss: Loss::CrossEntropy,
        class_weights: None,
        denom: n as f64,
    };
    net0.loss_and_gradient(
        &mut ws,
        MiniBatch {
            n,
            targets: batch.targets(),
            objective,
            rng: None,
        },
        (&mut g, Beta::Replace),
    );
    let lr = 0.5;
    let want: Vec<f32> = net0
        .params()
        .iter()
        .zip(&g)
        .map(|(p, g)| p - lr * g)
        .collect();
    let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 1e-3, "the gradient is not trivial: {scale}");
    for threads in [1, 2] {
        let mut net = net0.clone();
        let opt = OptimizerConfig::Sgd(SgdConfig {
            lr: lr as f64,
            ..Default::default()
        });
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: n,
            shuffle: false,
            threads,
            divergence: None,
            ..Default::default()
        };
        let mut r = Rng::seed_from_u64(9);
        train(
            &mut net,
            &data,
            None,
            &opt,
            &Schedule::default(),
            &cfg,
            &mut r,
            &mut NoObserver,
        )
        .unwrap();
        let diff = net
            .params()
            .iter()
            .zip(&want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-5 * lr * scale.max(1.0),
            "{threads} thread(s): max |Δw| {diff} from the one-pass step"
        );
        assert!(net.params() != net0.params(), "the step moved the weights");
    }
}

/// `MaxPool2d(2)` with indices in f32 (the AVX-512 kernel where the CPU has it) against the same
/// pooling in f64 (the portable loops): the same maxima and the same recorded positions, with
/// ties (the first maximum wins), NaNs (a later NaN wins, as in PyTorch), negative values, odd
/// sizes (the last row and column left out) and rows of several blocks of 16 windows.
#[test]
fn max_pooling_with_indices_in_f32_matches_f64() {
    use downhill::layers::{MaxPool2d, Pool2d};
    let pool = MaxPool2d::new(2);
    for (c, h, w) in [
        (3, 4, 4),
        (2, 5, 7),
        (1, 2, 2),
        (2, 6, 33),
        (1, 3, 64),
        (2, 26, 26),
        (1, 4, 70),
    ] {
        let input = ImageShape::new(c, h, w);
        let n = 2;
        let len = n * input.len();
        // Values from a few levels (many ties), negatives, and NaNs at a few places.
        let x64: Vec<f64> = (0..len)
            .map(|i| {
                if i % 37 == 5 || i % 53 == 11 {
                    f64::NAN
                } else {
                    ((i * 7919 % 11) as f64 - 5.0) * 0.5
                }
            })
            .collect();
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let out = pool.output_shape(input).unwrap();
        let m = n * out.len();
        let (mut y64, mut i64_) = (vec![0.0f64; m], vec![u32::MAX; m]);
        pool.forward_indexed(input, n, &x64, &mut y64, &mut i64_)
            .unwrap();
        let (mut y32, mut i32_) = (vec![7.0f32; m + 1], vec![u32::MAX; m + 1]);
        pool.forward_indexed(input, n, &x32, &mut y32, &mut i32_)
            .unwrap();
        assert_eq!(&i32_[..m], &i64_[..], "{input}: indices");
        assert_eq!(
            (y32[m], i32_[m]),
            (7.0, u32::MAX),
            "{input}: wrote past the output"
        );
        for (k, (a, b)) in y32.iter().zip(&y64).enumerate() {
            assert!(
                (a.is_nan() && b.is_nan()) || *a as f64 == *b,
                "{input}: output {k}: {a} vs {b}"
            );
        }
        // And the plain forward pass agrees with the indexed one.
        let mut y = vec![0.0f32; m];
        pool.forward(input, n, &x32, &mut y).unwrap();
        for (a, b) in y.iter().zip(&y32) {
            assert!(
                (a.is_nan() && b.is_nan()) || a == b,
                "{input}: forward vs indexed"
            );
        }
    }
}

/// `downhill bench --only` that matches no workload is an error listing the workloads (the
/// vision ones among them), not a silent empty run.
#[test]
fn bench_only_matching_nothing_is_an_error_naming_the_workloads() {
    let out = std::process::Command::new(exe())
        .args([
            "bench",
            "--data",
            "synthetic",
            "--examples",
            "10",
            "--only",
            "no such",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such") && err.contains("cnn keras-convnet, batch 128, 1 thread"),
        "{err}"
    );
    // A vision workload on a few synthetic images runs and reports its floor.
    let out = std::process::Command::new(exe())
        .args([
            "bench",
            "--data",
            "synthetic",
            "--examples",
            "40",
            "--epochs",
            "1",
            "--json",
            "--only",
            "cnn lenet5, batch 128, 1 thread",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"floor_seconds_per_epoch\"") && text.contains("conv 6 5 pad 2"),
        "{text}"
    );
}
