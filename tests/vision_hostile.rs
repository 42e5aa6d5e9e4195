//! Defects a hostile tester found in the convolutional-network feature, each pinned through the
//! binary: an --image-shape that contradicts the data's own shape, the training memory estimate,
//! a saturated num_batches_tracked, gradcheck at ReLU/max-pool kinks and its --tol, repeated
//! options inside a spec item, degenerate IDX files, and messages naming the right things.

mod common;

use std::path::Path;

use common::{fails, ok, s, write};

/// An IDX file: magic (unsigned bytes, `dims.len()` dimensions), big-endian sizes, data.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

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
