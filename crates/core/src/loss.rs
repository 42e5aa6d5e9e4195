//! Loss functions L(w) = (1/n) Σᵢ ℓ(ŷᵢ, yᵢ) over a batch of n examples, each with its gradient
//! with respect to the network's output, and the L2 penalty λ Σ w².
//!
//! | loss            | per-example ℓ on the output row z (k outputs)                | ∂ℓ/∂z                  | PyTorch                 |
//! |-----------------|--------------------------------------------------------------|------------------------|-------------------------|
//! | `mse`           | ½ ‖z − y‖²  (so L = 1/(2n) Σ ‖ŷ − y‖², the notes' convention) | z − y                  | `MSELoss` × k/2         |
//! | `cross-entropy` | −log softmax(z)_y = log Σⱼ e^(zⱼ) − z_y                       | softmax(z) − onehot(y) | `CrossEntropyLoss`      |
//! | `bce`           | (1/k) Σⱼ −[yⱼ log σ(zⱼ) + (1 − yⱼ) log(1 − σ(zⱼ))]             | (σ(z) − y) / k         | `BCEWithLogitsLoss`     |
//!
//! Softmax and sigmoid are fused into their losses: the network's last layer outputs logits z, and
//! the loss is computed from them in the stable forms log Σ e^(zⱼ) = m + log Σ e^(zⱼ − m) with
//! m = maxⱼ zⱼ, and −log σ(z) = max(−z, 0) + log(1 + e^(−|z|)).
//!
//! Note on MSE: PyTorch's `MSELoss` is the mean over all n·k elements of (z − y)², which is
//! 2/k times the notes' L. The gradients differ by the same factor, so a learning rate carries
//! over from PyTorch after multiplying by k/2.
//!
//! ```
//! use downhill_core::loss::{Loss, BatchTargets};
//! // Two classes, equal logits: ℓ = log 2 whatever the label.
//! let z = [0.0f64, 0.0];
//! let l = Loss::CrossEntropy.evaluate(&z, 1, 2, BatchTargets::Classes(&[1]), None);
//! assert!((l - 2f64.ln()).abs() < 1e-15);
//! ```

use crate::tensor::Scalar;

/// A training loss on the network's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Mean squared error, ½‖z − y‖² per example.
    Mse,
    /// Softmax cross-entropy on logits, integer class targets.
    CrossEntropy,
    /// Binary cross-entropy on sigmoid logits, 0/1 targets (one or more outputs).
    Bce,
}

/// The targets of a batch: class indices, or a row-major n × k matrix of values.
#[derive(Clone, Copy, Debug)]
pub enum BatchTargets<'a, T> {
    Classes(&'a [u32]),
    Values(&'a [T]),
}

impl Loss {
    pub const ALL: [Loss; 3] = [Loss::Mse, Loss::CrossEntropy, Loss::Bce];

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
            Loss::Bce => "bce",
        }
    }

    pub fn from_name(s: &str) -> Option<Loss> {
        Loss::ALL.into_iter().find(|l| l.name() == s)
    }

    /// Whether this loss takes class indices (`cross-entropy`) rather than value targets.
    pub fn takes_classes(self) -> bool {
        self == Loss::CrossEntropy
    }

    /// Returns Σᵢ ℓᵢ over the `n` rows of `z` (`n × k`). If `grad` is given, writes
    /// `∂(Σᵢ ℓᵢ / denom)/∂z` into it: with `denom = n` that is the gradient of the batch mean L.
    ///
    /// # Panics
    /// If the targets do not fit the loss (class indices for `cross-entropy`, values otherwise)
    /// or a class index is ≥ k; data is validated against the network before training.
    pub fn evaluate<T: Scalar>(
        self,
        z: &[T],
        n: usize,
        k: usize,
        targets: BatchTargets<'_, T>,
        grad: Option<(&mut [T], T)>,
    ) -> T {
        let z = &z[..n * k];
        match (self, targets) {
            (Loss::CrossEntropy, BatchTargets::Classes(y)) => cross_entropy(z, k, &y[..n], grad),
            (Loss::Mse, BatchTargets::Values(y)) => mse(z, &y[..n * k], grad),
            (Loss::Bce, BatchTargets::Values(y)) => bce(z, k, &y[..n * k], grad),
            (loss, _) => panic!("{loss:?} given the wrong kind of targets"),
        }
    }

    /// How many of the `n` rows are classified correctly: argmax zᵢ = yᵢ for cross-entropy; for
    /// BCE, a row is correct when every output's σ(z) > ½ agrees with its 0/1 target. `None` for MSE.
    pub fn correct<T: Scalar>(
        self,
        z: &[T],
        n: usize,
        k: usize,
        targets: BatchTargets<'_, T>,
    ) -> Option<usize> {
        match (self, targets) {
            (Loss::CrossEntropy, BatchTargets::Classes(y)) => Some(
                z.chunks_exact(k)
                    .take(n)
                    .zip(y)
                    .filter(|(row, y)| argmax(row) == **y as usize)
                    .count(),
            ),
            (Loss::Bce, BatchTargets::Values(y)) => Some(
                z.chunks_exact(k)
                    .zip(y.chunks_exact(k))
                    .take(n)
                    .filter(|(row, t)| {
                        row.iter()
                            .zip(t.iter())
                            .all(|(&z, &t)| (z > T::zero()) == (t > T::c(0.5)))
                    })
                    .count(),
            ),
            _ => None,
        }
    }
}

