//! The 2-d convolution (PyTorch's `nn.Conv2d`, groups = 1, dilation = 1), a whole mini-batch of
//! NCHW images at a time.
//!
//! Forward, for an input X (N × C × H × W), weights W (O × C × kh × kw, PyTorch's layout), bias b,
//! stride (sh, sw) and zero padding (ph, pw) — PyTorch's convolution is a cross-correlation:
//!
//! ```text
//! Y[n,o,i,j] = b[o] + Σ_c Σ_p Σ_q W[o,c,p,q] · X[n, c, i·sh + p − ph, j·sw + q − pw]
//! ```
//!
//! with X = 0 outside the image; Y is N × O × H' × W' with H' = ⌊(H + 2ph − kh)/sh⌋ + 1 (and so
//! W'). Backward, given δY = ∂L/∂Y, by the chain rule on the same sum:
//!
//! ```text
//! ∂L/∂W[o,c,p,q] = Σ_n Σ_i Σ_j δY[n,o,i,j] · X[n, c, i·sh + p − ph, j·sw + q − pw]
//! ∂L/∂b[o]       = Σ_n Σ_i Σ_j δY[n,o,i,j]
//! ∂L/∂X[n,c,h,w] = Σ_o Σ_{(i,p): i·sh+p−ph = h} Σ_{(j,q): j·sw+q−pw = w} δY[n,o,i,j] · W[o,c,p,q]
//! ```
//!
//! **How it is computed (im2col).** For one image, lay its patches out as the columns of a matrix
//! U (K × P, K = C·kh·kw rows in the weights' order, P = H'·W' columns, zeros where a patch
//! overlaps the padding). Then the three sums are matrix products — the dense layer's, per image:
//!
//! ```text
//! Yₙ   = W·Uₙ + b·1ᵀ           (O × P: the image's output planes, already NCHW)
//! ∂L/∂W += δYₙ·Uₙᵀ             (O × K, summed over the batch)
//! δUₙ  = Wᵀ·δYₙ                (K × P), then ∂L/∂Xₙ = col2im(δUₙ): each entry added back to
//!                              the pixel it was copied from
//! ```
//!
//! with W read as the O × K matrix it already is and both transposes read in place by
//! [`gemm`]. A 1×1 kernel with stride 1 and no padding needs no U: Uₙ is Xₙ itself.
//!
//! What keeps this near the products' speed (measured at batch 128 with `cargo bench --bench
//! vision_min parts|layers`, one thread, on the 2-core Zen 5 VM while other work shared it):
//!
//! - im2col and col2im for stride 1 in `f32` are AVX-512 loops with masked loads (the mask keeps
//!   a block of 16 columns inside its image row and reads zeros in the padding), col2im summing
//!   each block of 16 pixels in registers over the taps that read it: for the Keras conv2
//!   (32→64, 3×3 on 13×13) unfold 1.19 → 0.38 ms and fold 2.35 → 0.31 ms per batch, next to
//!   ~2.4 ms for each of its three products;
//! - the bias rides in the product as a row of ones under U (`Conv2d::bias_row`), so Y is
//!   written once and ∂L/∂b comes out of the weight-gradient product;
//! - a layer with few patch rows (a first layer: K = 9 or 25) takes its weight gradient from a
//!   kernel vectorised along the image instead of a GEMM whose sides are all short
//!   (`weight_grad_small`): Keras conv1 backward 0.61 → 0.38 ms, LeNet conv1 0.69 → 0.31 ms.
//!
//! - a layer with one input channel (a first layer) in `f32` on an AVX-512 CPU needs no U at
//!   all: its Uₙ is kh·kw shifted copies of the image, so the forward pass sums each output row
//!   of a group of channels in registers over the taps, reading the image row masked
//!   (`avx512::direct_image`), and the weight gradient (no ∂X for a first layer) reads the
//!   shifted rows the same way (`avx512::direct_dw_tile`). On the 2-vCPU Intel Xeon VM, whose
//!   stores ran at ~45 GB/s even into L1 (a `memset` of 16 KB), im2col of LeNet-5's conv1 (a U
//!   of 78 KB per image, twice a step) had been 19 % of an epoch; epochs became 5–10 % faster
//!   (6–8 % less CPU, `perf stat`). Equal to the im2col route to rounding (tested in f32
//!   against the f64 loops, `tests/suite/layers/kernels.rs`).
//!
//! One product per image rather than one per batch: the per-image products already run at the
//! GEMM's rate (244–250 GFLOP/s for the Keras conv2's three, `vision_min gemm`), and U of one
//! image (140 KB) stays in L2 between im2col and the product, where a batch's would not.
//!
//! [`Conv2d::forward_direct`] / [`Conv2d::backward_direct`] compute the same sums as loops over
//! the kernel taps (vectorised along the image rows). Both routes are kept because
//! `cargo bench --bench kernels` compares them (group `conv`); [`Conv2d::forward`] and
//! [`Conv2d::backward`] use the im2col route, the faster one at the shapes measured (see
//! [`Conv2d::forward`]).
//!
//! The code, by idea: the layer, its checks and the im2col route's forward and backward here;
//! the patch matrix in `im2col.rs`, the weight gradient's layouts in `weight_grad.rs`, the direct
//! route in `direct.rs`, the index arithmetic of the kernel taps in `taps.rs`, and the AVX-512
//! kernels of all three (unfold/fold, the one-channel direct pass, the weight-gradient tiles) in
//! `avx512.rs`.
//!
//! ```
//! use downhill_core::layers::{Conv2d, ConvForward, ImageShape};
//! use downhill_core::tensor::Threads;
//! // One 1×3×3 image, one 2×2 filter of ones, no bias: each output sums a 2×2 window.
//! let conv = Conv2d::new(1, 1, [2, 2], [1, 1], [0, 0], false).unwrap();
//! let input = ImageShape::new(1, 3, 3);
//! let x = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let mut y = [0.0; 4];
//! let mut scratch = vec![0.0; conv.scratch_len(input).unwrap()];
//! let pass = ConvForward { input, n: 1, x: &x, w: &[1.0; 4], b: &[], y: &mut y };
//! conv.forward(pass, &mut scratch, Threads::ONE).unwrap();
//! assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
//! ```

