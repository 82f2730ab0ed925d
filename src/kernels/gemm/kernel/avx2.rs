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
    unsafe fn broadcast_quad(p: *const f32) -> Self {
        // One vbroadcastf128 from memory. (`_mm256_broadcast_ps` takes a reference, which
        // would require 16-byte alignment.)
        // SAFETY: the caller guarantees four readable floats at p; no alignment is assumed.
        unsafe {
            let q = _mm_loadu_ps(p);
            V8(_mm256_set_m128(q, q))
        }
    }
    #[inline(always)]
    unsafe fn reduce_quads(v: [Self; 4]) -> Self {
        // hadd forms [x0 + x1, x2 + x3, y0 + y1, y2 + y3] in each half: twice, the order the
        // trait asks for, with no shuffle across the halves.
        // SAFETY: the feature is enabled in the caller (see the impl comment).
        unsafe {
            let [V8(v0), V8(v1), V8(v2), V8(v3)] = v;
            V8(_mm256_hadd_ps(
                _mm256_hadd_ps(v0, v1),
                _mm256_hadd_ps(v2, v3),
            ))
        }
    }
}

/// # Safety
/// The CPU supports AVX2 and FMA; the pointer contract of [`tile`] holds for MR = 6, NR = 16
/// (`AS` = 6, `BS` = 16); `h` rows (1..=6; others mean 6) and `ceil(w / 8)`
/// vectors of columns (1..=2; others mean 2) of the tile are computed.
#[target_feature(enable = "avx2,fma")]
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
        if w <= 8 {
            rows::<1>(h, kc, a, b, c, ldc, st)
        } else {
            rows::<2>(h, kc, a, b, c, ldc, st)
        }
    }
}

/// [`kernel`] for `NV` vectors of columns.
///
/// # Safety
/// As for [`kernel`], with `NV * 8` columns.
#[inline(always)]
unsafe fn rows<const NV: usize>(
    h: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match h {
            1 => tile::<V8, 1, NV, 6, 16>(kc, a, b, c, ldc, st),
            2 => tile::<V8, 2, NV, 6, 16>(kc, a, b, c, ldc, st),
            3 => tile::<V8, 3, NV, 6, 16>(kc, a, b, c, ldc, st),
            4 => tile::<V8, 4, NV, 6, 16>(kc, a, b, c, ldc, st),
            5 => tile::<V8, 5, NV, 6, 16>(kc, a, b, c, ldc, st),
            _ => tile::<V8, 6, NV, 6, 16>(kc, a, b, c, ldc, st),
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
