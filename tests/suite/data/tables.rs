//! Real tables through the binary (issue 11's data half, issue 10's CSV items): text, boolean,
//! ID-like, constant columns and missing cells; categories unseen at predict; columns matched by
//! name in every command; duplicate names, f32 overflow and unlearnable targets refused;
//! regression targets standardised; overrides; the model file's preprocessing metadata.

use std::path::{Path, PathBuf};

use rand::{Rng as _, SeedableRng};
use serde_json::Value;

use crate::common::*;

/// A penguin-like table: an unnamed row-name column, an ID column, a text column, a numeric
/// column with missing cells (NA, empty, ?), a boolean column in mixed case with missing cells, a
/// constant column, a numeric column, and a text target. The species is readable from the
/// numbers.
fn penguins(rows: usize, seed: u64) -> String {
    let mut rng = downhill::Rng::seed_from_u64(seed);
    let mut out = String::from(",sample_id,island,bill,flipper,male,study,species\n");
    let missing = ["NA", "", "?", "nan", "N/A", "null"];
    for i in 0..rows {
        let k = i % 3;
        let species = ["Adelie", "Gentoo", "Chinstrap"][k];
        let island = match k {
            0 => ["Biscoe", "Dream", "Torgersen"][rng.random_range(0..3)],
            1 => "Biscoe",
            _ => "Dream",
        };
        let bill = [38.0, 47.0, 49.0][k] + rng.random_range(-2.0..2.0);
        let flipper = [190.0, 217.0, 196.0][k] + rng.random_range(-4.0..4.0);
        let bill = if rng.random_range(0.0..1.0) < 0.1 {
            missing[rng.random_range(0..missing.len())].to_string()
        } else {
            format!("{bill:.1}")
        };
        let male = if rng.random_range(0.0..1.0) < 0.05 {
            "NA"
        } else {
            ["yes", "No", "YES", "no"][rng.random_range(0..4)]
        };
        out += &format!(
            "{},P{:04},{island},{bill},{flipper:.0},{male},PAL0708,{species}\n",
            i + 1,
            7 * i + 3
        );
    }
    out
}

fn role(v: &Value, column: &str) -> String {
    let cols = v["data"]["columns"]["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("no columns in {v}"));
    let c = cols
        .iter()
        .find(|c| c["name"] == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    c["encoding"]["kind"].as_str().unwrap().to_string()
}

#[test]
fn roles_missing_values_and_the_data_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "penguins.csv", penguins(300, 1));
    let out = dir.path().join("r");
    let (stdout, stderr) = ok(&[
        "train",
        "--json",
        "--epochs",
        "30",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    let v = json(stdout.as_bytes());
    // The report on stderr: one line per column, dropped ones with their reason.
    for needle in [
        "row names",
        "sample_id",
        "ID-like",
        "constant",
        "categorical  one-hot, 3 categories: Biscoe, Dream, Torgersen",
        "boolean",
        "missing → median",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("species") && l.ends_with("target")),
        "{stderr}"
    );
    assert_eq!(role(&v, ""), "dropped");
    assert_eq!(role(&v, "sample_id"), "dropped");
    assert_eq!(role(&v, "study"), "dropped");
    assert_eq!(role(&v, "island"), "categorical");
    assert_eq!(role(&v, "bill"), "numeric");
    assert_eq!(role(&v, "flipper"), "numeric");
    assert_eq!(role(&v, "male"), "boolean");
    // island (3) + bill + its indicator + flipper + male + its indicator.
    assert_eq!(v["data"]["features"], 8, "{v}");
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    // summary.json keeps the report.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["data"]["columns"], v["data"]["columns"]);
    // The model's normaliser leaves 0/1 features alone and standardises the numbers.
    let meta = model_meta(&out.join("model.safetensors"));
    let scale = meta["normalizer"]["scale"].as_array().unwrap();
    let names: Vec<&str> = meta["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "island=Biscoe",
            "island=Dream",
            "island=Torgersen",
            "bill",
            "bill (missing)",
            "flipper",
            "male",
            "male (missing)"
        ][..names.len()]
    );
    for (n, sc) in names.iter().zip(scale) {
        let unit = sc.as_f64().unwrap() == 1.0;
        assert_eq!(unit, !(*n == "bill" || *n == "flipper"), "{n}: {sc}");
    }
    // --quiet hides the report.
    let (_, stderr) = ok(&[
        "train",
        "--quiet",
        "--epochs",
        "1",
        "--data",
        s(&data),
        "--out",
        s(&dir.path().join("q")),
    ]);
    assert!(stderr.is_empty(), "{stderr}");
}

/// The `downhill` metadata of a model file.
fn model_meta(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    serde_json::from_str(header["__metadata__"]["downhill"].as_str().unwrap()).unwrap()
}

