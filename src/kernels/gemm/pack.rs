//! Panel packing: copies a block of op(A) or op(B) into the contiguous, zero-padded order the
//! microkernel streams (`kc` steps of `width` floats each, one micro-panel after another).
//! Scaling by alpha is left to the microkernel's store, so packing is a pure copy.

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
    pack_width(dst, src, ld, depth_contiguous, tiles, depth, width)
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
    pack_width(dst, src, ld, depth_contiguous, tiles, depth, width)
}

#[inline(always)]
fn pack_width(
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
        4 => pack::<4>(dst, src, ld, depth_contiguous, tiles, depth),
        6 => pack::<6>(dst, src, ld, depth_contiguous, tiles, depth),
        8 => pack::<8>(dst, src, ld, depth_contiguous, tiles, depth),
        12 => pack::<12>(dst, src, ld, depth_contiguous, tiles, depth),
        16 => pack::<16>(dst, src, ld, depth_contiguous, tiles, depth),
        32 => pack::<32>(dst, src, ld, depth_contiguous, tiles, depth),
        _ => unreachable!("no microkernel has width {width}"),
    }
}

#[inline(always)]
fn pack<const W: usize>(
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
