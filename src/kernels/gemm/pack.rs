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
