//! Max and average pooling (PyTorch's `nn.MaxPool2d`, `nn.AvgPool2d`: dilation 1, floor mode),
//! a whole mini-batch of NCHW images at a time, each channel plane on its own.
//!
//! For a k_h × k_w window with stride (sh, sw) and padding (ph, pw), output (i, j) of a plane
//! looks at the window 𝒲(i, j) = {(i·sh − ph + p, j·sw − pw + q) : 0 ≤ p < k_h, 0 ≤ q < k_w}
//! (output sizes as in [`crate::layers::image`]). PyTorch requires padding ≤ half the kernel.
//!
//! Max pooling (padding counts as −∞, so only pixels inside the image compete):
//!
//! ```text
//! forward:   Y[i,j] = X[a(i,j)],   a(i,j) = the first position of 𝒲(i,j) ∩ image, in row-major
//!                                           order, holding the window's maximum (a NaN wins)
//! backward:  ∂L/∂X[h,w] = Σ_{(i,j): a(i,j) = (h,w)} δY[i,j]
//! ```
//!
//! The tie rule is PyTorch's: a later value replaces the running maximum only if it is strictly
//! greater (or NaN), so among equal maxima the first gets the whole gradient.
//!
//! Average pooling with `count_include_pad` (PyTorch's default): the divisor counts the padded
//! positions of the window, D(i,j) = (min(i·sh − ph + k_h, H + ph) − (i·sh − ph)) · (same for
//! the width), which in floor mode is always k_h·k_w:
//!
//! ```text
//! forward:   Y[i,j] = (1/D(i,j)) Σ_{(h,w) ∈ 𝒲(i,j) ∩ image} X[h,w]
//! backward:  ∂L/∂X[h,w] = Σ_{(i,j): (h,w) ∈ 𝒲(i,j)} δY[i,j] / D(i,j)
//! ```
//!
//! Both backward passes overwrite ∂L/∂X (pooling has no parameters).
//!
//! ```
//! use downhill_core::layers::{ImageShape, MaxPool2d, Pool2d};
//! let pool = MaxPool2d::new(2);
//! let input = ImageShape::new(1, 2, 4);
//! let x = [1.0f64, 3.0, 5.0, 5.0, 2.0, 0.0, 4.0, 1.0];
//! let mut y = [0.0; 2];
//! pool.forward(input, 1, &x, &mut y).unwrap();
//! assert_eq!(y, [3.0, 5.0]);
//! let mut dx = [9.0; 8];
//! pool.backward(input, 1, &x, &[10.0, 20.0], &mut dx).unwrap();
//! assert_eq!(dx, [0.0, 10.0, 20.0, 0.0, 0.0, 0.0, 0.0, 0.0]); // the first of the two 5s
//! ```

use std::fmt;

use crate::error::{Error, Result};
use crate::layers::image::{ImageShape, Lazy, batch_len, check_batch, plane_pairs, window_counts};
#[cfg(target_arch = "x86_64")]
use crate::layers::image::{as_f32, as_f32_mut};
use crate::tensor::Scalar;

