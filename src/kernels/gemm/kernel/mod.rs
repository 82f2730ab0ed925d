//! Microkernels: one generic register-tile body (`tile`) over a small SIMD vector trait, and one
//! thin `#[target_feature]` wrapper per instruction set, plus the run-time ISA choice.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub(crate) mod portable;

use super::params::BlockSizes;
use std::sync::OnceLock;

/// The instruction-set path the kernels run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 AVX-512F, 512-bit FMA.
    Avx512,
    /// x86-64 AVX2 with FMA, 256-bit.
    Avx2,
    /// Any CPU: `wide` vectors at the instruction set the crate was compiled for.
    Portable,
}

impl Isa {
    /// The lower-case name used by `MATHBLOCKS_ISA` (`avx512`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Parses a name as accepted by `MATHBLOCKS_ISA`.
    pub fn from_name(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" => Some(Isa::Avx512),
            "avx2" | "fma" => Some(Isa::Avx2),
            "portable" | "generic" => Some(Isa::Portable),
            _ => None,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// The paths this CPU supports, fastest first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }

    /// Block sizes of this path's sgemm.
    pub fn block_sizes(self) -> BlockSizes {
        match self {
            Isa::Avx512 => super::params::AVX512,
            Isa::Avx2 => super::params::AVX2,
            Isa::Portable => super::params::PORTABLE,
        }
    }
}

/// Name of the environment variable that forces a path (`avx512`, `avx2` or `portable`).
pub const ISA_ENV: &str = "MATHBLOCKS_ISA";

/// The path in use: the fastest this CPU supports, or the one named by `MATHBLOCKS_ISA` if the
/// CPU supports it (an unsupported or unknown name is ignored, so forcing can never execute an
/// illegal instruction). Decided once per process and cached.
pub fn isa() -> Isa {
    static CHOICE: OnceLock<Isa> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        let forced = std::env::var(ISA_ENV).ok().and_then(|s| Isa::from_name(&s));
        match forced {
            Some(i) if i.is_supported() => i,
            _ => Isa::supported()[0],
        }
    })
}

/// Name of the environment variable that overrides [`zmm_half_rate`]'s detection (`half` or
/// `full`), so that tests can run both choices on one machine.
pub const ZMM_RATE_ENV: &str = "MATHBLOCKS_ZMM_RATE";

/// Whether this CPU runs a 512-bit FMA at half the rate of a 256-bit one, as AMD's Zen 4 does
/// (it splits each into two 256-bit halves; Intel's AVX-512 cores issue two of either a
/// cycle). Read once from CPUID: an AMD CPU of family 19h with AVX-512F, which is Zen 4 (Zen 3,
/// the same family, has no AVX-512; Zen 5, family 1Ah, has full-width units). `MATHBLOCKS_ZMM_RATE`
/// (`half` or `full`) overrides it; other values are ignored. Cached for the process. Where it
/// holds, the AVX-512 path's narrow kernels (n <= `NARROW_N`, A as stored) run eight-lane
/// vectors, in AVX-512VL's 32 registers from five columns on.
pub fn zmm_half_rate() -> bool {
    static HALF: OnceLock<bool> = OnceLock::new();
    *HALF.get_or_init(|| match std::env::var(ZMM_RATE_ENV).as_deref() {
        Ok("half") => true,
        Ok("full") => false,
        _ => detect_zmm_half_rate(),
    })
}

