//! The loss landscape of a trained network on a 2-D slice through its weights (Li, Xu, Taylor,
//! Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018):
//!
//! ```text
//! f(α, β) = L(w* + α·δ + β·η)
//! ```
//!
//! with w* the trained weights and δ, η random Gaussian directions, *filter-normalised*: each
//! filter (for a convolution, the `C × kh × kw` weights of one output channel; for a dense layer,
//! the row of incoming weights of one unit) of the direction is rescaled to the norm of the same
//! filter of w*, so that the picture is comparable across layers and networks whatever their
//! weights' scale. Bias directions are zero, as in the paper, and so are BatchNorm's γ and β
//! (the reference implementation's `ignore='biasbn'`: every parameter of one dimension gets a zero
//! direction); BatchNorm's running statistics are not parameters and stay as trained (the loss is
//! evaluated in eval mode).

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::network::Network;
use crate::rng::Rng;
use crate::train::evaluate;

/// The loss on a grid of the slice.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Slice {
    /// Coordinates along δ (x) and η (y), both `-span..=span`.
    pub alphas: Vec<f64>,
    pub betas: Vec<f64>,
    /// `loss[j][i] = f(alphas[i], betas[j])`.
    pub loss: Vec<Vec<f64>>,
    /// f(0, 0), the trained network's loss.
    pub center: f64,
    pub examples: usize,
}

/// A random direction in weight space, filter-normalised to `net`'s weights (zero for biases).
pub fn filter_normalised_direction(net: &Network<f32>, rng: &mut Rng) -> Vec<f32> {
    let mut d = vec![0.0f32; net.param_count()];
    for t in net.tensors().into_iter().filter(|t| t.is_weight) {
        let cols: usize = t.shape[1..].iter().product();
        for (row, w) in d[t.range.clone()]
            .chunks_exact_mut(cols)
            .zip(net.params()[t.range.clone()].chunks_exact(cols))
        {
            for v in row.iter_mut() {
                *v = StandardNormal.sample(rng);
            }
            let (dn, wn) = (norm(row), norm(w));
            let s = if dn > 0.0 { wn / dn } else { 0.0 };
            for v in row.iter_mut() {
                *v *= s;
            }
        }
    }
    d
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// A slice's half-width along random directions: a number > 0 and at most 1e6.
pub fn check_span(span: f64) -> Result<()> {
    if span.is_finite() && span > 0.0 && span <= 1e6 {
        return Ok(());
    }
    Err(Error::setting(
        "span",
        span,
        "must be a number > 0 and at most 1e6 (the directions have the weights' own scale)",
    ))
}

/// Evaluates f on a `points × points` grid over `[-span, span]²` with directions from `seed`.
pub fn slice(
    net: &Network<f32>,
    loss: Loss,
    data: &Dataset,
    span: f64,
    points: usize,
    seed: u64,
) -> Result<Slice> {
    check_span(span)?;
    let mut rng = Rng::seed_from_u64(seed);
    let (d1, d2) = (
        filter_normalised_direction(net, &mut rng),
        filter_normalised_direction(net, &mut rng),
    );
    slice_along(
        net,
        loss,
        data,
        (&d1, &d2),
        [-span, span],
        [-span, span],
        points,
    )
}

/// Evaluates L(w* + α·d₁ + β·d₂) on a `points × points` grid over the given ranges of α and β.
pub fn slice_along(
    net: &Network<f32>,
    loss: Loss,
    data: &Dataset,
    (d1, d2): (&[f32], &[f32]),
    a_range: [f64; 2],
    b_range: [f64; 2],
    points: usize,
) -> Result<Slice> {
    if !(3..=1001).contains(&points) {
        return Err(Error::setting(
            "points",
            points,
            "must be from 3 to 1001 (the grid is points² evaluations of the loss)",
        ));
    }
    let axis = |[lo, hi]: [f64; 2]| -> Vec<f64> {
        (0..points)
            .map(|i| lo + (hi - lo) * i as f64 / (points - 1) as f64)
            .collect()
    };
    let (alphas, betas) = (axis(a_range), axis(b_range));
    let mut probe = net.clone();
    let mut grid = Vec::with_capacity(points);
    for &b in &betas {
        let mut row = Vec::with_capacity(points);
        for &a in &alphas {
            for (((p, &w), &u), &v) in probe
                .params_mut()
                .iter_mut()
                .zip(net.params())
                .zip(d1)
                .zip(d2)
            {
                *p = w + a as f32 * u + b as f32 * v;
            }
            row.push(evaluate(&probe, data, loss)?.loss);
        }
        grid.push(row);
    }
    let center = evaluate(net, data, loss)?.loss;
    Ok(Slice {
        alphas,
        betas,
        loss: grid,
        center,
        examples: data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Init};

    #[test]
    fn directions_are_filter_normalised_and_leave_biases_alone() {
        let mut rng = Rng::seed_from_u64(4);
        let net = Network::<f32>::mlp(
            &[7, 5, 3],
            Activation::Tanh,
            0.0,
            Init::GlorotNormal,
            &mut rng,
        )
        .unwrap();
        let d = filter_normalised_direction(&net, &mut rng);
        for t in net.tensors() {
            if t.is_weight {
                let cols: usize = t.shape[1..].iter().product();
                for (dr, wr) in d[t.range.clone()]
                    .chunks(cols)
                    .zip(net.params()[t.range.clone()].chunks(cols))
                {
                    assert!(
                        (norm(dr) - norm(wr)).abs() < 1e-5 * norm(wr),
                        "{}: {} vs {}",
                        t.name,
                        norm(dr),
                        norm(wr)
                    );
                }
            } else {
                assert!(d[t.range].iter().all(|&v| v == 0.0), "{}", t.name);
            }
        }
    }

    #[test]
    fn conv_filters_are_normalised_per_output_channel_and_batchnorm_left_alone() {
        use crate::layers::ImageShape;
        use crate::network::Shape;
        let mut rng = Rng::seed_from_u64(5);
        let input = Shape::Image(ImageShape::new(2, 6, 6));
        let spec = crate::netspec::parse("conv 3 3, batchnorm, relu, flatten, dense").unwrap();
        let layers = crate::netspec::resolve(&spec, input, 4).unwrap();
        let net = Network::<f32>::with_input(input, layers, Init::HeNormal, &mut rng).unwrap();
        let d = filter_normalised_direction(&net, &mut rng);
        let w = &net.tensors()[0];
        assert_eq!(w.shape, [3, 2, 3, 3]);
        for (dr, wr) in d[w.range.clone()]
            .chunks(18)
            .zip(net.params()[w.range.clone()].chunks(18))
        {
            assert!((norm(dr) - norm(wr)).abs() < 1e-5 * norm(wr));
        }
        for t in net.tensors().into_iter().filter(|t| t.shape.len() == 1) {
            assert!(d[t.range].iter().all(|&v| v == 0.0), "{}", t.name);
        }
    }
}
