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
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        if w <= 16 {
            tile_rows::<V16, 12, 1>(h, kc, (a, 1, 12), b, 32, c, ldc, st)
        } else if h >= 12 {
            full_tile(kc, a, b, 32, c, ldc, st)
        } else {
            tile_rows::<V16, 12, 2>(h, kc, (a, 1, 12), b, 32, c, ldc, st)
        }
    }
}

/// This path's [`StridedKernel`](super::StridedKernel): [`kernel`] for an A and a B read
/// through strides, packed or in place, and with `pa` not null, A's `h x kc` block copied
/// into `pa` as a packed micro-panel as the tile runs (see `Gemm::tiles`). A full tile runs in
/// assembly: [`full_tile`] for a packed A, [`full_tile_rows`] for A read in place by rows,
/// [`full_tile_copy_a`] for A stored transposed and copied; other layouts, and the edges,
/// through [`strided_edge`]. This stays a thin dispatch: a tile of 128 steps is short enough
/// for a heavy prologue here to show (2.7% of a 784x128x512 TN call in `perf`, Zen 4).
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32 and these strides, for `h` rows (1..=12; others mean 12) and `ceil(w / 16)`
/// vectors of columns (1..=2; others mean 2); `pa` is null or valid for `12 * kc` floats
/// that nothing else reads or writes during the call.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_strided(
    h: usize,
    w: usize,
    kc: usize,
    a: (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    pa: *mut f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        if h >= 12 && w > 16 {
            match (pa.is_null(), a.1, a.2) {
                (true, 1, 12) => return full_tile(kc, a.0, b, bs, c, ldc, st),
                (true, ars, 1) => return full_tile_rows(kc, (a.0, ars), b, bs, c, ldc, st),
                (false, 1, acs) => return full_tile_copy_a(kc, (a.0, acs), b, bs, pa, c, ldc, st),
                _ => {}
            }
        }
        strided_edge(h, w, kc, a, b, bs, pa, c, ldc, st)
    }
}

/// [`kernel_strided`] by the generic tile: the edge tiles, and layouts the assembly tiles do
/// not take; with `pa` not null, A is copied first and the tile reads the copy.
///
/// # Safety
/// As for [`kernel_strided`].
#[inline(never)]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn strided_edge(
    h: usize,
    w: usize,
    kc: usize,
    a: (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    pa: *mut f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; the target features are enabled on this function.
    unsafe {
        let a = if pa.is_null() {
            a
        } else {
            super::copy_a::<12>(h, kc, a, pa);
            (pa.cast_const(), 1, 12)
        };
        match (w <= 16, a.1, a.2) {
            // Packed A with constant strides, so that these tiles compile as the packed path's.
            (true, 1, 12) => tile_rows::<V16, 12, 1>(h, kc, (a.0, 1, 12), b, bs, c, ldc, st),
            (false, 1, 12) => tile_rows::<V16, 12, 2>(h, kc, (a.0, 1, 12), b, bs, c, ldc, st),
            (true, ..) => tile_rows::<V16, 12, 1>(h, kc, a, b, bs, c, ldc, st),
            (false, ..) => tile_rows::<V16, 12, 2>(h, kc, a, b, bs, c, ldc, st),
        }
    }
}

