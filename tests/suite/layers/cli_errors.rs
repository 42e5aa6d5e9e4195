//! Defects a hostile tester found in the convolutional-network feature, each pinned through the
//! binary: an --image-shape that contradicts the data's own shape, the training memory estimate,
//! a saturated num_batches_tracked, gradcheck at ReLU/max-pool kinks and its --tol, repeated
//! options inside a spec item, degenerate IDX files, and messages naming the right things.

use std::path::Path;

use crate::common::{fails, idx, ok, s, write};

/// An IDX file: magic (unsigned bytes, `dims.len()` dimensions), big-endian sizes, data.
/// An MNIST-format folder with `n` images of `rows × cols` (pixels and labels cycling).
fn idx_folder(dir: &Path, n: u32, rows: u32, cols: u32) {
    let pixels: Vec<u8> = (0..n * rows * cols).map(|i| (i * 37 % 256) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx(&[n, rows, cols], &pixels),
    )
    .unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[n], &labels)).unwrap();
}

#[test]
fn an_image_shape_that_contradicts_the_datas_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for shape in ["4x14x14", "1x784x1", "28x28x1"] {
        let e = fails(&[
            "train",
            "--epochs",
            "1",
            "--image-shape",
            shape,
            "--net",
            "lenet5",
            "--out",
            s(&out),
        ]);
        assert!(
            e.contains("image-shape")
                && e.contains("1×28×28")
                && e.contains(&shape.replace('x', "×")),
            "{shape}: {e}"
        );
    }
    assert!(!out.exists(), "no run folder for a refused run");
    // The config key too.
    let cfg = write(
        dir.path(),
        "c.toml",
        "image-shape = \"4x14x14\"\nnet = \"lenet5\"\nepochs = 1\n",
    );
    let e = fails(&["train", "--config", s(&cfg), "--out", s(&out)]);
    assert!(e.contains("1×28×28") && e.contains("4×14×14"), "{e}");
    // An IDX folder knows its shape as well.
    let data = dir.path().join("idx");
    std::fs::create_dir(&data).unwrap();
    idx_folder(&data, 40, 6, 6);
    let e = fails(&[
        "train",
        "--data",
        s(&data),
        "--image-shape",
        "4x3x3",
        "--layers",
        "conv 2 3, flatten, dense",
        "--epochs",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("1×6×6") && e.contains("4×3×3"), "{e}");
    // The data's own shape, spelt out, is fine.
    ok(&[
        "train",
        "--quiet",
        "--data",
        s(&data),
        "--image-shape",
        "1x6x6",
        "--layers",
        "conv 2 3, flatten, dense",
        "--epochs",
        "1",
        "--out",
        s(&out),
    ]);
}

/// 20,000 ReLU layers, batches of 1,000 on two threads: the step's workspace (an activation and
/// its gradient per layer, 1000 × 784 × 4 bytes each: 116.8 GiB) and each thread's for its 500
/// rows (as much again). The estimate used to count the first only.
#[test]
fn the_memory_check_counts_every_workspace_training_allocates() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{}flatten, dense", "relu, ".repeat(20_000));
    let e = fails(&[
        "train",
        "--epochs",
        "1",
        "--threads",
        "2",
        "--batch-size",
        "1000",
        "--layers",
        &spec,
        "--out",
        s(&dir.path().join("r")),
    ]);
    let gib: f64 = e
        .split("would need ")
        .nth(1)
        .and_then(|t| t.split(" GiB").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!((225.0..245.0).contains(&gib), "{gib} GiB: {e}");
}