/// Rewrites a model file's `downhill` metadata with `edit` (the tensors keep their offsets).
fn edit_meta(path: &Path, to: &Path, edit: impl FnOnce(&mut Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut meta: Value =
        serde_json::from_str(header["__metadata__"]["downhill"].as_str().unwrap()).unwrap();
    edit(&mut meta);
    header["__metadata__"]["downhill"] = Value::String(meta.to_string());
    let mut h = header.to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    std::fs::write(to, out).unwrap();
}

fn trained_penguins(dir: &Path) -> (PathBuf, PathBuf) {
    let data = write(dir, "penguins.csv", penguins(300, 2));
    let out = dir.join("r");
    ok(&[
        "train",
        "--quiet",
        "--epochs",
        "30",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    (data, out.join("model.safetensors"))
}

#[test]
fn unseen_categories_missing_cells_and_reordered_columns_at_eval_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let (a, _) = ok(&["eval", "--json", "--model", s(&model), "--data", s(&data)]);
    let a = json(a.as_bytes());
    assert!(a["accuracy"].as_f64().unwrap() > 0.9, "{a}");
    // The same file with its columns in another order: the same figures.
    let text = std::fs::read_to_string(&data).unwrap();
    let reordered: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let order = [7, 5, 3, 0, 6, 2, 4, 1];
            order.iter().map(|&j| f[j]).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect();
    let moved = write(dir.path(), "reordered.csv", &reordered);
    let (b, _) = ok(&["eval", "--json", "--model", s(&model), "--data", s(&moved)]);
    let b = json(b.as_bytes());
    assert_eq!(a["accuracy"], b["accuracy"]);
    assert_eq!(a["loss"], b["loss"]);
    let (p1, _) = ok(&["predict", "--model", s(&model), "--input", s(&data)]);
    let (p2, _) = ok(&["predict", "--model", s(&model), "--input", s(&moved)]);
    assert_eq!(p1, p2);
    // Only the used columns, reordered, with an unseen island and missing cells everywhere.
    let input = write(
        dir.path(),
        "new.csv",
        "male,flipper,island,bill\nyes,190,Biscoe,38\nno,217,Atlantis,47\n,196,,NA\n",
    );
    let (p, e) = ok(&["predict", "--model", s(&model), "--input", s(&input)]);
    let lines: Vec<&str> = p.lines().collect();
    assert_eq!(lines.len(), 4, "{p}");
    assert_eq!(lines[1], "Adelie", "{p}");
    assert!(
        e.contains("column island: 1 rows with a category unseen in training")
            && e.contains("Atlantis")
            && e.contains("filled 3 missing cells"),
        "{e}"
    );
    // eval counts them too, in its JSON.
    let labelled = write(
        dir.path(),
        "labelled.csv",
        "species,male,flipper,island,bill\nAdelie,yes,190,Biscoe,38\nGentoo,no,217,Atlantis,47\nChinstrap,NA,196,Dream,\n,no,190,Dream,40\n",
    );
    let (v, e) = ok(&[
        "eval",
        "--json",
        "--model",
        s(&model),
        "--data",
        s(&labelled),
    ]);
    let v = json(v.as_bytes());
    assert_eq!(v["examples"], 3);
    assert_eq!(v["notes"]["dropped_rows"], 1);
    assert_eq!(v["notes"]["unseen"][0]["column"], "island");
    assert_eq!(v["notes"]["unseen"][0]["rows"], 1);
    assert!(e.contains("dropped 1 rows whose target is missing"), "{e}");
    // A boolean column with a word that is not yes/no: file, line and column.
    let bad = write(
        dir.path(),
        "bad.csv",
        "male,flipper,island,bill\nmaybe,190,Biscoe,38\n",
    );
    let e = fails(&["predict", "--model", s(&model), "--input", s(&bad)]);
    assert!(
        e.contains("bad.csv") && e.contains("line 2, column male") && e.contains("maybe"),
        "{e}"
    );
    // landscape --model applies the same preprocessing.
    let pic = dir.path().join("l.svg");
    ok(&[
        "landscape",
        "--model",
        s(&model),
        "--data",
        s(&labelled),
        "--points",
        "5",
        "--out",
        s(&pic),
    ]);
    assert!(pic.exists());
}

#[test]
fn columns_are_matched_by_name_in_every_command_and_duplicates_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let m = s(&model);
    // A missing column, an unknown one, and a misspelt one are each named.
    let cases = [
        (
            "species,male,flipper,bill\nAdelie,yes,190,38\n",
            "missing: island",
        ),
        (
            "species,male,flipper,bill,island,colour\nAdelie,yes,190,38,Dream,red\n",
            "not in the training data: colour",
        ),
        (
            "species,male,flipper,bil,island\nAdelie,yes,190,38,Dream\n",
            "missing: bill; not in the training data: bil",
        ),
    ];
    for (text, needle) in cases {
        let f = write(dir.path(), "cols.csv", text);
        let e = fails(&["eval", "--model", m, "--data", s(&f)]);
        assert!(e.contains("cols.csv") && e.contains(needle), "{e}");
        let e = fails(&[
            "train",
            "--epochs",
            "1",
            "--data",
            s(&data),
            "--test",
            s(&f),
            "--out",
            s(&dir.path().join("t")),
        ]);
        assert!(e.contains("cols.csv") && e.contains(needle), "{e}");
    }
    // predict does not need the target, but names a missing feature.
    let f = write(dir.path(), "nofeat.csv", "male,flipper,bill\nyes,190,38\n");
    let e = fails(&["predict", "--model", m, "--input", s(&f)]);
    assert!(e.contains("missing: island"), "{e}");
    // eval needs the target.
    let f = write(
        dir.path(),
        "notarget.csv",
        "male,flipper,bill,island\nyes,190,38,Dream\n",
    );
    let e = fails(&["eval", "--model", m, "--data", s(&f)]);
    assert!(e.contains("missing: species (the target)"), "{e}");
    // Duplicate header names, in every command.
    let dup = write(
        dir.path(),
        "dup.csv",
        "bill,male,bill,island,flipper,species\n38,yes,39,Dream,190,Adelie\n40,no,41,Biscoe,200,Gentoo\n",
    );
    let out = s(&dir.path().join("d")).to_string();
    for args in [
        vec!["train", "--data", s(&dup), "--out", &out],
        vec![
            "train",
            "--data",
            s(&data),
            "--test",
            s(&dup),
            "--out",
            &out,
        ],
        vec!["eval", "--model", m, "--data", s(&dup)],
        vec!["predict", "--model", m, "--input", s(&dup)],
    ] {
        let e = fails(&args);
        assert!(
            e.contains("dup.csv")
                && e.contains("duplicate column names")
                && e.contains("\"bill\" (columns 1 and 3)"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn headerless_files_match_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..200)
        .map(|i| {
            let x = (i % 10) as f64;
            let c = ["red", "green", "blue"][i % 3];
            format!("{x},{c},{}\n", if x > 4.5 { "hi" } else { "lo" })
        })
        .collect();
    let data = write(dir.path(), "bare.csv", &rows);
    let out = dir.path().join("r");
    ok(&[
        "train",
        "--quiet",
        "--epochs",
        "30",
        "--no-header",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    let m = out.join("model.safetensors");
    // With or without the target column.
    let with = write(dir.path(), "with.csv", "9,red,hi\n1,blue,lo\n");
    let without = write(dir.path(), "without.csv", "9,red\n1,blue\n");
    let (a, _) = ok(&["predict", "--model", s(&m), "--input", s(&with)]);
    let (b, _) = ok(&["predict", "--model", s(&m), "--input", s(&without)]);
    assert_eq!(a, b);
    assert_eq!(a, "prediction\nhi\nlo\n");
    let wrong = write(dir.path(), "wrong.csv", "9\n1\n");
    let e = fails(&["predict", "--model", s(&m), "--input", s(&wrong)]);
    assert!(
        e.contains("wrong.csv") && e.contains("1 columns") && e.contains("2 feature columns"),
        "{e}"
    );
    let e = fails(&["eval", "--model", s(&m), "--data", s(&without)]);
    assert!(e.contains("3 columns"), "{e}");
}

#[test]
fn numbers_beyond_f32_are_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let mut text = std::fs::read_to_string(&data).unwrap();
    text += "999,P9999,Dream,1e39,190,yes,PAL0708,Adelie\n";
    let big = write(dir.path(), "big.csv", &text);
    let line = text.lines().count();
    let e = fails(&[
        "train",
        "--data",
        s(&big),
        "--out",
        s(&dir.path().join("b")),
    ]);
    assert!(
        e.contains("big.csv")
            && e.contains(&format!("line {line}, column bill"))
            && e.contains("f32"),
        "{e}"
    );
    let e = fails(&["eval", "--model", s(&model), "--data", s(&big)]);
    assert!(e.contains(&format!("line {line}, column bill")), "{e}");
    let p = write(
        dir.path(),
        "p.csv",
        "bill,flipper,island,male\n38,-4e38,Dream,no\n",
    );
    let e = fails(&["predict", "--model", s(&model), "--input", s(&p)]);
    assert!(
        e.contains("line 2, column flipper") && e.contains("f32"),
        "{e}"
    );
    // A regression target beyond f32 too.
    let t = write(dir.path(), "t.csv", "a,y\n1,2.5\n2,3e40\n3,1.5\n");
    let e = fails(&["train", "--data", s(&t), "--out", s(&dir.path().join("t"))]);
    assert!(e.contains("line 3, column y") && e.contains("f32"), "{e}");
}

#[test]
fn unlearnable_targets_say_what_to_do_and_missing_targets_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let one: String =
        "x,y\n".to_string() + &(0..50).map(|i| format!("{i},same\n")).collect::<String>();
    let f = write(dir.path(), "one.csv", &one);
    let e = fails(&["train", "--data", s(&f), "--out", s(&dir.path().join("o"))]);
    assert!(
        e.contains("only one class") && e.contains("--target"),
        "{e}"
    );
    let per_row: String = "x,name\n".to_string()
        + &(0..50)
            .map(|i| format!("{},person{i}\n", i % 7))
            .collect::<String>();
    let f = write(dir.path(), "per_row.csv", &per_row);
    let e = fails(&["train", "--data", s(&f), "--out", s(&dir.path().join("p"))]);
    assert!(
        e.contains("50 different values in 50 rows")
            && e.contains("--task regress")
            && e.contains("--target"),
        "{e}"
    );
    // Rows whose target is missing are dropped and counted.
    let mut t = String::from("x,c\n");
    for i in 0..100 {
        let label = if i % 10 == 0 {
            "NA".to_string()
        } else {
            (if i % 2 == 0 { "a" } else { "b" }).to_string()
        };
        t += &format!("{},{label}\n", i % 2);
    }
    let f = write(dir.path(), "gaps.csv", &t);
    let (o, e) = ok(&[
        "train",
        "--json",
        "--epochs",
        "2",
        "--data",
        s(&f),
        "--out",
        s(&dir.path().join("g")),
    ]);
    let v = json(o.as_bytes());
    assert!(e.contains("dropped 10 rows whose target is missing"), "{e}");
    assert_eq!(v["data"]["columns"]["dropped_target_rows"], 10);
    let total = ["train_examples", "val_examples", "test_examples"]
        .iter()
        .map(|k| v["data"][k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total, 90);
}

#[test]
fn header_detected_when_every_column_is_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = String::from("colour,size,verdict\n");
    for i in 0..60 {
        let c = ["red", "green", "blue"][i % 3];
        let z = ["small", "large"][i % 2];
        t += &format!("{c},{z},{}\n", if c == "red" { "stop" } else { "go" });
    }
    let f = write(dir.path(), "text.csv", &t);
    let (o, e) = ok(&[
        "train",
        "--json",
        "--epochs",
        "20",
        "--data",
        s(&f),
        "--out",
        s(&dir.path().join("r")),
    ]);
    let v = json(o.as_bytes());
    assert!(
        e.lines()
            .any(|l| l.trim_start().starts_with("verdict") && l.ends_with("target")),
        "{e}"
    );
    assert_eq!(role(&v, "colour"), "categorical");
    assert_eq!(v["data"]["features"], 5);
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.99, "{v}");
    // The same rows without the header: no header detected (the first row's values recur).
    let bare: String = t.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let f = write(dir.path(), "bare.csv", &bare);
    let (o, _) = ok(&[
        "train",
        "--json",
        "--epochs",
        "1",
        "--data",
        s(&f),
        "--out",
        s(&dir.path().join("b")),
    ]);
    let v = json(o.as_bytes());
    let total = ["train_examples", "val_examples", "test_examples"]
        .iter()
        .map(|k| v["data"][k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total, 60);
    // A one-row predict file whose header names the model's columns.
    let p = write(dir.path(), "p.csv", "size,colour\nsmall,red\n");
    let (o, _) = ok(&[
        "predict",
        "--model",
        s(&dir.path().join("r/model.safetensors")),
        "--input",
        s(&p),
    ]);
    assert_eq!(o, "prediction\nstop\n");
}

#[test]
fn features_drop_and_categorical_override_the_inference() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "penguins.csv", penguins(120, 3));
    let d = s(&data);
    let run = |extra: &[&str], name: &str| -> Value {
        let mut args = vec!["train", "--json", "--epochs", "1", "--data", d];
        args.extend_from_slice(extra);
        let out = dir.path().join(name);
        args.extend_from_slice(&["--out", s(&out)]);
        json(ok(&args).0.as_bytes())
    };
    let v = run(&["--features", "bill,sample_id"], "f");
    assert_eq!(role(&v, "island"), "dropped");
    // Named by --features: kept although ID-like (one-hot of its 96 training values).
    assert_eq!(role(&v, "sample_id"), "categorical");
    let v = run(&["--drop", "island,male", "--categorical", "flipper"], "d");
    assert_eq!(role(&v, "island"), "dropped");
    assert_eq!(role(&v, "male"), "dropped");
    assert_eq!(role(&v, "flipper"), "categorical");
    // The same from a config file.
    let cfg = write(
        dir.path(),
        "run.toml",
        "drop = [\"island\", \"male\"]\ncategorical = [\"flipper\"]\n",
    );
    let w = run(&["--config", s(&cfg)], "c");
    assert_eq!(w["data"]["columns"], v["data"]["columns"]);
    // Bad names are errors naming the flag and the column.
    for (flag, value, needle) in [
        ("--features", "wingspan", "wingspan"),
        ("--drop", "species", "target"),
        ("--categorical", "nope", "nope"),
    ] {
        let e = fails(&[
            "train",
            "--data",
            d,
            flag,
            value,
            "--out",
            s(&dir.path().join("x")),
        ]);
        assert!(e.contains(&flag[2..]) && e.contains(needle), "{e}");
    }
    let e = fails(&[
        "train",
        "--data",
        d,
        "--features",
        "bill",
        "--drop",
        "bill",
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("bill") && e.contains("--features"), "{e}");
    // Nothing left: says how to choose.
    let e = fails(&[
        "train",
        "--data",
        d,
        "--drop",
        ",sample_id,island,bill,flipper,male,study".trim_start_matches(','),
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(e.contains("no feature column left"), "{e}");
}

/// Friedman #1 (y = 10 sin(π x₁x₂) + 20 (x₃ − ½)² + 10 x₄ + 5 x₅ + noise, x ~ U(0,1)¹⁰), and the
/// same with y·20 + 100: with standardised targets both train alike with defaults, and RMSE,
/// R² and predictions are in each one's own units.
#[test]
fn large_regression_targets_train_as_well_as_small_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = downhill::Rng::seed_from_u64(7);
    let (mut small, mut large) = (String::new(), String::new());
    let head: Vec<String> = (1..=10).map(|j| format!("x{j}")).collect();
    small += &format!("{},y\n", head.join(","));
    large += &format!("{},y\n", head.join(","));
    for _ in 0..1500 {
        let x: Vec<f64> = (0..10).map(|_| rng.random_range(0.0..1.0)).collect();
        let y = 10.0 * (std::f64::consts::PI * x[0] * x[1]).sin()
            + 20.0 * (x[2] - 0.5).powi(2)
            + 10.0 * x[3]
            + 5.0 * x[4]
            + rng.random_range(-1.0..1.0);
        let xs: Vec<String> = x.iter().map(|v| format!("{v:.5}")).collect();
        small += &format!("{},{y:.5}\n", xs.join(","));
        large += &format!("{},{:.4}\n", xs.join(","), y * 20.0 + 100.0);
    }
    let a = write(dir.path(), "small.csv", &small);
    let b = write(dir.path(), "large.csv", &large);
    let fit = |f: &Path, out: &str| -> Value {
        json(
            ok(&[
                "train",
                "--json",
                "--quiet",
                "--data",
                s(f),
                "--out",
                s(&dir.path().join(out)),
            ])
            .0
            .as_bytes(),
        )
    };
    let (va, vb) = (fit(&a, "a"), fit(&b, "b"));
    let (ra, rb) = (
        va["test"]["r2"].as_f64().unwrap(),
        vb["test"]["r2"].as_f64().unwrap(),
    );
    assert!(
        ra > 0.8 && rb > 0.8 && (ra - rb).abs() < 0.02,
        "R² {ra} vs {rb}"
    );
    // RMSE in each one's units: ×20.
    let (ea, eb) = (
        va["test"]["rmse"].as_f64().unwrap(),
        vb["test"]["rmse"].as_f64().unwrap(),
    );
    assert!((eb / ea - 20.0).abs() < 1.0, "RMSE {ea} vs {eb}");
    assert!(vb["data"]["target_scaling"]["mean"][0].as_f64().unwrap() > 200.0);
    // eval agrees with the run's figures on the whole file's units; predict is in the original units.
    let model = dir.path().join("b/model.safetensors");
    let (e, _) = ok(&["eval", "--json", "--model", s(&model), "--data", s(&b)]);
    let e = json(e.as_bytes());
    assert!(e["r2"].as_f64().unwrap() > 0.8, "{e}");
    // Compared with the small-target model's eval on its own file (like with like: the whole
    // file is mostly training rows, whose error is below the test rows' once training runs to
    // early stopping): ×20.
    let model_a = dir.path().join("a/model.safetensors");
    let (e_a, _) = ok(&["eval", "--json", "--model", s(&model_a), "--data", s(&a)]);
    let e_a = json(e_a.as_bytes());
    let ratio = e["rmse"].as_f64().unwrap() / e_a["rmse"].as_f64().unwrap();
    assert!((ratio - 20.0).abs() < 2.0, "{e} vs {e_a}");
    let (p, _) = ok(&["predict", "--model", s(&model), "--input", s(&b)]);
    let preds: Vec<f64> = p.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let mean = preds.iter().sum::<f64>() / preds.len() as f64;
    assert!(mean > 250.0 && mean < 400.0, "mean prediction {mean}");
}

#[test]
fn hostile_preprocessing_metadata_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let bad = dir.path().join("bad.safetensors");
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str); 9] = [
        (
            |m| m["columns"]["columns"][0]["indicator"] = true.into(),
            "dropped, yet with a missing indicator",
        ),
        (
            |m| m["columns"]["columns"][2]["encoding"]["categories"] = serde_json::json!([]),
            "no categories",
        ),
        (
            |m| m["columns"]["columns"][2]["encoding"]["fill"] = "Atlantis".into(),
            "not one of its categories",
        ),
        (
            |m| {
                m["columns"]["columns"][2]["encoding"]["categories"] =
                    serde_json::json!(["a", "a", "b"])
            },
            "twice",
        ),
        (
            |m| m["columns"]["columns"][3]["indicator"] = false.into(),
            "features",
        ),
        (
            |m| m["columns"]["columns"][3]["encoding"]["fill"] = 1e300.into(),
            "finite",
        ),
        (
            |m| m["columns"]["target_positions"] = serde_json::json!([99]),
            "position",
        ),
        (
            |m| m["columns"]["columns"][3]["encoding"]["kind"] = "mystery".into(),
            "unreadable metadata",
        ),
        (
            |m| m["target_scaling"] = serde_json::json!({"mean": [0.0], "std": [1.0]}),
            "MSE",
        ),
    ];
    for (edit, needle) in cases {
        edit_meta(&model, &bad, edit);
        for args in [
            vec!["eval", "--model", s(&bad), "--data", s(&data)],
            vec!["predict", "--model", s(&bad), "--input", s(&data)],
        ] {
            let e = fails(&args);
            assert!(
                e.contains("bad.safetensors") && e.contains(needle),
                "{needle}: {e}"
            );
        }
    }
}

