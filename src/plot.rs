//! Pictures of a run, as SVG: the training curves (loss, and accuracy for classification,
//! against epoch, training and validation) and the confusion matrix of the test set.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::EpochMetrics;

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing failed: {e}")),
    }
}

/// Writes a picture given as SVG text: as it is for `.svg`, rasterised for `.png` (text drawn
/// with the system's fonts, e.g. Debian's fonts-dejavu-core). Atomically either way.
pub fn save_picture(path: &Path, svg: &str) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => crate::io::write_atomic(path, svg.as_bytes()),
        Some("png") => {
            use resvg::{tiny_skia, usvg};
            let mut opt = usvg::Options::default();
            opt.fontdb_mut().load_system_fonts();
            // The pictures ask for the generic "sans-serif"; fontdb maps it to Arial unless told.
            opt.fontdb_mut().set_sans_serif_family("DejaVu Sans");
            opt.font_family = "DejaVu Sans".to_string();
            let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| plot_err(path, e))?;
            let size = tree.size().to_int_size();
            let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
                .ok_or_else(|| plot_err(path, "empty picture"))?;
            resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
            let png = pixmap.encode_png().map_err(|e| plot_err(path, e))?;
            crate::io::write_atomic(path, &png)
        }
        _ => Err(Error::setting(
            "out",
            path.display(),
            "a picture file name ends in .svg or .png",
        )),
    }
}

/// Draws `points` as a line in `style` with a legend entry: `label` beside a short stroke,
/// `legend` (its style and length in pixels). The one way the pictures draw a labelled line.
pub(crate) fn labelled_line<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    points: impl IntoIterator<Item = CT::From>,
    (style, label): (ShapeStyle, String),
    (legend, length): (ShapeStyle, i32),
) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
    CT::From: Clone + 'static,
{
    chart
        .draw_series(LineSeries::new(points, style))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + length, y)], legend));
    Ok(())
}

/// Renders the SVG in memory (so the file can be written atomically) and writes it.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(root.clone()).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    crate::io::write_atomic(path, svg.as_bytes())
}

