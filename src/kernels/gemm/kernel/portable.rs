//! Portable microkernel on `wide::f32x8`: a 4 x 8 tile. `wide` picks its instructions when the
//! crate is compiled (SSE2 on a default x86-64 build, NEON on aarch64), so this is the path for
//! CPUs without AVX2; it is also tested on every machine through `MATHBLOCKS_ISA=portable`.

use super::{Store, Vector, tile_rows};
use wide::f32x8;

#[derive(Clone, Copy)]
pub(crate) struct W8(f32x8);

// SAFETY (whole impl): wide uses only instructions of the compilation target; the pointer
// contracts are the caller's, as documented on `Vector`.
impl Vector for W8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        W8(f32x8::ZERO)
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        W8(f32x8::splat(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats at p; no alignment is assumed.
        W8(f32x8::from(unsafe {
            std::ptr::read_unaligned(p as *const [f32; 8])
        }))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at p; no alignment is assumed.
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 8], self.0.to_array()) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        W8(self.0.mul_add(b.0, c.0))
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        W8(self.0 * b.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        W8(self.0 + b.0)
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        // maxps semantics on x86 (a NaN in self yields b); on NEON a NaN propagates.
        W8(self.0.fast_max(b.0))
    }
    #[inline(always)]
    unsafe fn broadcast_quad(p: *const f32) -> Self {
        // SAFETY: the caller guarantees four readable floats at p; no alignment is assumed.
        let [a, b, c, d] = unsafe { std::ptr::read_unaligned(p as *const [f32; 4]) };
        W8(f32x8::from([a, b, c, d, a, b, c, d]))
    }
}

/// # Safety
/// The pointer contract of [`tile`](super::tile) holds for MR = 4, NR = 8 (A packed: `ars` 1, `acs` 4; `bs` 8); `h` rows
/// of the tile are computed (1..=4; others mean 4), and its one vector of columns.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel(
    h: usize,
    _w: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    st: Store,
) {
    // SAFETY: forwarded contract.
    unsafe { tile_rows::<W8, 4, 1>(h, kc, (a, 1, 4), b, 8, c, ldc, st) }
}

/// Independent multiply-add chains on `wide` vectors: `iters * 8 * 16` floating-point
/// operations (see `fma_peak_probe`).
pub(crate) fn fma_probe(iters: usize) -> f32 {
    let mut acc = [f32x8::splat(1.0); 8];
    let m = f32x8::splat(0.999_999);
    let a = f32x8::splat(1e-7);
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = x.mul_add(m, a);
        }
    }
    acc.iter().fold(f32x8::ZERO, |s, &x| s + x).reduce_add()
}
