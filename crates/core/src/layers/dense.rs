//! The dense (fully connected) layer, a whole mini-batch at a time.
//!
//! Forward, for a batch X (n × in), weights W (out × in, PyTorch's `nn.Linear` layout) and bias b:
//!
//! ```text
//! Z = X·Wᵀ + 1·bᵀ                                  (n × out)
//! ```
//!
//! Backward, given δZ = ∂L/∂Z (n × out), by the chain rule:
//!
//! ```text
//! ∂L/∂W = δZᵀ·X          (out × in)
//! ∂L/∂b = 1ᵀ·δZ          (column sums, out)
//! ∂L/∂X = δZ·W           (n × in; skipped for the first layer, whose input is data)
//! ```
//!
//! All three are matrix products over the batch; the transposes are read in place.
//!
//! The forward product may also run as Zᵀ = W·Xᵀ into a scratch buffer, transposed into Z while
//! the bias is added (see [`Dense::transposed_forward`]): the same numbers, a faster kernel when
//! the batch size is a multiple of 16 and the layer width is not.
//!
//! ```
//! use downhill_core::layers::Dense;
//! use downhill_core::tensor::Threads;
//! let d = Dense { inputs: 2, outputs: 1 };
//! let (w, b) = ([3.0f64, -1.0], [0.5]);
//! let mut z = [0.0; 2];
//! d.forward(&[1.0, 2.0, 0.0, 1.0], 2, &w, &b, &mut z, &mut [], Threads::ONE);
//! assert_eq!(z, [1.5, -0.5]); // 3·1 − 1·2 + 0.5, 3·0 − 1·1 + 0.5
//! ```

use crate::tensor::{Beta, MatView, Scalar, Threads, gemm, transpose_add_columns};

/// Shape of a dense layer; its parameters live in the network's flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    /// Number of weights, `out × in`.
    pub fn weight_len(&self) -> usize {
        self.inputs * self.outputs
    }

    /// Whether [`Dense::forward`] of `n` rows computes Zᵀ = W·Xᵀ and transposes it. The GEMM
    /// kernels fill a column-major result 16 rows at a time (row-major Z, n × out, is a
    /// column-major out × n), so a layer width that is not a multiple of 16 wastes part of every
    /// kernel call where a batch of 64 or 256 wastes none; and with both multiples of 16 the
    /// kernels do better with the smaller one there. Measured one-thread through `tensor::gemm`
    /// (Z vs Zᵀ): 64×784·784×100 60 vs 45 µs, the 64×100·100×10 output layer 1.7 vs 0.9 µs,
    /// 64×784·784×256 126 vs 113 µs, 256×784·784×256 463 vs 479 µs (kept as Z).
    pub fn transposed_forward(&self, n: usize) -> bool {
        n.is_multiple_of(16) && (!self.outputs.is_multiple_of(16) || n < self.outputs)
    }

    /// Length of the scratch buffer [`Dense::forward`] needs for `n` rows (0 if it needs none).
    pub fn scratch_len(&self, n: usize) -> usize {
        if self.transposed_forward(n) {
            n * self.outputs
        } else {
            0
        }
    }

    /// `Z = X·Wᵀ + b` for `n` rows of `x`; `scratch` holds at least [`Dense::scratch_len`]`(n)`
    /// elements.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Scalar>(
        &self,
        x: &[T],
        n: usize,
        w: &[T],
        b: &[T],
        z: &mut [T],
        scratch: &mut [T],
        threads: Threads,
    ) {
        let (i, o) = (self.inputs, self.outputs);
        let z = &mut z[..n * o];
        if self.transposed_forward(n) {
            let zt = &mut scratch[..o * n];
            let x = MatView::new(x, n, i);
            gemm(
                zt,
                o,
                n,
                Beta::Replace,
                MatView::new(w, o, i),
                x.t(),
                threads,
            );
            transpose_add_columns(zt, o, n, b, z);
            return;
        }
        // Start from the broadcast bias and let the product add X·Wᵀ onto it.
        for row in z.chunks_exact_mut(o) {
            row.copy_from_slice(b);
        }
        gemm(
            z,
            n,
            o,
            Beta::Add,
            MatView::new(x, n, i),
            MatView::new(w, o, i).t(),
            threads,
        );
    }

    /// Writes (or, with `Beta::Add`, accumulates) ∂L/∂W and ∂L/∂b, and writes ∂L/∂X if asked.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Scalar>(
        &self,
        x: &[T],
        n: usize,
        w: &[T],
        delta_z: &[T],
        dw: &mut [T],
        db: &mut [T],
        delta_x: Option<&mut [T]>,
        beta: Beta,
        threads: Threads,
    ) {
        let (i, o) = (self.inputs, self.outputs);
        let dz = MatView::new(delta_z, n, o);
        gemm(dw, o, i, beta, dz.t(), MatView::new(x, n, i), threads);
        if beta == Beta::Replace {
            db.fill(T::zero());
        }
        column_sums(&delta_z[..n * o], db);
        if let Some(dx) = delta_x {
            gemm(dx, n, i, Beta::Replace, dz, MatView::new(w, o, i), threads);
        }
    }
}

/// `db += 1ᵀ·δZ`: adds each row of `dz` to `db`. Row by row, so the sums run in example order
/// whatever the vector width (every dispatched version gives the same bits).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn column_sums<T: Scalar>(dz: &[T], db: &mut [T]) {
    for row in dz.chunks_exact(db.len()) {
        for (g, &d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both routes of the forward pass against the textbook sum zᵢⱼ = Σₖ xᵢₖ wⱼₖ + bⱼ.
    #[test]
    fn forward_either_way_is_the_textbook_sum() {
        for (n, i, o) in [
            (16, 7, 10),
            (32, 5, 48),
            (48, 3, 17),
            (5, 4, 3),
            (17, 6, 16),
        ] {
            let d = Dense {
                inputs: i,
                outputs: o,
            };
            let x: Vec<f64> = (0..n * i).map(|v| (v as f64 * 0.37).sin()).collect();
            let w: Vec<f64> = (0..o * i).map(|v| (v as f64 * 0.71).cos()).collect();
            let b: Vec<f64> = (0..o).map(|v| v as f64 * 0.1 - 0.3).collect();
            let mut z = vec![0.0; n * o];
            let mut scratch = vec![f64::NAN; d.scratch_len(n)];
            d.forward(&x, n, &w, &b, &mut z, &mut scratch, Threads::ONE);
            for r in 0..n {
                for c in 0..o {
                    let want: f64 = (0..i).map(|k| x[r * i + k] * w[c * i + k]).sum::<f64>() + b[c];
                    assert!(
                        (z[r * o + c] - want).abs() < 1e-12,
                        "{n}×{i}→{o} (transposed: {}) at ({r}, {c})",
                        d.transposed_forward(n)
                    );
                }
            }
        }
        let d = Dense {
            inputs: 1,
            outputs: 10,
        };
        assert!(d.transposed_forward(64) && !d.transposed_forward(63));
        assert_eq!((d.scratch_len(64), d.scratch_len(63)), (640, 0));
    }
}