#[test]
fn hostile_target_scaling_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let t: String = "a,b,y\n".to_string()
        + &(0..200)
            .map(|i| {
                format!(
                    "{},{},{}\n",
                    i % 13,
                    i % 7,
                    3.5 * (i % 13) as f64 - (i % 7) as f64 + 1000.0
                )
            })
            .collect::<String>();
    let data = write(dir.path(), "r.csv", &t);
    let out = dir.path().join("r");
    ok(&[
        "train",
        "--quiet",
        "--epochs",
        "2",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    let model = out.join("model.safetensors");
    assert!(
        model_meta(&model)["target_scaling"]["std"][0]
            .as_f64()
            .unwrap()
            > 1.0
    );
    let bad = dir.path().join("bad.safetensors");
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str); 6] = [
        (
            |m| m["target_scaling"]["std"] = serde_json::json!([0.0]),
            "standard deviation",
        ),
        // Issue 19, fourth pass: the record removed (outputs in standard units, exit 0), and a
        // finite scale so large that the inputs overflow (an infinite loss, exit 0).
        (
            |m| {
                m.as_object_mut().unwrap().remove("target_scaling");
            },
            "target_scaling: missing",
        ),
        (
            |m| m["normalizer"]["scale"][0] = 3e38.into(),
            "overflow float32",
        ),
        // Finite outputs that overflow once in the target's units (eval reported RMSE inf).
        (
            |m| m["target_scaling"]["std"] = serde_json::json!([3e38]),
            "overflow float32",
        ),
        (
            |m| m["target_scaling"]["mean"] = serde_json::json!([1.0, 2.0]),
            "outputs",
        ),
        (
            |m| m["target_scaling"]["mean"] = serde_json::json!(["x"]),
            "unreadable",
        ),
    ];
    for (edit, needle) in cases {
        edit_meta(&model, &bad, edit);
        for cmd in [["predict", "--input"], ["eval", "--data"]] {
            let e = fails(&[cmd[0], "--model", s(&bad), cmd[1], s(&data)]);
            assert!(
                e.contains("bad.safetensors") && e.contains(needle),
                "{needle}: {e}"
            );
        }
    }
}

