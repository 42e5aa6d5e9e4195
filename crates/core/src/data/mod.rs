//! Data sets in memory: features (raw bytes for images, `f32` otherwise), targets, and the
//! normalisation applied when a mini-batch is gathered.
//!
//! Images stay as `u8` (one byte a pixel) and are scaled only when a batch is copied out, so a
//! 60,000-image set costs 47 MB rather than 188 MB in `f32`. Normalisation is an affine map per
//! feature column, x' = (x − shift)·scale: standardisation (shift = mean, scale = 1/std, from the
//! training set), 1/255 scaling of pixels (shift 0, scale 1/255), or none.
//!
//! ```
//! use downhill_core::data::{Dataset, BatchBuf};
//! let d = Dataset::classification(vec![1.0, 2.0, 3.0, 4.0], 2, vec![0, 1], 2).unwrap();
//! let mut x = vec![0.0f64; 2];
//! let mut y = BatchBuf::new(&d, 1);
//! d.gather(&[1], &mut x, &mut y);
//! assert_eq!(x, [3.0, 4.0]);
//! ```

pub mod split;

use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::loss::BatchTargets;
use crate::rng::Rng;
use crate::tensor::Scalar;

/// Feature storage, row-major `len × n_features`.
#[derive(Clone, Debug)]
pub enum Features {
    /// Raw bytes (image pixels 0..255).
    U8(Vec<u8>),
    F32(Vec<f32>),
}

/// What the network is asked to predict.
#[derive(Clone, Debug)]
pub enum Targets {
    /// One class index per example, `< n_classes`.
    Classes { labels: Vec<u32>, n_classes: usize },
    /// `cols` real values per example (regression, or 0/1 values for BCE).
    Values { data: Vec<f32>, cols: usize },
}

/// What is predicted: a class, or real values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Classify,
    Regress,
}

/// How features are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// (x − mean)/std per feature, with training-set statistics (constant features: std taken as 1).
    Standardize,
    /// x/255 (pixels to [0, 1]).
    Scale,
    None,
}

/// The affine map x' = (x − shift)·scale per feature, fitted on a training set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalizer {
    pub kind: Normalization,
    pub shift: Vec<f32>,
    pub scale: Vec<f32>,
}

/// Feeds 4-byte words to a hash, a few thousand bytes at a time (no allocation).
fn hash_words(h: &mut xxhash_rust::xxh3::Xxh3, words: impl Iterator<Item = [u8; 4]>) {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    for w in words {
        buf[len..len + 4].copy_from_slice(&w);
        len += 4;
        if len == buf.len() {
            h.update(&buf);
            len = 0;
        }
    }
    h.update(&buf[..len]);
}

/// A data set: features, targets and the normaliser applied when gathering.
#[derive(Clone, Debug)]
pub struct Dataset {
    features: Features,
    n_features: usize,
    targets: Targets,
    normalizer: Normalizer,
    /// Class names, where the source had them (kept with the model).
    pub class_names: Option<Vec<String>>,
    /// The shape of one example as an image (C×H×W, `C·H·W = n_features`), where the source
    /// says so (IDX files, the embedded digits) or the user declared it (`--image-shape`).
    pub image: Option<crate::layers::ImageShape>,
    /// The regression targets as read, before [`Dataset::scale_targets`] replaced them (`n ×
    /// cols`): the figures in the target's units are computed on these, since the scaled f32
    /// values lose what lies below float32's resolution of the scaled mean (a 10³⁰ outlier).
    units: Option<Vec<f32>>,
}

impl Dataset {
    /// A data set from parts; checks that the lengths agree and the labels fit.
    pub fn new(features: Features, n_features: usize, targets: Targets) -> Result<Dataset> {
        let n_values = match &features {
            Features::U8(v) => v.len(),
            Features::F32(v) => v.len(),
        };
        if n_features == 0 || n_values % n_features != 0 {
            return Err(Error::shape(
                "features",
                format!("a multiple of {n_features} values"),
                n_values,
            ));
        }
        let rows = n_values / n_features;
        let (t_rows, what) = match &targets {
            Targets::Classes { labels, n_classes } => {
                if let Some((i, &c)) = labels
                    .iter()
                    .enumerate()
                    .find(|&(_, &c)| c as usize >= *n_classes)
                {
                    return Err(Error::shape(
                        format!("label of example {i}"),
                        format!("< {n_classes}"),
                        c,
                    ));
                }
                (labels.len(), "labels")
            }
            Targets::Values { data, cols } => (
                if *cols == 0 { 0 } else { data.len() / cols },
                "target rows",
            ),
        };
        if t_rows != rows {
            return Err(Error::shape(what, rows, t_rows));
        }
        let normalizer = Normalizer::identity(n_features);
        Ok(Dataset {
            features,
            n_features,
            targets,
            normalizer,
            class_names: None,
            image: None,
            units: None,
        })
    }

