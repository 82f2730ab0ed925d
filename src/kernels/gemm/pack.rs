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

fn pack<const W: usize>(
    dst: &mut [f32],
    src: &[f32],
    ld: usize,
    depth_contiguous: bool,
    (t0, tn): (usize, usize),
    (p0, kc): (usize, usize),
) {
    let width = W;
    for (panel, d) in dst[..tn.div_ceil(width) * kc * width]
        .chunks_exact_mut(kc * width)
        .enumerate()
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