/// A state_dict whose num_batches_tracked is already i64::MAX: training saturates the counter
/// (PyTorch's would overflow too; a wrapped negative count is a model eval refuses).
#[test]
fn a_saturated_num_batches_tracked_stays_saturated() {
    use safetensors::{Dtype, tensor::TensorView};
    let dir = tempfile::tempdir().unwrap();
    let f32s = |n: usize, a: f32| -> Vec<u8> {
        (0..n)
            .flat_map(|i| (a * ((i % 7) as f32 - 3.0)).to_le_bytes())
            .collect()
    };
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("0.weight", Dtype::F32, vec![2, 1, 3, 3], f32s(18, 0.1)),
        ("0.bias", Dtype::F32, vec![2], f32s(2, 0.01)),
        ("1.weight", Dtype::F32, vec![2], f32s(2, 0.5)),
        ("1.bias", Dtype::F32, vec![2], f32s(2, 0.2)),
        ("1.running_mean", Dtype::F32, vec![2], f32s(2, 0.3)),
        (
            "1.running_var",
            Dtype::F32,
            vec![2],
            [1f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        (
            "1.num_batches_tracked",
            Dtype::I64,
            vec![],
            (i64::MAX - 3).to_le_bytes().to_vec(),
        ),
        ("4.weight", Dtype::F32, vec![10, 1352], f32s(13_520, 0.001)),
        ("4.bias", Dtype::F32, vec![10], f32s(10, 0.02)),
    ];
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, sh, b)| (n.to_string(), TensorView::new(*d, sh.clone(), b).unwrap()))
        .collect();
    let file = dir.path().join("torch.safetensors");
    std::fs::write(&file, safetensors::serialize(views, None).unwrap()).unwrap();
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--quiet",
        "--layers",
        "conv 2 3, batchnorm, relu, flatten, dense",
        "--init",
        s(&file),
        "--epochs",
        "1",
        "--batch-size",
        "500",
        "--out",
        s(&run),
    ]);
    let model = run.join("model.safetensors");
    let m = downhill::io::load(&model).unwrap();
    assert_eq!(m.net.tracked()[1], i64::MAX);
    ok(&["eval", "--model", s(&model), "--data", "digits"]);
}

const KINKY: &str = "conv 32 3, relu, conv 32 3, relu, maxpool 2, flatten, dense";

/// Some parameters' differences ±h straddle a ReLU or max-pooling kink (where the central
/// difference measures neither slope): they are counted, said, and left out, and the check passes.
#[test]
fn gradcheck_leaves_out_kinks_and_says_so() {
    let (out, _) = ok(&[
        "gradcheck",
        "--layers",
        KINKY,
        "--image-shape",
        "1x14x14",
        "--batch",
        "2",
    ]);
    assert!(
        out.contains("straddle a ReLU or max-pooling kink") && out.contains("PASS"),
        "{out}"
    );
    let (out, _) = ok(&[
        "gradcheck",
        "--layers",
        KINKY,
        "--image-shape",
        "1x14x14",
        "--batch",
        "2",
        "--json",
    ]);
    let v = crate::common::json(out.as_bytes());
    assert!(v["kinks"].as_u64().unwrap() > 0, "{v}");
}

/// The kink rule cannot hide a wrong gradient: the same network with its backpropagated gradient
/// scaled, or one tensor's zeroed, or a single entry off, fails.
#[test]
fn gradcheck_still_fails_on_a_wrong_gradient() {
    use downhill::{
        Rng, gradcheck,
        loss::{BatchTargets, Loss},
        network::{MiniBatch, Network, Objective, Workspace},
        tensor::Beta,
    };
    use rand::{Rng as _, SeedableRng};
    let (input, layers) =
        downhill::netspec::from_settings(Some(KINKY), None, Some("1x14x14"), 196, 3, None)
            .unwrap()
            .unwrap();
    let mut rng = Rng::seed_from_u64(0);
    let mut net =
        Network::<f64>::with_input(input, layers, downhill::Init::HeNormal, &mut rng).unwrap();
    let n = 2;
    let x: Vec<f64> = (0..n * 196).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y = [1u32, 2];
    let mut ws = Workspace::new(&net, n);
    ws.input_mut(n).copy_from_slice(&x);
    let objective = Objective {
        loss: Loss::CrossEntropy,
        class_weights: None,
        denom: n as f64,
    };
    let mut grads = vec![0.0; net.param_count()];
    net.loss_and_gradient(
        &mut ws,
        MiniBatch {
            n,
            targets: BatchTargets::Classes(&y),
            objective,
            rng: None,
        },
        (&mut grads, Beta::Replace),
    );
    let mut f = |net: &Network<f64>| {
        ws.input_mut(n).copy_from_slice(&x);
        let out = net.forward(&mut ws, n, None);
        Loss::CrossEntropy.evaluate(out, n, 3, BatchTargets::Classes(&y), None) / n as f64
    };
    let at = f(&net);
    let good = gradcheck::check_against(&mut net, &grads, 1e-5, at, &mut f).unwrap();
    assert!(good.max_rel_error < 1e-6, "{good:?}");
    let tensors = net.tensors();
    let scaled: Vec<f64> = grads.iter().map(|g| g * 1.01).collect();
    let zeroed: Vec<f64> = grads
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            if tensors[2].range.contains(&i) {
                0.0
            } else {
                g
            }
        })
        .collect();
    let mut one_off = grads.clone();
    one_off[tensors[2].range.start + 5] += 1e-3;
    for (what, bad) in [
        ("scaled", scaled),
        ("zeroed", zeroed),
        ("one entry", one_off),
    ] {
        let r = gradcheck::check_against(&mut net, &bad, 1e-5, at, &mut f).unwrap();
        assert!(r.max_rel_error > 1e-4, "{what}: {r:?}");
    }
}

