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
    NARROW_TILE_COLS, NARROW_UNROLL, NARROW_UNROLL_MIN_STEPS,
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

/// Room for one block's sums, row-major with row stride n, in whole chunks of eight (see
/// [`finish`]).
const BLOCK: usize = (NARROW_STREAM_ROWS * NARROW_N).next_multiple_of(8);

/// Blocks of rows by column tiles, in one of two shapes:
/// - while the rows of A this call reads stay well inside L3 ([`NARROW_STREAM_BYTES`]), blocks of
///   [`NARROW_BLOCK_ROWS`] rows with tiles up to [`NARROW_TILE_COLS`] wide: the fewest loads
///   per FMA that sixteen vector registers allow;
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
            blocks::<V, NARROW_STREAM_ROWS, NARROW_STREAM_TILE_COLS>(g, bt, ldbt, rows)
        } else {
            blocks::<V, NARROW_BLOCK_ROWS, NARROW_TILE_COLS>(g, bt, ldbt, rows)
        }
    }
}

/// [`rows_body`] with blocks of `H` rows and column tiles at most `W` wide.
///
/// # Safety
/// As for [`rows_body`].
#[inline(always)]
unsafe fn blocks<V: Vector, const H: usize, const W: usize>(
    g: &Gemm,
    bt: &[f32],
    ldbt: usize,
    rows: Range<usize>,
) {
    debug_assert!(H <= NARROW_STREAM_ROWS);
    let n = g.n;
    let (widths, count) = column_tiles(n, W);
    // One block's lane sums, then its sums, row-major with row stride n.
    // SAFETY: V's instructions are supported (the caller's contract).
    let mut acc = [unsafe { V::zero() }; BLOCK];
    let mut sums = [0f32; BLOCK];
    // The bias once per row of a block, for the epilogue (see `store`).
    let mut bias = [0f32; BLOCK];
    let bias = match g.bias {
        Some(b) => {
            for (x, y) in bias.iter_mut().zip(b[..n].iter().cycle()) {
                *x = *y;
            }
            &bias[..H * n]
        }
        None => &bias[..0],
    };
    let mut i = rows.start;
    // SAFETY (whole body): every tile reads rows i..i+h of A (k floats each, inside `a` as
    // checked by the public wrapper) and rows j..j+w of bt; `store` writes inside C.
    unsafe {
        while i < rows.end {
            let h = match rows.end - i {
                left if left >= H => H,
                left if left >= 2 => 2,
                _ => 1,
            };
            if h == H {
                // One copy of the full block's tiles per n, each tile's width a constant:
                // choosing them at run time cost 3-5% at 128x512x10.
                match n {
                    1 => full::<V, H, W, 1>(&mut acc, g, i, bt, ldbt),
                    2 => full::<V, H, W, 2>(&mut acc, g, i, bt, ldbt),
                    3 => full::<V, H, W, 3>(&mut acc, g, i, bt, ldbt),
                    4 => full::<V, H, W, 4>(&mut acc, g, i, bt, ldbt),
                    5 => full::<V, H, W, 5>(&mut acc, g, i, bt, ldbt),
                    6 => full::<V, H, W, 6>(&mut acc, g, i, bt, ldbt),
                    7 => full::<V, H, W, 7>(&mut acc, g, i, bt, ldbt),
                    8 => full::<V, H, W, 8>(&mut acc, g, i, bt, ldbt),
                    9 => full::<V, H, W, 9>(&mut acc, g, i, bt, ldbt),
                    10 => full::<V, H, W, 10>(&mut acc, g, i, bt, ldbt),
                    11 => full::<V, H, W, 11>(&mut acc, g, i, bt, ldbt),
                    _ => full::<V, H, W, 12>(&mut acc, g, i, bt, ldbt),
                }
            } else {
                // The last rows, two or one at a time.
                let mut j = 0;
                for &w in &widths[..count] {
                    match h {
                        2 => tile::<V, 2>(&mut acc, n, g, i, bt, ldbt, j, w),
                        _ => tile::<V, 1>(&mut acc, n, g, i, bt, ldbt, j, w),
                    }
                    j += w;
                }
            }
            if g.ldc == n {
                finish_direct(&acc, h * n, g, i, bias);
            } else {
                finish(&mut sums, &acc, h * n);
                store::<V>(g, i, n, &sums[..h * n], bias);
            }
            i += h;
        }
    }
}