#[cfg(target_arch = "x86_64")]
fn detect_zmm_half_rate() -> bool {
    use std::arch::x86_64::__cpuid;
    // Miri has no CPUID; its forced AVX-512 runs take the full-rate choice.
    if cfg!(miri) {
        return false;
    }
    let vendor = __cpuid(0);
    let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
    // Family: the base family (bits 8..12) plus the extended family (bits 20..28) when the
    // base one is 0xF.
    let eax = __cpuid(1).eax;
    let base = (eax >> 8) & 0xF;
    let family = if base == 0xF {
        base + ((eax >> 20) & 0xFF)
    } else {
        base
    };
    amd && family == 0x19 && Isa::Avx512.is_supported()
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_zmm_half_rate() -> bool {
    false
}

/// A SIMD vector of `LANES` f32, the only thing the generic tile body needs.
///
/// # Safety
/// Implementations use instructions that the caller must have checked the CPU supports;
/// pointers must be valid for `LANES` floats.
pub(crate) trait Vector: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// `self * b + c`, fused where the ISA has FMA.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    /// Lane-wise maximum; a NaN in `self` gives `b`.
    unsafe fn max(self, b: Self) -> Self;
    /// Hints that the cache line holding `p` will be written soon (no-op where unsupported).
    #[inline(always)]
    unsafe fn prefetch(_p: *const f32) {}
    /// The four floats at `p` in every 128-bit quarter of the vector (`LANES / 4` copies);
    /// reads nothing past `p + 4`, assumes no alignment.
    unsafe fn broadcast_quad(p: *const f32) -> Self;
    /// The sums of four vectors' quarters: lane `4·g + c` of the result is
    /// `(v[c][4g] + v[c][4g + 1]) + (v[c][4g + 2] + v[c][4g + 3])`, always in that order, so
    /// that every path forms the same sum.
    #[inline(always)]
    unsafe fn reduce_quads(v: [Self; 4]) -> Self {
        let mut lanes = [[0f32; 16]; 4];
        // SAFETY: each array holds 16 >= LANES floats.
        unsafe {
            for (x, l) in v.iter().zip(lanes.iter_mut()) {
                x.store(l.as_mut_ptr());
            }
        }
        let mut out = [0f32; 16];
        for (t, o) in out[..Self::LANES].iter_mut().enumerate() {
            let (g, c) = (t / 4, t % 4);
            let l = &lanes[c][4 * g..4 * g + 4];
            *o = (l[0] + l[1]) + (l[2] + l[3]);
        }
        // SAFETY: out holds 16 >= LANES floats.
        unsafe { Self::load(out.as_ptr()) }
    }
}

/// What the microkernel applies to a tile as it stores it:
/// `C = act(alpha·AB + beta·C + bias)`. `bias` points at `NR` floats or is null.
#[derive(Clone, Copy)]
pub(crate) struct Store {
    pub alpha: f32,
    pub beta: f32,
    pub bias: *const f32,
    pub relu: bool,
}

/// The microkernel signature: `kc` steps of packed A (`MR` floats a step) times packed B (`NR`
/// floats a step) into the first `h` rows (1 <= h <= MR) and the first `ceil(w / lanes)`
/// vectors of columns (1 <= w <= NR; `lanes` as in [`BlockSizes`]) of the `MR x NR` tile at
/// `c` (row stride `ldc`). A tile at the bottom or right edge of C costs only the rows and
/// vectors it has; columns past those are neither read nor written.
pub(crate) type Microkernel = unsafe fn(
    h: usize,
    w: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
);

