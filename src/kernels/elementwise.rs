//! Element-wise and reduction kernels the backward pass and the model need: relu and its
//! mask, bias broadcast, bias-gradient column sums, axpy/scale for optimisers, argmax.

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
    // A select rather than a branch, so the loop vectorises (`a > 0.0` is false for NaN).
    for (g, &a) in grad.iter_mut().zip(activated) {
        *g = if a > 0.0 { *g } else { 0.0 };
    }
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
    let out = &mut out[..cols];
    out.fill(0.0);
    if cols == 0 {
        return;
    }
    // Row by row, so the inner loop is a contiguous, vectorisable add.
    for row in x[..rows * cols].chunks_exact(cols) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
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
