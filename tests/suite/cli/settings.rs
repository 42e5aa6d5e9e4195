//! Settings a hostile user gave that used to be accepted (and ignored, or run into a failure
//! blamed on something else): each is now a clear error naming the flag, before any work, with
//! no run folder left behind.

use crate::common::{fails, ok, s, write};

/// `args` fail, name `flag` in the error, and leave no folder `out`.
fn refused(args: &[&str], flag: &str, out: &std::path::Path) {
    let e = fails(args);
    assert!(
        e.contains(&format!("invalid setting {flag}")),
        "{args:?}: {e}"
    );
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn dense_settings_with_a_list_of_layers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = s(&out);
    let flat = "flatten, dense 10";
    refused(
        &[
            "train", "--layers", flat, "--hidden", "50", "--epochs", "1", "--out", o,
        ],
        "hidden",
        &out,
    );
    refused(
        &[
            "train",
            "--net",
            "lenet5",
            "--dropout",
            "0.3",
            "--epochs",
            "1",
            "--out",
            o,
        ],
        "dropout",
        &out,
    );
    refused(
        &[
            "train",
            "--layers",
            flat,
            "--activation",
            "tanh",
            "--out",
            o,
        ],
        "activation",
        &out,
    );
    // In a config file too, and layers with net there: the error names the file and the line.
    let c = write(
        dir.path(),
        "c.toml",
        "layers = \"flatten, dense 10\"\nhidden = [3]\n",
    );
    let e = fails(&["train", "--config", s(&c), "--out", o]);
    assert!(
        e.contains("c.toml: line 2, key hidden: hidden = 3 has no effect with key layers, line 1"),
        "{e}"
    );
    assert!(!out.exists());
    let c = write(
        dir.path(),
        "d.toml",
        "layers = \"flatten, dense 10\"\nnet = \"lenet5\"\n",
    );
    let e = fails(&["train", "--config", s(&c), "--out", o]);
    assert!(e.contains("d.toml: line 2, key net: net = lenet5"), "{e}");
    assert!(!out.exists());
    // --net dense is the network of --hidden.
    ok(&[
        "train", "--net", "dense", "--hidden", "8", "--epochs", "1", "--out", o,
    ]);
}

#[test]
fn absurd_optimiser_and_thread_settings_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = s(&out);
    refused(
        &["train", "--momentum", "1.5", "--out", o],
        "momentum",
        &out,
    );
    refused(
        &[
            "train",
            "--optimizer",
            "rmsprop",
            "--momentum",
            "2",
            "--out",
            o,
        ],
        "momentum",
        &out,
    );
    refused(&["train", "--threads", "1000", "--out", o], "threads", &out);
    let c = write(dir.path(), "c.toml", "momentum = 1.5\n");
    refused(&["train", "--config", s(&c), "--out", o], "momentum", &out);
}

#[test]
fn landscape_and_predict_check_their_outputs_first() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&["train", "--epochs", "1", "--hidden", "8", "--out", s(&run)]);
    let model = run.join("model.safetensors");
    let m = s(&model);
    // Refused before the (long) computation of the slice.
    let e = fails(&[
        "landscape",
        "--model",
        m,
        "--data",
        "digits",
        "--out",
        "picture",
    ]);
    assert!(e.contains("invalid setting out"), "{e}");
    let e = fails(&["landscape", "--out", "picture.txt"]);
    assert!(e.contains("invalid setting out"), "{e}");
    let e = fails(&[
        "landscape",
        "--model",
        m,
        "--data",
        "digits",
        "--examples",
        "0",
    ]);
    assert!(e.contains("invalid setting examples"), "{e}");
    // predict never writes its predictions over the model or the input it reads.
    let before = std::fs::read(&model).unwrap();
    let input = write(dir.path(), "in.csv", "x\n");
    let e = fails(&["predict", "--model", m, "--input", s(&input), "--output", m]);
    assert!(e.contains("invalid setting output"), "{e}");
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let e = fails(&[
        "predict",
        "--model",
        m,
        "--input",
        s(&input),
        "--output",
        s(&input),
    ]);
    assert!(e.contains("--input file"), "{e}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "x\n");
}

