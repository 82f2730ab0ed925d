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
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32, A packed (`ars` 1, `acs` 12) and `bs` 32; `h` rows (1..=12; others mean 12) and
/// `ceil(w / 16)` vectors of columns (1..=2; others mean 2) of the tile are computed: the
/// full tile by [`full_tile`], the others by the generic tile.
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
    // SAFETY: forwarded contract.
    unsafe { kernel_strided(h, w, kc, (a, 1, 12), b, 32, c, ldc, st) }
}

/// This path's [`StridedKernel`](super::StridedKernel): [`kernel`] for an A and a B read
/// through strides, packed or in place (see `Gemm::tiles`). A full tile runs in assembly:
/// [`full_tile`] for a packed A, [`full_tile_strided`] for A read in place.
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32 and these strides, for `h` rows (1..=12; others mean 12) and `ceil(w / 16)`
/// vectors of columns (1..=2; others mean 2).
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_strided(
    h: usize,
    w: usize,
    kc: usize,
    a: (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        if w <= 16 {
            tile_rows::<V16, 12, 1>(h, kc, a, b, bs, c, ldc, st)
        } else if h < 12 {
            tile_rows::<V16, 12, 2>(h, kc, a, b, bs, c, ldc, st)
        } else if (a.1, a.2) == (1, 12) {
            full_tile(kc, a.0, b, bs, c, ldc, st)
        } else {
            full_tile_strided(kc, a, b, bs, c, ldc, st)
        }
    }
}

/// One step of the 12 x 32 tile's k loop: the two B vectors at addresses `$b0` and `$b1`,
/// and the twelve A floats at `$a0..$a11` (assembly address expressions), each broadcast
/// and multiplied into its row's two accumulators.
#[cfg(not(miri))]
#[rustfmt::skip]
macro_rules! step_12x32 {
    ($b0:literal, $b1:literal, $a0:literal, $a1:literal, $a2:literal, $a3:literal, $a4:literal, $a5:literal, $a6:literal, $a7:literal, $a8:literal, $a9:literal, $a10:literal, $a11:literal) => {
        concat!(
            "vmovups {b0}, [", $b0, "]\n",
            "vmovups {b1}, [", $b1, "]\n",
            "vbroadcastss {t0}, [", $a0, "]\n",
            "vfmadd231ps {c0_0}, {b0}, {t0}\n",
            "vfmadd231ps {c0_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a1, "]\n",
            "vfmadd231ps {c1_0}, {b0}, {t1}\n",
            "vfmadd231ps {c1_1}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [", $a2, "]\n",
            "vfmadd231ps {c2_0}, {b0}, {t0}\n",
            "vfmadd231ps {c2_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a3, "]\n",
            "vfmadd231ps {c3_0}, {b0}, {t1}\n",
            "vfmadd231ps {c3_1}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [", $a4, "]\n",
            "vfmadd231ps {c4_0}, {b0}, {t0}\n",
            "vfmadd231ps {c4_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a5, "]\n",
            "vfmadd231ps {c5_0}, {b0}, {t1}\n",
            "vfmadd231ps {c5_1}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [", $a6, "]\n",
            "vfmadd231ps {c6_0}, {b0}, {t0}\n",
            "vfmadd231ps {c6_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a7, "]\n",
            "vfmadd231ps {c7_0}, {b0}, {t1}\n",
            "vfmadd231ps {c7_1}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [", $a8, "]\n",
            "vfmadd231ps {c8_0}, {b0}, {t0}\n",
            "vfmadd231ps {c8_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a9, "]\n",
            "vfmadd231ps {c9_0}, {b0}, {t1}\n",
            "vfmadd231ps {c9_1}, {b1}, {t1}\n",
            "vbroadcastss {t0}, [", $a10, "]\n",
            "vfmadd231ps {c10_0}, {b0}, {t0}\n",
            "vfmadd231ps {c10_1}, {b1}, {t0}\n",
            "vbroadcastss {t1}, [", $a11, "]\n",
            "vfmadd231ps {c11_0}, {b0}, {t1}\n",
            "vfmadd231ps {c11_1}, {b1}, {t1}\n",
        )
    };
}

