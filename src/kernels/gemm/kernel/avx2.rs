//! AVX2 + FMA microkernel: a 6 x 16 tile of `__m256` accumulators.

use super::{Store, Vector, tile};
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V8(__m256);

// SAFETY (whole impl): only reached from `kernel`, which runs with avx2+fma enabled and is
// only selected after `is_x86_feature_detected!` confirmed both.
impl Vector for V8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats at p.
        V8(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, len: usize) -> Self {
        // Lane t is loaded where its mask word is -1: a window of eight words of MASK,
        // starting len words before its zeros.
        static MASK: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: len < 8, so the window lies inside MASK; masked-off lanes are not read.
        unsafe {
            let m = _mm256_loadu_si256(MASK.as_ptr().add(8 - len) as *const __m256i);
            V8(_mm256_maskload_ps(p, m))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at p.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_mul_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_add_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V8(_mm256_max_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe {
            let s = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps(self.0, 1),
            );
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
        }
    }
    #[inline(always)]
    unsafe fn reduce8(v: [Self; 8]) -> [f32; 8] {
        // The additions of `reduce_sum`, in its order, for eight vectors at once:
        // h = lo + hi per vector, then (h0 + h2) + (h1 + h3). The steps are functions with
        // the feature enabled, as the intrinsics are: closures (`array::from_fn`, `map`)
        // around intrinsics may be left as calls compiled without AVX once the caller is
        // large (2-4x slower at 128x512x10 when it happened).
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe {
            let [
                V8(v0),
                V8(v1),
                V8(v2),
                V8(v3),
                V8(v4),
                V8(v5),
                V8(v6),
                V8(v7),
            ] = v;
            let (p0, p1) = (halves_added(v0, v4), halves_added(v1, v5));
            let (p2, p3) = (halves_added(v2, v6), halves_added(v3, v7));
            let (w0, w1) = (pairs_added(p0, p1), pairs_added(p2, p3));
            // The last pairwise add leaves the sums of v0..v3 in the low half and v4..v7 in
            // the high half: in order, with no constant to keep in a register.
            let s = _mm256_hadd_ps(w0, w1);
            let mut out = [0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), s);
            out
        }
    }
}

/// `[lo + hi of x | lo + hi of y]`: the two 128-bit halves of each vector added, x's sums in
/// the low half (a step of [`V8::reduce8`]).
#[target_feature(enable = "avx")]
#[inline]
fn halves_added(x: __m256, y: __m256) -> __m256 {
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(x, y),
        _mm256_permute2f128_ps::<0x31>(x, y),
    )
}

/// In each 128-bit half, `[x0 + x2, x1 + x3, y0 + y2, y1 + y3]` (a step of
/// [`V8::reduce8`]).
#[target_feature(enable = "avx")]
#[inline]
fn pairs_added(x: __m256, y: __m256) -> __m256 {
    _mm256_add_ps(
        _mm256_shuffle_ps::<0b01_00_01_00>(x, y),
        _mm256_shuffle_ps::<0b11_10_11_10>(x, y),
    )
}

/// # Safety
/// The CPU supports AVX2 and FMA; the pointer contract of [`tile`] holds for MR = 6, NR = 16
/// (`AS` = 6); `h` rows of the tile are computed (1..=6; others mean 6).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel(
    h: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        match h {
            1 => tile::<V8, 1, 2, 6>(kc, a, b, c, ldc, st),
            2 => tile::<V8, 2, 2, 6>(kc, a, b, c, ldc, st),
            3 => tile::<V8, 3, 2, 6>(kc, a, b, c, ldc, st),
            4 => tile::<V8, 4, 2, 6>(kc, a, b, c, ldc, st),
            5 => tile::<V8, 5, 2, 6>(kc, a, b, c, ldc, st),
            _ => tile::<V8, 6, 2, 6>(kc, a, b, c, ldc, st),
        }
    }
}

/// Independent FMA chains, for measuring this path's peak (benchmarks only): `iters` rounds of
/// 12 independent 8-lane FMAs, i.e. `iters * 12 * 16` floating-point operations.
///
/// # Safety
/// The CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn fma_probe(iters: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let m = _mm256_set1_ps(0.999_999);
    let a = _mm256_set1_ps(1e-7);
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, m, a);
        }
    }
    let mut out = [0f32; 8];
    let mut s = acc[0];
    for x in &acc[1..] {
        s = _mm256_add_ps(s, *x);
    }
    // SAFETY: out holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce8_is_eight_reduce_sums_bit_for_bit() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        // Magnitudes from 1e-3 to 1e7 with both signs, so that any other order of the
        // additions rounds differently somewhere in the 4,000 draws.
        let mut state = 0x2545_f491_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            let e = ((state >> 8) % 11) as i32 - 3;
            (u - 0.5) * 10f32.powi(e)
        };
        let mut differs_from_plain_order = false;
        for _ in 0..500 {
            let lanes: [[f32; 8]; 8] = std::array::from_fn(|_| std::array::from_fn(|_| next()));
            // SAFETY: AVX2 and FMA were detected above; each array holds 8 floats.
            unsafe {
                let v = lanes.map(|l| V8::load(l.as_ptr()));
                let got = V8::reduce8(v);
                for (t, x) in v.iter().enumerate() {
                    assert_eq!(got[t].to_bits(), x.reduce_sum().to_bits(), "vector {t}");
                }
            }
            let plain: f32 = lanes[0].iter().sum();
            // SAFETY: as above.
            let ours = unsafe { V8::load(lanes[0].as_ptr()).reduce_sum() };
            differs_from_plain_order |= plain.to_bits() != ours.to_bits();
        }
        assert!(
            differs_from_plain_order,
            "the draws never exposed the order of additions"
        );
    }
}
