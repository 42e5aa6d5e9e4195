//! Image batches: shapes and the window arithmetic shared by convolution and pooling.
//!
//! A mini-batch of images is stored NCHW row-major, as PyTorch stores it: element
//! (n, c, h, w) of a batch of `N` images of shape `C × H × W` sits at `((n·C + c)·H + h)·W + w`.
//! Flattening such a batch to `[N, C·H·W]` (PyTorch's `nn.Flatten`) is therefore a reshape of the
//! same slice: it needs no kernel and no copy, and its backward pass is the identity.
//!
//! A window of size k sliding with stride s over a length L padded by p on both sides fits
//!
//! ```text
//! L_out = ⌊(L + 2p − k) / s⌋ + 1        (needs L + 2p ≥ k)
//! ```
//!
//! times; output position o reads inputs o·s − p … o·s − p + k − 1 (those outside 0 … L − 1 are
//! padding).

use std::fmt;

use crate::error::{Error, Result};

/// The shape of one image of a batch, `C × H × W` (NCHW without the N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Elements of one image, `C·H·W` (the width of the flattened batch).
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether one image holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements of one channel plane, `H·W`.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    /// `[N, C, H, W]`, as PyTorch prints a batch's shape.
    pub fn batch(&self, n: usize) -> String {
        format!("[{n}, {}, {}, {}]", self.channels, self.height, self.width)
    }
}

impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// `⌊(len + 2·pad − k) / stride⌋ + 1`, or `None` when the padded length is shorter than the
/// window (or a size is zero).
pub fn window_count(len: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = pad.checked_mul(2)?.checked_add(len)?;
    if len == 0 || k == 0 || stride == 0 || padded < k {
        return None;
    }
    Some((padded - k) / stride + 1)
}

/// [`window_count`] along the height and the width of `input` for a 2-D window
/// (`[height, width]` kernel, stride and padding).
pub(crate) fn window_counts(
    input: ImageShape,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> (Option<usize>, Option<usize>) {
    (
        window_count(input.height, kernel[0], stride[0], padding[0]),
        window_count(input.width, kernel[1], stride[1], padding[1]),
    )
}

/// The output positions `lo..hi` whose input index `o·stride + offset − pad` falls inside
/// `0..len` (for the kernel tap `offset`), so that loops over them need no bounds test.
#[inline]
pub(crate) fn valid_range(
    out_len: usize,
    len: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> (usize, usize) {
    // o·s + offset ≥ pad  ⇔  o ≥ ⌈(pad − offset) / s⌉
    let lo = if pad > offset {
        (pad - offset).div_ceil(stride)
    } else {
        0
    };
    // o·s + offset − pad ≤ len − 1  ⇔  o ≤ ⌊(len − 1 + pad − offset) / s⌋
    let hi = if len + pad > offset {
        ((len - 1 + pad - offset) / stride + 1).min(out_len)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// `[n, C, H, W]` of a batch, formatted only when printed: the layers' buffer checks name the
/// batch shape in their errors, and a check that passes must allocate nothing (the training step
/// allocates nothing).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batch(pub ImageShape, pub usize);

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "[{}, {}, {}, {}]", self.1, s.channels, s.height, s.width)
    }
}

/// A text written by `F` only when printed (see [`Batch`]).
pub(crate) struct Lazy<F>(pub F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}

/// `n·C·H·W`, the elements of a batch of `n` images of shape `shape`, or an error naming the
/// layer and the shape if that number does not fit in memory's address range.
pub(crate) fn batch_len(layer: &dyn fmt::Display, n: usize, shape: ImageShape) -> Result<usize> {
    [shape.channels, shape.height, shape.width]
        .iter()
        .try_fold(n, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len <= isize::MAX as usize / 8)
        .ok_or_else(|| {
            Error::shape(
                format!("{layer}: batch size"),
                "a batch that fits in memory",
                shape.batch(n),
            )
        })
}

/// Checks that a buffer holds at least `want` elements; the error names the layer, the buffer
/// and the batch shape.
pub(crate) fn check_len(
    layer: &dyn fmt::Display,
    buffer: &str,
    shape: &dyn fmt::Display,
    want: usize,
    got: usize,
) -> Result<()> {
    if got < want {
        return Err(Error::shape(
            format!("{layer}: {buffer} for a batch of shape {shape}"),
            format!("at least {want} elements"),
            format!("{got} elements"),
        ));
    }
    Ok(())
}

/// [`check_len`] for a buffer that holds a whole batch of `n` images of shape `shape`
/// (`n·C·H·W` elements).
pub(crate) fn check_batch(
    layer: &dyn fmt::Display,
    buffer: &str,
    (shape, n): (ImageShape, usize),
    got: usize,
) -> Result<()> {
    check_len(layer, buffer, &Batch(shape, n), n * shape.len(), got)
}

/// The first `count` planes of `a` (each `a_plane` values long) beside the first `count` planes
/// of `b` (each `b_plane` long): the layers that work plane by plane (pooling; its forward
/// reads input planes and writes output planes, its backward the other way round) walk their
/// buffers this way.
#[inline]
pub(crate) fn plane_pairs<'a, 'b, A, B>(
    (a, a_plane): (&'a [A], usize),
    (b, b_plane): (&'b mut [B], usize),
    count: usize,
) -> impl Iterator<Item = (&'a [A], &'b mut [B])> {
    a.chunks_exact(a_plane)
        .zip(b.chunks_exact_mut(b_plane))
        .take(count)
}

/// Σ v, in 16 interleaved partial sums (so that the adds vectorise instead of waiting on each
/// other; a plain left-to-right sum of a 26×26 plane costs about 3× as long).
pub(crate) fn sum<T: crate::tensor::Scalar>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut s = rest.iter().copied().sum::<T>();
    for a in acc {
        s += a;
    }
    s
}

/// `Σ f(x)` over `v`, in `f64` with 8 interleaved partial sums (see [`sum`]).
#[inline]
pub(crate) fn sum_f64<T: crate::tensor::Scalar>(v: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|x| f(x.f64())).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x.f64());
        }
    }
    rest + acc.iter().sum::<f64>()
}

