//! Batch-major matrices and the one matrix product everything else calls.
//!
//! A matrix is a row-major slice with a shape: row `i` is example `i` of a mini-batch, so a batch
//! of `n` inputs with `d` features is `n × d`. Weights follow PyTorch's `nn.Linear` layout
//! `[out, in]`. The product [`gemm`] reads transposed operands in place (a [`MatView`] with
//! [`MatView::t`] is only a flag), so backpropagation never copies a matrix to transpose it.
//!
//! ```
//! use downhill_core::tensor::{gemm, Beta, MatView, Threads};
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
    #[cfg(target_arch = "x86_64")]
    let tiles = f32_tiles::Kernel::detect::<T>();
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            #[cfg(target_arch = "x86_64")]
            if let Some(kernel) = tiles
                && r1 - r0 == TILE
                && c1 - c0 == TILE
            {
                kernel.tile(src, rows, cols, bias, dst, r0, c0);
                continue;
            }
            for c in c0..c1 {
                let out = &mut dst[c * rows + r0..c * rows + r1];
                for ((o, r), &b) in out.iter_mut().zip(r0..r1).zip(&bias[r0..r1]) {
                    *o = src[r * cols + c] + b;
                }
            }
        }
    }
}

/// The full 16 × 16 tiles of [`transpose_add_columns`] in `f32` with AVX-512: sixteen rows
/// loaded as vectors, transposed in registers (pairs interleaved, then pairs of pairs, then
/// 128- and 256-bit lanes exchanged), the bias added to each transposed row. The same sums as
/// the scalar loop, so the same bits (measured on the Intel Xeon VM: the scalar loop was 2 % of
/// a 784-100-10 epoch at batch 64, a strided read per element).
#[cfg(target_arch = "x86_64")]
mod f32_tiles {
    use super::Scalar;
    use std::any::TypeId;
    use std::arch::x86_64::*;

    /// Proof that `T` is `f32` and the CPU has AVX-512F.
    #[derive(Clone, Copy)]
    pub(super) struct Kernel(());

    impl Kernel {
        pub(super) fn detect<T: Scalar>() -> Option<Kernel> {
            (TypeId::of::<T>() == TypeId::of::<f32>()
                && std::arch::is_x86_feature_detected!("avx512f"))
            .then_some(Kernel(()))
        }

        /// `dst[c][r] = src[r][c] + bias[r]` for r in r0..r0+16, c in c0..c0+16.
        #[allow(clippy::too_many_arguments)]
        pub(super) fn tile<T: Scalar>(
            self,
            src: &[T],
            rows: usize,
            cols: usize,
            bias: &[T],
            dst: &mut [T],
            r0: usize,
            c0: usize,
        ) {
            assert!((r0 + 16) * cols <= src.len() && c0 + 16 <= cols);
            assert!((c0 + 15) * rows + r0 + 16 <= dst.len() && r0 + 16 <= bias.len());
            // SAFETY: `T` is `f32` (checked by `detect`, so the casts keep size and alignment),
            // AVX-512F is present, and every row read or written is inside its slice (asserted
            // above: src rows r0..r0+16 at columns c0..c0+16, dst rows c0..c0+16 at columns
            // r0..r0+16, bias r0..r0+16).
            unsafe {
                tile(
                    src.as_ptr().cast::<f32>(),
                    rows,
                    cols,
                    bias.as_ptr().cast::<f32>(),
                    dst.as_mut_ptr().cast::<f32>(),
                    r0,
                    c0,
                )
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn tile(
        src: *const f32,
        rows: usize,
        cols: usize,
        bias: *const f32,
        dst: *mut f32,
        r0: usize,
        c0: usize,
    ) {
        // SAFETY (whole body): the caller checked the bounds of every row read and written.
        unsafe {
            let mut a = [_mm512_setzero_ps(); 16];
            for (i, v) in a.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(src.add((r0 + i) * cols + c0));
            }
            // Interleave rows 2k and 2k+1 element by element.
            let mut t = [_mm512_setzero_ps(); 16];
            for k in 0..8 {
                t[2 * k] = _mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]);
                t[2 * k + 1] = _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]);
            }
            // Interleave pairs of elements of neighbouring interleaved pairs.
            for q in 0..4 {
                let (x0, x1, x2, x3) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
                let pd = |x: __m512| _mm512_castps_pd(x);
                a[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(x0), pd(x2)));
                a[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(x0), pd(x2)));
                a[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(x1), pd(x3)));
                a[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(x1), pd(x3)));
            }
            // Exchange 128-bit lanes between groups of four rows, then between groups of eight.
            for h in 0..2 {
                for j in 0..4 {
                    let (x, y) = (a[8 * h + j], a[8 * h + 4 + j]);
                    t[8 * h + j] = _mm512_shuffle_f32x4::<0x88>(x, y);
                    t[8 * h + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(x, y);
                }
            }
            for j in 0..8 {
                a[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[8 + j]);
                a[8 + j] = _mm512_shuffle_f32x4::<0xdd>(t[j], t[8 + j]);
            }
            let b = _mm512_loadu_ps(bias.add(r0));
            for (c, v) in a.iter().enumerate() {
                _mm512_storeu_ps(dst.add((c0 + c) * rows + r0), _mm512_add_ps(*v, b));
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

    /// The tiled transpose (AVX-512 tiles where the CPU has them) against its definition,
    /// element by element and bit for bit, on shapes with and without partial tiles.
    #[test]
    fn transpose_add_columns_is_its_definition() {
        fn check<T: Scalar>(rows: usize, cols: usize) {
            let src: Vec<T> = (0..rows * cols)
                .map(|i| T::c((i as f64 * 0.731).sin() * 1e3))
                .collect();
            let bias: Vec<T> = (0..rows).map(|r| T::c(r as f64 * 0.25 - 3.0)).collect();
            let mut dst = vec![T::c(f64::NAN); rows * cols];
            transpose_add_columns(&src, rows, cols, &bias, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    let want = src[r * cols + c] + bias[r];
                    assert_eq!(
                        dst[c * rows + r].f64().to_bits(),
                        want.f64().to_bits(),
                        "{rows}×{cols} at row {r}, column {c}"
                    );
                }
            }
        }
        for (rows, cols) in [
            (16, 16),
            (100, 64),
            (10, 64),
            (32, 48),
            (17, 33),
            (64, 256),
            (1, 1),
        ] {
            check::<f32>(rows, cols);
            check::<f64>(rows, cols);
        }
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