/// The tiles of a full block of `H` rows by `N` columns from row `i0`, with widths fixed at
/// compile time (the first three of them).
///
/// # Safety
/// As for [`dot_tile`]; n == N.
#[inline(always)]
unsafe fn full<V: Vector, const H: usize, const W: usize, const N: usize>(
    acc: &mut [V],
    g: &Gemm,
    i0: usize,
    bt: &[f32],
    ldbt: usize,
) {
    let (widths, count) = const { column_tiles(N, W) };
    let [w0, w1, w2, ..] = widths;
    // SAFETY: forwarded contract.
    unsafe {
        if count > 0 {
            tile::<V, H>(acc, N, g, i0, bt, ldbt, 0, w0);
        }
        if count > 1 {
            tile::<V, H>(acc, N, g, i0, bt, ldbt, w0, w1);
        }
        if count > 2 {
            tile::<V, H>(acc, N, g, i0, bt, ldbt, w0 + w1, w2);
        }
        let mut j = w0 + w1 + w2;
        for &w in &widths[count.min(3)..count] {
            tile::<V, H>(acc, N, g, i0, bt, ldbt, j, w);
            j += w;
        }
    }
}

/// Splits n columns into tiles at most `max_w` wide, as even as possible (with `max_w` 4: 10
/// is 4 + 3 + 3, 6 is 3 + 3, 9 is 3 + 3 + 3); returns the widths and their count.
const fn column_tiles(n: usize, max_w: usize) -> ([usize; NARROW_N], usize) {
    let count = n.div_ceil(max_w);
    let mut widths = [0; NARROW_N];
    let mut t = 0;
    while t < count {
        // The first n % count tiles take one column more than the rest.
        widths[t] = n / count + (t < n % count) as usize;
        t += 1;
    }
    (widths, count)
}

/// The lane sums of rows `i0..i0 + HH` by columns `j0..j0 + w` (1 <= w <= 4, HH·w <= 12),
/// into `acc` (row stride n).
///
/// A register tile wants about eight independent sums, to cover the FMA's latency, and few
/// loads per FMA: a 3 x 4 tile has 12 sums and 7 loads, and with the three rows of A and one
/// of B fills the 16 ymm registers.
///
/// # Safety
/// As for [`dot_tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<V: Vector, const HH: usize>(
    acc: &mut [V],
    n: usize,
    g: &Gemm,
    i0: usize,
    bt: &[f32],
    ldbt: usize,
    j0: usize,
    w: usize,
) {
    let at = &mut acc[j0..];
    // SAFETY: forwarded contract.
    unsafe {
        match w {
            1 => put(at, n, dot_tile::<V, HH, 1>(g, i0, bt, ldbt, j0)),
            2 => put(at, n, dot_tile::<V, HH, 2>(g, i0, bt, ldbt, j0)),
            3 if HH <= 4 => put(at, n, dot_tile::<V, HH, 3>(g, i0, bt, ldbt, j0)),
            4 if HH <= 3 => put(at, n, dot_tile::<V, HH, 4>(g, i0, bt, ldbt, j0)),
            _ => unreachable!("narrow tile of {HH} x {w}"),
        }
    }
}

/// Copies a tile's lane sums into the block's, whose row stride is `n`.
#[inline(always)]
fn put<V: Vector, const RR: usize, const CC: usize>(acc: &mut [V], n: usize, tile: [[V; CC]; RR]) {
    for (r, t) in tile.iter().enumerate() {
        acc[r * n..][..CC].copy_from_slice(t);
    }
}

