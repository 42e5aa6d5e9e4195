//! The hostile battery: several hundred generated bad inputs and fault scenarios through the
//! binary — mutations of valid CSV, IDX, model and checkpoint files (truncations, flipped and
//! inserted bytes, absurd header lengths, absurd metadata values) and absurd flag values × the
//! commands. Every case must end without a panic or abort (exit code ≠ 101, no signal), with a
//! clear one-paragraph error on failure, and no silently wrong result: a run that succeeds
//! wrote a model that loads with finite weights, an eval that succeeds reports a finite loss.
//! Then a bounded kill-and-resume loop: SIGKILL at varied moments, resume, and the final
//! weights are bit-identical to the uninterrupted run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{exe, idx};
use rand::{Rng as _, SeedableRng};

/// 80 rows: three numeric features and a class label.
fn csv_text() -> String {
    let mut s = String::from("a,b,c,label\n");
    for i in 0..80 {
        let (a, b, c) = (
            ((i * 37) % 17) as f64 / 7.0,
            ((i * 61) % 13) as f64 / 5.0,
            ((i * 11) % 7) as f64,
        );
        s += &format!("{a},{b},{c},{}\n", if a > b { "up" } else { "down" });
    }
    s
}

/// An IDX file: magic, dims, u8 data.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    stdout: String,
}

/// Runs the binary in `cwd`; a run still going after 6 s gets SIGINT (and must then end).
fn run(args: &[String], cwd: &Path) -> Outcome {
    let mut child = Command::new(exe())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let mut interrupted = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !interrupted && start.elapsed() > Duration::from_secs(6) {
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            interrupted = true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("{args:?} did not end 24 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code(),
        stderr: e.join().unwrap(),
        stdout: o.join().unwrap(),
    }
}

/// The battery's verdict on one case; `None` if it held.
fn judge(args: &[String], o: &Outcome, cwd: &Path) -> Option<String> {
    let show = || format!("{args:?}\nstderr: {}", o.stderr);
    match o.code {
        None => return Some(format!("killed by a signal: {}", show())),
        Some(101) => return Some(format!("panicked: {}", show())),
        Some(0) | Some(130) => {}
        Some(c) => {
            let msg = o.stderr.trim();
            // clap's usage errors say `error:` too.
            if !msg.contains("error") || msg.len() < 20 {
                return Some(format!("exit {c} without a clear error: {}", show()));
            }
            if msg.contains("panicked") || msg.contains("RUST_BACKTRACE") {
                return Some(format!("panic text: {}", show()));
            }
        }
    }
    if o.stderr.contains("panicked") {
        return Some(format!("panic text: {}", show()));
    }
    if o.code == Some(0) || o.code == Some(130) {
        // No silently wrong result: whatever a successful train wrote loads, with finite weights;
        // a successful eval's loss is a number.
        if args[0] == "train" {
            let out = args
                .iter()
                .position(|a| a == "--out" || a == "--resume")
                .map(|i| cwd.join(&args[i + 1]))?;
            let model = out.join("model.safetensors");
            match downhill::io::load(&model) {
                Ok(m) if m.net.params().iter().all(|v| v.is_finite()) => {}
                Ok(_) => return Some(format!("non-finite weights written: {}", show())),
                Err(e) => {
                    return Some(format!("the model written does not load ({e}): {}", show()));
                }
            }
        }
        if args[0] == "eval" && args.iter().any(|a| a == "--json") {
            let v: serde_json::Value = match serde_json::from_str(&o.stdout) {
                Ok(v) => v,
                Err(_) => return Some(format!("eval --json printed no JSON: {}", show())),
            };
            if !v["loss"].as_f64().is_some_and(f64::is_finite) {
                return Some(format!("eval reported loss {}: {}", v["loss"], show()));
            }
        }
    }
    None
}

/// A command line, and the file to write before running it.
type Case = (Vec<String>, Option<(PathBuf, Vec<u8>)>);

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The mutations of a file's bytes: `n` of them, drawn from `rng`.
fn mutations(base: &[u8], n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b = base.to_vec();
            let len = b.len().max(1);
            match i % 8 {
                0 => b.truncate(rng.random_range(0..len)),
                1 => {
                    for _ in 0..rng.random_range(1..8) {
                        let j = rng.random_range(0..len.min(b.len().max(1)));
                        if let Some(x) = b.get_mut(j) {
                            *x ^= 1 << rng.random_range(0..8);
                        }
                    }
                }
                2 => {
                    let j = rng.random_range(0..=b.len());
                    let junk: Vec<u8> =
                        (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                    b.splice(j..j, junk);
                }
                3 => {
                    // An absurd safetensors header length (first 8 bytes) or IDX dimension.
                    let v: u64 = [u64::MAX, 1 << 40, 0, 7, rng.random()][rng.random_range(0..5)];
                    for (k, x) in v.to_le_bytes().iter().enumerate() {
                        if let Some(y) = b.get_mut(k + (i / 8) % 4) {
                            *y = *x;
                        }
                    }
                }
                4 => {
                    let j = rng.random_range(0..len.min(b.len().max(1)));
                    let k = (j + rng.random_range(1..256)).min(b.len());
                    let chunk = b[j..k].to_vec();
                    b.splice(j..j, chunk);
                }
                5 => {
                    let j = rng.random_range(0..len.min(b.len().max(1)));
                    let k = (j + rng.random_range(1..512)).min(b.len());
                    b[j..k].iter_mut().for_each(|x| *x = 0);
                }
                6 => {
                    // Digits in text made absurd: 9s, signs, NaN.
                    let text = String::from_utf8_lossy(&b).into_owned();
                    let repl = [
                        "99999999999999999999",
                        "-1",
                        "NaN",
                        "1e39",
                        "",
                        "18446744073709551615",
                    ][rng.random_range(0..6)];
                    let mut out = String::new();
                    let mut replaced = false;
                    for (idx, ch) in text.char_indices() {
                        if !replaced
                            && ch.is_ascii_digit()
                            && rng.random_range(0..40) == 0
                            && idx > 8
                        {
                            out.push_str(repl);
                            replaced = true;
                        } else {
                            out.push(ch);
                        }
                    }
                    b = out.into_bytes();
                }
                _ => b.clear(),
            }
            b
        })
        .collect()
}

