//! Panel packing: copies a block of op(A) or op(B) into the contiguous, zero-padded order the
//! microkernel streams (`kc` steps of `width` floats each, one micro-panel after another).
//! Scaling by alpha is left to the microkernel's store, so packing is a pure copy.

use super::params::NARROW_N;
use crate::kernels::Transpose;
use std::cell::RefCell;

/// Packs the block `tiles t0..t0+tn` x `depth p0..p0+kc` of a matrix into `dst`, as
/// `ceil(tn / width)` micro-panels of `kc * width` floats; tile indices past `tn` are zero.
///
/// Element (t, p) is at `src[t * ld + p]` when `depth_contiguous`, else at `src[p * ld + t]`.
/// For A, t is the row of op(A) (depth-contiguous when A is not transposed); for B, t is the
/// column of op(B) (depth-contiguous when B is transposed).
pub(crate) fn pack_panels(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    depth_contiguous: bool,
    tiles: (usize, usize),
    depth: (usize, usize),
    width: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if matches!(
        super::kernel::isa(),
        super::kernel::Isa::Avx2 | super::kernel::Isa::Avx512
    ) {
        // SAFETY: isa() only reports paths this CPU supports, and both imply AVX2.
        return unsafe { pack_avx2(dst, src, ld, depth_contiguous, tiles, depth, width) };
    }
    pack_width::<false>(dst, src, ld, depth_contiguous, tiles, depth, width)
}

/// [`pack_width`] compiled for AVX2: the compiler vectorises the copies for the target it
/// builds for, by default SSE (four floats a move).
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pack_avx2(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    depth_contiguous: bool,
    tiles: (usize, usize),
    depth: (usize, usize),
    width: usize,
) {
    pack_width::<true>(dst, src, ld, depth_contiguous, tiles, depth, width)
}

/// [`pack_panels`] for a width known at compile time; `AVX2` when the caller has checked that
/// the CPU supports AVX2 (full micro-panels of depth-contiguous rows then go through
/// [`rows_avx2`]).
#[inline(always)]
fn pack_width<const AVX2: bool>(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    depth_contiguous: bool,
    tiles: (usize, usize),
    depth: (usize, usize),
    width: usize,
) {
    // A compile-time width turns the per-step copies into a few vector moves.
    match width {
        4 => pack::<4, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        6 => pack::<6, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        8 => pack::<8, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        12 => pack::<12, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        16 => pack::<16, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        32 => pack::<32, AVX2>(dst, src, ld, depth_contiguous, tiles, depth),
        _ => unreachable!("no microkernel has width {width}"),
    }
}

#[inline(always)]
fn pack<const W: usize, const AVX2: bool>(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    depth_contiguous: bool,
    (t0, tn): (usize, usize),
    (p0, kc): (usize, usize),
) {
    let width = W;
    let full = tn / W;
    if !depth_contiguous && full > 1 {
        // Rows of the source hold the W-float steps of every panel side by side: read each
        // row once, in order (what the prefetchers follow), and write its steps into the
        // panels, rather than walking down the rows panel after panel.
        for p in 0..kc {
            let row = &src[(p0 + p) * ld + t0..][..full * W];
            for (panel, s) in row.chunks_exact(W).enumerate() {
                dst[panel * kc * W + p * W..][..W].copy_from_slice(s);
            }
        }
        if full * W == tn {
            return;
        }
    }
    let done = if !depth_contiguous && full > 1 {
        full
    } else {
        0
    };
    for (panel, d) in dst[..tn.div_ceil(width) * kc * width]
        .chunks_exact_mut(kc * width)
        .enumerate()
        .skip(done)
    {
        let first = t0 + panel * width;
        let here = width.min(t0 + tn - first);
        #[cfg(target_arch = "x86_64")]
        if AVX2 && depth_contiguous && here == W && (W.is_multiple_of(4) || W == 6) && kc >= 8 {
            let rows = &src[first * ld + p0..][..(W - 1) * ld + kc];
            // SAFETY: AVX2 is supported (the meaning of `AVX2`); `rows` holds W rows of kc
            // floats ld apart and `d` kc steps of W floats.
            unsafe { rows_avx2::<W>(d, rows, ld, kc) };
            continue;
        }
        if depth_contiguous && here == W {
            // Read W rows side by side and write each step's W floats contiguously: a
            // transpose by streams, far faster than W passes of strided single writes.
            let rows: [&[f32]; W] = std::array::from_fn(|t| &src[(first + t) * ld + p0..][..kc]);
            for (p, step) in d.chunks_exact_mut(W).enumerate() {
                for t in 0..W {
                    step[t] = rows[t][p];
                }
            }
        } else if depth_contiguous {
            for t in 0..here {
                let s = &src[(first + t) * ld + p0..][..kc];
                for (step, &v) in d.chunks_exact_mut(W).zip(s) {
                    step[t] = v;
                }
            }
            for step in d.chunks_exact_mut(W) {
                for v in &mut step[here..] {
                    *v = 0.0;
                }
            }
        } else if here == W {
            for (p, step) in d.chunks_exact_mut(W).enumerate() {
                let s: &[f32; W] = src[(p0 + p) * ld + first..][..W].try_into().unwrap();
                step.copy_from_slice(s);
            }
        } else {
            // Element loops: for a handful of floats a memcpy/memset call costs more.
            for (p, step) in d.chunks_exact_mut(W).enumerate() {
                let s = &src[(p0 + p) * ld + first..][..here];
                for (t, v) in step.iter_mut().enumerate() {
                    *v = if t < here { s[t] } else { 0.0 };
                }
            }
        }
    }
}

