//! The narrow path: C with few columns (`n <= NARROW_N`) and A not transposed, such as the
//! 128x512x10 output layer of the MNIST network.
//!
//! The register tile of the main path is 16 (AVX2) or 32 (AVX-512) columns wide, so n = 10
//! leaves most of it idle, and packing A costs as much as the arithmetic. Here every element
//! of C is instead a dot product of a row of A, read in place, with a column of op(B), four
//! products a step: a vector holds four-lane sums for `LANES / 4` columns, one per 128-bit
//! quarter, each step broadcasts four floats of A to every quarter, and op(B) is copied so
//! that one load brings the next four floats of each of those columns ([`pack_quads`]). At
//! the end, four vectors' sums reduce within their quarters to one vector of C's row, in
//! column order: no shuffle crosses a 128-bit lane, and A's 16-byte loads split no cache line
//! when its rows start on 16 bytes. Against lanes along k with one column a vector (before
//! 2026-11-29 15:00), the sums take half the shuffles, none across lanes, and the copy of
//! op(B) needs no cross-lane shuffle either; the price is a padded column where n is odd
//! (n = 7 is packed as 8).
//!
//! Every element's sum is formed the same way in every tile shape (lane `l` of its quarter
//! adds the products at p = l, l + 4, .., in order; then `(l0 + l1) + (l2 + l3)`), so neither
//! the tiles nor the thread count change a result; the AVX2 and AVX-512 paths add in the same
//! order.

use super::Gemm;
use super::kernel::{Isa, Vector, zmm_half_rate};
use super::pack::{PACK, pack_quads, quad_vectors};
use super::params::{NARROW_N, NARROW_SPLIT_ROWS, NARROW_STREAM_BYTES};
use std::ops::Range;

impl Gemm<'_> {
    /// Runs the problem on the narrow path. Requires `ta == No` and `n <= NARROW_N`; any m, k.
    ///
    /// # Safety
    /// As for [`Gemm::run`].
    pub(super) unsafe fn narrow(&self, isa: Isa) {
        let lanes = Vectors::choose(isa, self.n).lanes();
        let ldp = lanes / 4 * self.k.next_multiple_of(4);
        // Borrow the packing buffer by value rather than holding the thread-local borrowed
        // across rayon's join, where this thread may run another sgemm's task.
        let mut buf = PACK.with_borrow_mut(|(_, b)| std::mem::take(b));
        let bp = buf.get(quad_vectors(self.n, lanes) * ldp);
        pack_quads(bp, ldp, self.b, self.ldb, self.tb, self.k, self.n, lanes);
        // SAFETY: forwarded contract; bp holds op(B) in the layout rows_body reads.
        unsafe { self.split_rows(isa, narrow_rows, NARROW_SPLIT_ROWS, bp, ldp) };
        PACK.with_borrow_mut(|(_, b)| *b = buf);
    }
}

/// The vectors the narrow path runs on, and how many registers its tiles may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Vectors {
    /// Sixteen lanes (AVX-512).
    Zmm,
    /// Eight lanes with AVX-512VL's 32 registers, where 512-bit FMAs run at half rate.
    Ymm32,
    /// Eight lanes in 16 registers (AVX2).
    Ymm16,
    /// Eight lanes of `wide`.
    Portable,
}