/// One step of the 12 x 32 tile's k loop: the two B vectors at addresses `$b0` and `$b1`,
/// and twelve A floats, each broadcast and multiplied into its row's two accumulators. A's
/// floats are `contiguous` from the address `$a` (a packed micro-panel, or A stored
/// transposed), or in twelve `rows` from the pointers `{a0}`, `{a3}` and `{a6}` (rows 0, 3
/// and 6) with index registers `{l}` (A's row stride in bytes) and `{l3}` (three times it),
/// at byte offset `$d`. Addresses are assembler expressions.
#[cfg(not(miri))]
#[rustfmt::skip]
macro_rules! step_12x32 {
    (contiguous $a:literal, $b0:literal, $b1:literal) => {
        step_12x32!(@ $b0, $b1,
            concat!($a, " + 0"), concat!($a, " + 4"), concat!($a, " + 8"), concat!($a, " + 12"),
            concat!($a, " + 16"), concat!($a, " + 20"), concat!($a, " + 24"), concat!($a, " + 28"),
            concat!($a, " + 32"), concat!($a, " + 36"), concat!($a, " + 40"), concat!($a, " + 44"))
    };
    (rows $d:literal, $b0:literal, $b1:literal) => {
        step_12x32!(@ $b0, $b1,
            concat!("{a0} + ", $d), concat!("{a0} + {l} + ", $d), concat!("{a0} + {l}*2 + ", $d),
            concat!("{a3} + ", $d), concat!("{a0} + {l}*4 + ", $d), concat!("{a3} + {l}*2 + ", $d),
            concat!("{a6} + ", $d), concat!("{a3} + {l}*4 + ", $d), concat!("{a0} + {l}*8 + ", $d),
            concat!("{a6} + {l3} + ", $d), concat!("{a6} + {l}*4 + ", $d),
            concat!("{a3} + {l}*8 + ", $d))
    };
    (@ $b0:literal, $b1:literal, $a0:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr,
        $a6:expr, $a7:expr, $a8:expr, $a9:expr, $a10:expr, $a11:expr) => {
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

/// The copy of one step's twelve A floats from `$a` to `$d` (assembler address expressions),
/// for [`full_tile_copy_a`]: eight floats through `{y}` and four through `{x}`.
#[cfg(not(miri))]
macro_rules! copy_12 {
    ($a:literal, $d:literal, $pf:literal) => {
        concat!(
            "prefetcht0 [",
            $pf,
            "]\n",
            "prefetcht0 [",
            $pf,
            " + 44]\n",
            "vmovups {y}, [",
            $a,
            "]\n",
            "vmovups [",
            $d,
            "], {y}\n",
            "vmovups {x}, [",
            $a,
            " + 32]\n",
            "vmovups [",
            $d,
            " + 32], {x}\n",
        )
    };
}

/// The k loop of an assembly tile as one template: `{n4}` passes of the four steps and
/// pointer updates `$four`, then `{nh}` more that also fetch the tile of C for writing, a
/// row a pass (from `{pc}`, rows `{lc}` bytes apart), then `{n1}` single steps of `$one`
/// (each piece a template ending in a newline).
#[cfg(not(miri))]
macro_rules! k_loop {
    ([$($four:expr),* $(,)?], [$($one:expr),* $(,)?] $(,)?) => {
        concat!(
            "test {n4}, {n4}\n",
            "jz 3f\n",
            ".p2align 6\n",
            "2:\n",
            $($four,)*
            "dec {n4}\n",
            "jnz 2b\n",
            "3:\n",
            "test {nh}, {nh}\n",
            "jz 7f\n",
            "6:\n",
            "prefetchw [{pc}]\n",
            "prefetchw [{pc} + 124]\n",
            "add {pc}, {lc}\n",
            $($four,)*
            "dec {nh}\n",
            "jnz 6b\n",
            "7:\n",
            "test {n1}, {n1}\n",
            "jz 5f\n",
            "4:\n",
            $($one,)*
            "dec {n1}\n",
            "jnz 4b\n",
            "5:\n",
        )
    };
}

/// A full 12 x 32 tile whose k loop is the assembly `$template` (see [`step_12x32`]) with the
/// operands `$ops` and `options($opts)`, around the 24 accumulators it names `{c0_0}` to
/// `{c11_1}` and the registers `{b0}`, `{b1}` (B's vectors) and `{t0}`, `{t1}` (broadcasts);
/// then stored to `$c` by `store_tile` with `$st`. The operands every tile shares are named
/// here: `{b}` (B from `$b`, its steps `$bs` floats apart: `{s1}` and `{s3}` are one and three
/// steps in bytes) and the k loop's counters and fetch of C (see [`k_loop`]). The
/// accumulators are 24 named variables rather than an array: taken in and out of the assembly
/// as `[[__m512; 2]; 12]` and wrapped by `map`, the conversion stayed an out-of-line call and
/// the whole ran 5–7% slower.
#[cfg(not(miri))]
macro_rules! asm_tile_12x32 {
    ($kc:expr, $b:expr, $bs:expr, $c:expr, $ldc:expr, $st:expr, [$($template:tt)*], [$($ops:tt)*], [$($opts:tt)*]) => {{
        // The last passes of the k loop fetch C's rows for the stores (see
        // `C_PREFETCH_PASSES`); a tile too shallow for them fetches C as it starts.
        let passes = $kc / 4;
        let fetching = passes.min(C_PREFETCH_PASSES);
        if fetching < C_PREFETCH_PASSES {
            super::prefetch_tile::<V16, 12, 2>($c, $ldc);
        }
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
            $($template)*
            $($ops)*
            nh = inout(reg) fetching => _,
            n4 = inout(reg) passes - fetching => _,
            n1 = inout(reg) $kc % 4 => _,
            pc = inout(reg) $c => _,
            lc = in(reg) $ldc * 4,
            b = inout(reg) $b => _,
            s1 = in(reg) $bs * 4,
            s3 = in(reg) $bs * 12,
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
            options($($opts)*),
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
        super::store_tile::<V16, 12, 2>(&acc, $c, $ldc, $st);
    }};
}

/// The full 12 x 32 tile from a packed A, its k loop in assembly, four steps a pass, B's
/// steps `bs` floats apart (32 in a packed micro-panel; B's row stride when it is read in
/// place), addressed from one pointer and two stride registers. Compiled, the generic tile
/// clears its 24 accumulators through a 1536-byte `memset` call on the stack each time
/// (1.1–1.5% of a 1024³ or 2048³ call in `perf`, Zen 4); here they start and stay in
/// registers. The arithmetic, and so every bit of the result, is the generic tile's.
///
/// Never inlined (nor are the other assembly tiles): inlined into [`kernel_strided`], beside
/// the generic tiles, the calls ran 2–4% slower (A/B within one process, Zen 4, 2026-11-29:
/// 256³ 0.973–0.980, 784x128x512 TN 0.957–0.974 against the tile kept apart, which read
/// 0.997–0.998 and 0.984–0.996 against the build before the strided kernel).
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32, A packed (`ars` 1, `acs` 12) and this `bs`.
#[inline(never)]
#[target_feature(enable = "avx512f")]
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
        asm_tile_12x32!(
            kc,
            b,
            bs,
            c,
            ldc,
            st,
            [k_loop!(
                [
                    step_12x32!(contiguous "{a}", "{b}", "{b} + 64"),
                    step_12x32!(contiguous "{a} + 48", "{b} + {s1}", "{b} + {s1} + 64"),
                    step_12x32!(contiguous "{a} + 96", "{b} + {s1}*2", "{b} + {s1}*2 + 64"),
                    step_12x32!(contiguous "{a} + 144", "{b} + {s3}", "{b} + {s3} + 64"),
                    "add {a}, 192\n",
                    "lea {b}, [{b} + {s1}*4]\n",
                ],
                [
                    step_12x32!(contiguous "{a}", "{b}", "{b} + 64"),
                    "add {a}, 48\n",
                    "add {b}, {s1}\n",
                ],
            ),],
            [
                a = inout(reg) a => _,
            ],
            [nostack, readonly]
        )
    }
}

