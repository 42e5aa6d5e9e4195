//! The landscape picture: left, filled contours of the height map (log scale where the surface
//! spans many orders of magnitude) with each optimiser's path, the start and the minima; right,
//! the loss against step for each optimiser (the gap f − f_min on a log scale where there is a
//! minimum).

use std::path::Path as FsPath;

use plotters::prelude::*;

use super::{Path, Surface};
use crate::error::{Error, Result};
use crate::plot::labelled_line;

/// Distinct path colours, the same for an optimiser in every panel: saturated mid-tones that
/// read on white (the loss panel) and, drawn over a dark halo, on the viridis map.
const COLOURS: [RGBColor; 8] = [
    RGBColor(230, 40, 40),
    RGBColor(255, 140, 0),
    RGBColor(230, 60, 210),
    RGBColor(0, 180, 240),
    RGBColor(40, 200, 60),
    RGBColor(150, 100, 255),
    RGBColor(150, 90, 50),
    RGBColor(110, 110, 110),
];

/// The halo under a path on the map, so that any colour reads over any band.
const HALO: RGBColor = RGBColor(15, 15, 15);

/// Viridis anchors, dark (low) to yellow (high).
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

fn viridis(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn err(path: &FsPath, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("drawing failed: {e}")),
    }
}

/// Draws `paths` on `surface` into an SVG file at `out` (written atomically).
pub fn draw(out: &FsPath, surface: &Surface, paths: &[Path], title: &str) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1300, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(out, e))?;
        let (left, right) = root.split_horizontally(700);
        contours(&left, surface, paths, title).map_err(|e| err(out, e))?;
        losses(&right, surface, paths).map_err(|e| err(out, e))?;
        root.present().map_err(|e| err(out, e))?;
    }
    crate::plot::save_picture(out, &svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A named, coloured line of (x, y) points.
type Curve<'a> = (Vec<(f64, f64)>, &'a str, RGBColor);

/// `level` at the centres of an `nx × ny` grid over the frame; `grid[j][i]` is row j (y), column i (x).
pub fn sample(
    level: impl Fn(f64, f64) -> f64,
    [x0, x1]: [f64; 2],
    [y0, y1]: [f64; 2],
    nx: usize,
    ny: usize,
) -> Vec<Vec<f64>> {
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    (0..ny)
        .map(|j| {
            (0..nx)
                .map(|i| level(x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy))
                .collect()
        })
        .collect()
}

/// Filled contours: the grid's values in 24 colour bands (viridis, from the 1st to the 98th
/// percentile, so a few extreme corners don't wash it out); runs of one band along a row are
/// drawn as one rectangle.
pub fn bands<'a, 'b: 'a>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    grid: &[Vec<f64>],
    [x0, x1]: [f64; 2],
    [y0, y1]: [f64; 2],
) -> std::result::Result<(), String> {
    let (ny, nx) = (grid.len(), grid.first().map_or(0, Vec::len));
    let (dx, dy) = ((x1 - x0) / nx.max(1) as f64, (y1 - y0) / ny.max(1) as f64);
    let mut all: Vec<f64> = grid
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    all.sort_by(f64::total_cmp);
    let (lo, hi) = (all[all.len() / 100], all[all.len() * 98 / 100]);
    let n = 24.0;
    let band = |v: f64| {
        if v.is_finite() {
            (((v - lo) / (hi - lo).max(1e-12)) * n)
                .floor()
                .clamp(0.0, n - 1.0)
        } else {
            n - 1.0
        }
    };
    let mut rects = Vec::new();
    for (j, row) in grid.iter().enumerate() {
        let mut i = 0;
        while i < nx {
            let b = band(row[i]);
            let mut k = i + 1;
            while k < nx && band(row[k]) == b {
                k += 1;
            }
            // Cells overlap their neighbours slightly, so no seam shows when the SVG is rasterised.
            let corners = [
                (x0 + i as f64 * dx, y0 + j as f64 * dy),
                (x0 + (k as f64 + 0.35) * dx, y0 + (j as f64 + 1.35) * dy),
            ];
            rects.push(Rectangle::new(corners, viridis((b + 0.5) / n).filled()));
            i = k;
        }
    }
    chart.draw_series(rects).map_err(|e| e.to_string())?;
    Ok(())
}