/// Seventh hostile pass, item 5: a model whose class names repeat one (a hand-edited file) is
/// refused by name at eval and predict — predict printed the likelier class under the other
/// class's name with exit 0, and eval blamed the data's labels.
#[test]
fn repeated_class_names_in_a_model_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let names = model_meta(&model)["class_names"].clone();
    let first = names[0].clone();
    let bad = dir.path().join("bad.safetensors");
    edit_meta(&model, &bad, |m| m["class_names"][1] = first);
    for args in [
        vec!["eval", "--model", s(&bad), "--data", s(&data)],
        vec![
            "predict",
            "--model",
            s(&bad),
            "--input",
            s(&data),
            "--proba",
        ],
    ] {
        let e = fails(&args);
        assert!(
            e.contains("bad.safetensors: __metadata__.downhill.class_names: the name")
                && e.contains("is repeated (entries 1 and 2)"),
            "{args:?}: {e}"
        );
    }
}

/// A model file from before columns were recorded (format version 1: numeric features only,
/// no `columns`): still evaluated and used for prediction, its columns matched by name.
#[test]
fn format_version_1_models_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = String::from("a,b,label\n");
    for i in 0..300 {
        let (a, b) = (
            ((i * 37) % 100) as f64 / 10.0,
            ((i * 61) % 100) as f64 / 10.0,
        );
        t += &format!("{a},{b},{}\n", if a > b { "up" } else { "down" });
    }
    let data = write(dir.path(), "ab.csv", &t);
    let out = dir.path().join("r");
    ok(&[
        "train",
        "--quiet",
        "--epochs",
        "30",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    let v1 = dir.path().join("v1.safetensors");
    edit_meta(&out.join("model.safetensors"), &v1, |m| {
        let o = m.as_object_mut().unwrap();
        o.remove("columns");
        o.remove("target_scaling");
        o.insert("format_version".into(), 1.into());
    });
    let (a, _) = ok(&["eval", "--json", "--model", s(&v1), "--data", s(&data)]);
    let (b, _) = ok(&[
        "eval",
        "--json",
        "--model",
        s(&out.join("model.safetensors")),
        "--data",
        s(&data),
    ]);
    assert_eq!(
        json(a.as_bytes())["accuracy"],
        json(b.as_bytes())["accuracy"]
    );
    let p = write(dir.path(), "p.csv", "b,a\n1,9\n9,1\n");
    assert_eq!(
        ok(&["predict", "--model", s(&v1), "--input", s(&p)]).0,
        "prediction\nup\ndown\n"
    );
    let bare = write(dir.path(), "bare.csv", "9,1\n1,9\n");
    assert_eq!(
        ok(&["predict", "--model", s(&v1), "--input", s(&bare)]).0,
        "prediction\nup\ndown\n"
    );
    // A missing cell is an error for such a model (it has no medians).
    let gap = write(dir.path(), "gap.csv", "a,b\n9,\n");
    let e = fails(&["predict", "--model", s(&v1), "--input", s(&gap)]);
    assert!(
        e.contains("line 2, column b") && e.contains("missing"),
        "{e}"
    );
    // A newer format than this downhill knows is refused.
    let v9 = dir.path().join("v9.safetensors");
    edit_meta(&v1, &v9, |m| m["format_version"] = 9.into());
    let e = fails(&["predict", "--model", s(&v9), "--input", s(&p)]);
    assert!(e.contains("format version 9"), "{e}");
}

/// A CSV run resumed from its checkpoint fits the same columns and ends with the same model.
#[test]
fn a_resumed_csv_run_keeps_its_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "penguins.csv", penguins(200, 4));
    let out = dir.path().join("r");
    ok(&[
        "train",
        "--quiet",
        "--epochs",
        "4",
        "--checkpoint-every",
        "epoch",
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    let model = out.join("model.safetensors");
    let predict = || {
        ok(&[
            "predict",
            "--proba",
            "--model",
            s(&model),
            "--input",
            s(&data),
        ])
        .0
    };
    let (before, meta) = (predict(), model_meta(&model));
    ok(&["train", "--quiet", "--resume", s(&out)]);
    assert_eq!(model_meta(&model), meta);
    assert_eq!(predict(), before);
}

/// A generated battery of damaged tables through train, eval and predict: every outcome is a
/// success or a clean error that names the file (no panic, no abort); cells that cannot be read
/// name their line and column.
#[test]
fn damaged_tables_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_, model) = trained_penguins(dir.path());
    let m = s(&model);
    let base = penguins(40, 9);
    let lines: Vec<&str> = base.lines().collect();
    let mut cases: Vec<(String, Option<&str>)> = Vec::new();
    // Every odd cell value in every column of one data row.
    for value in [
        "", "NA", "inf", "-inf", "1e39", "nan", "abc", "\"a,b\"", "yes", "0", "-0", "1e-45",
    ] {
        for col in 0..8 {
            let mut rows: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            let mut cells: Vec<String> = rows[5].split(',').map(str::to_string).collect();
            cells[col] = value.to_string();
            rows[5] = cells.join(",");
            // Unreadable numbers in the numeric columns must name line 6.
            let must = (matches!(value, "inf" | "-inf" | "1e39") && (col == 3 || col == 4))
                .then_some("line 6");
            cases.push((rows.join("\n") + "\n", must));
        }
    }
    // Structural damage.
    let header = lines[0];
    let body: String = lines[1..].iter().map(|l| format!("{l}\n")).collect();
    for text in [
        String::new(),
        format!("{header}\n"),
        format!("{header}\n{}", &body[..body.len() / 2]),
        format!("{},extra\n{body}", header),
        format!("{}\n{body}", header.replace("bill", "island")),
        format!("{}\n{body}", header.replace("species", "")),
        body.clone(),
        format!("{header}\n{}", body.replace(',', ";")),
        format!("{header}\n{}", body.replace("Adelie", "NA")),
        "\n\n\n".to_string(),
        "a\n1\n2\n".to_string(),
    ] {
        cases.push((text, None));
    }
    let mut failures = 0;
    for (k, (text, must)) in cases.iter().enumerate() {
        let f = write(dir.path(), &format!("case{k}.csv"), text);
        let out = dir.path().join(format!("o{k}"));
        let mut failed_here = 0;
        for args in [
            vec![
                "train",
                "--quiet",
                "--epochs",
                "1",
                "--data",
                s(&f),
                "--out",
                s(&out),
            ],
            vec!["eval", "--model", m, "--data", s(&f)],
            vec!["predict", "--model", m, "--input", s(&f)],
        ] {
            let o = downhill().args(&args).output().unwrap();
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!e.contains("panicked"), "case {k} {args:?}: {e}");
            if o.status.success() {
                continue;
            }
            failures += 1;
            failed_here += 1;
            assert!(
                matches!(o.status.code(), Some(1..=2)) && e.contains(&format!("case{k}.csv")),
                "case {k} {args:?}: {e}"
            );
            if let Some(needle) = must {
                assert!(e.contains(needle), "case {k} {args:?}: {e}");
            }
        }
        if must.is_some() {
            // A cell that cannot be read fails every command.
            assert_eq!(failed_here, 3, "case {k}");
        }
    }
    assert!(
        cases.len() > 100 && failures > 30,
        "{} cases, {failures} failures",
        cases.len()
    );
}

