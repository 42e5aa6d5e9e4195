//! Hostile calls on the layer kernels' named-struct API (`ConvForward`, `ConvBackward`,
//! `BnForward` + `RunningStats`, `Pool2d::forward`, `network::MiniBatch`): every buffer too short
//! is an error naming the layer, the buffer and the batch's shape, and leaves every output (and
//! BatchNorm's running statistics) untouched; longer buffers give the same results bit for bit as
//! exact ones; `n = 0` is an empty batch, a huge `n` an error rather than an overflow.
//!
//! Reference: the same calls through the positional API of 570bc79 gave the same results and the
//! same messages (compared case by case when the API changed); here each case is checked against
//! the kernel's own exact-size call.

use downhill::layers::{
    AvgPool2d, BatchNorm, BnForward, Conv2d, ConvBackward, ConvForward, ImageShape, MaxPool2d,
    Pool2d, PoolWindow, RunningStats,
};
use downhill::loss::{BatchTargets, Loss};
use downhill::netspec::{parse, resolve};
use downhill::network::{MiniBatch, Network, Objective, Shape, Workspace};
use downhill::tensor::{Beta, Threads};
use downhill::{Init, Rng};
use rand::SeedableRng;

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A 2→3 channel 3×3 convolution with padding 1 and bias on 2 images of 2×5×6, its buffers.
struct ConvCase {
    conv: Conv2d,
    input: ImageShape,
    n: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    dy: Vec<f32>,
    scratch: usize,
    y_len: usize,
}

fn conv_case() -> ConvCase {
    let conv = Conv2d::new(2, 3, [3, 3], [1, 1], [1, 1], true).unwrap();
    let input = ImageShape::new(2, 5, 6);
    let n = 2;
    let y_len = n * conv.output_shape(input).unwrap().len();
    ConvCase {
        x: values(n * input.len(), 1),
        w: values(conv.weight_len(), 2),
        b: values(conv.bias_len(), 3),
        dy: values(y_len, 4),
        scratch: conv.scratch_len(input).unwrap(),
        conv,
        input,
        n,
        y_len,
    }
}

/// Forward by im2col (`Some(scratch length)`) or by direct loops (`None`); buffer lengths
/// `[x, w, b, y]` (with padding values past the exact data).
fn forward(c: &ConvCase, lens: [usize; 4], scratch: Option<usize>) -> (String, Vec<u32>) {
    let grow = |v: &[f32], len: usize| -> Vec<f32> {
        (0..len).map(|i| v.get(i).copied().unwrap_or(7.0)).collect()
    };
    let (x, w, b) = (
        grow(&c.x, lens[0]),
        grow(&c.w, lens[1]),
        grow(&c.b, lens[2]),
    );
    let mut y = vec![-5.0f32; lens[3]];
    let pass = ConvForward {
        input: c.input,
        n: c.n,
        x: &x,
        w: &w,
        b: &b,
        y: &mut y,
    };
    let r = match scratch {
        Some(s) => c.conv.forward(pass, &mut vec![0.0; s], Threads::ONE),
        None => c.conv.forward_direct(pass),
    };
    let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
    (msg, bits(&y[..lens[3].min(c.y_len)]))
}

#[test]
fn conv_forward_buffers_too_short_are_errors_naming_the_shape_and_too_long_change_nothing() {
    let c = conv_case();
    let exact = [c.x.len(), c.w.len(), c.b.len(), c.y_len];
    for scratch in [Some(c.scratch), None] {
        let (e, want) = forward(&c, exact, scratch);
        assert_eq!(e, "");
        assert!(want.iter().all(|&v| v != (-5.0f32).to_bits()));
        let names = ["input", "weights", "bias", "output"];
        for i in 0..4 {
            let mut lens = exact;
            lens[i] -= 1;
            let (e, y) = forward(&c, lens, scratch);
            let shape = if i == 3 {
                "[2, 3, 5, 6]"
            } else {
                "[2, 2, 5, 6]"
            };
            assert!(
                e.contains("Conv2d(2→3")
                    && e.contains(&format!(
                        "{}: {} for a batch of shape {shape}",
                        "1×1)", names[i]
                    ))
                    && e.contains(&format!("got {} elements", exact[i] - 1)),
                "{i}: {e}"
            );
            assert!(
                y.iter().all(|&v| v == (-5.0f32).to_bits()),
                "{}: output written before the error",
                names[i]
            );
            lens[i] += 4;
            assert_eq!(forward(&c, lens, scratch), (String::new(), want.clone()));
        }
    }
    // Scratch one short / longer.
    let (e, _) = forward(&c, exact, Some(c.scratch - 1));
    assert!(
        e.contains("scratch") && e.contains(&c.scratch.to_string()),
        "{e}"
    );
    let want = forward(&c, exact, Some(c.scratch));
    assert_eq!(forward(&c, exact, Some(c.scratch + 9)), want);
}

