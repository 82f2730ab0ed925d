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
use super::params::{
    NARROW_BLOCK_ROWS, NARROW_N, NARROW_STREAM_BYTES, NARROW_STREAM_ROWS, NARROW_STREAM_TILE_COLS,
    NARROW_TILE_COLS,
};
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
        unsafe { self.split_rows_b(isa, narrow_rows, NARROW_BLOCK_ROWS, as_stored) };
    }
}

rows_on_isa!(narrow_rows, rows_body);

/// Blocks of rows by column tiles, in one of two shapes:
/// - while the rows of A this call reads fit in L2 ([`NARROW_STREAM_BYTES`]), blocks of
///   [`NARROW_BLOCK_ROWS`] rows with tiles up to [`NARROW_TILE_COLS`] wide: the fewest loads
///   per FMA;
/// - beyond that, and for one or two columns, blocks of [`NARROW_STREAM_ROWS`] rows with tiles
///   up to [`NARROW_STREAM_TILE_COLS`] wide: six rows of A stream from memory at once, which
///   keeps more cache misses in flight.
///
/// Leftover rows go two or one at a time. Each element's sum is formed the same way in every
/// shape, so the choice never changes a result.
///
/// # Safety
/// As for [`Gemm::run`]; rows `rows` of C belong to this call alone; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn rows_body<V: Vector>(g: &Gemm, bt: &[f32], ldbt: usize, rows: Range<usize>) {
    let a_bytes = rows.len() * g.k * size_of::<f32>();
    // SAFETY: forwarded contract.
    unsafe {
        if g.n <= 2 || a_bytes > NARROW_STREAM_BYTES {
            blocks::<V, NARROW_STREAM_ROWS>(g, bt, ldbt, rows, NARROW_STREAM_TILE_COLS)
        } else {
            blocks::<V, NARROW_BLOCK_ROWS>(g, bt, ldbt, rows, NARROW_TILE_COLS)
        }
    }
}

/// [`rows_body`] with blocks of `H` rows and column tiles at most `max_w` wide.
///
/// # Safety
/// As for [`rows_body`].
#[inline(always)]
unsafe fn blocks<V: Vector, const H: usize>(
    g: &Gemm,
    bt: &[f32],
    ldbt: usize,
    rows: Range<usize>,
    max_w: usize,
) {
    let (widths, count) = column_tiles(g.n, max_w);
    let mut i = rows.start;
    // The sums of one block of rows, stored through the epilogue a whole row at a time.
    let mut sums = [[0f32; NARROW_N]; H];
    // SAFETY (whole body): every tile reads rows i..i+h of A (k floats each, inside `a` as
    // checked by the public wrapper) and rows j..j+w of bt; `store` writes inside C.
    unsafe {
        while i < rows.end {
            let h = match rows.end - i {
                left if left >= H => H,
                left if left >= 2 => 2,
                _ => 1,
            };
            let mut j = 0;
            for &w in &widths[..count] {
                match h {
                    2 => block::<V, 2>(&mut sums, g, i, bt, ldbt, j, w),
                    1 => block::<V, 1>(&mut sums, g, i, bt, ldbt, j, w),
                    _ => block::<V, H>(&mut sums, g, i, bt, ldbt, j, w),
                }
                j += w;
            }
            store(g, i, &sums[..h]);
            i += h;
        }
    }
}

/// Splits n columns into tiles at most `max_w` wide, as even as possible (with `max_w` 5: 10
/// is 5 + 5, 6 is 3 + 3, 11 is 4 + 4 + 3); returns the widths and their count.
fn column_tiles(n: usize, max_w: usize) -> ([usize; NARROW_N], usize) {
    let count = n.div_ceil(max_w);
    let mut widths = [0; NARROW_N];
    for (t, w) in widths[..count].iter_mut().enumerate() {
        // The first n % count tiles take one column more than the rest.
        *w = n / count + usize::from(t < n % count);
    }
    (widths, count)
}

/// The sums of rows `i0..i0 + HH` by columns `j0..j0 + w` (1 <= w <= 5), into `sums`.
///
/// A register tile wants about eight independent sums, to cover the FMA's latency, and few
/// loads per FMA. Up to three columns are one tile of all `HH` rows (4 x 3: 12 sums, 7
/// loads); four or five go two rows at a time (2 x 5: 10 sums, 7 loads).
///
/// # Safety
/// As for [`dot_tile`].
#[inline(always)]
unsafe fn block<V: Vector, const HH: usize>(
    sums: &mut [[f32; NARROW_N]],
    g: &Gemm,
    i0: usize,
    bt: &[f32],
    ldbt: usize,
    j0: usize,
    w: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match w {
            1 => put(sums, j0, dot_tile::<V, HH, 1>(g, i0, bt, ldbt, j0)),
            2 => put(sums, j0, dot_tile::<V, HH, 2>(g, i0, bt, ldbt, j0)),
            3 => put(sums, j0, dot_tile::<V, HH, 3>(g, i0, bt, ldbt, j0)),
            _ if HH == 1 => match w {
                4 => put(sums, j0, dot_tile::<V, 1, 4>(g, i0, bt, ldbt, j0)),
                _ => put(sums, j0, dot_tile::<V, 1, 5>(g, i0, bt, ldbt, j0)),
            },
            _ => {
                for r in (0..HH).step_by(2) {
                    let s = &mut sums[r..];
                    match w {
                        4 => put(s, j0, dot_tile::<V, 2, 4>(g, i0 + r, bt, ldbt, j0)),
                        _ => put(s, j0, dot_tile::<V, 2, 5>(g, i0 + r, bt, ldbt, j0)),
                    }
                }
            }
        }
    }
}

/// Copies a tile's sums into the block's, at column `j0`.
#[inline(always)]
fn put<const RR: usize, const CC: usize>(
    sums: &mut [[f32; NARROW_N]],
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