/// The window of a pooling layer: kernel, stride and padding, each `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolWindow {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolWindow {
    /// A k×k window with stride k and no padding (PyTorch's defaults for `MaxPool2d(k)`).
    pub fn square(k: usize) -> PoolWindow {
        PoolWindow {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
        }
    }

    fn validate(&self, name: &str) -> Result<()> {
        for (what, v) in [
            ("pool kernel height", self.kernel[0]),
            ("pool kernel width", self.kernel[1]),
            ("pool stride height", self.stride[0]),
            ("pool stride width", self.stride[1]),
        ] {
            if v == 0 {
                return Err(Error::setting(
                    "pool window",
                    format!("{what} 0"),
                    format!("must be at least 1 in {name}({self})"),
                ));
            }
        }
        for d in 0..2 {
            // p > ⌊k/2⌋ is 2p > k, without 2p wrapping for an absurd p.
            if self.padding[d] > self.kernel[d] / 2 {
                return Err(Error::setting(
                    "pool padding",
                    format!("{}×{}", self.padding[0], self.padding[1]),
                    format!("must be at most half the kernel in {name}({self}), as in PyTorch"),
                ));
            }
        }
        Ok(())
    }

    fn output_shape(&self, name: &str, input: ImageShape) -> Result<ImageShape> {
        self.validate(name)?;
        let (h, w) = window_counts(input, self.kernel, self.stride, self.padding);
        match (h, w, input.channels) {
            (Some(h), Some(w), c) if c > 0 => Ok(ImageShape::new(c, h, w)),
            _ => Err(Error::shape(
                format!("{name}({self}) input"),
                format!(
                    "C×H×W with C ≥ 1 and an image of at least {}×{} after padding",
                    self.kernel[0], self.kernel[1]
                ),
                input,
            )),
        }
    }

    /// The window of output position `(i, j)`, clipped to the image: rows `h0..h1`, columns
    /// `w0..w1`, and its count_include_pad divisor.
    #[inline]
    fn window(&self, input: ImageShape, i: usize, j: usize) -> (usize, usize, usize, usize, usize) {
        let span = |o: usize, d: usize, len: usize| {
            let start = (o * self.stride[d]) as isize - self.padding[d] as isize;
            let end = (start + self.kernel[d] as isize).min((len + self.padding[d]) as isize);
            let div = (end - start) as usize;
            (start.max(0) as usize, end.min(len as isize) as usize, div)
        };
        let (h0, h1, dh) = span(i, 0, input.height);
        let (w0, w1, dw) = span(j, 1, input.width);
        (h0, h1, w0, w1, dh * dw)
    }

    /// The windows of every output position of one plane, row by row (the order of the output
    /// plane's cells); computed on the fly, nothing allocated.
    #[inline]
    fn windows(
        &self,
        input: ImageShape,
        out: ImageShape,
    ) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> + '_ {
        (0..out.height).flat_map(move |i| (0..out.width).map(move |j| self.window(input, i, j)))
    }

    /// Checks the lengths of the buffers a call on a batch of `n` images of shape `input` was
    /// given: `inputs` hold batches of that shape (the input, then the input gradient; a backward
    /// pass without the input checks its gradient as the input), `outputs` batches of the output
    /// shape (the output or its gradient, then max pooling's indices). Returns the output shape.
    fn check(
        &self,
        name: &str,
        (input, n): (ImageShape, usize),
        inputs: &[usize],
        outputs: &[usize],
    ) -> Result<ImageShape> {
        let out = self.output_shape(name, input)?;
        let layer = Lazy(|f: &mut fmt::Formatter<'_>| write!(f, "{name}({self})"));
        // One image must fit too: with n = 0 the batch's length is 0 whatever the image.
        batch_len(&layer, n.max(1), input)?;
        for (&len, what) in inputs.iter().zip(["input", "input gradient"]) {
            check_batch(&layer, what, (input, n), len)?;
        }
        for (&len, what) in outputs.iter().zip(["output", "indices"]) {
            check_batch(&layer, what, (out, n), len)?;
        }
        Ok(out)
    }
}

impl fmt::Display for PoolWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "kernel {}×{}, stride {}×{}, padding {}×{}",
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1]
        )
    }
}

/// The part of each pooling that differs: its reduction of one plane's windows. Sealed in this
/// private module so that it is reached only through [`Pool2d::forward`], which checks the
/// buffers first.
mod kernel {
    use super::{ImageShape, PoolWindow, Scalar};

    /// The planes a pooling pass reads and writes: `count` planes of shape `input` (the images'
    /// channels, image after image) into as many of shape `out`.
    #[derive(Clone, Copy, Debug)]
    pub struct Planes {
        pub input: ImageShape,
        pub out: ImageShape,
        pub count: usize,
    }

    pub trait PoolPlanes {
        /// The layer's name in messages.
        const NAME: &'static str;

        /// The window, stride and padding.
        fn window(&self) -> PoolWindow;

        /// Pools `planes.count` planes of shape `planes.input` in `x` into as many planes of
        /// shape `planes.out` in `y` (both checked to be long enough by `Pool2d::forward`).
        fn pool_planes<T: Scalar>(&self, planes: Planes, x: &[T], y: &mut [T]);
    }
}

use kernel::{Planes, PoolPlanes};