/// Seventh hostile pass, item 7: a network described on the command line replaces the config
/// file's conflicting network keys, as any flag replaces the file's value (each was refused,
/// blaming a "setting" the user never typed); a conflict between a flag and the file that is
/// left says which key of which file, and on which line.
#[test]
fn network_flags_replace_a_config_files_network_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "t.csv", small_table());
    let cases = [
        (
            "hidden = [7]\nactivation = \"tanh\"\n",
            &["--layers", "dense 5, relu, dense"][..],
        ),
        ("dropout = 0.2\n", &["--hidden", "none"][..]),
        ("net = \"lenet5\"\n", &["--hidden", "5"][..]),
        (
            "layers = \"dense 4, relu, dense\"\n",
            &["--dropout", "0.1"][..],
        ),
    ];
    for (i, (text, flags)) in cases.iter().enumerate() {
        let c = write(dir.path(), &format!("c{i}.toml"), text);
        let out = dir.path().join(format!("r{i}"));
        let args = [
            &["train", "--data", s(&data), "--epochs", "1", "--quiet"][..],
            &["--config", s(&c), "--out", s(&out)],
            flags,
        ]
        .concat();
        ok(&args);
    }
    // The flag's network is the one trained: --layers replaces the file's hidden = [7].
    let m = downhill::io::load(&dir.path().join("r0/model.safetensors")).unwrap();
    assert_eq!(m.net.param_count(), 2 * 5 + 5 + 5 * 2 + 2);
    // A flag that leaves the file's conflicting key: named with the file and its line.
    let c = write(dir.path(), "n.toml", "epochs = 1\nhidden = []\n");
    let e = fails(&[
        "train",
        "--data",
        s(&data),
        "--config",
        s(&c),
        "--activation",
        "tanh",
    ]);
    assert!(
        e.contains(&format!(
            "invalid setting activation = tanh: has no effect with no hidden layers (key \
             hidden, line 2 of {})",
            c.display()
        )),
        "{e}"
    );
    let c = write(
        dir.path(),
        "m.toml",
        "epochs = 1\nhidden = []\ndropout = 0.3\n",
    );
    let e = fails(&["train", "--data", s(&data), "--config", s(&c)]);
    assert!(
        e.contains("m.toml: line 3, key dropout: dropout = 0.3 has no effect with no hidden layers (key hidden, line 2 of the same file)"),
        "{e}"
    );
}

/// 40 rows, two features, a 0/1 label.
fn small_table() -> String {
    let mut t = String::from("a,b,y\n");
    for i in 0..40 {
        let (a, b) = (
            ((i * 37) % 17) as f64 / 8.0 - 1.0,
            ((i * 11) % 13) as f64 / 6.0 - 1.0,
        );
        t += &format!("{a},{b},{}\n", u8::from(a + b > 0.0));
    }
    t
}

/// Seventh hostile pass, item 3: `lr-find` refuses the train flags of whole epochs, which its
/// range test never reaches (each was accepted and its JSON byte-identical to the run without).
#[test]
fn lr_find_refuses_the_epoch_flags_it_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "t.csv", small_table());
    let plot = dir.path().join("a.svg");
    let base = [
        "lr-find",
        "--data",
        s(&data),
        "--plot",
        s(&plot),
        "--steps",
        "20",
    ];
    for (flag, value) in [
        ("--epochs", "1"),
        ("--patience", "1"),
        ("--schedule", "step:1:0.01"),
        ("--warmup", "5"),
        ("--grad-tol", "100"),
        ("--divergence-factor", "1.5"),
        ("--monitor", "loss"),
    ] {
        let e = fails(&[&base[..], &[flag, value]].concat());
        assert!(
            e.contains(&format!("invalid setting lr-find = {flag}")) && e.contains("ignores"),
            "{flag}: {e}"
        );
        assert!(!plot.exists(), "{flag}");
    }
    let e = fails(&[&base[..], &["--epochs", "3", "--warmup", "1"]].concat());
    assert!(e.contains("lr-find = --epochs --warmup"), "{e}");
    ok(&base);
    assert!(plot.exists());
}

