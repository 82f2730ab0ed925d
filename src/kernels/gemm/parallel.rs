//! The rayon split of the blocked sgemm: C cut into more blocks than threads, taken as threads
//! come free, with the operand every block needs packed once for all of them.
//!
//! Along rows (m >= n) every block of rows needs all of packed B; along columns, all of packed
//! A. That shared operand is packed into one buffer, a group of micro-panels at a time: the
//! first thread to need a group claims it and packs it, a thread that finds it claimed by
//! another waits for it. Threads that start together pack their halves side by side; a thread
//! that wakes late finds the packing done. No thread waits for work another has not started,
//! so rayon may run the blocks in any order, on any number of threads, without a deadlock.
//!
//! Blocks are handed out one at a time (`with_max_len(1)`), so a thread that is slower, or
//! that rayon wakes late, simply takes fewer of them. Large problems go in phases of a few
//! depth blocks each, one fork-join a phase, so that the shared operand stays in L3. Blocks
//! fall on multiples of MR (rows) or NR (columns) and every depth block is the serial one, so
//! the result is bit-identical to a serial run.
//!
//! Where A is read in place, blocks of rows (when B is read in place too) or of columns run
//! the serial loops side by side, sharing nothing (`Gemm::serial_blocks`).

use super::kernel::{Microkernel, StridedKernel};
use super::pack::{PACK, pack_panels};
use super::params::{
    BlockSizes, IN_PLACE_SPLIT_BLOCKS_PER_THREAD, PARALLEL_BLOCKS_PER_THREAD, SHARED_PACK_GROUP,
    SHARED_PHASE_BYTES,
};
use super::{AMode, Gemm, Transpose};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};

/// A group of micro-panels nobody has claimed yet.
const UNCLAIMED: u8 = 0;
/// A group a thread is packing.
const PACKING: u8 = 1;
/// A group that is packed and may be read.
const PACKED: u8 = 2;

/// The shared operand: op(B) when C is split along rows, op(A) along columns, packed as one
/// buffer of the depth blocks of a phase, each holding the micro-panels of the phase's
/// columns of op(B) (at most NC) or all rows of op(A).
struct Shared {
    /// Start of the buffer, one slot per depth block of a phase: slot d at `d * block`, the
    /// phase's micro-panel j of it at `j * kc * width`.
    buf: *mut f32,
    /// Floats between slots (`kc_step * panels * width`).
    block: usize,
    /// Micro-panel width (NR for B, MR for A) and the most micro-panels a phase has across.
    width: usize,
    panels: usize,
    /// Tiles (columns of op(B) or rows of op(A)) in all.
    len: usize,
    /// One state per group of `SHARED_PACK_GROUP` micro-panels per slot.
    state: Vec<AtomicU8>,
    groups: usize,
}

// SAFETY: threads write only the groups they claimed, and read a group only after its
// PACKED state was published with Release and observed with Acquire.
unsafe impl Sync for Shared {}