/// What max and average pooling share: one [`PoolWindow`] slid over every channel plane of
/// every image, one value out of each window. Bring it into scope to call `forward`:
/// `use downhill_core::layers::Pool2d;`. The per-plane kernels behind it are sealed, reached only
/// through `forward`, which checks the buffers first:
///
/// ```compile_fail
/// use downhill_core::layers::pool::kernel::{Planes, PoolPlanes};
/// use downhill_core::layers::{ImageShape, MaxPool2d};
/// let (input, out) = (ImageShape::new(1, 4, 4), ImageShape::new(1, 2, 2));
/// let mut y = [0.0f64; 3]; // one short, and nothing would say so
/// MaxPool2d::new(2).pool_planes(Planes { input, out, count: 1 }, &[0.0; 16], &mut y);
/// ```
pub trait Pool2d: PoolPlanes {
    /// `Y = pool(X)` for `n` images of shape `input`.
    fn forward<T: Scalar>(&self, input: ImageShape, n: usize, x: &[T], y: &mut [T]) -> Result<()> {
        let out = self
            .window()
            .check(Self::NAME, (input, n), &[x.len()], &[y.len()])?;
        let count = n * input.channels;
        self.pool_planes(Planes { input, out, count }, x, y);
        Ok(())
    }
}

impl Pool2d for MaxPool2d {}
impl Pool2d for AvgPool2d {}

impl PoolPlanes for MaxPool2d {
    const NAME: &'static str = MAX;

    fn window(&self) -> PoolWindow {
        self.0
    }

    /// Each output is its window's first maximum (PyTorch's tie rule); the 2×2 window with
    /// stride 2 by its own kernel.
    fn pool_planes<T: Scalar>(&self, planes: Planes, x: &[T], y: &mut [T]) {
        let Planes { input, out, count } = planes;
        if self.0 == PoolWindow::square(2) {
            max2x2_forward(input, out, &x[..count * input.plane()], y);
            return;
        }
        for (xp, yp) in plane_pairs((x, input.plane()), (y, out.plane()), count) {
            for (i, yrow) in yp.chunks_exact_mut(out.width).enumerate() {
                for (j, v) in yrow.iter_mut().enumerate() {
                    *v = xp[self.argmax(input, xp, i, j)];
                }
            }
        }
    }
}

impl PoolPlanes for AvgPool2d {
    const NAME: &'static str = AVG;

    fn window(&self) -> PoolWindow {
        self.0
    }

    /// Each output is its window's sum over the pixels inside the image, divided by D(i, j).
    fn pool_planes<T: Scalar>(&self, planes: Planes, x: &[T], y: &mut [T]) {
        let Planes { input, out, count } = planes;
        for (xp, yp) in plane_pairs((x, input.plane()), (y, out.plane()), count) {
            for (v, (h0, h1, w0, w1, div)) in yp.iter_mut().zip(self.0.windows(input, out)) {
                let mut s = T::zero();
                for h in h0..h1 {
                    for &x in &xp[h * input.width..][w0..w1] {
                        s += x;
                    }
                }
                *v = s / T::c(div as f64);
            }
        }
    }
}

/// Max pooling over windows of each channel plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaxPool2d(pub PoolWindow);

/// Average pooling over windows of each channel plane (count_include_pad).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AvgPool2d(pub PoolWindow);

impl MaxPool2d {
    /// `MaxPool2d(k)`: a k×k window, stride k, no padding.
    pub fn new(k: usize) -> MaxPool2d {
        MaxPool2d(PoolWindow::square(k))
    }

    /// The shape of one output image, or an error printing the input shape and the window.
    pub fn output_shape(&self, input: ImageShape) -> Result<ImageShape> {
        self.0.output_shape("MaxPool2d", input)
    }

    /// The position (offset in the plane) of the window's first maximum, PyTorch's rule.
    #[inline]
    fn argmax<T: Scalar>(&self, input: ImageShape, plane: &[T], i: usize, j: usize) -> usize {
        let (h0, h1, w0, w1, _) = self.0.window(input, i, j);
        let mut best = h0 * input.width + w0;
        let mut max = T::neg_infinity();
        for h in h0..h1 {
            for (w, &v) in plane[h * input.width..][w0..w1].iter().enumerate() {
                if v > max || v.is_nan() {
                    max = v;
                    best = h * input.width + w0 + w;
                }
            }
        }
        best
    }

    /// Length of the index buffer of [`MaxPool2d::forward_indexed`]: one per output, `n·C·H'·W'`.
    pub fn indices_len(&self, input: ImageShape, n: usize) -> Result<usize> {
        let out = self.output_shape(input)?;
        batch_len(&"MaxPool2d", n, out)
    }