impl Vectors {
    /// The narrow path's vectors on `isa`. Its vectors are partly idle, so the AVX-512 path
    /// runs eight-lane vectors where 512-bit FMAs run at half the rate of 256-bit ones
    /// ([`zmm_half_rate`]): they then do as much work a cycle and waste fewer lanes (n = 10
    /// fills five of them exactly, against three sixteen-lane vectors holding twelve
    /// columns). Both form every sum in the same order, so results do not change. Measured
    /// on Zen 4, one thread, A/B within one process (2026-11-29), best call eight / sixteen
    /// lanes, both in tiles for 16 registers: 128x512x10 12.6 / 15.2 µs, 512x64x10
    /// 7.6 / 9.9 µs, 1000x784x10 159 / 170 µs. The transposed narrow path measured the other
    /// way (512x64x10 TN: 6.3 µs on AVX-512, 7.0 on AVX2), and the small-m path's order
    /// flipped with the order of the calls, so those keep sixteen lanes.
    ///
    /// With AVX-512VL the eight-lane vectors have 32 registers, which hold wider tiles (4 x 5
    /// vectors at n = 10, against 2 x 5 in 16). A/B against 3b6ec3a (16 registers) on Zen 4,
    /// one thread, median of paired speed ratios (2026-11-30): 128x512xn 1.038–1.054 at
    /// n = 10, 1.03–1.045 at 5 and 6, 1.02–1.035 at 7 and 8, 1.045 at 9, 1.010 at 11, 1.041
    /// at 12; 512x64x10 1.086; 1000x784x10 1.145 (1.155 on two threads); 4000x784x10, whose
    /// A streams in the same 6 x 2 tiles either way, 0.995 (1.356 on two threads, where each
    /// thread's A fits). Rows of one or two vectors (n <= 4) stay in 16 registers: compiled
    /// with AVX-512VL, even the same tiles ran 0.89–0.90 at n = 4 (cause not found).
    fn choose(isa: Isa, n: usize) -> Vectors {
        match isa {
            Isa::Avx512 if zmm_half_rate() && Isa::Avx2.is_supported() => {
                if quad_vectors(n, 8) >= 3 && avx512vl() {
                    Vectors::Ymm32
                } else {
                    Vectors::Ymm16
                }
            }
            Isa::Avx512 => Vectors::Zmm,
            Isa::Avx2 => Vectors::Ymm16,
            Isa::Portable => Vectors::Portable,
        }
    }

    /// Floats a vector holds.
    fn lanes(self) -> usize {
        if self == Vectors::Zmm { 16 } else { 8 }
    }
}

/// Whether this CPU has AVX-512VL, which gives eight-lane vectors 32 registers.
fn avx512vl() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rows `rows` of C on the narrow path's vectors for `isa` ([`Vectors::choose`]), with op(B)
/// packed for them in `bp`, `ldp`.
///
/// # Safety
/// As for [`rows_body`]; `isa` is supported by this CPU.
unsafe fn narrow_rows(isa: Isa, g: &Gemm, bp: &[f32], ldp: usize, rows: Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    use super::kernel::{avx2::V8, avx512::V16};
    /// # Safety
    /// AVX-512F is available; as for the body.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn zmm(g: &Gemm, bp: &[f32], ldp: usize, rows: Range<usize>) {
        // SAFETY: forwarded contract; the features V16 needs are enabled here.
        unsafe { rows_body::<V16, 16>(g, bp, ldp, rows) }
    }
    /// # Safety
    /// AVX2, FMA and AVX-512VL are available; as for the body.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    unsafe fn ymm32(g: &Gemm, bp: &[f32], ldp: usize, rows: Range<usize>) {
        // SAFETY: forwarded contract; V8's features are enabled, and AVX-512VL gives it
        // 32 registers.
        unsafe { rows_body::<V8, 32>(g, bp, ldp, rows) }
    }
    /// # Safety
    /// AVX2 and FMA are available; as for the body.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ymm16(g: &Gemm, bp: &[f32], ldp: usize, rows: Range<usize>) {
        // SAFETY: forwarded contract; the features V8 needs are enabled here.
        unsafe { rows_body::<V8, 16>(g, bp, ldp, rows) }
    }
    // SAFETY: the caller passes a supported isa, and Vectors::choose checks what else each
    // choice needs; forwarded contract.
    unsafe {
        match Vectors::choose(isa, g.n) {
            #[cfg(target_arch = "x86_64")]
            Vectors::Zmm => zmm(g, bp, ldp, rows),
            #[cfg(target_arch = "x86_64")]
            Vectors::Ymm32 => ymm32(g, bp, ldp, rows),
            #[cfg(target_arch = "x86_64")]
            Vectors::Ymm16 => ymm16(g, bp, ldp, rows),
            _ => rows_body::<super::kernel::portable::W8, 16>(g, bp, ldp, rows),
        }
    }
}