/// One panel: a metric of training (and validation) against epoch.
#[allow(clippy::too_many_arguments)]
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    history: &[EpochMetrics],
    train_and_val: impl Fn(&EpochMetrics) -> (Option<f64>, Option<f64>),
    legend: SeriesLabelPosition,
    log: bool,
) -> std::result::Result<(), String> {
    // On a log axis the points are drawn at log₁₀ of their values (only positive values) and the
    // axis labels show the values themselves.
    let tr = |v: f64| {
        if log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    };
    let train = |m: &EpochMetrics| train_and_val(m).0.and_then(tr);
    let val = |m: &EpochMetrics| train_and_val(m).1.and_then(tr);
    type Series<'s> = (&'s str, RGBColor, Vec<(f64, f64)>);
    let series: [Series<'_>; 2] = [
        (
            "training",
            TRAIN,
            history
                .iter()
                .filter_map(|m| train(m).map(|v| (m.epoch as f64, v)))
                .collect(),
        ),
        (
            "validation",
            VAL,
            history
                .iter()
                .filter_map(|m| val(m).map(|v| (m.epoch as f64, v)))
                .collect(),
        ),
    ];
    let values = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-6);
    let last = history.last().map_or(1, |m| m.epoch).max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(1.0..last, (lo - pad)..(hi + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if log {
                let v = 10f64.powf(*y);
                if (1e-3..1e4).contains(&v) {
                    crate::error::short(format!("{v:.2e}").parse().unwrap_or(v))
                } else {
                    format!("{v:.1e}")
                }
            } else {
                format!("{y:.3}")
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, colour, points) in series {
        if points.is_empty() {
            continue;
        }
        let style = colour.stroke_width(2);
        labelled_line(
            &mut chart,
            points.clone(),
            (style, name.to_string()),
            (style, 20),
        )?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The most epochs a curve is drawn with: a longer history is drawn by every k-th epoch and the
/// last (a picture about 500 pixels wide shows no more, and 500,000 epochs drew a 49 MB file).
pub const MAX_CURVE_POINTS: usize = 2000;

/// `curves.svg`: loss against epoch, training and validation, beside accuracy for
/// classification, or beside R² for regression — whose loss falls over orders of magnitude,
/// so it is drawn on a log axis.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let thinned: Vec<EpochMetrics>;
    let history = if history.len() > MAX_CURVE_POINTS {
        let k = history.len().div_ceil(MAX_CURVE_POINTS);
        let last = !(history.len() - 1).is_multiple_of(k);
        thinned = history
            .iter()
            .step_by(k)
            .chain(history.last().filter(|_| last))
            .cloned()
            .collect();
        &thinned[..]
    } else {
        history
    };
    let has_acc = history.iter().any(|m| m.train_accuracy.is_some());
    let has_r2 = history.iter().any(|m| m.train_r2.is_some());
    let width = if has_acc || has_r2 { 1100 } else { 600 };
    render(path, (width, 420), |root| {
        let panels = if has_acc || has_r2 {
            root.split_evenly((1, 2))
        } else {
            vec![root]
        };
        panel(
            &panels[0],
            if has_r2 { "Loss (log scale)" } else { "Loss" },
            "mean loss",
            history,
            |m| (Some(m.train_loss), m.val_loss),
            SeriesLabelPosition::UpperRight,
            has_r2,
        )?;
        if has_acc {
            panel(
                &panels[1],
                "Accuracy",
                "share correct",
                history,
                |m| (m.train_accuracy, m.val_accuracy),
                SeriesLabelPosition::LowerRight,
                false,
            )?;
        } else if has_r2 {
            let last = history.last();
            let title = match last.and_then(|m| m.val_r2.or(m.train_r2)) {
                Some(r) => format!("R² (last epoch {r:.4})"),
                None => "R²".to_string(),
            };
            panel(
                &panels[1],
                &title,
                "R² = 1 − SSE/SST (clipped at −1)",
                history,
                // Clipped at −1 so that a poor first epoch does not flatten the rest.
                |m| {
                    let clip = |r: f64| r.max(-1.0);
                    (m.train_r2.map(clip), m.val_r2.map(clip))
                },
                SeriesLabelPosition::LowerRight,
                false,
            )?;
        }
        Ok(())
    })
}

/// The most classes a confusion picture is drawn for (above, a k × k picture is unreadable and
/// its size grows as k²).
pub const MAX_CONFUSION_CLASSES: usize = 100;

/// `confusion.svg`: rows are true classes, columns predicted ones; cell shade by the share of the
/// true class, with the count written in.
pub fn confusion(path: &Path, matrix: &[Vec<usize>], names: &[String]) -> Result<()> {
    let k = matrix.len();
    if k > MAX_CONFUSION_CLASSES {
        return Err(Error::setting(
            "confusion matrix",
            format!("{k} classes"),
            format!("drawn for at most {MAX_CONFUSION_CLASSES} classes"),
        ));
    }
    let cell = (560 / k.max(1)).clamp(24, 60) as i32;
    let (left, top) = (130, 70);
    let side = cell * k as i32;
    // Wide enough for the title however few the classes (two classes: 120 px of cells).
    let size = ((left + side + 40).max(420) as u32, (top + side + 90) as u32);
    render(path, size, |root| {
        let font = |s: i32| ("sans-serif", s).into_font();
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.draw(&Text::new(
            "Confusion matrix (test set)",
            (left, 18),
            font(22).color(&BLACK),
        ))
        .map_err(err)?;
        for (t, row) in matrix.iter().enumerate() {
            let total: usize = row.iter().sum::<usize>().max(1);
            for (p, &count) in row.iter().enumerate() {
                let share = count as f64 / total as f64;
                // √share, so that a few percent of confusion is still visible.
                let shade = (255.0 * (1.0 - 0.85 * share.sqrt())) as u8;
                let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
                let fill = if t == p {
                    RGBColor(shade, shade, 255)
                } else {
                    RGBColor(255, shade, shade)
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    BLACK.mix(0.2),
                ))
                .map_err(err)?;
                let colour = if share.sqrt() > 0.6 { WHITE } else { BLACK };
                let style = font((cell / 3).clamp(9, 15)).color(&colour).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                );
                root.draw(&Text::new(
                    count.to_string(),
                    (x + cell / 2, y + cell / 2),
                    style,
                ))
                .map_err(err)?;
            }
        }
        let label = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        let anchor = |h| {
            font(15)
                .color(&BLACK)
                .pos(plotters::style::text_anchor::Pos::new(
                    h,
                    plotters::style::text_anchor::VPos::Center,
                ))
        };
        for i in 0..k {
            let mid = top + i as i32 * cell + cell / 2;
            root.draw(&Text::new(
                label(i),
                (left - 8, mid),
                anchor(plotters::style::text_anchor::HPos::Right),
            ))
            .map_err(err)?;
            let x = left + i as i32 * cell + cell / 2;
            root.draw(&Text::new(
                label(i),
                (x, top + side + 14),
                anchor(plotters::style::text_anchor::HPos::Center),
            ))
            .map_err(err)?;
        }
        root.draw(&Text::new(
            "predicted class →",
            (left + side / 2 - 60, top + side + 45),
            font(15).color(&BLACK),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            "true class ↓",
            (10, top - 22),
            font(15).color(&BLACK),
        ))
        .map_err(err)?;
        Ok(())
    })
}