fn contours(
    area: &Area<'_>,
    s: &Surface,
    paths: &[Path],
    title: &str,
) -> std::result::Result<(), String> {
    let ([x0, x1], [y0, y1]) = s.frame();
    let mut chart = ChartBuilder::on(area)
        .caption(
            if s.log_scale() {
                format!("{title} (colours: log f)")
            } else {
                title.to_string()
            },
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("y")
        .disable_mesh()
        .draw()
        .map_err(|e| e.to_string())?;

    let fmin = s.min_value().unwrap_or(0.0);
    let grid = sample(
        |x, y| {
            let f = s.f(x, y);
            if s.log_scale() {
                (f - fmin + 1e-2).log10()
            } else {
                f
            }
        },
        [x0, x1],
        [y0, y1],
        160,
        140,
    );
    bands(&mut chart, &grid, [x0, x1], [y0, y1])?;

    let inside = |p: &[f64; 2]| p[0] >= x0 && p[0] <= x1 && p[1] >= y0 && p[1] <= y1;
    for (n, p) in paths.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        // Drawn until the path first leaves the frame.
        let shown: Vec<(f64, f64)> = p
            .points
            .iter()
            .take_while(|q| inside(q))
            .map(|q| (q[0], q[1]))
            .collect();
        let every = (shown.len() / 30).max(1);
        let rate = if p.label.contains('η') {
            String::new()
        } else {
            format!(" (η = {})", p.lr)
        };
        let label = format!(
            "{}{rate}{}",
            p.label,
            if p.diverged { " — diverged" } else { "" }
        );
        chart
            .draw_series(LineSeries::new(shown.clone(), HALO.stroke_width(4)))
            .map_err(|e| e.to_string())?;
        let (line, legend) = (colour.stroke_width(2), colour.stroke_width(3));
        labelled_line(&mut chart, shown.clone(), (line, label), (legend, 18))?;
        chart
            .draw_series(
                shown
                    .iter()
                    .step_by(every)
                    .map(|&q| Circle::new(q, 3, colour.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    if let Some(p) = paths.first() {
        let start = (p.points[0][0], p.points[0][1]);
        chart
            .draw_series([TriangleMarker::new(start, 9, BLACK.filled())])
            .map_err(|e| e.to_string())?
            .label("start")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 7, BLACK.filled()));
    }
    let minima: Vec<(f64, f64)> = s.minima().iter().map(|m| (m[0], m[1])).collect();
    if !minima.is_empty() {
        chart
            .draw_series(
                minima
                    .iter()
                    .map(|&m| Cross::new(m, 7, WHITE.stroke_width(3))),
            )
            .map_err(|e| e.to_string())?
            .label("minimum")
            .legend(|(x, y)| Cross::new((x + 9, y), 5, BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn losses(area: &Area<'_>, s: &Surface, paths: &[Path]) -> std::result::Result<(), String> {
    let steps = paths
        .iter()
        .map(|p| p.losses.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let curve = |p: &Path| -> Vec<(usize, f64)> {
        match s.min_value() {
            Some(m) => p
                .losses
                .iter()
                .enumerate()
                .map(|(t, &f)| (t, (f - m).max(1e-16)))
                .filter(|(_, v)| v.is_finite())
                .collect(),
            None => p
                .losses
                .iter()
                .enumerate()
                .map(|(t, &f)| (t, f))
                .filter(|(_, v)| v.is_finite())
                .collect(),
        }
    };
    let values: Vec<f64> = paths
        .iter()
        .flat_map(|p| curve(p).into_iter().map(|c| c.1))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0)
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption("Loss against step", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if s.min_value().is_some() {
        let mut chart = builder
            .build_cartesian_2d(0..steps, (lo..hi * 1.5).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("f − f_min (log scale)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| e.to_string())?;
        draw_lines(&mut chart, paths, &curve)
    } else {
        let pad = (hi - lo) * 0.05;
        let mut chart = builder
            .build_cartesian_2d(0..steps, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("f")
            .draw()
            .map_err(|e| e.to_string())?;
        draw_lines(&mut chart, paths, &curve)
    }
}

/// One loss curve per path, with the legend; for either kind of y axis.
fn draw_lines<'a, 'b, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordusize, Y>,
    >,
    paths: &[Path],
    curve: &dyn Fn(&Path) -> Vec<(usize, f64)>,
) -> std::result::Result<(), String>
where
    Y: Ranged<ValueType = f64>,
    'b: 'a,
{
    for (n, p) in paths.iter().enumerate() {
        // The colour of the same path on the map.
        let dark = COLOURS[n % COLOURS.len()];
        let (line, legend) = (dark.stroke_width(2), dark.stroke_width(3));
        labelled_line(chart, curve(p), (line, p.label.clone()), (legend, 18))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())
}

/// The network slice: filled contours of log₁₀ loss over (α, β) with the trained weights marked
/// and, when given, the training trajectory (its snapshots' coordinates) drawn over it. Right:
/// the cross-sections f(α, 0) and f(0, β) — or, with a trajectory, the loss at each snapshot.
pub fn draw_slice(
    out: &FsPath,
    slice: &super::network::Slice,
    path: Option<(&super::trajectory::Trajectory, &[f64])>,
    title: &str,
) -> Result<()> {
    let first_last = |v: &[f64]| [v[0], v[v.len() - 1]];
    let (ar, br) = (first_last(&slice.alphas), first_last(&slice.betas));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1250, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(out, e))?;
        let (left, right) = root.split_horizontally(650);
        let draw = || -> std::result::Result<(), String> {
            let (xd, yd) = match path {
                Some((t, _)) => (
                    format!(
                        "1st principal direction ({:.0}% of the path)",
                        100.0 * t.explained[0]
                    ),
                    format!("2nd principal direction ({:.0}%)", 100.0 * t.explained[1]),
                ),
                None => ("α (direction δ)".to_string(), "β (direction η)".to_string()),
            };
            let mut chart = ChartBuilder::on(&left)
                .caption(title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(ar[0]..ar[1], br[0]..br[1])
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc(xd)
                .y_desc(yd)
                .disable_mesh()
                .draw()
                .map_err(|e| e.to_string())?;
            let logs: Vec<Vec<f64>> = slice
                .loss
                .iter()
                .map(|r| r.iter().map(|v| v.max(1e-12).log10()).collect())
                .collect();
            bands(&mut chart, &logs, ar, br)?;
            let red = RGBColor(255, 80, 80);
            if let Some((t, _)) = path {
                let pts: Vec<(f64, f64)> = t.coords.iter().map(|c| (c[0], c[1])).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), WHITE.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label("training trajectory (one dot an epoch)")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                    });
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, WHITE.filled())))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series([TriangleMarker::new(pts[0], 8, BLACK.filled())])
                    .map_err(|e| e.to_string())?
                    .label("initial weights")
                    .legend(|(x, y)| TriangleMarker::new((x + 9, y), 7, BLACK.filled()));
            }
            chart
                .draw_series([TriangleMarker::new((0.0, 0.0), 9, red.filled())])
                .map_err(|e| e.to_string())?
                .label(format!("trained weights (loss {:.4})", slice.center))
                .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 7, red.filled()));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(|e| e.to_string())?;

            let lines: Vec<Curve<'_>> = match path {
                Some((_, losses)) => vec![(
                    losses
                        .iter()
                        .enumerate()
                        .map(|(e, &l)| (e as f64, l))
                        .collect(),
                    "loss at each snapshot",
                    RGBColor(31, 119, 180),
                )],
                None => {
                    let mid = slice.alphas.len() / 2;
                    vec![
                        (
                            slice
                                .alphas
                                .iter()
                                .zip(&slice.loss[mid])
                                .map(|(&a, &l)| (a, l))
                                .collect(),
                            "f(α, 0)",
                            RGBColor(31, 119, 180),
                        ),
                        (
                            slice
                                .betas
                                .iter()
                                .zip(slice.loss.iter().map(|r| r[mid]))
                                .map(|(&b, l)| (b, l))
                                .collect(),
                            "f(0, β)",
                            RGBColor(255, 127, 14),
                        ),
                    ]
                }
            };
            // Plotters asserts its ranges are numbers: a loss that is not finite is left out of
            // the curves (the map draws it in the top band).
            let lines: Vec<Curve<'_>> = lines
                .into_iter()
                .map(|(pts, name, colour)| {
                    let pts = pts.into_iter().filter(|p| p.1.is_finite()).collect();
                    (pts, name, colour)
                })
                .collect();
            let ys = lines.iter().flat_map(|l| l.0.iter().map(|p| p.1));
            let ys = ys.chain(Some(slice.center).filter(|v| v.is_finite()));
            let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            if !(lo.is_finite() && hi.is_finite()) {
                return Err("the loss is not finite anywhere on the slice".to_string());
            }
            // (Half each, so that a spread near f64::MAX does not overflow.)
            let pad = (0.05 * (hi / 2.0 - lo / 2.0)).max(1e-9);
            let (lo, hi) = match (lo - 2.0 * pad, hi + 2.0 * pad) {
                (a, b) if a.is_finite() && b.is_finite() => (a, b),
                _ => (lo, hi.max(lo + lo.abs() * 1e-9 + 1e-9)),
            };
            let xs = lines.iter().flat_map(|l| l.0.iter().map(|p| p.0));
            let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
            // (No finite point left on the curves: the slice's own range.)
            let (x0, x1) = if x0 <= x1 { (x0, x1) } else { (ar[0], ar[1]) };
            let (caption, xdesc) = if path.is_some() {
                ("Loss along the training trajectory", "epoch")
            } else {
                (
                    "Cross-sections through the trained weights",
                    "distance along the direction",
                )
            };
            let mut c2 = ChartBuilder::on(&right)
                .caption(caption, ("sans-serif", 17))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x0..x1.max(x0 + 1e-9), lo..hi)
                .map_err(|e| e.to_string())?;
            c2.configure_mesh()
                .x_desc(xdesc)
                .y_desc("loss")
                .y_label_formatter(&|v| format!("{v:.2}"))
                .draw()
                .map_err(|e| e.to_string())?;
            for (pts, name, colour) in lines {
                c2.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(3))
                    });
                c2.draw_series(pts.iter().map(|&p| Circle::new(p, 2, colour.filled())))
                    .map_err(|e| e.to_string())?;
            }
            c2.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperMiddle)
                .draw()
                .map_err(|e| e.to_string())
        };
        draw().map_err(|e| err(out, e))?;
        root.present().map_err(|e| err(out, e))?;
    }
    crate::plot::save_picture(out, &svg)
}