#[test]
fn more_edge_cases_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    // A header alone; every target missing.
    let f = write(dir.path(), "h.csv", "x,y,label\n");
    let e = fails(&["train", "--data", s(&f), "--out", s(&dir.path().join("a"))]);
    assert!(e.contains("a header but no data rows"), "{e}");
    let f = write(dir.path(), "t.csv", "x,label\n1,NA\n2,\n");
    let e = fails(&["train", "--data", s(&f), "--out", s(&dir.path().join("a"))]);
    assert!(e.contains("no row has a target"), "{e}");
    // Two regression targets on different scales: each standardised, predictions in each one's units.
    let mut t = String::from("a,b,small,large\n");
    for i in 0..300 {
        let (a, b) = ((i % 17) as f64 / 17.0, (i % 11) as f64 / 11.0);
        t += &format!("{a},{b},{},{}\n", a - b, 5000.0 + 1000.0 * (a + b));
    }
    let f = write(dir.path(), "two.csv", &t);
    let out = dir.path().join("two");
    let (o, _) = ok(&[
        "train",
        "--json",
        "--quiet",
        "--target",
        "small,large",
        "--epochs",
        "60",
        "--data",
        s(&f),
        "--out",
        s(&out),
    ]);
    let v = json(o.as_bytes());
    assert!(v["test"]["r2"].as_f64().unwrap() > 0.95, "{v}");
    let p = write(dir.path(), "p.csv", "a,b\n0.5,0.5\n");
    let (o, _) = ok(&[
        "predict",
        "--model",
        s(&out.join("model.safetensors")),
        "--input",
        s(&p),
    ]);
    let row: Vec<f64> = o
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(row[0].abs() < 0.1 && (row[1] - 6000.0).abs() < 60.0, "{o}");
    // A model trained header-less reads header-less input, even a single row of text.
    let mut t = String::new();
    for i in 0..60 {
        let c = ["red", "blue", "green"][i % 3];
        t += &format!(
            "{c},{},{}\n",
            ["big", "small"][i % 2],
            if c == "red" { "stop" } else { "go" }
        );
    }
    let f = write(dir.path(), "tx.csv", &t);
    let out = dir.path().join("tx");
    ok(&[
        "train",
        "--quiet",
        "--no-header",
        "--epochs",
        "40",
        "--data",
        s(&f),
        "--out",
        s(&out),
    ]);
    let p = write(dir.path(), "one.csv", "red,small\n");
    let (o, _) = ok(&[
        "predict",
        "--model",
        s(&out.join("model.safetensors")),
        "--input",
        s(&p),
    ]);
    assert_eq!(o, "prediction\nstop\n");
}

/// A separate --test file with its columns in another order, a category unseen in training and
/// rows without a target: matched by name, the unseen rows and dropped rows reported.
#[test]
fn a_test_file_in_another_order_with_unseen_categories() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "train.csv", penguins(300, 5));
    let text = penguins(60, 6);
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [7, 2, 4, 3, 5, 1, 0, 6]
                .iter()
                .map(|&j| f[j])
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    // Row 1: an unseen island; row 2: no species.
    lines[1] = lines[1]
        .replacen(",Biscoe,", ",Atlantis,", 1)
        .replacen(",Dream,", ",Atlantis,", 1)
        .replacen(",Torgersen,", ",Atlantis,", 1);
    lines[2] = format!("NA{}", &lines[2][lines[2].find(',').unwrap()..]);
    let test = write(dir.path(), "test.csv", &(lines.join("\n") + "\n"));
    let (o, e) = ok(&[
        "train",
        "--json",
        "--epochs",
        "30",
        "--data",
        s(&train),
        "--test",
        s(&test),
        "--out",
        s(&dir.path().join("r")),
    ]);
    let v = json(o.as_bytes());
    assert_eq!(v["test"]["examples"], 59, "{v}");
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    assert_eq!(v["data"]["columns"]["test_dropped_target_rows"], 1);
    assert_eq!(v["data"]["columns"]["test_unseen"][0]["column"], "island");
    assert_eq!(
        v["data"]["columns"]["test_unseen"][0]["examples"][0],
        "Atlantis"
    );
    assert!(
        e.contains("dropped 1 test-file rows whose target is missing")
            && e.contains("test: column island: 1 rows with a category unseen in training"),
        "{e}"
    );
}

/// BCE: targets outside [0, 1] are refused (a target of 3 made the loss negative), and `eval
/// --json` reports RMSE and R² of the probabilities σ(z) — the figures `predict --proba` gives
/// by hand — not of the logits.
#[test]
fn bce_takes_targets_in_0_1_and_its_figures_are_of_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut text = String::from("a,b,y\n");
    let mut ys = Vec::new();
    for _ in 0..200 {
        let (a, b): (f64, f64) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        let y = u8::from(a + 0.5 * b > 0.0);
        ys.push(y as f64);
        text += &format!("{a:.4},{b:.4},{y}\n");
    }
    let data = write(dir.path(), "bce.csv", &text);
    let out = dir.path().join("run");
    let train = [
        "train", "--loss", "bce", "--task", "regress", "--epochs", "20", "--quiet",
    ];
    let mut args = train.to_vec();
    args.extend(["--data", s(&data), "--out", s(&out)]);
    ok(&args);
    let model = out.join("model.safetensors");
    let (json_out, _) = ok(&["eval", "--model", s(&model), "--data", s(&data), "--json"]);
    let e = json(json_out.as_bytes());
    let (proba, _) = ok(&[
        "predict",
        "--model",
        s(&model),
        "--input",
        s(&data),
        "--proba",
    ]);
    let p: Vec<f64> = proba
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let n = ys.len() as f64;
    let mean = ys.iter().sum::<f64>() / n;
    let sse: f64 = ys.iter().zip(&p).map(|(y, p)| (y - p).powi(2)).sum();
    let sst: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
    let (rmse, r2) = (e["rmse"].as_f64().unwrap(), e["r2"].as_f64().unwrap());
    assert!(
        (rmse - (sse / n).sqrt()).abs() < 1e-5,
        "{rmse} vs {}",
        (sse / n).sqrt()
    );
    assert!(
        (r2 - (1.0 - sse / sst)).abs() < 1e-5,
        "{r2} vs {}",
        1.0 - sse / sst
    );
    // A target of 3 for bce: refused in training and in eval, naming the target.
    let bad = write(dir.path(), "bad.csv", text.replacen(",1\n", ",3\n", 1));
    let bad_out = dir.path().join("bad");
    let mut args = train.to_vec();
    args.extend(["--data", s(&bad), "--out", s(&bad_out)]);
    let err = fails(&args);
    assert!(
        err.contains("bad.csv: line 2, column y: the target is 3")
            && err.contains("bce")
            && err.contains("[0, 1]"),
        "{err}"
    );
    let err = fails(&["eval", "--model", s(&model), "--data", s(&bad)]);
    assert!(
        err.contains("bad.csv: line 2, column y: the target is 3") && err.contains("[0, 1]"),
        "{err}"
    );
}

/// A long table (the benchmark's, 100,000 rows, read in blocks on every core): its load is
/// announced and timed; a stray word late in a numeric column is found at its line (the column
/// is read again as text); the benchmark measures the same file; a table is never written over.
#[test]
fn a_long_table_is_read_in_blocks_said_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.csv");
    ok(&["bench", "--write-table", s(&f), "--table-rows", "100000"]);
    assert!(std::fs::metadata(&f).unwrap().len() >= downhill::run::LONG_LOAD_BYTES);
    let e = fails(&["bench", "--write-table", s(&f), "--table-rows", "100"]);
    assert!(e.contains("write-table") && e.contains("exists"), "{e}");
    let out = dir.path().join("run");
    let (_, e) = ok(&[
        "train",
        "--data",
        s(&f),
        "--target",
        "y",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("reading ") && e.contains("MB)…"), "{e}");
    assert!(e.contains("read and encoded 100000 rows in "), "{e}");
    // Row 90,000 (line 90,002) gets a word in column x5.
    let text = std::fs::read_to_string(&f).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[90_001].split(',').map(str::to_string).collect();
    cells[5] = "oops".into();
    lines[90_001] = cells.join(",");
    let g = write(dir.path(), "stray.csv", &(lines.join("\n") + "\n"));
    let e = fails(&["train", "--data", s(&g), "--target", "y", "--epochs", "1"]);
    assert!(
        e.contains("line 90002, column x5") && e.contains("\"oops\""),
        "{e}"
    );
    let (o, _) = ok(&["bench", "--only", "table", "--table-file", s(&f), "--json"]);
    let m = &json(o.as_bytes())[0];
    assert_eq!(m["rows"], 100_000);
    assert_eq!(m["features"], 88);
}