/// `sum_p A[i0 + r, p] · bt[j0 + c, p]` for an `RR x CC` block, as one vector of lane sums
/// each: lane t holds the products at p = t, t + LANES, .. in order (the last vector of p
/// loaded with zeros past k).
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
) -> [[V; CC]; RR] {
    let (mut a, mut b) = ([g.a.as_ptr(); RR], [bt.as_ptr(); CC]);
    for (r, p) in a.iter_mut().enumerate() {
        *p = g.a[(i0 + r) * g.lda..].as_ptr();
    }
    for (c, p) in b.iter_mut().enumerate() {
        *p = bt[(j0 + c) * ldbt..].as_ptr();
    }
    let full = g.k - g.k % V::LANES;
    // SAFETY: p + LANES <= k on every whole load, the partial loads stop at k, and each row
    // holds k floats.
    unsafe {
        let mut acc = [[V::zero(); CC]; RR];
        // Pointers to the end of the whole vectors and an offset counting up to zero: the
        // loop's test is then the flags of its one add, with no bound held in a register.
        let (a, b) = (a.map(|x| x.add(full)), b.map(|x| x.add(full)));
        let mut q = -(full as isize);
        // Long rows eight vectors a pass, then what is left one at a time: the same steps
        // in the same order, in fewer trips round the loop.
        if full >= NARROW_UNROLL_MIN_STEPS * V::LANES {
            let pass = (NARROW_UNROLL * V::LANES) as isize;
            while q <= -pass {
                for u in 0..NARROW_UNROLL {
                    step(&mut acc, &a, &b, q + (u * V::LANES) as isize, V::LANES);
                }
                q += pass;
            }
        }
        while q < 0 {
            step(&mut acc, &a, &b, q, V::LANES);
            q += V::LANES as isize;
        }
        // The tail of k as one more step, zero in the lanes past k.
        if full < g.k {
            step(&mut acc, &a, &b, 0, g.k - full);
        }
        acc
    }
}

/// One vector of p for a [`dot_tile`], from offset `p` of each row: `len` floats (`len <
/// LANES` loads zeros past them). Whichever operand has fewer rows is held in registers
/// while the other streams past, so the step needs RR·CC + min(RR, CC) + 1 vector registers.
///
/// # Safety
/// `p + len` floats are readable from each pointer; `V`'s instructions are supported.
#[inline(always)]
unsafe fn step<V: Vector, const RR: usize, const CC: usize>(
    acc: &mut [[V; CC]; RR],
    a: &[*const f32; RR],
    b: &[*const f32; CC],
    p: isize,
    len: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        if RR <= CC {
            let mut av = [V::zero(); RR];
            for (x, &ap) in av.iter_mut().zip(a) {
                *x = load(ap.offset(p), len);
            }
            for (c, &bp) in b.iter().enumerate() {
                let bv = load::<V>(bp.offset(p), len);
                for (row, x) in acc.iter_mut().zip(&av) {
                    row[c] = x.mul_add(bv, row[c]);
                }
            }
        } else {
            let mut bv = [V::zero(); CC];
            for (y, &bp) in bv.iter_mut().zip(b) {
                *y = load(bp.offset(p), len);
            }
            for (row, &ap) in acc.iter_mut().zip(a) {
                let x = load::<V>(ap.offset(p), len);
                for (s, y) in row.iter_mut().zip(&bv) {
                    *s = x.mul_add(*y, *s);
                }
            }
        }
    }
}

/// `len` floats at `p` as a vector: a whole one, or zeros past `len`.
///
/// # Safety
/// As for [`Vector::load_partial`] (or [`Vector::load`] when `len == LANES`).
#[inline(always)]
unsafe fn load<V: Vector>(p: *const f32, len: usize) -> V {
    // SAFETY: forwarded contract.
    unsafe {
        if len == V::LANES {
            V::load(p)
        } else {
            V::load_partial(p, len)
        }
    }
}

/// The sums of a block of rows: each lane sum added across its lanes, eight at a time (bit
/// for bit [`Vector::reduce_sum`]). Every tile shape forms each element this way, so the
/// shape never changes a result.
///
/// # Safety
/// `V`'s instructions are supported.
#[inline(always)]
unsafe fn finish<V: Vector>(sums: &mut [f32; BLOCK], acc: &[V; BLOCK], len: usize) {
    // Whole chunks of eight, the last running past the block's sums into stale lane sums
    // (the arrays are sized in eights), so that no copy has a length known only at run time.
    for e in (0..len).step_by(8) {
        // SAFETY: V's instructions are supported (the caller's contract).
        let s = unsafe { V::reduce8(acc[e..e + 8].try_into().unwrap()) };
        sums[e..e + 8].copy_from_slice(&s);
    }
}

/// [`finish`] and [`store`] in one pass, for C's rows contiguous (ldc == n): each chunk of
/// eight sums goes through the epilogue and into C as it is reduced.
///
/// # Safety
/// As for [`store`]; `len` is the block's h * n.
#[inline(always)]
unsafe fn finish_direct<V: Vector>(
    acc: &[V; BLOCK],
    len: usize,
    g: &Gemm,
    i0: usize,
    bias: &[f32],
) {
    // SAFETY: the block's len floats from row i0 lie inside C (the contract; ldc == n).
    let c = unsafe { std::slice::from_raw_parts_mut(g.c.add(i0 * g.ldc), len) };
    // One choice of the epilogue's steps per block, none per chunk. alpha == 1 skips the
    // product, which would not change a bit.
    // beta == 0 must not read C: it may hold NaN.
    // SAFETY (both): V's instructions are supported (the caller's contract).
    let steps = (g.beta != 0.0, g.bias.is_some(), g.relu);
    if g.alpha == 1.0 {
        unsafe { chunks_for::<V, false>(acc, c, g, bias, steps) }
    } else {
        unsafe { chunks_for::<V, true>(acc, c, g, bias, steps) }
    }
}

