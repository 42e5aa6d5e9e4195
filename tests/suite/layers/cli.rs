//! Convolutional networks through the binary: presets, `--layers`, the TOML `layers` key, image
//! inputs from the embedded digits and from a CSV with `--image-shape`, eval/predict/gradcheck on
//! conv models, `--init` from a PyTorch-style state_dict (I64 num_batches_tracked, no metadata),
//! and a hostile pass (absurd specs, shape mismatches, huge channel counts, broken model files):
//! clear errors, exit 2, no panic.

use std::path::Path;

use crate::common::{downhill, fails, ok, s, write};
use safetensors::{Dtype, tensor::TensorView};

const SMALL: &str = "conv 4 3 stride 2, batchnorm, relu, maxpool 2, flatten, dense";

fn train_small(out: &Path, extra: &[&str]) {
    ok(&[
        &[
            "train",
            "--quiet",
            "--layers",
            SMALL,
            "--epochs",
            "1",
            "--out",
            s(out),
        ],
        extra,
    ]
    .concat());
}

/// Rewrites a safetensors file tensor by tensor (`f` may drop or change one), keeping its metadata.
fn rewrite(
    path: &Path,
    to: &Path,
    mut f: impl FnMut(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<(Dtype, Vec<usize>, Vec<u8>)>,
) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut kept = Vec::new();
    for (name, view) in st.tensors() {
        if let Some(t) = f(
            &name,
            view.dtype(),
            view.shape().to_vec(),
            view.data().to_vec(),
        ) {
            kept.push((name, t));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = kept
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let out = safetensors::serialize(views, header.metadata().clone()).unwrap();
    std::fs::write(to, out).unwrap();
}

#[test]
fn presets_and_specs_train_and_the_model_evaluates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("lenet");
    let (out, _) = ok(&[
        "train",
        "--net",
        "lenet5",
        "--epochs",
        "1",
        "--json",
        "--out",
        s(&run),
    ]);
    let v = crate::common::json(out.as_bytes());
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "LeNet-5, one epoch on the digits: {acc}");
    let model = run.join("model.safetensors");
    let m = downhill::io::load(&model).unwrap();
    assert_eq!(m.net.param_count(), 61_706);
    assert_eq!(
        m.meta.input_shape,
        Some(downhill::layers::ImageShape::new(1, 28, 28))
    );
    let (e, _) = ok(&["eval", "--model", s(&model), "--data", "digits"]);
    assert!(e.contains("accuracy"), "{e}");
    // predict on CSV rows of pixels (the digits' layout, 784 columns).
    let mut rows = String::new();
    for i in 0..3 {
        let px: Vec<String> = (0..784)
            .map(|j| ((i * 31 + j * 7) % 256).to_string())
            .collect();
        rows += &px.join(",");
        rows += "\n";
    }
    let csv = write(dir.path(), "rows.csv", &rows);
    let (p, _) = ok(&["predict", "--model", s(&model), "--input", s(&csv)]);
    assert_eq!(p.lines().count(), 4, "{p}");
    // The Keras convnet preset: 34,826 parameters, as keras.io counts them.
    let run = dir.path().join("keras");
    ok(&[
        "train",
        "--quiet",
        "--net",
        "keras-convnet",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--out",
        s(&run),
    ]);
    let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
    assert_eq!(m.net.param_count(), 34_826);
    // `--net dense` is the dense network of --hidden.
    let run = dir.path().join("dense");
    ok(&[
        "train",
        "--quiet",
        "--net",
        "dense",
        "--hidden",
        "7",
        "--epochs",
        "1",
        "--out",
        s(&run),
    ]);
    let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
    assert_eq!(m.net.param_count(), 784 * 7 + 7 + 7 * 10 + 10);
}

#[test]
fn a_toml_config_names_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "net.toml",
        "layers = \"conv 2 5 stride 3, relu, avgpool 2, flatten, dropout 0.25, dense\"\nepochs = 1\n",
    );
    let run = dir.path().join("run");
    ok(&["train", "--quiet", "--config", s(&cfg), "--out", s(&run)]);
    let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
    let spec: Vec<String> = m.net.layers().iter().map(|l| l.spec()).collect();
    assert_eq!(
        spec.join(", "),
        "conv 2 5 stride 3, relu, avgpool 2, flatten, dropout 0.25, dense 10"
    );
    let bad = write(dir.path(), "bad.toml", "layers = \"conv 2 5, dense 10\"\n");
    let e = fails(&[
        "train",
        "--config",
        s(&bad),
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("[N, 2, 24, 24]") && e.contains("flatten"), "{e}");
}

