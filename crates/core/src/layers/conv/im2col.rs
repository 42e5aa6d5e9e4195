//! The patch matrix: im2col (an image's windows as the columns of Uₙ) and col2im (their
//! gradients summed back into the image), portable loops and the AVX-512 kernels' dispatch.

#[cfg(target_arch = "x86_64")]
use super::avx512;
use super::taps::each_tap;
use super::{Conv2d, Frame};
use crate::layers::image::ImageShape;
#[cfg(target_arch = "x86_64")]
use crate::layers::image::{as_f32, as_f32_mut};
use crate::tensor::Scalar;

/// Uₙ (K × P) from one image: row (c, p, q) holds X[c, i·sh + p − ph, j·sw + q − pw] for every
/// output position (i, j), 0 where that falls in the padding.
pub(super) fn im2col<T: Scalar>(
    conv: &Conv2d,
    input: ImageShape,
    out: ImageShape,
    x: &[T],
    u: &mut [T],
) {
    patches(Patches::Unfold, Frame { conv, input, out }, x, u)
}

/// ∂L/∂Xₙ = col2im(δUₙ): overwrites `dx` (one image) with the sum, over the patch entries copied
/// from each pixel by [`im2col`], of their gradients.
pub(super) fn col2im<T: Scalar>(
    conv: &Conv2d,
    input: ImageShape,
    out: ImageShape,
    du: &[T],
    dx: &mut [T],
) {
    patches(Patches::Fold, Frame { conv, input, out }, du, dx)
}

/// Which way [`patches`] moves values between an image and its patch matrix.
#[derive(Clone, Copy)]
pub(super) enum Patches {
    /// im2col: image → patch matrix.
    Unfold,
    /// col2im: patch matrix → image (the adjoint, summing).
    Fold,
}

/// [`im2col`] (`from` the image, `to` the patch matrix) or [`col2im`] (the other way): by the
/// AVX-512 kernels for `f32` when they take this layer and input, else by the portable loops.
pub(super) fn patches<T: Scalar>(way: Patches, frame: Frame<'_>, from: &[T], to: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if avx512::Kernels::fits(frame)
        && let (Some(from), Some(to)) = (as_f32(from), as_f32_mut(to))
        && let Some(kernels) = avx512::Kernels::detect()
    {
        return match way {
            Patches::Unfold => kernels.unfold(frame, from, to),
            Patches::Fold => kernels.fold(frame, from, to),
        };
    }
    match way {
        Patches::Unfold => im2col_generic(frame, from, to),
        Patches::Fold => col2im_generic(frame, from, to),
    }
}

/// [`im2col`] for any stride and element type, in portable code.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(super) fn im2col_generic<T: Scalar>(frame: Frame<'_>, x: &[T], u: &mut [T]) {
    let Frame { conv, input, out } = frame;
    let sw = conv.stride[1];
    let mut rows = u.chunks_exact_mut(out.plane());
    for xc in x.chunks_exact(input.plane()) {
        each_tap(conv, input, out, |tap| {
            let row = rows.next().expect("patch matrix has K rows");
            let (lo, hi, iw0) = (tap.cols.start, tap.cols.end, tap.iw0);
            for (oh, urow) in row.chunks_exact_mut(out.width).enumerate() {
                if !tap.rows.contains(&oh) || lo >= hi {
                    urow.fill(T::zero());
                    continue;
                }
                let xrow = &xc[tap.input_row(oh) * input.width..][..input.width];
                urow[..lo].fill(T::zero());
                urow[hi..].fill(T::zero());
                if sw == 1 {
                    urow[lo..hi].copy_from_slice(&xrow[iw0..iw0 + hi - lo]);
                } else {
                    for (j, v) in urow[lo..hi].iter_mut().enumerate() {
                        *v = xrow[iw0 + j * sw];
                    }
                }
            }
        });
    }
}

/// [`col2im`] for any stride and element type, in portable code.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(super) fn col2im_generic<T: Scalar>(frame: Frame<'_>, du: &[T], dx: &mut [T]) {
    let Frame { conv, input, out } = frame;
    let sw = conv.stride[1];
    let dx = &mut dx[..input.len()];
    dx.fill(T::zero());
    let mut rows = du.chunks_exact(out.plane());
    for dxc in dx.chunks_exact_mut(input.plane()) {
        each_tap(conv, input, out, |tap| {
            let row = rows.next().expect("patch matrix has K rows");
            if tap.cols.is_empty() {
                return;
            }
            let iw0 = tap.iw0;
            for oh in tap.rows.clone() {
                let durow = &row[oh * out.width..][tap.cols.clone()];
                let dxrow = &mut dxc[tap.input_row(oh) * input.width..];
                if sw == 1 {
                    for (d, &g) in dxrow[iw0..iw0 + durow.len()].iter_mut().zip(durow) {
                        *d += g;
                    }
                } else {
                    for (j, &g) in durow.iter().enumerate() {
                        dxrow[iw0 + j * sw] += g;
                    }
                }
            }
        });
    }
}
