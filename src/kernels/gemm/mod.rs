//! The sgemm driver: BLIS loops 5..1 around a register-tile microkernel (the rayon split of
//! the blocked path is in `parallel.rs`).
//!
//! The argument checks and the public signature live in `kernels/mod.rs`; this module assumes
//! every slice is long enough for its dimensions.

/// Defines `$name(isa, g, b, ldb, rows)`: rows `rows` of C by `$body::<V>(g, b, ldb, rows)`
/// compiled for the chosen path (a `#[target_feature]` build per x86 path, `wide`
/// elsewhere); the small-depth and small-m paths share this shape (the narrow path, with a
/// third build, writes its own: `narrow.rs`).
///
/// The generated function's contract (`# Safety`): as for `$body`, and `isa` is supported by
/// this CPU.
macro_rules! rows_on_isa {
    ($name:ident, $body:ident) => {
        /// Rows `rows` of C on `isa` (columns, for the small-m path's body).
        ///
        /// # Safety
        /// As for the body this dispatches to; `isa` is supported by this CPU.
        unsafe fn $name(
            isa: $crate::kernels::gemm::kernel::Isa,
            g: &$crate::kernels::gemm::Gemm,
            b: &[f32],
            ldb: usize,
            rows: std::ops::Range<usize>,
        ) {
            use $crate::kernels::gemm::kernel::{Isa, portable::W8};
            /// # Safety
            /// AVX2 and FMA are available; as for the body.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(
                g: &$crate::kernels::gemm::Gemm,
                b: &[f32],
                ldb: usize,
                rows: std::ops::Range<usize>,
            ) {
                // SAFETY: forwarded contract; the features V8 needs are enabled here.
                unsafe { $body::<$crate::kernels::gemm::kernel::avx2::V8>(g, b, ldb, rows) }
            }
            /// # Safety
            /// AVX-512F is available; as for the body.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            unsafe fn avx512(
                g: &$crate::kernels::gemm::Gemm,
                b: &[f32],
                ldb: usize,
                rows: std::ops::Range<usize>,
            ) {
                // SAFETY: forwarded contract; the features V16 needs are enabled here.
                unsafe { $body::<$crate::kernels::gemm::kernel::avx512::V16>(g, b, ldb, rows) }
            }
            // SAFETY: the caller passes a supported isa; forwarded contract.
            unsafe {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => avx512(g, b, ldb, rows),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => avx2(g, b, ldb, rows),
                    _ => $body::<W8>(g, b, ldb, rows),
                }
            }
        }
    };
}

/// A row loop (of `rows_on_isa!`, or the narrow path's): rows `rows` of C on `isa`, with op(B)
/// given as `b`, `ldb`.
type RowsFn = unsafe fn(Isa, &Gemm, &[f32], usize, Range<usize>);

pub(crate) mod kernel;
mod narrow;
pub(crate) mod pack;
mod parallel;
pub mod params;
mod small_k;

use super::Transpose;
use kernel::{Isa, Microkernel, Store, StridedKernel};
use pack::{PACK, pack_panels, transpose};
use params::{
    A_PANEL_L1_BYTES, B_PANEL_L1_BYTES, BlockSizes, IN_PLACE_A_ALIAS_BYTES, IN_PLACE_A_MAX_COLS,
    IN_PLACE_A_MAX_DEPTH, IN_PLACE_B_MAX_BYTES, NARROW_N, SMALL_K, SMALL_M, SMALL_M_PARALLEL_MIN_B,
};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// One `C = act(alpha·op(A)·op(B) + beta·C + bias)` problem, with C behind a raw pointer so
/// that threads can write disjoint blocks of it.
pub(crate) struct Gemm<'a> {
    pub ta: Transpose,
    pub tb: Transpose,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: &'a [f32],
    pub lda: usize,
    pub b: &'a [f32],
    pub ldb: usize,
    pub beta: f32,
    pub c: *mut f32,
    pub ldc: usize,
    /// Added to every row of C after alpha/beta (length n).
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