/// Room for one block's lane sums: the most vectors a row takes ([`quad_vectors`] of
/// `NARROW_N` columns on eight lanes) times the most rows a block has.
const BLOCK: usize = quad_vectors(NARROW_N, 8) * 8;

/// Blocks of rows, each by every packed vector of op(B) (`bp`, `ldp`: see [`pack_quads`]), in
/// register tiles of `H` rows by at most `W` vectors:
/// - while the rows of A this call reads stay well inside L3 ([`NARROW_STREAM_BYTES`]), one
///   tile a block covering all of C's columns, with as many rows as `REGS` vector registers
///   allow (A held in registers when it has the fewer rows, else B): for 16, 8 x 1, 6 x 2,
///   3 x 3, 3 x 4, 2 x 5, 2 x 6 vectors; for 32, 6 x 3, 4 x 4, 4 x 5, 4 x 6 from three
///   vectors on (sixteen-lane vectors, which have 32 registers too, keep the shapes for 16:
///   with the wider ones they measured level on Zen 4 at full rate);
/// - beyond that, blocks of six rows in tiles of 6 x 2 vectors, so that six rows of A stream
///   from memory at once, which keeps more misses in flight.
///
/// # Safety
/// As for [`Gemm::run`]; rows `rows` of C belong to this call alone; `bp` is op(B) packed by
/// [`pack_quads`] for `V::LANES`; `V`'s instructions are supported.
#[inline(always)]
unsafe fn rows_body<V: Vector, const REGS: usize>(
    g: &Gemm,
    bp: &[f32],
    ldp: usize,
    rows: Range<usize>,
) {
    let a_bytes = rows.len() * g.k * size_of::<f32>();
    let nv = quad_vectors(g.n, V::LANES);
    // SAFETY: forwarded contract.
    unsafe {
        if a_bytes > NARROW_STREAM_BYTES && nv > 2 {
            match nv {
                3 => blocks::<V, 6, 2, 3>(g, bp, ldp, rows),
                4 => blocks::<V, 6, 2, 4>(g, bp, ldp, rows),
                5 => blocks::<V, 6, 2, 5>(g, bp, ldp, rows),
                _ => blocks::<V, 6, 2, 6>(g, bp, ldp, rows),
            }
        } else if REGS >= 32 && nv > 2 {
            match nv {
                3 => blocks::<V, 6, 3, 3>(g, bp, ldp, rows),
                4 => blocks::<V, 4, 4, 4>(g, bp, ldp, rows),
                5 => blocks::<V, 4, 5, 5>(g, bp, ldp, rows),
                _ => blocks::<V, 4, 6, 6>(g, bp, ldp, rows),
            }
        } else {
            match nv {
                1 => blocks::<V, 8, 1, 1>(g, bp, ldp, rows),
                2 => blocks::<V, 6, 2, 2>(g, bp, ldp, rows),
                3 => blocks::<V, 3, 3, 3>(g, bp, ldp, rows),
                4 => blocks::<V, 3, 4, 4>(g, bp, ldp, rows),
                5 => blocks::<V, 2, 5, 5>(g, bp, ldp, rows),
                _ => blocks::<V, 2, 6, 6>(g, bp, ldp, rows),
            }
        }
    }
}

