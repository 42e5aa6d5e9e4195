//! Minimum-of-N timings of the vision kernels, one thread — a complement to the criterion
//! benches in `kernels.rs` that stays meaningful on a shared machine: the fastest of many runs is
//! a run that was not interrupted, where a mean is inflated by whoever else holds the core.
//! `scripts/torch_vision_bench.py` measures PyTorch the same way, for side-by-side ratios.
//!
//! `cargo bench --bench vision_min [gemm|layers|step]`
//!
//! - gemm: the per-image products of each convolution (through `tensor::gemm`) and the dense
//!   784→100 forward product, the reference rate;
//! - layers: each kernel's forward and backward at the Keras convnet and LeNet-5 shapes, timed on
//!   16 images (a run short enough to fit a time slice) and scaled to a batch of 128 (the kernels
//!   work image by image, so the time is linear in the batch);
//! - step: one training step (forward, cross-entropy, backward, Adam) of each network at batch 128.

#[path = "support/convnet.rs"]
mod convnet;

use std::hint::black_box;
use std::time::Instant;

use downhill::layers::{
    BatchNorm, BnForward, BnStats, Conv2d, ConvBackward, ConvForward, ImageShape, MaxPool2d,
    Pool2d, RunningStats,
};
use downhill::tensor::{Beta, MatView, Threads, gemm};

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect()
}