// SAFETY: the only non-Sync field is `c`; `run` hands each thread a disjoint block of C.
unsafe impl Sync for Gemm<'_> {}

impl Gemm<'_> {
    /// Runs the problem on `isa`, splitting it over rayon's threads when it pays.
    ///
    /// # Safety
    /// `c` is valid for writes (and reads, when beta != 0) of an `m x n` matrix with row
    /// stride `ldc`; the slices are long enough (checked by the public wrappers).
    pub(crate) unsafe fn run(&self, isa: Isa) {
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 || self.alpha == 0.0 {
            // SAFETY: forwarded contract.
            unsafe { self.scale_c() };
            return;
        }
        let threads = crate::kernels::threads();
        if m <= SMALL_M && self.tb == Transpose::No {
            if threads > 1 && k * n >= SMALL_M_PARALLEL_MIN_B {
                // Column blocks of 64 keep every thread's stores on whole cache lines; each
                // element is computed the same way whatever the split.
                let per = n.div_ceil(threads).div_ceil(64) * 64;
                (0..n.div_ceil(per)).into_par_iter().for_each(|t| {
                    // SAFETY: disjoint column blocks of C; forwarded contract.
                    unsafe { self.small_m(isa, t * per..((t + 1) * per).min(n)) }
                });
            } else {
                // SAFETY: forwarded contract.
                unsafe { self.small_m(isa, 0..n) };
            }
            return;
        }
        if n <= NARROW_N && self.ta == Transpose::No {
            // SAFETY: forwarded contract; the path chosen is supported.
            unsafe { self.narrow(isa) };
            return;
        }
        if n <= NARROW_N {
            // SAFETY: forwarded contract; A is transposed here.
            unsafe { self.transposed_narrow(isa) };
            return;
        }
        if k <= SMALL_K {
            // SAFETY: forwarded contract.
            unsafe { self.small_k(isa) };
            return;
        }
        let bs = isa.block_sizes();
        let kern = kernel::microkernel(isa);
        let strided = kernel::strided_kernel(isa);
        let threads = crate::kernels::split_threads(self.flops());
        if threads < 2 {
            // SAFETY: forwarded contract.
            unsafe { self.serial(bs, kern, strided) };
            return;
        }
        // SAFETY: forwarded contract.
        unsafe { self.parallel(bs, kern, threads, strided) };
    }

    /// The floating-point operations of the product, `2·m·n·k` (saturating).
    pub(super) fn flops(&self) -> usize {
        2usize
            .saturating_mul(self.m)
            .saturating_mul(self.n)
            .saturating_mul(self.k)
    }

    /// Runs `rows_fn`, a row loop ([`RowsFn`]), over all of C: on rayon's threads
    /// in blocks of a multiple of `unit` rows when the work pays for it, else on this one.
    /// Each element is computed the same way whatever the split, so results do not depend on
    /// the thread count.
    ///
    /// # Safety
    /// As for [`Gemm::run`], and as `rows_fn` requires of `b` and `ldb`.
    pub(super) unsafe fn split_rows(
        &self,
        isa: Isa,
        rows_fn: RowsFn,
        unit: usize,
        b: &[f32],
        ldb: usize,
    ) {
        let m = self.m;
        let threads = crate::kernels::split_threads(self.flops());
        if threads < 2 || m < 2 * unit {
            // SAFETY: forwarded contract; all of C.
            unsafe { rows_fn(isa, self, b, ldb, 0..m) };
            return;
        }
        let per = m.div_ceil(threads).div_ceil(unit) * unit;
        (0..m.div_ceil(per)).into_par_iter().for_each(|t| {
            // SAFETY: disjoint row blocks of C; forwarded contract.
            unsafe { rows_fn(isa, self, b, ldb, t * per..((t + 1) * per).min(m)) }
        });
    }

    /// [`Gemm::split_rows`] with B as stored when `as_stored`, else with the transpose of B's
    /// storage (k x n when B is not transposed, n x k when it is), copied into this thread's B
    /// scratch.
    ///
    /// # Safety
    /// As for [`Gemm::run`], and as `rows_fn` requires of op(B) in the layout chosen.
    pub(super) unsafe fn split_rows_b(
        &self,
        isa: Isa,
        rows_fn: RowsFn,
        unit: usize,
        as_stored: bool,
    ) {
        if as_stored {
            // SAFETY: forwarded contract.
            return unsafe { self.split_rows(isa, rows_fn, unit, self.b, self.ldb) };
        }
        // B's storage is `rows x cols` with row stride ldb.
        let (rows, cols) = match self.tb {
            Transpose::No => (self.k, self.n),
            Transpose::Yes => (self.n, self.k),
        };
        // Borrow the packing buffer by value rather than holding the thread-local borrowed
        // across rayon's join, where this thread may run another sgemm's task.
        let mut buf = PACK.with_borrow_mut(|(_, b)| std::mem::take(b));
        let bt = buf.get(rows * cols);
        transpose(bt, rows, self.b, self.ldb, rows, cols);
        // SAFETY: forwarded contract; bt holds cols rows of `rows` floats.
        unsafe { self.split_rows(isa, rows_fn, unit, bt, rows) };
        PACK.with_borrow_mut(|(_, b)| *b = buf);
    }

    /// `C = act(beta·C + bias)`, for k == 0 or alpha == 0, where A and B contribute nothing.
    unsafe fn scale_c(&self) {
        for i in 0..self.m {
            // SAFETY: row i of C is inside the matrix promised by `run`'s contract.
            let row = unsafe { std::slice::from_raw_parts_mut(self.c.add(i * self.ldc), self.n) };
            for (j, x) in row.iter_mut().enumerate() {
                let mut v = if self.beta == 0.0 {
                    0.0
                } else {
                    self.beta * *x
                };
                if let Some(b) = self.bias {
                    v += b[j];
                }
                if self.relu && v.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    v = 0.0;
                }
                *x = v;
            }
        }
    }

    /// The BLIS loops over all of C, on this thread; `strided`, the path's kernel for operands
    /// read in place, allows reading them so (see [`Gemm::pack_b`] and [`Gemm::block`]).
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `strided` is the path's own.
    unsafe fn serial(&self, bs: BlockSizes, kern: Microkernel, strided: Option<StridedKernel>) {
        let (m, n, k) = (self.m, self.n, self.k);
        let kc_step = depth_step(k, bs);
        PACK.with_borrow_mut(|(abuf, bbuf)| {
            // LOOP 5: panels of NC columns.
            for jc in (0..n).step_by(bs.nc) {
                let nc = bs.nc.min(n - jc);
                // LOOP 4: depth blocks of KC.
                for p0 in (0..k).step_by(kc_step) {
                    let kc = kc_step.min(k - p0);
                    let bp = bbuf.get(nc.div_ceil(bs.nr) * bs.nr * kc);
                    let in_place = self.pack_b(bs, bp, (jc, nc), (p0, kc), strided);
                    let depth = (p0, kc);
                    let kerns = (kern, strided);
                    // SAFETY: forwarded contract; B is read in place only as `pack_b` decided.
                    unsafe { self.block(bs, kerns, 0..m, (jc, nc), depth, bp, abuf, in_place) };
                }
            }
        });
    }

    /// Packs the `kc x nc` panel of op(B) at depth p0, columns jc.., into `bp` for loops 3..1
    /// and returns None; or, when `strided` is given (the path has such a kernel), B is not
    /// transposed (its rows are then runs of op(B)'s columns) and B's rows of this depth
    /// block, counted once for each block of MC rows of C, come to at most
    /// [`IN_PLACE_B_MAX_BYTES`], packs only a last micro-panel narrower than NR (a full-width
    /// read of it would run past the end of B's rows) and returns the kernel: the tiles then
    /// read the others in place (see [`Gemm::tiles`]).
    fn pack_b(
        &self,
        bs: BlockSizes,
        bp: &mut [f32],
        (jc, nc): (usize, usize),
        (p0, kc): (usize, usize),
        strided: Option<StridedKernel>,
    ) -> Option<StridedKernel> {
        let in_place = self.b_in_place(bs, kc, strided);
        let depth = (p0, kc);
        if in_place.is_none() {
            let b_depth = self.tb == Transpose::Yes;
            pack_panels(bp, self.b, self.ldb, b_depth, (jc, nc), depth, bs.nr);
        } else if nc % bs.nr != 0 {
            let full = nc / bs.nr * bs.nr;
            let part = (jc + full, nc - full);
            pack_panels(
                &mut bp[full * kc..],
                self.b,
                self.ldb,
                false,
                part,
                depth,
                bs.nr,
            );
        }
        in_place
    }

    /// The path's strided kernel if the tiles should read B in place for a depth block of
    /// `kc` (see [`Gemm::pack_b`]): B not transposed, and its rows of the block, counted once
    /// for each block of MC rows of C, at most [`IN_PLACE_B_MAX_BYTES`].
    fn b_in_place(
        &self,
        bs: BlockSizes,
        kc: usize,
        strided: Option<StridedKernel>,
    ) -> Option<StridedKernel> {
        let fits = self
            .m
            .div_ceil(bs.mc)
            .saturating_mul(kc)
            .saturating_mul(self.ldb)
            .saturating_mul(size_of::<f32>())
            <= IN_PLACE_B_MAX_BYTES;
        strided.filter(|_| fits && self.tb == Transpose::No)
    }

    /// Loops 3..1 for the rows `rows` of C against one packed `kc x nc` panel of B (or, with
    /// `b_in_place`, its last micro-panel only, if narrower than NR: see [`Gemm::tiles`]),
    /// with A's blocks packed, read in place or copied by the first tiles, as
    /// [`Gemm::a_mode`] says.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `bp` holds the packed panel; no other thread touches these rows
    /// of the panel's columns of C; `kerns` are the path's microkernel and strided kernel;
    /// `b_in_place` as for [`Gemm::tiles`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        &self,
        bs: BlockSizes,
        (kern, strided): (Microkernel, Option<StridedKernel>),
        rows: Range<usize>,
        (jc, nc): (usize, usize),
        (p0, kc): (usize, usize),
        bp: &[f32],
        abuf: &mut pack::Scratch,
        b_in_place: Option<StridedKernel>,
    ) {
        let mode = self.a_mode(strided, kc, nc);
        // LOOP 3: blocks of MC rows.
        for ic in rows.clone().step_by(bs.mc) {
            let mc = bs.mc.min(rows.end - ic);
            let (rows_a, depth) = ((ic, mc), (p0, kc));
            let a = match mode {
                AMode::InPlace(sk) => ABlock::InPlace(sk),
                AMode::Packed => ABlock::Packed(self.pack_a(bs, abuf, rows_a, depth, 0)),
                // The first tiles copy the whole micro-panels; only the rest is packed here.
                AMode::Copied(sk) => {
                    let ap = self.pack_a(bs, abuf, rows_a, depth, mc / bs.mr * bs.mr);
                    ABlock::CopiedFirst(ap, sk)
                }
            };
            // SAFETY: forwarded contract; `a` is as `tiles` requires.
            unsafe { self.tiles(bs, kern, (ic, mc), (jc, nc), (p0, kc), a, bp, b_in_place) };
        }
    }

    /// The packed-block buffer for A's rows `ic..ic + mc` at depth p0, with the rows from
    /// `ic + from` packed into it (the rows before, whole micro-panels, are left to the tiles
    /// that copy them).
    fn pack_a<'s>(
        &self,
        bs: BlockSizes,
        abuf: &'s mut pack::Scratch,
        (ic, mc): (usize, usize),
        (p0, kc): (usize, usize),
        from: usize,
    ) -> &'s mut [f32] {
        let ap = abuf.get(mc.div_ceil(bs.mr) * bs.mr * kc);
        if from < mc {
            let a_depth = self.ta == Transpose::No;
            let (dst, tiles) = (&mut ap[from * kc..], (ic + from, mc - from));
            pack_panels(dst, self.a, self.lda, a_depth, tiles, (p0, kc), bs.mr);
        }
        ap
    }

    /// How loops 2..1 read A for a depth block of `kc` against a panel of B `nc` columns
    /// wide, on a path with the strided kernel `strided` (none: packed).
    ///
    /// - In place when A is not transposed (each tile then broadcasts from twelve rows of A,
    ///   `lda` apart), at most [`IN_PLACE_A_MAX_DEPTH`] deep and [`IN_PLACE_A_MAX_COLS`]
    ///   wide, with rows that do not all fall in one L1 set ([`IN_PLACE_A_ALIAS_BYTES`]).
    /// - Copied by the first tiles when A is transposed: each tile of the first micro-panel
    ///   of B reads its twelve floats a step in place and writes them to the packed block.
    /// - Else packed before the tiles.
    fn a_mode(&self, strided: Option<StridedKernel>, kc: usize, nc: usize) -> AMode {
        let Some(sk) = strided else {
            return AMode::Packed;
        };
        match self.ta {
            Transpose::Yes => AMode::Copied(sk),
            Transpose::No
                if kc <= IN_PLACE_A_MAX_DEPTH
                    && nc <= IN_PLACE_A_MAX_COLS
                    && !(self.lda * size_of::<f32>()).is_multiple_of(IN_PLACE_A_ALIAS_BYTES) =>
            {
                AMode::InPlace(sk)
            }
            Transpose::No => AMode::Packed,
        }
    }

    /// Where the tile at rows i.. reads A, at depth p0, in place: `(pointer, ars, acs)` as
    /// the strided kernel takes it (see [`kernel::tile`]).
    fn a_at(&self, i: usize, p0: usize) -> (*const f32, usize, usize) {
        match self.ta {
            Transpose::No => (self.a[i * self.lda + p0..].as_ptr(), self.lda, 1),
            Transpose::Yes => (self.a[p0 * self.lda + i..].as_ptr(), 1, self.lda),
        }
    }

    /// Loops 2..1: the `mc x nc` block of C at (ic, jc) from a block of A read as `a` says
    /// (rows ic.., depth p0..) and a packed `kc x nc` panel of B.
    ///
    /// With `b_in_place`, the micro-panels NR wide are read from B itself, its rows `ldb`
    /// apart, and only a last narrower one comes from `bp`. That saves packing B, which is
    /// most of what a call spends outside the microkernel at these sizes; the strided reads
    /// cost more than the packing saves once B's rows are read many times over
    /// (`IN_PLACE_B_MAX_BYTES`).
    ///
    /// # Safety
    /// As for [`Gemm::run`]; the packed block of A (packed, or copied but for its whole
    /// micro-panels) and `bp` hold what `a` and `b_in_place` say (with `b_in_place`, the last
    /// micro-panel if narrower than NR); no other thread touches this block of C; the kernels
    /// are the path's own, and B is read in place only if not transposed.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles(
        &self,
        bs: BlockSizes,
        kern: Microkernel,
        (ic, mc): (usize, usize),
        (jc, nc): (usize, usize),
        (p0, kc): (usize, usize),
        a: ABlock<'_>,
        bp: &[f32],
        b_in_place: Option<StridedKernel>,
    ) {
        let last = p0 + kc == self.k;
        let beta = if p0 == 0 { self.beta } else { 1.0 };
        // The packed block, read by the tiles (and, when copied, first written by them), as
        // pointers: one buffer, written and read in turn by tiles of the one thread.
        let (ap, copy_to, a_kern) = match a {
            ABlock::Packed(ap) => (ap.as_ptr(), std::ptr::null_mut(), None),
            ABlock::InPlace(sk) => (std::ptr::null(), std::ptr::null_mut(), Some(sk)),
            ABlock::CopiedFirst(ap, sk) => {
                let w = ap.as_mut_ptr();
                (w.cast_const(), w, Some(sk))
            }
        };
        let in_place = ap.is_null();
        // LOOP 2 and LOOP 1 over the tiles, a column of them at a time (BLIS's order: B's
        // micro-panel stays in L1 against every micro-panel of A) or a row at a time (A's
        // micro-panel stays in L1); one loop body, so that it is compiled once and inline.
        let rows_outer = self.rows_outer(bs, kc, b_in_place.is_some());
        let (tiles_down, tiles_across) = (mc.div_ceil(bs.mr), nc.div_ceil(bs.nr));
        let (outer, inner) = if rows_outer {
            (tiles_down, tiles_across)
        } else {
            (tiles_across, tiles_down)
        };
        for o in 0..outer {
            for q in 0..inner {
                let (ir, jr) = if rows_outer {
                    (o * bs.mr, q * bs.nr)
                } else {
                    (q * bs.mr, o * bs.nr)
                };
                let b_here = b_in_place.filter(|_| jr + bs.nr <= nc);
                let (bpanel, bstep) = match b_here {
                    Some(_) => (self.b[p0 * self.ldb + jc + jr..].as_ptr(), self.ldb),
                    None => (bp[jr * kc..].as_ptr(), bs.nr),
                };
                let bias = match self.bias {
                    Some(b) if last => b[jc + jr..].as_ptr(),
                    _ => std::ptr::null(),
                };
                let st = Store {
                    alpha: self.alpha,
                    beta,
                    bias,
                    relu: self.relu && last,
                };
                let (i, j) = (ic + ir, jc + jr);
                let (h, w) = (bs.mr.min(ic + mc - i), bs.nr.min(jc + nc - j));
                // The first micro-panel of B copies each whole micro-panel of A it reads.
                let copying = !copy_to.is_null() && jr == 0 && h == bs.mr;
                // SAFETY: the packed block holds mc.div_ceil(MR) micro-panels of kc*MR floats.
                let (a, pa, strided) = unsafe {
                    if in_place || copying {
                        let pa = if copying {
                            copy_to.add(ir * kc)
                        } else {
                            std::ptr::null_mut()
                        };
                        (self.a_at(i, p0), pa, a_kern)
                    } else {
                        ((ap.add(ir * kc), 1, bs.mr), std::ptr::null_mut(), b_here)
                    }
                };
                // SAFETY: the packed panels hold kc*MR and kc*NR floats; in place, B's rows p0..
                // hold NR floats from column jc + jr, ldb apart, as the panel is whole, and A's h
                // rows from i hold kc floats from p0; `pa` is this micro-panel's place in the
                // packed block, read only by later tiles (in either order, the tile against B's
                // first micro-panel runs before the others of its row); the tile at (i, j) is
                // inside C when full, else `edge_tile` bounds it.
                unsafe {
                    let cp = self.c.add(i * self.ldc + j);
                    // An edge tile computes its h rows and w columns only.
                    let whole = w.is_multiple_of(bs.lanes);
                    match strided {
                        Some(sk) if whole => {
                            sk(h, w, kc, a, bpanel, bstep, pa, cp, self.ldc, st);
                        }
                        Some(sk) => {
                            let run = |t, ldt, st| sk(h, w, kc, a, bpanel, bstep, pa, t, ldt, st);
                            edge_tile(bs, run, cp, self.ldc, (h, w), st)
                        }
                        None if whole => kern(h, w, kc, a.0, bpanel, cp, self.ldc, st),
                        None => {
                            let run = |t, ldt, st| kern(h, w, kc, a.0, bpanel, t, ldt, st);
                            edge_tile(bs, run, cp, self.ldc, (h, w), st)
                        }
                    }
                }
            }
        }
    }

    /// Whether loops 2..1 take the tiles a row of them at a time (each micro-panel of A
    /// against every micro-panel of B) rather than a column at a time, for a depth block of
    /// `kc` with B read in place or packed (see [`A_PANEL_L1_BYTES`]).
    fn rows_outer(&self, bs: BlockSizes, kc: usize, b_in_place: bool) -> bool {
        let bytes = |rows: usize| rows * kc * size_of::<f32>();
        bytes(bs.mr) <= A_PANEL_L1_BYTES && (b_in_place || bytes(bs.nr) > B_PANEL_L1_BYTES)
    }
}

