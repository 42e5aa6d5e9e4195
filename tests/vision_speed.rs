//! The fast paths of the vision kernels against their definitions: `Conv2d::unfold` (im2col)
//! against the formula U[(c,p,q), (i,j)] = X[c, i·sh + p − ph, j·sw + q − pw] (0 in the
//! padding), written as a plain loop here; `Conv2d::fold` (col2im) as its adjoint,
//! ⟨unfold(x), u⟩ = ⟨x, fold(u)⟩, and against a scatter loop; in f32 (which takes the AVX-512
//! kernels where the CPU has them) and in f64 (the portable loops), over shapes that cover one and
//! several blocks of 16 columns, padding wider than the kernel's reach, strides and images wider
//! than the vector path takes.

use downhill::layers::{Conv2d, ImageShape};
use downhill::tensor::Scalar;

fn seq<T: Scalar>(n: usize, a: f64) -> Vec<T> {
    (0..n).map(|i| T::c(((i as f64 + 1.0) * a).sin())).collect()
}

/// U by the formula, in f64.
fn unfold_ref(conv: &Conv2d, input: ImageShape, x: &[f64]) -> Vec<f64> {
    let out = conv.output_shape(input).unwrap();
    let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
    let mut u = vec![0.0; conv.patch_len() * out.plane()];
    for c in 0..input.channels {
        for p in 0..kh {
            for q in 0..kw {
                let r = (c * kh + p) * kw + q;
                for i in 0..out.height {
                    for j in 0..out.width {
                        let h = (i * sh + p) as isize - ph as isize;
                        let w = (j * sw + q) as isize - pw as isize;
                        if h >= 0
                            && w >= 0
                            && (h as usize) < input.height
                            && (w as usize) < input.width
                        {
                            u[r * out.plane() + i * out.width + j] =
                                x[(c * input.height + h as usize) * input.width + w as usize];
                        }
                    }
                }
            }
        }
    }
    u
}

/// fold by scattering each entry of δU back to its pixel, in f64.
fn fold_ref(conv: &Conv2d, input: ImageShape, du: &[f64]) -> Vec<f64> {
    let out = conv.output_shape(input).unwrap();
    let ([kh, kw], [sh, sw], [ph, pw]) = (conv.kernel, conv.stride, conv.padding);
    let mut dx = vec![0.0; input.len()];
    for c in 0..input.channels {
        for p in 0..kh {
            for q in 0..kw {
                let r = (c * kh + p) * kw + q;
                for i in 0..out.height {
                    for j in 0..out.width {
                        let h = (i * sh + p) as isize - ph as isize;
                        let w = (j * sw + q) as isize - pw as isize;
                        if h >= 0
                            && w >= 0
                            && (h as usize) < input.height
                            && (w as usize) < input.width
                        {
                            dx[(c * input.height + h as usize) * input.width + w as usize] +=
                                du[r * out.plane() + i * out.width + j];
                        }
                    }
                }
            }
        }
    }
    dx
}