    /// [`MaxPool2d::forward`] that also records where each maximum was (its offset in the
    /// plane, `h·W + w`), as PyTorch's `return_indices`, so that
    /// [`MaxPool2d::backward_indexed`] need not search the windows again.
    pub fn forward_indexed<T: Scalar>(
        &self,
        input: ImageShape,
        n: usize,
        x: &[T],
        y: &mut [T],
        indices: &mut [u32],
    ) -> Result<()> {
        let outputs = [y.len(), indices.len()];
        let out = self.0.check(MAX, (input, n), &[x.len()], &outputs)?;
        if input.plane() > u32::MAX as usize {
            return Err(Error::shape(
                format!("MaxPool2d({}) indices", self.0),
                "planes of at most 2³² pixels",
                input,
            ));
        }
        let planes = n * input.channels;
        let (x, y) = (&x[..planes * input.plane()], &mut y[..planes * out.plane()]);
        let indices = &mut indices[..planes * out.plane()];
        if self.0 == PoolWindow::square(2) {
            #[cfg(target_arch = "x86_64")]
            if let (Some(x), Some(y), true) = (
                as_f32(x),
                as_f32_mut(y),
                std::arch::is_x86_feature_detected!("avx512f"),
            ) {
                // SAFETY: AVX-512F is present; the slices hold `planes` planes of each shape.
                unsafe { avx512::max2x2_forward_indexed(input, out, x, y, indices) };
                return Ok(());
            }
            max2x2_forward_indexed(input, out, x, y, indices);
            return Ok(());
        }
        let outs = y.chunks_exact_mut(out.plane());
        for (xp, (yp, ip)) in x
            .chunks_exact(input.plane())
            .zip(outs.zip(indices.chunks_exact_mut(out.plane())))
        {
            for (k, (v, at)) in yp.iter_mut().zip(ip.iter_mut()).enumerate() {
                let a = self.argmax(input, xp, k / out.width, k % out.width);
                (*v, *at) = (xp[a], a as u32);
            }
        }
        Ok(())
    }

    /// Overwrites `dx` with ∂L/∂X from the `indices` of [`MaxPool2d::forward_indexed`]: each
    /// output's gradient added at its recorded maximum. An index outside its plane is an error.
    pub fn backward_indexed<T: Scalar>(
        &self,
        input: ImageShape,
        n: usize,
        indices: &[u32],
        dy: &[T],
        dx: &mut [T],
    ) -> Result<()> {
        let outputs = [dy.len(), indices.len()];
        let out = self.0.check(MAX, (input, n), &[dx.len()], &outputs)?;
        let planes = n * input.channels;
        let grads = dy.chunks_exact(out.plane());
        for ((ip, dyp), dxp) in indices
            .chunks_exact(out.plane())
            .zip(grads)
            .zip(dx.chunks_exact_mut(input.plane()))
            .take(planes)
        {
            dxp.fill(T::zero());
            for (&at, &d) in ip.iter().zip(dyp) {
                let Some(g) = dxp.get_mut(at as usize) else {
                    return Err(Error::shape(
                        format!("MaxPool2d({}) index", self.0),
                        format!("below {} (an offset in a {input} plane)", input.plane()),
                        at,
                    ));
                };
                *g += d;
            }
        }
        Ok(())
    }

    /// Overwrites `dx` with ∂L/∂X given the forward input `x` and `dy` = ∂L/∂Y: each output's
    /// gradient goes to its window's first maximum (found again from `x`).
    pub fn backward<T: Scalar>(
        &self,
        input: ImageShape,
        n: usize,
        x: &[T],
        dy: &[T],
        dx: &mut [T],
    ) -> Result<()> {
        let inputs = [x.len(), dx.len()];
        let out = self.0.check(MAX, (input, n), &inputs, &[dy.len()])?;
        let planes = n * input.channels;
        if self.0 == PoolWindow::square(2) {
            max2x2_backward(input, out, &x[..planes * input.plane()], dy, dx);
            return Ok(());
        }
        let grads = dy.chunks_exact(out.plane());
        for ((xp, dxp), dyp) in
            plane_pairs((x, input.plane()), (dx, input.plane()), planes).zip(grads)
        {
            dxp.fill(T::zero());
            for (i, dyrow) in dyp.chunks_exact(out.width).enumerate() {
                for (j, &d) in dyrow.iter().enumerate() {
                    dxp[self.argmax(input, xp, i, j)] += d;
                }
            }
        }
        Ok(())
    }
}

/// The layer names the buffer checks give.
const MAX: &str = "MaxPool2d";
const AVG: &str = "AvgPool2d";

