//! im2col and col2im for stride 1 in `f32` with AVX-512 masked loads and stores.
//!
//! A patch-matrix row is a run of short image rows (W' = 11 to 28 values at the shapes of
//! LeNet-5 and the Keras convnet). The portable loops spend more time on each row's bounds and
//! remainder than on moving its values: measured at batch 128 (`cargo bench --bench vision_min
//! parts`), unfold 1.19 ms and fold 2.35 ms for the Keras conv2 against 2.5 ms for each of its
//! products. Here each block of 16 output columns is one masked load and one masked store: the
//! mask keeps the columns inside the row and reads zeros where the window lies in the padding,
//! so padding needs no separate pass.

use std::arch::x86_64::{
    __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_reduce_add_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::{Conv2d, DwOperands, Frame};
use crate::layers::image::{ImageShape, valid_range};

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
                    let row = src0.wrapping_add(((c * kh + pk) * kw) * po + oh * wo + pw + 16 * b);
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