/// [`rows_body`] for rows of `NV` vectors, in blocks of `H` rows and tiles at most `W`
/// vectors wide; the last rows one at a time.
///
/// # Safety
/// As for [`rows_body`]; NV is the rows' vector count.
#[inline(always)]
unsafe fn blocks<V: Vector, const H: usize, const W: usize, const NV: usize>(
    g: &Gemm,
    bp: &[f32],
    ldp: usize,
    rows: Range<usize>,
) {
    const { assert!(H * NV <= BLOCK && W <= NV) };
    // One block's lane sums, row by row.
    // SAFETY: V's instructions are supported (the caller's contract).
    let mut acc = [unsafe { V::zero() }; BLOCK];
    let mut i = rows.start;
    // SAFETY (whole body): every tile reads rows i..i+h of A (k floats each, inside `a` as
    // checked by the public wrapper) and vectors of bp; `finish` writes rows of C.
    unsafe {
        while i < rows.end {
            let h = if rows.end - i >= H { H } else { 1 };
            let mut t = 0;
            while t + W <= NV {
                if h == H {
                    put(&mut acc, NV, t, dot_tile::<V, H, W>(g, i, bp, ldp, t));
                } else {
                    put(&mut acc, NV, t, dot_tile::<V, 1, W>(g, i, bp, ldp, t));
                }
                t += W;
            }
            // What is left past the tiles of W (with blocks of six rows), one vector a tile.
            while t < NV {
                if h == H {
                    put(&mut acc, NV, t, dot_tile::<V, H, 1>(g, i, bp, ldp, t));
                } else {
                    put(&mut acc, NV, t, dot_tile::<V, 1, 1>(g, i, bp, ldp, t));
                }
                t += 1;
            }
            finish(&acc, h, NV, g, i);
            i += h;
        }
    }
}

/// Copies a tile's lane sums into the block's, whose rows are `nv` vectors apart, from vector
/// `t0`.
#[inline(always)]
fn put<V: Vector, const RR: usize, const CC: usize>(
    acc: &mut [V],
    nv: usize,
    t0: usize,
    tile: [[V; CC]; RR],
) {
    for (r, x) in tile.iter().enumerate() {
        acc[r * nv + t0..][..CC].copy_from_slice(x);
    }
}

/// The lane sums of rows `i0..i0 + RR` of A with packed vectors `t0..t0 + CC` of op(B).
///
/// # Safety
/// Rows `i0..i0+RR` of A and vectors `t0..t0+CC` of bp exist; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn dot_tile<V: Vector, const RR: usize, const CC: usize>(
    g: &Gemm,
    i0: usize,
    bp: &[f32],
    ldp: usize,
    t0: usize,
) -> [[V; CC]; RR] {
    let (mut a, mut b) = ([g.a.as_ptr(); RR], [bp.as_ptr(); CC]);
    for (r, p) in a.iter_mut().enumerate() {
        *p = g.a[(i0 + r) * g.lda..].as_ptr();
    }
    for (c, p) in b.iter_mut().enumerate() {
        *p = bp[(t0 + c) * ldp..].as_ptr();
    }
    let steps = g.k / 4;
    // Floats of a packed vector per step: LANES / 4 columns by four.
    let width = V::LANES as isize;
    // SAFETY: each step reads four floats of A at 4·s < 4·steps <= k and one vector of bp at
    // LANES·s, inside the vector's ldp >= LANES·ceil(k / 4) floats.
    unsafe {
        let mut acc = [[V::zero(); CC]; RR];
        // Pointers to the end of the whole steps and a step count rising to zero: the loop's
        // test is then the flags of its one add.
        let (a, b) = (
            a.map(|x| x.add(4 * steps)),
            b.map(|x| x.add(V::LANES * steps)),
        );
        let mut q = -(steps as isize);
        // Two steps a trip while two are left: the same steps in the same order.
        while q < -1 {
            step(&mut acc, &a, 4 * q, &b, q * width);
            step(&mut acc, &a, 4 * (q + 1), &b, (q + 1) * width);
            q += 2;
        }
        if q < 0 {
            step(&mut acc, &a, 4 * q, &b, q * width);
        }
        // The last k % 4 floats of A, from a copy with zeros after them (the packed B holds
        // zeros there too).
        let left = g.k - 4 * steps;
        if left > 0 {
            let mut quads = [[0f32; 4]; RR];
            for (quad, &x) in quads.iter_mut().zip(&a) {
                // One to three floats, each on its own: a copy of `left` would call memcpy.
                for (t, y) in quad[..3].iter_mut().enumerate() {
                    if t < left {
                        *y = *x.add(t);
                    }
                }
            }
            let quads: [*const f32; RR] = std::array::from_fn(|r| quads[r].as_ptr());
            step(&mut acc, &quads, 0, &b, 0);
        }
        acc
    }
}