#[test]
fn gradcheck_tolerance_and_inputs_are_checked() {
    for tol in ["NaN", "0", "-1", "inf"] {
        let e = fails(&["gradcheck", "--tol", tol]);
        assert!(e.contains("--tol"), "{tol}: {e}");
    }
    let e = fails(&[
        "gradcheck",
        "--inputs",
        "5",
        "--image-shape",
        "1x2x2",
        "--layers",
        "conv 2 1, flatten, dense",
    ]);
    assert!(e.contains("--inputs") && e.contains("1x2x2"), "{e}");
    ok(&[
        "gradcheck",
        "--inputs",
        "4",
        "--image-shape",
        "1x2x2",
        "--layers",
        "conv 2 1, flatten, dense",
    ]);
}

#[test]
fn an_option_given_twice_in_a_spec_item_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    for (spec, option) in [
        ("conv 2 3 pad 1 pad 2, flatten, dense", "pad"),
        ("conv 2 3 stride 2 stride 3, flatten, dense", "stride"),
        ("conv 2 3 pad 1 padding 1, flatten, dense", "pad"),
        ("conv 2 3 nobias nobias, flatten, dense", "nobias"),
        ("maxpool 2 stride 2 stride 1, flatten, dense", "stride"),
    ] {
        let e = fails(&["train", "--epochs", "1", "--layers", spec, "--out", s(&out)]);
        let item = spec.split(',').next().unwrap();
        assert!(
            e.contains(&format!("item 1 \"{item}\": option {option} given twice")),
            "{spec}: {e}"
        );
    }
}

#[test]
fn degenerate_idx_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    for (n, rows, cols, want) in [
        (0, 28, 28, "holds no images"),
        (3, 0, 28, "0 rows × 28 columns"),
        (3, 5, 0, "5 rows × 0 columns"),
    ] {
        let data = dir.path().join(format!("idx-{n}-{rows}-{cols}"));
        std::fs::create_dir(&data).unwrap();
        idx_folder(&data, n, rows, cols);
        let e = fails(&[
            "train",
            "--epochs",
            "1",
            "--data",
            s(&data),
            "--out",
            s(&out),
        ]);
        assert!(
            e.contains("train-images-idx3-ubyte") && e.contains("header") && e.contains(want),
            "{n} {rows} {cols}: {e}"
        );
    }
}

/// Messages that named the wrong thing: "column column 0", a flag eval doesn't have,
/// BatchNorm without its kind.
#[test]
fn messages_name_the_right_things() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("conv");
    ok(&[
        "train",
        "--quiet",
        "--layers",
        "conv 2 3 stride 2, relu, flatten, dense",
        "--epochs",
        "1",
        "--out",
        s(&run),
    ]);
    let model = run.join("model.safetensors");
    // predict: an empty cell of a file without a header.
    let zeros = vec!["0"; 784].join(",");
    let input = write(dir.path(), "q.csv", format!("{zeros}\n,{}\n", &zeros[2..]));
    let e = fails(&["predict", "--model", s(&model), "--input", s(&input)]);
    assert!(
        e.contains("line 2, column 0") && !e.contains("column column"),
        "{e}"
    );
    // eval: a conv model whose metadata lost its input_shape.
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&meta["downhill"]).unwrap();
    assert!(v.as_object_mut().unwrap().remove("input_shape").is_some());
    meta.insert("downhill".into(), v.to_string());
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
    let stripped = dir.path().join("stripped.safetensors");
    std::fs::write(
        &stripped,
        safetensors::serialize(views, Some(meta)).unwrap(),
    )
    .unwrap();
    let e = fails(&["eval", "--model", s(&stripped), "--data", "digits"]);
    assert!(
        e.contains("input_shape") && !e.contains("--image-shape"),
        "{e}"
    );
    // BatchNorm1d on images says which BatchNorm.
    let e = fails(&[
        "train",
        "--epochs",
        "1",
        "--layers",
        "batchnorm1d, flatten, dense",
        "--out",
        s(&dir.path().join("bn")),
    ]);
    assert!(e.contains("layer 0 (batchnorm1d)"), "{e}");
}
