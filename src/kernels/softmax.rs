//! Row-wise softmax and the fused softmax + sparse categorical cross-entropy (loss and its
//! gradient with respect to the logits).

use super::{check_len, check_matrix};
use rayon::prelude::*;

/// Rows x cols at or above which the row loops run on rayon's threads.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Softmax of one row in place, stable: exp(x - max) / sum. A row whose maximum is +inf puts
/// equal mass on its +inf entries; a row of only -inf becomes uniform. No NaN arises from
/// finite or infinite input (NaN input gives NaN).
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        let hits = row.iter().filter(|&&v| v == max).count() as f32;
        for v in row.iter_mut() {
            *v = if max == f32::NEG_INFINITY || *v == max {
                1.0 / hits
            } else {
                0.0
            };
        }
        return;
    }
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Row-wise numerically stable softmax of a `rows x cols` row-major matrix, in place.
///
/// Each row becomes `exp(x - max(x)) / sum(exp(x - max(x)))`, so rows holding 1000 and -1000,
/// or -inf entries, give no NaN and sum to 1 (within rounding).
///
/// # Panics
/// If `x` has fewer than `rows * cols` elements (message names `softmax_rows`).
pub fn softmax_rows(x: &mut [f32], rows: usize, cols: usize) {
    check_matrix("softmax_rows", "x", x.len(), rows, cols, cols);
    if rows == 0 || cols == 0 {
        return;
    }
    let x = &mut x[..rows * cols];
    if rows * cols >= PARALLEL_MIN_ELEMENTS {
        x.par_chunks_mut(cols).for_each(softmax_row);
    } else {
        x.chunks_mut(cols).for_each(softmax_row);
    }
}

/// One row: writes (softmax - onehot) * scale into `g`, returns -log softmax\[label\]. One
/// exponential per element serves both the gradient and the log-sum-exp.
fn cross_entropy_row(logits: &[f32], label: usize, g: &mut [f32], scale: f32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let loss = if max.is_finite() {
        let mut sum = 0.0f32;
        for (v, &x) in g.iter_mut().zip(logits) {
            *v = (x - max).exp();
            sum += *v;
        }
        let k = scale / sum;
        g.iter_mut().for_each(|v| *v *= k);
        // log-sum-exp - z, with the row maximum factored out.
        sum.ln() + max - logits[label]
    } else {
        g.copy_from_slice(logits);
        softmax_row(g);
        let loss = -g[label].ln();
        g.iter_mut().for_each(|v| *v *= scale);
        loss
    };
    g[label] -= scale;
    loss
}

/// Mean sparse categorical cross-entropy of `softmax(logits)` against `labels`, returning the
/// loss and writing `d(loss)/d(logits) = (softmax - onehot) / rows` into `grad`.
///
/// `logits` and `grad` are `rows x cols` row-major; `labels` holds `rows` class indices in
/// `0..cols`. Stable for any finite logits (log-sum-exp with the row maximum subtracted).
/// With `rows == 0` the loss is 0 and nothing is written.
///
/// # Panics
/// If a slice is shorter than its dimensions, or a label is `>= cols` (the message names
/// `softmax_cross_entropy`, the row and the label).
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    rows: usize,
    cols: usize,
) -> f32 {
    check_matrix(
        "softmax_cross_entropy",
        "logits",
        logits.len(),
        rows,
        cols,
        cols,
    );
    check_len(
        "softmax_cross_entropy",
        "labels",
        labels.len(),
        rows,
        "rows",
    );
    check_matrix(
        "softmax_cross_entropy",
        "grad",
        grad.len(),
        rows,
        cols,
        cols,
    );
    if let Some((i, &l)) = labels[..rows]
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= cols)
    {
        panic!("softmax_cross_entropy: label {l} in row {i} is not below cols = {cols}");
    }
    if rows == 0 || cols == 0 {
        return 0.0;
    }
    let scale = 1.0 / rows as f32;
    let logits = &logits[..rows * cols];
    let grad = &mut grad[..rows * cols];
    let total: f64 = if rows * cols >= PARALLEL_MIN_ELEMENTS {
        grad.par_chunks_mut(cols)
            .zip(logits.par_chunks(cols))
            .zip(labels[..rows].par_iter())
            .map(|((g, x), &l)| cross_entropy_row(x, l as usize, g, scale) as f64)
            .sum()
    } else {
        grad.chunks_mut(cols)
            .zip(logits.chunks(cols))
            .zip(&labels[..rows])
            .map(|((g, x), &l)| cross_entropy_row(x, l as usize, g, scale) as f64)
            .sum()
    };
    (total / rows as f64) as f32
}
