//! The small-depth path: `k <= SMALL_K`, such as 128x10x512 with B transposed (the input
//! gradient of a 10-class output layer, `dz · Wᵀ`).
//!
//! With so short a depth, the main path's microkernel runs only a few steps per call, and its
//! per-tile costs (the call, prefetching C, the epilogue's checks) and the packing of A weigh
//! as much as the arithmetic. Here op(B) is used as `k` rows of `n` floats (B itself when it
//! is not transposed, else a `k x n` copy, 20 KB for the shape above), A is read in place, and
//! one loop walks a register tile of `SMALL_K_TILE_ROWS` rows by two vectors across every row
//! block of C, with the epilogue of the main path.
//!
//! The same tile serves the small-m path (`m <= SMALL_M`, B not transposed, any k), one row
//! of B at a time for all of C's rows: see [`Gemm::small_m`].

use super::Gemm;
use super::kernel::{Isa, Vector};
use super::pack::{PACK, transpose};
use super::params::{SMALL_K_TILE_ROWS, SMALL_M};
use crate::kernels::{SharedOut, Transpose};
use rayon::prelude::*;
use std::ops::Range;

impl Gemm<'_> {
    /// Runs the problem on the small-depth path; any m, n, k and transposes (meant for small
    /// k).
    ///
    /// # Safety
    /// As for [`Gemm::run`].
    pub(super) unsafe fn small_k(&self, isa: Isa) {
        // The row loop wants op(B): k rows of n floats, which B is when not transposed.
        let as_stored = self.tb == Transpose::No;
        // SAFETY: forwarded contract.
        unsafe { self.split_rows_b(isa, small_k_rows, SMALL_K_TILE_ROWS, as_stored) };
    }

    /// Runs a problem with A transposed and few columns of C (`n <= NARROW_N`), such as a
    /// weight gradient `hᵀ·dz` into 512 x 10, as its transpose: `Cᵀ = op(B)ᵀ·A` has `n` rows
    /// and A's rows for its own (k rows of m floats, read in place), which is the small-depth
    /// tile's shape whatever k; `alpha·op(B)ᵀ·A` goes to a scratch buffer, and the epilogue
    /// (beta·C, bias, relu, in the order of the main path) writes it into C transposed.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `ta == Yes`.
    pub(super) unsafe fn transposed_narrow(&self, isa: Isa) {
        let (m, n, k) = (self.m, self.n, self.k);
        let mut buf = PACK.with_borrow_mut(|(a, _)| std::mem::take(a));
        let t = buf.get(n * m);
        let flip = |t: Transpose| match t {
            Transpose::No => Transpose::Yes,
            Transpose::Yes => Transpose::No,
        };
        // op(B)ᵀ as the left operand: B's storage read the other way round.
        let g = Gemm {
            ta: flip(self.tb),
            tb: Transpose::No,
            m: n,
            n: m,
            k,
            alpha: self.alpha,
            a: self.b,
            lda: self.ldb,
            b: self.a,
            ldb: self.lda,
            beta: 0.0,
            c: t.as_mut_ptr(),
            ldc: m,
            bias: None,
            relu: false,
        };
        let threads = crate::kernels::split_threads(self.flops());
        // Columns of Cᵀ (rows of C) in blocks of 64 per thread when it pays; each element is
        // computed the same way whatever the split.
        let per = if threads < 2 {
            m
        } else {
            m.div_ceil(threads).div_ceil(64) * 64
        };
        let scratch = SharedOut(t.as_mut_ptr());
        let part = |i0: usize| {
            let cols = i0..(i0 + per).min(m);
            let sub = Gemm {
                n: cols.len(),
                b: &self.a[i0..],
                // SAFETY: column i0 of the n x m scratch.
                c: unsafe { scratch.ptr().add(i0) },
                ..g
            };
            // SAFETY: forwarded contract; op(A)'s k rows of m floats (stride lda) start at
            // self.a, so columns i0.. start at self.a[i0..]; each part writes its own columns
            // of the scratch.
            unsafe { small_k_rows(isa, &sub, sub.b, sub.ldb, 0..n) }
        };
        if per >= m {
            part(0);
        } else {
            (0..m.div_ceil(per))
                .into_par_iter()
                .for_each(|p| part(p * per));
        }
        if self.beta == 0.0 && self.bias.is_none() && !self.relu {
            // The plain product (a weight gradient): only the transpose is left to do.
            // SAFETY: C is an m x n matrix with row stride ldc (forwarded contract), so its
            // (m - 1)·ldc + n floats are valid for writes and touched by no other thread.
            let c = unsafe { std::slice::from_raw_parts_mut(self.c, (m - 1) * self.ldc + n) };
            transpose(c, self.ldc, t, m, n, m);
            PACK.with_borrow_mut(|(a, _)| *a = buf);
            return;
        }
        for i in 0..m {
            for j in 0..n {
                let mut x = t[j * m + i];
                // SAFETY: (i, j) lies inside C (forwarded contract).
                let c = unsafe { self.c.add(i * self.ldc + j) };
                // beta == 0 must not read C: it may hold NaN.
                if self.beta != 0.0 {
                    // SAFETY: as above; beta != 0 makes C readable.
                    x = unsafe { *c }.mul_add(self.beta, x);
                }
                if let Some(bias) = self.bias {
                    x += bias[j];
                }
                if self.relu {
                    x = x.max(0.0);
                }
                // SAFETY: as above.
                unsafe { *c = x };
            }
        }
        PACK.with_borrow_mut(|(a, _)| *a = buf);
    }
}

