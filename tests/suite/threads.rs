//! Data-parallel threads: how many rows a thread runs at a time (`DataParallel::pass_rows`);
//! a run with two threads in passes smaller than one thread's is reproducible and resumes bit
//! for bit, and agrees with the one-thread run to rounding; and, through the binary, a helper
//! thread the operating system refuses to start is a clear error naming `--threads` (exit 2, no
//! run folder), not a panic.
//!
//! The refusal is real, not simulated: `RUST_MIN_STACK` (read by the standard library for every
//! thread it starts) asks for a 1 PB stack, which `mmap` cannot reserve, so `pthread_create`
//! fails with EAGAIN. It only affects the child process the test starts.

use std::path::Path;

use crate::common::downhill;
use downhill::layers::ImageShape;
use downhill::netspec::{parse, preset, resolve};
use downhill::network::Shape;
use downhill::parallel::{DataParallel, PASS_CACHE_BYTES};
use downhill::tensor::Scalar;
use downhill::{Init, Network, Rng};
use rand::SeedableRng;

fn net<T: Scalar>(spec: &str, input: ImageShape) -> Network<T> {
    let layers = resolve(&parse(spec).unwrap(), Shape::Image(input), 10).unwrap();
    let mut rng = Rng::seed_from_u64(0);
    Network::with_input(Shape::Image(input), layers, Init::HeNormal, &mut rng).unwrap()
}

/// One thread runs a convolutional network in passes of 16 rows (as before the rule for several
/// threads); several threads take the largest power of two up to 16 whose widest layer (input,
/// its gradient, the output's gradient) fits one core's L2 cache; networks without convolutions
/// or with BatchNorm take their rows in one pass.
#[test]
fn rows_per_pass_by_network_and_threads() {
    let mnist = ImageShape::new(1, 28, 28);
    let keras = preset("keras-convnet").unwrap().unwrap();
    let lenet = preset("lenet5").unwrap().unwrap();
    let k32 = net::<f32>(keras, mnist);
    // The Keras convnet's widest layer is the first ReLU: 32·26·26 values in, out and their
    // gradients, 3 · 21,632 · 4 bytes = 260 KB a row: 4 rows fit 1 MiB, 8 do not.
    assert_eq!(k32.width(1), 32 * 26 * 26);
    let row = 3 * k32.width(1) * 4;
    assert!(4 * row <= PASS_CACHE_BYTES && 8 * row > PASS_CACHE_BYTES);
    assert_eq!(DataParallel::pass_rows(&k32, 1), 16);
    assert_eq!(DataParallel::pass_rows(&k32, 2), 4);
    assert_eq!(DataParallel::pass_rows(&k32, 8), 4);
    // In f64 a row takes twice the bytes.
    assert_eq!(DataParallel::pass_rows(&net::<f64>(keras, mnist), 2), 2);
    // LeNet-5's widest layer (6·28·28) fits 16 rows.
    let l32 = net::<f32>(lenet, mnist);
    assert_eq!(DataParallel::pass_rows(&l32, 1), 16);
    assert_eq!(DataParallel::pass_rows(&l32, 2), 16);
    // A layer far wider than the cache still runs a row at a time.
    let huge = net::<f32>(
        "conv 64 3 pad 1, relu, flatten, dense",
        ImageShape::new(1, 100, 100),
    );
    assert_eq!(DataParallel::pass_rows(&huge, 2), 1);
    // No convolution, or BatchNorm: one pass.
    let dense = net::<f32>("flatten, dense 32, relu, dense", mnist);
    assert_eq!(DataParallel::pass_rows(&dense, 2), usize::MAX);
    let bn = net::<f32>("conv 8 3, batchnorm, relu, flatten, dense", mnist);
    assert_eq!(DataParallel::pass_rows(&bn, 2), usize::MAX);
}

/// A network on the 8×8 digits whose first layer is wide enough (256·8·8 values a row) that two
/// threads run passes of 4 rows, one thread passes of 16.
const WIDE: &str = "conv 256 3 pad 1, relu, maxpool 2, flatten, dense";

