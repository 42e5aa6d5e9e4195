//! Data files: CSV (headers, string classes, regression targets, gzip) and IDX pairs, round
//! trips, and every bad input of the issue gets an error that names the file and the place, never
//! a panic. (Model files: `model_files`.)

use std::io::Write;
use std::path::Path;

use crate::common::{idx_typed, write};
use downhill::data::Task;
use downhill::data::csv::{CsvOptions, load as load_csv};
use downhill::data::idx::{load_dir, load_pair};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn csv_err(text: &str, opts: CsvOptions) -> String {
    let d = tmp();
    let p = write(d.path(), "bad.csv", text.as_bytes());
    let e = load_csv(&p, &opts).unwrap_err().to_string();
    assert!(e.contains("bad.csv"), "error does not name the file: {e}");
    e
}

#[test]
fn csv_reads_headers_string_classes_and_regression_targets() {
    let d = tmp();
    let p = write(
        d.path(),
        "iris.csv",
        b"a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n",
    );
    let c = load_csv(&p, &CsvOptions::default()).unwrap();
    assert_eq!(c.task, Task::Classify);
    assert_eq!(c.feature_names, ["a", "b"]);
    assert_eq!(
        c.data.class_names.as_deref(),
        Some(&["setosa".to_string(), "virginica".to_string()][..])
    );
    assert_eq!(c.data.len(), 3);

    let p = write(d.path(), "r.csv.gz", gz(b"1.5,2,3.25,7\n2,3,4.5,8\n"));
    let c = load_csv(
        &p,
        &CsvOptions {
            target: Some("2,3".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (c.task, c.data.n_features(), c.data.n_outputs()),
        (Task::Regress, 2, 2)
    );

    // Floats in the last column: regression; whole numbers with few values: classes.
    let p = write(d.path(), "f.csv", b"1,0.5\n2,1.5\n");
    assert_eq!(
        load_csv(&p, &CsvOptions::default()).unwrap().task,
        Task::Regress
    );
    let p = write(d.path(), "c.csv", b"x,y\n1,0\n2,1\n3,1\n");
    let c = load_csv(
        &p,
        &CsvOptions {
            target: Some("0".into()),
            task: Some(Task::Regress),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (c.task, c.target_names.clone()),
        (Task::Regress, vec!["x".to_string()])
    );
}

#[test]
fn csv_bad_inputs_name_line_and_column() {
    let e = csv_err("1,2,0\n3,4\n", CsvOptions::default());
    assert!(e.contains("line 2") && e.contains("2 fields"), "{e}");
    // Issue 11 changed these from errors: text is a category, empty and NaN cells are missing
    // values (imputed, with an indicator feature) — see tests/suite/data/tables.rs for the rules.
    let d = tmp();
    for (text, features) in [
        ("a,b,y\n1,x,0\n2,3,1\n", 3),
        ("a,b,y\n1,,0\n2,3,1\n", 3),
        ("a,b,y\n1,NaN,0\n2,3,1\n", 3),
    ] {
        let p = write(d.path(), "ok.csv", text.as_bytes());
        let c = load_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!(
            c.data.n_features(),
            features,
            "{text}: {:?}",
            c.feature_names
        );
    }
    let e = csv_err("a,b,y\n1,2,0\n2,1e39,1\n", CsvOptions::default());
    assert!(e.contains("line 3, column b") && e.contains("f32"), "{e}");
    let e = csv_err("a,b,y\n1,2,0\n2,inf,1\n", CsvOptions::default());
    assert!(e.contains("line 3, column b") && e.contains("inf"), "{e}");
    let e = csv_err(
        "a,b,y\n1,2,0\n2,3,1\n",
        CsvOptions {
            target: Some("price".into()),
            ..Default::default()
        },
    );
    assert!(e.contains("price") && e.contains("a, b, y"), "{e}");
    let e = csv_err(
        "1,2,0\n2,3,1\n",
        CsvOptions {
            target: Some("7".into()),
            ..Default::default()
        },
    );
    assert!(e.contains("index 7"), "{e}");
    let e = csv_err("a,b,y\n1,2,cat\n2,3,cat\n", CsvOptions::default());
    assert!(e.contains("one class"), "{e}");
    let e = csv_err("", CsvOptions::default());
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn cut_off_gzip_is_an_error() {
    let d = tmp();
    let full = gz(&b"1,2,0\n".repeat(5000));
    let p = write(d.path(), "cut.csv.gz", &full[..full.len() / 2]);
    let e = load_csv(&p, &CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.csv.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn idx_pairs_and_their_errors() {
    let d = tmp();
    let images = write(
        d.path(),
        "train-images-idx3-ubyte",
        idx_typed(&[3, 2, 2], 8, &[0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    );
    let labels = write(
        d.path(),
        "train-labels-idx1-ubyte.gz",
        gz(&idx_typed(&[3], 8, &[1, 0, 9])),
    );
    let set = load_pair(&images, &labels).unwrap();
    assert_eq!((set.len(), set.n_features()), (3, 4));
    let (train, test) = load_dir(d.path()).unwrap();
    assert_eq!((train.len(), test.is_none()), (3, true));

    let wrong = write(d.path(), "wrong", idx_typed(&[3, 2, 2], 9, &[0; 12]));
    let e = load_pair(&wrong, &labels).unwrap_err().to_string();
    assert!(e.contains("wrong") && e.contains("magic"), "{e}");
    let short = write(d.path(), "short", idx_typed(&[3, 2, 2], 8, &[0; 7]));
    let e = load_pair(&short, &labels).unwrap_err().to_string();
    assert!(e.contains("short") && e.contains("truncated"), "{e}");
    let two = write(d.path(), "two-labels", idx_typed(&[2], 8, &[0, 1]));
    let e = load_pair(&images, &two).unwrap_err().to_string();
    assert!(e.contains("2 labels") && e.contains("3 images"), "{e}");
    let e = load_dir(&d.path().join("nowhere")).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
}

#[test]
fn missing_fashion_mnist_says_how_to_install_it() {
    let e = downhill::data::idx::fashion_mnist_in(Path::new("/nonexistent/fashion-mnist"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");
}

#[test]
fn cut_off_gzip_idx_is_an_error() {
    let d = tmp();
    let full = gz(&idx_typed(&[1000, 28, 28], 8, &vec![7u8; 784_000]));
    let p = write(
        d.path(),
        "train-images-idx3-ubyte.gz",
        &full[..full.len() / 2],
    );
    let e = downhill::data::idx::read_idx(&p, 3)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("gzip"),
        "{e}"
    );
}
