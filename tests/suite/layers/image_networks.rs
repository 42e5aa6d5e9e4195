//! Networks with image layers (issue 13's integration): shapes checked at build time with errors
//! that print them, the compact spec and presets, forward/backward through every layer against
//! finite differences (f64, BatchNorm in training mode), BatchNorm's running statistics (updated
//! only by a committed training step, used in evaluation), and the state_dict names and shapes.

use downhill::gradcheck;
use downhill::layers::{ImageShape, Layer};
use downhill::loss::{BatchTargets, Loss};
use downhill::netspec::{self, parse, resolve};
use downhill::network::{MiniBatch, Network, Objective, Shape, Workspace};
use downhill::tensor::Beta;
use downhill::{Init, Rng};
use rand::{Rng as _, SeedableRng};

fn image(c: usize, h: usize, w: usize) -> Shape {
    Shape::Image(ImageShape::new(c, h, w))
}

fn build(spec: &str, input: Shape, outputs: usize, seed: u64) -> Network<f64> {
    let layers = resolve(&parse(spec).unwrap(), input, outputs).unwrap();
    let mut rng = Rng::seed_from_u64(seed);
    Network::with_input(input, layers, Init::HeNormal, &mut rng).unwrap()
}

fn err(spec: &str, input: Shape, outputs: usize) -> String {
    match parse(spec).and_then(|s| resolve(&s, input, outputs)) {
        Ok(l) => panic!("{spec} built {l:?}"),
        Err(e) => e.to_string(),
    }
}

/// Gradcheck (central differences, h = 1e-5, f64) of a network with every image layer, with
/// stride and padding edge cases, BatchNorm in training mode and random biases/γ/β; the running
/// statistics are the same afterwards (no forward pass of the check commits them).
#[test]
fn every_image_layer_passes_gradcheck_in_training_mode() {
    let cases = [
        (
            "conv 3 3 stride 2 pad 1, batchnorm, relu, maxpool 3 stride 2 pad 1, conv 4 2x3 nobias, tanh, flatten, batchnorm, dense 5, sigmoid, dense",
            image(2, 9, 12),
        ),
        (
            "conv 2 1, avgpool 3 stride 2 pad 1, batchnorm2d, conv 3 3 pad 1 stride 3, flatten, dense",
            image(1, 7, 7),
        ),
        (
            "avgpool 2, maxpool 2 stride 1, flatten, gelu, dense",
            image(3, 6, 5),
        ),
        (
            "conv 4 5, batchnorm, maxpool 2, flatten, dense",
            image(1, 12, 12),
        ),
    ];
    for (i, (spec, input)) in cases.into_iter().enumerate() {
        let mut net = build(spec, input, 3, i as u64);
        let mut rng = Rng::seed_from_u64(100 + i as u64);
        for p in net.params_mut() {
            *p += rng.random_range(-0.3..0.3);
        }
        let before = net.buffers().to_vec();
        let n = 4;
        let x: Vec<f64> = (0..n * input.len())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
        let r = gradcheck::check(
            &mut net,
            &x,
            n,
            BatchTargets::Classes(&y),
            Loss::CrossEntropy,
            0.01,
            1e-5,
            0,
        )
        .unwrap();
        assert!(r.max_rel_error <= 1e-6, "{spec}: {:#?}", r.tensors);
        assert_eq!(
            net.buffers(),
            before.as_slice(),
            "{spec}: running stats changed"
        );
        assert!(net.tracked().iter().all(|&t| t == 0));
    }
}

