//! Weight initialisers. Biases always start at zero.
//!
//! | scheme          | distribution of each weight                              | PyTorch equivalent                    |
//! |-----------------|----------------------------------------------------------|---------------------------------------|
//! | glorot-uniform  | U(−a, a), a = √(6 / (n_in + n_out))                      | `xavier_uniform_`                     |
//! | glorot-normal   | N(0, 2 / (n_in + n_out))                                  | `xavier_normal_`                      |
//! | he-normal       | N(0, 2 / n_in)                                            | `kaiming_normal_(nonlinearity="relu")` |
//! | he-uniform      | U(−a, a), a = √(6 / n_in)                                 | `kaiming_uniform_(nonlinearity="relu")` |
//! | lecun-normal    | N(0, 1 / n_in)                                            | `normal_(std=1/√n_in)`                |
//!
//! He is the default for the ReLU family (ReLU, leaky ReLU, GELU), Glorot uniform otherwise.

use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

use crate::layers::Activation;
use crate::rng::Rng;
use crate::tensor::Scalar;

/// A weight initialisation scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    GlorotUniform,
    GlorotNormal,
    HeNormal,
    HeUniform,
    LecunNormal,
}

impl Init {
    pub const ALL: [Init; 5] = [
        Init::GlorotUniform,
        Init::GlorotNormal,
        Init::HeNormal,
        Init::HeUniform,
        Init::LecunNormal,
    ];

    /// The default for a hidden activation: He for the ReLU family, Glorot uniform otherwise.
    pub fn default_for(act: Activation) -> Init {
        match act {
            Activation::Relu | Activation::LeakyRelu | Activation::Gelu => Init::HeNormal,
            _ => Init::GlorotUniform,
        }
    }

    /// The default for the network `layers` (a `--layers` spec or preset): He normal when
    /// every activation among them is of the ReLU family, Glorot uniform when any is not, and
    /// that of `fallback` (the `--activation` setting) when they hold none.
    pub fn default_for_layers(layers: &[crate::layers::Layer], fallback: Activation) -> Init {
        let mut acts = layers.iter().filter_map(|l| match l {
            crate::layers::Layer::Activation(a) => Some(*a),
            _ => None,
        });
        match acts.next() {
            None => Init::default_for(fallback),
            Some(first) => {
                if std::iter::once(first)
                    .chain(acts)
                    .all(|a| Init::default_for(a) == Init::HeNormal)
                {
                    Init::HeNormal
                } else {
                    Init::GlorotUniform
                }
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Init::GlorotUniform => "glorot-uniform",
            Init::GlorotNormal => "glorot-normal",
            Init::HeNormal => "he-normal",
            Init::HeUniform => "he-uniform",
            Init::LecunNormal => "lecun-normal",
        }
    }

    pub fn from_name(s: &str) -> Option<Init> {
        Init::ALL.into_iter().find(|i| i.name() == s)
    }

    /// Fills the weights of a layer with `fan_in` inputs and `fan_out` outputs.
    pub fn fill<T: Scalar>(self, w: &mut [T], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match self {
            Init::GlorotUniform => uniform(w, (6.0 / (fi + fo)).sqrt(), rng),
            Init::HeUniform => uniform(w, (6.0 / fi).sqrt(), rng),
            Init::GlorotNormal => normal(w, (2.0 / (fi + fo)).sqrt(), rng),
            Init::HeNormal => normal(w, (2.0 / fi).sqrt(), rng),
            Init::LecunNormal => normal(w, (1.0 / fi).sqrt(), rng),
        }
    }
}

fn uniform<T: Scalar>(w: &mut [T], a: f64, rng: &mut Rng) {
    for v in w {
        *v = T::c(rng.random_range(-a..a));
    }
}

fn normal<T: Scalar>(w: &mut [T], std: f64, rng: &mut Rng) {
    for v in w {
        let z: f64 = StandardNormal.sample(rng);
        *v = T::c(std * z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Sample variance against the scheme's formula (uniform U(−a,a) has variance a²/3).
    #[test]
    fn variances_match_the_formulas() {
        let (fi, fo, n) = (300, 100, 30_000);
        let cases = [
            (Init::GlorotUniform, 2.0 / (fi + fo) as f64),
            (Init::GlorotNormal, 2.0 / (fi + fo) as f64),
            (Init::HeNormal, 2.0 / fi as f64),
            (Init::HeUniform, 2.0 / fi as f64),
            (Init::LecunNormal, 1.0 / fi as f64),
        ];
        let mut rng = Rng::seed_from_u64(1);
        for (init, want) in cases {
            let mut w = vec![0.0f64; n];
            init.fill(&mut w, fi, fo, &mut rng);
            let mean = w.iter().sum::<f64>() / n as f64;
            let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "{init:?}: variance {var}, formula {want}"
            );
            assert!(
                mean.abs() < 4.0 * (want / n as f64).sqrt(),
                "{init:?}: mean {mean}"
            );
        }
    }
}