fn train_digits(out: &Path, threads: &str, epochs: &str, extra: &[&str]) {
    let o = downhill()
        .args(["train", "--quiet", "--data", "digits", "--layers", WIDE])
        .args(["--batch-size", "100", "--optimizer", "sgd", "--lr", "0.01"])
        .args(["--threads", threads, "--epochs", epochs, "--seed", "3"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn weights(run: &Path) -> Vec<f32> {
    downhill::io::load(&run.join("model.safetensors"))
        .unwrap()
        .net
        .params()
        .to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn two_threads_in_small_passes_reproduce_and_resume_bit_for_bit() {
    let digits = ImageShape::new(1, 8, 8);
    assert_eq!(DataParallel::pass_rows(&net::<f32>(WIDE, digits), 2), 4);
    assert_eq!(DataParallel::pass_rows(&net::<f32>(WIDE, digits), 1), 16);
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| dir.path().join(name);
    train_digits(&run("a"), "2", "2", &[]);
    train_digits(&run("b"), "2", "2", &[]);
    assert_eq!(bits(&weights(&run("a"))), bits(&weights(&run("b"))));
    // One epoch, then resumed to two: the same bits as the run never stopped.
    train_digits(&run("c"), "2", "1", &[]);
    let o = downhill()
        .args(["train", "--quiet", "--epochs", "2", "--resume"])
        .arg(run("c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bits(&weights(&run("a"))), bits(&weights(&run("c"))));
    // One thread (passes of 16) gives the same numbers to rounding: the sums are only grouped
    // differently.
    train_digits(&run("one"), "1", "2", &[]);
    let (a, one) = (weights(&run("a")), weights(&run("one")));
    let diff = a
        .iter()
        .zip(&one)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-3, "max weight difference {diff}");
}

/// A stack no machine can reserve (2⁵⁰ bytes).
const HUGE_STACK: &str = "1125899906842624";

/// `downhill train --data digits --epochs 1 --threads N --out RUN` with a stack no machine
/// can reserve for each helper thread.
fn train_with_huge_stacks(threads: &str, run: &std::path::Path) -> std::process::Output {
    downhill()
        .env("RUST_MIN_STACK", HUGE_STACK)
        .args([
            "train",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--threads",
            threads,
        ])
        .arg("--out")
        .arg(run)
        .output()
        .unwrap()
}

#[test]
fn a_thread_the_system_refuses_is_an_error_naming_threads() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = train_with_huge_stacks("2", &run);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads"), "{err}");
    assert!(err.contains("refused to start thread 2 of 2"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !run.exists(),
        "a run folder was made for a run that never started"
    );

    // The same run on one thread starts no helper, so the stack setting does not matter.
    let out = train_with_huge_stacks("1", &run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--threads auto`: the run times its step first, says what it chose, records the count in
/// its settings (so `--resume` repeats it without timing again), and trains with it: the model
/// equals an explicit `--threads` run of that count. A bad count names the flag.
#[test]
fn threads_auto_records_the_count_it_chose_and_resume_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (auto, fixed) = (dir.path().join("auto"), dir.path().join("fixed"));
    let run = |out: &Path, threads: &str, extra: &[&str]| {
        let o = downhill()
            .args(["train", "--hidden", "16", "--epochs", "1", "--seed", "2"])
            .args(["--threads", threads])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
    };
    let said = run(&auto, "auto", &[]);
    assert!(said.contains("threads: auto → "), "{said}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(auto.join("summary.json")).unwrap()).unwrap();
    let settings = &summary["settings"];
    assert_eq!(settings["threads-auto"], true, "{summary}");
    let chosen = settings["threads"].as_u64().unwrap();
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert!((1..=cores.min(8)).contains(&chosen), "{chosen}");
    run(&fixed, &chosen.to_string(), &[]);
    assert_eq!(bits(&weights(&auto)), bits(&weights(&fixed)));
    let o = downhill()
        .args(["train", "--resume", auto.to_str().unwrap(), "--epochs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("threads: auto"));
    let o = downhill()
        .args(["train", "--threads", "many"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads") && err.contains("auto"), "{err}");
}