/// `(Σ d, Σ d·(x − c))` over the pairs of `x` and `d`, in `f64` with 8 interleaved partial sums.
#[inline]
pub(crate) fn sum_and_centered_dot<T: crate::tensor::Scalar>(
    x: &[T],
    d: &[T],
    c: f64,
) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f64; 8], [0.0f64; 8]);
    let (xc, dc) = (x.chunks_exact(8), d.chunks_exact(8));
    let (mut sa, mut sb) = (0.0, 0.0);
    for (&x, &d) in xc.remainder().iter().zip(dc.remainder()) {
        sa += d.f64();
        sb += d.f64() * (x.f64() - c);
    }
    for (xs, ds) in xc.zip(dc) {
        for (((a, b), &x), &d) in a.iter_mut().zip(b.iter_mut()).zip(xs).zip(ds) {
            *a += d.f64();
            *b += d.f64() * (x.f64() - c);
        }
    }
    (sa + a.iter().sum::<f64>(), sb + b.iter().sum::<f64>())
}

/// `v` as `&[f32]` when `T` is `f32` (the training type, which has the vector kernels below).
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32<T: crate::tensor::Scalar>(v: &[T]) -> Option<&[f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (same type id), so the slice's layout is that of [f32].
        Some(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len()) })
    } else {
        None
    }
}

/// `v` as `&mut [f32]` when `T` is `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32_mut<T: crate::tensor::Scalar>(v: &mut [T]) -> Option<&mut [f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (same type id), so the slice's layout is that of [f32].
        Some(unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<f32>(), v.len()) })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_range_matches_a_scan() {
        for len in 1..8 {
            for k in 1..5 {
                for s in 1..4 {
                    for p in 0..3 {
                        let Some(out) = window_count(len, k, s, p) else {
                            continue;
                        };
                        for off in 0..k {
                            let want: Vec<usize> = (0..out)
                                .filter(|&o| {
                                    let i = (o * s + off) as isize - p as isize;
                                    i >= 0 && (i as usize) < len
                                })
                                .collect();
                            let (lo, hi) = valid_range(out, len, s, off, p);
                            assert_eq!(
                                (lo..hi).collect::<Vec<_>>(),
                                want,
                                "{len} {k} {s} {p} {off}"
                            );
                        }
                    }
                }
            }
        }
    }
}