/// Index of the largest entry (the first one on ties), the predicted class.
pub fn argmax<T: Scalar>(row: &[T]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// softmax(z)ⱼ = e^(zⱼ − m) / Σₖ e^(zₖ − m) with m = maxₖ zₖ (so no exponential overflows): the
/// class probabilities cross-entropy reads from a row of logits, written to `out`.
pub fn softmax_into<T: Scalar>(row: &[T], out: &mut [T]) {
    let m = row.iter().copied().fold(T::neg_infinity(), T::max);
    let mut s = T::zero();
    for (o, &v) in out.iter_mut().zip(row) {
        *o = (v - m).exp();
        s += *o;
    }
    for o in out.iter_mut() {
        *o /= s;
    }
}

/// σ(z) = 1 / (1 + e^(−z)): the probability binary cross-entropy reads from a logit.
pub fn sigmoid<T: Scalar>(z: T) -> T {
    T::one() / (T::one() + (-z).exp())
}

fn cross_entropy<T: Scalar>(z: &[T], k: usize, y: &[u32], mut grad: Option<(&mut [T], T)>) -> T {
    let mut total = T::zero();
    for (i, (row, &y)) in z.chunks_exact(k).zip(y).enumerate() {
        let y = y as usize;
        assert!(y < k, "class {y} but only {k} outputs");
        let m = row.iter().copied().fold(T::neg_infinity(), T::max);
        match grad.as_mut() {
            Some((g, denom)) => {
                // eʲ = e^(zⱼ − m) is computed once, kept in the gradient row, then scaled into
                // softmax(z)ⱼ/denom; the sum runs in the same order as without a gradient.
                let g = &mut g[i * k..(i + 1) * k];
                let mut s = T::zero();
                for (g, &v) in g.iter_mut().zip(row) {
                    *g = (v - m).exp();
                    s += *g;
                }
                total += (m - row[y]) + s.ln();
                let scale = T::one() / (s * *denom);
                for g in g.iter_mut() {
                    *g *= scale;
                }
                g[y] -= T::one() / *denom;
            }
            None => {
                let s: T = row.iter().map(|&v| (v - m).exp()).sum();
                // −log softmax(z)_y = (m − z_y) + ln Σ e^(zⱼ − m), the difference first: m + ln s
                // would round ln s away when the logits are large (at 10⁸ float32's spacing is 8).
                total += (m - row[y]) + s.ln();
            }
        }
    }
    total
}

fn mse<T: Scalar>(z: &[T], y: &[T], grad: Option<(&mut [T], T)>) -> T {
    let half = T::c(0.5);
    match grad {
        Some((g, denom)) => {
            let inv = T::one() / denom;
            let mut total = T::zero();
            for ((g, &z), &y) in g.iter_mut().zip(z).zip(y) {
                let r = z - y;
                total += half * r * r;
                *g = r * inv;
            }
            total
        }
        None => z
            .iter()
            .zip(y)
            .map(|(&z, &y)| half * (z - y) * (z - y))
            .sum(),
    }
}

fn bce<T: Scalar>(z: &[T], k: usize, y: &[T], mut grad: Option<(&mut [T], T)>) -> T {
    let one = T::one();
    let inv_k = one / T::c(k as f64);
    let mut total = T::zero();
    for (j, (&z, &y)) in z.iter().zip(y).enumerate() {
        // ℓ = y·softplus(−z) + (1 − y)·softplus(z), with softplus(x) = max(x, 0) + log(1 + e^(−|x|)).
        let log1p = (one + (-z.abs()).exp()).ln();
        total += y * ((-z).max(T::zero()) + log1p) + (one - y) * (z.max(T::zero()) + log1p);
        if let Some((g, denom)) = grad.as_mut() {
            let sigma = sigmoid(z);
            g[j] = (sigma - y) * inv_k / *denom;
        }
    }
    total * inv_k
}

/// Class weights of a classification loss (`--class-weight balanced`): each example's ℓᵢ is
/// multiplied by the weight of its class, and the batch loss stays a mean over examples,
///
/// ```text
/// L = (1/n) Σᵢ w_{yᵢ} ℓᵢ          (cross-entropy: w per class)
/// L = (1/n) Σᵢ (1/k) Σⱼ w_{j,yᵢⱼ} ℓᵢⱼ   (BCE: per output j, one weight for 0 targets, one for 1)
/// ```
///
/// — scikit-learn's `class_weight` / `sample_weight` convention, and PyTorch's
/// `CrossEntropyLoss(weight=w, reduction='sum') / n` (not its `reduction='mean'`, which divides
/// by Σ w_{yᵢ} instead of n). "Balanced" weights are scikit-learn's `n / (n_classes · count_c)`,
/// counted on the training set, so that every class carries the same total weight.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ClassWeights {
    /// Cross-entropy: the weight of each class.
    Classes { weights: Vec<f64> },
    /// BCE: per output column, the weight of a 0 target and of a 1 target.
    Binary {
        negative: Vec<f64>,
        positive: Vec<f64>,
    },
}