/// The generic register tile: `MR` rows by `NV` vectors of columns, from an A whose element
/// (row i, step p) is at `a + i·ars + p·acs` (a packed micro-panel: `ars` 1 and `acs` the
/// path's MR; A read in place: 1 and its row stride when it is stored transposed, its row
/// stride and 1 when not) and a B whose steps are `bs >= NV * LANES` floats apart (a packed
/// micro-panel: the path's NR, more at a right-edge tile; B read in place: its row stride).
/// Callers pass strides as constants where they are, which the inlined loop then folds into
/// its loads.
///
/// # Safety
/// `a` holds an element at each of the `MR x kc` offsets above, `b` holds `NV * LANES` floats
/// at each of its `kc` steps `bs` apart, `c` is valid for an `MR x NR` tile with row stride
/// `ldc`, `st.bias` is null or valid for `NR` floats, and `V`'s instructions are supported
/// (the caller is a `#[target_feature]` wrapper).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile<V: Vector, const MR: usize, const NV: usize>(
    kc: usize,
    (a, ars, acs): (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: every access below stays inside the extents stated in the contract above.
    unsafe {
        prefetch_tile::<V, MR, NV>(c, ldc);
        let mut acc = [[V::zero(); NV]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let mut bv = [V::zero(); NV];
            for (j, v) in bv.iter_mut().enumerate() {
                *v = V::load(b.add(j * V::LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = V::splat(*a.add(i * ars));
                for j in 0..NV {
                    row[j] = ai.mul_add(bv[j], row[j]);
                }
            }
            a = a.add(acs);
            b = b.add(bs);
        }
        store_tile::<V, MR, NV>(&acc, c, ldc, st);
    }
}

/// [`tile`] for the first `h` rows (1..MR; others mean MR) of an A laid out as `a` says (see
/// [`tile`]) and a B of steps `bs` floats apart, by `NV` vectors of columns: the one place
/// every path turns a run-time height into a compiled tile. Arms for heights at or past `MR`
/// are compiled out.
///
/// # Safety
/// As for [`tile`], for `h` rows (at most `MR`) and `NV` vectors.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile_rows<V: Vector, const MR: usize, const NV: usize>(
    h: usize,
    kc: usize,
    a: (*const f32, usize, usize),
    b: *const f32,
    bs: usize,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract; every arm's height is below MR.
    unsafe {
        match h {
            1 if 1 < MR => tile::<V, 1, NV>(kc, a, b, bs, c, ldc, st),
            2 if 2 < MR => tile::<V, 2, NV>(kc, a, b, bs, c, ldc, st),
            3 if 3 < MR => tile::<V, 3, NV>(kc, a, b, bs, c, ldc, st),
            4 if 4 < MR => tile::<V, 4, NV>(kc, a, b, bs, c, ldc, st),
            5 if 5 < MR => tile::<V, 5, NV>(kc, a, b, bs, c, ldc, st),
            6 if 6 < MR => tile::<V, 6, NV>(kc, a, b, bs, c, ldc, st),
            7 if 7 < MR => tile::<V, 7, NV>(kc, a, b, bs, c, ldc, st),
            8 if 8 < MR => tile::<V, 8, NV>(kc, a, b, bs, c, ldc, st),
            9 if 9 < MR => tile::<V, 9, NV>(kc, a, b, bs, c, ldc, st),
            10 if 10 < MR => tile::<V, 10, NV>(kc, a, b, bs, c, ldc, st),
            11 if 11 < MR => tile::<V, 11, NV>(kc, a, b, bs, c, ldc, st),
            _ => tile::<V, MR, NV>(kc, a, b, bs, c, ldc, st),
        }
    }
}

/// Fetches the first and last cache line of each row of an `MR x NV·LANES` tile of C: rows
/// are often a multiple of 4 KB apart and collide in cache sets, and fetching them before the
/// k loop overlaps those misses with it instead of stalling the stores after it.
///
/// # Safety
/// None beyond `V`'s instructions being supported: a prefetch never faults.
#[inline(always)]
pub(crate) unsafe fn prefetch_tile<V: Vector, const MR: usize, const NV: usize>(
    c: *mut f32,
    ldc: usize,
) {
    for i in 0..MR {
        let row = c.wrapping_add(i * ldc);
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe {
            V::prefetch(row);
            V::prefetch(row.wrapping_add(NV * V::LANES - 1));
        }
    }
}

/// Stores a finished tile of accumulators into C as `st` says (see [`Store`]).
///
/// # Safety
/// As for [`tile`]: `c` is valid for the `MR x NV·LANES` tile, `st.bias` null or valid for as
/// many floats, and `V`'s instructions are supported.
#[inline(always)]
pub(crate) unsafe fn store_tile<V: Vector, const MR: usize, const NV: usize>(
    acc: &[[V; NV]; MR],
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: inside the tile and the bias row, by the contract.
    unsafe {
        // alpha 1 with beta 0 or 1 (a product's first depth block, and its later ones, with
        // or without dense_forward's bias and relu) goes straight from the accumulators; the
        // general loop below, with its per-element checks, keeps the tile in memory and cost
        // 2–4% at depths of 128–256.
        if st.alpha == 1.0 && (st.beta == 0.0 || st.beta == 1.0) {
            let b = st.bias;
            match (st.beta == 1.0, !b.is_null(), st.relu) {
                (false, false, false) => {
                    store_unit::<V, MR, NV, false, false, false>(acc, c, ldc, b)
                }
                (false, false, true) => store_unit::<V, MR, NV, false, false, true>(acc, c, ldc, b),
                (false, true, false) => store_unit::<V, MR, NV, false, true, false>(acc, c, ldc, b),
                (false, true, true) => store_unit::<V, MR, NV, false, true, true>(acc, c, ldc, b),
                (true, false, false) => store_unit::<V, MR, NV, true, false, false>(acc, c, ldc, b),
                (true, false, true) => store_unit::<V, MR, NV, true, false, true>(acc, c, ldc, b),
                (true, true, false) => store_unit::<V, MR, NV, true, true, false>(acc, c, ldc, b),
                (true, true, true) => store_unit::<V, MR, NV, true, true, true>(acc, c, ldc, b),
            }
            return;
        }
        let alpha = V::splat(st.alpha);
        let beta = V::splat(st.beta);
        let zero = V::zero();
        for (i, row) in acc.iter().enumerate() {
            for (j, &r) in row.iter().enumerate() {
                let p = c.add(i * ldc + j * V::LANES);
                let mut v = r;
                if st.alpha != 1.0 {
                    v = v.mul(alpha);
                }
                // beta == 0 must not read C: it may hold NaN.
                if st.beta != 0.0 {
                    v = V::load(p).mul_add(beta, v);
                }
                if !st.bias.is_null() {
                    v = v.add(V::load(st.bias.add(j * V::LANES)));
                }
                if st.relu {
                    v = v.max(zero);
                }
                v.store(p);
            }
        }
    }
}

/// [`tile`]'s store for alpha 1 and beta 0 (`ACC` false) or 1 (`ACC`), its steps fixed at
/// compile time: `C = act(AB + [C] + [bias])`, each step as the general store does it (C + AB
/// is what its fma(C, 1, AB) gives), so the two give the same bits.
///
/// # Safety
/// As for [`tile`]: `c` is valid for the `MR x NR` tile, `bias` for `NR` floats when `BIAS`.
#[inline(always)]
unsafe fn store_unit<
    V: Vector,
    const MR: usize,
    const NV: usize,
    const ACC: bool,
    const BIAS: bool,
    const RELU: bool,
>(
    acc: &[[V; NV]; MR],
    c: *mut f32,
    ldc: usize,
    bias: *const f32,
) {
    // SAFETY: inside the tile and the bias row, by the contract.
    unsafe {
        let zero = V::zero();
        for (i, row) in acc.iter().enumerate() {
            for (j, &r) in row.iter().enumerate() {
                let p = c.add(i * ldc + j * V::LANES);
                let mut v = r;
                // beta == 0 must not read C: it may hold NaN.
                if ACC {
                    v = V::load(p).add(v);
                }
                if BIAS {
                    v = v.add(V::load(bias.add(j * V::LANES)));
                }
                if RELU {
                    v = v.max(zero);
                }
                v.store(p);
            }
        }
    }
}

/// The microkernel of a path.
pub(crate) fn microkernel(isa: Isa) -> Microkernel {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::kernel,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::kernel,
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx512 | Isa::Avx2 => portable::kernel,
        Isa::Portable => portable::kernel,
    }
}