/// Index (0–3, row-major) of the first maximum of a 2×2 window, PyTorch's rule.
#[inline(always)]
fn first_max4<T: Scalar>(v: [T; 4]) -> (usize, T) {
    let (mut at, mut max) = (0, v[0]);
    for (k, &x) in v.iter().enumerate().skip(1) {
        let take = x > max || x.is_nan();
        at = if take { k } else { at };
        max = if take { x } else { max };
    }
    (at, max)
}

/// The 2×2 window with stride 2 (the usual `MaxPool2d(2)`): the rows of each plane in pairs,
/// without the general path's clipping. Same rule, same results.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn max2x2_forward<T: Scalar>(input: ImageShape, out: ImageShape, x: &[T], y: &mut [T]) {
    let w = input.width;
    for (xp, yp) in x
        .chunks_exact(input.plane())
        .zip(y.chunks_exact_mut(out.plane()))
    {
        for (i, yrow) in yp.chunks_exact_mut(out.width).enumerate() {
            let r0 = &xp[2 * i * w..][..2 * out.width];
            let r1 = &xp[(2 * i + 1) * w..][..2 * out.width];
            for ((v, a), b) in yrow
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                *v = first_max4([a[0], a[1], b[0], b[1]]).1;
            }
        }
    }
}

/// [`max2x2_forward`] that also records each maximum's offset in its plane.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn max2x2_forward_indexed<T: Scalar>(
    input: ImageShape,
    out: ImageShape,
    x: &[T],
    y: &mut [T],
    indices: &mut [u32],
) {
    let w = input.width;
    for ((xp, yp), ip) in x
        .chunks_exact(input.plane())
        .zip(y.chunks_exact_mut(out.plane()))
        .zip(indices.chunks_exact_mut(out.plane()))
    {
        for (i, (yrow, irow)) in yp
            .chunks_exact_mut(out.width)
            .zip(ip.chunks_exact_mut(out.width))
            .enumerate()
        {
            let r0 = &xp[2 * i * w..][..2 * out.width];
            let r1 = &xp[(2 * i + 1) * w..][..2 * out.width];
            let base = (2 * i * w) as u32;
            for (j, ((v, at), (a, b))) in yrow
                .iter_mut()
                .zip(irow.iter_mut())
                .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
                .enumerate()
            {
                let (k, m) = first_max4([a[0], a[1], b[0], b[1]]);
                *v = m;
                // k = 0, 1 in the first row, 2, 3 in the second.
                *at = base + (2 * j) as u32 + (k as u32 & 1) + (k as u32 >> 1) * w as u32;
            }
        }
    }
}

/// Backward of [`max2x2_forward`]: each window's gradient to its first maximum, zeros elsewhere
/// (also in the last row or column an odd size leaves out).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn max2x2_backward<T: Scalar>(input: ImageShape, out: ImageShape, x: &[T], dy: &[T], dx: &mut [T]) {
    let w = input.width;
    let z = T::zero();
    for ((xp, dyp), dxp) in x
        .chunks_exact(input.plane())
        .zip(dy.chunks_exact(out.plane()))
        .zip(dx.chunks_exact_mut(input.plane()))
    {
        for (i, dyrow) in dyp.chunks_exact(out.width).enumerate() {
            let r0 = &xp[2 * i * w..][..2 * out.width];
            let r1 = &xp[(2 * i + 1) * w..][..2 * out.width];
            let (d0, d1) = dxp[2 * i * w..][..2 * w].split_at_mut(w);
            for (j, &d) in dyrow.iter().enumerate() {
                let v = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
                let at = first_max4(v).0;
                let e = [at == 0, at == 1, at == 2, at == 3];
                d0[2 * j] = if e[0] { d } else { z };
                d0[2 * j + 1] = if e[1] { d } else { z };
                d1[2 * j] = if e[2] { d } else { z };
                d1[2 * j + 1] = if e[3] { d } else { z };
            }
            d0[2 * out.width..].fill(z);
            d1[2 * out.width..].fill(z);
        }
        dxp[2 * out.height * w..].fill(z);
    }
}

impl AvgPool2d {
    /// `AvgPool2d(k)`: a k×k window, stride k, no padding.
    pub fn new(k: usize) -> AvgPool2d {
        AvgPool2d(PoolWindow::square(k))
    }

    /// The shape of one output image, or an error printing the input shape and the window.
    pub fn output_shape(&self, input: ImageShape) -> Result<ImageShape> {
        self.0.output_shape("AvgPool2d", input)
    }

