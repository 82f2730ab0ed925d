//! Plain-loop references of every kernel, with the same signatures as the fast ones. They are
//! what the tests and benchmarks compare against: obviously correct, not fast. Slice bounds
//! are enforced by ordinary indexing (a panic, not a checked message).
// Index loops are the point here: each reads like the formula it checks.
#![allow(clippy::needless_range_loop)]

use super::{Activation, Transpose};

/// Reference for [`super::sgemm`]: `C = alpha * op(A) * op(B) + beta * C`, one dot product per
/// element, accumulated in f32 in k order. `beta == 0` does not read C.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0f32;
            for p in 0..k {
                let av = if ta == Transpose::No {
                    a[i * lda + p]
                } else {
                    a[p * lda + i]
                };
                let bv = if tb == Transpose::No {
                    b[p * ldb + j]
                } else {
                    b[j * ldb + p]
                };
                sum += av * bv;
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta * c[i * ldc + j]
            };
            c[i * ldc + j] = alpha * sum + old;
        }
    }
}

/// Reference for [`super::dense_forward`]: matrix product, then bias, then activation.
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
    for i in 0..batch {
        for j in 0..out_dim {
            let mut sum = 0.0f32;
            for p in 0..in_dim {
                sum += x[i * in_dim + p] * w[p * out_dim + j];
            }
            let v = sum + bias[j];
            out[i * out_dim + j] = match act {
                Activation::Identity => v,
                Activation::Relu => relu(v),
            };
        }
    }
}

/// Reference for [`super::sparse_dense_forward`]: the dense product over every entry, zeros
/// included (the two agree whenever the weights are finite).
#[allow(clippy::too_many_arguments)]
pub fn sparse_dense_forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    act: Activation,
) {
    dense_forward(x, w, bias, out, batch, in_dim, out_dim, act)
}

/// Reference for [`super::sparse_weight_grad`]: `dw[p, j] = sum_r x[r, p] * dy[r, j]`, r in
/// order.
pub fn sparse_weight_grad(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
) {
    sparse_weight_grad_rows(x, dy, dw, batch, in_dim, out_dim, 0..in_dim);
}

/// Reference for [`super::sparse_weight_grad_rows`]: rows `rows` of
/// [`sparse_weight_grad`]'s `dw`, into `dw`.
pub fn sparse_weight_grad_rows(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    rows: std::ops::Range<usize>,
) {
    for (i, p) in rows.enumerate() {
        for j in 0..out_dim {
            let mut sum = 0.0f32;
            for r in 0..batch {
                sum += x[r * in_dim + p] * dy[r * out_dim + j];
            }
            dw[i * out_dim + j] = sum;
        }
    }
}

/// Reference for [`super::nonzero_fraction`].
pub fn nonzero_fraction(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64
}

fn relu(v: f32) -> f32 {
    if v > 0.0 { v } else { 0.0 }
}

/// Reference for [`super::softmax_rows`], computed in f64 per row.
pub fn softmax_rows(x: &mut [f32], rows: usize, cols: usize) {
    for i in 0..rows {
        let row = &mut x[i * cols..(i + 1) * cols];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        if max.is_infinite() {
            let hits = row.iter().filter(|&&v| v as f64 == max).count() as f32;
            for v in row.iter_mut() {
                *v = if max == f64::NEG_INFINITY || *v as f64 == max {
                    1.0 / hits
                } else {
                    0.0
                };
            }
            continue;
        }
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        for v in row.iter_mut() {
            *v = ((*v as f64 - max).exp() / sum) as f32;
        }
    }
}

/// Reference for [`super::softmax_cross_entropy`]: softmax, then `-ln p[label]` averaged, and
/// `(p - onehot) / rows` as the gradient, in f64.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u32],
    grad: &mut [f32],
    rows: usize,
    cols: usize,
) -> f32 {
    if rows == 0 {
        return 0.0;
    }
    let mut total = 0.0f64;
    for i in 0..rows {
        let row = &logits[i * cols..(i + 1) * cols];
        let label = labels[i] as usize;
        assert!(
            label < cols,
            "softmax_cross_entropy: label {label} in row {i} is not below cols = {cols}"
        );
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        total += sum.ln() + max - row[label] as f64;
        for j in 0..cols {
            let p = (row[j] as f64 - max).exp() / sum;
            let onehot = if j == label { 1.0 } else { 0.0 };
            grad[i * cols + j] = ((p - onehot) / rows as f64) as f32;
        }
    }
    (total / rows as f64) as f32
}

/// Reference for [`super::relu_forward`].
pub fn relu_forward(x: &mut [f32]) {
    for i in 0..x.len() {
        x[i] = relu(x[i]);
    }
}

/// Reference for [`super::relu_backward`].
pub fn relu_backward(grad: &mut [f32], activated: &[f32]) {
    for i in 0..grad.len() {
        grad[i] = if activated[i] > 0.0 { grad[i] } else { 0.0 };
    }
}

/// Reference for [`super::col_sums`], column by column.
pub fn col_sums(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for j in 0..cols {
        let mut s = 0.0f32;
        for i in 0..rows {
            s += x[i * cols + j];
        }
        out[j] = s;
    }
}

/// Reference for [`super::add_bias_rows`].
pub fn add_bias_rows(x: &mut [f32], bias: &[f32], rows: usize, cols: usize) {
    for i in 0..rows {
        for j in 0..cols {
            x[i * cols + j] += bias[j];
        }
    }
}

/// Reference for [`super::axpy`].
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for i in 0..y.len() {
        y[i] += alpha * x[i];
    }
}

/// Reference for [`super::scale`].
pub fn scale(alpha: f32, x: &mut [f32]) {
    for i in 0..x.len() {
        x[i] *= alpha;
    }
}

/// Reference for [`super::argmax_rows`]: first index of the largest non-NaN element.
pub fn argmax_rows(x: &[f32], rows: usize, cols: usize, out: &mut [u32]) {
    for i in 0..rows {
        let mut best = 0usize;
        for j in 1..cols {
            let (v, b) = (x[i * cols + j], x[i * cols + best]);
            if v > b || (b.is_nan() && !v.is_nan()) {
                best = j;
            }
        }
        out[i] = best as u32;
    }
}

/// Reference for [`super::sgd_update`].
pub fn sgd_update(
    params: &mut [f32],
    grads: &[f32],
    velocity: &mut [f32],
    lr: f32,
    momentum: f32,
    nesterov: bool,
) {
    for i in 0..params.len() {
        if momentum == 0.0 {
            params[i] -= lr * grads[i];
        } else {
            velocity[i] = momentum * velocity[i] - lr * grads[i];
            params[i] += if nesterov {
                momentum * velocity[i] - lr * grads[i]
            } else {
                velocity[i]
            };
        }
    }
}

/// Reference for [`super::rmsprop_update`].
pub fn rmsprop_update(
    params: &mut [f32],
    grads: &[f32],
    sq_avg: &mut [f32],
    lr: f32,
    rho: f32,
    epsilon: f32,
) {
    for i in 0..params.len() {
        sq_avg[i] = rho * sq_avg[i] + (1.0 - rho) * grads[i] * grads[i];
        params[i] -= lr * grads[i] / (sq_avg[i] + epsilon).sqrt();
    }
}

/// Reference for [`super::adam_update`].
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
) {
    for i in 0..params.len() {
        m[i] += (1.0 - beta1) * (grads[i] - m[i]);
        v[i] += (1.0 - beta2) * (grads[i] * grads[i] - v[i]);
        params[i] -= step * m[i] / (v[i].sqrt() + epsilon);
    }
}