/// Seventh hostile pass, item 13: `bench --examples` sizes the synthetic data only, and
/// `--table-rows` the table workload only: each is refused where it would be ignored.
#[test]
fn bench_refuses_sizes_no_workload_reads() {
    let e = fails(&[
        "bench",
        "--data",
        "digits",
        "--examples",
        "500",
        "--only",
        "784-100-10",
        "--epochs",
        "1",
    ]);
    assert!(
        e.contains("invalid setting examples = 500: sizes the synthetic data only"),
        "{e}"
    );
    let e = fails(&[
        "bench",
        "--data",
        "synthetic",
        "--examples",
        "50",
        "--only",
        "table",
        "--epochs",
        "1",
    ]);
    assert!(e.contains("invalid setting examples = 50"), "{e}");
    let e = fails(&[
        "bench",
        "--data",
        "digits",
        "--table-rows",
        "50",
        "--only",
        "784-100-10",
    ]);
    assert!(
        e.contains("invalid setting table-rows = 50: sizes the big-table workload"),
        "{e}"
    );
}

/// Eleventh hostile pass, item 1: a value out of range in a `--config` file is named with the
/// file and the key's line, as the file's parse errors are (`lr = -1` named only the setting,
/// while `batch-size = 0` named the file, line and column); a flag that replaces the key
/// leaves the file out of it, and a bad flag is named as a flag.
#[test]
fn config_values_out_of_range_are_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "t.csv", small_table());
    for (key, value) in [
        ("lr", "-1.0"),
        ("epochs", "0"),
        ("dropout", "1.5"),
        ("momentum", "2.0"),
        ("l2", "-1.0"),
        ("threads", "0"),
        ("val-fraction", "1"),
        ("test-fraction", "1.0"),
        ("divergence-factor", "0.5"),
        ("hidden", "[0]"),
        ("schedule", "\"step:0:0.5\""),
    ] {
        let c = write(dir.path(), "c.toml", format!("# run\n\n{key} = {value}\n"));
        let out = dir.path().join("r");
        let e = fails(&[
            "train",
            "--data",
            s(&data),
            "--config",
            s(&c),
            "--out",
            s(&out),
        ]);
        assert!(
            e.contains(&format!(
                "{}: line 3, key {key}: invalid setting {key} = ",
                c.display()
            )),
            "{key} = {value}: {e}"
        );
        assert!(!out.exists(), "{key} = {value} left {}", out.display());
    }
    let c = write(dir.path(), "lr.toml", "lr = -1.0\nepochs = 1\n");
    let out = dir.path().join("flag");
    ok(&[
        "train",
        "--data",
        s(&data),
        "--config",
        s(&c),
        "--lr",
        "0.1",
        "--out",
        s(&out),
        "--quiet",
    ]);
    let c = write(dir.path(), "good.toml", "lr = 0.1\nepochs = 1\n");
    let e = fails(&["train", "--data", s(&data), "--config", s(&c), "--lr", "-1"]);
    assert!(e.contains("invalid setting lr = -1"), "{e}");
    assert!(
        !e.contains("good.toml"),
        "a flag's value blamed on the file: {e}"
    );
    let e = fails(&[
        "lr-find",
        "--data",
        s(&data),
        "--config",
        s(&write(dir.path(), "m.toml", "momentum = 2.0\n")),
    ]);
    assert!(e.contains("m.toml: line 1, key momentum"), "{e}");
}