/// The full 12 x 32 tile, its k loop in assembly, four steps a pass, B's steps `bs` floats
/// apart (32 in a packed micro-panel; B's row stride when it is read in place), addressed
/// from one pointer and two stride registers. Compiled, the generic tile clears its 24
/// accumulators through a 1536-byte `memset` call on the stack each time (1.1–1.5% of a 1024³
/// or 2048³ call in `perf`, Zen 4); here they start and stay in registers. They are 24 named
/// variables rather than an array: taken in and out of the assembly as `[[__m512; 2]; 12]`
/// and wrapped by `map`, the conversion stayed an out-of-line call and the whole ran 5–7%
/// slower. The arithmetic, and so every bit of the result, is the generic tile's.
///
/// Never inlined: inlined into [`kernel_strided`], beside [`full_tile_strided`] and the
/// generic tiles, the calls ran 2–4% slower (A/B within one process, Zen 4, 2026-11-29:
/// 256³ 0.973–0.980, 784x128x512 TN 0.957–0.974 against the tile kept apart, which read
/// 0.997–0.998 and 0.984–0.996 against the build before the strided kernel).
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32, A packed (`ars` 1, `acs` 12) and this `bs`.
#[inline(never)]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn full_tile(
    kc: usize,
    a: *const f32,
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    #[cfg(miri)]
    // SAFETY: forwarded contract (Miri cannot run assembly).
    unsafe {
        super::tile::<V16, 12, 2>(kc, (a, 1, 12), b, bs, c, ldc, st)
    }
    #[cfg(not(miri))]
    // SAFETY: the loop reads kc steps of 12 floats from `a` and 32 from `b`, `bs` floats
    // apart, inside the extents of the contract; it writes only registers.
    unsafe {
        super::prefetch_tile::<V16, 12, 2>(c, ldc);
        let z = _mm512_setzero_ps();
        let (mut c0_0, mut c0_1) = (z, z);
        let (mut c1_0, mut c1_1) = (z, z);
        let (mut c2_0, mut c2_1) = (z, z);
        let (mut c3_0, mut c3_1) = (z, z);
        let (mut c4_0, mut c4_1) = (z, z);
        let (mut c5_0, mut c5_1) = (z, z);
        let (mut c6_0, mut c6_1) = (z, z);
        let (mut c7_0, mut c7_1) = (z, z);
        let (mut c8_0, mut c8_1) = (z, z);
        let (mut c9_0, mut c9_1) = (z, z);
        let (mut c10_0, mut c10_1) = (z, z);
        let (mut c11_0, mut c11_1) = (z, z);
        std::arch::asm!(
            "test {n4}, {n4}",
            "jz 3f",
            ".p2align 6",
            "2:",
            step_12x32!("{b}", "{b} + 64", "{a} + 0", "{a} + 4", "{a} + 8", "{a} + 12", "{a} + 16", "{a} + 20", "{a} + 24", "{a} + 28", "{a} + 32", "{a} + 36", "{a} + 40", "{a} + 44"),
            step_12x32!("{b} + {s1}", "{b} + {s1} + 64", "{a} + 48", "{a} + 52", "{a} + 56", "{a} + 60", "{a} + 64", "{a} + 68", "{a} + 72", "{a} + 76", "{a} + 80", "{a} + 84", "{a} + 88", "{a} + 92"),
            step_12x32!("{b} + {s1}*2", "{b} + {s1}*2 + 64", "{a} + 96", "{a} + 100", "{a} + 104", "{a} + 108", "{a} + 112", "{a} + 116", "{a} + 120", "{a} + 124", "{a} + 128", "{a} + 132", "{a} + 136", "{a} + 140"),
            step_12x32!("{b} + {s3}", "{b} + {s3} + 64", "{a} + 144", "{a} + 148", "{a} + 152", "{a} + 156", "{a} + 160", "{a} + 164", "{a} + 168", "{a} + 172", "{a} + 176", "{a} + 180", "{a} + 184", "{a} + 188"),
            "add {a}, 192",
            "lea {b}, [{b} + {s1}*4]",
            "dec {n4}",
            "jnz 2b",
            "3:",
            "test {n1}, {n1}",
            "jz 5f",
            "4:",
            step_12x32!("{b}", "{b} + 64", "{a} + 0", "{a} + 4", "{a} + 8", "{a} + 12", "{a} + 16", "{a} + 20", "{a} + 24", "{a} + 28", "{a} + 32", "{a} + 36", "{a} + 40", "{a} + 44"),
            "add {a}, 48",
            "add {b}, {s1}",
            "dec {n1}",
            "jnz 4b",
            "5:",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            s1 = in(reg) bs * 4,
            s3 = in(reg) bs * 12,
            n4 = inout(reg) kc / 4 => _,
            n1 = inout(reg) kc % 4 => _,
            b0 = out(zmm_reg) _,
            b1 = out(zmm_reg) _,
            t0 = out(zmm_reg) _,
            t1 = out(zmm_reg) _,
            c0_0 = inout(zmm_reg) c0_0,
            c0_1 = inout(zmm_reg) c0_1,
            c1_0 = inout(zmm_reg) c1_0,
            c1_1 = inout(zmm_reg) c1_1,
            c2_0 = inout(zmm_reg) c2_0,
            c2_1 = inout(zmm_reg) c2_1,
            c3_0 = inout(zmm_reg) c3_0,
            c3_1 = inout(zmm_reg) c3_1,
            c4_0 = inout(zmm_reg) c4_0,
            c4_1 = inout(zmm_reg) c4_1,
            c5_0 = inout(zmm_reg) c5_0,
            c5_1 = inout(zmm_reg) c5_1,
            c6_0 = inout(zmm_reg) c6_0,
            c6_1 = inout(zmm_reg) c6_1,
            c7_0 = inout(zmm_reg) c7_0,
            c7_1 = inout(zmm_reg) c7_1,
            c8_0 = inout(zmm_reg) c8_0,
            c8_1 = inout(zmm_reg) c8_1,
            c9_0 = inout(zmm_reg) c9_0,
            c9_1 = inout(zmm_reg) c9_1,
            c10_0 = inout(zmm_reg) c10_0,
            c10_1 = inout(zmm_reg) c10_1,
            c11_0 = inout(zmm_reg) c11_0,
            c11_1 = inout(zmm_reg) c11_1,
            options(nostack, readonly),
        );
        let acc = [
            [V16(c0_0), V16(c0_1)],
            [V16(c1_0), V16(c1_1)],
            [V16(c2_0), V16(c2_1)],
            [V16(c3_0), V16(c3_1)],
            [V16(c4_0), V16(c4_1)],
            [V16(c5_0), V16(c5_1)],
            [V16(c6_0), V16(c6_1)],
            [V16(c7_0), V16(c7_1)],
            [V16(c8_0), V16(c8_1)],
            [V16(c9_0), V16(c9_1)],
            [V16(c10_0), V16(c10_1)],
            [V16(c11_0), V16(c11_1)],
        ];
        super::store_tile::<V16, 12, 2>(&acc, c, ldc, st);
    }
}