/// A CSV of 6×6 images (constant border pixels, which a table would drop) with a declared shape.
#[test]
fn csv_images_with_a_declared_shape() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..120 {
        let label = i % 2;
        let mut px = [0u32; 36];
        for r in 1..5 {
            for c in 1..5 {
                // class 0: a vertical bar, class 1: a horizontal bar, with some noise
                let on = if label == 0 { c == 2 } else { r == 2 };
                px[r * 6 + c] = if on {
                    200 + (i * 7 % 50) as u32
                } else {
                    (i * 13 + r * c) as u32 % 40
                };
            }
        }
        let cells: Vec<String> = px.iter().map(u32::to_string).collect();
        text += &format!("{},{}\n", cells.join(","), ["v", "h"][label]);
    }
    let csv = write(dir.path(), "img.csv", &text);
    let run = dir.path().join("run");
    let spec = "conv 3 3 pad 1, relu, maxpool 2, flatten, dense";
    let (out, _) = ok(&[
        "train",
        "--data",
        s(&csv),
        "--image-shape",
        "1x6x6",
        "--layers",
        spec,
        "--epochs",
        "30",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--json",
        "--out",
        s(&run),
    ]);
    let v = crate::common::json(out.as_bytes());
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
    assert_eq!(
        m.net.inputs(),
        36,
        "every pixel kept, the constant border too"
    );
    let (p, _) = ok(&[
        "predict",
        "--model",
        s(&run.join("model.safetensors")),
        "--input",
        s(&csv),
    ]);
    assert_eq!(p.lines().count(), 121);
    // Without the shape, a conv layer on a table says what to add.
    let e = fails(&[
        "train",
        "--data",
        s(&csv),
        "--layers",
        spec,
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(
        e.contains("[N, C, H, W]") && e.contains("--image-shape"),
        "{e}"
    );
    let e = fails(&[
        "train",
        "--data",
        s(&csv),
        "--image-shape",
        "1x7x7",
        "--layers",
        spec,
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("49") && e.contains("36"), "{e}");
}

#[test]
fn gradcheck_of_a_conv_spec_passes_through_the_binary() {
    let (out, _) = ok(&[
        "gradcheck",
        "--layers",
        "conv 3 3 stride 2 pad 1, batchnorm, relu, maxpool 3 stride 2 pad 1, conv 4 2x3 nobias, tanh, flatten, batchnorm, dense 5, dense",
        "--image-shape",
        "2x9x12",
        "--batch",
        "4",
        "--json",
    ]);
    let v = crate::common::json(out.as_bytes());
    assert_eq!(v["passed"], true, "{v}");
    assert!(v["max_rel_error"].as_f64().unwrap() <= 1e-6);
    let e = fails(&["gradcheck", "--layers", "batchnorm, dense", "--batch", "1"]);
    assert!(e.contains("more than 1 value per channel"), "{e}");
}

/// `--init` reads a state_dict as PyTorch's `safetensors.torch.save_file(model.state_dict())`
/// writes it: no metadata, F32 weights, I64 num_batches_tracked scalars. With η = 0 the weights
/// stay the file's; the running statistics move on from the file's, one batch at a time.
#[test]
fn init_from_a_pytorch_style_state_dict() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "conv 2 3, batchnorm, relu, flatten, dense";
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
            vec![0, 0, 128, 63, 0, 0, 0, 64],
        ),
        (
            "1.num_batches_tracked",
            Dtype::I64,
            vec![],
            7i64.to_le_bytes().to_vec(),
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
        spec,
        "--init",
        s(&file),
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "0",
        "--batch-size",
        "100",
        "--patience",
        "0",
        "--out",
        s(&run),
    ]);
    let m = downhill::io::load(&run.join("model.safetensors")).unwrap();
    let want: Vec<f32> = [
        &tensors[0],
        &tensors[1],
        &tensors[2],
        &tensors[3],
        &tensors[7],
        &tensors[8],
    ]
    .iter()
    .flat_map(|t| {
        t.3.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
    })
    .collect();
    assert_eq!(m.net.params(), want.as_slice());
    // 3,600 training digits in batches of 100: 36 steps after the file's 7.
    assert_eq!(m.net.tracked()[1], 7 + 36);
    // Wrong shapes, a missing buffer, a float num_batches_tracked: refused with the name.
    for (what, change) in [
        ("shape", "0.weight"),
        ("missing", "1.running_var"),
        ("I64", "1.num_batches_tracked"),
    ] {
        let bad = dir.path().join(format!("bad-{change}.safetensors"));
        rewrite(&file, &bad, |n, d, sh, b| {
            if n != change {
                return Some((d, sh, b));
            }
            match what {
                "shape" => Some((d, vec![2, 1, 9], b)),
                "missing" => None,
                _ => Some((Dtype::F32, vec![], 7f32.to_le_bytes().to_vec())),
            }
        });
        let e = fails(&[
            "train",
            "--layers",
            spec,
            "--init",
            s(&bad),
            "--epochs",
            "1",
            "--out",
            s(&dir.path().join("x")),
        ]);
        assert!(e.contains(change) && e.contains(what), "{change}: {e}");
    }
}

