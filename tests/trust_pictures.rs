//! Pictures that used to read wrong, checked through the binary: a two-class confusion matrix
//! is wide enough for its title; a regression run's loss curve is on a log axis beside R²; an
//! optimiser has the same colour in both landscape panels.

use assert_cmd::Command;

fn downhill() -> Command {
    Command::cargo_bin("downhill").unwrap()
}

/// The picture's width, from the SVG's `width="…"`.
fn svg_width(svg: &str) -> f64 {
    svg.split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn two_class_confusion_matrix_fits_its_title() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("two.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..80 {
        s += &format!(
            "{},{},{}\n",
            i % 7,
            i % 5,
            if i % 7 > 3 { "yes" } else { "no" }
        );
    }
    std::fs::write(&csv, s).unwrap();
    let run = dir.path().join("run");
    downhill()
        .args([
            "train", "--quiet", "--epochs", "3", "--hidden", "4", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let svg = std::fs::read_to_string(run.join("confusion.svg")).unwrap();
    // The title starts at x = 130 and is about 270 px wide at its font size.
    assert!(svg.contains("Confusion matrix (test set)"));
    assert!(
        svg_width(&svg) >= 130.0 + 270.0,
        "width {}",
        svg_width(&svg)
    );
}

#[test]
fn regression_curves_have_a_log_loss_axis_and_r2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reg.csv");
    let mut s = String::from("a,b,y\n");
    for i in 0..120 {
        let (a, b) = ((i % 11) as f64, (i % 7) as f64);
        s += &format!("{a},{b},{}\n", 100.0 + 30.0 * a - 12.0 * b);
    }
    std::fs::write(&csv, s).unwrap();
    let run = dir.path().join("run");
    downhill()
        .args([
            "train", "--quiet", "--epochs", "20", "--hidden", "8", "--data",
        ])
        .arg(&csv)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    assert!(
        svg.contains("Loss (log scale)") && svg.contains("R² (last epoch"),
        "{svg:.300}"
    );
    // Every epoch records R², and the last validation R² is the summary's.
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let (a, b) = (
        last["val_r2"].as_f64().unwrap(),
        summary["val"]["r2"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    assert!(lines.lines().all(|l| l.contains("\"train_r2\"")));
}

#[test]
fn an_optimizer_has_one_colour_in_both_landscape_panels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l.svg");
    downhill()
        .args(["landscape", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    let count = |c: &str| svg.matches(&format!("stroke=\"{c}\"")).count();
    // Six optimisers: each colour strokes its path and legend entry on the map, and its curve and
    // legend entry in the loss panel.
    for c in [
        "#E62828", "#FF8C00", "#E63CD2", "#00B4F0", "#28C83C", "#9664FF",
    ] {
        assert_eq!(count(c), 4, "{c}");
    }
}
