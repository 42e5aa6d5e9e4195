//! Kernel benchmarks at training shapes (MLP 784-100-10, batch 64): the matrix products of one
//! step, each layer's forward and backward, the optimiser steps and the mini-batch gather.
//! Run with `cargo bench --bench kernels`; GFLOP/s = 2·m·n·k / time for the products.

#[path = "support/convnet.rs"]
mod convnet;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use downhill::data::{BatchBuf, Dataset, Features, Targets};
use downhill::layers::{
    Activation, BatchNorm, BnForward, BnStats, Conv2d, ConvBackward, ConvForward, Dense,
    ImageShape, MaxPool2d, Pool2d, RunningStats,
};
use downhill::optim::OptimizerConfig;
use downhill::tensor::{Beta, MatView, Threads, gemm};

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 1000.0) - 0.5)
        .collect()
}

fn products(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm");
    // (name, m, n, k, a transposed, b transposed): the five products of a 784-100-10 step.
    let shapes = [
        ("fwd1 X·W1ᵀ 64x784·784x100", 64, 100, 784, false, true),
        ("bwd1 dZᵀ·X 100x64·64x784", 100, 784, 64, true, false),
        ("fwd2 H·W2ᵀ 64x100·100x10", 64, 10, 100, false, true),
        ("bwd2 dZᵀ·H 10x64·64x100", 10, 100, 64, true, false),
        ("bwd2 dZ·W2 64x10·10x100", 64, 100, 10, false, false),
    ];
    for (name, m, n, k, ta, tb) in shapes {
        let a = data(m * k);
        let b = data(k * n);
        let mut out = vec![0.0f32; m * n];
        let va = if ta {
            MatView::new(&a, k, m).t()
        } else {
            MatView::new(&a, m, k)
        };
        let vb = if tb {
            MatView::new(&b, n, k).t()
        } else {
            MatView::new(&b, k, n)
        };
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(name, |bench| {
            bench.iter(|| {
                gemm(
                    black_box(&mut out),
                    m,
                    n,
                    Beta::Replace,
                    va,
                    vb,
                    Threads::ONE,
                )
            })
        });
    }
    g.finish();
}

fn layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("layers");
    let d = Dense {
        inputs: 784,
        outputs: 100,
    };
    let (x, w, b) = (data(64 * 784), data(784 * 100), data(100));
    let mut z = vec![0.0f32; 64 * 100];
    let mut scratch = vec![0.0f32; d.scratch_len(64)];
    g.bench_function("dense forward 64x784→100", |bench| {
        bench.iter(|| {
            d.forward(
                &x,
                64,
                &w,
                &b,
                black_box(&mut z),
                &mut scratch,
                Threads::ONE,
            )
        })
    });
    let (mut dw, mut db) = (vec![0.0f32; 784 * 100], vec![0.0f32; 100]);
    let dz = data(64 * 100);
    g.bench_function("dense backward 64x784→100 (no dX)", |bench| {
        bench.iter(|| {
            d.backward(
                &x,
                64,
                &w,
                &dz,
                black_box(&mut dw),
                &mut db,
                None,
                Beta::Replace,
                Threads::ONE,
            )
        })
    });
    let mut a = vec![0.0f32; 64 * 100];
    let mut da = vec![0.0f32; 64 * 100];
    for act in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
        g.bench_function(format!("{} forward 64x100", act.name()), |bench| {
            bench.iter(|| act.forward(&z, black_box(&mut a)))
        });
        g.bench_function(format!("{} backward 64x100", act.name()), |bench| {
            bench.iter(|| act.backward(&z, &a, &dz, black_box(&mut da)))
        });
    }
    g.finish();
}

fn optimisers(c: &mut Criterion) {
    let mut g = c.benchmark_group("optimiser step, 79,510 parameters (784-100-10)");
    let n = 784 * 100 + 100 + 100 * 10 + 10;
    let grads = data(n);
    g.throughput(Throughput::Elements(n as u64));
    for name in OptimizerConfig::NAMES {
        let mut opt = OptimizerConfig::default_for(name).unwrap().build::<f32>(n);
        let mut p = data(n);
        g.bench_function(name, |bench| {
            bench.iter(|| opt.step(black_box(&mut p), &grads, 1e-3))
        });
    }
    g.finish();
}