impl Shared {
    /// Micro-panels `panels` of the phase, whose first is micro-panel `base` of the operand,
    /// at the depth block in slot `slot` (depth `p0..p0 + kc`): packed by this thread or
    /// another, and then readable, `kc * width` floats per micro-panel from the pointer
    /// returned.
    ///
    /// # Safety
    /// `buf` holds every slot; the slot and the panels are in range.
    unsafe fn ensure(
        &self,
        g: &Gemm,
        b_shared: bool,
        slot: usize,
        (p0, kc): (usize, usize),
        base: usize,
        panels: Range<usize>,
    ) -> *const f32 {
        let first = panels.start / SHARED_PACK_GROUP;
        let last = panels.end.div_ceil(SHARED_PACK_GROUP);
        let block = self.buf.wrapping_add(slot * self.block);
        for grp in first..last {
            let s = &self.state[slot * self.groups + grp];
            if s.load(Ordering::Relaxed) == UNCLAIMED
                && s.compare_exchange(UNCLAIMED, PACKING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                let p = grp * SHARED_PACK_GROUP..((grp + 1) * SHARED_PACK_GROUP).min(self.panels);
                let t0 = (base + p.start) * self.width;
                let tn = ((base + p.end) * self.width).min(self.len) - t0;
                // SAFETY: this thread claimed the group, so no other thread reads or writes
                // its floats until PACKED is published below; the buffer holds them.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        block.add(p.start * self.width * kc),
                        p.len() * self.width * kc,
                    )
                };
                if b_shared {
                    let depth = g.tb == Transpose::Yes;
                    pack_panels(dst, g.b, g.ldb, depth, (t0, tn), (p0, kc), self.width);
                } else {
                    let depth = g.ta == Transpose::No;
                    pack_panels(dst, g.a, g.lda, depth, (t0, tn), (p0, kc), self.width);
                }
                s.store(PACKED, Ordering::Release);
            }
        }
        for grp in first..last {
            // Another thread claimed this group and is packing it (it waits on nothing).
            while self.state[slot * self.groups + grp].load(Ordering::Acquire) != PACKED {
                std::hint::spin_loop();
            }
        }
        block.wrapping_add(panels.start * self.width * kc)
    }
}