/// One full micro-panel of W depth-contiguous rows (A not transposed, or B transposed) into
/// `d` as kc steps of W floats: eight steps at a time, each eight rows turned round in
/// registers by [`block8x8`], and a last four rows (W = 12) or six (W = 6) by half of it;
/// the last `kc % 8` steps element by element. Against the element loops (which compile to
/// inserts and blends) whole calls gained about 1% (256³ to 1024³, 2026-11-29): the copy
/// waits on its loads from L3 more than on its instructions.
///
/// # Safety
/// The CPU supports AVX2; W is 6 or a multiple of 4; `src` holds W rows of `kc` floats, `ld`
/// apart, and `d` holds `kc * W` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2<const W: usize>(d: &mut [f32], src: &[f32], ld: usize, kc: usize) {
    use std::arch::x86_64::*;
    debug_assert!(d.len() >= kc * W && src.len() >= (W - 1) * ld + kc);
    let (s, o) = (src.as_ptr(), d.as_mut_ptr());
    let full = kc / 8 * 8;
    // SAFETY (the block): every load reads rows r < W at steps p..p + 8 <= kc, and every
    // store writes steps p..p + 8 of rows below W, inside `d` (the six-row stores write two
    // floats past a step only for steps before the block's last, which the next step's store
    // then overwrites).
    unsafe {
        for p in (0..full).step_by(8) {
            let row = |r: usize| _mm256_loadu_ps(s.add(r * ld + p));
            let mut r0 = 0;
            while r0 + 8 <= W {
                // Rows r0.. as the rows of a block of `transpose`, steps as its columns.
                block8x8(o, W, s, ld, r0, p);
                r0 += 8;
            }
            match W - r0 {
                4 => {
                    let q = transpose_quads([row(r0), row(r0 + 1), row(r0 + 2), row(r0 + 3)]);
                    for (c, v) in q.into_iter().enumerate() {
                        let at = |step: usize| o.add((p + step) * W + r0);
                        _mm_storeu_ps(at(c), _mm256_castps256_ps128(v));
                        _mm_storeu_ps(at(c + 4), _mm256_extractf128_ps::<1>(v));
                    }
                }
                6 => {
                    // W == 6: rows 0-3 and rows 4-5 turned round, each step stored as eight
                    // floats in order (its last two overwritten by the next step), the
                    // block's last step as four and two.
                    let z = _mm256_setzero_ps();
                    let lo = transpose_quads([row(0), row(1), row(2), row(3)]);
                    let hi = transpose_quads([row(4), row(5), z, z]);
                    let steps: [__m256; 8] = std::array::from_fn(|c| {
                        if c < 4 {
                            _mm256_permute2f128_ps::<0x20>(lo[c], hi[c])
                        } else {
                            _mm256_permute2f128_ps::<0x31>(lo[c - 4], hi[c - 4])
                        }
                    });
                    for (c, &v) in steps[..7].iter().enumerate() {
                        _mm256_storeu_ps(o.add((p + c) * W), v);
                    }
                    let last = o.add((p + 7) * W);
                    _mm_storeu_ps(last, _mm256_castps256_ps128(steps[7]));
                    // (`_mm_store_sd` would assume an 8-byte-aligned address.)
                    let pair = _mm_castps_si128(_mm256_extractf128_ps::<1>(steps[7]));
                    _mm_storel_epi64(last.add(4) as *mut __m128i, pair);
                }
                0 => {}
                _ => unreachable!("rows_avx2 has no width {W}"),
            }
        }
    }
    for p in full..kc {
        for r in 0..W {
            d[p * W + r] = src[r * ld + p];
        }
    }
}