fn gather(c: &mut Criterion) {
    let n = 60_000;
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
    let mut d = Dataset::new(
        Features::U8(pixels),
        784,
        Targets::Classes {
            labels: (0..n).map(|i| (i % 10) as u32).collect(),
            n_classes: 10,
        },
    )
    .unwrap();
    d.set_normalizer(d.fit_normalizer(downhill::data::Normalization::Scale))
        .unwrap();
    let idx: Vec<usize> = (0..64).map(|i| (i * 937) % n).collect();
    let mut x = vec![0.0f32; 64 * 784];
    let mut y = BatchBuf::new(&d, 64);
    c.bench_function("gather 64 images (u8 → scaled f32)", |bench| {
        bench.iter(|| d.gather(&idx, black_box(&mut x), &mut y))
    });
}

/// The convolution layers of the Keras "simple MNIST convnet" (conv 1→32 3×3 on 28×28, pool 2,
/// conv 32→64 3×3, pool 2) and LeNet-5 (conv 1→6 5×5 pad 2, pool 2, conv 6→16 5×5, pool 2), batch
/// 128, one thread: forward and backward by im2col + GEMM and by the direct loops. Throughput
/// counts the FLOPs of the sums (2 per multiply-add; the backward pass without ∂X for a first
/// layer, whose input is data), so criterion's "elem/s" reads as FLOP/s.
fn conv(c: &mut Criterion) {
    const N: usize = 128;
    let mut g = c.benchmark_group("conv");
    g.sample_size(20);
    // (name, conv, input, first layer)
    let layers = [
        (
            "keras conv1 1→32 3×3 28×28",
            Conv2d::new(1, 32, [3, 3], [1, 1], [0, 0], true).unwrap(),
            ImageShape::new(1, 28, 28),
            true,
        ),
        (
            "keras conv2 32→64 3×3 13×13",
            Conv2d::new(32, 64, [3, 3], [1, 1], [0, 0], true).unwrap(),
            ImageShape::new(32, 13, 13),
            false,
        ),
        (
            "lenet conv1 1→6 5×5 pad 2 28×28",
            Conv2d::new(1, 6, [5, 5], [1, 1], [2, 2], true).unwrap(),
            ImageShape::new(1, 28, 28),
            true,
        ),
        (
            "lenet conv2 6→16 5×5 14×14",
            Conv2d::new(6, 16, [5, 5], [1, 1], [0, 0], true).unwrap(),
            ImageShape::new(6, 14, 14),
            false,
        ),
    ];
    for (name, conv, input, first) in layers {
        let out = conv.output_shape(input).unwrap();
        let macs = (N * out.len() * conv.patch_len()) as u64;
        let x = data(N * input.len());
        let (w, b) = (data(conv.weight_len()), data(conv.bias_len()));
        let dy = data(N * out.len());
        let mut y = vec![0.0f32; N * out.len()];
        let mut scratch = vec![0.0f32; conv.scratch_len(input).unwrap()];
        let (mut dw, mut db) = (vec![0.0f32; w.len()], vec![0.0f32; b.len()]);
        let mut dx = vec![0.0f32; x.len()];
        g.throughput(Throughput::Elements(2 * macs));
        for route in ["im2col", "direct"] {
            g.bench_function(format!("{name} forward {route}"), |bench| {
                bench.iter(|| {
                    let y = black_box(&mut y[..]);
                    let pass = ConvForward {
                        input,
                        n: N,
                        x: &x,
                        w: &w,
                        b: &b,
                        y,
                    };
                    match route {
                        "im2col" => conv.forward(pass, &mut scratch, Threads::ONE),
                        _ => conv.forward_direct(pass),
                    }
                    .unwrap()
                })
            });
        }
        g.throughput(Throughput::Elements(if first { 2 } else { 4 } * macs));
        for route in ["im2col", "direct"] {
            g.bench_function(format!("{name} backward {route}"), |bench| {
                bench.iter(|| {
                    let pass = ConvBackward {
                        dy: &dy,
                        input,
                        n: N,
                        x: &x,
                        w: &w,
                        dw: black_box(&mut dw),
                        db: &mut db,
                        dx: if first { None } else { Some(&mut dx[..]) },
                        beta: Beta::Replace,
                    };
                    match route {
                        "im2col" => conv.backward(pass, &mut scratch, Threads::ONE),
                        _ => conv.backward_direct(pass),
                    }
                    .unwrap()
                })
            });
        }
    }
    // The per-image products of the Keras conv2 (W·U, δY·Uᵀ, Wᵀ·δY), for the GEMM rate itself.
    let (o, k, p) = (64, 288, 121);
    let (a, bm) = (data(o * k), data(k * p));
    let mut out = vec![0.0f32; o * p.max(k) * k.max(p)];
    g.throughput(Throughput::Elements((2 * o * k * p) as u64));
    g.bench_function("gemm W·U 64x288·288x121", |bench| {
        bench.iter(|| {
            gemm(
                black_box(&mut out),
                o,
                p,
                Beta::Replace,
                MatView::new(&a, o, k),
                MatView::new(&bm, k, p),
                Threads::ONE,
            )
        })
    });
    g.finish();
}