rows_on_isa!(small_k_rows, rows_body);
rows_on_isa!(small_m_cols, cols_body);

impl Gemm<'_> {
    /// The small-m path (`m <= SMALL_M`, B not transposed) on the columns `cols` of C: every
    /// row of B, read in place, serves all of C's rows before the next, in register tiles of
    /// [`tile`] spanning C's rows: one row by eight vectors (eight sums side by side cover
    /// the FMA latency), more rows by two vectors. Wider tiles for two to four rows measured
    /// slower (4x784x512: 72 µs by four vectors, 37 by two; 2x784x512: 42 by eight, 38 by
    /// two), as did one row by four vectors (28 against 22). Against one sweep over B per row
    /// of C accumulating in memory (before 2026-11-29 21:40), Zen 4, one thread, best call:
    /// 1x784x512 22 µs against 24, 2x784x512 38 against 49, 4x784x512 37 against 99.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `cols` lies within `0..n` and no other thread writes those
    /// columns.
    pub(super) unsafe fn small_m(&self, isa: Isa, cols: Range<usize>) {
        // SAFETY: forwarded contract; B as stored is op(B), k rows of n floats.
        unsafe { small_m_cols(isa, self, self.b, self.ldb, cols) }
    }
}

/// Columns `cols` of every row of C (at most `SMALL_M`), as [`Gemm::small_m`] describes.
///
/// # Safety
/// As for [`Gemm::small_m`]; `bk` is op(B) as k rows of `ldbk` floats; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn cols_body<V: Vector>(g: &Gemm, bk: &[f32], ldbk: usize, cols: Range<usize>) {
    debug_assert!(g.m <= SMALL_M);
    // SAFETY: forwarded contract.
    unsafe {
        match g.m {
            1 => cols_of::<V, 1, 8>(g, bk, ldbk, cols),
            2 => cols_of::<V, 2, 2>(g, bk, ldbk, cols),
            3 => cols_of::<V, 3, 2>(g, bk, ldbk, cols),
            _ => cols_of::<V, 4, 2>(g, bk, ldbk, cols),
        }
    }
}

/// [`cols_body`] for `RR` rows (all of C's) in tiles of `NB` vectors, then one, then single
/// columns.
///
/// # Safety
/// As for [`cols_body`], with `g.m == RR`.
#[inline(always)]
unsafe fn cols_of<V: Vector, const RR: usize, const NB: usize>(
    g: &Gemm,
    bk: &[f32],
    ldbk: usize,
    cols: Range<usize>,
) {
    let l = V::LANES;
    let mut j = cols.start;
    // SAFETY: every tile's rows 0..RR and columns lie inside C and inside `cols`.
    unsafe {
        while j + NB * l <= cols.end {
            tile::<V, RR, NB>(g, 0, j, bk, ldbk);
            j += NB * l;
        }
        while j + l <= cols.end {
            tile::<V, RR, 1>(g, 0, j, bk, ldbk);
            j += l;
        }
        for r in 0..RR {
            for c in j..cols.end {
                scalar(g, r, c, bk, ldbk);
            }
        }
    }
}

const R: usize = SMALL_K_TILE_ROWS;

