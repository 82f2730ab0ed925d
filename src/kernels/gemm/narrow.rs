//! The narrow path: C with few columns (`n <= NARROW_N`) and A not transposed, such as the
//! 128x512x10 output layer of the MNIST network.
//!
//! The register tile of the main path is 16 (AVX2) or 32 (AVX-512) columns wide, so n = 10
//! leaves most of it idle, and packing A costs as much as the arithmetic. Here every element
//! of C is instead a dot product of a row of A (read in place: its k floats are contiguous)
//! with a row of op(B)ᵀ (B itself when it is transposed, else a copy of n x k floats), with
//! SIMD lanes along k and a horizontal sum at the end.

use super::Gemm;
use super::kernel::{Isa, Vector};
use super::params::{NARROW_N, NARROW_TILE_COLS, NARROW_TILE_ROWS};
use crate::kernels::Transpose;
use std::ops::Range;

impl Gemm<'_> {
    /// Runs the problem on the narrow path. Requires `ta == No`; any m, n, k.
    ///
    /// # Safety
    /// As for [`Gemm::run`].
    pub(super) unsafe fn narrow(&self, isa: Isa) {
        // The row loop wants op(B)ᵀ: n rows of k floats, which B is when transposed.
        let as_stored = self.tb == Transpose::Yes;
        // SAFETY: forwarded contract.
        unsafe { self.split_rows_b(isa, narrow_rows, NARROW_TILE_ROWS, as_stored) };
    }
}

rows_on_isa!(narrow_rows, rows_body);

const R: usize = NARROW_TILE_ROWS;
const C: usize = NARROW_TILE_COLS;

/// Blocks of R x C elements; leftover rows two or one at a time, a leftover column alone.
///
/// # Safety
/// As for [`Gemm::run`]; rows `rows` of C belong to this call alone; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn rows_body<V: Vector>(g: &Gemm, bt: &[f32], ldbt: usize, rows: Range<usize>) {
    let n = g.n;
    let mut i = rows.start;
    // The sums of one block of rows, stored through the epilogue a whole row at a time.
    let mut sums = [[0f32; NARROW_N]; R];
    // SAFETY (whole body): every dot_tile reads rows i..i+h of A (k floats each, inside `a`
    // as checked by the public wrapper) and rows j..j+w of bt; `store` writes inside C.
    unsafe {
        while i < rows.end {
            // Leftover rows go two at a time where they can: a one-row tile has only two
            // independent sums, too few to cover the latency of the FMA.
            let h = match rows.end - i {
                left if left >= R => R,
                left if left >= 2 => 2,
                _ => 1,
            };
            let mut j = 0;
            while j < n {
                let w = if n - j >= C { C } else { 1 };
                match (h, w) {
                    (R, C) => put(&mut sums, j, dot_tile::<V, R, C>(g, i, bt, ldbt, j)),
                    (R, _) => put(&mut sums, j, dot_tile::<V, R, 1>(g, i, bt, ldbt, j)),
                    (2, C) => put(&mut sums, j, dot_tile::<V, 2, C>(g, i, bt, ldbt, j)),
                    (2, _) => put(&mut sums, j, dot_tile::<V, 2, 1>(g, i, bt, ldbt, j)),
                    (_, C) => put(&mut sums, j, dot_tile::<V, 1, C>(g, i, bt, ldbt, j)),
                    _ => put(&mut sums, j, dot_tile::<V, 1, 1>(g, i, bt, ldbt, j)),
                }
                j += w;
            }
            store(g, i, &sums[..h]);
            i += h;
        }
    }
}

/// Copies a tile's sums into the block's, at column `j0`.
#[inline(always)]
fn put<const RR: usize, const CC: usize>(
    sums: &mut [[f32; NARROW_N]; R],
    j0: usize,
    tile: [[f32; CC]; RR],
) {
    for (row, t) in sums.iter_mut().zip(&tile) {
        row[j0..j0 + CC].copy_from_slice(t);
    }
}