/// [`full_tile`] for an A read through strides: its element (row i, step p) at
/// `a + i·ars + p·acs`, which reads A in place (`ars` 1 and `acs` its row stride when it is
/// stored transposed; its row stride and 1 when not). The twelve rows are addressed from
/// three pointers (rows 0, 3 and 6) and two index registers (`ars` and `3·ars`, in bytes),
/// each pointer stepping `acs` a step. The arithmetic, and so every bit of the result, is the
/// generic tile's. Never inlined, as [`full_tile`].
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32 and these strides.
#[inline(never)]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn full_tile_strided(
    kc: usize,
    (a, ars, acs): (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    #[cfg(miri)]
    // SAFETY: forwarded contract (Miri cannot run assembly).
    unsafe {
        super::tile::<V16, 12, 2>(kc, (a, ars, acs), b, bs, c, ldc, st)
    }
    #[cfg(not(miri))]
    // SAFETY: the loop reads kc steps of the 12 A floats at `a + i·ars` (i < 12) and of 32 B
    // floats, A's steps `acs` apart and B's `bs`, inside the extents of the contract; it writes
    // only registers.
    unsafe {
        super::prefetch_tile::<V16, 12, 2>(c, ldc);
        let z = _mm512_setzero_ps();
        let (mut c0_0, mut c0_1) = (z, z);
        let (mut c1_0, mut c1_1) = (z, z);
        let (mut c2_0, mut c2_1) = (z, z);
        let (mut c3_0, mut c3_1) = (z, z);
        let (mut c4_0, mut c4_1) = (z, z);
        let (mut c5_0, mut c5_1) = (z, z);
        let (mut c6_0, mut c6_1) = (z, z);
        let (mut c7_0, mut c7_1) = (z, z);
        let (mut c8_0, mut c8_1) = (z, z);
        let (mut c9_0, mut c9_1) = (z, z);
        let (mut c10_0, mut c10_1) = (z, z);
        let (mut c11_0, mut c11_1) = (z, z);
        std::arch::asm!(
            "test {n4}, {n4}",
            "jz 3f",
            ".p2align 6",
            "2:",
            step_12x32!("{b}", "{b} + 64", "{a0}", "{a0} + {l}", "{a0} + {l}*2", "{a3}", "{a0} + {l}*4", "{a3} + {l}*2", "{a6}", "{a3} + {l}*4", "{a0} + {l}*8", "{a6} + {l3}", "{a6} + {l}*4", "{a3} + {l}*8"),
            "add {a0}, {acs}",
            "add {a3}, {acs}",
            "add {a6}, {acs}",
            step_12x32!("{b} + {s1}", "{b} + {s1} + 64", "{a0}", "{a0} + {l}", "{a0} + {l}*2", "{a3}", "{a0} + {l}*4", "{a3} + {l}*2", "{a6}", "{a3} + {l}*4", "{a0} + {l}*8", "{a6} + {l3}", "{a6} + {l}*4", "{a3} + {l}*8"),
            "add {a0}, {acs}",
            "add {a3}, {acs}",
            "add {a6}, {acs}",
            step_12x32!("{b} + {s1}*2", "{b} + {s1}*2 + 64", "{a0}", "{a0} + {l}", "{a0} + {l}*2", "{a3}", "{a0} + {l}*4", "{a3} + {l}*2", "{a6}", "{a3} + {l}*4", "{a0} + {l}*8", "{a6} + {l3}", "{a6} + {l}*4", "{a3} + {l}*8"),
            "add {a0}, {acs}",
            "add {a3}, {acs}",
            "add {a6}, {acs}",
            step_12x32!("{b} + {s3}", "{b} + {s3} + 64", "{a0}", "{a0} + {l}", "{a0} + {l}*2", "{a3}", "{a0} + {l}*4", "{a3} + {l}*2", "{a6}", "{a3} + {l}*4", "{a0} + {l}*8", "{a6} + {l3}", "{a6} + {l}*4", "{a3} + {l}*8"),
            "add {a0}, {acs}",
            "add {a3}, {acs}",
            "add {a6}, {acs}",
            "lea {b}, [{b} + {s1}*4]",
            "dec {n4}",
            "jnz 2b",
            "3:",
            "test {n1}, {n1}",
            "jz 5f",
            "4:",
            step_12x32!("{b}", "{b} + 64", "{a0}", "{a0} + {l}", "{a0} + {l}*2", "{a3}", "{a0} + {l}*4", "{a3} + {l}*2", "{a6}", "{a3} + {l}*4", "{a0} + {l}*8", "{a6} + {l3}", "{a6} + {l}*4", "{a3} + {l}*8"),
            "add {a0}, {acs}",
            "add {a3}, {acs}",
            "add {a6}, {acs}",
            "add {b}, {s1}",
            "dec {n1}",
            "jnz 4b",
            "5:",
            a0 = inout(reg) a => _,
            a3 = inout(reg) a.wrapping_add(3 * ars) => _,
            a6 = inout(reg) a.wrapping_add(6 * ars) => _,
            l = in(reg) ars * 4,
            l3 = in(reg) ars * 12,
            acs = in(reg) acs * 4,
            b = inout(reg) b => _,
            s1 = in(reg) bs * 4,
            s3 = in(reg) bs * 12,
            n4 = inout(reg) kc / 4 => _,
            n1 = inout(reg) kc % 4 => _,
            b0 = out(zmm_reg) _,
            b1 = out(zmm_reg) _,
            t0 = out(zmm_reg) _,
            t1 = out(zmm_reg) _,
            c0_0 = inout(zmm_reg) c0_0,
            c0_1 = inout(zmm_reg) c0_1,
            c1_0 = inout(zmm_reg) c1_0,
            c1_1 = inout(zmm_reg) c1_1,
            c2_0 = inout(zmm_reg) c2_0,
            c2_1 = inout(zmm_reg) c2_1,
            c3_0 = inout(zmm_reg) c3_0,
            c3_1 = inout(zmm_reg) c3_1,
            c4_0 = inout(zmm_reg) c4_0,
            c4_1 = inout(zmm_reg) c4_1,
            c5_0 = inout(zmm_reg) c5_0,
            c5_1 = inout(zmm_reg) c5_1,
            c6_0 = inout(zmm_reg) c6_0,
            c6_1 = inout(zmm_reg) c6_1,
            c7_0 = inout(zmm_reg) c7_0,
            c7_1 = inout(zmm_reg) c7_1,
            c8_0 = inout(zmm_reg) c8_0,
            c8_1 = inout(zmm_reg) c8_1,
            c9_0 = inout(zmm_reg) c9_0,
            c9_1 = inout(zmm_reg) c9_1,
            c10_0 = inout(zmm_reg) c10_0,
            c10_1 = inout(zmm_reg) c10_1,
            c11_0 = inout(zmm_reg) c11_0,
            c11_1 = inout(zmm_reg) c11_1,
            options(nostack, readonly),
        );
        let acc = [
            [V16(c0_0), V16(c0_1)],
            [V16(c1_0), V16(c1_1)],
            [V16(c2_0), V16(c2_1)],
            [V16(c3_0), V16(c3_1)],
            [V16(c4_0), V16(c4_1)],
            [V16(c5_0), V16(c5_1)],
            [V16(c6_0), V16(c6_1)],
            [V16(c7_0), V16(c7_1)],
            [V16(c8_0), V16(c8_1)],
            [V16(c9_0), V16(c9_1)],
            [V16(c10_0), V16(c10_1)],
            [V16(c11_0), V16(c11_1)],
        ];
        super::store_tile::<V16, 12, 2>(&acc, c, ldc, st);
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