/// A split that leaves no training rows names its flag, not the columns (seventh hostile
/// pass, item 12).
#[test]
fn a_split_without_training_rows_names_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,y\n");
    for i in 0..300 {
        text.push_str(&format!("{},{},{}\n", i % 17, i % 5, i % 2));
    }
    let f = write(dir.path(), "t.csv", &text);
    let out = dir.path().join("o");
    let e = fails(&[
        "train",
        "--data",
        s(&f),
        "--test-fraction",
        "0.998",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("test-fraction = 0.998") && e.contains("no training rows"),
        "{e}"
    );
    let e = fails(&[
        "train",
        "--data",
        s(&f),
        "--val-fraction",
        "0.999",
        "--out",
        s(&out),
    ]);
    assert!(
        e.contains("val-fraction = 0.999") && e.contains("no training examples"),
        "{e}"
    );
    assert!(!e.contains("--features"), "{e}");
}

/// Labels and categories keep how they are written, whatever the rest of their column holds
/// (the reader types a column of numbers as numbers, but reads targets and categorical columns
/// as text): `1` and `1.0` stay two categories in a test file of numbers only; `1e15`, integers
/// beyond 2⁵³ and `1.5` / `1.50` stay distinct classes; a label `.5` is not the class `0.5`.
#[test]
fn labels_and_categories_keep_their_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = String::from("a,b,y\n");
    for i in 0..40 {
        let a = ["1", "1.0", "x"][i % 3];
        train.push_str(&format!(
            "{a},{},{}\n",
            i % 2,
            if a == "1.0" { "p" } else { "q" }
        ));
    }
    let f = write(dir.path(), "train.csv", &train);
    let t = write(
        dir.path(),
        "test.csv",
        "a,b,y\n1.0,0,p\n1.0,1,p\n1,0,q\n1,1,q\n",
    );
    let out = dir.path().join("cat");
    ok(&[
        "train",
        "--data",
        s(&f),
        "--test",
        s(&t),
        "--epochs",
        "200",
        "--hidden",
        "4",
        "--seed",
        "1",
        "--lr",
        "0.05",
        "--out",
        s(&out),
        "-q",
    ]);
    let sum: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(sum["test"]["accuracy"], 1.0, "{}", sum["test"]);
    // Class names as written.
    for (labels, want) in [
        (["1e15", "2e15"], ["1e15", "2e15"]),
        (
            ["9007199254740993", "9007199254740992"],
            ["9007199254740992", "9007199254740993"],
        ),
        (["1.5", "1.50"], ["1.5", "1.50"]),
    ] {
        let mut text = String::from("a,y\n");
        for i in 0..30 {
            text.push_str(&format!("{i},{}\n", labels[i % 2]));
        }
        let f = write(dir.path(), "l.csv", &text);
        let out = dir.path().join(format!("l{}", labels[0]));
        ok(&[
            "train",
            "--data",
            s(&f),
            "--task",
            "classify",
            "--epochs",
            "1",
            "--hidden",
            "2",
            "--out",
            s(&out),
            "-q",
        ]);
        let model = out.join("model.safetensors");
        let (o, _) = ok(&["eval", "--model", s(&model), "--data", s(&f), "--json"]);
        let e = json(o.as_bytes());
        assert_eq!(
            e["confusion"].as_array().map(Vec::len),
            Some(2),
            "{labels:?}: {e}"
        );
        let names: Vec<String> = downhill::io::load(&model)
            .unwrap()
            .meta
            .class_names
            .unwrap();
        assert_eq!(names, want, "{labels:?}");
    }
    // A spelling of a class's number is not the class.
    let mut text = String::from("a,y\n");
    for i in 0..60 {
        text.push_str(&format!("{i},{}\n", ["0.5", "1.25", "3"][i % 3]));
    }
    let f = write(dir.path(), "f.csv", &text);
    let out = dir.path().join("f");
    ok(&[
        "train",
        "--data",
        s(&f),
        "--task",
        "classify",
        "--epochs",
        "1",
        "--hidden",
        "2",
        "--out",
        s(&out),
        "-q",
    ]);
    let g = write(dir.path(), "g.csv", "a,y\n1,3\n2,3\n3,.5\n");
    let model = out.join("model.safetensors");
    let e = fails(&["eval", "--model", s(&model), "--data", s(&g)]);
    assert!(
        e.contains("line 4, column y") && e.contains("\".5\""),
        "{e}"
    );
}

/// A header of numbers is read as the model's header by `predict`: after `--header` at
/// training, and for pandas' `0,1,2` names each given once; the columns are then matched by
/// name (eighth hostile pass, item 2: the header was predicted as a row, the columns matched by
/// position).
#[test]
fn predict_reads_a_header_of_numbers_as_the_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("1,2,3\n");
    let mut rng = downhill::Rng::seed_from_u64(14);
    for _ in 0..200 {
        let (a, b): (f64, f64) = (rng.random(), rng.random());
        text.push_str(&format!("{a:.4},{b:.4},{:.4}\n", a + 2.0 * b));
    }
    let f = write(dir.path(), "n.csv", &text);
    let out = dir.path().join("m");
    ok(&[
        "train",
        "--data",
        s(&f),
        "--header",
        "--epochs",
        "5",
        "--out",
        s(&out),
        "-q",
    ]);
    let model = out.join("model.safetensors");
    let a = write(dir.path(), "a.csv", "1,2\n0.5,0.5\n0.1,0.2\n");
    let b = write(dir.path(), "b.csv", "2,1\n0.5,0.5\n0.2,0.1\n");
    let (pa, _) = ok(&["predict", "--model", s(&model), "--input", s(&a)]);
    let (pb, _) = ok(&["predict", "--model", s(&model), "--input", s(&b)]);
    assert_eq!(pa.lines().count(), 3, "{pa}");
    assert_eq!(pa, pb);
    // pandas' header of an array's columns, detected at training.
    let text = text.replacen("1,2,3\n", "0,1,y\n", 1);
    let f = write(dir.path(), "p.csv", &text);
    let out = dir.path().join("p");
    ok(&[
        "train",
        "--data",
        s(&f),
        "--epochs",
        "5",
        "--out",
        s(&out),
        "-q",
    ]);
    let model = out.join("model.safetensors");
    let a = write(dir.path(), "pa.csv", "0,1\n0.5,0.5\n0.1,0.2\n");
    let b = write(dir.path(), "pb.csv", "1,0\n0.5,0.5\n0.2,0.1\n");
    let (pa, _) = ok(&["predict", "--model", s(&model), "--input", s(&a)]);
    let (pb, _) = ok(&["predict", "--model", s(&model), "--input", s(&b)]);
    assert_eq!(pa.lines().count(), 3, "{pa}");
    assert_eq!(pa, pb);
}

/// The benchmark's table flags refuse what nothing reads and name the file given; a field-count
/// error names the header's own line; a UTF-8 error counts its field once (eighth hostile pass,
/// items 3–6, 9, 10, 7).
#[test]
fn bench_table_flags_and_reader_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let e = fails(&[
        "bench",
        "--write-table",
        s(&d("a.csv")),
        "--table-rows",
        "10",
        "--examples",
        "5",
    ]);
    assert!(e.contains("--examples"), "{e}");
    ok(&[
        "bench",
        "--write-table",
        s(&d("t.csv")),
        "--table-rows",
        "1000",
    ]);
    let e = fails(&[
        "bench",
        "--table-file",
        s(&d("t.csv")),
        "--only",
        "784-100-10",
    ]);
    assert!(e.contains("table-file") && e.contains("leaves out"), "{e}");
    let e = fails(&["bench", "--table-file", s(&d("none.csv"))]);
    assert!(e.contains("table-file") && e.contains("not a file"), "{e}");
    let mut two = String::from("a,y\n");
    let mut reg = String::from("a,y\n");
    for i in 0..12 {
        two.push_str(&format!("{i},{}\n", i % 2));
        reg.push_str(&format!("{i},{}.5\n", i * 7 % 11));
    }
    write(dir.path(), "digits", &two);
    let (o, _) = ok(&[
        "bench",
        "--table-file",
        s(&d("digits")),
        "--only",
        "table",
        "--json",
    ]);
    let m = &json(o.as_bytes())[0];
    assert_eq!(
        (m["rows"].as_u64(), m["features"].as_u64()),
        (Some(12), Some(1)),
        "{m}"
    );
    assert!(m["name"].as_str().unwrap().contains("x 2 columns"), "{m}");
    let r = write(dir.path(), "reg.csv", &reg);
    let e = fails(&["bench", "--table-file", s(&r), "--only", "table"]);
    assert!(e.contains("two classes"), "{e}");
    let f = write(dir.path(), "f.csv", "\n\na,b,y\n1,2,p\n3,4\n");
    let e = fails(&["train", "--data", s(&f)]);
    assert!(e.contains("line 5: 2 fields, but line 3 has 3"), "{e}");
    let l = dir.path().join("lat.csv");
    std::fs::write(&l, b"a,b,y\n1,2,p\n3,4,q\n5,6,caf\xe9\n").unwrap();
    let e = fails(&["train", "--data", s(&l)]);
    assert!(
        e.contains("line 4") && e.contains("(field 3, after its first 3 bytes)"),
        "{e}"
    );
    assert!(!e.contains("field 2"), "{e}");
}