/// [`full_tile`] for A read in place by rows: its element (row i, step p) at
/// `a + i·ars + p`, as A is stored when not transposed. The twelve rows are addressed from
/// three pointers (rows 0, 3 and 6) and two index registers (`ars` and `3·ars`, in bytes),
/// the four steps of a pass at fixed offsets. The arithmetic, and so every bit of the result,
/// is the generic tile's.
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32, A at (`ars`, 1) and this `bs`.
#[inline(never)]
#[target_feature(enable = "avx512f")]
unsafe fn full_tile_rows(
    kc: usize,
    (a, ars): (*const f32, usize),
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    #[cfg(miri)]
    // SAFETY: forwarded contract (Miri cannot run assembly).
    unsafe {
        super::tile::<V16, 12, 2>(kc, (a, ars, 1), b, bs, c, ldc, st)
    }
    #[cfg(not(miri))]
    // SAFETY: the loop reads kc consecutive floats from each of the 12 rows of A at
    // `a + i·ars` and kc steps of 32 B floats `bs` apart, inside the extents of the contract;
    // it writes only registers.
    unsafe {
        asm_tile_12x32!(
            kc,
            b,
            bs,
            c,
            ldc,
            st,
            [k_loop!(
                [
                    step_12x32!(rows "0", "{b}", "{b} + 64"),
                    step_12x32!(rows "4", "{b} + {s1}", "{b} + {s1} + 64"),
                    step_12x32!(rows "8", "{b} + {s1}*2", "{b} + {s1}*2 + 64"),
                    step_12x32!(rows "12", "{b} + {s3}", "{b} + {s3} + 64"),
                    "add {a0}, 16\n",
                    "add {a3}, 16\n",
                    "add {a6}, 16\n",
                    "lea {b}, [{b} + {s1}*4]\n",
                ],
                [
                    step_12x32!(rows "0", "{b}", "{b} + 64"),
                    "add {a0}, 4\n",
                    "add {a3}, 4\n",
                    "add {a6}, 4\n",
                    "add {b}, {s1}\n",
                ],
            ),],
            [
                a0 = inout(reg) a => _,
                a3 = inout(reg) a.wrapping_add(3 * ars) => _,
                a6 = inout(reg) a.wrapping_add(6 * ars) => _,
                l = in(reg) ars * 4,
                l3 = in(reg) ars * 12,
            ],
            [nostack, readonly]
        )
    }
}

