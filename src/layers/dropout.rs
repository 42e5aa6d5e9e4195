//! Inverted dropout: in training each activation is kept with probability 1 − p and scaled by
//! 1/(1 − p), so that its expectation is unchanged and evaluation needs no rescaling.
//!
//! ```text
//! forward (training):  m_ij ~ Bernoulli(1 − p) / (1 − p),   y = x ⊙ m
//! forward (eval):      y = x
//! backward:            δx = δy ⊙ m
//! ```
//!
//! The mask is drawn from the generator the caller passes in, so a seed fixes it.
//!
//! ```
//! use downhill::layers::dropout;
//! use rand::SeedableRng;
//! let mut rng = downhill::Rng::seed_from_u64(0);
//! let (mut y, mut m) = ([0.0f32; 4], [0.0f32; 4]);
//! dropout::forward_train(0.5, &[1.0; 4], &mut y, &mut m, &mut rng);
//! assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
//! ```

use rand::Rng as _;

use crate::rng::Rng;
use crate::tensor::Scalar;

/// Draws a fresh mask and applies it: `y = x ⊙ m`.
pub fn forward_train<T: Scalar>(p: f64, x: &[T], y: &mut [T], mask: &mut [T], rng: &mut Rng) {
    let keep = T::c(1.0 / (1.0 - p));
    for ((y, m), &x) in y.iter_mut().zip(mask.iter_mut()).zip(x) {
        *m = if rng.random::<f64>() >= p {
            keep
        } else {
            T::zero()
        };
        *y = x * *m;
    }
}

/// `δx = δy ⊙ m`, with the mask of the last training forward pass.
pub fn backward<T: Scalar>(mask: &[T], delta_y: &[T], delta_x: &mut [T]) {
    for ((dx, &m), &dy) in delta_x.iter_mut().zip(mask).zip(delta_y) {
        *dx = dy * m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keeps_about_one_minus_p_and_preserves_the_mean() {
        let mut rng = Rng::seed_from_u64(7);
        let n = 100_000;
        let x = vec![1.0f64; n];
        let (mut y, mut m) = (vec![0.0; n], vec![0.0; n]);
        forward_train(0.3, &x, &mut y, &mut m, &mut rng);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        let mean = y.iter().sum::<f64>() / n as f64;
        // Binomial standard error at n = 1e5 is ~0.0015; allow 4σ.
        assert!((kept - 0.7).abs() < 0.006, "kept {kept}");
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        let mut dx = vec![0.0; n];
        backward(&m, &vec![1.0; n], &mut dx);
        assert_eq!(dx, y);
    }
}