/// Tenth hostile pass: `bench --write-table` into a missing folder names the folder (not its
/// temporary file) and writes the table with a new file's usual mode (it was 0600); a table
/// file `bench` cannot train on fails before the other workloads run, naming the column y (bench
/// has no --target).
#[test]
fn bench_table_files_fail_early_and_are_written_as_files_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let e = fails(&[
        "bench",
        "--write-table",
        s(&d("nodir/t.csv")),
        "--table-rows",
        "100",
    ]);
    assert!(
        e.contains("the folder") && e.contains("does not exist"),
        "{e}"
    );
    assert!(!e.contains(".downhill"), "{e}");
    ok(&[
        "bench",
        "--write-table",
        s(&d("t.csv")),
        "--table-rows",
        "100",
    ]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        std::fs::write(d("plain"), "x").unwrap();
        assert_eq!(mode(&d("t.csv")), mode(&d("plain")));
    }
    let one = write(dir.path(), "one.csv", "x,y\n1,a\n2,a\n3,a\n4,a\n");
    // Every workload is asked for: the table's error comes before any of them is timed.
    let out = downhill()
        .args(["bench", "--table-file", s(&one)])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure();
    let o = out.get_output();
    let (stdout, e) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(stdout.trim().is_empty(), "{stdout}");
    assert!(
        e.contains("column named y") && !e.contains("--target"),
        "{e}"
    );
}

/// Flags that nothing reads are refused by name (ninth hostile pass, items 4–9): table flags on
/// images, `predict --proba` of a regression model, `explain --weights` with a seed or an
/// initialiser, `bench --epochs`/`--data` for the table alone, `landscape --condition` off the
/// quadratic bowl; `bench --table-file` is not sized as the generated table.
#[test]
fn flags_nothing_reads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    for flag in [&["--header"][..], &["--target", "3"], &["--drop", "x"]] {
        let mut a = vec![
            "train",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--out",
            s(&out),
        ];
        a.extend_from_slice(flag);
        let e = fails(&a);
        assert!(e.contains("is for CSV tables"), "{flag:?}: {e}");
    }
    let mut text = String::from("a,y\n");
    for i in 0..40 {
        text.push_str(&format!("{i},{}.5\n", i * 3 % 7));
    }
    let f = write(dir.path(), "r.csv", &text);
    ok(&[
        "train",
        "--data",
        s(&f),
        "--epochs",
        "1",
        "--out",
        s(&out),
        "-q",
    ]);
    let model = out.join("model.safetensors");
    let e = fails(&["predict", "--model", s(&model), "--input", s(&f), "--proba"]);
    assert!(e.contains("proba") && e.contains("regression"), "{e}");
    let w = write(dir.path(), "w.json", "{}");
    let e = fails(&["explain", "--weights", s(&w), "--seed", "3"]);
    assert!(e.contains("--seed"), "{e}");
    let e = fails(&["bench", "--only", "table", "--epochs", "2"]);
    assert!(e.contains("epochs") && e.contains("image workloads"), "{e}");
    let e = fails(&["landscape", "--surface", "himmelblau", "--condition", "5"]);
    assert!(e.contains("condition") && e.contains("quadratic"), "{e}");
}

/// A normaliser's scales are finite and positive and its shifts finite, or the model file is
/// refused naming the field (ninth hostile pass, item 12: a scale of 0 or −1 was used).
#[test]
fn a_model_with_a_broken_normaliser_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    for (field, value) in [("scale", 0.0), ("scale", -1.0), ("shift", f64::INFINITY)] {
        let bad = dir.path().join("bad.safetensors");
        let _ = std::fs::remove_file(&bad);
        edit_meta(&model, &bad, |m| {
            m["normalizer"][field][0] = if value.is_finite() {
                value.into()
            } else {
                // (JSON has no infinity: a number beyond f32 reads as one.)
                serde_json::json!(1e300)
            }
        });
        let e = fails(&["eval", "--model", s(&bad), "--data", s(&data)]);
        assert!(
            e.contains("bad.safetensors")
                && (e.contains("normalizer") || e.contains("out of range")),
            "{field} {value}: {e}"
        );
    }
}

/// The model file at `path` written to `to` with each F32 tensor passed through `edit` (by its
/// name) and the `extra` F32 tensors added; the metadata kept.
fn rewrite_tensors(
    path: &Path,
    to: &Path,
    edit: impl Fn(&str, &mut [f32]),
    extra: &[(&str, Vec<f32>)],
) {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone();
    let f32_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let mut data = view.data().to_vec();
        if view.dtype() == Dtype::F32 {
            let mut v: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            edit(&name, &mut v);
            data = f32_bytes(&v);
        }
        owned.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    for (name, v) in extra {
        owned.push((name.to_string(), Dtype::F32, vec![v.len()], f32_bytes(v)));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, sh, b)| (n.clone(), TensorView::new(*d, sh.clone(), b).unwrap()))
        .collect();
    std::fs::write(to, safetensors::serialize(views, meta).unwrap()).unwrap();
}

/// Ninth hostile pass, left open then: a model file with a tensor its network does not have
/// was read by `eval`, `predict` and `landscape --model` (the tensor ignored), though `--init`
/// refused it. All refuse it now, naming the file and the tensor; a checkpoint's training
/// state (`optimizer.*`, `train.*`) is still read by `eval`.
#[test]
fn a_model_file_with_a_tensor_its_network_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let extra = dir.path().join("extra.safetensors");
    rewrite_tensors(&model, &extra, |_, _| {}, &[("9.weight", vec![1.0, 2.0])]);
    let picture = dir.path().join("l.svg");
    for args in [
        vec!["eval", "--model", s(&extra), "--data", s(&data)],
        vec!["predict", "--model", s(&extra), "--input", s(&data)],
        vec![
            "landscape",
            "--model",
            s(&extra),
            "--data",
            s(&data),
            "--points",
            "3",
            "--out",
            s(&picture),
        ],
        vec![
            "train",
            "--data",
            s(&data),
            "--epochs",
            "1",
            "--init",
            s(&extra),
            "--out",
        ],
    ] {
        let mut args = args;
        let out = dir.path().join("r2");
        if args[0] == "train" {
            args.push(s(&out));
        }
        let e = fails(&args);
        assert!(
            e.contains("extra.safetensors: tensor 9.weight: not a parameter of the network"),
            "{args:?}: {e}"
        );
        assert!(!picture.exists() && !out.exists(), "{args:?}");
    }
    // Rewritten without it, the file is read; so is the run's checkpoint.
    let same = dir.path().join("same.safetensors");
    rewrite_tensors(&model, &same, |_, _| {}, &[]);
    ok(&["eval", "--model", s(&same), "--data", s(&data)]);
    let checkpoint = model.with_file_name("checkpoint.safetensors");
    ok(&["eval", "--model", s(&checkpoint), "--data", s(&data)]);
}

/// Sixth hostile pass, left open then: `eval` of a cross-entropy model whose logits are near
/// 10⁸ reported float32's rounding of m + ln Σ e^(zⱼ − m) − z_y (ln 2 lost below the spacing of
/// 8 there) instead of the loss. With equal logits every probability is ½: the loss is ln 2;
/// with the second logit 8 higher, it is ln(1 + e⁻⁸) plus 8 for each example of class 0.
#[test]
fn eval_of_huge_logits_reports_the_loss_the_probabilities_give() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = String::from("a,b,y\n");
    for i in 0..200 {
        let (a, b) = (
            ((i * 37) % 101) as f64 / 50.0 - 1.0,
            ((i * 61) % 97) as f64 / 48.0 - 1.0,
        );
        t += &format!("{a},{b},{}\n", u8::from(a + b > 0.0));
    }
    let data = write(dir.path(), "t.csv", &t);
    let run = dir.path().join("r");
    ok(&[
        "train",
        "--quiet",
        "--data",
        s(&data),
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--out",
        s(&run),
    ]);
    let model = run.join("model.safetensors");
    // The output layer: the highest-numbered layer's tensors.
    let last = model_meta(&model)["layers"].as_array().unwrap().len() - 1;
    let huge = dir.path().join("huge.safetensors");
    for (offset, closed) in [(0.0f32, None), (8.0, Some((-8f64).exp().ln_1p()))] {
        rewrite_tensors(
            &model,
            &huge,
            |name, v| {
                if name == format!("{last}.weight") {
                    v.fill(0.0);
                } else if name == format!("{last}.bias") {
                    v[0] = 1e8;
                    v[1] = 1e8 + offset;
                }
            },
            &[],
        );
        let v = json(
            ok(&["eval", "--json", "--model", s(&huge), "--data", s(&data)])
                .0
                .as_bytes(),
        );
        let loss = v["loss"].as_f64().unwrap();
        let n = v["examples"].as_f64().unwrap();
        let class0: f64 = v["confusion"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .sum();
        let want = match closed {
            None => 2f64.ln(),
            Some(tail) => tail + f64::from(offset) * class0 / n,
        };
        assert!(
            (loss - want).abs() < 2e-5,
            "offset {offset}: loss {loss}, closed form {want}"
        );
    }
}