/// How loops 2..1 read a block of A (see [`Gemm::a_mode`]), with the path's strided kernel
/// where they read it in place.
#[derive(Clone, Copy)]
enum AMode {
    Packed,
    InPlace(StridedKernel),
    Copied(StridedKernel),
}

/// A block of A as [`Gemm::tiles`] reads it.
enum ABlock<'s> {
    /// Packed micro-panels of MR rows, `kc` steps each.
    Packed(&'s [f32]),
    /// A itself (see [`Gemm::a_at`]).
    InPlace(StridedKernel),
    /// A itself for the tiles of the first micro-panel of B, which copy each whole
    /// micro-panel of A into this buffer (at its packed place) as they go; the tiles to their
    /// right read the copies. A last micro-panel of fewer than MR rows is packed before.
    CopiedFirst(&'s mut [f32], StridedKernel),
}

/// The depth of every block of the shared dimension but the last, which may be shorter: even
/// blocks of at most KC, so with KC 512, 784 becomes 2 x 392 rather than 512 + 272. Serial and
/// parallel runs cut the depth alike, which keeps their results bit-identical.
fn depth_step(k: usize, bs: BlockSizes) -> usize {
    k.div_ceil(k.div_ceil(bs.kc))
}

/// Largest MR x NR of any path (12 x 32).
const MAX_TILE: usize = 384;

#[repr(align(64))]
#[allow(dead_code)] // only ever used through raw pointers
struct Tile([f32; MAX_TILE]);

/// A tile whose width is not a whole number of vectors (any h): `run` the kernel for its h
/// rows on a local copy (given the copy, its row stride and the store) and write back only the
/// `h x w` part, so edges get exactly the arithmetic of interior tiles.
///
/// # Safety
/// As for the microkernel `run` calls, except that C only needs to be valid for `h x w`.
unsafe fn edge_tile(
    bs: BlockSizes,
    run: impl FnOnce(*mut f32, usize, Store),
    c: *mut f32,
    ldc: usize,
    (h, w): (usize, usize),
    mut st: Store,
) {
    // The kernel writes the whole MR x NR tile and reads it only when beta != 0, so the buffer
    // is initialised only then; the bias buffer only when there is a bias.
    let mut tile = MaybeUninit::<Tile>::uninit();
    let t = tile.as_mut_ptr() as *mut f32;
    let mut bias = MaybeUninit::<Tile>::uninit();
    let nr = bs.nr;
    // SAFETY: reads and writes stay within h rows and w columns of C, and within the MR x NR
    // (at most MAX_TILE) floats of the local buffers; nothing uninitialised is read.
    unsafe {
        if st.beta != 0.0 {
            t.write_bytes(0, bs.mr * nr);
            for i in 0..h {
                std::ptr::copy_nonoverlapping(c.add(i * ldc), t.add(i * nr), w);
            }
        }
        if !st.bias.is_null() {
            let bp = bias.as_mut_ptr() as *mut f32;
            bp.write_bytes(0, nr);
            std::ptr::copy_nonoverlapping(st.bias, bp, w);
            st.bias = bp;
        }
        run(t, nr, st);
        for i in 0..h {
            std::ptr::copy_nonoverlapping(t.add(i * nr), c.add(i * ldc), w);
        }
    }
}