    /// Overwrites `dx` with ∂L/∂X given `dy` = ∂L/∂Y (the input is not needed).
    pub fn backward<T: Scalar>(
        &self,
        input: ImageShape,
        n: usize,
        dy: &[T],
        dx: &mut [T],
    ) -> Result<()> {
        let out = self.0.check(AVG, (input, n), &[dx.len()], &[dy.len()])?;
        for (dyp, dxp) in plane_pairs((dy, out.plane()), (dx, input.plane()), n * input.channels) {
            dxp.fill(T::zero());
            for (&d, (h0, h1, w0, w1, div)) in dyp.iter().zip(self.0.windows(input, out)) {
                let g = d / T::c(div as f64);
                for h in h0..h1 {
                    for v in &mut dxp[h * input.width..][w0..w1] {
                        *v += g;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The 2×2, stride-2 max pooling with indices in `f32` with AVX-512: 16 windows at a time, the
/// even and odd columns of each row pair separated by one permute each, the first maximum kept
/// by masked blends in PyTorch's order (a later value wins if strictly greater or NaN). Measured
/// in training (`perf` on `downhill bench --only "cnn keras"`): the portable loop, one window at
/// a time, took 6 % of the Keras convnet's step.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, __m512i, __mmask16, _CMP_GT_OQ, _CMP_UNORD_Q, _mm512_add_epi32, _mm512_cmp_ps_mask,
        _mm512_mask_blend_epi32, _mm512_mask_blend_ps, _mm512_mask_storeu_epi32,
        _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_permutex2var_ps, _mm512_set1_epi32,
        _mm512_setr_epi32,
    };

    use super::ImageShape;

    /// # Safety
    /// AVX-512F must be present; `x` holds whole planes of shape `input`, `y` and `indices` as
    /// many planes of shape `out` (the 2×2 window with stride 2, no padding).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max2x2_forward_indexed(
        input: ImageShape,
        out: ImageShape,
        x: &[f32],
        y: &mut [f32],
        indices: &mut [u32],
    ) {
        let (w, wo) = (input.width, out.width);
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let upto = |k: usize| -> __mmask16 {
            if k >= 16 {
                0xffff
            } else {
                ((1u32 << k) - 1) as __mmask16
            }
        };
        for ((xp, yp), ip) in x
            .chunks_exact(input.plane())
            .zip(y.chunks_exact_mut(out.plane()))
            .zip(indices.chunks_exact_mut(out.plane()))
        {
            for (i, (yrow, irow)) in yp
                .chunks_exact_mut(wo)
                .zip(ip.chunks_exact_mut(wo))
                .enumerate()
            {
                let r0 = &xp[2 * i * w..][..2 * wo];
                let r1 = &xp[(2 * i + 1) * w..][..2 * wo];
                for j in (0..wo).step_by(16) {
                    let n = (wo - j).min(16);
                    let (m_lo, m_hi) = (upto(2 * n), upto((2 * n).saturating_sub(16)));
                    // SAFETY: the lanes of the masks are columns below 2·W' of the two rows.
                    let split = |r: &[f32]| unsafe {
                        let lo = _mm512_maskz_loadu_ps(m_lo, r.as_ptr().add(2 * j));
                        let hi =
                            _mm512_maskz_loadu_ps(m_hi, r.as_ptr().add(2 * j).wrapping_add(16));
                        (
                            _mm512_permutex2var_ps(lo, even, hi),
                            _mm512_permutex2var_ps(lo, odd, hi),
                        )
                    };
                    let ((a0, a1), (b0, b1)) = (split(r0), split(r1));
                    // Offsets in the plane: the window's first pixel, then +1, +W, +W+1.
                    let first =
                        _mm512_add_epi32(_mm512_set1_epi32((2 * i * w + 2 * j) as i32), lane2);
                    let (mut best, mut at) = (a0, first);
                    let mut take = |v: __m512, off: usize| {
                        let t = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                            | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                        best = _mm512_mask_blend_ps(t, best, v);
                        let cand: __m512i = _mm512_add_epi32(first, _mm512_set1_epi32(off as i32));
                        at = _mm512_mask_blend_epi32(t, at, cand);
                    };
                    take(a1, 1);
                    take(b0, w);
                    take(b1, w + 1);
                    let m = upto(n);
                    // SAFETY: the lanes of `m` are outputs j..j + n of this row.
                    unsafe {
                        _mm512_mask_storeu_ps(yrow.as_mut_ptr().add(j), m, best);
                        _mm512_mask_storeu_epi32(irow.as_mut_ptr().add(j).cast(), m, at);
                    }
                }
            }
        }
    }
}
