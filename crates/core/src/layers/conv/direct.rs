//! The direct route: the same sums as im2col and the matrix products, as loops over the kernel
//! taps (vectorised along the image rows), for [`Conv2d::forward_direct`] and
//! [`Conv2d::backward_direct`].

use super::taps::{axpy_strided, dot_strided, scatter_strided, taps};
use super::{Conv2d, ConvBackward, ConvForward};
use crate::error::Result;
use crate::layers::image::sum;
use crate::tensor::{Beta, Scalar};

impl Conv2d {
    /// The same `Y` as [`Conv2d::forward`], by direct loops over the kernel taps: for each
    /// output plane, each input channel and each tap (p, q), `Y[n,o] += W[o,c,p,q] · (X[n,c]
    /// shifted by (p − ph, q − pw))`, one row at a time. Needs no scratch.
    pub fn forward_direct<T: Scalar>(&self, pass: ConvForward<'_, T>) -> Result<()> {
        let out = self.check_forward(&pass, None)?;
        let (input, n, x, w, b, y) = (pass.input, pass.n, pass.x, pass.w, pass.b, pass.y);
        let (c_in, kk) = (self.in_channels, self.kernel[0] * self.kernel[1]);
        for (xn, yn) in x
            .chunks_exact(input.len())
            .zip(y.chunks_exact_mut(out.len()))
            .take(n)
        {
            for (o, yo) in yn.chunks_exact_mut(out.plane()).enumerate() {
                yo.fill(if self.bias { b[o] } else { T::zero() });
                for (c, xc) in xn.chunks_exact(input.plane()).enumerate() {
                    let wc = &w[(o * c_in + c) * kk..][..kk];
                    taps(self, input, out, |p, q, oh, ih, (lo, hi), iw0| {
                        let wv = wc[p * self.kernel[1] + q];
                        let yrow = &mut yo[oh * out.width..][lo..hi];
                        let xrow = &xc[ih * input.width..];
                        axpy_strided(wv, xrow, iw0, self.stride[1], yrow);
                    });
                }
            }
        }
        Ok(())
    }

    /// The same gradients as [`Conv2d::backward`], by direct loops over the kernel taps (dot
    /// products for ∂L/∂W, shifted row updates for ∂L/∂X). Needs no scratch.
    pub fn backward_direct<T: Scalar>(&self, pass: ConvBackward<'_, T>) -> Result<()> {
        let out = self.check_backward(&pass, None)?;
        let (dy, input, n, x, w) = (pass.dy, pass.input, pass.n, pass.x, pass.w);
        let (dw, db, mut dx, beta) = (pass.dw, pass.db, pass.dx, pass.beta);
        let (c_in, kk) = (self.in_channels, self.kernel[0] * self.kernel[1]);
        if beta == Beta::Replace {
            dw[..self.weight_len()].fill(T::zero());
            db[..self.bias_len()].fill(T::zero());
        }
        if let Some(dx) = dx.as_deref_mut() {
            dx[..n * input.len()].fill(T::zero());
        }
        for img in 0..n {
            let xn = &x[img * input.len()..][..input.len()];
            let dyn_ = &dy[img * out.len()..][..out.len()];
            for (o, dyo) in dyn_.chunks_exact(out.plane()).enumerate() {
                if self.bias {
                    db[o] += sum(dyo);
                }
                for (c, xc) in xn.chunks_exact(input.plane()).enumerate() {
                    let wc = &w[(o * c_in + c) * kk..][..kk];
                    let dwc = &mut dw[(o * c_in + c) * kk..][..kk];
                    let mut dxc = dx
                        .as_deref_mut()
                        .map(|d| &mut d[(img * c_in + c) * input.plane()..][..input.plane()]);
                    taps(self, input, out, |p, q, oh, ih, (lo, hi), iw0| {
                        let tap = p * self.kernel[1] + q;
                        let dyrow = &dyo[oh * out.width..][lo..hi];
                        let xrow = &xc[ih * input.width..];
                        dwc[tap] += dot_strided(dyrow, xrow, iw0, self.stride[1]);
                        if let Some(dxc) = dxc.as_deref_mut() {
                            let dxrow = &mut dxc[ih * input.width..];
                            scatter_strided(wc[tap], dyrow, dxrow, iw0, self.stride[1]);
                        }
                    });
                }
            }
        }
        Ok(())
    }
}