impl ClassWeights {
    /// scikit-learn's `compute_class_weight("balanced")`: n / (k · count_c). Fails naming the
    /// class that has no examples (its weight would be infinite).
    pub fn balanced_classes(labels: &[u32], k: usize) -> std::result::Result<ClassWeights, String> {
        let mut count = vec![0usize; k];
        for &y in labels {
            if let Some(c) = count.get_mut(y as usize) {
                *c += 1;
            }
        }
        if let Some(c) = count.iter().position(|&c| c == 0) {
            return Err(format!(
                "class {c} has no training examples, so it has no balanced weight"
            ));
        }
        let n = labels.len() as f64;
        Ok(ClassWeights::Classes {
            weights: count.iter().map(|&c| n / (k as f64 * c as f64)).collect(),
        })
    }

    /// Balanced weights for 0/1 targets in `cols` columns: per column n / (2 · count of 0s) and
    /// n / (2 · count of 1s) (targets > ½ count as 1).
    pub fn balanced_binary(
        values: &[f32],
        cols: usize,
    ) -> std::result::Result<ClassWeights, String> {
        let n = values.len() / cols.max(1);
        let mut pos = vec![0usize; cols];
        for row in values.chunks_exact(cols) {
            for (p, &v) in pos.iter_mut().zip(row) {
                *p += usize::from(v > 0.5);
            }
        }
        if let Some(j) = pos.iter().position(|&p| p == 0 || p == n) {
            return Err(format!(
                "target column {j} has only one value (0 or 1) in training, so it has no balanced weight"
            ));
        }
        let w = |c: usize| n as f64 / (2.0 * c as f64);
        Ok(ClassWeights::Binary {
            negative: pos.iter().map(|&p| w(n - p)).collect(),
            positive: pos.iter().map(|&p| w(p)).collect(),
        })
    }
}