/// Writes the transpose of the `rows x cols` block at the start of `src` (row stride `ld`)
/// into `dst` as `cols` rows of `rows` floats with row stride `ldd`:
/// `dst[j * ldd + i] = src[i * ld + j]`. The narrow and small-depth paths use it to turn
/// op(B) or their result the other way round.
///
/// # Panics
/// If `dst` or `src` is shorter than its block, or a stride shorter than its row.
pub(crate) fn transpose(
    dst: &mut [f32],
    ldd: usize,
    src: &[f32],
    ld: usize,
    rows: usize,
    cols: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(ldd >= rows && dst.len() >= (cols - 1) * ldd + rows);
    assert!(ld >= cols && src.len() >= (rows - 1) * ld + cols);
    #[cfg(target_arch = "x86_64")]
    if rows >= 8
        && cols >= 4
        && matches!(
            super::kernel::isa(),
            super::kernel::Isa::Avx2 | super::kernel::Isa::Avx512
        )
    {
        // SAFETY: isa() only reports paths this CPU supports, and both imply AVX2; the
        // lengths were checked above.
        return unsafe { transpose_avx2(dst.as_mut_ptr(), ldd, src.as_ptr(), ld, rows, cols) };
    }
    transpose_scalar(dst, ldd, src, ld, rows, cols)
}

/// [`transpose`] element by element, writing `dst` in order.
fn transpose_scalar(dst: &mut [f32], ldd: usize, src: &[f32], ld: usize, rows: usize, cols: usize) {
    for j in 0..cols {
        for (i, v) in dst[j * ldd..][..rows].iter_mut().enumerate() {
            *v = src[i * ld + j];
        }
    }
}

/// [`transpose`] in 8 x 8 blocks held in registers (eight loads, 24 shuffles, eight stores
/// for 64 floats; the element loops compile to one load and one store each), and 8 x 4
/// blocks for the last one to four columns (12 shuffles and four stores for 32 floats: the
/// narrow path's op(B) is often 10 columns wide). A last block that would run past `rows` or
/// `cols` is moved back to end at the edge, so it overlaps its neighbour and writes some
/// elements twice with the same value.
///
/// # Safety
/// The CPU supports AVX2; `rows >= 8`, `cols >= 4`; `dst` holds the `cols x rows` block with
/// row stride `ldd` and `src` the `rows x cols` block with row stride `ld`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_avx2(
    dst: *mut f32,
    ldd: usize,
    src: *const f32,
    ld: usize,
    rows: usize,
    cols: usize,
) {
    let row_starts = (0..rows.div_ceil(8)).map(|b| (b * 8).min(rows - 8));
    for i0 in row_starts {
        let mut j0 = 0;
        // SAFETY (both blocks): i0 + 8 <= rows and j0 + width <= cols, inside both blocks by
        // the contract.
        unsafe {
            while j0 + 8 <= cols {
                block8x8(dst, ldd, src, ld, i0, j0);
                j0 += 8;
            }
            // The last one to seven columns: one 8 x 8 block moved back, or (when fewer than
            // eight columns in all) two 8 x 4 blocks, or one.
            let left = cols - j0;
            if left > 4 && cols >= 8 {
                block8x8(dst, ldd, src, ld, i0, cols - 8);
            } else {
                if left > 4 {
                    block8x4(dst, ldd, src, ld, i0, j0);
                }
                if left > 0 {
                    block8x4(dst, ldd, src, ld, i0, cols - 4);
                }
            }
        }
    }
}