/// `sum_p A[i0 + r, p] · bt[j0 + c, p]` for an `RR x CC` block, lanes along p.
///
/// # Safety
/// Rows `i0..i0+RR` of A and `j0..j0+CC` of bt exist; `V`'s instructions are supported.
#[inline(always)]
unsafe fn dot_tile<V: Vector, const RR: usize, const CC: usize>(
    g: &Gemm,
    i0: usize,
    bt: &[f32],
    ldbt: usize,
    j0: usize,
) -> [[f32; CC]; RR] {
    let k = g.k;
    let a: [*const f32; RR] = std::array::from_fn(|r| g.a[(i0 + r) * g.lda..].as_ptr());
    let b: [*const f32; CC] = std::array::from_fn(|c| bt[(j0 + c) * ldbt..].as_ptr());
    let full = k - k % V::LANES;
    // SAFETY: p + LANES <= k on every load, and each row holds k floats.
    unsafe {
        let mut acc = [[V::zero(); CC]; RR];
        let mut p = 0;
        while p < full {
            let bv: [V; CC] = std::array::from_fn(|c| V::load(b[c].add(p)));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = V::load(a[r].add(p));
                for c in 0..CC {
                    row[c] = av.mul_add(bv[c], row[c]);
                }
            }
            p += V::LANES;
        }
        // The lane sums four accumulators at a time (bit for bit `reduce_sum` of each), then
        // the tail of k past the last whole vector.
        let mut out = [[0f32; CC]; RR];
        let flat: &[V] = acc.as_flattened();
        let mut sums = [0f32; 64];
        let mut e = 0;
        while e + 4 <= RR * CC {
            sums[e..e + 4].copy_from_slice(&V::reduce4(std::array::from_fn(|t| flat[e + t])));
            e += 4;
        }
        for (s, v) in sums[e..RR * CC].iter_mut().zip(&flat[e..]) {
            *s = v.reduce_sum();
        }
        for r in 0..RR {
            for c in 0..CC {
                let mut s = sums[r * CC + c];
                for q in full..k {
                    s += *a[r].add(q) * *b[c].add(q);
                }
                out[r][c] = s;
            }
        }
        out
    }
}

/// Writes rows of sums into C from row `i0` through the alpha/beta/bias/relu epilogue: each
/// element gets `alpha·s`, then `+ beta·C` (a product and a sum, not fused), `+ bias` and
/// relu, in that order, in one loop over the row compiled for the steps this call has.
///
/// # Safety
/// The rows lie inside C and belong to this thread.
#[inline(always)]
unsafe fn store(g: &Gemm, i0: usize, sums: &[[f32; NARROW_N]]) {
    for (r, s) in sums.iter().enumerate() {
        // SAFETY: row i0 + r of C, n floats, inside C by the contract.
        let c = unsafe { std::slice::from_raw_parts_mut(g.c.add((i0 + r) * g.ldc), g.n) };
        let s = &s[..g.n];
        let bias = g.bias.unwrap_or(&[]);
        // beta == 0 must not read C: it may hold NaN.
        match (g.beta != 0.0, g.bias.is_some(), g.relu) {
            (false, false, false) => row::<false, false, false>(c, s, g.alpha, g.beta, bias),
            (false, false, true) => row::<false, false, true>(c, s, g.alpha, g.beta, bias),
            (false, true, false) => row::<false, true, false>(c, s, g.alpha, g.beta, bias),
            (false, true, true) => row::<false, true, true>(c, s, g.alpha, g.beta, bias),
            (true, false, false) => row::<true, false, false>(c, s, g.alpha, g.beta, bias),
            (true, false, true) => row::<true, false, true>(c, s, g.alpha, g.beta, bias),
            (true, true, false) => row::<true, true, false>(c, s, g.alpha, g.beta, bias),
            (true, true, true) => row::<true, true, true>(c, s, g.alpha, g.beta, bias),
        }
    }
}

/// One row of [`store`], with its steps fixed at compile time.
#[inline(always)]
fn row<const BETA: bool, const BIAS: bool, const RELU: bool>(
    c: &mut [f32],
    s: &[f32],
    alpha: f32,
    beta: f32,
    bias: &[f32],
) {
    for (j, (x, &v)) in c.iter_mut().zip(s).enumerate() {
        let mut v = alpha * v;
        if BETA {
            v += beta * *x;
        }
        if BIAS {
            v += bias[j];
        }
        if RELU {
            v = v.max(0.0);
        }
        *x = v;
    }
}
