//! The fused dense layer forward: sgemm with bias and activation applied as tiles are stored.

use super::gemm::Gemm;
use super::{Activation, Transpose, check_len, check_matrix, isa};

/// `out (batch x out_dim) = act(x (batch x in_dim) · w (in_dim x out_dim) + bias (out_dim))`,
/// all row-major and contiguous.
///
/// The bias and the activation are applied by the sgemm microkernel as it stores each tile
/// (an epilogue), so `out` is written once and never re-read. `out` is not read (it may hold
/// NaN). `in_dim == 0` gives `act(bias)` in every row.
///
/// # Panics
/// If `x` has fewer than `batch * in_dim` elements, `w` fewer than `in_dim * out_dim`, `bias`
/// fewer than `out_dim`, or `out` fewer than `batch * out_dim`; the message names
/// `dense_forward`, the argument and the length needed.
#[allow(clippy::too_many_arguments)]
pub fn dense_forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    act: Activation,
) {
    check_matrix("dense_forward", "x", x.len(), batch, in_dim, in_dim);
    check_matrix("dense_forward", "w", w.len(), in_dim, out_dim, out_dim);
    check_len("dense_forward", "bias", bias.len(), out_dim, "out_dim");
    check_matrix("dense_forward", "out", out.len(), batch, out_dim, out_dim);
    let g = Gemm {
        ta: Transpose::No,
        tb: Transpose::No,
        m: batch,
        n: out_dim,
        k: in_dim,
        alpha: 1.0,
        a: x,
        lda: in_dim,
        b: w,
        ldb: out_dim,
        beta: 0.0,
        c: out.as_mut_ptr(),
        ldc: out_dim,
        bias: Some(&bias[..out_dim]),
        relu: act == Activation::Relu,
    };
    // SAFETY: every slice was checked against its shape above.
    unsafe { g.run(isa()) }
}