/// [`Loss::evaluate`] with optional [`ClassWeights`]: returns Σᵢ w ℓᵢ and writes
/// ∂(Σᵢ w ℓᵢ / denom)/∂z. Without weights it is `loss.evaluate`.
///
/// # Panics
/// As [`Loss::evaluate`], and if the weights do not fit the loss (class weights for
/// cross-entropy, binary weights for BCE, as many as the outputs).
pub fn evaluate_weighted<T: Scalar>(
    loss: Loss,
    weights: Option<&ClassWeights>,
    z: &[T],
    n: usize,
    k: usize,
    targets: BatchTargets<'_, T>,
    mut grad: Option<(&mut [T], T)>,
) -> T {
    let Some(weights) = weights else {
        return loss.evaluate(z, n, k, targets, grad);
    };
    match (loss, targets, weights) {
        (Loss::CrossEntropy, BatchTargets::Classes(y), ClassWeights::Classes { weights }) => {
            let mut total = T::zero();
            for i in 0..n {
                let w = T::c(weights[y[i] as usize]);
                let row = &z[i * k..(i + 1) * k];
                let l = match grad.as_mut() {
                    Some((g, denom)) => {
                        let g = &mut g[i * k..(i + 1) * k];
                        let l = cross_entropy(row, k, &y[i..i + 1], Some((&mut *g, *denom)));
                        g.iter_mut().for_each(|v| *v *= w);
                        l
                    }
                    None => cross_entropy(row, k, &y[i..i + 1], None),
                };
                total += w * l;
            }
            total
        }
        (Loss::Bce, BatchTargets::Values(y), ClassWeights::Binary { negative, positive }) => {
            let one = T::one();
            let inv_k = one / T::c(k as f64);
            let mut total = T::zero();
            for (j, (&z, &y)) in z[..n * k].iter().zip(&y[..n * k]).enumerate() {
                let col = j % k;
                let w = y * T::c(positive[col]) + (one - y) * T::c(negative[col]);
                let log1p = (one + (-z.abs()).exp()).ln();
                total += w
                    * (y * ((-z).max(T::zero()) + log1p) + (one - y) * (z.max(T::zero()) + log1p));
                if let Some((g, denom)) = grad.as_mut() {
                    let sigma = sigmoid(z);
                    g[j] = w * (sigma - y) * inv_k / *denom;
                }
            }
            total * inv_k
        }
        (loss, _, w) => panic!("{loss:?} given class weights {w:?} that do not fit it"),
    }
}

/// The notes' L2 penalty of a network, P(w) = λ Σ w² over its weight tensors (biases are not
/// penalised), with its value and its gradient ∂P/∂w = 2λw in one place: every caller that adds
/// the penalty (the training step, the data-parallel update, the full-gradient norm, the
/// learning-rate finder, gradcheck) goes through this type.
#[derive(Clone, Debug)]
pub struct Penalty<T> {
    lambda: T,
    /// λ ≠ 0 as given (in f64; training refuses λ < 0): the gradient is added only then.
    active: bool,
    /// The parameter ranges of the weight tensors.
    weights: Vec<std::ops::Range<usize>>,
    /// The L1 term's μ in μ Σ |w| (weights only), if any: see [`Penalty::with_l1`].
    l1: Option<T>,
}

impl<T: Scalar> Penalty<T> {
    /// λ Σ w² over the parameters at `weights` (see `Network::penalty`).
    pub fn new(lambda: f64, weights: Vec<std::ops::Range<usize>>) -> Self {
        Penalty {
            lambda: T::c(lambda),
            active: lambda != 0.0,
            weights,
            l1: None,
        }
    }

