//! The playground's two-dimensional data sets, the ones a learner meets in TensorFlow
//! Playground: points (x, y) in [−6, 6]² with a class (two classes) or a value in [−1, 1]
//! (regression), jittered by Gaussian noise, and the input features computed from (x, y).

use rand::Rng as _;
use rand_distr::{Distribution, Normal};

use downhill_core::error::{Error, Result};
use downhill_core::rng::Rng;

/// The data sets' names.
pub const DATASETS: [&str; 6] = ["circle", "xor", "gauss", "spiral", "reg-plane", "reg-gauss"];

/// The input features' names: x, y, x², y², xy, sin x, sin y.
pub const FEATURES: [&str; 7] = ["x", "y", "x2", "y2", "xy", "sinx", "siny"];

/// Half the side of the square the points lie in.
pub const RANGE: f64 = 6.0;

/// Whether the named data set is a regression (a value per point) rather than two classes.
pub fn is_regression(name: &str) -> bool {
    name.starts_with("reg-")
}

/// `n` points of the named data set: (x, y) pairs and their targets (class 0 or 1, or a value
/// in [−1, 1]). `noise` in [0, 1] is the jitter's σ as a fraction of half the range (0.5 → σ = 3).
pub fn generate(
    name: &str,
    n: usize,
    noise: f64,
    rng: &mut Rng,
) -> Result<(Vec<[f64; 2]>, Vec<f64>)> {
    if !(0.0..=1.0).contains(&noise) {
        return Err(Error::setting("noise", noise, "must be in [0, 1]"));
    }
    if !(2..=100_000).contains(&n) {
        return Err(Error::setting("points", n, "must be in 2 ..= 100000"));
    }
    let jitter = Normal::new(0.0, (noise * RANGE / 2.0).max(f64::MIN_POSITIVE)).expect("σ > 0");
    let jit = |rng: &mut Rng| {
        if noise > 0.0 {
            [jitter.sample(rng), jitter.sample(rng)]
        } else {
            [0.0, 0.0]
        }
    };
    let mut pts = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    let out = (&mut pts, &mut ys);
    match name {
        "circle" => circle(n, rng, &jit, out),
        "xor" => xor(n, rng, &jit, out),
        "gauss" => gauss(n, noise, rng, out),
        "spiral" => spiral(n, rng, &jit, out),
        // A tilted plane, y = (x + y)/10, in [−1, 1] on the square [−5, 5]².
        "reg-plane" => surface(n, rng, &jit, |x, y| (x + y) / 10.0, out),
        // Six Gaussian bumps of alternating sign.
        "reg-gauss" => surface(n, rng, &jit, bumps, out),
        other => {
            return Err(Error::setting(
                "data",
                other,
                format!("accepted: {}", DATASETS.join(", ")),
            ));
        }
    }
    Ok((pts, ys))
}

/// Where a data set's generator writes: the points and their targets.
type Out<'a> = (&'a mut Vec<[f64; 2]>, &'a mut Vec<f64>);

/// `circle`: class 1 inside radius 2.5, class 0 in the ring 3.5 … 5.
fn circle(n: usize, rng: &mut Rng, jit: &impl Fn(&mut Rng) -> [f64; 2], (pts, ys): Out) {
    for i in 0..n {
        let inside = i % 2 == 0;
        let r = if inside {
            rng.random_range(0.0..2.5)
        } else {
            rng.random_range(3.5..5.0)
        };
        let a: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        let j = jit(rng);
        pts.push([r * a.cos() + j[0], r * a.sin() + j[1]]);
        ys.push(if inside { 1.0 } else { 0.0 });
    }
}

/// `xor`: class 1 where x·y ≥ 0 (the first and third quadrants), labelled before the jitter.
fn xor(n: usize, rng: &mut Rng, jit: &impl Fn(&mut Rng) -> [f64; 2], (pts, ys): Out) {
    for _ in 0..n {
        let pad = |v: f64| if v > 0.0 { v + 0.3 } else { v - 0.3 };
        let (x, y) = (
            pad(rng.random_range(-5.0..5.0)),
            pad(rng.random_range(-5.0..5.0)),
        );
        let j = jit(rng);
        pts.push([x + j[0], y + j[1]]);
        ys.push(if x * y >= 0.0 { 1.0 } else { 0.0 });
    }
}

/// `gauss`: two Gaussian clusters at (2, 2) (class 1) and (−2, −2) (class 0), σ = 1 plus the
/// noise.
fn gauss(n: usize, noise: f64, rng: &mut Rng, (pts, ys): Out) {
    let spread = Normal::new(0.0, 1.0 + noise * 2.0).expect("σ > 0");
    for i in 0..n {
        let c = if i % 2 == 0 { 2.0 } else { -2.0 };
        pts.push([c + spread.sample(rng), c + spread.sample(rng)]);
        ys.push(if i % 2 == 0 { 1.0 } else { 0.0 });
    }
}

/// `spiral`: two interleaved spirals, 1.75 turns each, radius 0 … 5.
fn spiral(n: usize, rng: &mut Rng, jit: &impl Fn(&mut Rng) -> [f64; 2], (pts, ys): Out) {
    let half = n.div_ceil(2);
    for i in 0..n {
        let (k, class) = (i / 2, i % 2);
        let r = 5.0 * k as f64 / half as f64;
        let t = 1.75 * std::f64::consts::TAU * k as f64 / half as f64
            + std::f64::consts::PI * class as f64;
        let j = jit(rng);
        pts.push([r * t.sin() + j[0], r * t.cos() + j[1]]);
        ys.push(class as f64);
    }
}