    /// A classification set from `f32` features and labels `0..n_classes`.
    pub fn classification(
        x: Vec<f32>,
        n_features: usize,
        labels: Vec<u32>,
        n_classes: usize,
    ) -> Result<Dataset> {
        Dataset::new(
            Features::F32(x),
            n_features,
            Targets::Classes { labels, n_classes },
        )
    }

    /// A regression (or multi-output 0/1) set from `f32` features and targets.
    pub fn regression(x: Vec<f32>, n_features: usize, y: Vec<f32>, cols: usize) -> Result<Dataset> {
        Dataset::new(
            Features::F32(x),
            n_features,
            Targets::Values { data: y, cols },
        )
    }

    pub fn len(&self) -> usize {
        match &self.targets {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { data, cols } => data.len() / cols,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Whether every target is a 0/1 label (class labels, or values that are all 0 or 1): only
    /// then do a bce model's accuracy, F1 and ROC-AUC mean anything. Soft targets (0.3, a
    /// probability) have no class to be right or wrong about.
    pub fn hard_targets(&self) -> bool {
        match &self.targets {
            Targets::Classes { .. } => true,
            Targets::Values { data, .. } => data.iter().all(|&v| v == 0.0 || v == 1.0),
        }
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Width of the network output this data needs: classes for classification, target columns otherwise.
    pub fn n_outputs(&self) -> usize {
        match &self.targets {
            Targets::Classes { n_classes, .. } => *n_classes,
            Targets::Values { cols, .. } => *cols,
        }
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// Uses `n` (e.g. fitted on the training set) from now on.
    pub fn set_normalizer(&mut self, n: Normalizer) -> Result<()> {
        if n.shift.len() != self.n_features || n.scale.len() != self.n_features {
            return Err(Error::shape("normaliser", self.n_features, n.shift.len()));
        }
        self.normalizer = n;
        Ok(())
    }

    /// The examples at `idx`, in that order (the normaliser and class names come along).
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let d = self.n_features;
        // Row by row with one copy each (a flattened iterator went byte by byte).
        fn rows<V: Copy>(v: &[V], d: usize, idx: &[usize]) -> Vec<V> {
            let mut out = Vec::with_capacity(idx.len() * d);
            for &i in idx {
                out.extend_from_slice(&v[i * d..(i + 1) * d]);
            }
            out
        }
        let features = match &self.features {
            Features::U8(v) => Features::U8(rows(v, d, idx)),
            Features::F32(v) => Features::F32(rows(v, d, idx)),
        };
        let targets = match &self.targets {
            Targets::Classes { labels, n_classes } => Targets::Classes {
                labels: idx.iter().map(|&i| labels[i]).collect(),
                n_classes: *n_classes,
            },
            Targets::Values { data, cols } => Targets::Values {
                data: idx
                    .iter()
                    .flat_map(|&i| data[i * cols..(i + 1) * cols].iter().copied())
                    .collect(),
                cols: *cols,
            },
        };
        let units = self.units.as_ref().map(|u| {
            let cols = self.n_outputs();
            rows(u, cols, idx)
        });
        Dataset {
            features,
            n_features: d,
            targets,
            normalizer: self.normalizer.clone(),
            class_names: self.class_names.clone(),
            image: self.image,
            units,
        }
    }

    /// Copies the examples at `idx`, normalised, into the first `idx.len()` rows of `x`, and their
    /// targets into `y`. Allocates nothing.
    pub fn gather<T: Scalar>(&self, idx: &[usize], x: &mut [T], y: &mut BatchBuf<T>) {
        let d = self.n_features;
        let (shift, scale) = (&self.normalizer.shift, &self.normalizer.scale);
        for (row, &i) in x.chunks_exact_mut(d).zip(idx) {
            match &self.features {
                Features::U8(v) => affine_row(row, &v[i * d..(i + 1) * d], shift, scale),
                Features::F32(v) => affine_row(row, &v[i * d..(i + 1) * d], shift, scale),
            }
        }
        y.n = idx.len();
        match &self.targets {
            Targets::Classes { labels, .. } => {
                for (o, &i) in y.classes.iter_mut().zip(idx) {
                    *o = labels[i];
                }
            }
            Targets::Values { data, cols } => {
                for (row, &i) in y.values.chunks_exact_mut(*cols).zip(idx) {
                    for (o, &v) in row.iter_mut().zip(&data[i * cols..(i + 1) * cols]) {
                        *o = T::c(v as f64);
                    }
                }
            }
        }
    }

    /// A 64-bit XXH3 hash of the data as training sees it: the stored features (bytes or
    /// `f32`s, little-endian) with the normaliser that maps them (kind, shift, scale), the
    /// targets, and the shape. One pass at memory speed (XXH3 is a specified, stable algorithm,
    /// so a checkpoint's fingerprint means the same in every version); a resumed run compares
    /// it with its checkpoint's to tell that it was given other data.
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for n in [self.len(), self.n_features, self.n_outputs()] {
            h.update(&(n as u64).to_le_bytes());
        }
        match &self.features {
            Features::U8(v) => {
                h.update(b"u8");
                h.update(v);
            }
            Features::F32(v) => {
                h.update(b"f32");
                hash_words(&mut h, v.iter().map(|x| x.to_le_bytes()));
            }
        }
        // The map (x − shift)·scale: what the stored values become.
        let (shift, scale) = (&self.normalizer.shift, &self.normalizer.scale);
        hash_words(&mut h, shift.iter().chain(scale).map(|x| x.to_le_bytes()));
        match &self.targets {
            Targets::Classes { labels, n_classes } => {
                h.update(&(*n_classes as u64).to_le_bytes());
                hash_words(&mut h, labels.iter().map(|l| l.to_le_bytes()));
            }
            Targets::Values { data, cols } => {
                h.update(&(*cols as u64).to_le_bytes());
                hash_words(&mut h, data.iter().map(|x| x.to_le_bytes()));
            }
        }
        h.digest()
    }

    /// Asks the CPU to start loading the rows at `idx` into cache (for the next mini-batch, while
    /// this one is in the matrix products), so that gathering them does not wait on memory.
    pub fn prefetch(&self, idx: &[usize]) {
        #[cfg(target_arch = "x86_64")]
        {
            let (ptr, row_bytes) = match &self.features {
                Features::U8(v) => (v.as_ptr(), self.n_features),
                Features::F32(v) => (v.as_ptr().cast::<u8>(), self.n_features * 4),
            };
            for &i in idx {
                for line in (0..row_bytes).step_by(64) {
                    // SAFETY: a prefetch is a hint that never faults; the address is inside the
                    // feature vector (row i < len, offset < row_bytes).
                    unsafe {
                        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                            ptr.add(i * row_bytes + line).cast(),
                        )
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = idx;
    }

    /// The same examples and targets with other features (`n_features` per row): a CSV's rows
    /// encoded by `downhill_data::columns::Columns::encode` (a crate above this one).
    pub fn with_features(&self, x: Vec<f32>, n_features: usize) -> Result<Dataset> {
        let mut d = Dataset::new(Features::F32(x), n_features, self.targets.clone())?;
        d.class_names = self.class_names.clone();
        Ok(d)
    }

    /// Maps every regression target value y of column j to (y − shift<sub>j</sub>)·scale<sub>j</sub>. Does nothing
    /// to class labels.
    pub fn scale_targets(&mut self, shift: &[f64], scale: &[f64]) {
        if let Targets::Values { data, cols } = &mut self.targets {
            if self.units.is_none() {
                self.units = Some(data.clone());
            }
            for row in data.chunks_exact_mut(*cols) {
                for ((v, s), c) in row.iter_mut().zip(shift).zip(scale) {
                    *v = ((*v as f64 - s) * c) as f32;
                }
            }
        }
    }

    /// The regression targets in their own units: as read, if [`Dataset::scale_targets`] has
    /// scaled them (else `None`: the targets are in their units already).
    pub fn targets_in_units(&self) -> Option<&[f32]> {
        self.units.as_deref()
    }

    /// Fits a normaliser of the given kind on this set's features (use the training set's).
    pub fn fit_normalizer(&self, kind: Normalization) -> Normalizer {
        let d = self.n_features;
        match kind {
            Normalization::None => Normalizer::identity(d),
            Normalization::Scale => Normalizer {
                kind,
                shift: vec![0.0; d],
                scale: vec![1.0 / 255.0; d],
            },
            Normalization::Standardize => {
                // Two passes (mean, then squared deviations): E[x²] − mean² cancels
                // catastrophically for a column far from 0 with a small spread.
                let n = self.len().max(1) as f64;
                let mut sum = vec![0.0f64; d];
                for i in 0..self.len() {
                    for (j, s) in sum.iter_mut().enumerate() {
                        *s += self.raw(i, j);
                    }
                }
                let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
                let mut sq = vec![0.0f64; d];
                for i in 0..self.len() {
                    for (j, q) in sq.iter_mut().enumerate() {
                        *q += (self.raw(i, j) - mean[j]).powi(2);
                    }
                }
                let scale = sq
                    .iter()
                    .zip(&mean)
                    .map(|(q, &m)| {
                        let var = q / n;
                        if is_constant(var, m, n) {
                            1.0
                        } else {
                            // Infinite when σ < 1/f32::MAX: refused by [`Normalizer::unfit`].
                            (1.0 / var.sqrt()) as f32
                        }
                    })
                    .collect();
                Normalizer {
                    kind,
                    shift: mean.iter().map(|&m| m as f32).collect(),
                    scale,
                }
            }
        }
    }

    /// Example `i`'s feature `j` as normalised (the value the network reads), in f32 as
    /// [`Dataset::gather`] computes it.
    pub fn normalised(&self, i: usize, j: usize) -> f32 {
        let (s, c) = (self.normalizer.shift[j], self.normalizer.scale[j]);
        (self.raw(i, j) as f32 - s) * c
    }

    /// Example `i`'s feature `j` as stored, before normalisation.
    pub fn raw(&self, i: usize, j: usize) -> f64 {
        match &self.features {
            Features::U8(v) => v[i * self.n_features + j] as f64,
            Features::F32(v) => v[i * self.n_features + j] as f64,
        }
    }

    /// Fills `order` with 0..len in a fresh random order (or in data order if `!shuffle`).
    pub fn epoch_order(&self, order: &mut Vec<usize>, shuffle: bool, rng: &mut Rng) {
        order.clear();
        order.extend(0..self.len());
        if shuffle {
            order.shuffle(rng);
        }
    }
}

/// One gathered row: `out = (raw − shift)·scale`, elementwise. Compiled for AVX-512, AVX2 and
/// plain x86-64, chosen at run time (every version gives the same bits).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+avx512bw", "x86_64+avx2+fma"))]
fn affine_row<T: Scalar, R: Copy + Into<f32>>(
    out: &mut [T],
    raw: &[R],
    shift: &[f32],
    scale: &[f32],
) {
    for (((o, &v), &s), &c) in out.iter_mut().zip(raw).zip(shift).zip(scale) {
        *o = T::c(((v.into() - s) * c) as f64);
    }
}

/// Whether a feature of variance `var` around `mean` over `n` rows is indistinguishable from a
/// constant: scikit-learn's `StandardScaler` test (`_is_constant_feature`, the error bound of the
/// two-pass variance), var ≤ n·ε·var + (n·|mean|·ε)² with ε of f64. Relative to the values, so
/// a column in units of 10⁻³⁰ is standardised; exactly 0 is constant.
fn is_constant(var: f64, mean: f64, n: f64) -> bool {
    let eps = f64::EPSILON;
    var.is_nan() || var <= 0.0 || var <= n * eps * var + (n * mean.abs() * eps).powi(2)
}

impl Normalizer {
    /// The first feature whose scale or shift does not fit float32 (a spread below
    /// 1/f32::MAX ≈ 2.9·10⁻³⁹, whose 1/σ overflows), with that scale.
    pub fn unfit(&self) -> Option<(usize, f32)> {
        self.scale
            .iter()
            .zip(&self.shift)
            .position(|(c, s)| !(c.is_finite() && s.is_finite()))
            .map(|j| (j, self.scale[j]))
    }

    /// The map that changes nothing.
    pub fn identity(d: usize) -> Normalizer {
        Normalizer {
            kind: Normalization::None,
            shift: vec![0.0; d],
            scale: vec![1.0; d],
        }
    }
}

/// Preallocated targets of one mini-batch.
#[derive(Clone, Debug)]
pub struct BatchBuf<T> {
    n: usize,
    classes: Vec<u32>,
    values: Vec<T>,
}

impl<T: Scalar> BatchBuf<T> {
    /// Room for `max_batch` examples' targets of `data`.
    pub fn new(data: &Dataset, max_batch: usize) -> Self {
        let (c, v) = match data.targets() {
            Targets::Classes { .. } => (max_batch, 0),
            Targets::Values { cols, .. } => (0, max_batch * cols),
        };
        BatchBuf {
            n: 0,
            classes: vec![0; c],
            values: vec![T::zero(); v],
        }
    }

    /// The targets of the last gathered batch.
    pub fn targets(&self) -> BatchTargets<'_, T> {
        if self.classes.is_empty() {
            BatchTargets::Values(&self.values)
        } else {
            BatchTargets::Classes(&self.classes[..self.n])
        }
    }
}

#[cfg(test)]
mod normalizer_tests {
    use super::*;

    #[test]
    fn standardising_a_column_far_from_zero_keeps_its_spread() {
        // 3·10⁸ + {0, 32, 96, 224, 64} (exact in f32, spacing 32 there). E[x²] − mean² gives
        // 1/σ = 0.012927192 (both terms ≈ 9·10¹⁶, f64 spacing 16); the deviations give 0.012931342.
        let base = 3e8f32;
        let offsets = [0.0, 32.0, 96.0, 224.0, 64.0];
        let x: Vec<f32> = offsets.iter().map(|&o| base + o as f32).collect();
        let d = Dataset::new(
            Features::F32(x),
            1,
            Targets::Classes {
                labels: vec![0, 1, 0, 1, 0],
                n_classes: 2,
            },
        )
        .unwrap();
        let n = d.fit_normalizer(Normalization::Standardize);
        let m = offsets.iter().sum::<f64>() / 5.0;
        let var = offsets.iter().map(|o| (o - m).powi(2)).sum::<f64>() / 5.0;
        assert_eq!(n.shift[0], (base as f64 + m) as f32);
        assert_eq!(n.scale[0], (1.0 / var.sqrt()) as f32);
        assert_eq!(n.scale[0], 0.012931342);
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    fn set(x: Vec<f32>, labels: Vec<u32>) -> Dataset {
        Dataset::classification(x, 2, labels, 3).unwrap()
    }

    /// The fingerprint changes with every part of what training sees (one feature's bits, one
    /// label, the normaliser, the shape), and not otherwise; the legacy FNV-1a of older
    /// checkpoints still matches its data and refuses other data.
    #[test]
    fn every_part_of_the_data_changes_the_fingerprint() {
        use crate::train::{Fingerprint, fnv1a};
        let x = vec![0.5, -1.0, 2.0, 0.0, 3.0, 1.5];
        let base = set(x.clone(), vec![0, 2, 1]);
        assert_eq!(
            base.fingerprint(),
            set(x.clone(), vec![0, 2, 1]).fingerprint()
        );
        let mut other_x = x.clone();
        other_x[4] = f32::from_bits(3.0f32.to_bits() + 1);
        let mut normalised = base.clone();
        normalised
            .set_normalizer(base.fit_normalizer(Normalization::Standardize))
            .unwrap();
        let others = [
            set(other_x, vec![0, 2, 1]),
            set(x.clone(), vec![0, 2, 2]),
            Dataset::classification(x.clone(), 3, vec![0, 1], 3).unwrap(),
            Dataset::classification(x.clone(), 2, vec![0, 2, 1], 4).unwrap(),
            Dataset::regression(x.clone(), 2, vec![0.0, 2.0, 1.0], 1).unwrap(),
            normalised,
        ];
        for (i, o) in others.iter().enumerate() {
            assert_ne!(o.fingerprint(), base.fingerprint(), "variant {i}");
        }
        let mut cache = None;
        assert!(Fingerprint::Xxh3(base.fingerprint()).matches(&base, &mut cache));
        assert_eq!(cache, Some(base.fingerprint()));
        let old = Fingerprint::Fnv1a(fnv1a(&base));
        assert!(old.matches(&base, &mut None));
        // (It saw only the values in order: not the shape, nor the number of classes.)
        assert!(others[..2].iter().all(|o| !old.matches(o, &mut None)));
    }
}