/// Pooling and batch normalisation at the two networks' shapes, batch 128, one thread.
fn pool_norm(c: &mut Criterion) {
    const N: usize = 128;
    let mut g = c.benchmark_group("pool and batchnorm");
    g.sample_size(20);
    for (name, input) in [
        ("keras pool1 32×26×26", ImageShape::new(32, 26, 26)),
        ("keras pool2 64×11×11", ImageShape::new(64, 11, 11)),
        ("lenet pool1 6×28×28", ImageShape::new(6, 28, 28)),
        ("lenet pool2 16×10×10", ImageShape::new(16, 10, 10)),
    ] {
        let pool = MaxPool2d::new(2);
        let out = pool.output_shape(input).unwrap();
        let x = data(N * input.len());
        let dy = data(N * out.len());
        let mut y = vec![0.0f32; N * out.len()];
        let mut dx = vec![0.0f32; x.len()];
        g.throughput(Throughput::Elements((N * input.len()) as u64));
        g.bench_function(format!("maxpool 2 {name} forward"), |bench| {
            bench.iter(|| pool.forward(input, N, &x, black_box(&mut y)).unwrap())
        });
        g.bench_function(format!("maxpool 2 {name} backward"), |bench| {
            bench.iter(|| {
                pool.backward(input, N, &x, &dy, black_box(&mut dx))
                    .unwrap()
            })
        });
    }
    let input = ImageShape::new(32, 26, 26);
    let bn = BatchNorm::new(32);
    let (x, dy) = (data(N * input.len()), data(N * input.len()));
    let (gamma, beta) = (data(32), data(32));
    let (mut rm, mut rv, mut t) = (vec![0.0f32; 32], vec![1.0f32; 32], 0i64);
    let (mut y, mut dx) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
    let mut saved = vec![0.0f32; bn.saved_len()];
    let (mut dg, mut db) = (vec![0.0f32; 32], vec![0.0f32; 32]);
    g.throughput(Throughput::Elements(x.len() as u64));
    g.bench_function("batchnorm2d 32×26×26 train forward", |bench| {
        bench.iter(|| {
            bn.forward_train(
                BnForward {
                    n: N,
                    spatial: input.plane(),
                    x: &x,
                    gamma: &gamma,
                    beta: &beta,
                    y: black_box(&mut y),
                },
                RunningStats {
                    mean: &mut rm,
                    var: &mut rv,
                    num_batches_tracked: &mut t,
                },
                &mut saved,
            )
            .unwrap()
        })
    });
    g.bench_function("batchnorm2d 32×26×26 train backward", |bench| {
        bench.iter(|| {
            bn.backward(
                N,
                input.plane(),
                &x,
                &gamma,
                BnStats::Saved(&saved),
                &dy,
                &mut dg,
                &mut db,
                Some(black_box(&mut dx)),
                Beta::Replace,
            )
            .unwrap()
        })
    });
    g.finish();
}

/// One whole training step (forward, cross-entropy, backward, Adam) of the Keras convnet and
/// LeNet-5 at batch 128, one thread; × 60,000/128 estimates an epoch's compute. FLOPs counted:
/// the convolutions' and dense layers' products.
fn convnet_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("convnet step, batch 128");
    g.sample_size(20);
    for (name, ops, params) in [
        ("keras convnet", convnet::keras(), 34_826),
        ("lenet-5", convnet::lenet(), 61_706),
    ] {
        let mut step = convnet::Step::new(ImageShape::new(1, 28, 28), &ops, 128);
        assert_eq!(step.parameters(), params, "{name}: parameter count");
        g.throughput(Throughput::Elements(step.flops() as u64));
        g.bench_function(name, |bench| bench.iter(|| black_box(step.run())));
    }
    g.finish();
}

criterion_group!(
    benches,
    products,
    layers,
    optimisers,
    gather,
    conv,
    pool_norm,
    convnet_step
);
criterion_main!(benches);