/// Rows `i0..i0 + 8` by columns `j0..j0 + 8` of [`transpose_avx2`].
///
/// # Safety
/// As for [`transpose_avx2`], with the block inside both matrices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block8x8(dst: *mut f32, ldd: usize, src: *const f32, ld: usize, i0: usize, j0: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the block lies inside both matrices (the caller's contract).
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|t| _mm256_loadu_ps(src.add((i0 + t) * ld + j0)));
        // Each half of rows 0-3 and of rows 4-7 transposed, then the halves swapped: t[c]
        // ends up holding column j0 + c of the eight rows.
        let lo = transpose_quads([r[0], r[1], r[2], r[3]]);
        let hi = transpose_quads([r[4], r[5], r[6], r[7]]);
        let t: [__m256; 8] = std::array::from_fn(|c| {
            if c < 4 {
                _mm256_permute2f128_ps::<0x20>(lo[c], hi[c])
            } else {
                _mm256_permute2f128_ps::<0x31>(lo[c - 4], hi[c - 4])
            }
        });
        for (c, v) in t.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add((j0 + c) * ldd + i0), v);
        }
    }
}

/// Rows `i0..i0 + 8` by columns `j0..j0 + 4` of [`transpose_avx2`]: rows t and t + 4 share a
/// register, one per 128-bit half, so that one 4 x 4 transpose per half gives whole columns.
///
/// # Safety
/// As for [`transpose_avx2`], with the block inside both matrices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block8x4(dst: *mut f32, ldd: usize, src: *const f32, ld: usize, i0: usize, j0: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the block lies inside both matrices (the caller's contract).
    unsafe {
        let row = |t: usize| _mm_loadu_ps(src.add((i0 + t) * ld + j0));
        let y: [__m256; 4] = std::array::from_fn(|t| {
            _mm256_insertf128_ps::<1>(_mm256_castps128_ps256(row(t)), row(t + 4))
        });
        let t = transpose_quads(y);
        for (c, v) in t.into_iter().enumerate() {
            _mm256_storeu_ps(dst.add((j0 + c) * ldd + i0), v);
        }
    }
}

/// Four rows of eight floats, each 128-bit half transposed as a 4 x 4 block: element c of
/// half h of the result's vector t is element t of half h of `v[c]`.
///
/// # Safety
/// The CPU supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn transpose_quads(v: [std::arch::x86_64::__m256; 4]) -> [std::arch::x86_64::__m256; 4] {
    use std::arch::x86_64::*;
    // Pairs of rows interleaved, then pairs of pairs.
    let a = [
        _mm256_unpacklo_ps(v[0], v[1]),
        _mm256_unpackhi_ps(v[0], v[1]),
        _mm256_unpacklo_ps(v[2], v[3]),
        _mm256_unpackhi_ps(v[2], v[3]),
    ];
    [
        _mm256_shuffle_ps::<0x44>(a[0], a[2]),
        _mm256_shuffle_ps::<0xEE>(a[0], a[2]),
        _mm256_shuffle_ps::<0x44>(a[1], a[3]),
        _mm256_shuffle_ps::<0xEE>(a[1], a[3]),
    ]
}

/// Where the narrow path keeps column `j` of an `n`-column op(B), for vectors of `lanes`
/// floats, `G = lanes / 4` columns a vector (one per 128-bit quarter): `(vector, quarter)`.
///
/// Columns go in groups of `4·G` (the last group may be short), each group in `q` vectors, four
/// but for a short last group of `r` columns `ceil(r / G)`; column `j0 + c + q·g` of the group
/// from `j0` is quarter `g` of its vector `c`. Four vectors' quarter sums
/// ([`Vector::reduce_quads`](super::kernel::Vector::reduce_quads)) then come out in column
/// order: lane `4·g + c` is column `j0 + c + 4·g`.
pub(crate) const fn quad_slot(j: usize, n: usize, lanes: usize) -> (usize, usize) {
    let per_vector = lanes / 4;
    let group = j / lanes;
    let j0 = group * lanes;
    let left = n - j0;
    let q = if left < lanes {
        left.div_ceil(per_vector)
    } else {
        4
    };
    let c = j - j0;
    (4 * group + c % q, c / q)
}