/// One step of a [`dot_tile`]: `acc[r][c] += (the quad at a[r] + a_off, broadcast) ·
/// (the vector at b[c] + b_off)`. Whichever operand has fewer rows is held in registers while
/// the other streams past, so the step needs RR·CC + min(RR, CC) + 1 vector registers.
///
/// # Safety
/// Four floats are readable at each `a[r] + a_off` and a vector at each `b[c] + b_off`; `V`'s
/// instructions are supported.
#[inline(always)]
unsafe fn step<V: Vector, const RR: usize, const CC: usize>(
    acc: &mut [[V; CC]; RR],
    a: &[*const f32; RR],
    a_off: isize,
    b: &[*const f32; CC],
    b_off: isize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        if RR <= CC {
            let mut av = [V::zero(); RR];
            for (x, &ap) in av.iter_mut().zip(a) {
                *x = V::broadcast_quad(ap.offset(a_off));
            }
            for (c, &bp) in b.iter().enumerate() {
                let bv = V::load(bp.offset(b_off));
                for (row, x) in acc.iter_mut().zip(&av) {
                    row[c] = x.mul_add(bv, row[c]);
                }
            }
        } else {
            let mut bv = [V::zero(); CC];
            for (y, &bp) in bv.iter_mut().zip(b) {
                *y = V::load(bp.offset(b_off));
            }
            for (row, &ap) in acc.iter_mut().zip(a) {
                let x = V::broadcast_quad(ap.offset(a_off));
                for (s, y) in row.iter_mut().zip(&bv) {
                    *s = x.mul_add(*y, *s);
                }
            }
        }
    }
}

/// Each row of a block into C: its vectors' lane sums four at a time through
/// [`Vector::reduce_quads`], then the epilogue, its steps chosen once a block: `alpha·s`
/// (skipped when alpha is 1, which would change no bit), `+ beta·C` (a product and a sum, not
/// fused; C is not read when beta is 0, as it may hold NaN), `+ bias`, relu, in that order.
///
/// # Safety
/// `acc` holds `h` rows of `nv` vectors of lane sums for rows `i0..i0 + h` of C, which lie
/// inside C and belong to this thread; `V`'s instructions are supported.
#[inline(always)]
unsafe fn finish<V: Vector>(acc: &[V; BLOCK], h: usize, nv: usize, g: &Gemm, i0: usize) {
    let steps = (g.beta != 0.0, g.bias.is_some(), g.relu);
    // SAFETY (both): forwarded contract.
    if g.alpha == 1.0 {
        unsafe { finish_for::<V, false>(acc, h, nv, g, i0, steps) }
    } else {
        unsafe { finish_for::<V, true>(acc, h, nv, g, i0, steps) }
    }
}

