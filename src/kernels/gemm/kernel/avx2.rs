//! AVX2 + FMA microkernel: a 6 x 16 tile of `__m256` accumulators; the full tile's k loop in
//! assembly (`full_tile`), edge tiles by the generic tile.

use super::{Store, Vector, tile_rows};
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
/// The CPU supports AVX2 and FMA; the pointer contract of [`tile`](super::tile) holds for MR = 6, NR = 16
/// (A packed: `ars` 1, `acs` 6; `bs` 16); `h` rows (1..=6; others mean 6) and `ceil(w / 8)`
/// vectors of columns (1..=2; others mean 2) of the tile are computed: the full tile by
/// [`full_tile`], the others by the generic tile.
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
            tile_rows::<V8, 6, 1>(h, kc, (a, 1, 6), b, 16, c, ldc, st)
        } else if h >= 6 {
            full_tile(kc, a, b, c, ldc, st)
        } else {
            tile_rows::<V8, 6, 2>(h, kc, (a, 1, 6), b, 16, c, ldc, st)
        }
    }
}

/// One step of [`full_tile`]'s k loop: the two B vectors at byte offset `$b` (and `$b` + 32)
/// from `{b}`, and the six A floats at byte offsets `$a0..$a5` from `{a}`, each broadcast and
/// multiplied into its row's two accumulators.
#[cfg(not(miri))]
#[rustfmt::skip]
macro_rules! step_6x16 {
    ($b0:literal, $b1:literal, $a0:literal, $a1:literal, $a2:literal, $a3:literal, $a4:literal, $a5:literal) => {
        concat!(
            "vmovups {b0}, [{b} + ", $b0, "]\n",
            "vmovups {b1}, [{b} + ", $b1, "]\n",
            "vbroadcastss {t0}, [{a} + ", $a0, "]\n",
            "vfmadd231ps {c00}, {b0}, {t0}\n",
            "vfmadd231ps {c01}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [{a} + ", $a1, "]\n",
            "vfmadd231ps {c10}, {b0}, {t1}\n",
            "vfmadd231ps {c11}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [{a} + ", $a2, "]\n",
            "vfmadd231ps {c20}, {b0}, {t0}\n",
            "vfmadd231ps {c21}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [{a} + ", $a3, "]\n",
            "vfmadd231ps {c30}, {b0}, {t1}\n",
            "vfmadd231ps {c31}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [{a} + ", $a4, "]\n",
            "vfmadd231ps {c40}, {b0}, {t0}\n",
            "vfmadd231ps {c41}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [{a} + ", $a5, "]\n",
            "vfmadd231ps {c50}, {b0}, {t1}\n",
            "vfmadd231ps {c51}, {b1}, {t1}\n",
        )
    };
}

/// The full 6 x 16 tile, its k loop in assembly, eight steps a pass with every load at a fixed
/// offset from two pointers: 20 instructions a step and 4 a pass, where the compiled loop of
/// [`tile`](super::tile) has 24 a step (the same 20, two pointer increments, a count and a branch). On a
/// quiet core the two run level (within 1% on best call); while the host was busy the
/// assembly ran 2–7% faster on the median of paired calls (A/B within one process, Zen 3,
/// 2026-11-29; see the README). The arithmetic, and so every bit of the result, is the
/// generic tile's. Under Miri, which cannot run assembly, the generic tile.
///
/// # Safety
/// As for [`kernel`] with h = 6 and w > 8: `a` holds `kc * 6` floats, `b` `kc * 16`, `c` is
/// valid for the 6 x 16 tile, `st.bias` null or valid for 16 floats; AVX2 and FMA are
/// supported.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn full_tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, st: Store) {
    #[cfg(miri)]
    // SAFETY: forwarded contract.
    unsafe {
        super::tile::<V8, 6, 2>(kc, (a, 1, 6), b, 16, c, ldc, st)
    }
    #[cfg(not(miri))]
    // SAFETY: the loop reads kc steps of 6 floats from `a` and 16 from `b`, the extents of the
    // contract; it writes only the registers it names; the stores are `store_tile`'s.
    unsafe {
        super::prefetch_tile::<V8, 6, 2>(c, ldc);
        let z = _mm256_setzero_ps();
        let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
        let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
        std::arch::asm!(
            "test {n8}, {n8}",
            "jz 3f",
            "2:",
            step_6x16!("0", "32", "0", "4", "8", "12", "16", "20"),
            step_6x16!("64", "96", "24", "28", "32", "36", "40", "44"),
            step_6x16!("128", "160", "48", "52", "56", "60", "64", "68"),
            step_6x16!("192", "224", "72", "76", "80", "84", "88", "92"),
            step_6x16!("256", "288", "96", "100", "104", "108", "112", "116"),
            step_6x16!("320", "352", "120", "124", "128", "132", "136", "140"),
            step_6x16!("384", "416", "144", "148", "152", "156", "160", "164"),
            step_6x16!("448", "480", "168", "172", "176", "180", "184", "188"),
            "add {a}, 192",
            "add {b}, 512",
            "dec {n8}",
            "jnz 2b",
            "3:",
            "test {n1}, {n1}",
            "jz 5f",
            "4:",
            step_6x16!("0", "32", "0", "4", "8", "12", "16", "20"),
            "add {a}, 24",
            "add {b}, 64",
            "dec {n1}",
            "jnz 4b",
            "5:",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            n8 = inout(reg) kc / 8 => _,
            n1 = inout(reg) kc % 8 => _,
            b0 = out(ymm_reg) _,
            b1 = out(ymm_reg) _,
            t0 = out(ymm_reg) _,
            t1 = out(ymm_reg) _,
            c00 = inout(ymm_reg) c00,
            c01 = inout(ymm_reg) c01,
            c10 = inout(ymm_reg) c10,
            c11 = inout(ymm_reg) c11,
            c20 = inout(ymm_reg) c20,
            c21 = inout(ymm_reg) c21,
            c30 = inout(ymm_reg) c30,
            c31 = inout(ymm_reg) c31,
            c40 = inout(ymm_reg) c40,
            c41 = inout(ymm_reg) c41,
            c50 = inout(ymm_reg) c50,
            c51 = inout(ymm_reg) c51,
            options(nostack, readonly),
        );
        let acc = [
            [V8(c00), V8(c01)],
            [V8(c10), V8(c11)],
            [V8(c20), V8(c21)],
            [V8(c30), V8(c31)],
            [V8(c40), V8(c41)],
            [V8(c50), V8(c51)],
        ];
        super::store_tile::<V8, 6, 2>(&acc, c, ldc, st);
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
