//! The convolution's index arithmetic, in one place: which output rows and columns each kernel
//! tap reads inside the image ([`Tap`], [`each_tap`]), and the strided loops over them.

use std::ops::Range;

use super::Conv2d;
use crate::layers::image::{ImageShape, valid_range};
use crate::tensor::Scalar;

/// Kernel tap (p, q) of a convolution from images of shape `input` to `out`: the output rows
/// `rows` and columns `cols` whose input pixel (oh·sh + p − ph, ow·sw + q − pw) lies inside the
/// image (the others read padding), and `iw0`, the input column of output column `cols.start`.
/// The one place the convolution's index arithmetic lives: im2col, col2im and the direct loops
/// all walk these ([`each_tap`]).
#[derive(Clone, Debug)]
pub(super) struct Tap {
    pub(super) p: usize,
    pub(super) q: usize,
    pub(super) rows: Range<usize>,
    pub(super) cols: Range<usize>,
    pub(super) iw0: usize,
    /// The vertical stride and padding, for [`Tap::input_row`].
    pub(super) sh: usize,
    pub(super) ph: usize,
}

impl Tap {
    /// The input row that output row `oh` (in `rows`) reads through this tap.
    #[inline(always)]
    pub(super) fn input_row(&self, oh: usize) -> usize {
        oh * self.sh + self.p - self.ph
    }
}

/// Calls `f` with each of the kh·kw taps of one input channel, in the order of the patch
/// matrix's rows (p, then q). Plain loops and a closure rather than an iterator: the calls
/// inline into the kernels (measured: an iterator of taps cost im2col about 12 % more
/// instructions at LeNet-5's shapes).
#[inline(always)]
pub(super) fn each_tap(conv: &Conv2d, input: ImageShape, out: ImageShape, mut f: impl FnMut(&Tap)) {
    let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
    for p in 0..kh {
        let (oh_lo, oh_hi) = valid_range(out.height, input.height, sh, p, ph);
        for q in 0..kw {
            let (lo, hi) = valid_range(out.width, input.width, sw, q, pw);
            f(&Tap {
                p,
                q,
                rows: oh_lo..oh_hi,
                cols: lo..hi,
                // Exact whenever `cols` is not empty (then lo·sw + q ≥ pw).
                iw0: (lo * sw + q).saturating_sub(pw),
                sh,
                ph,
            });
        }
    }
}

/// Calls `f(p, q, oh, ih, (lo, hi), iw0)` for every kernel tap (p, q) and output row `oh` whose
/// input row `ih` is inside the image, with the output columns `lo..hi` whose input columns are
/// inside it, the first of which is `iw0`.
#[inline]
pub(super) fn taps(
    conv: &Conv2d,
    input: ImageShape,
    out: ImageShape,
    mut f: impl FnMut(usize, usize, usize, usize, (usize, usize), usize),
) {
    each_tap(conv, input, out, |t| {
        if t.cols.is_empty() {
            return;
        }
        for oh in t.rows.clone() {
            f(
                t.p,
                t.q,
                oh,
                t.input_row(oh),
                (t.cols.start, t.cols.end),
                t.iw0,
            );
        }
    });
}

/// `y[j] += a · x[start + j·stride]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(super) fn axpy_strided<T: Scalar>(a: T, x: &[T], start: usize, stride: usize, y: &mut [T]) {
    if stride == 1 {
        let len = y.len();
        for (y, &x) in y.iter_mut().zip(&x[start..start + len]) {
            *y += a * x;
        }
    } else {
        for (j, y) in y.iter_mut().enumerate() {
            *y += a * x[start + j * stride];
        }
    }
}

/// `Σ_j d[j] · x[start + j·stride]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(super) fn dot_strided<T: Scalar>(d: &[T], x: &[T], start: usize, stride: usize) -> T {
    let mut s = T::zero();
    if stride == 1 {
        for (&d, &x) in d.iter().zip(&x[start..start + d.len()]) {
            s += d * x;
        }
    } else {
        for (j, &d) in d.iter().enumerate() {
            s += d * x[start + j * stride];
        }
    }
    s
}

/// `x[start + j·stride] += a · d[j]`.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(super) fn scatter_strided<T: Scalar>(a: T, d: &[T], x: &mut [T], start: usize, stride: usize) {
    if stride == 1 {
        for (x, &d) in x[start..start + d.len()].iter_mut().zip(d) {
            *x += a * d;
        }
    } else {
        for (j, &d) in d.iter().enumerate() {
            x[start + j * stride] += a * d;
        }
    }
}