/// Rewrites the JSON header of a safetensors file with `edit` (the header is re-measured).
fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut h);
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

/// Edits a JSON document stored as a string under `__metadata__.key`.
fn edit_meta(bytes: &[u8], key: &str, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    edit_header(bytes, |h| {
        let text = h["__metadata__"][key].as_str().unwrap().to_string();
        let mut inner: serde_json::Value = serde_json::from_str(&text).unwrap();
        f(&mut inner);
        h["__metadata__"][key] = serde_json::Value::String(inner.to_string());
    })
}

#[test]
fn hostile_battery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("good.csv"), csv_text()).unwrap();
    let o = run(
        &s(&[
            "train", "--quiet", "--data", "good.csv", "--hidden", "4", "--epochs", "2", "--out",
            "base",
        ]),
        d,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let model = std::fs::read(d.join("base/model.safetensors")).unwrap();
    let checkpoint = std::fs::read(d.join("base/checkpoint.safetensors")).unwrap();
    // A tiny IDX folder: 20 images of 4×4, labels 0..4.
    let images = idx(
        &[20, 4, 4],
        &(0..320).map(|i| (i * 7 % 256) as u8).collect::<Vec<_>>(),
    );
    let labels = idx(&[20], &(0..20).map(|i| (i % 4) as u8).collect::<Vec<_>>());

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2024);
    let mut cases: Vec<Case> = Vec::new();
    let mut k = 0;
    let mut fresh = |prefix: &str| {
        k += 1;
        format!("{prefix}{k}")
    };
    // 1. Mutated CSV files × train, eval, predict.
    for (i, m) in mutations(csv_text().as_bytes(), 48, &mut rng)
        .into_iter()
        .enumerate()
    {
        let f = format!("m{i}.csv");
        let args = match i % 3 {
            0 => s(&[
                "train",
                "--quiet",
                "--data",
                &f,
                "--hidden",
                "3",
                "--epochs",
                "1",
                "--out",
                &fresh("r"),
            ]),
            1 => s(&[
                "eval",
                "--json",
                "--model",
                "base/model.safetensors",
                "--data",
                &f,
            ]),
            _ => s(&[
                "predict",
                "--model",
                "base/model.safetensors",
                "--input",
                &f,
            ]),
        };
        cases.push((args, Some((d.join(&f), m))));
    }
    // 2. Mutated model files × eval, predict, train --init, landscape --model.
    for (i, m) in mutations(&model, 48, &mut rng).into_iter().enumerate() {
        let f = format!("m{i}.safetensors");
        let args = match i % 4 {
            0 => s(&["eval", "--json", "--model", &f, "--data", "good.csv"]),
            1 => s(&["predict", "--model", &f, "--input", "good.csv"]),
            2 => s(&[
                "train",
                "--quiet",
                "--data",
                "good.csv",
                "--hidden",
                "4",
                "--epochs",
                "1",
                "--init",
                &f,
                "--out",
                &fresh("r"),
            ]),
            _ => s(&[
                "landscape",
                "--model",
                &f,
                "--data",
                "good.csv",
                "--points",
                "3",
                "--out",
                &format!("{}.svg", fresh("l")),
            ]),
        };
        cases.push((args, Some((d.join(&f), m))));
    }
    // 3. Model metadata made absurd, field by field.
    let absurd: Vec<serde_json::Value> = vec![
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(0),
        serde_json::json!(1u64 << 40),
        serde_json::json!(u64::MAX),
        serde_json::json!("text"),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    let model_fields: Vec<fn(&mut serde_json::Value, serde_json::Value)> = vec![
        |m, v| m["inputs"] = v,
        |m, v| m["layers"][0]["args"]["outputs"] = v,
        |m, v| m["layers"][0]["args"]["inputs"] = v,
        |m, v| m["layers"][2]["args"]["outputs"] = v,
        |m, v| m["class_names"] = v,
        |m, v| m["normalizer"]["shift"] = v,
        |m, v| m["normalizer"]["scale"][0] = v,
        |m, v| m["loss"] = v,
        |m, v| m["format_version"] = v,
        |m, v| m["feature_names"] = v,
    ];
    for (fi, field) in model_fields.iter().enumerate() {
        for (vi, v) in absurd.iter().enumerate() {
            let bytes = edit_meta(&model, "downhill", |m| field(m, v.clone()));
            let f = format!("meta{fi}_{vi}.safetensors");
            let args = if (fi + vi) % 2 == 0 {
                s(&["eval", "--json", "--model", &f, "--data", "good.csv"])
            } else {
                s(&["predict", "--model", &f, "--input", "good.csv"])
            };
            cases.push((args, Some((d.join(&f), bytes))));
        }
    }
    // Class names that do not match the outputs.
    for names in [
        serde_json::json!(["up"]),
        serde_json::json!(["a", "b", "c"]),
    ] {
        let bytes = edit_meta(&model, "downhill", |m| m["class_names"] = names.clone());
        let f = format!("{}.safetensors", fresh("names"));
        cases.push((
            s(&["predict", "--model", &f, "--input", "good.csv"]),
            Some((d.join(&f), bytes)),
        ));
    }
    // 4. Checkpoints: byte mutations and absurd fields (a batch order that is no permutation,
    //    steps beyond the epoch, history and best epochs that disagree, absurd settings).
    let ck_fields: Vec<fn(&mut serde_json::Value, serde_json::Value)> = vec![
        |c, v| c["epoch"] = v,
        |c, v| c["step"] = v,
        |c, v| c["optimizer_steps"] = v,
        |c, v| c["optimizer_buffers"][0][1] = v,
        |c, v| c["history"] = v,
        |c, v| c["best"] = v,
        |c, v| c["rng"] = v,
        |c, v| c["settings"]["epochs"] = v,
        |c, v| c["settings"]["hidden"] = v,
        |c, v| c["settings"]["batch-size"] = v,
        |c, v| c["settings"]["lr"] = v,
        |c, v| c["divergence"] = v,
    ];
    let mut ck_cases: Vec<Vec<u8>> = mutations(&checkpoint, 40, &mut rng);
    for field in &ck_fields {
        for v in &absurd {
            ck_cases.push(edit_meta(&checkpoint, "checkpoint", |c| {
                field(c, v.clone())
            }));
        }
    }
    // A mid-epoch checkpoint whose batch order repeats an index.
    ck_cases.push(edit_meta(&checkpoint, "checkpoint", |c| {
        c["step"] = serde_json::json!(1)
    }));
    for ck in ck_cases {
        let run_dir = fresh("ck");
        std::fs::create_dir_all(d.join(&run_dir)).unwrap();
        cases.push((
            s(&["train", "--quiet", "--resume", &run_dir]),
            Some((d.join(&run_dir).join("checkpoint.safetensors"), ck)),
        ));
    }
    // 5. IDX folders with a mutated images or labels file.
    for (i, m) in mutations(&images, 24, &mut rng)
        .into_iter()
        .chain(mutations(&labels, 24, &mut rng))
        .enumerate()
    {
        let folder = d.join(format!("idx{i}"));
        std::fs::create_dir_all(&folder).unwrap();
        let (im, lb) = if i < 24 {
            (m, labels.clone())
        } else {
            (images.clone(), m)
        };
        std::fs::write(folder.join("train-images-idx3-ubyte"), im).unwrap();
        std::fs::write(folder.join("train-labels-idx1-ubyte"), lb).unwrap();
        cases.push((
            s(&[
                "train",
                "--quiet",
                "--data",
                &format!("idx{i}"),
                "--hidden",
                "3",
                "--epochs",
                "1",
                "--out",
                &fresh("r"),
            ]),
            None,
        ));
    }
    // 6. Absurd flag values × flags of train.
    let values = [
        "-1",
        "0",
        "1e308",
        "nan",
        "inf",
        "-inf",
        "18446744073709551616",
        "abc",
        "",
        "1e-320",
        "99999999999",
        "0.5,0.5",
    ];
    let flags = [
        "--lr",
        "--epochs",
        "--batch-size",
        "--hidden",
        "--momentum",
        "--dropout",
        "--l2",
        "--patience",
        "--grad-tol",
        "--threads",
        "--val-fraction",
        "--test-fraction",
        "--warmup",
        "--weight-decay",
        "--dampening",
        "--divergence-factor",
        "--checkpoint-every",
        "--schedule",
        "--seed",
        "--target",
    ];
    for flag in flags {
        for v in values {
            let mut args = s(&["train", "--quiet", "--data", "good.csv", "--hidden", "3"]);
            if flag != "--epochs" {
                args.extend(s(&["--epochs", "1"]));
            }
            args.extend(s(&[flag, v, "--out", &fresh("r")]));
            cases.push((args, None));
        }
    }
    // 7. Absurd values × landscape, gradcheck and eval flags.
    for v in values {
        for flag in [
            "--steps",
            "--condition",
            "--noise",
            "--tol",
            "--lr",
            "--start",
        ] {
            cases.push((
                s(&[
                    "landscape",
                    flag,
                    v,
                    "--out",
                    &format!("{}.svg", fresh("l")),
                ]),
                None,
            ));
        }
        for flag in ["--points", "--span", "--examples"] {
            cases.push((
                s(&[
                    "landscape",
                    "--model",
                    "base/model.safetensors",
                    "--data",
                    "good.csv",
                    flag,
                    v,
                    "--out",
                    &format!("{}.svg", fresh("l")),
                ]),
                None,
            ));
        }
        for flag in ["--inputs", "--outputs", "--batch", "--hidden", "--dropout"] {
            cases.push((s(&["gradcheck", flag, v]), None));
        }
    }
    // 8. The range test's flags, and `--resume` with absurd epoch totals.
    for v in values {
        for flag in [
            "--start-lr",
            "--end-lr",
            "--steps",
            "--blowup",
            "--hidden",
            "--batch-size",
        ] {
            cases.push((
                s(&[
                    "lr-find",
                    "--data",
                    "good.csv",
                    "--hidden",
                    "3",
                    flag,
                    v,
                    "--plot",
                    &format!("{}.svg", fresh("f")),
                ]),
                None,
            ));
        }
        cases.push((
            s(&["train", "--quiet", "--resume", "base", "--epochs", v]),
            None,
        ));
    }
    // 9. Files that are not what they claim, and paths that are not files.
    for (what, path) in [
        ("dir", "."),
        ("missing", "nope.csv"),
        ("devnull", "/dev/null"),
    ] {
        cases.push((s(&["eval", "--model", path, "--data", "good.csv"]), None));
        cases.push((
            s(&[
                "predict",
                "--model",
                "base/model.safetensors",
                "--input",
                path,
            ]),
            None,
        ));
        cases.push((
            s(&[
                "train",
                "--quiet",
                "--data",
                path,
                "--epochs",
                "1",
                "--out",
                &fresh(what),
            ]),
            None,
        ));
        cases.push((s(&["train", "--quiet", "--resume", path]), None));
    }

    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (args, file) in &cases {
        if let Some((path, bytes)) = file {
            std::fs::write(path, bytes).unwrap();
        }
        let o = run(args, d);
        if let Some(f) = judge(args, &o, d) {
            failures.push(f);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// SIGKILL at varied moments, then resume, again and again: the final weights equal the
/// uninterrupted run's bit for bit, and the folder ends complete.
#[test]
fn kill_and_resume_loop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("good.csv"), csv_text()).unwrap();
    let train = s(&[
        "train",
        "--quiet",
        "--data",
        "good.csv",
        "--hidden",
        "6",
        "--batch-size",
        "8",
        "--epochs",
        "150",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--checkpoint-every",
        "5",
        "--snapshots",
    ]);
    let mut whole = train.clone();
    whole.extend(s(&["--out", "whole"]));
    assert_eq!(run(&whole, d).code, Some(0));
    let delays = [40u64, 90, 150, 230, 320, 10, 420, 600];
    let mut kills = 0;
    for delay in delays {
        let has_ck = d.join("run/unfinished/checkpoint.safetensors").exists()
            || d.join("run/checkpoint.safetensors").exists();
        let args = if has_ck {
            s(&["train", "--quiet", "--resume", "run"])
        } else {
            let mut a = train.clone();
            a.extend(s(&["--out", "run"]));
            a
        };
        let mut child = Command::new(exe())
            .args(&args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        match child.try_wait().unwrap() {
            Some(status) => {
                let mut err = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
                assert!(status.success(), "{args:?} failed on its own: {err}");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    if !d.join("run/summary.json").exists() || d.join("run/unfinished").exists() {
        let o = run(&s(&["train", "--quiet", "--resume", "run"]), d);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
    }
    assert!(kills >= 2, "the run ended before it could be killed twice");
    let bits = |p: &str| -> Vec<u32> {
        downhill::io::load(&d.join(p))
            .unwrap()
            .net
            .params()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(
        bits("run/model.safetensors"),
        bits("whole/model.safetensors")
    );
    let lines = |p: &str| std::fs::read_to_string(d.join(p)).unwrap().lines().count();
    assert_eq!(lines("run/metrics.jsonl"), 150);
    // The --snapshots trajectory survives every kill: the start and all 150 epochs, as uninterrupted.
    let p = bits("whole/model.safetensors").len();
    let traj = |f: &str| downhill::landscape::trajectory::load(&d.join(f), p).unwrap();
    let (a, b) = (
        traj("run/trajectory.safetensors"),
        traj("whole/trajectory.safetensors"),
    );
    assert_eq!(a.len(), 151);
    assert_eq!(a, b);
    assert!(!d.join("run/unfinished").exists());
    let leftovers = std::fs::read_dir(d.join("run"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}