#[test]
fn conv_forward_odd_batches_shapes_and_values() {
    let c = conv_case();
    let mut y = vec![0.0f32; c.y_len];
    let mut scratch = vec![0.0f32; c.scratch];
    for n in [
        usize::MAX / 2,
        usize::MAX,
        (isize::MAX as usize / 8) / c.input.len() + 1,
    ] {
        let (x, w, b) = (&c.x[..], &c.w[..], &c.b[..]);
        let im2col = ConvForward {
            input: c.input,
            n,
            x,
            w,
            b,
            y: &mut y,
        };
        let im2col = c.conv.forward(im2col, &mut scratch, Threads::ONE);
        let direct = ConvForward {
            input: c.input,
            n,
            x,
            w,
            b,
            y: &mut y,
        };
        let direct = c.conv.forward_direct(direct);
        for e in [im2col, direct] {
            let e = e.unwrap_err().to_string();
            assert!(
                e.contains("batch size") && e.contains(&format!("[{n}, 2, 5, 6]")),
                "{e}"
            );
        }
    }
    // An empty batch with empty buffers.
    for direct in [false, true] {
        let pass = ConvForward {
            input: c.input,
            n: 0,
            x: &[],
            w: &c.w,
            b: &c.b,
            y: &mut [],
        };
        if direct {
            c.conv.forward_direct(pass)
        } else {
            c.conv.forward(pass, &mut scratch, Threads::ONE)
        }
        .unwrap();
    }
    // Wrong channel count, empty image, image smaller than the kernel without padding.
    let unpadded = Conv2d::new(2, 3, [3, 3], [1, 1], [0, 0], true).unwrap();
    for (conv, input, want) in [
        (
            &c.conv,
            ImageShape::new(3, 5, 6),
            "expected 2×H×W, got 3×5×6",
        ),
        (
            &c.conv,
            ImageShape::new(0, 5, 6),
            "expected 2×H×W, got 0×5×6",
        ),
        (&c.conv, ImageShape::new(2, 0, 6), "got 2×0×6"),
        (
            &unpadded,
            ImageShape::new(2, 2, 6),
            "at least 3×3 after padding (2×6), got 2×2×6",
        ),
    ] {
        let pass = || ConvForward {
            input,
            n: 2,
            x: &c.x,
            w: &c.w,
            b: &c.b,
            y: &mut [],
        };
        for e in [
            conv.forward(pass(), &mut scratch, Threads::ONE)
                .unwrap_err(),
            conv.forward_direct(pass()).unwrap_err(),
        ] {
            assert!(e.to_string().contains(want), "{e}");
        }
    }
    // NaN and ∞ in the input reach exactly the outputs whose windows hold them, in both routes.
    let mut x = c.x.clone();
    x[8] = f32::NAN; // image 0, channel 0, row 1, column 2
    for direct in [false, true] {
        let mut y = vec![0.0f32; c.y_len];
        let pass = ConvForward {
            input: c.input,
            n: c.n,
            x: &x,
            w: &c.w,
            b: &c.b,
            y: &mut y,
        };
        if direct {
            c.conv.forward_direct(pass).unwrap();
        } else {
            c.conv.forward(pass, &mut scratch, Threads::ONE).unwrap();
        }
        for (i, v) in y.iter().enumerate() {
            let (img, o, r, col) = (i / 90, i / 30 % 3, i / 6 % 5, i % 6);
            let touches = img == 0 && r.abs_diff(1) <= 1 && col.abs_diff(2) <= 1;
            assert_eq!(
                v.is_nan(),
                touches,
                "direct {direct}: output {img} {o} {r} {col}"
            );
        }
    }
}

