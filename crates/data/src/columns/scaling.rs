//! The standardisation of regression targets ([`TargetScaling`]): fitted on the training rows,
//! applied to every part, undone on the network's outputs.

/// Standardisation of regression targets: the network learns (y − mean)/std, fitted on the
/// training rows (population standard deviation, as scikit-learn's StandardScaler; a constant
/// column keeps std 1: one whose spread is below f32's rounding of its mean, 4·ε·|mean|, or below
/// the smallest normal f32, ~1.2·10⁻³⁸ — a relative test like scikit-learn's, so that a target
/// measured in units of 10⁻³⁰ is standardised too). Predictions are mapped back: ŷ = output·std + mean.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetScaling {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl TargetScaling {
    /// Fitted on a regression set's targets (`None` for classes or an empty set).
    pub fn fit(data: &downhill_core::data::Dataset) -> Option<TargetScaling> {
        let downhill_core::data::Targets::Values { data: y, cols } = data.targets() else {
            return None;
        };
        let n = y.len() / (*cols).max(1);
        if n == 0 {
            return None;
        }
        let mut mean = vec![0.0f64; *cols];
        for row in y.chunks_exact(*cols) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; *cols];
        for row in y.chunks_exact(*cols) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        // Constant (std 1) only when the spread is below f32's rounding of the mean, or below the
        // smallest normal f32: a target in units of 1e-30 is still standardised.
        let std = var
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / n as f64).sqrt();
                if sd.is_finite()
                    && sd >= f32::MIN_POSITIVE as f64
                    && sd > 4.0 * f32::EPSILON as f64 * m.abs()
                {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Some(TargetScaling { mean, std })
    }

    /// Standardises `data`'s targets.
    pub fn apply(&self, data: &mut downhill_core::data::Dataset) {
        let inv: Vec<f64> = self.std.iter().map(|s| 1.0 / s).collect();
        data.scale_targets(&self.mean, &inv);
    }

    /// Maps standardised values (`n × cols`, row-major) back to the original units.
    pub fn unscale(&self, values: &mut [f32]) {
        let k = self.mean.len().max(1);
        for row in values.chunks_exact_mut(k) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v as f64 * s + m) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_scaling_round_trip() {
        let mut d = downhill_core::data::Dataset::regression(
            vec![0.0; 4],
            1,
            vec![100.0, 0.5, 300.0, 1.5, 200.0, 1.0, 400.0, 2.0],
            2,
        )
        .unwrap();
        let t = TargetScaling::fit(&d).unwrap();
        assert_eq!(t.mean, [250.0, 1.25]);
        // Population standard deviation: √(12500) and √(0.3125).
        assert!((t.std[0] - 12500f64.sqrt()).abs() < 1e-9);
        assert!((t.std[1] - 0.3125f64.sqrt()).abs() < 1e-9);
        t.apply(&mut d);
        let downhill_core::data::Targets::Values { data, .. } = d.targets() else {
            unreachable!()
        };
        let mut back = data.clone();
        let mean: f32 = data.iter().step_by(2).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        t.unscale(&mut back);
        for (a, b) in back
            .iter()
            .zip([100.0, 0.5, 300.0, 1.5, 200.0, 1.0, 400.0, 2.0])
        {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // A constant target keeps std 1.
        let d =
            downhill_core::data::Dataset::regression(vec![0.0; 2], 1, vec![5.0, 5.0], 1).unwrap();
        assert_eq!(TargetScaling::fit(&d).unwrap().std, [1.0]);
    }
}