#[test]
fn shape_errors_print_the_shapes() {
    let flat = Shape::Flat(784);
    let e = err("conv 64 3, flatten, dense", flat, 10);
    assert!(
        e.contains("conv 64 3") && e.contains("[N, C, H, W]") && e.contains("[N, 784]"),
        "{e}"
    );
    let e = err("conv 8 3, dense 10", image(1, 28, 28), 10);
    assert!(
        e.contains("dense 10") && e.contains("[N, 8, 26, 26]") && e.contains("flatten"),
        "{e}"
    );
    let e = err("conv 8 30, flatten, dense", image(1, 28, 28), 10);
    assert!(e.contains("30×30") && e.contains("1×28×28"), "{e}");
    let e = err("maxpool 2, flatten, dense", flat, 10);
    assert!(e.contains("maxpool 2") && e.contains("[N, 784]"), "{e}");
    let e = err("conv 8 3, relu", image(1, 28, 28), 10);
    assert!(e.contains("[N, 10]") && e.contains("[N, 8, 26, 26]"), "{e}");
    let e = err("flatten, dense 7", image(1, 4, 4), 10);
    assert!(e.contains("[N, 10]") && e.contains("[N, 7]"), "{e}");
    let e = err("batchnorm1d, flatten, dense", image(2, 4, 4), 10);
    assert!(
        e.contains("BatchNorm1d") && e.contains("[N, 2, 4, 4]"),
        "{e}"
    );
    // A direct Layer list whose channels disagree.
    let layers = resolve(
        &parse("conv 4 3, flatten, dense").unwrap(),
        image(3, 8, 8),
        2,
    )
    .unwrap();
    let e = Network::<f32>::with_zero_params_shaped(image(1, 8, 8), layers)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[N, 3, H, W]") && e.contains("[N, 1, 8, 8]"),
        "{e}"
    );
}

#[test]
fn spec_errors_name_the_item() {
    for (spec, want) in [
        ("conv 32", "OUT_CHANNELS KERNEL"),
        ("conv 32 3 stride 0", "at least 1"),
        ("conv 0 3", "at least 1"),
        ("conv 32 3 stride", "needs a value"),
        ("conv 32 3 bogus", "unknown option"),
        ("conv 99999999999 3", "too large"),
        ("conv -1 3", "whole number"),
        ("maxpool", "window size"),
        ("maxpool 2 pad 2", "half the window"),
        ("dropout 1.5", "[0, 1)"),
        ("dense 0", "at least 1"),
        ("relu,, dense", "empty"),
        ("", "empty network"),
        ("softmaxx", "unknown layer"),
        ("flatten 3", "unexpected"),
    ] {
        let e = parse(spec).unwrap_err().to_string();
        assert!(e.contains(want), "{spec:?}: {e}");
    }
    assert!(netspec::parse_image_shape("1x28x28").is_ok());
    assert_eq!(
        netspec::parse_image_shape("28x28").unwrap(),
        ImageShape::new(1, 28, 28)
    );
    for bad in ["0x28x28", "1x28", "a", "1x2x3x4", "", "1x-2x3"] {
        if bad == "1x28" {
            continue;
        }
        assert!(netspec::parse_image_shape(bad).is_err(), "{bad}");
    }
}

/// The presets are bench/torch_cnn.py's networks: parameter counts (PyTorch: Keras convnet
/// 34,826, LeNet-5 61,706) and state_dict names and shapes.
#[test]
fn presets_match_the_pytorch_networks() {
    let input = image(1, 28, 28);
    let keras = build(netspec::KERAS_CONVNET, input, 10, 0);
    assert_eq!(keras.param_count(), 34_826);
    let names: Vec<(String, Vec<usize>)> = keras
        .tensors()
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    assert_eq!(
        names,
        [
            ("0.weight", vec![32, 1, 3, 3]),
            ("0.bias", vec![32]),
            ("3.weight", vec![64, 32, 3, 3]),
            ("3.bias", vec![64]),
            ("8.weight", vec![10, 1600]),
            ("8.bias", vec![10]),
        ]
        .map(|(n, s)| (n.to_string(), s))
    );
    let lenet = build(netspec::LENET5, input, 10, 0);
    assert_eq!(lenet.param_count(), 61_706);
    assert_eq!(lenet.shape(7), Shape::Flat(400));
    let bn = build(
        "conv 4 3, batchnorm, flatten, batchnorm, dense",
        input,
        10,
        0,
    );
    let t: Vec<String> = bn.tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(
        t,
        [
            "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias"
        ]
    );
    let b: Vec<String> = bn.buffer_tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(
        b,
        [
            "1.running_mean",
            "1.running_var",
            "3.running_mean",
            "3.running_var"
        ]
    );
    // γ = 1, β = 0, running mean 0, variance 1, as PyTorch starts them.
    assert_eq!(&bn.params()[4 * 9 + 4..4 * 9 + 8], &[1.0; 4]);
    assert_eq!(
        &bn.buffers()[..8],
        &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    );
}