/// [`chunks`] with the steps `(beta, bias, relu)` fixed at compile time.
///
/// # Safety
/// `V`'s instructions are supported.
#[inline(always)]
unsafe fn chunks_for<V: Vector, const SCALE: bool>(
    acc: &[V; BLOCK],
    c: &mut [f32],
    g: &Gemm,
    bias: &[f32],
    steps: (bool, bool, bool),
) {
    // SAFETY: forwarded contract.
    unsafe {
        match steps {
            (false, false, false) => chunks::<V, SCALE, false, false, false>(acc, c, g, bias),
            (false, false, true) => chunks::<V, SCALE, false, false, true>(acc, c, g, bias),
            (false, true, false) => chunks::<V, SCALE, false, true, false>(acc, c, g, bias),
            (false, true, true) => chunks::<V, SCALE, false, true, true>(acc, c, g, bias),
            (true, false, false) => chunks::<V, SCALE, true, false, false>(acc, c, g, bias),
            (true, false, true) => chunks::<V, SCALE, true, false, true>(acc, c, g, bias),
            (true, true, false) => chunks::<V, SCALE, true, true, false>(acc, c, g, bias),
            (true, true, true) => chunks::<V, SCALE, true, true, true>(acc, c, g, bias),
        }
    }
}

/// The sums of [`finish_direct`], eight at a time, through the epilogue into `c` (which
/// lines up with `acc` and with `bias`, the bias repeated once per row of the block): each
/// element gets `alpha·s` (when SCALE), then `+ beta·C` (a product and a sum, not fused),
/// `+ bias` and relu, in that order, as [`store`] does.
///
/// # Safety
/// `V`'s instructions are supported; `acc` holds lane sums for every element of `c`.
#[inline(always)]
unsafe fn chunks<
    V: Vector,
    const SCALE: bool,
    const BETA: bool,
    const BIAS: bool,
    const RELU: bool,
>(
    acc: &[V; BLOCK],
    c: &mut [f32],
    g: &Gemm,
    bias: &[f32],
) {
    // Read alpha and beta afresh for each block: hoisted out of the loops, their broadcasts
    // would hold a vector register through the 3 x 4 tile's loop, which needs all sixteen,
    // and an accumulator would spill (1.3x slower at 128x512x10).
    let (alpha, beta) = std::hint::black_box((g.alpha, g.beta));
    let len = c.len();
    let mut e = 0;
    // SAFETY: V's instructions are supported (the contract); every access is inside `c`
    // (e + 8 <= len) or `bias` (as long as `c` when BIAS).
    unsafe {
        // Whole chunks: one vector where the vector is eight lanes wide, else fixed-length
        // loops, which compile to vector instructions too.
        while e + 8 <= len {
            let s = V::reduce8(acc[e..e + 8].try_into().unwrap());
            let c8: &mut [f32; 8] = (&mut c[e..e + 8]).try_into().unwrap();
            if V::LANES == 8 {
                let cp = c8.as_mut_ptr();
                let mut v = V::load(s.as_ptr());
                if SCALE {
                    v = v.mul(V::splat(alpha));
                }
                if BETA {
                    v = v.add(V::load(cp).mul(V::splat(beta)));
                }
                if BIAS {
                    v = v.add(V::load(bias[e..e + 8].as_ptr()));
                }
                if RELU {
                    v = v.max(V::zero());
                }
                v.store(cp);
            } else {
                let mut v = if SCALE { s.map(|x| alpha * x) } else { s };
                if BETA {
                    for (v, x) in v.iter_mut().zip(c8.iter()) {
                        *v += beta * x;
                    }
                }
                if BIAS {
                    for (v, b) in v.iter_mut().zip(&bias[e..e + 8]) {
                        *v += b;
                    }
                }
                if RELU {
                    v = v.map(|x| x.max(0.0));
                }
                *c8 = v;
            }
            e += 8;
        }
        // The last few, element by element.
        if e < len {
            let s = V::reduce8(acc[e..e + 8].try_into().unwrap());
            for (t, x) in c[e..].iter_mut().enumerate() {
                element::<SCALE, BETA, BIAS, RELU>(x, s[t], alpha, beta, bias, e + t);
            }
        }
    }
}

