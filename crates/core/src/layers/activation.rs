//! Elementwise activations a = f(z) and their backward pass δz = δa ⊙ f'(z).
//!
//! | name        | f(z)                              | f'(z)                               |
//! |-------------|-----------------------------------|-------------------------------------|
//! | identity    | z                                 | 1                                   |
//! | sigmoid     | σ(z) = 1 / (1 + e^(−z))           | σ(z)(1 − σ(z)) = a(1 − a)           |
//! | tanh        | tanh z                            | 1 − a²                              |
//! | relu        | max(0, z)                         | 1 if z > 0 else 0                   |
//! | leaky-relu  | z if z > 0 else s·z (s = 0.01)    | 1 if z > 0 else s                   |
//! | gelu        | z·Φ(z), Φ(z) = ½(1 + erf(z/√2))   | Φ(z) + z·φ(z), φ(z) = e^(−z²/2)/√(2π) |
//!
//! GELU is the exact (erf) form, PyTorch's `nn.GELU()` default. The derivative at the ReLU kink
//! z = 0 is taken as 0, as PyTorch does.
//!
//! ```
//! use downhill_core::layers::Activation;
//! let z = [-1.0f64, 0.5];
//! let mut a = [0.0; 2];
//! Activation::Relu.forward(&z, &mut a);
//! assert_eq!(a, [0.0, 0.5]);
//! ```

use crate::tensor::Scalar;

/// Leaky ReLU's slope for negative inputs (PyTorch's default `negative_slope`).
pub const LEAKY_SLOPE: f64 = 0.01;

/// An elementwise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu,
    Gelu,
}

impl Activation {
    /// All activations, for `--help` texts and exhaustive tests.
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Gelu,
    ];

    /// The command-line / metadata name (`relu`, `leaky-relu`, …).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Gelu => "gelu",
        }
    }

    /// Parses a name produced by [`Activation::name`].
    pub fn from_name(s: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The PyTorch module that computes this activation (for documentation and metadata).
    pub fn torch_module(self) -> &'static str {
        match self {
            Activation::Identity => "Identity",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Relu => "ReLU",
            Activation::LeakyRelu => "LeakyReLU",
            Activation::Gelu => "GELU",
        }
    }

    /// `a = f(z)`, elementwise; `a` and `z` have the same length.
    pub fn forward<T: Scalar>(self, z: &[T], a: &mut [T]) {
        let one = T::one();
        match self {
            Activation::Identity => a.copy_from_slice(z),
            Activation::Sigmoid => map(z, a, |z| one / (one + (-z).exp())),
            Activation::Tanh => map(z, a, |z| z.tanh()),
            Activation::Relu => map(z, a, |z| if z > T::zero() { z } else { T::zero() }),
            Activation::LeakyRelu => {
                let s = T::c(LEAKY_SLOPE);
                map(z, a, |z| if z > T::zero() { z } else { s * z })
            }
            Activation::Gelu => map(z, a, |z| z * phi_cdf(z)),
        }
    }

    /// `δz = δa ⊙ f'(z)`, given the forward pass's input `z` and output `a`.
    pub fn backward<T: Scalar>(self, z: &[T], a: &[T], delta_a: &[T], delta_z: &mut [T]) {
        let one = T::one();
        match self {
            Activation::Identity => delta_z.copy_from_slice(delta_a),
            Activation::Sigmoid => map2(a, delta_a, delta_z, |a, d| d * a * (one - a)),
            Activation::Tanh => map2(a, delta_a, delta_z, |a, d| d * (one - a * a)),
            Activation::Relu => map2(z, delta_a, delta_z, |z, d| {
                if z > T::zero() { d } else { T::zero() }
            }),
            Activation::LeakyRelu => {
                let s = T::c(LEAKY_SLOPE);
                map2(
                    z,
                    delta_a,
                    delta_z,
                    |z, d| if z > T::zero() { d } else { s * d },
                )
            }
            Activation::Gelu => {
                let inv_sqrt_2pi = T::c(1.0 / (2.0 * std::f64::consts::PI).sqrt());
                let half = T::c(0.5);
                map2(z, delta_a, delta_z, |z, d| {
                    d * (phi_cdf(z) + z * inv_sqrt_2pi * (-half * z * z).exp())
                })
            }
        }
    }
}

/// Φ(z), the standard normal distribution function, by erf.
#[inline]
fn phi_cdf<T: Scalar>(z: T) -> T {
    T::c(0.5) * (T::one() + (z * T::c(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

/// `y = f(x)` elementwise; compiled for AVX-512, AVX2 and plain x86-64, chosen at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn map<T: Scalar>(x: &[T], y: &mut [T], f: impl Fn(T) -> T) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = f(x);
    }
}

/// `y = f(x, d)` elementwise; dispatched like [`map`].
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn map2<T: Scalar>(x: &[T], d: &[T], y: &mut [T], f: impl Fn(T, T) -> T) {
    for ((y, &x), &d) in y.iter_mut().zip(x).zip(d) {
        *y = f(x, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f' by central differences (h = 1e-6) against `backward` with δa = 1, away from the kink.
    #[test]
    fn derivative_matches_central_difference() {
        let zs = [-2.3f64, -0.7, -0.1, 0.2, 0.9, 3.1];
        for act in Activation::ALL {
            let mut a = [0.0; 6];
            act.forward(&zs, &mut a);
            let mut d = [0.0; 6];
            act.backward(&zs, &a, &[1.0; 6], &mut d);
            for (i, &z) in zs.iter().enumerate() {
                let (mut hi, mut lo) = ([0.0], [0.0]);
                act.forward(&[z + 1e-6], &mut hi);
                act.forward(&[z - 1e-6], &mut lo);
                let num = (hi[0] - lo[0]) / 2e-6;
                assert!(
                    (num - d[i]).abs() < 1e-8,
                    "{act:?} at {z}: {num} vs {}",
                    d[i]
                );
            }
        }
    }

    /// Known values: σ(0) = ½, tanh(0) = 0, GELU(1) = Φ(1) = 0.8413447460685429 (normal table).
    #[test]
    fn known_values() {
        let mut a = [0.0f64];
        Activation::Sigmoid.forward(&[0.0], &mut a);
        assert_eq!(a[0], 0.5);
        Activation::Gelu.forward(&[1.0], &mut a);
        assert!((a[0] - 0.841_344_746_068_542_9).abs() < 1e-12);
        Activation::LeakyRelu.forward(&[-2.0], &mut a);
        assert!((a[0] + 0.02).abs() < 1e-15);
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::ALL {
            assert_eq!(Activation::from_name(act.name()), Some(act));
        }
        assert_eq!(Activation::from_name("softplus"), None);
    }
}