impl Gemm<'_> {
    /// All of C on rayon's threads: blocks of rows when m >= n, else of columns, about
    /// `PARALLEL_BLOCKS_PER_THREAD` per thread.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `strided` is the path's own.
    pub(super) unsafe fn parallel(
        &self,
        bs: BlockSizes,
        kern: Microkernel,
        threads: usize,
        strided: Option<StridedKernel>,
    ) {
        let (m, n, k) = (self.m, self.n, self.k);
        // SAFETY: forwarded contract.
        if unsafe { self.serial_blocks(bs, kern, threads, strided) } {
            return;
        }
        let by_rows = m >= n;
        let (len, unit) = if by_rows { (m, bs.mr) } else { (n, bs.nr) };
        // The shared operand's tiles run across the other dimension of C.
        let (s_len, s_width) = if by_rows { (n, bs.nr) } else { (m, bs.mr) };
        let units = len.div_ceil(unit);
        let parts = (threads * PARALLEL_BLOCKS_PER_THREAD).min(units);
        let kc_step = super::depth_step(k, bs);
        let depth_blocks = k.div_ceil(kc_step);
        // A phase has at most NC columns of B, or all rows of A.
        let panels = if by_rows { bs.nc.min(n) } else { m }.div_ceil(s_width);
        let groups = panels.div_ceil(SHARED_PACK_GROUP);
        let block = kc_step * panels * s_width;
        // The caller's scratch for this operand holds the shared buffer; borrowed by value,
        // as no borrow of the thread-local may be held across rayon's join.
        let mut scratch =
            PACK.with_borrow_mut(|(a, b)| std::mem::take(if by_rows { b } else { a }));
        // Phases: every block of C goes through the depth blocks of a phase before any starts
        // the next, so that the shared operand it re-reads is one phase's worth, at most
        // SHARED_PHASE_BYTES and held in L3, rather than all of it (16 MB of packed B at
        // 2048^3), and the buffer holds one phase. Along rows a phase also keeps to one panel
        // of NC columns, as the serial loops do.
        let phase_depth = (SHARED_PHASE_BYTES / (block * size_of::<f32>())).max(1);
        let slots = phase_depth.min(depth_blocks);
        let shared = Shared {
            buf: scratch.get(slots * block).as_mut_ptr(),
            block,
            width: s_width,
            panels,
            len: s_len,
            state: (0..slots * groups)
                .map(|_| AtomicU8::new(UNCLAIMED))
                .collect(),
            groups,
        };
        let range = |t: usize| balanced(t, parts, units, unit, len);
        let col_panels = if by_rows { n.div_ceil(bs.nc) } else { 1 };
        for jp in 0..col_panels {
            let jc = jp * bs.nc;
            let nc = bs.nc.min(n - jc);
            for d0 in (0..depth_blocks).step_by(phase_depth) {
                let depth = d0..(d0 + phase_depth).min(depth_blocks);
                // The previous phase has ended (rayon's join): its slots may be reused.
                for st in &shared.state {
                    st.store(UNCLAIMED, Ordering::Relaxed);
                }
                (0..parts).into_par_iter().with_max_len(1).for_each(|t| {
                    let r = range(t);
                    // SAFETY: blocks of different t are disjoint; forwarded contract.
                    unsafe {
                        if by_rows {
                            self.rows_block(
                                bs,
                                (kern, strided),
                                &shared,
                                kc_step,
                                r,
                                (jc, nc),
                                depth.clone(),
                            );
                        } else {
                            self.cols_block(bs, kern, &shared, kc_step, r, depth.clone(), strided);
                        }
                    }
                });
            }
        }
        PACK.with_borrow_mut(|(a, b)| *(if by_rows { b } else { a }) = scratch);
    }

    /// All of C in blocks on rayon's threads, each block by the serial loops, where A is read
    /// in place (see [`Gemm::a_mode`]); returns whether it ran. Nothing is shared, so the
    /// threads never wait on one another, where the shared-operand split packs one operand
    /// once and has every block wait for its panels. `IN_PLACE_SPLIT_BLOCKS_PER_THREAD`
    /// blocks a thread, cut at multiples of MR rows or NR columns, so every element is
    /// computed as on one thread.
    ///
    /// - Blocks of rows when m >= n and B is read in place for all of C (see
    ///   [`Gemm::pack_b`]): nothing is packed.
    /// - Else blocks of columns, each packing its own columns of B (or reading them in
    ///   place) and reading all of A in place, when that reads A over fewer times than the
    ///   shared split would read its operand: always when m < n (the shared split would
    ///   pack A and have more blocks read it), and when m >= n if the column blocks times m
    ///   is less than the shared split's row blocks times n (each of which reads all of
    ///   packed B). At 512³, 64 blocks of 12 rows streamed the 1 MB of packed B from L3.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; `strided` is the path's own.
    unsafe fn serial_blocks(
        &self,
        bs: BlockSizes,
        kern: Microkernel,
        threads: usize,
        strided: Option<StridedKernel>,
    ) -> bool {
        let (m, n, k) = (self.m, self.n, self.k);
        let kc = super::depth_step(k, bs);
        if !matches!(self.a_mode(strided, kc, bs.nc.min(n)), AMode::InPlace(_)) {
            return false;
        }
        let blocks = |len: usize, unit: usize, per_thread: usize| {
            (threads * per_thread).min(len.div_ceil(unit))
        };
        // B's rows counted for all of C, as one thread would read them: every block of rows
        // reads them in place then.
        let by_rows = m >= n && self.b_in_place(bs, kc, strided).is_some();
        if !by_rows && m >= n {
            let col_blocks = blocks(n, bs.nr, IN_PLACE_SPLIT_BLOCKS_PER_THREAD);
            let shared_row_blocks = blocks(m, bs.mr, PARALLEL_BLOCKS_PER_THREAD);
            if m.saturating_mul(col_blocks) >= n.saturating_mul(shared_row_blocks) {
                return false;
            }
        }
        let (len, unit) = if by_rows { (m, bs.mr) } else { (n, bs.nr) };
        let units = len.div_ceil(unit);
        let parts = blocks(len, unit, IN_PLACE_SPLIT_BLOCKS_PER_THREAD);
        (0..parts).into_par_iter().with_max_len(1).for_each(|t| {
            let r = balanced(t, parts, units, unit, len);
            // SAFETY (both arms): row r.start, or column r.start, of C is inside the matrix
            // `run`'s contract promises.
            let block = if by_rows {
                Gemm {
                    m: r.len(),
                    a: &self.a[r.start * self.lda..],
                    c: unsafe { self.c.add(r.start * self.ldc) },
                    ..*self
                }
            } else {
                // Column j of op(B) starts at float j of B's storage when B is not
                // transposed, at row j when it is.
                let b0 = match self.tb {
                    Transpose::No => r.start,
                    Transpose::Yes => r.start * self.ldb,
                };
                Gemm {
                    n: r.len(),
                    b: &self.b[b0..],
                    c: unsafe { self.c.add(r.start) },
                    bias: self.bias.map(|b| &b[r.start..]),
                    ..*self
                }
            };
            // SAFETY: disjoint blocks of C; the block's A, B and C are its rows or columns
            // of the problem's, and the rest is the problem's own.
            unsafe { block.serial(bs, kern, strided) };
        });
        true
    }

    /// Rows `rows` of C, columns `jc..jc + nc`, against depth blocks `depth` of the shared
    /// packed B.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; no other thread touches these rows of C; `kerns` are the path's
    /// microkernel and strided kernel.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_block(
        &self,
        bs: BlockSizes,
        kerns: (Microkernel, Option<StridedKernel>),
        shared: &Shared,
        kc_step: usize,
        rows: Range<usize>,
        (jc, nc): (usize, usize),
        depth: Range<usize>,
    ) {
        let panels = 0..nc.div_ceil(bs.nr);
        PACK.with_borrow_mut(|(abuf, _)| {
            for d in depth.clone() {
                let p0 = d * kc_step;
                let kc = kc_step.min(self.k - p0);
                let slot = d - depth.start;
                // SAFETY: the buffer holds a slot per depth block of the phase; once ensured,
                // the panels are only read, by any thread, until the phase ends.
                unsafe {
                    let base = jc / bs.nr;
                    let bp = shared.ensure(self, true, slot, (p0, kc), base, panels.clone());
                    let bp = std::slice::from_raw_parts(bp, panels.len() * bs.nr * kc);
                    self.block(bs, kerns, rows.clone(), (jc, nc), (p0, kc), bp, abuf, None);
                }
            }
        });
    }

    /// Columns `cols` of C, all rows, against depth blocks `depth` of the shared packed A.
    ///
    /// # Safety
    /// As for [`Gemm::run`]; no other thread touches these columns of C; `strided` as for
    /// [`Gemm::pack_b`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn cols_block(
        &self,
        bs: BlockSizes,
        kern: Microkernel,
        shared: &Shared,
        kc_step: usize,
        cols: Range<usize>,
        depth: Range<usize>,
        strided: Option<StridedKernel>,
    ) {
        let m = self.m;
        let a_panels = 0..m.div_ceil(bs.mr);
        PACK.with_borrow_mut(|(_, bbuf)| {
            for jc in cols.clone().step_by(bs.nc) {
                let nc = bs.nc.min(cols.end - jc);
                for d in depth.clone() {
                    let p0 = d * kc_step;
                    let kc = kc_step.min(self.k - p0);
                    let bp = bbuf.get(nc.div_ceil(bs.nr) * bs.nr * kc);
                    let in_place = self.pack_b(bs, bp, (jc, nc), (p0, kc), strided);
                    // SAFETY: as in `rows_block`; the A block of rows ic.. starts at micro-panel
                    // ic / MR.
                    unsafe {
                        let slot = d - depth.start;
                        let ap = shared.ensure(self, false, slot, (p0, kc), 0, a_panels.clone());
                        let ap = std::slice::from_raw_parts(ap, a_panels.len() * bs.mr * kc);
                        for ic in (0..m).step_by(bs.mc) {
                            let mc = bs.mc.min(m - ic);
                            let a = &ap[ic * kc..];
                            let a = super::ABlock::Packed(a);
                            self.tiles(bs, kern, (ic, mc), (jc, nc), (p0, kc), a, bp, in_place);
                        }
                    }
                }
            }
        });
    }
}

/// Block `t` of `parts` over `units` units of `unit` rows or columns (at most `len`): units
/// `t * units / parts ..`, so sizes differ by at most one unit.
fn balanced(t: usize, parts: usize, units: usize, unit: usize, len: usize) -> Range<usize> {
    (t * units / parts * unit).min(len)..((t + 1) * units / parts * unit).min(len)
}
