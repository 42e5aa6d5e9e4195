//! Two-parameter test functions f(x, y) with analytic gradients: the height maps on which the
//! optimisers' paths are drawn.
//!
//! | surface      | f(x, y)                                                        | minima                      |
//! |--------------|----------------------------------------------------------------|-----------------------------|
//! | `quadratic`  | ½(x² + κ·y²), condition number κ (`--condition`, default 10)    | (0, 0)                      |
//! | `rosenbrock` | (1 − x)² + 100(y − x²)²                                        | (1, 1)                      |
//! | `himmelblau` | (x² + y − 11)² + (x + y² − 7)²                                 | four, f = 0                 |
//! | `beale`      | (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²       | (3, 0.5)                    |
//! | `saddle`     | x² − y²                                                        | none (a saddle at the origin) |
//! | `six-hump-camel` | (4 − 2.1x² + x⁴/3)x² + xy + (−4 + 4y²)y²                   | (0.0898, −0.7126), (−0.0898, 0.7126) |

/// A test surface.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Surface {
    Quadratic { condition: f64 },
    Rosenbrock,
    Himmelblau,
    Beale,
    Saddle,
    SixHumpCamel,
}

/// Names accepted by [`Surface::from_name`].
pub const SURFACES: [&str; 6] = [
    "quadratic",
    "rosenbrock",
    "himmelblau",
    "beale",
    "saddle",
    "six-hump-camel",
];

impl Surface {
    /// The surface of that name (`condition` is the quadratic's κ).
    pub fn from_name(name: &str, condition: f64) -> Option<Surface> {
        Some(match name {
            "quadratic" => Surface::Quadratic { condition },
            "rosenbrock" => Surface::Rosenbrock,
            "himmelblau" => Surface::Himmelblau,
            "beale" => Surface::Beale,
            "saddle" => Surface::Saddle,
            "six-hump-camel" => Surface::SixHumpCamel,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Surface::Quadratic { .. } => "quadratic",
            Surface::Rosenbrock => "rosenbrock",
            Surface::Himmelblau => "himmelblau",
            Surface::Beale => "beale",
            Surface::Saddle => "saddle",
            Surface::SixHumpCamel => "six-hump-camel",
        }
    }

    /// f(x, y).
    pub fn f(&self, x: f64, y: f64) -> f64 {
        match *self {
            Surface::Quadratic { condition } => 0.5 * (x * x + condition * y * y),
            Surface::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Surface::Himmelblau => (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2),
            Surface::Beale => {
                (1.5 - x + x * y).powi(2)
                    + (2.25 - x + x * y * y).powi(2)
                    + (2.625 - x + x * y.powi(3)).powi(2)
            }
            Surface::Saddle => x * x - y * y,
            Surface::SixHumpCamel => {
                (4.0 - 2.1 * x * x + x.powi(4) / 3.0) * x * x + x * y + (-4.0 + 4.0 * y * y) * y * y
            }
        }
    }

    /// ∇f(x, y), by hand.
    pub fn grad(&self, x: f64, y: f64) -> [f64; 2] {
        match *self {
            Surface::Quadratic { condition } => [x, condition * y],
            Surface::Rosenbrock => [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ],
            Surface::Himmelblau => {
                let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
                [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b]
            }
            Surface::Beale => {
                let (a, b, c) = (
                    1.5 - x + x * y,
                    2.25 - x + x * y * y,
                    2.625 - x + x * y.powi(3),
                );
                [
                    2.0 * a * (y - 1.0) + 2.0 * b * (y * y - 1.0) + 2.0 * c * (y.powi(3) - 1.0),
                    2.0 * a * x + 4.0 * b * x * y + 6.0 * c * x * y * y,
                ]
            }
            Surface::Saddle => [2.0 * x, -2.0 * y],
            Surface::SixHumpCamel => [
                8.0 * x - 8.4 * x.powi(3) + 2.0 * x.powi(5) + y,
                x - 8.0 * y + 16.0 * y.powi(3),
            ],
        }
    }

    /// The global minima, for marking and for "steps to reach a tolerance" (none for the saddle).
    pub fn minima(&self) -> Vec<[f64; 2]> {
        match self {
            Surface::Quadratic { .. } => vec![[0.0, 0.0]],
            Surface::Rosenbrock => vec![[1.0, 1.0]],
            Surface::Himmelblau => vec![
                [3.0, 2.0],
                [-2.805118, 3.131312],
                [-3.779310, -3.283186],
                [3.584428, -1.848126],
            ],
            Surface::Beale => vec![[3.0, 0.5]],
            Surface::Saddle => vec![],
            Surface::SixHumpCamel => vec![[0.0898, -0.7126], [-0.0898, 0.7126]],
        }
    }

    /// The smallest value of f (at the minima), if it has one.
    pub fn min_value(&self) -> Option<f64> {
        match self {
            Surface::SixHumpCamel => Some(-1.0316284534898774),
            Surface::Saddle => None,
            _ => Some(0.0),
        }
    }

    /// The frame drawn: (x range, y range).
    pub fn frame(&self) -> ([f64; 2], [f64; 2]) {
        match self {
            Surface::Quadratic { .. } => ([-2.5, 2.5], [-2.5, 2.5]),
            Surface::Rosenbrock => ([-2.0, 2.0], [-1.0, 3.0]),
            Surface::Himmelblau => ([-5.0, 5.0], [-5.0, 5.0]),
            Surface::Beale => ([-4.5, 4.5], [-4.5, 4.5]),
            Surface::Saddle => ([-2.0, 2.0], [-2.0, 2.0]),
            Surface::SixHumpCamel => ([-2.0, 2.0], [-1.2, 1.2]),
        }
    }

    /// A start that shows the surface's character.
    pub fn default_start(&self) -> [f64; 2] {
        match self {
            Surface::Quadratic { .. } => [-2.0, 1.5],
            Surface::Rosenbrock => [-1.5, 2.0],
            Surface::Himmelblau => [0.0, 0.0],
            Surface::Beale => [1.0, 1.5],
            Surface::Saddle => [-1.5, 0.01],
            Surface::SixHumpCamel => [-1.5, 1.0],
        }
    }

    /// Whether heights are best coloured on a log scale (wide dynamic range, minimum value 0).
    pub fn log_scale(&self) -> bool {
        matches!(
            self,
            Surface::Rosenbrock | Surface::Himmelblau | Surface::Beale
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_central_differences_and_minima_are_stationary() {
        for name in SURFACES {
            let s = Surface::from_name(name, 10.0).unwrap();
            for &(x, y) in &[(0.3, -0.7), (-1.2, 0.9), (1.7, 0.4)] {
                let g = s.grad(x, y);
                let h = 1e-6;
                let nx = (s.f(x + h, y) - s.f(x - h, y)) / (2.0 * h);
                let ny = (s.f(x, y + h) - s.f(x, y - h)) / (2.0 * h);
                let tol = 1e-6 * (1.0 + g[0].abs().max(g[1].abs()));
                assert!(
                    (g[0] - nx).abs() < tol && (g[1] - ny).abs() < tol,
                    "{name} at ({x}, {y}): {g:?} vs ({nx}, {ny})"
                );
            }
            for m in s.minima() {
                let g = s.grad(m[0], m[1]);
                assert!(
                    g[0].abs() < 1e-3 && g[1].abs() < 1e-3,
                    "{name}: ∇f at {m:?} = {g:?}"
                );
                assert!(
                    (s.f(m[0], m[1]) - s.min_value().unwrap()).abs() < 1e-6,
                    "{name}: f at {m:?}"
                );
            }
        }
    }
}