/// Seconds of the fastest of `reps` calls (after one warm-up call).
fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn convs() -> [(&'static str, Conv2d, ImageShape, bool); 4] {
    let c = |i, o, k, p| Conv2d::new(i, o, [k, k], [1, 1], [p, p], true).unwrap();
    [
        (
            "keras conv1 1→32 3×3 28×28",
            c(1, 32, 3, 0),
            ImageShape::new(1, 28, 28),
            true,
        ),
        (
            "keras conv2 32→64 3×3 13×13",
            c(32, 64, 3, 0),
            ImageShape::new(32, 13, 13),
            false,
        ),
        (
            "lenet conv1 1→6 5×5 pad 2 28×28",
            c(1, 6, 5, 2),
            ImageShape::new(1, 28, 28),
            true,
        ),
        (
            "lenet conv2 6→16 5×5 14×14",
            c(6, 16, 5, 0),
            ImageShape::new(6, 14, 14),
            false,
        ),
    ]
}

fn gemms() {
    let rate = |m: usize, n: usize, k: usize, t: f64| 2.0 * (m * n * k) as f64 / t / 1e9;
    let (x, w) = (data(64 * 784), data(100 * 784));
    let mut z = vec![0.0f32; 64 * 100];
    let t = min_time(2000, || {
        let (xv, wv) = (MatView::new(&x, 64, 784), MatView::new(&w, 100, 784));
        gemm(
            black_box(&mut z),
            64,
            100,
            Beta::Replace,
            xv,
            wv.t(),
            Threads::ONE,
        )
    });
    println!(
        "gemm dense X·Wᵀ 64×784·784×100: {:.1} µs, {:.0} GFLOP/s",
        t * 1e6,
        rate(64, 100, 784, t)
    );
    for (name, conv, input, _) in convs() {
        let out = conv.output_shape(input).unwrap();
        let (o, k, p) = (conv.out_channels, conv.patch_len(), out.plane());
        let (w, u, dy) = (data(o * k), data(k * p), data(o * p));
        let (mut y, mut dw, mut du) = (
            vec![0.0f32; o * p],
            vec![0.0f32; o * k],
            vec![0.0f32; k * p],
        );
        let (wm, um, dym) = (
            MatView::new(&w, o, k),
            MatView::new(&u, k, p),
            MatView::new(&dy, o, p),
        );
        let t1 = min_time(2000, || {
            gemm(black_box(&mut y), o, p, Beta::Replace, wm, um, Threads::ONE)
        });
        let t2 = min_time(2000, || {
            gemm(
                black_box(&mut dw),
                o,
                k,
                Beta::Add,
                dym,
                um.t(),
                Threads::ONE,
            )
        });
        let t3 = min_time(2000, || {
            gemm(
                black_box(&mut du),
                k,
                p,
                Beta::Replace,
                wm.t(),
                dym,
                Threads::ONE,
            )
        });
        println!(
            "gemm {name} per image (O {o}, K {k}, P {p}): W·U {:.0}, δY·Uᵀ {:.0}, Wᵀ·δY {:.0} GFLOP/s",
            rate(o, p, k, t1),
            rate(o, k, p, t2),
            rate(k, p, o, t3)
        );
    }
}

/// The parts of each convolution's step at batch 128 (timed on 16 images, scaled): unfold
/// (im2col) and fold (col2im) with one patch buffer reused image after image, as the layer does,
/// and the three products per image (each image its own patch matrix).
fn parts() {
    const N: usize = 16;
    const SCALE: f64 = 128.0 / N as f64;
    for (name, conv, input, _) in convs() {
        let out = conv.output_shape(input).unwrap();
        let (o, k, p) = (conv.out_channels, conv.patch_len(), out.plane());
        let x = data(N * input.len());
        let (w, dy) = (data(o * k), data(N * o * p));
        let mut u = vec![0.0f32; N * k * p];
        let mut dx = vec![0.0f32; x.len()];
        let (mut y, mut dw) = (vec![0.0f32; N * o * p], vec![0.0f32; o * k]);
        let unfold = SCALE
            * min_time(300, || {
                for xn in x.chunks_exact(input.len()) {
                    conv.unfold(input, xn, black_box(&mut u[..k * p])).unwrap();
                }
            });
        let fold = SCALE
            * min_time(300, || {
                for dxn in dx.chunks_exact_mut(input.len()) {
                    conv.fold(input, &u[..k * p], black_box(dxn)).unwrap();
                }
            });
        let wm = MatView::new(&w, o, k);
        let fwd = SCALE
            * min_time(300, || {
                for (un, yn) in u.chunks_exact(k * p).zip(y.chunks_exact_mut(o * p)) {
                    let um = MatView::new(un, k, p);
                    gemm(black_box(yn), o, p, Beta::Replace, wm, um, Threads::ONE);
                }
            });
        let dwt = SCALE
            * min_time(300, || {
                for (un, dyn_) in u.chunks_exact(k * p).zip(dy.chunks_exact(o * p)) {
                    let (um, dym) = (MatView::new(un, k, p), MatView::new(dyn_, o, p));
                    gemm(
                        black_box(&mut dw),
                        o,
                        k,
                        Beta::Add,
                        dym,
                        um.t(),
                        Threads::ONE,
                    );
                }
            });
        let dut = SCALE
            * min_time(300, || {
                for (un, dyn_) in u.chunks_exact_mut(k * p).zip(dy.chunks_exact(o * p)) {
                    let dym = MatView::new(dyn_, o, p);
                    gemm(
                        black_box(un),
                        k,
                        p,
                        Beta::Replace,
                        wm.t(),
                        dym,
                        Threads::ONE,
                    );
                }
            });
        println!(
            "{name}: unfold {:.3} ms, fold {:.3} ms, W·U {:.3} ms, δY·Uᵀ {:.3} ms, Wᵀ·δY {:.3} ms",
            unfold * 1e3,
            fold * 1e3,
            fwd * 1e3,
            dwt * 1e3,
            dut * 1e3
        );
    }
}

fn layers() {
    const N: usize = 16;
    const SCALE: f64 = 128.0 / N as f64;
    const REPS: usize = 300;
    for (name, conv, input, first) in convs() {
        let out = conv.output_shape(input).unwrap();
        let flops = 2.0 * (128 * out.len() * conv.patch_len()) as f64;
        let (x, dy) = (data(N * input.len()), data(N * out.len()));
        let (w, b) = (data(conv.weight_len()), data(conv.bias_len()));
        let mut y = vec![0.0f32; N * out.len()];
        let mut scratch = vec![0.0f32; conv.scratch_len(input).unwrap()];
        let (mut dw, mut db, mut dx) = (
            vec![0.0f32; w.len()],
            vec![0.0f32; b.len()],
            vec![0.0f32; x.len()],
        );
        let f = SCALE
            * min_time(REPS, || {
                let y = black_box(&mut y[..]);
                conv.forward(
                    ConvForward {
                        input,
                        n: N,
                        x: &x,
                        w: &w,
                        b: &b,
                        y,
                    },
                    &mut scratch,
                    Threads::ONE,
                )
                .unwrap()
            });
        let bk = SCALE
            * min_time(REPS, || {
                let dx = if first { None } else { Some(&mut dx[..]) };
                let dw = black_box(&mut dw[..]);
                conv.backward(
                    ConvBackward {
                        dy: &dy,
                        input,
                        n: N,
                        x: &x,
                        w: &w,
                        dw,
                        db: &mut db,
                        dx,
                        beta: Beta::Replace,
                    },
                    &mut scratch,
                    Threads::ONE,
                )
                .unwrap()
            });
        let bflops = if first { flops } else { 2.0 * flops };
        println!(
            "{name}: forward {:.3} ms ({:.0} GFLOP/s), backward {:.3} ms ({:.0} GFLOP/s){}",
            f * 1e3,
            flops / f / 1e9,
            bk * 1e3,
            bflops / bk / 1e9,
            if first { " (no ∂X: first layer)" } else { "" }
        );
    }
    for (name, input) in [
        ("keras pool1 32×26×26", ImageShape::new(32, 26, 26)),
        ("keras pool2 64×11×11", ImageShape::new(64, 11, 11)),
        ("lenet pool1 6×28×28", ImageShape::new(6, 28, 28)),
        ("lenet pool2 16×10×10", ImageShape::new(16, 10, 10)),
    ] {
        let pool = MaxPool2d::new(2);
        let out = pool.output_shape(input).unwrap();
        let (x, dy) = (data(N * input.len()), data(N * out.len()));
        let (mut y, mut dx) = (vec![0.0f32; N * out.len()], vec![0.0f32; x.len()]);
        let f = SCALE
            * min_time(REPS, || {
                pool.forward(input, N, &x, black_box(&mut y)).unwrap()
            });
        let bk = SCALE
            * min_time(REPS, || {
                pool.backward(input, N, &x, &dy, black_box(&mut dx))
                    .unwrap()
            });
        let mut idx = vec![0u32; pool.indices_len(input, N).unwrap()];
        let fi = SCALE
            * min_time(REPS, || {
                let y = black_box(&mut y[..]);
                pool.forward_indexed(input, N, &x, y, &mut idx).unwrap()
            });
        let bi = SCALE
            * min_time(REPS, || {
                let dx = black_box(&mut dx[..]);
                pool.backward_indexed(input, N, &idx, &dy, dx).unwrap()
            });
        println!(
            "maxpool 2 {name}: forward {:.3} ms, backward {:.3} ms; with indices {:.3} + {:.3} ms",
            f * 1e3,
            bk * 1e3,
            fi * 1e3,
            bi * 1e3
        );
    }
    let input = ImageShape::new(32, 26, 26);
    let bn = BatchNorm::new(32);
    let (x, dy) = (data(N * input.len()), data(N * input.len()));
    let (gamma, beta) = (data(32), data(32));
    let (mut rm, mut rv, mut t) = (vec![0.0f32; 32], vec![1.0f32; 32], 0i64);
    let (mut y, mut dx, mut saved) = (
        vec![0.0f32; x.len()],
        vec![0.0f32; x.len()],
        vec![0.0f32; 64],
    );
    let (mut dg, mut db) = (vec![0.0f32; 32], vec![0.0f32; 32]);
    let s = input.plane();
    let f = SCALE
        * min_time(REPS, || {
            let y = black_box(&mut y[..]);
            bn.forward_train(
                BnForward {
                    n: N,
                    spatial: s,
                    x: &x,
                    gamma: &gamma,
                    beta: &beta,
                    y,
                },
                RunningStats {
                    mean: &mut rm,
                    var: &mut rv,
                    num_batches_tracked: &mut t,
                },
                &mut saved,
            )
            .unwrap()
        });
    let bk = SCALE
        * min_time(REPS, || {
            let dx = Some(black_box(&mut dx[..]));
            bn.backward(
                N,
                s,
                &x,
                &gamma,
                BnStats::Saved(&saved),
                &dy,
                &mut dg,
                &mut db,
                dx,
                Beta::Replace,
            )
            .unwrap()
        });
    println!(
        "batchnorm2d 32×26×26 (train): forward {:.3} ms, backward {:.3} ms",
        f * 1e3,
        bk * 1e3
    );
}

fn steps() {
    for (name, ops) in [
        ("keras convnet", convnet::keras()),
        ("lenet-5", convnet::lenet()),
    ] {
        let mut step = convnet::Step::new(ImageShape::new(1, 28, 28), &ops, 128);
        let t = min_time(60, || {
            black_box(step.run());
        });
        println!(
            "{name} step, batch 128: {:.3} ms ({:.0} GFLOP/s), epoch of 60,000 ≈ {:.2} s ({} parameters)",
            t * 1e3,
            step.flops() / t / 1e9,
            t * 60000.0 / 128.0,
            step.parameters()
        );
    }
}

/// One step's work at batch 128 done in chunks of `c` images (forward and backward of each
/// chunk, gradients of the chunks summed, one Adam step): how much of the step is memory traffic
/// that a chunk small enough for the caches avoids.
fn chunks() {
    for (name, ops) in [
        ("keras convnet", convnet::keras()),
        ("lenet-5", convnet::lenet()),
    ] {
        for c in [128, 64, 32, 16, 8, 4, 2] {
            let mut step = convnet::Step::new(ImageShape::new(1, 28, 28), &ops, c);
            let t = min_time(30, || {
                for _ in 0..128 / c {
                    black_box(step.run());
                }
            });
            println!("{name}: 128 images in chunks of {c}: {:.3} ms", t * 1e3);
        }
    }
}

/// Two threads, each running half of a batch of 128 (in chunks of `c` images) — the
/// data-parallel split — against one thread running all of it, min-of-N wall time of a step
/// (the gradient sum and optimiser step of a real step are left out: 35–62 k parameters).
fn threads() {
    for (name, ops) in [
        ("keras convnet", convnet::keras()),
        ("lenet-5", convnet::lenet()),
    ] {
        for c in [64, 16, 8, 4] {
            let shape = ImageShape::new(1, 28, 28);
            let mut one = convnet::Step::new(shape, &ops, c);
            let t1 = min_time(30, || {
                for _ in 0..128 / c {
                    black_box(one.run());
                }
            });
            let mut two = [
                convnet::Step::new(shape, &ops, c),
                convnet::Step::new(shape, &ops, c),
            ];
            let t2 = min_time(30, || {
                std::thread::scope(|s| {
                    for st in two.iter_mut() {
                        s.spawn(move || {
                            for _ in 0..64 / c {
                                black_box(st.run());
                            }
                        });
                    }
                });
            });
            println!(
                "{name}, chunks of {c}: one thread {:.3} ms, two threads {:.3} ms, speed-up {:.2}×",
                t1 * 1e3,
                t2 * 1e3,
                t1 / t2
            );
        }
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |s: &str| filter.is_empty() || filter.iter().any(|f| f == s);
    if wanted("gemm") {
        gemms();
    }
    if wanted("parts") {
        parts();
    }
    if wanted("layers") {
        layers();
    }
    if wanted("chunks") {
        chunks();
    }
    if wanted("threads") {
        threads();
    }
    if wanted("step") {
        steps();
    }
}