fn cases() -> Vec<(Conv2d, ImageShape)> {
    let conv =
        |c, k: [usize; 2], s: [usize; 2], p: [usize; 2]| Conv2d::new(c, 3, k, s, p, true).unwrap();
    vec![
        // The training shapes: Keras convnet and LeNet-5.
        (conv(1, [3, 3], [1, 1], [0, 0]), ImageShape::new(1, 28, 28)),
        (
            conv(32, [3, 3], [1, 1], [0, 0]),
            ImageShape::new(32, 13, 13),
        ),
        (conv(1, [5, 5], [1, 1], [2, 2]), ImageShape::new(1, 28, 28)),
        (conv(6, [5, 5], [1, 1], [0, 0]), ImageShape::new(6, 14, 14)),
        // One column, one row, exactly 16 and 17 columns, several blocks, the widest vector row.
        (conv(2, [1, 1], [1, 1], [0, 0]), ImageShape::new(2, 1, 1)),
        (conv(2, [1, 3], [1, 1], [0, 1]), ImageShape::new(2, 1, 1)),
        (conv(2, [3, 3], [1, 1], [1, 1]), ImageShape::new(2, 16, 16)),
        (conv(2, [3, 2], [1, 1], [1, 0]), ImageShape::new(2, 5, 17)),
        (conv(3, [2, 4], [1, 1], [1, 2]), ImageShape::new(3, 7, 40)),
        (conv(1, [3, 3], [1, 1], [1, 1]), ImageShape::new(1, 4, 64)),
        // Wider than the vector path (65 columns) and a kernel wider than it takes (17).
        (conv(1, [3, 3], [1, 1], [1, 1]), ImageShape::new(1, 3, 65)),
        (conv(1, [1, 17], [1, 1], [0, 8]), ImageShape::new(1, 2, 20)),
        // Padding as wide as the kernel (rows and columns that read only padding).
        (conv(2, [3, 3], [1, 1], [2, 2]), ImageShape::new(2, 4, 5)),
        (conv(1, [2, 2], [1, 1], [1, 1]), ImageShape::new(1, 1, 1)),
        // Strides (the portable path) and a kernel as large as the image.
        (conv(2, [3, 3], [2, 2], [1, 1]), ImageShape::new(2, 9, 9)),
        (conv(2, [2, 3], [3, 1], [0, 1]), ImageShape::new(2, 8, 19)),
        (conv(2, [6, 6], [1, 1], [0, 0]), ImageShape::new(2, 6, 6)),
    ]
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn run<T: Scalar>(conv: &Conv2d, input: ImageShape, tol: f64) {
    let out = conv.output_shape(input).unwrap();
    let kp = conv.patch_len() * out.plane();
    let what = format!("{conv} on {input} ({})", T::DTYPE);
    let x64: Vec<f64> = seq(input.len(), 0.73);
    let du64: Vec<f64> = seq(kp, 0.41);
    let x: Vec<T> = x64.iter().map(|&v| T::c(v)).collect();
    let du: Vec<T> = du64.iter().map(|&v| T::c(v)).collect();
    // Poisoned outputs, one element longer than needed: everything must be overwritten and the
    // extra element left alone.
    let mut u = vec![T::c(7.0); kp + 1];
    conv.unfold(input, &x, &mut u).unwrap();
    let got: Vec<f64> = u[..kp].iter().map(|v| v.f64()).collect();
    close(
        &format!("unfold {what}"),
        &got,
        &unfold_ref(conv, input, &x64),
        tol,
    );
    assert_eq!(u[kp].f64(), 7.0, "unfold {what} wrote past K·P");
    let mut dx = vec![T::c(7.0); input.len() + 1];
    conv.fold(input, &du, &mut dx).unwrap();
    let got: Vec<f64> = dx[..input.len()].iter().map(|v| v.f64()).collect();
    let want = fold_ref(conv, input, &du64);
    close(&format!("fold {what}"), &got, &want, tol);
    assert_eq!(
        dx[input.len()].f64(),
        7.0,
        "fold {what} wrote past the image"
    );
    // Adjoint: ⟨unfold(x), δU⟩ = ⟨x, fold(δU)⟩.
    let lhs: f64 = unfold_ref(conv, input, &x64)
        .iter()
        .zip(&du64)
        .map(|(a, b)| a * b)
        .sum();
    let rhs: f64 = x64.iter().zip(&want).map(|(a, b)| a * b).sum();
    assert!(
        (lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()),
        "adjoint {what}: {lhs} vs {rhs}"
    );
}

#[test]
fn unfold_and_fold_match_their_definitions_in_f32_and_f64() {
    for (conv, input) in cases() {
        run::<f64>(&conv, input, 1e-15);
        run::<f32>(&conv, input, 1e-6);
    }
}

#[test]
fn unfold_and_fold_reject_short_buffers_with_the_shapes() {
    let conv = Conv2d::new(2, 4, [3, 3], [1, 1], [0, 0], true).unwrap();
    let input = ImageShape::new(2, 5, 5);
    let kp = conv.patch_len() * 9;
    let err = conv
        .unfold(input, &[0.0f32; 49], &mut vec![0.0; kp])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 2, 5, 5]") && err.contains("50"), "{err}");
    let err = conv
        .unfold(input, &[0.0f32; 50], &mut vec![0.0; kp - 1])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("patch matrix") && err.contains(&kp.to_string()),
        "{err}"
    );
    let err = conv
        .fold(input, &vec![0.0f32; kp], &mut [0.0; 49])
        .unwrap_err()
        .to_string();
    assert!(err.contains("image") && err.contains("50"), "{err}");
    let err = conv
        .fold(ImageShape::new(3, 5, 5), &vec![0.0f32; kp], &mut [0.0; 75])
        .unwrap_err()
        .to_string();
    assert!(err.contains("3×5×5"), "{err}");
}