/// Writes rows of sums into C from row `i0` through the alpha/beta/bias/relu epilogue: each
/// element gets `alpha·s`, then `+ beta·C` (a product and a sum, not fused), `+ bias` and
/// relu, in that order, in one loop a row compiled for the steps this call has. `bias` is
/// the bias repeated once per row of the block (or empty). For C's rows apart (ldc > n);
/// [`finish_direct`] does contiguous ones.
///
/// # Safety
/// The rows lie inside C and belong to this thread; `V`'s instructions are supported.
#[inline(always)]
unsafe fn store<V: Vector>(g: &Gemm, i0: usize, n: usize, sums: &[f32], bias: &[f32]) {
    for (r, s) in sums.chunks_exact(n).enumerate() {
        // SAFETY: n floats from row i0 + r lie inside C by the contract.
        let c = unsafe { std::slice::from_raw_parts_mut(g.c.add((i0 + r) * g.ldc), n) };
        let bias = &bias[..bias.len().min(n)];
        // beta == 0 must not read C: it may hold NaN.
        // SAFETY: V's instructions are supported (the caller's contract); the lengths match.
        unsafe {
            // As in `chunk`, alpha and beta are read afresh.
            let (alpha, beta) = std::hint::black_box((g.alpha, g.beta));
            match (g.beta != 0.0, g.bias.is_some(), g.relu) {
                (false, false, false) => row::<V, false, false, false>(c, s, alpha, beta, bias),
                (false, false, true) => row::<V, false, false, true>(c, s, alpha, beta, bias),
                (false, true, false) => row::<V, false, true, false>(c, s, alpha, beta, bias),
                (false, true, true) => row::<V, false, true, true>(c, s, alpha, beta, bias),
                (true, false, false) => row::<V, true, false, false>(c, s, alpha, beta, bias),
                (true, false, true) => row::<V, true, false, true>(c, s, alpha, beta, bias),
                (true, true, false) => row::<V, true, true, false>(c, s, alpha, beta, bias),
                (true, true, true) => row::<V, true, true, true>(c, s, alpha, beta, bias),
            }
        }
    }
}

/// One row of [`store`], with its steps fixed at compile time: whole
/// vectors, then the last few floats one at a time.
///
/// # Safety
/// `V`'s instructions are supported; `s` and (when BIAS) `bias` are as long as `c`.
#[inline(always)]
unsafe fn row<V: Vector, const BETA: bool, const BIAS: bool, const RELU: bool>(
    c: &mut [f32],
    s: &[f32],
    alpha: f32,
    beta: f32,
    bias: &[f32],
) {
    let len = c.len();
    let full = len - len % V::LANES;
    // SAFETY: every vector lies inside the three slices (j + LANES <= full <= len).
    unsafe {
        let (va, vb, zero) = (V::splat(alpha), V::splat(beta), V::zero());
        for j in (0..full).step_by(V::LANES) {
            let mut v = V::load(s.as_ptr().add(j)).mul(va);
            if BETA {
                v = v.add(V::load(c.as_ptr().add(j)).mul(vb));
            }
            if BIAS {
                v = v.add(V::load(bias.as_ptr().add(j)));
            }
            if RELU {
                v = v.max(zero);
            }
            v.store(c.as_mut_ptr().add(j));
        }
    }
    for j in full..len {
        element::<true, BETA, BIAS, RELU>(&mut c[j], s[j], alpha, beta, bias, j);
    }
}

/// The epilogue for one element `x` of C with sum `s`: `alpha·s` (when SCALE), `+ beta·x` (a
/// product and a sum, not fused), `+ bias[j]`, relu, in that order.
#[inline(always)]
fn element<const SCALE: bool, const BETA: bool, const BIAS: bool, const RELU: bool>(
    x: &mut f32,
    s: f32,
    alpha: f32,
    beta: f32,
    bias: &[f32],
    j: usize,
) {
    let mut y = if SCALE { alpha * s } else { s };
    if BETA {
        y += beta * *x;
    }
    if BIAS {
        y += bias[j];
    }
    if RELU {
        y = y.max(0.0);
    }
    *x = y;
}
