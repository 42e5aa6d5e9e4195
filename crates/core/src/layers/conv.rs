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

use std::fmt;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::layers::image::{
    Batch, ImageShape, batch_len, check_batch, check_len, sum, valid_range, window_counts,
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

/// Kernel tap (p, q) of a convolution from images of shape `input` to `out`: the output rows
/// `rows` and columns `cols` whose input pixel (oh·sh + p − ph, ow·sw + q − pw) lies inside the
/// image (the others read padding), and `iw0`, the input column of output column `cols.start`.
/// The one place the convolution's index arithmetic lives: im2col, col2im and the direct loops
/// all walk these ([`each_tap`]).
#[derive(Clone, Debug)]
struct Tap {
    p: usize,
    q: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    iw0: usize,
    /// The vertical stride and padding, for [`Tap::input_row`].
    sh: usize,
    ph: usize,
}

impl Tap {
    /// The input row that output row `oh` (in `rows`) reads through this tap.
    #[inline(always)]
    fn input_row(&self, oh: usize) -> usize {
        oh * self.sh + self.p - self.ph
    }
}

/// Calls `f` with each of the kh·kw taps of one input channel, in the order of the patch
/// matrix's rows (p, then q). Plain loops and a closure rather than an iterator: the calls
/// inline into the kernels (measured: an iterator of taps cost im2col about 12 % more
/// instructions at LeNet-5's shapes).
#[inline(always)]
fn each_tap(conv: &Conv2d, input: ImageShape, out: ImageShape, mut f: impl FnMut(&Tap)) {
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
fn taps(
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
fn axpy_strided<T: Scalar>(a: T, x: &[T], start: usize, stride: usize, y: &mut [T]) {
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
fn dot_strided<T: Scalar>(d: &[T], x: &[T], start: usize, stride: usize) -> T {
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
fn scatter_strided<T: Scalar>(a: T, d: &[T], x: &mut [T], start: usize, stride: usize) {
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

/// Uₙ (K × P) from one image: row (c, p, q) holds X[c, i·sh + p − ph, j·sw + q − pw] for every
/// output position (i, j), 0 where that falls in the padding.
fn im2col<T: Scalar>(conv: &Conv2d, input: ImageShape, out: ImageShape, x: &[T], u: &mut [T]) {
    patches(Patches::Unfold, Frame { conv, input, out }, x, u)
}

/// ∂L/∂Xₙ = col2im(δUₙ): overwrites `dx` (one image) with the sum, over the patch entries copied
/// from each pixel by [`im2col`], of their gradients.
fn col2im<T: Scalar>(conv: &Conv2d, input: ImageShape, out: ImageShape, du: &[T], dx: &mut [T]) {
    patches(Patches::Fold, Frame { conv, input, out }, du, dx)
}

/// One convolution over images of one shape: the layer, its input and its output image shape —
/// what the patch kernels read.
#[derive(Clone, Copy)]
struct Frame<'a> {
    conv: &'a Conv2d,
    input: ImageShape,
    out: ImageShape,
}

/// Which way [`patches`] moves values between an image and its patch matrix.
#[derive(Clone, Copy)]
enum Patches {
    /// im2col: image → patch matrix.
    Unfold,
    /// col2im: patch matrix → image (the adjoint, summing).
    Fold,
}

/// [`im2col`] (`from` the image, `to` the patch matrix) or [`col2im`] (the other way): by the
/// AVX-512 kernels for `f32` when they take this layer and input, else by the portable loops.
fn patches<T: Scalar>(way: Patches, frame: Frame<'_>, from: &[T], to: &mut [T]) {
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
fn im2col_generic<T: Scalar>(frame: Frame<'_>, x: &[T], u: &mut [T]) {
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
fn col2im_generic<T: Scalar>(frame: Frame<'_>, du: &[T], dx: &mut [T]) {
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

/// Where and in which layout [`Conv2d::backward`] sums the weight gradient over the images, for
/// O output channels, K patch rows (K1 with the bias row) and P output pixels.
#[derive(Clone, Copy)]
struct GradLayout {
    o: usize,
    k: usize,
    k1: usize,
    p: usize,
    bias_row: bool,
    /// A few patch rows (a first layer's): the weight gradient by the vector kernel, which
    /// writes the O × K layout.
    small: bool,
    /// (∂L/∂W)ᵀ (K × O) rather than ∂L/∂W (see [`Conv2d::transposed_weight_grad`]).
    transposed: bool,
    /// With the bias row, [∂L/∂W ∂L/∂b] (or its transpose) is summed in scratch over the
    /// images and added to ∂L/∂W and ∂L/∂b at the end; so is (∂L/∂W)ᵀ without it.
    in_scratch: bool,
}

impl GradLayout {
    /// The layout for `conv`'s weight gradient with `p` output pixels per image.
    #[inline]
    fn new<T: Scalar>(conv: &Conv2d, p: usize) -> Self {
        let (o, k, bias_row) = (conv.out_channels, conv.patch_len(), conv.bias_row());
        let k1 = k + usize::from(bias_row);
        let small = small_weight_grad::<T>(k1, p);
        let transposed = conv.transposed_weight_grad() && !small;
        let in_scratch = bias_row || transposed;
        GradLayout {
            o,
            k,
            k1,
            p,
            bias_row,
            small,
            transposed,
            in_scratch,
        }
    }

    /// Adds one image's weight gradient δYₙ·Uₙᵀ (`dy` viewed as `dym`, `u` its patch matrix)
    /// into the scratch sums `dws` (written, with `Beta::Replace`) or straight into `dw`.
    #[inline]
    fn add_image<T: Scalar>(
        self,
        (dy, u): (&[T], &[T]),
        dym: MatView<'_, T>,
        (dws, dw): (&mut [T], &mut [T]),
        beta: Beta,
        threads: Threads,
    ) {
        let GradLayout { o, k, k1, p, .. } = self;
        let um = MatView::new(u, k1, p);
        match (self.in_scratch, self.transposed) {
            _ if self.small => {
                let (out, beta, kk) = if self.in_scratch {
                    (dws, beta, k1)
                } else {
                    (dw, Beta::Add, k)
                };
                let ops = DwOperands {
                    dy,
                    u,
                    o,
                    k1: kk,
                    p,
                };
                weight_grad_small(ops, out, beta);
            }
            (true, true) => gemm(dws, k1, o, beta, um, dym.t(), threads),
            (true, false) => gemm(dws, o, k1, beta, dym, um.t(), threads),
            (false, _) => gemm(dw, o, k, Beta::Add, dym, um.t(), threads),
        }
    }

    /// Adds the scratch sums `dws` back into the O × K layout of ∂L/∂W (and ∂L/∂b from column K).
    #[inline]
    fn add_scratch_sums<T: Scalar>(self, dws: &[T], dw: &mut [T], db: &mut [T]) {
        let GradLayout { o, k, k1, .. } = self;
        let at = |r: usize, c: usize| {
            if self.transposed {
                dws[c * o + r]
            } else {
                dws[r * k1 + c]
            }
        };
        for (r, row) in dw.chunks_exact_mut(k).enumerate() {
            for (c, g) in row.iter_mut().enumerate() {
                *g += at(r, c);
            }
        }
        if self.bias_row {
            for (r, g) in db.iter_mut().enumerate() {
                *g += at(r, k);
            }
        }
    }
}

/// Whether [`weight_grad_small`] takes a weight gradient with `k1` patch rows of `p` columns:
/// `f32` on a CPU with AVX-512, at most 32 rows.
fn small_weight_grad<T: Scalar>(k1: usize, p: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        k1 <= 32
            && p >= 16
            && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
            && avx512::Kernels::detect().is_some()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (k1, p, std::any::TypeId::of::<T>());
        false
    }
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

/// `out = dy·uᵀ` (or `+=`, with `Beta::Add`): `dy` is O × P, `u` is K1 × P, `out` O × K1 — the
/// weight gradient of one image when K1 is small (a first layer: K1 = 10 for a 3×3 kernel on one
/// channel with its bias row). The GEMM kernels vectorise along O or K1, both short here
/// (measured 74 GFLOP/s for the Keras conv1); this kernel vectorises along P instead, with a
/// register tile of 2 rows of δY by 8 rows of U.
fn weight_grad_small<T: Scalar>(ops: DwOperands<'_, T>, out: &mut [T], beta: Beta) {
    let DwOperands { dy, u, o, k1, p } = ops;
    #[cfg(target_arch = "x86_64")]
    if let (Some(dy), Some(u), Some(out), Some(kernels)) = (
        as_f32(dy),
        as_f32(u),
        as_f32_mut(out),
        avx512::Kernels::detect(),
    ) {
        let ops = DwOperands { dy, u, o, k1, p };
        kernels.weight_grad(ops, out, beta == Beta::Add);
        return;
    }
    gemm(
        out,
        o,
        k1,
        beta,
        MatView::new(dy, o, p),
        MatView::new(u, k1, p).t(),
        Threads::ONE,
    );
}

/// im2col and col2im for stride 1 in `f32` with AVX-512 masked loads and stores.
///
/// A patch-matrix row is a run of short image rows (W' = 11 to 28 values at the shapes of
/// LeNet-5 and the Keras convnet). The portable loops spend more time on each row's bounds and
/// remainder than on moving its values: measured at batch 128 (`cargo bench --bench vision_min
/// parts`), unfold 1.19 ms and fold 2.35 ms for the Keras conv2 against 2.5 ms for each of its
/// products. Here each block of 16 output columns is one masked load and one masked store: the
/// mask keeps the columns inside the row and reads zeros where the window lies in the padding,
/// so padding needs no separate pass.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
        _mm512_reduce_add_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::{Conv2d, DwOperands, Frame, ImageShape, valid_range};

    /// Proof that the CPU has AVX-512F (checked once per call, cheaply cached by std).
    #[derive(Clone, Copy)]
    pub(super) struct Kernels(());

    /// Lanes `lo..hi` of the block of 16 columns starting at `start` (clipped to the block).
    #[inline(always)]
    fn lanes(start: usize, lo: usize, hi: usize) -> __mmask16 {
        let a = lo.clamp(start, start + 16) - start;
        let b = hi.clamp(start, start + 16) - start;
        let upto = |k: usize| if k >= 16 { 0xffff } else { (1u32 << k) - 1 };
        (upto(b) & !upto(a)) as __mmask16
    }

    /// Rows of at most this many blocks of 16 (64 pixels) take the vector path.
    const MAX_BLOCKS: usize = 4;
    /// Kernels at most this wide take the vector path.
    const MAX_KW: usize = 16;

    impl Kernels {
        pub(super) fn detect() -> Option<Kernels> {
            std::arch::is_x86_feature_detected!("avx512f").then_some(Kernels(()))
        }

        /// Whether [`Kernels::unfold`] and [`Kernels::fold`] take this layer and input.
        pub(super) fn fits(frame: Frame<'_>) -> bool {
            let Frame { conv, input, out } = frame;
            conv.stride == [1, 1]
                && conv.kernel[1] <= MAX_KW
                && input.width <= 16 * MAX_BLOCKS
                && out.width <= 16 * MAX_BLOCKS
        }

        /// im2col (stride 1) of one image `x` into `u` (K × P).
        pub(super) fn unfold(self, frame: Frame<'_>, x: &[f32], u: &mut [f32]) {
            let Frame { conv, input, out } = frame;
            let kp = conv.patch_len() * out.plane();
            assert!(x.len() >= input.len() && u.len() >= kp && Kernels::fits(frame));
            // SAFETY: AVX-512F is present (a `Kernels` exists); the lengths are checked above.
            unsafe { unfold(conv, input, out, &x[..input.len()], &mut u[..kp]) }
        }

        /// col2im (stride 1): overwrites the image `dx` with the sums of `du`'s entries.
        pub(super) fn fold(self, frame: Frame<'_>, du: &[f32], dx: &mut [f32]) {
            let Frame { conv, input, out } = frame;
            let kp = conv.patch_len() * out.plane();
            assert!(dx.len() >= input.len() && du.len() >= kp && Kernels::fits(frame));
            // SAFETY: as in `unfold`.
            unsafe { fold(conv, input, out, &du[..kp], &mut dx[..input.len()]) }
        }
    }

    /// Output channels a direct pass holds in registers at once, for `blocks` blocks of 16
    /// columns per output row (at most 24 accumulators).
    fn group_max(blocks: usize) -> usize {
        match blocks {
            1 | 2 => 12,
            3 => 8,
            _ => 6,
        }
    }

    impl Kernels {
        /// Whether [`Kernels::direct_forward`] takes this layer and input: one input channel
        /// (a first layer, whose patch matrix is K copies of the image), stride 1.
        pub(super) fn direct_fits(frame: Frame<'_>) -> bool {
            frame.conv.in_channels == 1 && Kernels::fits(frame)
        }

        /// `Y = W ∗ X + b` for `n` one-channel images `x` without a patch matrix: each output
        /// row of a group of channels is summed in registers over the K taps, each tap's input
        /// row read once (masked: the padding reads zeros) for every channel of the group.
        /// The same sums as [W b]·[U; 1ᵀ], in another order (bias first, then the taps in
        /// order), so equal to rounding; it writes O·P values per image where the patch
        /// matrix route writes K·P more (measured on the Intel Xeon VM, whose stores are slow).
        #[allow(clippy::too_many_arguments)]
        pub(super) fn direct_forward(
            self,
            frame: Frame<'_>,
            n: usize,
            x: &[f32],
            w: &[f32],
            b: Option<&[f32]>,
            y: &mut [f32],
        ) {
            let Frame { conv, input, out } = frame;
            let (o, k, p) = (conv.out_channels, conv.patch_len(), out.plane());
            assert!(Kernels::direct_fits(frame) && k > 0 && o > 0);
            assert!(x.len() >= n * input.len() && y.len() >= n * o * p && w.len() >= o * k);
            assert!(b.is_none_or(|b| b.len() >= o));
            let blocks = out.width.div_ceil(16);
            let groups = o.div_ceil(group_max(blocks));
            let g = o.div_ceil(groups);
            macro_rules! dispatch {
                ($(($bl:literal, $gr:literal)),*) => {
                    match (blocks, g) {
                        $(($bl, $gr) => direct_image::<$bl, $gr>,)*
                        _ => unreachable!("{blocks} blocks of {g} channels"),
                    }
                };
            }
            let kernel = dispatch!(
                (1, 1),
                (1, 2),
                (1, 3),
                (1, 4),
                (1, 5),
                (1, 6),
                (1, 7),
                (1, 8),
                (1, 9),
                (1, 10),
                (1, 11),
                (1, 12),
                (2, 1),
                (2, 2),
                (2, 3),
                (2, 4),
                (2, 5),
                (2, 6),
                (2, 7),
                (2, 8),
                (2, 9),
                (2, 10),
                (2, 11),
                (2, 12),
                (3, 1),
                (3, 2),
                (3, 3),
                (3, 4),
                (3, 5),
                (3, 6),
                (3, 7),
                (3, 8),
                (4, 1),
                (4, 2),
                (4, 3),
                (4, 4),
                (4, 5),
                (4, 6)
            );
            for (xn, yn) in x
                .chunks_exact(input.len())
                .zip(y.chunks_exact_mut(o * p))
                .take(n)
            {
                let mut o0 = 0;
                while o0 < o {
                    let count = g.min(o - o0);
                    // SAFETY: AVX-512F is present (a `Kernels` exists); `xn` is one image of
                    // shape `input`, `yn` holds O·P outputs, `w` O·K weights and `b` O biases
                    // (asserted above), and channels o0..o0 + count are below O.
                    unsafe { kernel(conv, input, out, xn, w, b, yn, o0, count) }
                    o0 += count;
                }
            }
        }
    }

    impl Kernels {
        /// `∂L/∂W += Σₙ δYₙ·Uₙᵀ` for `n` one-channel images without their patch matrices: the
        /// weight of tap (p, q) and channel o gathers δY[o, h, w]·X[h + p − ph, w + q − pw]
        /// along each output row, for a tile of taps and two channels in registers (the layer's
        /// input row read masked, as [`Kernels::direct_forward`] does). Adds into `dw` (O × K).
        pub(super) fn direct_weight_grad(
            self,
            frame: Frame<'_>,
            n: usize,
            x: &[f32],
            dy: &[f32],
            dw: &mut [f32],
        ) {
            let Frame { conv, input, out } = frame;
            let (o, k, p) = (conv.out_channels, conv.patch_len(), out.plane());
            assert!(Kernels::direct_fits(frame) && k > 0 && o > 0);
            assert!(x.len() >= n * input.len() && dy.len() >= n * o * p && dw.len() >= o * k);
            let tiles = k.div_ceil(8);
            let r_len = k.div_ceil(tiles);
            macro_rules! dispatch {
                ($($r:literal),*) => {
                    match r_len {
                        $($r => direct_dw_tile::<$r>,)*
                        _ => unreachable!("a tile of {r_len} taps"),
                    }
                };
            }
            let kernel = dispatch!(1, 2, 3, 4, 5, 6, 7, 8);
            for (xn, dyn_) in x
                .chunks_exact(input.len())
                .zip(dy.chunks_exact(o * p))
                .take(n)
            {
                let mut t0 = 0;
                while t0 < k {
                    // SAFETY: AVX-512F is present; `xn` is one image, `dyn_` O·P values, `dw`
                    // O·K (asserted above); taps t0.. of the tile are below K (the kernel
                    // clamps them).
                    unsafe { kernel(conv, input, out, xn, dyn_, dw, t0) }
                    t0 += r_len;
                }
            }
        }
    }

    /// Taps `t0..t0 + R` (those below K) of [`Kernels::direct_weight_grad`] for one image.
    ///
    /// # Safety
    /// AVX-512F must be present; `x` is an image of shape `input` with one channel, `dy` holds
    /// O·P values, `dw` O·K, and [`Kernels::direct_fits`] holds.
    #[target_feature(enable = "avx512f")]
    unsafe fn direct_dw_tile<const R: usize>(
        conv: &Conv2d,
        input: ImageShape,
        out: ImageShape,
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        t0: usize,
    ) {
        let ([kh, kw], [ph, pw]) = (conv.kernel, conv.padding);
        let (wi, wo, p, o, k) = (
            input.width,
            out.width,
            out.plane(),
            conv.out_channels,
            kh * kw,
        );
        let count = R.min(k - t0);
        // Tap t0 + t: the output rows whose input row oy + pk − ph is inside, the input's
        // offset from position (oy, 0) of the output, and the masks of its columns per block.
        let mut rows = [(0usize, 0usize); R];
        let mut offset = [0isize; R];
        let mut masks = [[0 as __mmask16; MAX_BLOCKS]; R];
        for t in 0..count {
            let (pk, q) = ((t0 + t) / kw, (t0 + t) % kw);
            rows[t] = valid_range(out.height, input.height, 1, pk, ph);
            offset[t] = (pk as isize - ph as isize) * wi as isize + q as isize - pw as isize;
            let (lo, hi) = valid_range(wo, wi, 1, q, pw);
            for (bl, mb) in masks[t].iter_mut().enumerate() {
                *mb = lanes(16 * bl, lo, hi);
            }
        }
        let blocks = wo.div_ceil(16);
        let mut ds = [0 as __mmask16; MAX_BLOCKS];
        for (bl, m) in ds.iter_mut().enumerate() {
            *m = lanes(16 * bl, 0, wo);
        }
        let (xp, dp) = (x.as_ptr(), dy.as_ptr());
        let mut oi = 0;
        while oi < o {
            let two = oi + 1 < o;
            let (o1, o2) = (oi, if two { oi + 1 } else { oi });
            let mut acc0 = [_mm512_setzero_ps(); R];
            let mut acc1 = [_mm512_setzero_ps(); R];
            for oy in 0..out.height {
                let d0 = dp.wrapping_add(o1 * p + oy * wo);
                let d1 = dp.wrapping_add(o2 * p + oy * wo);
                let at = xp.wrapping_add(oy * wi);
                for bl in 0..blocks {
                    // SAFETY: the lanes of the mask are columns 0..W' of these rows of δY.
                    let (a, b) = unsafe {
                        (
                            _mm512_maskz_loadu_ps(ds[bl], d0.wrapping_add(16 * bl)),
                            _mm512_maskz_loadu_ps(ds[bl], d1.wrapping_add(16 * bl)),
                        )
                    };
                    for t in 0..R {
                        // A tap whose input row is in the padding adds nothing on this row.
                        if t >= count || oy < rows[t].0 || oy >= rows[t].1 {
                            continue;
                        }
                        // SAFETY: the lanes of the mask read columns 0..W of the input row
                        // oy + pk − ph, which is inside the image on the tap's rows.
                        let v = unsafe {
                            _mm512_maskz_loadu_ps(
                                masks[t][bl],
                                at.wrapping_offset(offset[t]).wrapping_add(16 * bl),
                            )
                        };
                        acc0[t] = _mm512_fmadd_ps(a, v, acc0[t]);
                        acc1[t] = _mm512_fmadd_ps(b, v, acc1[t]);
                    }
                }
            }
            for t in 0..count {
                dw[o1 * k + t0 + t] += _mm512_reduce_add_ps(acc0[t]);
                if two {
                    dw[o2 * k + t0 + t] += _mm512_reduce_add_ps(acc1[t]);
                }
            }
            oi += 2;
        }
    }

    /// Channels `o0..o0 + count` (`count ≤ G`) of one image's direct convolution, `B` blocks of
    /// 16 columns per output row (see [`Kernels::direct_forward`]).
    ///
    /// # Safety
    /// AVX-512F must be present; `x` is an image of shape `input` with one channel, `y` holds
    /// O·P values, `w` O·K, `b` (if any) O, `o0 + count ≤ O`, and [`Kernels::direct_fits`] holds.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn direct_image<const B: usize, const G: usize>(
        conv: &Conv2d,
        input: ImageShape,
        out: ImageShape,
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
        o0: usize,
        count: usize,
    ) {
        let ([kh, kw], [ph, pw]) = (conv.kernel, conv.padding);
        let (wi, wo, p, k) = (input.width, out.width, out.plane(), kh * kw);
        // masks[q][b]: the output columns of block b whose input column j + q − pw is inside.
        let mut masks = [[0 as __mmask16; B]; MAX_KW];
        for (q, mq) in masks.iter_mut().enumerate().take(kw) {
            let (lo, hi) = valid_range(wo, wi, 1, q, pw);
            for (bl, m) in mq.iter_mut().enumerate() {
                *m = lanes(16 * bl, lo, hi);
            }
        }
        let mut store = [0 as __mmask16; B];
        for (bl, m) in store.iter_mut().enumerate() {
            *m = lanes(16 * bl, 0, wo);
        }
        // Channel o0 + c for c < G (the group's last channel again beyond `count`, not stored).
        let ch = |c: usize| o0 + c.min(count - 1);
        for oy in 0..out.height {
            let mut acc = [[_mm512_setzero_ps(); B]; G];
            if let Some(b) = b {
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = [_mm512_set1_ps(b[ch(c)]); B];
                }
            }
            for pk in 0..kh {
                // Input row oy + pk − ph; a row in the padding adds nothing.
                let Some(iy) = (oy + pk).checked_sub(ph).filter(|&r| r < input.height) else {
                    continue;
                };
                let row = x[iy * wi..(iy + 1) * wi].as_ptr();
                for (q, mq) in masks.iter().enumerate().take(kw) {
                    let mut v = [_mm512_setzero_ps(); B];
                    for (bl, vb) in v.iter_mut().enumerate() {
                        // SAFETY: the lanes of the mask read input columns 0..W of row iy;
                        // masked-off lanes are not read.
                        *vb = unsafe {
                            _mm512_maskz_loadu_ps(
                                mq[bl],
                                row.wrapping_add(16 * bl + q).wrapping_sub(pw),
                            )
                        };
                    }
                    let tap = pk * kw + q;
                    for (c, a) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(w[ch(c) * k + tap]);
                        for (ab, &vb) in a.iter_mut().zip(&v) {
                            *ab = _mm512_fmadd_ps(wv, vb, *ab);
                        }
                    }
                }
            }
            for (c, a) in acc.iter().enumerate().take(count) {
                let to = (o0 + c) * p + oy * wo;
                let dst = y[to..to + wo].as_mut_ptr();
                for (bl, &ab) in a.iter().enumerate() {
                    // SAFETY: the lanes of the mask are columns 0..W' of this output row.
                    unsafe { _mm512_mask_storeu_ps(dst.wrapping_add(16 * bl), store[bl], ab) }
                }
            }
        }
    }

    impl Kernels {
        /// `out (+)= dy·uᵀ`, `dy` O × P, `u` K1 × P, `out` O × K1 (see `weight_grad_small`).
        pub(super) fn weight_grad(self, ops: DwOperands<'_, f32>, out: &mut [f32], add: bool) {
            let DwOperands { dy, u, o, k1, p } = ops;
            assert!(dy.len() >= o * p && u.len() >= k1 * p && out.len() >= o * k1);
            if !add {
                out[..o * k1].fill(0.0);
            }
            let mut r = 0;
            while r < k1 {
                let rows = (k1 - r).min(8);
                // SAFETY: AVX-512F is present; rows r..r + rows of U and the whole of δY and
                // `out` are inside the slices (checked above).
                unsafe {
                    match rows {
                        8 => dw_tile::<8>(ops, out, r),
                        7 => dw_tile::<7>(ops, out, r),
                        6 => dw_tile::<6>(ops, out, r),
                        5 => dw_tile::<5>(ops, out, r),
                        4 => dw_tile::<4>(ops, out, r),
                        3 => dw_tile::<3>(ops, out, r),
                        2 => dw_tile::<2>(ops, out, r),
                        _ => dw_tile::<1>(ops, out, r),
                    }
                }
                r += rows;
            }
        }
    }

    /// `out[o, r..r + R] += Σ_j dy[o, j]·u[r.., j]` for every o, two rows of δY at a time: a
    /// 2 × R tile of accumulators, each a vector of 16 partial sums along P.
    ///
    /// # Safety
    /// AVX-512F must be present; `dy` holds O × P, `u` K1 × P with `r + R ≤ K1`, `out` O × K1.
    #[target_feature(enable = "avx512f")]
    unsafe fn dw_tile<const R: usize>(ops: DwOperands<'_, f32>, out: &mut [f32], r: usize) {
        let DwOperands { dy, u, o, k1, p } = ops;
        let up = u[r * p..(r + R) * p].as_ptr();
        let tail = lanes(p / 16 * 16, 0, p);
        let mut oi = 0;
        while oi < o {
            let two = oi + 1 < o;
            let d0 = dy[oi * p..(oi + 1) * p].as_ptr();
            let d1 = if two {
                dy[(oi + 1) * p..(oi + 2) * p].as_ptr()
            } else {
                d0
            };
            let mut acc0 = [_mm512_setzero_ps(); R];
            let mut acc1 = [_mm512_setzero_ps(); R];
            let mut j = 0;
            while j < p {
                let m = if j + 16 <= p { 0xffff } else { tail };
                // SAFETY: the lanes of `m` are columns j.. below P of these rows.
                unsafe {
                    let a = _mm512_maskz_loadu_ps(m, d0.add(j));
                    let b = _mm512_maskz_loadu_ps(m, d1.add(j));
                    for t in 0..R {
                        let v = _mm512_maskz_loadu_ps(m, up.add(t * p + j));
                        acc0[t] = _mm512_fmadd_ps(a, v, acc0[t]);
                        acc1[t] = _mm512_fmadd_ps(b, v, acc1[t]);
                    }
                }
                j += 16;
            }
            for t in 0..R {
                out[oi * k1 + r + t] += _mm512_reduce_add_ps(acc0[t]);
                if two {
                    out[(oi + 1) * k1 + r + t] += _mm512_reduce_add_ps(acc1[t]);
                }
            }
            oi += 2;
        }
    }

    /// # Safety
    /// AVX-512F must be present; `x` is an image of shape `input`, `u` holds exactly K·P
    /// values, and [`Kernels::fits`] holds.
    #[target_feature(enable = "avx512f")]
    unsafe fn unfold(conv: &Conv2d, input: ImageShape, out: ImageShape, x: &[f32], u: &mut [f32]) {
        let ([kh, kw], [ph, pw]) = (conv.kernel, conv.padding);
        let (wi, wo) = (input.width, out.width);
        let blocks = wo.div_ceil(16);
        let kp = u.len();
        let mut at = 0;
        for c in 0..input.channels {
            let plane = x[c * input.plane()..].as_ptr();
            for pk in 0..kh {
                let (oh_lo, oh_hi) = valid_range(out.height, input.height, 1, pk, ph);
                for q in 0..kw {
                    // Column j of an output row reads input column j + q − pw, inside lo..hi.
                    let (lo, hi) = valid_range(wo, wi, 1, q, pw);
                    let mut masks = [0 as __mmask16; MAX_BLOCKS];
                    for (b, m) in masks.iter_mut().enumerate().take(blocks) {
                        *m = lanes(16 * b, lo, hi);
                    }
                    // Rows whose window lies in the top or bottom padding are zeros (written
                    // before and after the rows below, whose stores run past their end).
                    u[at..at + oh_lo * wo].fill(0.0);
                    let base = u.as_mut_ptr();
                    let mut src = plane
                        .wrapping_add((oh_lo + pk).wrapping_sub(ph).wrapping_mul(wi) + q)
                        .wrapping_sub(pw);
                    let mut to = at + oh_lo * wo;
                    for _ in oh_lo..oh_hi {
                        for (b, &m) in masks.iter().enumerate().take(blocks) {
                            // SAFETY: the lanes of `m` read input columns 0..W of an input row
                            // inside the image; masked-off lanes are not read.
                            let v = unsafe { _mm512_maskz_loadu_ps(m, src.wrapping_add(16 * b)) };
                            // The store runs past the row into the next one, which is written
                            // after it; only at the end of U is it cut.
                            let t = to + 16 * b;
                            // SAFETY: `t + 16 ≤ K·P`, or the lanes of the mask are below K·P.
                            unsafe {
                                if t + 16 <= kp {
                                    _mm512_storeu_ps(base.add(t), v);
                                } else {
                                    _mm512_mask_storeu_ps(base.add(t), lanes(t, t, kp), v);
                                }
                            }
                        }
                        src = src.wrapping_add(wi);
                        to += wo;
                    }
                    u[at + oh_hi * wo..at + out.plane()].fill(0.0);
                    at += out.plane();
                }
            }
        }
    }

    /// # Safety
    /// As for [`unfold`], with `dx` exactly an image of shape `input` and `du` exactly K·P
    /// values.
    ///
    /// Each block of 16 pixels of an input row is summed in a register over the (p, q) taps
    /// that read it — δU[(c,p,q), h + ph − p, w + pw − q] — and stored once: adding into the
    /// image row by row instead stalls each load on the masked store just before it.
    #[target_feature(enable = "avx512f")]
    unsafe fn fold(conv: &Conv2d, input: ImageShape, out: ImageShape, du: &[f32], dx: &mut [f32]) {
        let ([kh, kw], [ph, pw]) = (conv.kernel, conv.padding);
        let (wi, wo, po) = (input.width, out.width, out.plane());
        let blocks = wi.div_ceil(16);
        // masks[q][b]: the pixels w of block b whose output column w + pw − q is in 0..W'.
        let mut masks = [[0 as __mmask16; MAX_BLOCKS]; MAX_KW];
        for (q, mq) in masks.iter_mut().enumerate().take(kw) {
            let (lo, hi) = (q.saturating_sub(pw), (wo + q).saturating_sub(pw).min(wi));
            for (b, m) in mq.iter_mut().enumerate().take(blocks) {
                *m = lanes(16 * b, lo, hi);
            }
        }
        let store = {
            let mut s = [0 as __mmask16; MAX_BLOCKS];
            for (b, m) in s.iter_mut().enumerate().take(blocks) {
                *m = lanes(16 * b, 0, wi);
            }
            s
        };
        let src0 = du.as_ptr();
        for c in 0..input.channels {
            for h in 0..input.height {
                // Output rows oh = h + ph − p inside 0..H', for p in p_lo..p_hi.
                let p_lo = (h + ph + 1).saturating_sub(out.height);
                let p_hi = (h + ph + 1).min(kh);
                let dxrow = dx[(c * input.height + h) * wi..].as_mut_ptr();
                for b in 0..blocks {
                    // Two sums (even and odd q), so that the adds need not wait on each other.
                    let (mut acc, mut odd) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    for pk in p_lo..p_hi {
                        let oh = h + ph - pk;
                        // Pixel 16b + lane of row h, tap (pk, q), sits at column
                        // 16b + lane + pw − q of row oh of δU's row (c, pk, q).
                        let row =
                            src0.wrapping_add(((c * kh + pk) * kw) * po + oh * wo + pw + 16 * b);
                        let load = |q: usize| {
                            let src = row.wrapping_add(q * po).wrapping_sub(q);
                            // SAFETY: the lanes of the mask read columns 0..W' of this row of δU.
                            unsafe { _mm512_maskz_loadu_ps(masks[q][b], src) }
                        };
                        let mut q = 0;
                        while q + 1 < kw {
                            acc = _mm512_add_ps(acc, load(q));
                            odd = _mm512_add_ps(odd, load(q + 1));
                            q += 2;
                        }
                        if q < kw {
                            acc = _mm512_add_ps(acc, load(q));
                        }
                    }
                    let acc = _mm512_add_ps(acc, odd);
                    // SAFETY: the lanes of the mask are columns 0..W of this image row.
                    unsafe { _mm512_mask_storeu_ps(dxrow.add(16 * b), store[b], acc) };
                }
            }
        }
    }
}