/// A microkernel whose operands are read through strides rather than from packed
/// micro-panels: `kc` steps of an A whose element (row i, step p) is at `a + i·ars + p·acs`
/// times a B whose steps are `bs` floats apart (NR floats at each; `ceil(w / lanes)` vectors
/// of them at a right-edge tile), into the first `h` rows and `ceil(w / lanes)` vectors of
/// columns of the tile at `c` (see [`Microkernel`]). It reads A or B, or both, in place: A
/// packed is `ars` 1 and `acs` MR, B packed is `bs` NR. With `pa` not null, it also copies
/// the `h` rows of A it reads into `pa` as a packed micro-panel (MR floats a step), for the
/// tiles to its right.
pub(crate) type StridedKernel = unsafe fn(
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
);

/// Copies `h` rows (at most MR) of `kc` steps of an A laid out as [`tile`] reads it into
/// `pa` as a packed micro-panel: MR floats a step, rows past `h` zero.
///
/// # Safety
/// `a` holds the `h x kc` elements; `pa` is valid for `MR * kc` floats and overlaps nothing
/// `a` reads.
#[inline(always)]
pub(crate) unsafe fn copy_a<const MR: usize>(
    h: usize,
    kc: usize,
    (a, ars, acs): (*const f32, usize, usize),
    pa: *mut f32,
) {
    // SAFETY: every access below stays inside the extents stated in the contract above.
    unsafe {
        for p in 0..kc {
            for i in 0..MR {
                let v = if i < h {
                    *a.add(i * ars + p * acs)
                } else {
                    0.0
                };
                *pa.add(p * MR + i) = v;
            }
        }
    }
}