/// Backward with lengths `[dy, dw, db, dx]` (`dx` None: no input gradient) and `dw`, `db`
/// starting at 0.5: the message (empty when it worked) and `dw`, `db`, `dx`'s bits.
fn backward(
    c: &ConvCase,
    lens: [Option<usize>; 4],
    beta: Beta,
    scratch: Option<usize>,
) -> (String, [Vec<u32>; 3]) {
    let dy: Vec<f32> = (0..lens[0].unwrap())
        .map(|i| c.dy.get(i).copied().unwrap_or(3.0))
        .collect();
    let mut dw = vec![0.5f32; lens[1].unwrap()];
    let mut db = vec![0.5f32; lens[2].unwrap()];
    let mut dx = lens[3].map(|l| vec![-5.0f32; l]);
    let pass = ConvBackward {
        dy: &dy,
        input: c.input,
        n: c.n,
        x: &c.x,
        w: &c.w,
        dw: &mut dw,
        db: &mut db,
        dx: dx.as_deref_mut(),
        beta,
    };
    let r = match scratch {
        Some(s) => c.conv.backward(pass, &mut vec![0.0; s], Threads::ONE),
        None => c.conv.backward_direct(pass),
    };
    let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
    let exact = |v: &[f32], len: usize| bits(&v[..len.min(v.len())]);
    let (wl, bl, xl) = (c.w.len(), c.b.len(), c.x.len());
    (
        msg,
        [
            exact(&dw, wl),
            exact(&db, bl),
            dx.map_or(Vec::new(), |d| exact(&d, xl)),
        ],
    )
}

#[test]
fn conv_backward_buffers_too_short_are_errors_that_write_nothing() {
    let c = conv_case();
    let exact = [c.y_len, c.w.len(), c.b.len(), c.x.len()].map(Some);
    for scratch in [Some(c.scratch), None] {
        for beta in [Beta::Replace, Beta::Add] {
            let (e, want) = backward(&c, exact, beta, scratch);
            assert_eq!(e, "");
            // Which buffer a too-short slice is reported as.
            let names = [
                "output gradient",
                "weight gradient",
                "bias gradient",
                "input gradient",
            ];
            for i in 0..4 {
                let mut lens = exact;
                lens[i] = lens[i].map(|l| l - 1);
                let (e, [dw, db, dx]) = backward(&c, lens, beta, scratch);
                assert!(
                    e.contains(&format!("{}: {} for a batch", "1×1)", names[i]))
                        && e.contains(&format!("got {} elements", exact[i].unwrap() - 1)),
                    "{i}: {e}"
                );
                // Nothing written: ∂L/∂W and ∂L/∂b still 0.5 (even with Beta::Add), ∂L/∂X −5.
                assert!(dw.iter().chain(&db).all(|&v| v == 0.5f32.to_bits()), "{i}");
                assert!(dx.iter().all(|&v| v == (-5.0f32).to_bits()), "{i}");
                lens[i] = lens[i].map(|l| l + 5);
                assert_eq!(
                    backward(&c, lens, beta, scratch),
                    (String::new(), want.clone())
                );
            }
            // No ∂L/∂X: the same ∂L/∂W and ∂L/∂b bit for bit.
            let mut no_dx = exact;
            no_dx[3] = None;
            let (e, [dw, db, dx]) = backward(&c, no_dx, beta, scratch);
            assert_eq!(
                (e.as_str(), &dw, &db, dx.len()),
                ("", &want[0], &want[1], 0)
            );
        }
        // Beta::Add adds the Replace gradient to what was there (0.5), to rounding.
        let (_, replace) = backward(&c, exact, Beta::Replace, scratch);
        let (_, add) = backward(&c, exact, Beta::Add, scratch);
        for (r, a) in replace[..2].iter().flatten().zip(add[..2].iter().flatten()) {
            let (r, a) = (f32::from_bits(*r), f32::from_bits(*a));
            assert!(
                (r + 0.5 - a).abs() <= 1e-5 * (1.0 + a.abs()),
                "{r} + 0.5 vs {a}"
            );
        }
        assert_eq!(replace[2], add[2], "∂L/∂X is overwritten in both modes");
    }
}

/// BatchNorm over 3 channels, 4 values each, 2 examples: lengths `[x, γ, β, mean, var, y,
/// saved]` in training (`Some(saved)`) or eval mode; running statistics start at 0.25 / 1.5 and
/// `num_batches_tracked` at 7. Returns the message and the bits of y, saved, mean, var, tracked.
fn bn(lens: [usize; 7], n: usize, spatial: usize, train: bool) -> (String, Vec<Vec<u32>>, i64) {
    let b = BatchNorm::new(3);
    let x: Vec<f32> = values(lens[0], 9);
    let (gamma, beta) = (values(lens[1], 10), values(lens[2], 11));
    let (mut mean, mut var) = (vec![0.25f32; lens[3]], vec![1.5f32; lens[4]]);
    let (mut y, mut saved, mut tracked) = (vec![-5.0f32; lens[5]], vec![-5.0f32; lens[6]], 7);
    let pass = BnForward {
        n,
        spatial,
        x: &x,
        gamma: &gamma,
        beta: &beta,
        y: &mut y,
    };
    let r = if train {
        let running = RunningStats {
            mean: &mut mean,
            var: &mut var,
            num_batches_tracked: &mut tracked,
        };
        b.forward_train(pass, running, &mut saved)
    } else {
        b.forward_eval(pass, &mean, &var)
    };
    let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
    let cut = |v: &[f32], l: usize| bits(&v[..l.min(v.len())]);
    let out = vec![
        cut(&y, n * 3 * spatial),
        cut(&saved, 6),
        cut(&mean, 3),
        cut(&var, 3),
    ];
    (msg, out, tracked)
}