/// [`rows_out`] with the steps `(beta, bias, relu)` fixed at compile time.
///
/// # Safety
/// As for [`finish`].
#[inline(always)]
unsafe fn finish_for<V: Vector, const SCALE: bool>(
    acc: &[V; BLOCK],
    h: usize,
    nv: usize,
    g: &Gemm,
    i0: usize,
    steps: (bool, bool, bool),
) {
    // SAFETY: forwarded contract.
    unsafe {
        match steps {
            (false, false, false) => rows_out::<V, SCALE, false, false, false>(acc, h, nv, g, i0),
            (false, false, true) => rows_out::<V, SCALE, false, false, true>(acc, h, nv, g, i0),
            (false, true, false) => rows_out::<V, SCALE, false, true, false>(acc, h, nv, g, i0),
            (false, true, true) => rows_out::<V, SCALE, false, true, true>(acc, h, nv, g, i0),
            (true, false, false) => rows_out::<V, SCALE, true, false, false>(acc, h, nv, g, i0),
            (true, false, true) => rows_out::<V, SCALE, true, false, true>(acc, h, nv, g, i0),
            (true, true, false) => rows_out::<V, SCALE, true, true, false>(acc, h, nv, g, i0),
            (true, true, true) => rows_out::<V, SCALE, true, true, true>(acc, h, nv, g, i0),
        }
    }
}

/// [`finish`] with its steps fixed. A group of four vectors that covers `LANES` columns of C
/// goes through the epilogue as one vector; a short last group (see
/// [`quad_slot`](super::pack::quad_slot)) element by element.
///
/// # Safety
/// As for [`finish`].
#[inline(always)]
unsafe fn rows_out<
    V: Vector,
    const SCALE: bool,
    const BETA: bool,
    const BIAS: bool,
    const RELU: bool,
>(
    acc: &[V; BLOCK],
    h: usize,
    nv: usize,
    g: &Gemm,
    i0: usize,
) {
    // Read alpha and beta afresh for each block: hoisted out of the loops, their broadcasts
    // would hold vector registers through the tile loop, which needs all sixteen.
    let (alpha, beta) = std::hint::black_box((g.alpha, g.beta));
    let n = g.n;
    let bias = g.bias.unwrap_or(&[]);
    // SAFETY (whole body): V's instructions are supported (the contract); every vector
    // access lies inside C's row (j0 + LANES <= n) or the bias (as long as a row when BIAS).
    unsafe {
        for r in 0..h {
            // SAFETY: row i0 + r of C holds n floats and is this thread's (the contract).
            let c = std::slice::from_raw_parts_mut(g.c.add((i0 + r) * g.ldc), n);
            for group in 0..nv.div_ceil(4) {
                // A short group's q < 4 vectors reduce with whatever follows them in `acc`
                // (a fixed four, where a copy of q would be a call to memcpy): lanes of those
                // are not used. At most (h - 1)·nv + 4·ceil(nv / 4) <= 37 < BLOCK.
                let v = r * nv + 4 * group;
                let q = (nv - 4 * group).min(4);
                let s = V::reduce_quads([acc[v], acc[v + 1], acc[v + 2], acc[v + 3]]);
                let j0 = group * V::LANES;
                if q == 4 && j0 + V::LANES <= n {
                    let cp = c[j0..].as_mut_ptr();
                    let mut v = s;
                    if SCALE {
                        v = v.mul(V::splat(alpha));
                    }
                    if BETA {
                        v = v.add(V::load(cp).mul(V::splat(beta)));
                    }
                    if BIAS {
                        v = v.add(V::load(bias[j0..j0 + V::LANES].as_ptr()));
                    }
                    if RELU {
                        v = v.max(V::zero());
                    }
                    v.store(cp);
                } else {
                    // Lane 4·g + t is column j0 + t + q·g of a group of q vectors.
                    let mut lanes = [0f32; 16];
                    s.store(lanes.as_mut_ptr());
                    for (l, &x) in lanes[..V::LANES].iter().enumerate() {
                        let (quarter, t) = (l / 4, l % 4);
                        let j = j0 + t + q * quarter;
                        if t < q && j < n {
                            element::<SCALE, BETA, BIAS, RELU>(&mut c[j], x, alpha, beta, bias, j);
                        }
                    }
                }
            }
        }
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