/// Two Gaussian features, the first multiplied by `unit`, and a label from the first's sign
/// (tenth hostile pass, item 3); with the first column's values as written.
fn tiny_table(unit: f64, rows: usize) -> (String, Vec<f64>) {
    let mut rng = downhill::Rng::seed_from_u64(0);
    let mut out = String::from("x1,x2,y\n");
    let mut x1 = Vec::new();
    for _ in 0..rows {
        // A sum of uniforms: roughly Gaussian, and no extra dependency.
        let g =
            |r: &mut downhill::Rng| (0..12).map(|_| r.random_range(0.0..1.0)).sum::<f64>() - 6.0;
        let (a, b) = (g(&mut rng), g(&mut rng));
        let v: f64 = format!("{:e}", a * unit).parse().unwrap();
        x1.push(v);
        out += &format!("{v:e},{b},{}\n", if a > 0.0 { "p" } else { "n" });
    }
    (out, x1)
}

/// A numeric column in small units is standardised as one in units of 1 is: the test on its
/// spread is relative to its values (scikit-learn's `StandardScaler` rule), not σ > 10⁻¹² (a
/// column ×10⁻¹² kept scale 1 and the model learned little from it). A cell below float32's
/// smallest normal number is refused by file, line and column (it was held as a subnormal, and
/// training reads those as 0).
#[test]
fn a_feature_in_small_units_is_standardised() {
    let dir = tempfile::tempdir().unwrap();
    for unit in [1e-12, 1e-20, 1e-30] {
        let (text, x1) = tiny_table(unit, 300);
        let data = write(dir.path(), "small.csv", &text);
        let out = dir.path().join(format!("r{unit:e}"));
        #[rustfmt::skip]
        ok(&["train", "-q", "--data", s(&data), "--out", s(&out), "--epochs", "1",
            "--val-fraction", "0", "--test-fraction", "0"]);
        let m = model_meta(&out.join("model.safetensors"));
        assert_eq!(m["feature_names"][0], "x1", "{m}");
        // The closed form over every row (all of them train): 1/σ of the f32 values.
        let v: Vec<f64> = x1.iter().map(|&v| v as f32 as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        let scale = m["normalizer"]["scale"][0].as_f64().unwrap();
        assert!(
            ((scale * sd) - 1.0).abs() < 1e-5,
            "unit {unit:e}: scale {scale:e}, 1/σ {:e}",
            1.0 / sd
        );
    }
    let tiny = write(
        dir.path(),
        "tiny.csv",
        "x1,x2,y\n1e-3,1,p\n1e-40,2,n\n3e-3,3,p\n",
    );
    let e = fails(&[
        "train",
        "--data",
        s(&tiny),
        "--out",
        s(&dir.path().join("t")),
    ]);
    assert!(
        e.contains("tiny.csv") && e.contains("line 3, column x1") && e.contains("1e-40"),
        "{e}"
    );
}

/// R² and RMSE in the target's units are computed on the targets as read, in f64: with one
/// outlier of 10³⁰ among the training targets, the scaled f32 test targets were all one value,
/// and eval said "the target does not vary" (tenth hostile pass, item 5). The figures are
/// checked against the closed form over predict's outputs.
#[test]
fn r2_with_an_outlier_in_the_training_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = downhill::Rng::seed_from_u64(3);
    let mut rows = Vec::new();
    for _ in 0..200 {
        let (a, b, t): (f64, f64, f64) = (
            rng.random_range(-2.0..2.0),
            rng.random_range(-2.0..2.0),
            rng.random_range(-7.0..7.0),
        );
        rows.push(format!("{a:.4},{b:.4},{t:.4}"));
    }
    rows.insert(5, "0.1,0.2,1e30".into());
    let data = write(
        dir.path(),
        "rt.csv",
        format!("x1,x2,t\n{}\n", rows.join("\n")),
    );
    let test = write(
        dir.path(),
        "rt_te.csv",
        format!("x1,x2,t\n{}\n", rows[rows.len() - 40..].join("\n")),
    );
    let out = dir.path().join("r");
    #[rustfmt::skip]
    ok(&["train", "-q", "--data", s(&data), "--out", s(&out), "--epochs", "3",
        "--val-fraction", "0", "--test-fraction", "0"]);
    let model = out.join("model.safetensors");
    let (e, _) = ok(&["eval", "--json", "--model", s(&model), "--data", s(&test)]);
    let e = json(e.as_bytes());
    let (p, _) = ok(&["predict", "--model", s(&model), "--input", s(&test)]);
    let p: Vec<f64> = p.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let y: Vec<f64> = rows[rows.len() - 40..]
        .iter()
        .map(|r| r.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sse: f64 = p.iter().zip(&y).map(|(p, y)| (p - y).powi(2)).sum();
    let sst: f64 = y.iter().map(|y| (y - mean).powi(2)).sum();
    let (r2, rmse) = (1.0 - sse / sst, (sse / y.len() as f64).sqrt());
    let got = e["r2"].as_f64().unwrap_or_else(|| panic!("{e}"));
    assert!(
        r2 < -1e40,
        "the predictions are near the outlier's mean: {r2:e}"
    );
    assert!(
        ((got - r2) / r2).abs() < 1e-5,
        "R² {got:e}, closed form {r2:e}: {e}"
    );
    let got = e["rmse"].as_f64().unwrap();
    assert!(
        ((got - rmse) / rmse).abs() < 1e-5,
        "RMSE {got:e} vs {rmse:e}"
    );
}

/// A model file's number out of range is quoted short: `1e300`, not 301 digits (tenth hostile
/// pass, item 6).
#[test]
fn numbers_in_a_refused_model_are_short() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = trained_penguins(dir.path());
    let bad = dir.path().join("bad.safetensors");
    edit_meta(&model, &bad, |m| {
        m["columns"]["columns"][3]["encoding"]["fill"] = 1e300.into()
    });
    let e = fails(&["eval", "--model", s(&bad), "--data", s(&data)]);
    assert!(e.contains("1e300") && !e.contains("0000000000"), "{e}");
}

/// A cell within float32's range but 10³⁸ standard deviations from the training rows' mean
/// overflows the network: in a held-out row it made training "diverge" with advice about the
/// learning rate, and `predict` blamed the intact model's weights (tenth hostile pass, item 4).
/// Both now name the file, line and column. In a training row it is standardised with the rest.
#[test]
fn a_far_out_cell_is_named_not_blamed_on_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = tiny_table(1.0, 200);
    let data = write(dir.path(), "tiny.csv", &text);
    let test = write(dir.path(), "far.csv", "x1,x2,y\n0.5,0.5,p\n3e38,0.5,p\n");
    let out = dir.path().join("far");
    #[rustfmt::skip]
    let e = fails(&["train", "-q", "--data", s(&data), "--test", s(&test), "--out", s(&out),
        "--epochs", "2"]);
    assert!(
        e.contains("far.csv: line 3, column x1: 3e38") && !e.contains("learning rate"),
        "{e}"
    );
    assert!(!out.exists(), "{e}");
    let run = dir.path().join("r");
    ok(&[
        "train",
        "-q",
        "--data",
        s(&data),
        "--out",
        s(&run),
        "--epochs",
        "2",
    ]);
    let model = run.join("model.safetensors");
    let p = write(dir.path(), "p.csv", "x1,x2\n1,2\n3e38,0.5\n");
    let e = fails(&["predict", "--model", s(&model), "--input", s(&p)]);
    assert!(
        e.contains("p.csv: line 3, column x1: 3e38") && !e.contains("was the file edited"),
        "{e}"
    );
    // In the training rows it is one outlier among them.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(3, "3e38,0.5,p");
    let with = write(dir.path(), "with.csv", &(lines.join("\n") + "\n"));
    #[rustfmt::skip]
    ok(&["train", "-q", "--data", s(&with), "--out", s(&dir.path().join("w")), "--epochs", "2",
        "--val-fraction", "0", "--test-fraction", "0"]);
}
