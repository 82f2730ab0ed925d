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
}

/// # Safety
/// The CPU supports AVX2 and FMA; the pointer contract of [`tile`] holds for MR = 6, NR = 16.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe { tile::<V8, 6, 2>(kc, a, b, c, ldc, st) }
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