/// Broken conv model files: a missing BatchNorm buffer, a float num_batches_tracked, a negative
/// running variance, metadata whose input shape does not hold the inputs.
#[test]
fn broken_conv_model_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_small(&run, &[]);
    let model = run.join("model.safetensors");
    for (name, case) in [
        ("1.running_mean", "drop"),
        ("1.num_batches_tracked", "f32"),
        ("1.running_var", "negative"),
    ] {
        let bad = dir.path().join(format!("{case}.safetensors"));
        rewrite(&model, &bad, |n, d, sh, b| {
            if n != name {
                return Some((d, sh, b));
            }
            match case {
                "drop" => None,
                "f32" => Some((Dtype::F32, vec![], 1f32.to_le_bytes().to_vec())),
                _ => Some((d, sh, (-1f32).to_le_bytes().repeat(b.len() / 4))),
            }
        });
        let e = fails(&["eval", "--model", s(&bad), "--data", "digits"]);
        assert!(e.contains(name), "{case}: {e}");
    }
}

/// Absurd specs and flags: exit 2, a message naming the problem, never a panic.
#[test]
fn hostile_specs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = s(&out);
    for (args, want) in [
        (vec!["--layers", "conv 8 3, dense"], "flatten"),
        (vec!["--layers", "conv 8 40, flatten, dense"], "40×40"),
        (
            vec!["--layers", "conv 8 3 stride 0, flatten, dense"],
            "at least 1",
        ),
        (vec!["--layers", "maxpool 0, flatten, dense"], "at least 1"),
        (
            vec!["--layers", "conv 8 3 pad 99999999, flatten, dense"],
            "too large",
        ),
        (
            vec![
                "--layers",
                "conv 16000000 3, conv 16000000 3, flatten, dense",
            ],
            "memory",
        ),
        (
            vec!["--layers", "conv 4000 3 pad 500, flatten, dense"],
            "memory",
        ),
        (
            vec!["--layers", "flatten, dense 5, conv 2 2, flatten, dense"],
            "[N, 5]",
        ),
        (vec!["--layers", "flatten, flatten, dense 3"], "[N, 10]"),
        (vec!["--layers", "conv 2 3, relu"], "[N, 10]"),
        (vec!["--layers", "maxpool 2 pad 2, flatten, dense"], "half"),
        (
            vec![
                "--layers",
                "batchnorm2d, flatten, batchnorm1d, flatten, dense",
            ],
            "",
        ),
        (vec!["--layers", "convolution 3 3"], "unknown layer"),
        (vec!["--layers", ",,,"], "empty"),
        (vec!["--layers", "dense 10 20"], "unexpected"),
        (vec!["--net", "resnet50"], "lenet5"),
        (
            vec!["--image-shape", "0x28x28", "--net", "lenet5"],
            "at least 1",
        ),
        (vec!["--image-shape", "3x28x28", "--net", "lenet5"], "2352"),
        (
            vec![
                "--net",
                "lenet5",
                "--batch-size",
                "1",
                "--layers",
                "batchnorm, flatten, dense",
            ],
            "",
        ),
        (
            vec![
                "--layers",
                "batchnorm, flatten, dense",
                "--batch-size",
                "4001",
            ],
            "",
        ),
    ] {
        let args: Vec<&str> = [&["train", "--epochs", "1", "--out", o][..], &args].concat();
        // Some are fine (a spec that builds); those must succeed or fail cleanly, never panic.
        let r = downhill().args(&args).output().unwrap();
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(!e.contains("panicked"), "{args:?}: {e}");
        if !want.is_empty() {
            assert_eq!(r.status.code(), Some(2), "{args:?}: {e}");
            assert!(e.contains(want), "{args:?}: {e}");
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
