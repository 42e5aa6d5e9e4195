//! Kernel benchmarks at training shapes (MLP 784-100-10, batch 64): the matrix products of one
//! step, each layer's forward and backward, the optimiser steps and the mini-batch gather.
//! Run with `cargo bench --bench kernels`; GFLOP/s = 2·m·n·k / time for the products.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use downhill::data::{BatchBuf, Dataset, Features, Targets};
use downhill::layers::{Activation, Dense};
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

criterion_group!(benches, products, layers, optimisers, gather);
criterion_main!(benches);