/// Tiles of R rows (then 4, 2 and 1 for the last few, which keeps enough independent sums
/// to cover the FMA latency) by two vectors (then one, then single columns).
///
/// # Safety
/// As for [`Gemm::run`]; rows `rows` of C belong to this call alone; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn rows_body<V: Vector>(g: &Gemm, bk: &[f32], ldbk: usize, rows: Range<usize>) {
    let (n, l) = (g.n, V::LANES);
    let mut i = rows.start;
    // SAFETY (whole body): every tile reads rows i..i+h of op(A) and columns j.. of the k
    // rows of bk within their extents, and writes inside C.
    unsafe {
        while i < rows.end {
            let h = match rows.end - i {
                left if left >= R => R,
                4.. => 4,
                2.. => 2,
                _ => 1,
            };
            let mut j = 0;
            while j + 2 * l <= n {
                match h {
                    R => tile::<V, R, 2>(g, i, j, bk, ldbk),
                    4 => tile::<V, 4, 2>(g, i, j, bk, ldbk),
                    2 => tile::<V, 2, 2>(g, i, j, bk, ldbk),
                    _ => tile::<V, 1, 2>(g, i, j, bk, ldbk),
                }
                j += 2 * l;
            }
            while j + l <= n {
                match h {
                    R => tile::<V, R, 1>(g, i, j, bk, ldbk),
                    4 => tile::<V, 4, 1>(g, i, j, bk, ldbk),
                    2 => tile::<V, 2, 1>(g, i, j, bk, ldbk),
                    _ => tile::<V, 1, 1>(g, i, j, bk, ldbk),
                }
                j += l;
            }
            for r in i..i + h {
                for c in j..n {
                    scalar(g, r, c, bk, ldbk);
                }
            }
            i += h;
        }
    }
}

/// Strides of op(A): element (i, p) is at `i·row + p·step` in `a`.
#[inline(always)]
fn a_strides(g: &Gemm) -> (usize, usize) {
    if g.ta == Transpose::No {
        (g.lda, 1)
    } else {
        (1, g.lda)
    }
}

/// The `RR x NB·LANES` block of C at (i0, j0): `sum_p op(A)[i, p]·bk[p, j]` with one FMA per
/// step from zero, then the main path's epilogue (alpha, beta·C unless beta is 0, bias,
/// relu).
///
/// # Safety
/// Rows `i0..i0 + RR` and columns `j0..j0 + NB·LANES` lie inside C; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn tile<V: Vector, const RR: usize, const NB: usize>(
    g: &Gemm,
    i0: usize,
    j0: usize,
    bk: &[f32],
    ldbk: usize,
) {
    // SAFETY (whole body): the contract, and bk's k rows of ldbk >= n floats.
    unsafe {
        let mut acc = [[V::zero(); NB]; RR];
        let b = bk.as_ptr().add(j0);
        // Element (i, p) of op(A) is at i·row + p·step: the transpose decided once, not per
        // load.
        let (row, step) = a_strides(g);
        let a: [*const f32; RR] = std::array::from_fn(|r| g.a.as_ptr().add((i0 + r) * row));
        for p in 0..g.k {
            let brow = b.add(p * ldbk);
            let mut bv = [V::zero(); NB];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = V::load(brow.add(v * V::LANES));
            }
            for (acc, a) in acc.iter_mut().zip(&a) {
                let a = V::splat(*a.add(p * step));
                for (x, &b) in acc.iter_mut().zip(&bv) {
                    *x = a.mul_add(b, *x);
                }
            }
        }
        let (alpha, beta, zero) = (V::splat(g.alpha), V::splat(g.beta), V::zero());
        for (r, acc) in acc.iter().enumerate() {
            for (v, &x) in acc.iter().enumerate() {
                let col = j0 + v * V::LANES;
                let p = g.c.add((i0 + r) * g.ldc + col);
                let mut x = x;
                if g.alpha != 1.0 {
                    x = x.mul(alpha);
                }
                // beta == 0 must not read C: it may hold NaN.
                if g.beta != 0.0 {
                    x = V::load(p).mul_add(beta, x);
                }
                if let Some(bias) = g.bias {
                    x = x.add(V::load(bias.as_ptr().add(col)));
                }
                if g.relu {
                    x = x.max(zero);
                }
                x.store(p);
            }
        }
    }
}

/// One element of C, as [`tile`] computes it.
///
/// # Safety
/// (i, j) lies inside C.
#[inline(always)]
unsafe fn scalar(g: &Gemm, i: usize, j: usize, bk: &[f32], ldbk: usize) {
    // SAFETY (whole body): the contract, and bk's k rows of ldbk >= n floats.
    unsafe {
        let (row, step) = a_strides(g);
        let mut x = 0.0f32;
        for p in 0..g.k {
            let a = *g.a.get_unchecked(i * row + p * step);
            x = a.mul_add(*bk.get_unchecked(p * ldbk + j), x);
        }
        let c = g.c.add(i * g.ldc + j);
        if g.alpha != 1.0 {
            x *= g.alpha;
        }
        if g.beta != 0.0 {
            x = (*c).mul_add(g.beta, x);
        }
        if let Some(bias) = g.bias {
            x += bias[j];
        }
        if g.relu {
            x = x.max(0.0);
        }
        *c = x;
    }
}
