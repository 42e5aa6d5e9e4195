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
//! ```
//! use downhill::layers::Dense;
//! use downhill::tensor::Threads;
//! let d = Dense { inputs: 2, outputs: 1 };
//! let (w, b) = ([3.0f64, -1.0], [0.5]);
//! let mut z = [0.0; 2];
//! d.forward(&[1.0, 2.0, 0.0, 1.0], 2, &w, &b, &mut z, Threads::ONE);
//! assert_eq!(z, [1.5, -0.5]); // 3·1 − 1·2 + 0.5, 3·0 − 1·1 + 0.5
//! ```

use crate::tensor::{Beta, MatView, Scalar, Threads, gemm};

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

    /// `Z = X·Wᵀ + b` for `n` rows of `x`.
    pub fn forward<T: Scalar>(
        &self,
        x: &[T],
        n: usize,
        w: &[T],
        b: &[T],
        z: &mut [T],
        threads: Threads,
    ) {
        let (i, o) = (self.inputs, self.outputs);
        let z = &mut z[..n * o];
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
