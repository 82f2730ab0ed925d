//! Element-wise and reduction kernels the backward pass and the model need: relu and its
//! mask, bias broadcast, bias-gradient column sums, axpy/scale for optimisers, argmax.

#[cfg(target_arch = "x86_64")]
use super::gemm::kernel::{Isa, isa};
use super::{check_len, check_matrix};

/// `x = max(x, 0)` in place (NaN becomes 0).
pub fn relu_forward(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
}

/// Relu backward through the layer's output: `grad[i] = 0` where `activated[i] <= 0`, kept
/// elsewhere. `activated` is the relu output (or its input: the sign test is the same).
///
/// # Panics
/// If `activated` is shorter than `grad` (message names `relu_backward`).
pub fn relu_backward(grad: &mut [f32], activated: &[f32]) {
    check_len(
        "relu_backward",
        "activated",
        activated.len(),
        grad.len(),
        "grad.len()",
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: has_avx2() checked the CPU.
        return unsafe { relu_backward_avx2(grad, activated) };
    }
    relu_backward_body(grad, activated)
}

#[inline(always)]
fn relu_backward_body(grad: &mut [f32], activated: &[f32]) {
    // A select rather than a branch, so the loop vectorises (`a > 0.0` is false for NaN).
    for (g, &a) in grad.iter_mut().zip(activated) {
        *g = if a > 0.0 { *g } else { 0.0 };
    }
}

/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn relu_backward_avx2(grad: &mut [f32], activated: &[f32]) {
    use std::arch::x86_64::*;
    // Intrinsics rather than the loop above: vectorised for AVX2, that loop stores its zeros
    // with masked stores, which AMD's cores microcode (three times slower than SSE here).
    let n = grad.len() / 8 * 8;
    let (g, a) = (grad.as_mut_ptr(), activated.as_ptr());
    // SAFETY: i + 8 <= n <= grad.len() <= activated.len() (checked by the caller); AVX2 is
    // enabled on this function.
    unsafe {
        let zero = _mm256_setzero_ps();
        for i in (0..n).step_by(8) {
            let keep = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_loadu_ps(a.add(i)), zero);
            _mm256_storeu_ps(g.add(i), _mm256_and_ps(_mm256_loadu_ps(g.add(i)), keep));
        }
    }
    relu_backward_body(&mut grad[n..], &activated[n..])
}

/// Whether the path in use has AVX2, so that these loops, which the compiler vectorises for
/// the target it builds for (by default SSE, four lanes), can run a build for eight.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    matches!(isa(), Isa::Avx2 | Isa::Avx512)
}

/// `out[j] = sum_i x[i * cols + j]`: column sums of a `rows x cols` row-major matrix (the bias
/// gradient of a dense layer). Overwrites `out[..cols]`; `rows == 0` gives zeros.
///
/// # Panics
/// If `x` has fewer than `rows * cols` elements or `out` fewer than `cols` (message names
/// `col_sums`).
pub fn col_sums(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    check_matrix("col_sums", "x", x.len(), rows, cols, cols);
    check_len("col_sums", "out", out.len(), cols, "cols");
    let (x, out) = (&x[..rows * cols], &mut out[..cols]);
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: has_avx2() checked the CPU.
        return unsafe { col_sums_avx2(x, cols, out) };
    }
    col_sums_body(x, cols, out)
}

/// Columns summed per block, in registers down every row, then stored once.
const COL_SUMS_BLOCK: usize = 64;

#[inline(always)]
fn col_sums_body(x: &[f32], cols: usize, out: &mut [f32]) {
    if cols == 0 {
        return;
    }
    // Each sum starts from 0.0 and adds the rows in order, whichever loop computes it.
    let mut j0 = 0;
    while j0 + COL_SUMS_BLOCK <= cols {
        let mut acc = [0.0f32; COL_SUMS_BLOCK];
        for row in x.chunks_exact(cols) {
            for (a, &v) in acc.iter_mut().zip(&row[j0..j0 + COL_SUMS_BLOCK]) {
                *a += v;
            }
        }
        out[j0..j0 + COL_SUMS_BLOCK].copy_from_slice(&acc);
        j0 += COL_SUMS_BLOCK;
    }
    let out = &mut out[j0..];
    out.fill(0.0);
    for row in x.chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(&row[j0..]) {
            *o += v;
        }
    }
}

/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn col_sums_avx2(x: &[f32], cols: usize, out: &mut [f32]) {
    col_sums_body(x, cols, out)
}

/// `x[i * cols + j] += bias[j]`: broadcasts a bias row over a `rows x cols` matrix in place.
///
/// # Panics
/// If `x` has fewer than `rows * cols` elements or `bias` fewer than `cols` (message names
/// `add_bias_rows`).
pub fn add_bias_rows(x: &mut [f32], bias: &[f32], rows: usize, cols: usize) {
    check_matrix("add_bias_rows", "x", x.len(), rows, cols, cols);
    check_len("add_bias_rows", "bias", bias.len(), cols, "cols");
    if cols == 0 {
        return;
    }
    for row in x[..rows * cols].chunks_exact_mut(cols) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `y += alpha * x`.
///
/// # Panics
/// If `x` is shorter than `y` (message names `axpy`).
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    check_len("axpy", "x", x.len(), y.len(), "y.len()");
    for (v, &u) in y.iter_mut().zip(x) {
        *v += alpha * u;
    }
}

/// `x *= alpha`.
pub fn scale(alpha: f32, x: &mut [f32]) {
    for v in x.iter_mut() {
        *v *= alpha;
    }
}

/// `out[i]` = index of the largest element of row `i` of a `rows x cols` matrix (the first
/// one on ties; NaN entries are skipped; a row of only NaN gives 0).
///
/// # Panics
/// If `x` has fewer than `rows * cols` elements, `out` fewer than `rows`, or `cols == 0` with
/// `rows > 0` (message names `argmax_rows`).
pub fn argmax_rows(x: &[f32], rows: usize, cols: usize, out: &mut [u32]) {
    check_matrix("argmax_rows", "x", x.len(), rows, cols, cols);
    check_len("argmax_rows", "out", out.len(), rows, "rows");
    if rows > 0 && cols == 0 {
        panic!("argmax_rows: a row of 0 columns has no maximum");
    }
    for (o, row) in out.iter_mut().zip(x.chunks_exact(cols.max(1)).take(rows)) {
        let mut best = 0;
        let mut best_v = f32::NEG_INFINITY;
        for (j, &v) in row.iter().enumerate() {
            if v > best_v {
                best_v = v;
                best = j;
            }
        }
        *o = best as u32;
    }
}