/// The path's [`StridedKernel`], if it has one: only AVX-512's, where reading B or A in place
/// was measured to pay (see `IN_PLACE_B_MAX_BYTES` and `IN_PLACE_A_MAX_COLS`).
pub(crate) fn strided_kernel(isa: Isa) -> Option<StridedKernel> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(avx512::kernel_strided),
        _ => None,
    }
}

/// Runs independent FMA chains on the path in use for `iters` rounds and returns the number
/// of floating-point operations done (a multiply-add counts two) and a checksum to keep the
/// work alive. Benchmarks divide the first by the elapsed time to get this core's FMA peak,
/// which sgemm efficiency is quoted against.
pub fn fma_peak_probe(iters: usize) -> (u64, f32) {
    match isa() {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (iters as u64 * 24 * 32, unsafe { avx512::fma_probe(iters) }),
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (iters as u64 * 12 * 16, unsafe { avx2::fma_probe(iters) }),
        _ => (iters as u64 * 8 * 16, portable::fma_probe(iters)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `broadcast_quad` and `reduce_quads` of `V` against their definitions, bit for bit.
    /// Magnitudes from 1e-3 to 1e7 with both signs, so that any other order of the additions
    /// rounds differently somewhere in the draws (checked against the plain order).
    ///
    /// # Safety
    /// The CPU supports `V`'s instructions.
    unsafe fn check_quads<V: Vector>() {
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
            let lanes: [[f32; 16]; 4] = std::array::from_fn(|_| std::array::from_fn(|_| next()));
            let mut got = [0f32; 16];
            // SAFETY: the caller's contract; each array holds 16 >= LANES floats.
            unsafe {
                let v = lanes.map(|l| V::load(l.as_ptr()));
                V::reduce_quads(v).store(got.as_mut_ptr());
            }
            for (t, x) in got[..V::LANES].iter().enumerate() {
                let (g, c) = (t / 4, t % 4);
                let l = &lanes[c][4 * g..4 * g + 4];
                let want = (l[0] + l[1]) + (l[2] + l[3]);
                assert_eq!(x.to_bits(), want.to_bits(), "lane {t}");
                differs_from_plain_order |=
                    want.to_bits() != (((l[0] + l[1]) + l[2]) + l[3]).to_bits();
            }
            let quad = [next(), next(), next(), next()];
            let mut b = [0f32; 16];
            // SAFETY: as above; quad holds four floats.
            unsafe { V::broadcast_quad(quad.as_ptr()).store(b.as_mut_ptr()) };
            for (t, x) in b[..V::LANES].iter().enumerate() {
                assert_eq!(x.to_bits(), quad[t % 4].to_bits(), "broadcast lane {t}");
            }
        }
        assert!(
            differs_from_plain_order,
            "the draws never exposed the order"
        );
    }

    #[test]
    fn quads_on_every_path() {
        // SAFETY: portable needs nothing; the others only where detected.
        unsafe {
            check_quads::<portable::W8>();
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx2.is_supported() {
                check_quads::<avx2::V8>();
            }
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx512.is_supported() {
                check_quads::<avx512::V16>();
            }
        }
    }
}