/// Vectors the narrow path's copy of an `n`-column op(B) takes (see [`quad_slot`]).
pub(crate) const fn quad_vectors(n: usize, lanes: usize) -> usize {
    4 * (n / lanes) + (n % lanes).div_ceil(lanes / 4)
}

/// Copies op(B) (`k x n`; B is stored `k x n` with row stride `ldb` when `tb` is `No`, `n x k`
/// when `Yes`) into the narrow path's layout for vectors of `lanes` (8 or 16) floats: vector
/// `t` is `dst[t * ldd..]`, and its floats `lanes·s..lanes·(s + 1)` hold, quarter by quarter,
/// `op(B)[4s..4s + 4, j]` of the columns j placed there by [`quad_slot`] — zeros past k and in
/// quarters that hold no column. With B not transposed, rows go four at a time, transposed in
/// registers: whole groups of eight columns as two 4 x 4 blocks a 256-bit register on AVX2
/// (for eight lanes, where such a group's four vectors come out whole), the other columns in
/// SSE blocks of four, two and one.
///
/// # Panics
/// If `n > NARROW_N`, `ldd < lanes / 4 · k.next_multiple_of(4)`, `dst` is shorter than
/// `quad_vectors(n, lanes) · ldd`, or `b` shorter than op(B)'s storage.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_quads(
    dst: &mut [f32],
    ldd: usize,
    b: &[f32],
    ldb: usize,
    tb: Transpose,
    k: usize,
    n: usize,
    lanes: usize,
) {
    let per_vector = lanes / 4;
    let whole = k / 4;
    assert!(n <= NARROW_N && (lanes == 8 || lanes == 16));
    assert!(ldd >= per_vector * k.next_multiple_of(4) && dst.len() >= quad_vectors(n, lanes) * ldd);
    if n == 0 || k == 0 {
        return;
    }
    let (rows, cols) = match tb {
        Transpose::No => (k, n),
        Transpose::Yes => (n, k),
    };
    assert!(ldb >= cols && b.len() >= (rows - 1) * ldb + cols);
    // Where each column's first quad goes, and which quarters hold a column.
    let mut at = [0usize; NARROW_N];
    let mut used = [false; 4 * NARROW_N];
    for (j, o) in at[..n].iter_mut().enumerate() {
        let (t, g) = quad_slot(j, n, lanes);
        *o = t * ldd + 4 * g;
        used[t * per_vector + g] = true;
    }
    for (slot, _) in used[..quad_vectors(n, lanes) * per_vector]
        .iter()
        .enumerate()
        .filter(|(_, u)| !**u)
    {
        let o = slot / per_vector * ldd + 4 * (slot % per_vector);
        for s in 0..k.div_ceil(4) {
            dst[o + s * lanes..][..4].fill(0.0);
        }
    }
    let elem = |p: usize, j: usize| match tb {
        Transpose::No => b[p * ldb + j],
        Transpose::Yes => b[j * ldb + p],
    };
    match tb {
        Transpose::Yes => {
            for (j, &o) in at[..n].iter().enumerate() {
                for s in 0..whole {
                    dst[o + s * lanes..][..4].copy_from_slice(&b[j * ldb + 4 * s..][..4]);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Transpose::No => {
            // Columns from `from` on go in blocks of four, two and one; before it, whole groups
            // of eight on AVX2 (vector c of a group is columns c and c + 4: whole vectors).
            let avx2 = matches!(
                super::kernel::isa(),
                super::kernel::Isa::Avx2 | super::kernel::Isa::Avx512
            );
            let from = if lanes == 8 && avx2 { n / 8 * 8 } else { 0 };
            // SAFETY: every quad written, at[j] + lanes·s + 4 <= (t + 1)·ldd for s < whole,
            // lies inside dst (asserted above), and every read, row 4s + i < k by column
            // j < n, inside b; AVX2 is present when `from` > 0.
            unsafe {
                if from > 0 {
                    groups_avx2(dst.as_mut_ptr(), ldd, b.as_ptr(), ldb, whole, from);
                }
                if from < n {
                    quads_sse(
                        dst.as_mut_ptr(),
                        lanes,
                        b.as_ptr(),
                        ldb,
                        whole,
                        n,
                        from,
                        &at,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Transpose::No => {
            for (j, &o) in at[..n].iter().enumerate() {
                for s in 0..whole {
                    for (l, x) in dst[o + s * lanes..][..4].iter_mut().enumerate() {
                        *x = elem(4 * s + l, j);
                    }
                }
            }
        }
    }
    // The last k % 4 rows of op(B), zeros after them.
    if whole * 4 < k {
        for (j, &o) in at[..n].iter().enumerate() {
            for (l, x) in dst[o + whole * lanes..][..4].iter_mut().enumerate() {
                let p = 4 * whole + l;
                *x = if p < k { elem(p, j) } else { 0.0 };
            }
        }
    }
}

/// The whole quads of [`pack_quads`] for columns `from..n` of B stored `k x n`, rows
/// `4s..4s + 4` at a time, transposed in SSE registers (x86-64's baseline): four columns at a
/// time as a 4 x 4 block (eight shuffles), then two (two shuffles of their pairs), then one;
/// each column's quad stored at `at[j] + s·lanes`.
///
/// # Safety
/// `dst` and `b` hold every quad written and read (see the call).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn quads_sse(
    dst: *mut f32,
    lanes: usize,
    b: *const f32,
    ldb: usize,
    whole: usize,
    n: usize,
    from: usize,
    at: &[usize; NARROW_N],
) {
    use std::arch::x86_64::*;
    for s in 0..whole {
        let mut j = from;
        // SAFETY (whole loop): the caller's contract; SSE is part of x86-64. Each block's
        // columns lie below n.
        unsafe {
            let src = b.add(4 * s * ldb);
            let out = |j: usize, v: __m128| _mm_storeu_ps(dst.add(at[j] + s * lanes), v);
            while j + 4 <= n {
                let row = |i: usize| _mm_loadu_ps(src.add(i * ldb + j));
                let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpackhi_ps(r0, r1));
                let (t2, t3) = (_mm_unpacklo_ps(r2, r3), _mm_unpackhi_ps(r2, r3));
                out(j, _mm_movelh_ps(t0, t2));
                out(j + 1, _mm_movehl_ps(t2, t0));
                out(j + 2, _mm_movelh_ps(t1, t3));
                out(j + 3, _mm_movehl_ps(t3, t1));
                j += 4;
            }
            if j + 2 <= n {
                // Rows 0 and 1's pairs in one register, rows 2 and 3's in another.
                let pair = |i: usize| (src.add(i * ldb + j) as *const f64).read_unaligned();
                let pairs = |i: usize| _mm_castpd_ps(_mm_setr_pd(pair(i), pair(i + 1)));
                let (x, y) = (pairs(0), pairs(2));
                out(j, _mm_shuffle_ps::<0b10_00_10_00>(x, y));
                out(j + 1, _mm_shuffle_ps::<0b11_01_11_01>(x, y));
                j += 2;
            }
            if j < n {
                let at_row = |i: usize| *src.add(i * ldb + j);
                out(j, _mm_setr_ps(at_row(0), at_row(1), at_row(2), at_row(3)));
            }
        }
    }
}

/// The whole quads of [`pack_quads`] for columns `0..cols` (a multiple of eight) of B stored
/// `k x n`, for eight-lane vectors: rows `4s..4s + 4` by eight columns, each 128-bit half
/// transposed as a 4 x 4 block, give vectors `4·group + c` (columns c and c + 4 of the group)
/// whole, one 32-byte store each.
///
/// # Safety
/// The CPU supports AVX2; `dst` and `b` hold every vector written and read (see the call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn groups_avx2(
    dst: *mut f32,
    ldd: usize,
    b: *const f32,
    ldb: usize,
    whole: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    for s in 0..whole {
        for group in 0..cols / 8 {
            // SAFETY: the caller's contract.
            unsafe {
                let src = b.add(4 * s * ldb + 8 * group);
                let v = [
                    _mm256_loadu_ps(src),
                    _mm256_loadu_ps(src.add(ldb)),
                    _mm256_loadu_ps(src.add(2 * ldb)),
                    _mm256_loadu_ps(src.add(3 * ldb)),
                ];
                for (c, x) in transpose_quads(v).into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add((4 * group + c) * ldd + 8 * s), x);
                }
            }
        }
    }
}

/// A reusable, 64-byte-aligned scratch buffer that only ever grows.
#[derive(Default)]
pub(crate) struct Scratch {
    buf: Vec<f32>,
}

impl Scratch {
    /// A 64-byte-aligned slice of at least `len` floats (contents unspecified).
    pub(crate) fn get(&mut self, len: usize) -> &mut [f32] {
        const ALIGN_FLOATS: usize = 16;
        if self.buf.len() < len + ALIGN_FLOATS {
            self.buf.resize(len + ALIGN_FLOATS, 0.0);
        }
        let off = self.buf.as_ptr().align_offset(64).min(ALIGN_FLOATS);
        &mut self.buf[off..off + len]
    }
}

thread_local! {
    /// Packed A block and packed B panel of the sgemm running on this thread, reused across
    /// calls so the hot path never allocates once warmed up.
    pub(crate) static PACK: RefCell<(Scratch, Scratch)> = RefCell::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source block of distinct values, NaN in the padding past `cols` on each row.
    fn source(rows: usize, cols: usize, ld: usize) -> Vec<f32> {
        (0..rows * ld)
            .map(|x| if x % ld < cols { x as f32 } else { f32::NAN })
            .collect()
    }

    /// Every width, both layouts, full and short last micro-panels, depths around the
    /// eight-step blocks of `rows_avx2`, offsets into the source: the packed panels hold the
    /// block's elements and zeros past its last tile, on the element loops and (where the CPU
    /// has it) the AVX2 build; the row padding (NaN) is never read.
    #[test]
    fn pack_panels_matches_its_definition() {
        // Under Miri (which checks the AVX2 build's pointer arithmetic) a few cases suffice.
        let tiles = |w: usize| -> Vec<(usize, usize)> {
            if cfg!(miri) {
                vec![(1, 2 * w), (3, w + 1)]
            } else {
                vec![(0, w), (1, 2 * w), (3, w + 1), (0, 3 * w - 2), (2, 1)]
            }
        };
        let depths: &[(usize, usize)] = if cfg!(miri) {
            &[(0, 7), (5, 17)]
        } else {
            &[(0, 1), (0, 7), (1, 8), (0, 9), (2, 16), (0, 23), (5, 33)]
        };
        for w in [4, 6, 8, 12, 16, 32] {
            for depth_contiguous in [true, false] {
                for (t0, tn) in tiles(w) {
                    for &(p0, kc) in depths {
                        let (rows, cols) = if depth_contiguous {
                            (t0 + tn, p0 + kc)
                        } else {
                            (p0 + kc, t0 + tn)
                        };
                        let ld = cols + 3;
                        let src = source(rows, cols, ld);
                        let at = |t: usize, p: usize| {
                            if depth_contiguous {
                                src[t * ld + p]
                            } else {
                                src[p * ld + t]
                            }
                        };
                        let panels = tn.div_ceil(w);
                        let mut want = vec![0.0; panels * kc * w];
                        for t in 0..tn {
                            for p in 0..kc {
                                want[t / w * kc * w + p * w + t % w] = at(t0 + t, p0 + p);
                            }
                        }
                        let (tiles, depth) = ((t0, tn), (p0, kc));
                        let what = format!("w {w} {depth_contiguous} {tiles:?} {depth:?}");
                        let mut got = vec![-1.0; want.len()];
                        pack_width::<false>(&mut got, &src, ld, depth_contiguous, tiles, depth, w);
                        assert_eq!(bitwise(&got), bitwise(&want), "{what}");
                        #[cfg(target_arch = "x86_64")]
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut got = vec![-1.0; want.len()];
                            // SAFETY: AVX2 was just detected.
                            unsafe {
                                pack_avx2(&mut got, &src, ld, depth_contiguous, tiles, depth, w)
                            };
                            assert_eq!(bitwise(&got), bitwise(&want), "{what} avx2");
                        }
                    }
                }
            }
        }
    }

    fn bitwise(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Every column lands in a quarter of its own, each group's quarter sums come out in column
    /// order, and the copy holds op(B)'s quads there and zeros everywhere else, for both
    /// layouts of B, both vector widths, and depths around the quads (NaN past each row of B
    /// must never be read).
    #[test]
    fn pack_quads_matches_its_layout() {
        for lanes in [8, 16] {
            let per_vector = lanes / 4;
            for n in 1..=NARROW_N {
                let nv = quad_vectors(n, lanes);
                let mut seen = vec![false; nv * per_vector];
                for j in 0..n {
                    let (t, g) = quad_slot(j, n, lanes);
                    assert!(t < nv && g < per_vector, "n {n} column {j}");
                    assert!(!std::mem::replace(&mut seen[t * per_vector + g], true));
                    // Lane 4·g + c of group j / lanes's sums is column j0 + c + 4·g.
                    let (group, c) = (t / 4, t % 4);
                    let lane = 4 * g + c;
                    let q = (n - group * lanes).min(lanes).div_ceil(per_vector);
                    if q == 4 {
                        assert_eq!(group * lanes + lane, j, "n {n} lanes {lanes}");
                    }
                }
                // No vector without a column.
                let last = (0..n).map(|j| quad_slot(j, n, lanes).0).max();
                assert_eq!(last, Some(nv - 1), "n {n} lanes {lanes}");
                for k in [1, 2, 3, 4, 5, 8, 9, 15, 16, 17] {
                    for tb in [Transpose::No, Transpose::Yes] {
                        let (rows, cols) = match tb {
                            Transpose::No => (k, n),
                            Transpose::Yes => (n, k),
                        };
                        let ldb = cols + 2;
                        let b = source(rows, cols, ldb);
                        let at = |p: usize, j: usize| match tb {
                            Transpose::No => b[p * ldb + j],
                            Transpose::Yes => b[j * ldb + p],
                        };
                        let ldd = per_vector * k.next_multiple_of(4) + 3;
                        let mut want = vec![0.0; nv * ldd];
                        for j in 0..n {
                            let (t, g) = quad_slot(j, n, lanes);
                            for p in 0..k {
                                want[t * ldd + p / 4 * lanes + 4 * g + p % 4] = at(p, j);
                            }
                        }
                        // -1 where the copy must write, and in the stride's padding, which it
                        // must leave alone.
                        let mut got = vec![-1.0; nv * ldd];
                        for row in want.chunks_mut(ldd) {
                            row[per_vector * k.next_multiple_of(4)..].fill(-1.0);
                        }
                        pack_quads(&mut got, ldd, &b, ldb, tb, k, n, lanes);
                        assert_eq!(got, want, "n {n} k {k} {tb:?} lanes {lanes}");
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_matches_the_definition_on_every_path_and_edge() {
        let dims = [
            0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 15, 16, 17, 20, 23, 24, 33,
        ];
        for &rows in &dims {
            for &cols in &dims {
                for pad in [0, 3] {
                    let (ld, ldd) = (cols + pad, rows + 2 * pad);
                    let src = source(rows, cols, ld);
                    // The transpose with -1 in the destination's padding and past its end.
                    let mut want = vec![-1.0; cols * ldd + 5];
                    for j in 0..cols {
                        for i in 0..rows {
                            want[j * ldd + i] = src[i * ld + j];
                        }
                    }
                    let mut got = vec![-1.0; want.len()];
                    transpose(&mut got, ldd, &src, ld, rows, cols);
                    assert_eq!(got, want, "{rows}x{cols} ld {ld} ldd {ldd}");
                    let mut scalar = vec![-1.0; want.len()];
                    if rows > 0 {
                        transpose_scalar(&mut scalar, ldd, &src, ld, rows, cols);
                    }
                    assert_eq!(scalar, want, "scalar {rows}x{cols} ld {ld} ldd {ldd}");
                    #[cfg(target_arch = "x86_64")]
                    if rows >= 8 && cols >= 4 && std::arch::is_x86_feature_detected!("avx2") {
                        let mut v = vec![-1.0; want.len()];
                        // SAFETY: AVX2 is present; both buffers hold their blocks.
                        unsafe {
                            transpose_avx2(v.as_mut_ptr(), ldd, src.as_ptr(), ld, rows, cols)
                        };
                        assert_eq!(v, want, "avx2 {rows}x{cols} ld {ld} ldd {ldd}");
                    }
                }
            }
        }
    }
}