#[cfg(target_arch = "x86_64")]
mod avx512;
mod direct;
mod im2col;
mod taps;
mod weight_grad;

use std::fmt;

use im2col::{Patches, col2im, im2col, patches};
use weight_grad::GradLayout;

use crate::error::{Error, Result};
use crate::layers::image::{
    Batch, ImageShape, batch_len, check_batch, check_len, sum, window_counts,
};
#[cfg(target_arch = "x86_64")]
use crate::layers::image::{as_f32, as_f32_mut};
use crate::tensor::{Beta, MatView, Scalar, Threads, gemm};

/// Shape of a convolution layer; its parameters live with the caller (weights `O·C·kh·kw`
/// elements in PyTorch's `[out, in, kh, kw]` order, then `O` biases if `bias`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conv2d {
    pub in_channels: usize,
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[sh, sw]`.
    pub stride: [usize; 2],
    /// `[ph, pw]`, zeros on both sides.
    pub padding: [usize; 2],
    pub bias: bool,
}

/// The tensors of one forward pass ([`Conv2d::forward`], [`Conv2d::forward_direct`]): `n`
/// images `x` of shape `input` (N × C × H × W), the weights `w` (O × C × kh × kw), the bias `b`
/// (empty without one) and the output `y` (N × O × H' × W') that the pass overwrites.
#[derive(Debug)]
pub struct ConvForward<'a, T> {
    pub input: ImageShape,
    pub n: usize,
    pub x: &'a [T],
    pub w: &'a [T],
    pub b: &'a [T],
    pub y: &'a mut [T],
}

/// The tensors of one backward pass ([`Conv2d::backward`], [`Conv2d::backward_direct`]):
/// `dy` = ∂L/∂Y and the forward pass's `input` shape, `n`, `x` and `w`; ∂L/∂W and ∂L/∂b are
/// written (`Beta::Replace`) or added (`Beta::Add`) into `dw` and `db` (empty without a bias),
/// and ∂L/∂X overwrites `dx` if asked.
#[derive(Debug)]
pub struct ConvBackward<'a, T> {
    pub dy: &'a [T],
    pub input: ImageShape,
    pub n: usize,
    pub x: &'a [T],
    pub w: &'a [T],
    pub dw: &'a mut [T],
    pub db: &'a mut [T],
    pub dx: Option<&'a mut [T]>,
    pub beta: Beta,
}

/// One convolution over images of one shape: the layer, its input and its output image shape —
/// what the patch kernels read.
#[derive(Clone, Copy)]
struct Frame<'a> {
    conv: &'a Conv2d,
    input: ImageShape,
    out: ImageShape,
}

/// The operands of one image's weight-gradient product `out (+)= dy·uᵀ`: `dy` = δYₙ (O × P) and
/// `u` = Uₙ (K1 × P), both row-major.
#[derive(Clone, Copy)]
struct DwOperands<'a, T> {
    dy: &'a [T],
    u: &'a [T],
    o: usize,
    k1: usize,
    p: usize,
}

impl fmt::Display for Conv2d {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Conv2d({}→{}, kernel {}×{}, stride {}×{}, padding {}×{}{})",
            self.in_channels,
            self.out_channels,
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1],
            if self.bias { "" } else { ", no bias" }
        )
    }
}

impl Conv2d {
    /// A validated convolution: channels, kernel and stride at least 1.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        bias: bool,
    ) -> Result<Conv2d> {
        let conv = Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            bias,
        };
        conv.validate()?;
        Ok(conv)
    }

    /// Checks the hyperparameters (for a value built field by field or read from a file).
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &'static str, v: usize| {
            if v == 0 {
                Err(Error::setting(
                    name,
                    v,
                    format!("must be at least 1 in {self}"),
                ))
            } else {
                Ok(())
            }
        };
        positive("conv in_channels", self.in_channels)?;
        positive("conv out_channels", self.out_channels)?;
        positive("conv kernel height", self.kernel[0])?;
        positive("conv kernel width", self.kernel[1])?;
        positive("conv stride height", self.stride[0])?;
        positive("conv stride width", self.stride[1])?;
        let weights = [self.in_channels, self.kernel[0], self.kernel[1]]
            .iter()
            .try_fold(self.out_channels, |acc, &d| acc.checked_mul(d));
        if weights.is_none_or(|w| w > isize::MAX as usize / 8) {
            return Err(Error::setting(
                "conv shape",
                self,
                "has more weights than fit in memory",
            ));
        }
        Ok(())
    }

    /// Number of weights, `O·C·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }

    /// Number of biases, `O` (0 without bias).
    pub fn bias_len(&self) -> usize {
        if self.bias { self.out_channels } else { 0 }
    }

    /// Rows of a patch matrix, `K = C·kh·kw`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// The shape of one output image, or an error printing both shapes when the input does not
    /// fit (wrong channel count, or an image smaller than the kernel even with its padding).
    pub fn output_shape(&self, input: ImageShape) -> Result<ImageShape> {
        self.validate()?;
        if input.channels != self.in_channels {
            return Err(Error::shape(
                format!("{self} input"),
                format!("{}×H×W", self.in_channels),
                input,
            ));
        }
        let (h, w) = window_counts(input, self.kernel, self.stride, self.padding);
        match (h, w) {
            (Some(h), Some(w)) => Ok(ImageShape::new(self.out_channels, h, w)),
            _ => Err(Error::shape(
                format!("{self} input"),
                format!(
                    "an image of at least {}×{} after padding ({}×{})",
                    self.kernel[0],
                    self.kernel[1],
                    input
                        .height
                        .saturating_add(self.padding[0].saturating_mul(2)),
                    input
                        .width
                        .saturating_add(self.padding[1].saturating_mul(2))
                ),
                input,
            )),
        }
    }

    /// Whether the patch matrix of an image is the image itself (1×1 kernel, stride 1, no pad).
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// Whether [`Conv2d::backward`] sums (∂L/∂W)ᵀ = Σₙ Uₙ·δYₙᵀ (K × O) in scratch and adds its
    /// transpose to ∂L/∂W at the end, instead of ∂L/∂W = Σₙ δYₙ·Uₙᵀ (O × K) directly. The GEMM
    /// kernels vectorise along the columns of a row-major result, so the wider of O and K goes
    /// there. Measured one-thread per 16 images (direct vs transposed): Keras conv1 (K = 9,
    /// O = 32) 110 vs 82 µs; LeNet conv1 (K = 25, O = 6) 85 vs 129 µs; the second layers
    /// (K > O) within 3 %.
    fn transposed_weight_grad(&self) -> bool {
        self.out_channels > self.patch_len()
    }

    /// Whether the bias rides in the products as an extra row of ones under Uₙ and an extra
    /// column b beside W: Yₙ = [W b]·[Uₙ; 1ᵀ] writes the output once (instead of filling it with
    /// the bias and adding the product), and [∂L/∂W ∂L/∂b] += δYₙ·[Uₙ; 1ᵀ]ᵀ sums the bias
    /// gradient in the same product. Measured at batch 128 (`cargo bench --bench vision_min
    /// layers`): the Keras conv1 forward 0.43 → 0.30 ms (its output is 11 MB, written once
    /// instead of twice).
    fn bias_row(&self) -> bool {
        self.bias && !self.pointwise()
    }

    /// Length of the scratch buffer [`Conv2d::forward`] and [`Conv2d::backward`] need for images
    /// of shape `input`: two patch matrices (`2·K·P`, plus a row of ones and [W b] or
    /// [∂L/∂W ∂L/∂b], `P + O·(K + 1)`, with a bias), or 0 for a pointwise convolution without
    /// bias (`O·K` for the transposed weight gradient). It does not grow with the batch size.
    pub fn scratch_len(&self, input: ImageShape) -> Result<usize> {
        let out = self.output_shape(input)?;
        let k1 = self.patch_len() + usize::from(self.bias_row());
        let patches = batch_len(self, 2 * k1, ImageShape::new(1, out.height, out.width))?;
        let weights = if self.bias_row() {
            k1 * self.out_channels
        } else if self.transposed_weight_grad() {
            self.weight_len()
        } else {
            0
        };
        Ok(if self.pointwise() { 0 } else { patches } + weights)
    }

    /// The checks both forward passes share: [`Conv2d::check`] on the pass's buffers.
    fn check_forward<T>(
        &self,
        t: &ConvForward<'_, T>,
        scratch: Option<usize>,
    ) -> Result<ImageShape> {
        let lens = [t.x.len(), t.w.len(), t.b.len(), t.y.len()];
        self.check(t.input, t.n, lens, ["bias", "output"], scratch)
    }

    /// The checks both backward passes share: [`Conv2d::check`] on the lengths of `x`, `w`,
    /// `db` and `dy`, then ∂L/∂W's and (if asked) ∂L/∂X's; returns the output shape.
    fn check_backward<T>(
        &self,
        t: &ConvBackward<'_, T>,
        scratch: Option<usize>,
    ) -> Result<ImageShape> {
        let (input, n) = (t.input, t.n);
        let lens = [t.x.len(), t.w.len(), t.db.len(), t.dy.len()];
        let names = ["bias gradient", "output gradient"];
        let out = self.check(input, n, lens, names, scratch)?;
        let layer = self;
        check_len(
            &layer,
            "weight gradient",
            &Batch(input, n),
            self.weight_len(),
            t.dw.len(),
        )?;
        if let Some(dx) = t.dx.as_deref() {
            check_batch(&layer, "input gradient", (input, n), dx.len())?;
        }
        Ok(out)
    }

    /// Checks every buffer's length against the batch's shapes (`lens`: the input's, the
    /// weights', the bias's and the output's, the last two named in messages as `names` say —
    /// their gradients in a backward pass); returns the output shape.
    fn check(
        &self,
        input: ImageShape,
        n: usize,
        [x, w, b, y]: [usize; 4],
        [b_name, y_name]: [&str; 2],
        scratch: Option<usize>,
    ) -> Result<ImageShape> {
        let out = self.output_shape(input)?;
        let layer = self;
        let shape = Batch(input, n);
        let (in_len, out_len) = (batch_len(&layer, n, input)?, batch_len(&layer, n, out)?);
        self.scratch_len(input)?;
        check_len(&layer, "input", &shape, in_len, x)?;
        check_len(&layer, "weights", &shape, self.weight_len(), w)?;
        check_len(&layer, b_name, &shape, self.bias_len(), b)?;
        let out_shape = Batch(out, n);
        check_len(&layer, y_name, &out_shape, out_len, y)?;
        if let Some(s) = scratch {
            check_len(&layer, "scratch", &shape, self.scratch_len(input)?, s)?;
        }
        Ok(out)
    }

    /// `Y = conv(X, W) + b` for `n` images of shape `input`, by im2col and one [`gemm`] per image
    /// (the module doc's Yₙ = W·Uₙ + b·1ᵀ). `b` is empty without bias; `scratch` holds at least
    /// [`Conv2d::scratch_len`] elements.
    ///
    /// Measured against [`Conv2d::forward_direct`] one-thread at batch 128 on this Zen 5 VM
    /// (`cargo bench --bench kernels`, group `conv`, while other work shared the machine),
    /// forward im2col vs direct: Keras conv1 0.75 vs 6.4 ms, conv2 5.5 vs 173 ms; LeNet conv1
    /// 0.85 vs 2.6 ms, conv2 1.06 vs 17 ms; the backward passes 5–25× apart likewise. The direct
    /// loops update one output row per kernel tap and are not register-blocked; im2col hands the
    /// work to the GEMM kernels (165 GFLOP/s for the Keras conv2 forward, min-of-N,
    /// `cargo bench --bench vision_min layers`, with 245 GFLOP/s for its bare products).
    pub fn forward<T: Scalar>(
        &self,
        pass: ConvForward<'_, T>,
        scratch: &mut [T],
        threads: Threads,
    ) -> Result<()> {
        let out = self.check_forward(&pass, Some(scratch.len()))?;
        let (input, n, x, w, b, y) = (pass.input, pass.n, pass.x, pass.w, pass.b, pass.y);
        let (o, k, p) = (self.out_channels, self.patch_len(), out.plane());
        #[cfg(target_arch = "x86_64")]
        {
            let frame = Frame {
                conv: self,
                input,
                out,
            };
            if avx512::Kernels::direct_fits(frame)
                && let (Some(xf), Some(wf), Some(yf)) = (as_f32(x), as_f32(w), as_f32_mut(y))
                && let Some(kernels) = avx512::Kernels::detect()
            {
                let bf = if self.bias { as_f32(b) } else { None };
                kernels.direct_forward(frame, n, xf, wf, bf, yf);
                return Ok(());
            }
        }
        if self.bias_row() {
            // [Uₙ; 1ᵀ] ((K + 1) × P) and [W b] (O × (K + 1)).
            let (u, rest) = scratch.split_at_mut((k + 1) * p);
            let wb = &mut rest[..o * (k + 1)];
            for ((row, wo), &bo) in wb.chunks_exact_mut(k + 1).zip(w.chunks_exact(k)).zip(b) {
                row[..k].copy_from_slice(wo);
                row[k] = bo;
            }
            u[k * p..].fill(T::one());
            let wm = MatView::new(wb, o, k + 1);
            for (xn, yn) in x
                .chunks_exact(input.len())
                .zip(y.chunks_exact_mut(out.len()))
                .take(n)
            {
                im2col(self, input, out, xn, &mut u[..k * p]);
                gemm(
                    yn,
                    o,
                    p,
                    Beta::Replace,
                    wm,
                    MatView::new(u, k + 1, p),
                    threads,
                );
            }
            return Ok(());
        }
        let wm = MatView::new(w, o, k);
        for (xn, yn) in x
            .chunks_exact(input.len())
            .zip(y.chunks_exact_mut(out.len()))
            .take(n)
        {
            let beta = if self.bias {
                for (row, &bo) in yn.chunks_exact_mut(p).zip(b) {
                    row.fill(bo);
                }
                Beta::Add
            } else {
                Beta::Replace
            };
            let u: &[T] = if self.pointwise() {
                xn
            } else {
                im2col(self, input, out, xn, &mut scratch[..k * p]);
                &scratch[..k * p]
            };
            gemm(yn, o, p, beta, wm, MatView::new(u, k, p), threads);
        }
        Ok(())
    }

    /// Writes (or, with `Beta::Add`, accumulates) ∂L/∂W and ∂L/∂b (`db` empty without bias), and
    /// writes ∂L/∂X if asked, given the forward input `x` and `dy` = ∂L/∂Y. By im2col: the
    /// module doc's ∂L/∂W += δYₙ·Uₙᵀ and δUₙ = Wᵀ·δYₙ, per image.
    pub fn backward<T: Scalar>(
        &self,
        pass: ConvBackward<'_, T>,
        scratch: &mut [T],
        threads: Threads,
    ) -> Result<()> {
        let out = self.check_backward(&pass, Some(scratch.len()))?;
        let (dy, input, n, x, w) = (pass.dy, pass.input, pass.n, pass.x, pass.w);
        let (dw, db, dx, beta) = (pass.dw, pass.db, pass.dx, pass.beta);
        let (o, k, p) = (self.out_channels, self.patch_len(), out.plane());
        let dw = &mut dw[..o * k];
        let db = &mut db[..self.bias_len()];
        if beta == Beta::Replace {
            dw.fill(T::zero());
            db.fill(T::zero());
        }
        #[cfg(target_arch = "x86_64")]
        {
            let frame = Frame {
                conv: self,
                input,
                out,
            };
            if dx.is_none()
                && avx512::Kernels::direct_fits(frame)
                && let (Some(xf), Some(dyf)) = (as_f32(x), as_f32(dy))
                && let Some(kernels) = avx512::Kernels::detect()
            {
                let (dwf, dbf) = (as_f32_mut(dw).expect("f32"), as_f32_mut(db).expect("f32"));
                kernels.direct_weight_grad(frame, n, xf, dyf, dwf);
                // ∂b: each image's rows of δY summed, image after image.
                for yn in dyf.chunks_exact(o * p).take(n) {
                    for (g, row) in dbf.iter_mut().zip(yn.chunks_exact(p)) {
                        *g += sum(row);
                    }
                }
                return Ok(());
            }
        }
        let wm = MatView::new(w, o, k);
        let plan = GradLayout::new::<T>(self, p);
        let k1 = plan.k1;
        let (dws, scratch) = scratch.split_at_mut(if plan.in_scratch { o * k1 } else { 0 });
        let (u_buf, du_buf) = scratch.split_at_mut(if self.pointwise() { 0 } else { k1 * p });
        if self.bias_row() {
            u_buf[k * p..].fill(T::one());
        }
        let mut dx = dx.map(|d| d.chunks_exact_mut(input.len()));
        let mut first = true;
        for (xn, dyn_) in x
            .chunks_exact(input.len())
            .zip(dy.chunks_exact(out.len()))
            .take(n)
        {
            let dym = MatView::new(dyn_, o, p);
            let u: &[T] = if self.pointwise() {
                xn
            } else {
                im2col(self, input, out, xn, &mut u_buf[..k * p]);
                &u_buf[..k1 * p]
            };
            let beta = if first { Beta::Replace } else { Beta::Add };
            plan.add_image((dyn_, u), dym, (&mut dws[..], &mut dw[..]), beta, threads);
            first = false;
            if !self.bias_row() {
                for (g, row) in db.iter_mut().zip(dyn_.chunks_exact(p)) {
                    *g += sum(row);
                }
            }
            if let Some(dxn) = dx.as_mut().and_then(|it| it.next()) {
                if self.pointwise() {
                    gemm(dxn, k, p, Beta::Replace, wm.t(), dym, threads);
                } else {
                    let du = &mut du_buf[..k * p];
                    gemm(du, k, p, Beta::Replace, wm.t(), dym, threads);
                    col2im(self, input, out, du, dxn);
                }
            }
        }
        if plan.in_scratch && n > 0 {
            plan.add_scratch_sums(dws, dw, db);
        }
        Ok(())
    }

    /// The patch matrix Uₙ (K × P, row-major) of one image `x` of shape `input` into `u` — PyTorch's
    /// `nn.functional.unfold` with this layer's kernel, stride and padding. `u` holds at least
    /// `K·P` elements.
    pub fn unfold<T: Scalar>(&self, input: ImageShape, x: &[T], u: &mut [T]) -> Result<()> {
        self.checked_patches(Patches::Unfold, input, x, u)
    }

    /// The adjoint of [`Conv2d::unfold`] — PyTorch's `nn.functional.fold`: overwrites the image
    /// `dx` (shape `input`) with the sum, over the patch entries copied from each pixel, of the
    /// entries of `du` (K × P).
    pub fn fold<T: Scalar>(&self, input: ImageShape, du: &[T], dx: &mut [T]) -> Result<()> {
        self.checked_patches(Patches::Fold, input, du, dx)
    }

    /// [`Conv2d::unfold`] (`from` the image, `to` the patch matrix) or [`Conv2d::fold`] (the
    /// other way) once the image and the patch matrix are checked to hold enough.
    fn checked_patches<T: Scalar>(
        &self,
        way: Patches,
        input: ImageShape,
        from: &[T],
        to: &mut [T],
    ) -> Result<()> {
        let out = self.output_shape(input)?;
        let kp = self.patch_len() * out.plane();
        let ((image, image_len, patch_len), (from_len, to_len)) = match way {
            Patches::Unfold => (("input", from.len(), to.len()), (input.len(), kp)),
            Patches::Fold => (("image", to.len(), from.len()), (kp, input.len())),
        };
        if image_len < input.len() || patch_len < kp {
            let (layer, shape) = (self.to_string(), input.batch(1));
            check_len(&layer, image, &shape, input.len(), image_len)?;
            check_len(&layer, "patch matrix", &shape, kp, patch_len)?;
        }
        let frame = Frame {
            conv: self,
            input,
            out,
        };
        patches(way, frame, &from[..from_len], &mut to[..to_len]);
        Ok(())
    }
}