/// [`full_tile`] for A stored transposed, read in place (its twelve floats of a step
/// contiguous, the steps `acs` floats apart) and copied as it goes into `pa` as a packed
/// micro-panel (twelve floats a step), which the tiles to its right then read: the copy rides
/// on the load ports of a loop that waits on its multiply-adds, where packing the block
/// before it cost a pass of its own. The arithmetic, and so every bit of the result, is the
/// generic tile's.
///
/// # Safety
/// The CPU supports AVX-512F; the pointer contract of [`tile`](super::tile) holds for MR = 12,
/// NR = 32, A at (1, `acs`) and this `bs`; `pa` is valid for `12 * kc` floats that nothing
/// else reads or writes during the call.
#[inline(never)]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn full_tile_copy_a(
    kc: usize,
    (a, acs): (*const f32, usize),
    b: *const f32,
    bs: usize,
    pa: *mut f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    #[cfg(miri)]
    // SAFETY: forwarded contract (Miri cannot run assembly).
    unsafe {
        super::copy_a::<12>(12, kc, (a, 1, acs), pa);
        super::tile::<V16, 12, 2>(kc, (pa, 1, 12), b, bs, c, ldc, st)
    }
    #[cfg(not(miri))]
    // SAFETY: the loop reads kc steps of 12 floats from `a`, `acs` floats apart, and of 32 B
    // floats `bs` apart, and writes kc steps of 12 floats to `pa`, inside the extents of the
    // contract.
    unsafe {
        asm_tile_12x32!(
            kc,
            b,
            bs,
            c,
            ldc,
            st,
            [k_loop!(
                [
                    copy_12!("{a}", "{d}", "{pf}"),
                    step_12x32!(contiguous "{a}", "{b}", "{b} + 64"),
                    copy_12!("{a} + {sa}", "{d} + 48", "{pf} + {sa}"),
                    step_12x32!(contiguous "{a} + {sa}", "{b} + {s1}", "{b} + {s1} + 64"),
                    copy_12!("{a} + {sa}*2", "{d} + 96", "{pf} + {sa}*2"),
                    step_12x32!(contiguous "{a} + {sa}*2", "{b} + {s1}*2", "{b} + {s1}*2 + 64"),
                    copy_12!("{a} + {sa3}", "{d} + 144", "{pf} + {sa3}"),
                    step_12x32!(contiguous "{a} + {sa3}", "{b} + {s3}", "{b} + {s3} + 64"),
                    "lea {a}, [{a} + {sa}*4]\n",
                    "lea {pf}, [{pf} + {sa}*4]\n",
                    "add {d}, 192\n",
                    "lea {b}, [{b} + {s1}*4]\n",
                ],
                [
                    copy_12!("{a}", "{d}", "{pf}"),
                    step_12x32!(contiguous "{a}", "{b}", "{b} + 64"),
                    "add {a}, {sa}\n",
                    "add {pf}, {sa}\n",
                    "add {d}, 48\n",
                    "add {b}, {s1}\n",
                ],
            ),],
            [
                a = inout(reg) a => _,
                pf = inout(reg) a.wrapping_add(COPY_A_PREFETCH_STEPS * acs) => _,
                sa = in(reg) acs * 4,
                sa3 = in(reg) acs * 12,
                d = inout(reg) pa => _,
                y = out(ymm_reg) _,
                x = out(xmm_reg) _,
            ],
            [nostack]
        )
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

/// The last passes of four steps of an assembly tile's k loop each fetch one row of the
/// tile's C for writing (`prefetchw`), so that the stores at the end find C in L1, owned.
/// Before, all twelve rows were fetched as the tile started: in one burst among the first
/// steps' loads of B from L2, and long before the stores on deep tiles. A/B within one
/// process against that (Zen 4, one thread, 2026-11-30, median of paired speed ratios):
/// where the tiles keep BLIS's order, 1024³ 1.017, 2048³ 1.017, 128x784x512 0.992–1.006;
/// together with the row order of `params::A_PANEL_L1_BYTES`, 784x128x512 TN 1.034–1.071,
/// 256³ 1.003–1.029, 512³ 1.003–1.030, where either change alone read 0.996–1.011 at those
/// three. Fetching two rows a pass from the start instead gave TN 1.022–1.024, and
/// `prefetcht0` rather than `prefetchw` 1.029–1.041.
const C_PREFETCH_PASSES: usize = 12;

/// Steps ahead of the k loop at which [`full_tile_copy_a`] fetches A.
const COPY_A_PREFETCH_STEPS: usize = 16;