#[test]
fn batchnorm_buffers_too_short_are_errors_that_leave_the_running_statistics_alone() {
    let exact = [24, 3, 3, 3, 3, 24, 6];
    let names = [
        "input",
        "weight γ",
        "bias β",
        "running_mean",
        "running_var",
        "output",
        "saved statistics",
    ];
    for train in [true, false] {
        let (e, want, tracked) = bn(exact, 2, 4, train);
        assert_eq!((e.as_str(), tracked), ("", if train { 8 } else { 7 }));
        for i in 0..7 {
            if i == 6 && !train {
                continue;
            }
            let mut lens = exact;
            lens[i] -= 1;
            let (e, got, tracked) = bn(lens, 2, 4, train);
            assert!(
                e.contains(&format!(
                    "BatchNorm(3 channels): {} for a batch of shape [2, 3, 4]",
                    names[i]
                )) && e.contains(&format!("got {} elements", exact[i] - 1)),
                "{i}: {e}"
            );
            assert_eq!(tracked, 7, "{i}: num_batches_tracked moved on an error");
            assert!(
                got[2].iter().all(|&v| v == 0.25f32.to_bits()),
                "{i}: running_mean"
            );
            assert!(
                got[3].iter().all(|&v| v == 1.5f32.to_bits()),
                "{i}: running_var"
            );
            assert!(
                got[0].iter().all(|&v| v == (-5.0f32).to_bits()),
                "{i}: output"
            );
            lens[i] += 4;
            assert_eq!(
                bn(lens, 2, 4, train),
                (String::new(), want.clone(), tracked_after(train))
            );
        }
    }
    // One value per channel cannot be normalised in training; an empty batch can be evaluated.
    for (n, spatial) in [(1, 1), (0, 4), (2, 0)] {
        let (e, got, tracked) = bn(exact, n, spatial, true);
        assert!(
            e.contains("more than 1 value per channel") && tracked == 7,
            "{e}"
        );
        assert!(got[2].iter().all(|&v| v == 0.25f32.to_bits()));
    }
    assert_eq!(bn(exact, 0, 4, false).0, "");
    for n in [usize::MAX / 2, usize::MAX] {
        for train in [true, false] {
            let e = bn(exact, n, 4, train).0;
            assert!(
                e.contains("batch size") && e.contains(&format!("[{n}, 3, 4, 1]")),
                "{e}"
            );
        }
    }
}

fn tracked_after(train: bool) -> i64 {
    if train { 8 } else { 7 }
}

/// An empty batch of images too large to exist is refused like a full one (it panicked with
/// "chunk size must be non-zero": the check measured only n·C·H·W, 0 here).
#[test]
fn pooling_an_empty_batch_of_impossible_images_is_an_error() {
    let win = PoolWindow {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
    };
    let input = ImageShape::new(3, usize::MAX / 4, usize::MAX / 4);
    let (x, mut y): (&[f32], [f32; 0]) = (&[], []);
    let max = MaxPool2d(win).forward(input, 0, x, &mut y).unwrap_err();
    let avg = AvgPool2d(win).forward(input, 0, x, &mut y).unwrap_err();
    for err in [max.to_string(), avg.to_string()] {
        assert!(err.contains("fits in memory"), "{err}");
    }
}

/// A padding so large that twice it wraps is refused as a padding (it passed the "at most half
/// the kernel" check in a release build and the error blamed the image).
#[test]
fn an_absurd_pool_padding_is_refused_as_a_padding() {
    let win = PoolWindow {
        kernel: [3, 3],
        stride: [1, 1],
        padding: [usize::MAX / 2 + 1, 0],
    };
    let input = ImageShape::new(1, 4, 4);
    let mut y = [0.0f32; 16];
    let err = MaxPool2d(win)
        .forward(input, 1, &[0.0f32; 16], &mut y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pool padding") && err.contains("at most half"),
        "{err}"
    );
}