    /// The same penalty plus an L1 term μ Σ |w| over the same weight tensors (the lasso penalty,
    /// which drives small weights to exactly zero), whose gradient is μ·sign(w) (0 at w = 0, the
    /// subgradient PyTorch's `abs` gives). `mu` = 0 adds nothing.
    pub fn with_l1(mut self, mu: f64) -> Self {
        self.l1 = (mu != 0.0).then(|| T::c(mu));
        self
    }

    /// Whether the penalty adds anything (λ ≠ 0 or an L1 term).
    pub fn is_active(&self) -> bool {
        self.active || self.l1.is_some()
    }

    /// P(w) = λ Σ w² (+ μ Σ |w| with an L1 term) over the weight tensors of `params` (0 when
    /// λ is 0 and there is no L1 term).
    pub fn value(&self, params: &[T]) -> f64 {
        let l1 = self.l1.map_or(0.0, |mu| {
            self.weights
                .iter()
                .map(|r| l1_penalty(&params[r.clone()], mu).f64())
                .sum()
        });
        if self.lambda == T::zero() {
            return l1;
        }
        l1 + self
            .weights
            .iter()
            .map(|r| l2_penalty(&params[r.clone()], self.lambda).f64())
            .sum::<f64>()
    }

    /// `grads += 2λw` (+ μ·sign(w)) on every weight tensor (nothing when inactive).
    pub fn add_gradient(&self, params: &[T], grads: &mut [T]) {
        for r in &self.weights {
            self.add_to(&params[r.clone()], &mut grads[r.clone()]);
        }
    }

    /// Both terms' gradients on one weight tensor (or part of one).
    fn add_to(&self, weights: &[T], grad: &mut [T]) {
        if self.active {
            add_l2_gradient(weights, grad, self.lambda);
        }
        if let Some(mu) = self.l1 {
            add_l1_gradient(weights, grad, mu);
        }
    }

    /// `grad += 2λw` (+ μ·sign(w)) for one tensor, as backpropagation hands it over
    /// (`is_weight` false for a bias, which is not penalised).
    pub fn add_tensor_gradient(&self, params: &[T], grad: &mut [T], is_weight: bool) {
        if is_weight {
            self.add_to(params, grad);
        }
    }

    /// `grad += 2λw` for the block `block` of the parameters (`params` and `grad` hold that block
    /// only), on the parts of it that belong to weight tensors.
    pub fn add_block_gradient(&self, params: &[T], grad: &mut [T], block: std::ops::Range<usize>) {
        if !self.is_active() {
            return;
        }
        for w in &self.weights {
            let (start, end) = (w.start.max(block.start), w.end.min(block.end));
            if start < end {
                let here = start - block.start..end - block.start;
                self.add_to(&params[here.clone()], &mut grad[here]);
            }
        }
    }
}

/// The notes' L2 penalty λ Σ w² over the given weights (biases are not passed in).
pub fn l2_penalty<T: Scalar>(weights: &[T], lambda: T) -> T {
    lambda * weights.iter().map(|&w| w * w).sum::<T>()
}

/// The L1 penalty μ Σ |w| over the given weights.
pub fn l1_penalty<T: Scalar>(weights: &[T], mu: T) -> T {
    mu * weights.iter().map(|&w| w.abs()).sum::<T>()
}

/// Adds the L1 penalty's gradient, ∂(μ Σ |w|)/∂w = μ·sign(w) (0 at w = 0), to `grad`.
pub fn add_l1_gradient<T: Scalar>(weights: &[T], grad: &mut [T], mu: T) {
    for (g, &w) in grad.iter_mut().zip(weights) {
        if w > T::zero() {
            *g += mu;
        } else if w < T::zero() {
            *g -= mu;
        }
    }
}