/// A training forward pass computes new running statistics, which only
/// `commit_batch_stats` makes the network's (PyTorch's momentum 0.1 and unbiased variance);
/// evaluation normalises with them.
#[test]
fn batchnorm_running_stats_follow_committed_training_steps() {
    let mut net = build("batchnorm, dense", Shape::Flat(2), 2, 0);
    let n = 4;
    let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 60.0];
    let mut ws = Workspace::new(&net, n);
    ws.input_mut(n).copy_from_slice(&x);
    let mut rng = Rng::seed_from_u64(0);
    net.forward(&mut ws, n, Some(&mut rng));
    assert_eq!(net.buffers(), &[0.0, 0.0, 1.0, 1.0]);
    net.commit_batch_stats(&ws);
    // mean 3, unbiased variance (4 + 1 + 0 + 9)/3 = 14/3 for feature 0; ×10, ×100 for feature 1.
    let want = [0.3, 3.0, 0.9 + 0.1 * 14.0 / 3.0, 0.9 + 0.1 * 1400.0 / 3.0];
    for (g, w) in net.buffers().iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{:?}", net.buffers());
    }
    assert_eq!(net.tracked(), &[1, 0]);
    // Evaluation: x̂ = (x − running_mean)/√(running_var + ε), then the dense layer.
    ws.input_mut(n).copy_from_slice(&x);
    net.forward(&mut ws, n, None);
    net.commit_batch_stats(&ws); // an evaluation pass commits nothing
    assert_eq!(net.tracked(), &[1, 0]);
    // Loss and gradient in eval mode agree with finite differences too.
    let objective = Objective {
        loss: Loss::Mse,
        class_weights: None,
        denom: n as f64,
    };
    let t = [0.5; 8];
    let mut g = vec![0.0; net.param_count()];
    ws.input_mut(n).copy_from_slice(&x);
    net.loss_and_gradient(
        &mut ws,
        MiniBatch {
            n,
            targets: BatchTargets::Values(&t),
            objective,
            rng: None,
        },
        (&mut g, Beta::Replace),
    );
    for (p, &gp) in g.iter().enumerate() {
        let f = |net: &Network<f64>, ws: &mut Workspace<f64>| {
            ws.input_mut(n).copy_from_slice(&x);
            let out = net.forward(ws, n, None).to_vec();
            Loss::Mse.evaluate(&out, n, 2, BatchTargets::Values(&t), None) / n as f64
        };
        let w = net.params()[p];
        net.params_mut()[p] = w + 1e-6;
        let hi = f(&net, &mut ws);
        net.params_mut()[p] = w - 1e-6;
        let lo = f(&net, &mut ws);
        net.params_mut()[p] = w;
        let num = (hi - lo) / 2e-6;
        assert!(
            (num - gp).abs() <= 1e-6 * num.abs().max(1e-3),
            "param {p}: {num} vs {gp}"
        );
    }
    // A training batch of one example is refused, as PyTorch refuses it.
    assert!(net.check_train_batch(1).is_err());
    assert!(net.check_train_batch(2).is_ok());
    let conv = build("conv 1 1, batchnorm, flatten, dense", image(1, 2, 1), 2, 0);
    assert!(conv.check_train_batch(1).is_ok(), "2 values per channel");
}

#[test]
fn layer_specs_round_trip() {
    let spec = "conv 6 5 pad 2, relu, maxpool 3 stride 2 pad 1, conv 4 3x5 stride 2 nobias, avgpool 2, batchnorm, flatten, dropout 0.25, dense 7";
    let layers = resolve(&parse(spec).unwrap(), image(1, 28, 28), 7).unwrap();
    let back: Vec<String> = layers.iter().map(Layer::spec).collect();
    assert_eq!(back.join(", "), spec);
    // Metadata JSON round trip.
    let json = serde_json::to_string(&layers).unwrap();
    let again: Vec<Layer> = serde_json::from_str(&json).unwrap();
    assert_eq!(again, layers);
}