/// A regression data set: points uniform on [−5, 5]², each valued `f(x, y)` before the jitter.
fn surface(
    n: usize,
    rng: &mut Rng,
    jit: &impl Fn(&mut Rng) -> [f64; 2],
    f: impl Fn(f64, f64) -> f64,
    (pts, ys): Out,
) {
    for _ in 0..n {
        let (x, y) = (rng.random_range(-5.0..5.0), rng.random_range(-5.0..5.0));
        let j = jit(rng);
        pts.push([x + j[0], y + j[1]]);
        ys.push(f(x, y));
    }
}

/// The regression surface of `reg-gauss`: ±1-high Gaussian bumps (σ = 1.4) at six centres.
pub fn bumps(x: f64, y: f64) -> f64 {
    const CENTRES: [(f64, f64, f64); 6] = [
        (-4.0, 2.5, 1.0),
        (0.0, 2.5, -1.0),
        (4.0, 2.5, 1.0),
        (-4.0, -2.5, -1.0),
        (0.0, -2.5, 1.0),
        (4.0, -2.5, -1.0),
    ];
    let v: f64 = CENTRES
        .iter()
        .map(|&(cx, cy, s)| s * (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * 1.4 * 1.4)).exp())
        .sum();
    v.clamp(-1.0, 1.0)
}

/// Checks feature names (at least one, each known, none twice).
pub fn check_features(features: &[String]) -> Result<()> {
    if features.is_empty() {
        return Err(Error::setting(
            "features",
            "none",
            "choose at least one input feature",
        ));
    }
    for (i, f) in features.iter().enumerate() {
        if !FEATURES.contains(&f.as_str()) {
            return Err(Error::setting(
                "features",
                f,
                format!("accepted: {}", FEATURES.join(", ")),
            ));
        }
        if features[..i].contains(f) {
            return Err(Error::setting("features", f, "named twice"));
        }
    }
    Ok(())
}

/// The value of one named feature at (x, y).
pub fn feature(name: &str, x: f64, y: f64) -> f64 {
    match name {
        "x" => x,
        "y" => y,
        "x2" => x * x,
        "y2" => y * y,
        "xy" => x * y,
        "sinx" => x.sin(),
        "siny" => y.sin(),
        _ => f64::NAN,
    }
}

/// The feature rows of `points`, row-major `points.len() × features.len()`.
pub fn features_of(points: &[[f64; 2]], features: &[String]) -> Vec<f32> {
    points
        .iter()
        .flat_map(|p| features.iter().map(|f| feature(f, p[0], p[1]) as f32))
        .collect()
}

/// The centres of a `res × res` grid over [−6, 6]², row by row from the top (y = +6) down, the
/// order in which a canvas's pixels are laid out.
pub fn grid(res: usize) -> Vec<[f64; 2]> {
    let step = 2.0 * RANGE / res as f64;
    (0..res)
        .flat_map(|r| {
            (0..res).map(move |c| {
                [
                    -RANGE + (c as f64 + 0.5) * step,
                    RANGE - (r as f64 + 0.5) * step,
                ]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_data_set_is_balanced_and_in_range() {
        for name in DATASETS {
            let mut rng = Rng::seed_from_u64(1);
            let (pts, ys) = generate(name, 200, 0.0, &mut rng).unwrap();
            assert_eq!(pts.len(), 200);
            assert!(
                pts.iter().all(|p| p[0].abs() <= 6.0 && p[1].abs() <= 6.0),
                "{name}"
            );
            if is_regression(name) {
                assert!(ys.iter().all(|y| (-1.0..=1.0).contains(y)), "{name}");
            } else {
                let ones = ys.iter().filter(|&&y| y == 1.0).count();
                assert!((80..=120).contains(&ones), "{name}: {ones}");
                assert!(ys.iter().all(|&y| y == 0.0 || y == 1.0));
            }
        }
        // Labels follow the definitions.
        let mut rng = Rng::seed_from_u64(2);
        let (pts, ys) = generate("circle", 100, 0.0, &mut rng).unwrap();
        for (p, y) in pts.iter().zip(&ys) {
            assert_eq!(*y == 1.0, p[0].hypot(p[1]) < 2.5);
        }
        let (pts, ys) = generate("xor", 100, 0.0, &mut rng).unwrap();
        for (p, y) in pts.iter().zip(&ys) {
            assert_eq!(*y == 1.0, p[0] * p[1] >= 0.0);
        }
        assert!(generate("moons", 10, 0.0, &mut rng).is_err());
        assert!(generate("circle", 10, 1.5, &mut rng).is_err());
    }

    #[test]
    fn features_and_grid() {
        let f: Vec<String> = FEATURES.iter().map(|s| s.to_string()).collect();
        let row = features_of(&[[2.0, -3.0]], &f);
        let want = [2.0, -3.0, 4.0, 9.0, -6.0, 2f64.sin(), (-3f64).sin()];
        for (a, b) in row.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
        assert!(check_features(&[]).is_err());
        assert!(check_features(&["x".into(), "x".into()]).is_err());
        assert!(check_features(&["z".into()]).is_err());
        let g = grid(4);
        assert_eq!(g[0], [-4.5, 4.5]);
        assert_eq!(g[15], [4.5, -4.5]);
    }
}