/// Adds the penalty's gradient, ∂(λ Σ w²)/∂w = 2λw, to `grad`.
pub fn add_l2_gradient<T: Scalar>(weights: &[T], grad: &mut [T], lambda: T) {
    let two_lambda = T::c(2.0) * lambda;
    for (g, &w) in grad.iter_mut().zip(weights) {
        *g += two_lambda * w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each loss's gradient against central differences of its value (f64, h = 1e-6).
    #[test]
    fn gradients_match_central_differences() {
        let z = [0.3f64, -1.2, 2.0, 0.7, 0.1, -0.4];
        let (n, k) = (2, 3);
        let classes = [2u32, 0];
        let values = [0.5f64, -1.0, 1.5, 0.0, 2.0, 1.0];
        let bits = [1.0f64, 0.0, 1.0, 0.0, 0.0, 1.0];
        for loss in Loss::ALL {
            let t = match loss {
                Loss::CrossEntropy => BatchTargets::Classes(&classes),
                Loss::Mse => BatchTargets::Values(&values),
                Loss::Bce => BatchTargets::Values(&bits),
            };
            let mut g = [0.0; 6];
            loss.evaluate(&z, n, k, t, Some((&mut g, n as f64)));
            for j in 0..6 {
                let (mut hi, mut lo) = (z, z);
                hi[j] += 1e-6;
                lo[j] -= 1e-6;
                let num = (loss.evaluate(&hi, n, k, t, None) - loss.evaluate(&lo, n, k, t, None))
                    / 2e-6
                    / n as f64;
                assert!(
                    (num - g[j]).abs() < 1e-8,
                    "{loss:?} z[{j}]: {num} vs {}",
                    g[j]
                );
            }
        }
    }

    /// Hand-computed values: CE of logits (0, ln 3) for class 1 is −log(3/4); BCE of z = 0 is log 2;
    /// MSE of residuals (1, 2) is ½·5.
    #[test]
    fn known_values() {
        let ce = Loss::CrossEntropy.evaluate(
            &[0.0f64, 3f64.ln()],
            1,
            2,
            BatchTargets::Classes(&[1]),
            None,
        );
        assert!((ce + (0.75f64).ln()).abs() < 1e-15);
        let bce = Loss::Bce.evaluate(&[0.0f64], 1, 1, BatchTargets::Values(&[1.0]), None);
        assert!((bce - 2f64.ln()).abs() < 1e-15);
        let mse = Loss::Mse.evaluate(
            &[1.0f64, 2.0],
            1,
            2,
            BatchTargets::Values(&[0.0, 0.0]),
            None,
        );
        assert_eq!(mse, 2.5);
    }

    /// Huge logits must not overflow: the stable forms give finite losses.
    #[test]
    fn stable_for_extreme_logits() {
        let ce = Loss::CrossEntropy.evaluate(
            &[1000.0f32, -1000.0],
            1,
            2,
            BatchTargets::Classes(&[1]),
            None,
        );
        assert!((ce - 2000.0).abs() < 1e-3, "{ce}");
        let bce = Loss::Bce.evaluate(&[-1000.0f32], 1, 1, BatchTargets::Values(&[1.0]), None);
        assert!((bce - 1000.0).abs() < 1e-3, "{bce}");
    }

    #[test]
    fn l2_penalty_and_gradient() {
        let w = [1.0f64, -2.0];
        assert_eq!(l2_penalty(&w, 0.5), 2.5);
        let mut g = [0.0, 1.0];
        add_l2_gradient(&w, &mut g, 0.5);
        assert_eq!(g, [1.0, -1.0]);
    }

    /// The penalty type over weight ranges: value λ Σ w² on the weights only, gradient 2λw there
    /// and nothing on the biases, the block-wise gradient (data-parallel update) equal to the
    /// whole one for every block split, and nothing at all with λ = 0.
    #[test]
    fn penalty_value_and_gradient_on_weights_only() {
        // params: weights 0..3, bias 3..4, weights 4..6, bias 6..7.
        let params = [1.0f64, -2.0, 3.0, 100.0, 0.5, -0.25, 7.0];
        let p = Penalty::<f64>::new(0.1, vec![0..3, 4..6]);
        let want = 0.1 * (1.0 + 4.0 + 9.0 + 0.25 + 0.0625);
        assert!((p.value(&params) - want).abs() < 1e-15);
        let mut g = [1.0f64; 7];
        p.add_gradient(&params, &mut g);
        let expect: Vec<f64> = params
            .iter()
            .enumerate()
            .map(|(i, &w)| if i == 3 || i == 6 { 1.0 } else { 1.0 + 0.2 * w })
            .collect();
        assert_eq!(g.to_vec(), expect);
        for block in 1..=7 {
            let mut gb = [1.0f64; 7];
            let mut start = 0;
            while start < 7 {
                let b = start..(start + block).min(7);
                p.add_block_gradient(&params[b.clone()], &mut gb[b.clone()], b.clone());
                start = b.end;
            }
            assert_eq!(gb, g, "blocks of {block}");
        }
        let zero = Penalty::<f64>::new(0.0, vec![0..3, 4..6]);
        assert_eq!(zero.value(&params), 0.0);
        let mut gz = [1.0f64; 7];
        zero.add_gradient(&params, &mut gz);
        zero.add_tensor_gradient(&params, &mut gz, true);
        assert_eq!(gz, [1.0; 7]);
        assert!(!zero.is_active());
    }

    /// The L1 term's value and gradient: the gradient against central differences of the value
    /// (away from w = 0, where |w| has no derivative), block-wise equal to whole, and L1 + L2
    /// adding up.
    #[test]
    fn l1_penalty_gradient_matches_central_differences() {
        let params = [0.7f64, -1.3, 0.25, 0.9, -0.4, 2.0, -0.05];
        let ranges = vec![0..3, 4..6];
        let p = Penalty::<f64>::new(0.03, ranges.clone()).with_l1(0.2);
        assert!(p.is_active());
        let want =
            0.2 * (0.7 + 1.3 + 0.25 + 0.4 + 2.0) + 0.03 * (0.49 + 1.69 + 0.0625 + 0.16 + 4.0);
        assert!(
            (p.value(&params) - want).abs() < 1e-12,
            "{}",
            p.value(&params)
        );
        let mut g = [0.0f64; 7];
        p.add_gradient(&params, &mut g);
        for j in 0..7 {
            let (mut hi, mut lo) = (params, params);
            hi[j] += 1e-6;
            lo[j] -= 1e-6;
            let num = (p.value(&hi) - p.value(&lo)) / 2e-6;
            assert!((num - g[j]).abs() < 1e-6, "param {j}: {num} vs {}", g[j]);
        }
        let mut gb = [0.0f64; 7];
        for b in [0..2, 2..5, 5..7] {
            p.add_block_gradient(&params[b.clone()], &mut gb[b.clone()], b.clone());
        }
        assert_eq!(gb, g);
        let only_l1 = Penalty::<f64>::new(0.0, ranges).with_l1(0.5);
        assert!(only_l1.is_active());
        let mut g1 = [0.0f64; 7];
        only_l1.add_tensor_gradient(&params[0..3], &mut g1[0..3], true);
        only_l1.add_tensor_gradient(&params[3..4], &mut g1[3..4], false);
        assert_eq!(g1, [0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]);
        let mut at_zero = [1.0f64];
        add_l1_gradient(&[0.0f64], &mut at_zero, 0.5);
        assert_eq!(at_zero, [1.0]);
    }

    #[test]
    fn accuracy_counts() {
        let z = [0.1f64, 0.9, 0.8, 0.2];
        assert_eq!(
            Loss::CrossEntropy.correct(&z, 2, 2, BatchTargets::Classes(&[1, 1])),
            Some(1)
        );
        assert_eq!(
            Loss::Bce.correct(&[1.0f64, -1.0], 2, 1, BatchTargets::Values(&[1.0, 1.0])),
            Some(1)
        );
        assert_eq!(Loss::Mse.correct(&z, 2, 2, BatchTargets::Values(&z)), None);
    }
}
