//! Batch-major matrices and the one matrix product everything else calls.
//!
//! A matrix is a row-major slice with a shape: row `i` is example `i` of a mini-batch, so a batch
//! of `n` inputs with `d` features is `n × d`. Weights follow PyTorch's `nn.Linear` layout
//! `[out, in]`. The product [`gemm`] reads transposed operands in place (a [`MatView`] with
//! [`MatView::t`] is only a flag), so backpropagation never copies a matrix to transpose it.
//!
//! ```
//! use downhill::tensor::{gemm, Beta, MatView, Threads};
//! // C = A·Bᵀ with A 2×3 and B 2×3 (as stored), so Bᵀ is 3×2 and C is 2×2.
//! let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let mut c = [0.0f64; 4];
//! gemm(&mut c, 2, 2, Beta::Replace, MatView::new(&a, 2, 3), MatView::new(&b, 2, 3).t(), Threads::ONE);
//! assert_eq!(c, [1.0, 2.0, 4.0, 5.0]);
//! ```

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// The element type of parameters and activations: `f32` for training, `f64` for gradient checks.
pub trait Scalar:
    num_traits::Float
    + faer::traits::ComplexField
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// Name of the type as safetensors spells it (`F32`, `F64`).
    const DTYPE: &'static str;
    /// Converts an `f64` constant (a hyperparameter, a formula's coefficient) to this type.
    fn c(x: f64) -> Self;
    /// This value as `f64`, for reporting.
    fn f64(self) -> f64;
    /// The error function erf(x) (for the exact GELU).
    fn erf(self) -> Self;
}

impl Scalar for f32 {
    const DTYPE: &'static str = "F32";
    #[inline]
    fn c(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
}

impl Scalar for f64 {
    const DTYPE: &'static str = "F64";
    #[inline]
    fn c(x: f64) -> Self {
        x
    }
    #[inline]
    fn f64(self) -> f64 {
        self
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// How many threads a matrix product may use. `Threads::ONE` is fully sequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Threads {
    pub const ONE: Threads = Threads(1);

    /// faer's parallelism: its rayon pool with the `threads` feature, sequential without it
    /// (e.g. in WebAssembly, where the core runs on one thread).
    #[cfg(feature = "threads")]
    fn par(self) -> faer::Par {
        match std::num::NonZeroUsize::new(self.0) {
            Some(n) if n.get() > 1 => faer::Par::Rayon(n),
            _ => faer::Par::Seq,
        }
    }

    #[cfg(not(feature = "threads"))]
    fn par(self) -> faer::Par {
        faer::Par::Seq
    }
}

/// A read-only view of a row-major `rows × cols` matrix, possibly transposed (without a copy).
#[derive(Clone, Copy, Debug)]
pub struct MatView<'a, T> {
    data: &'a [T],
    /// Shape of the stored (untransposed) matrix.
    stored_rows: usize,
    stored_cols: usize,
    transposed: bool,
}

impl<'a, T> MatView<'a, T> {
    /// Views the first `rows * cols` elements of `data` as a row-major matrix.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols` (a bug in the caller, never a user input).
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "MatView: slice of {} elements cannot hold {rows}×{cols}",
            data.len()
        );
        MatView {
            data: &data[..rows * cols],
            stored_rows: rows,
            stored_cols: cols,
            transposed: false,
        }
    }

    /// The transpose, as a flag: nothing is copied.
    pub fn t(self) -> Self {
        MatView {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows of the (possibly transposed) matrix.
    pub fn rows(&self) -> usize {
        if self.transposed {
            self.stored_cols
        } else {
            self.stored_rows
        }
    }

    /// Columns of the (possibly transposed) matrix.
    pub fn cols(&self) -> usize {
        if self.transposed {
            self.stored_rows
        } else {
            self.stored_cols
        }
    }
}

/// Whether a product overwrites its destination or adds to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beta {
    /// `C = A·B`
    Replace,
    /// `C = C + A·B`
    Add,
}

/// `C = A·B` or `C += A·B`, with `C` the first `m × n` elements of `c`, row-major.
///
/// This is the single entry point to the GEMM crate (faer): every product of the library goes
/// through it, so the crate can be changed in one place.
///
/// # Panics
/// On inconsistent shapes (a bug in the caller; shapes from users are checked before this).
pub fn gemm<T: Scalar>(
    c: &mut [T],
    m: usize,
    n: usize,
    beta: Beta,
    a: MatView<'_, T>,
    b: MatView<'_, T>,
    threads: Threads,
) {
    assert!(
        a.rows() == m && b.cols() == n && a.cols() == b.rows(),
        "gemm: cannot multiply {}×{} by {}×{} into {m}×{n}",
        a.rows(),
        a.cols(),
        b.rows(),
        b.cols()
    );
    let dst = faer::MatMut::from_row_major_slice_mut(&mut c[..m * n], m, n);
    let accum = match beta {
        Beta::Replace => faer::Accum::Replace,
        Beta::Add => faer::Accum::Add,
    };
    faer::linalg::matmul::matmul(dst, accum, to_faer(a), to_faer(b), T::c(1.0), threads.par());
    clear_upper_vector_state();
}

/// `dst = srcᵀ + 1·biasᵀ`: `src` is `rows × cols` row-major, `dst` is `cols × rows` row-major and
/// `dst[c][r] = src[r][c] + bias[r]`. In 16 × 16 tiles, so that both sides stay in cache lines.
pub fn transpose_add_columns<T: Scalar>(
    src: &[T],
    rows: usize,
    cols: usize,
    bias: &[T],
    dst: &mut [T],
) {
    assert!(
        src.len() >= rows * cols && dst.len() >= rows * cols && bias.len() >= rows,
        "transpose of {rows}×{cols} with {} source, {} destination, {} bias elements",
        src.len(),
        dst.len(),
        bias.len()
    );
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for c in c0..c1 {
                let out = &mut dst[c * rows + r0..c * rows + r1];
                for ((o, r), &b) in out.iter_mut().zip(r0..r1).zip(&bias[r0..r1]) {
                    *o = src[r * cols + c] + b;
                }
            }
        }
    }
}

/// faer's kernels use AVX-512/AVX2 registers and may return with their upper halves "dirty".
/// Code compiled for plain x86-64 (SSE) that runs next — every elementwise loop of a generic
/// build — then pays a state-transition penalty: measured on this Zen 5, the optimiser step and
/// the batch gather ran 4–7× slower right after a product. `vzeroupper` resets that state.
#[inline]
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked above), which is all `vzeroupper` requires.
        unsafe { std::arch::x86_64::_mm256_zeroupper() }
    }
}

fn to_faer<T>(v: MatView<'_, T>) -> faer::MatRef<'_, T> {
    let m = faer::MatRef::from_row_major_slice(v.data, v.stored_rows, v.stored_cols);
    if v.transposed { m.transpose() } else { m }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: the textbook triple loop, C_ij = Σ_k A_ik B_kj.
    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    #[test]
    fn all_transpose_combinations_match_the_triple_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.71).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let va = if ta {
                MatView::new(&at, k, m).t()
            } else {
                MatView::new(&a, m, k)
            };
            let vb = if tb {
                MatView::new(&bt, n, k).t()
            } else {
                MatView::new(&b, k, n)
            };
            let mut c = vec![1.0; m * n];
            gemm(&mut c, m, n, Beta::Replace, va, vb, Threads::ONE);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-12, "transposes {ta},{tb}: {x} vs {y}");
            }
            gemm(&mut c, m, n, Beta::Add, va, vb, Threads(2));
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-12, "accumulate {ta},{tb}");
            }
        }
    }
}
