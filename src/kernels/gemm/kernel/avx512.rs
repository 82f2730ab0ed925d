//! AVX-512F microkernel: a 12 x 32 tile of `__m512` accumulators.

use super::{Store, Vector, tile_rows};
use std::arch::x86_64::*;

#[derive(Clone, Copy)]
pub(crate) struct V16(__m512);

// SAFETY (whole impl): only reached from `kernel`, which runs with avx512f enabled and is
// only selected after `is_x86_feature_detected!` confirmed it.
impl Vector for V16 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V16(_mm512_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V16(_mm512_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable floats at p.
        V16(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 16 writable floats at p.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V16(_mm512_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V16(_mm512_mul_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe { V16(_mm512_add_ps(self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        #[cfg(not(miri))]
        unsafe {
            V16(_mm512_max_ps(self.0, b.0))
        }
        // Miri has no model of this instruction; its lane rule (`self` where `self > b`,
        // else `b`: NaN on either side gives `b`) lane by lane, so the rest of this path can
        // still be checked under Miri.
        // SAFETY: as above; each array holds 16 floats.
        #[cfg(miri)]
        unsafe {
            let (mut x, mut y) = ([0f32; 16], [0f32; 16]);
            self.store(x.as_mut_ptr());
            b.store(y.as_mut_ptr());
            for (x, y) in x.iter_mut().zip(y) {
                *x = if *x > y { *x } else { y };
            }
            Self::load(x.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }
    #[inline(always)]
    unsafe fn broadcast_quad(p: *const f32) -> Self {
        // SAFETY: the caller guarantees four readable floats at p; no alignment is assumed.
        unsafe { V16(_mm512_broadcast_f32x4(_mm_loadu_ps(p))) }
    }
    #[inline(always)]
    unsafe fn reduce_quads(v: [Self; 4]) -> Self {
        // AVX-512 has no hadd: [x0 + x1, x2 + x3, y0 + y1, y2 + y3] in each quarter as the
        // even lanes plus the odd ones, twice, the order the trait asks for.
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn pairs(x: __m512, y: __m512) -> __m512 {
            _mm512_add_ps(
                _mm512_shuffle_ps::<0b10_00_10_00>(x, y),
                _mm512_shuffle_ps::<0b11_01_11_01>(x, y),
            )
        }
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe {
            let [V16(v0), V16(v1), V16(v2), V16(v3)] = v;
            V16(pairs(pairs(v0, v1), pairs(v2, v3)))
        }
    }
}

/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12, NR = 32
/// (`AS` = 12, `BS` = 32); `h` rows (1..=12; others mean 12) and `ceil(w / 16)`
/// vectors of columns (1..=2; others mean 2) of the tile are computed.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel(
    h: usize,
    w: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        if w <= 16 {
            tile_rows::<V16, 12, 1, 32>(h, kc, a, b, c, ldc, st)
        } else {
            tile_rows::<V16, 12, 2, 32>(h, kc, a, b, c, ldc, st)
        }
    }
}

/// Independent FMA chains, for measuring this path's peak (benchmarks only): `iters` rounds of
/// 24 independent 16-lane FMAs, i.e. `iters * 24 * 32` floating-point operations.
///
/// # Safety
/// The CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn fma_probe(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(1.0); 24];
    let m = _mm512_set1_ps(0.999_999);
    let a = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, m, a);
        }
    }
    let mut out = [0f32; 16];
    let mut s = acc[0];
    for x in &acc[1..] {
        s = _mm512_add_ps(s, *x);
    }
    // SAFETY: out holds 16 floats.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}
