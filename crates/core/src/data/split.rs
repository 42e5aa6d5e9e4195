//! Seeded hold-out splits: stratified by class for classification (each class contributes the
//! same fraction, rounded, to the held-out part), plain random otherwise.
//!
//! ```
//! use downhill_core::data::{Dataset, split::hold_out};
//! use rand::SeedableRng;
//! let d = Dataset::classification(vec![0.0; 100], 1, (0..100).map(|i| (i / 50) as u32).collect(), 2).unwrap();
//! let (train, held) = hold_out(&d, 0.2, &mut downhill_core::Rng::seed_from_u64(1));
//! assert_eq!((train.len(), held.len()), (80, 20));
//! ```

use rand::seq::SliceRandom;

use super::{Dataset, Targets};
use crate::rng::Rng;

/// Splits off a `fraction` of `data` (in [0, 1)), stratified for classification. Returns the
/// indices (kept, held out), each in a random order.
pub fn hold_out_indices(data: &Dataset, fraction: f64, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    let mut take = |mut idx: Vec<usize>, rng: &mut Rng| {
        idx.shuffle(rng);
        let h = (idx.len() as f64 * fraction).round() as usize;
        held.extend_from_slice(&idx[..h]);
        kept.extend_from_slice(&idx[h..]);
    };
    match data.targets() {
        Targets::Classes { labels, n_classes } => {
            let mut by_class = vec![Vec::new(); *n_classes];
            for (i, &c) in labels.iter().enumerate() {
                by_class[c as usize].push(i);
            }
            for idx in by_class {
                take(idx, rng);
            }
        }
        Targets::Values { .. } => take((0..data.len()).collect(), rng),
    }
    kept.shuffle(rng);
    held.shuffle(rng);
    (kept, held)
}

/// [`hold_out_indices`] as two data sets (kept, held out).
pub fn hold_out(data: &Dataset, fraction: f64, rng: &mut Rng) -> (Dataset, Dataset) {
    let (k, h) = hold_out_indices(data, fraction, rng);
    (data.subset(&k), data.subset(&h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stratified_and_disjoint_and_seeded() {
        let labels: Vec<u32> = (0..1000).map(|i| (i / 100) as u32).collect();
        let d =
            Dataset::classification((0..1000).map(|i| i as f32).collect(), 1, labels.clone(), 10)
                .unwrap();
        let (k, h) = hold_out_indices(&d, 0.1, &mut Rng::seed_from_u64(3));
        assert_eq!(h.len(), 100);
        for c in 0..10 {
            assert_eq!(
                h.iter().filter(|&&i| labels[i] == c).count(),
                10,
                "class {c}"
            );
        }
        let mut all: Vec<usize> = k.iter().chain(&h).copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(
            hold_out_indices(&d, 0.1, &mut Rng::seed_from_u64(3)),
            (k, h.clone())
        );
        assert_ne!(hold_out_indices(&d, 0.1, &mut Rng::seed_from_u64(4)).1, h);
    }
}