#[test]
fn pooling_buffers_too_short_are_errors_and_too_long_change_nothing() {
    let input = ImageShape::new(3, 6, 7);
    let n = 2;
    let x = values(n * input.len() + 5, 12);
    let windows = [
        PoolWindow::square(2),
        PoolWindow {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        },
    ];
    for win in windows {
        let out = MaxPool2d(win).output_shape(input).unwrap();
        let (xl, yl) = (n * input.len(), n * out.len());
        let run = |max: bool, xl: usize, yl: usize, n: usize| -> (String, Vec<u32>) {
            let mut y = vec![-5.0f32; yl];
            let r = if max {
                MaxPool2d(win).forward(input, n, &x[..xl], &mut y)
            } else {
                AvgPool2d(win).forward(input, n, &x[..xl], &mut y)
            };
            (
                r.err().map(|e| e.to_string()).unwrap_or_default(),
                bits(&y[..yl.min(n.saturating_mul(out.len()))]),
            )
        };
        for max in [true, false] {
            let name = if max { "MaxPool2d" } else { "AvgPool2d" };
            let (e, want) = run(max, xl, yl, n);
            assert_eq!(e, "");
            let (e, y) = run(max, xl - 1, yl, n);
            assert!(
                e.contains(name) && e.contains("input for a batch of shape [2, 3, 6, 7]"),
                "{e}"
            );
            assert!(y.iter().all(|&v| v == (-5.0f32).to_bits()));
            let o = format!(
                "output for a batch of shape [2, 3, {}, {}]",
                out.height, out.width
            );
            assert!(run(max, xl, yl - 1, n).0.contains(&o));
            assert_eq!(run(max, xl + 5, yl + 3, n), (String::new(), want));
            assert_eq!(run(max, 0, 0, 0).0, "");
            for huge in [usize::MAX / 2, usize::MAX] {
                let e = run(max, xl, yl, huge).0;
                assert!(
                    e.contains("batch size") && e.contains(&format!("[{huge}, 3, 6, 7]")),
                    "{e}"
                );
            }
        }
    }
}

fn net() -> Network<f64> {
    let spec =
        "conv 4 3 pad 1, batchnorm, relu, maxpool 2, conv 3 3, avgpool 2 stride 1, flatten, dense";
    let input = Shape::Image(ImageShape::new(2, 10, 10));
    let layers = resolve(&parse(spec).unwrap(), input, 3).unwrap();
    Network::with_input(input, layers, Init::HeNormal, &mut Rng::seed_from_u64(0)).unwrap()
}

#[test]
fn mini_batches_of_zero_rows_and_accumulated_gradients() {
    let net = net();
    let mut ws = Workspace::new(&net, 4);
    let objective = Objective {
        loss: Loss::CrossEntropy,
        class_weights: None,
        denom: 4.0,
    };
    // An empty evaluation batch: no loss, nothing correct, the gradient written as zeros.
    let mut g = vec![1.0; net.param_count()];
    let batch = MiniBatch {
        n: 0,
        targets: BatchTargets::Classes(&[]),
        objective,
        rng: None,
    };
    let l = net.loss_and_gradient(&mut ws, batch, (&mut g, Beta::Replace));
    assert_eq!((l.sum, l.correct), (0.0, Some(0)));
    assert!(g.iter().all(|&v| v == 0.0));
    // Evaluation mode twice with Beta::Add: twice the gradient of one call (to rounding), the
    // same loss both times, and forward_loss agreeing with loss_and_gradient.
    let x = values(4 * 200, 13);
    ws.input_mut(4)
        .iter_mut()
        .zip(&x)
        .for_each(|(v, &x)| *v = f64::from(x));
    let classes = [0, 2, 1, 2];
    let batch = || MiniBatch {
        n: 4,
        targets: BatchTargets::Classes(&classes),
        objective,
        rng: None,
    };
    let mut once = vec![0.0; net.param_count()];
    let l1 = net.loss_and_gradient(&mut ws, batch(), (&mut once, Beta::Replace));
    let mut twice = once.clone();
    let l2 = net.loss_and_gradient(&mut ws, batch(), (&mut twice, Beta::Add));
    assert_eq!(l1, l2);
    assert_eq!(net.forward_loss(&mut ws, batch()), l1);
    assert!(once.iter().any(|&v| v != 0.0));
    for (a, b) in once.iter().zip(&twice) {
        assert!((2.0 * a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} {b}");
    }
}
