//! The weight gradient ∂L/∂W = Σₙ δYₙ·Uₙᵀ: where it is summed over the images and in which
//! layout ([`GradLayout`]), and the small-product kernel.

#[cfg(target_arch = "x86_64")]
use super::avx512;
use super::{Conv2d, DwOperands};
#[cfg(target_arch = "x86_64")]
use crate::layers::image::{as_f32, as_f32_mut};
use crate::tensor::{Beta, MatView, Scalar, Threads, gemm};

/// Where and in which layout [`Conv2d::backward`] sums the weight gradient over the images, for
/// O output channels, K patch rows (K1 with the bias row) and P output pixels.
#[derive(Clone, Copy)]
pub(super) struct GradLayout {
    pub(super) o: usize,
    pub(super) k: usize,
    pub(super) k1: usize,
    pub(super) p: usize,
    pub(super) bias_row: bool,
    /// A few patch rows (a first layer's): the weight gradient by the vector kernel, which
    /// writes the O × K layout.
    pub(super) small: bool,
    /// (∂L/∂W)ᵀ (K × O) rather than ∂L/∂W (see [`Conv2d::transposed_weight_grad`]).
    pub(super) transposed: bool,
    /// With the bias row, [∂L/∂W ∂L/∂b] (or its transpose) is summed in scratch over the
    /// images and added to ∂L/∂W and ∂L/∂b at the end; so is (∂L/∂W)ᵀ without it.
    pub(super) in_scratch: bool,
}

impl GradLayout {
    /// The layout for `conv`'s weight gradient with `p` output pixels per image.
    #[inline]
    pub(super) fn new<T: Scalar>(conv: &Conv2d, p: usize) -> Self {
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
    pub(super) fn add_image<T: Scalar>(
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
    pub(super) fn add_scratch_sums<T: Scalar>(self, dws: &[T], dw: &mut [T], db: &mut [T]) {
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
pub(super) fn small_weight_grad<T: Scalar>(k1: usize, p: usize) -> bool {
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

/// `out = dy·uᵀ` (or `+=`, with `Beta::Add`): `dy` is O × P, `u` is K1 × P, `out` O × K1 — the
/// weight gradient of one image when K1 is small (a first layer: K1 = 10 for a 3×3 kernel on one
/// channel with its bias row). The GEMM kernels vectorise along O or K1, both short here
/// (measured 74 GFLOP/s for the Keras conv1); this kernel vectorises along P instead, with a
/// register tile of 2 rows of δY by 8 rows of U.
pub(super) fn weight_grad_small<T: Scalar>(ops: DwOperands<'_, T>, out: &mut [T], beta: Beta) {
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
