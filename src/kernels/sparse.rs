//! Dense-layer kernels for inputs that are mostly zeros, such as MNIST pixels (81% of them are
//! exactly 0).
//!
//! The two products of the first layer that read the input, the forward `x·W` and the weight
//! gradient `xᵀ·dy`, cost `2·batch·in_dim·out_dim` FLOPs as dense sgemm whatever the data.
//! Here each is driven by the input's nonzero entries alone: the forward pass adds
//! `x[r, p]·W[p, :]` for the nonzero `x[r, p]` of each row, and the weight gradient adds
//! `x[r, p]·dy[r, :]` into row `p` for the nonzero entries of each column. The work falls with
//! the density, at about half the FMA rate of sgemm (each multiply-add loads its own vector of
//! W or dy, where sgemm's register tile reuses each load), so these win below roughly 50%
//! nonzero ([`params::SPARSE_MAX_DENSITY`]).
//!
//! Layout of the work: W (or dy) is copied, 8 vectors of columns at a time, into a contiguous,
//! 64-byte-aligned panel, and the panel is worked through in blocks of rows of
//! `SPARSE_L1_BLOCK_BYTES`, applying every group's entries that fall in the block before moving
//! on. With fewer than `SPARSE_PACK_MIN_ROWS` rows the forward pass reads W in place instead.
//!
//! An entry that is exactly zero (either sign) contributes nothing, even against an infinite
//! or NaN weight, where dense arithmetic would give NaN; every other value, NaN included, is
//! used.
//!
//! [`params::SPARSE_MAX_DENSITY`]: super::params::SPARSE_MAX_DENSITY

use super::gemm::kernel::{Isa, Vector, isa};
use super::gemm::pack::Scratch as Scratch64;
use super::gemm::params::{SPARSE_L1_BLOCK_BYTES, SPARSE_PACK_MIN_ROWS};
use super::{Activation, SharedOut, check_len, check_matrix};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;

/// Vectors of columns per register block: 8 accumulators, enough independent FMA chains to
/// cover the FMA latency on two pipes.
const NV: usize = 8;

/// Entries hold 32-bit indices: columns of `x`, and rows of `x` in the weight gradient.
const MAX_INDEX: usize = u32::MAX as usize;

/// How many entries ahead the rows of W (or dy) are prefetched.
const PREFETCH: usize = 4;

/// The nonzero entries of part of a matrix, grouped by row (or by column once transposed):
/// group `g` is `ent[start[g]..start[g + 1]]`, each entry a column (or row) index and a value.
/// Indices are 32-bit; the public wrappers send larger matrices to the dense kernels.
#[derive(Default)]
struct Entries {
    start: Vec<usize>,
    /// Index in the low 32 bits, the value's bits in the high 32: one load fetches both.
    ent: Vec<u64>,
}

impl Entries {
    fn group(&self, g: usize) -> Range<usize> {
        self.start[g]..self.start[g + 1]
    }
    /// The index of entry `q`.
    ///
    /// # Safety
    /// `q < ent.len()`.
    #[inline(always)]
    unsafe fn idx(&self, q: usize) -> usize {
        // SAFETY: the contract.
        unsafe { *self.ent.get_unchecked(q) as u32 as usize }
    }
}

#[inline(always)]
fn entry(idx: usize, val: f32) -> u64 {
    (val.to_bits() as u64) << 32 | idx as u64
}

#[inline(always)]
fn entry_idx(e: u64) -> usize {
    e as u32 as usize
}

#[inline(always)]
fn entry_val(e: u64) -> f32 {
    f32::from_bits((e >> 32) as u32)
}

/// Row-grouped entries, the same entries grouped by column, one packed panel and the rows of
/// a narrow last panel, of the call on this thread.
#[derive(Default)]
struct Scratch {
    rows: Entries,
    cols: Entries,
    panel: Scratch64,
    edge: Vec<f32>,
    cursor: Vec<usize>,
    used: Vec<bool>,
}

/// Widest panel of any path (8 vectors of 16 lanes).
const MAX_PANEL: usize = 128;

/// Copies columns `c0..c0 + width` of the row-major `rows x cols` matrix `m` into `dst` as
/// `rows` rows of `pw` floats, zero-padded past `width`: a panel whose rows are contiguous.
///
/// Rows of `m` are often a multiple of 2 KB apart (512 columns), so the same columns of
/// different rows fall into a handful of cache sets and evict each other long before L1 or L2
/// is full; the packed panel has no such conflicts. `dst` should be 64-byte aligned: a vector
/// load that straddles two cache lines costs two. Rows `p` with `used[p] == false` are not
/// copied (an empty `used` copies every row).
#[inline(always)]
fn pack_panel<V: Vector>(
    m: &[f32],
    rows: usize,
    cols: usize,
    c0: usize,
    width: usize,
    used: &[bool],
    dst: &mut [f32],
) {
    let pw = NV * V::LANES;
    let dst = &mut dst[..rows * pw];
    if rows == 0 {
        return;
    }
    // Rows no entry names are never read: leave them as they are.
    let skip = |p: usize| !used.is_empty() && !used[p];
    if width < pw {
        for (p, d) in dst.chunks_exact_mut(pw).enumerate() {
            if skip(p) {
                continue;
            }
            d[..width].copy_from_slice(&m[p * cols + c0..][..width]);
            d[width..].fill(0.0);
        }
        return;
    }
    let src = &m[c0..(rows - 1) * cols + c0 + pw];
    // A full-width row is NV vector moves inline: a memcpy call per 256-byte row costs more
    // than the copy.
    for p in 0..rows {
        if skip(p) {
            continue;
        }
        // SAFETY: row p's pw floats at p * cols lie inside `src` (sliced above), and the
        // destination row inside `dst`; V's instructions are enabled by the caller.
        unsafe {
            let (s, d) = (src.as_ptr().add(p * cols), dst.as_mut_ptr().add(p * pw));
            for j in 0..NV {
                V::load(s.add(j * V::LANES)).store(d.add(j * V::LANES));
            }
        }
    }
}

thread_local! {
    /// Reused across calls so that a warmed-up training loop does not allocate.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Whether `v` is anything but +0.0 or -0.0 (NaN counts as nonzero).
#[inline(always)]
fn is_nonzero(v: f32) -> bool {
    v.to_bits() << 1 != 0
}

/// The fraction of entries of `x` that are nonzero (+0.0 and -0.0 are zero; NaN is not), in
/// `[0, 1]`; 0 for an empty slice. Callers compare it with
/// [`params::SPARSE_MAX_DENSITY`](super::params::SPARSE_MAX_DENSITY) to choose between
/// [`super::dense_forward`] and [`sparse_dense_forward`].
pub fn nonzero_fraction(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let n: usize = x
        .chunks(1 << 16)
        .map(|c| c.iter().map(|&v| is_nonzero(v) as u32).sum::<u32>() as usize)
        .sum();
    n as f64 / x.len() as f64
}

/// Records the nonzero entries of rows `rows`, columns `cols` of the row-major `x` (row
/// stride `ld`) in `e`, one group per row, columns increasing; `idx` holds absolute columns.
#[inline(always)]
fn gather_rows(x: &[f32], ld: usize, rows: Range<usize>, cols: Range<usize>, e: &mut Entries) {
    let width = cols.len();
    e.start.clear();
    e.start.push(0);
    let mut n = 0;
    for r in rows {
        // Every entry of a row is written at the cursor and the cursor advances only past
        // nonzero ones: no branch to mispredict on the data. So the buffer needs room for a
        // whole dense row past the entries so far (it grows to about twice what is used).
        if e.ent.len() < n + width + 1 {
            let len = (2 * e.ent.len()).max(n + width + 1);
            e.ent.resize(len, 0);
        }
        let ent = &mut e.ent[n..n + width + 1];
        let mut k = 0;
        let row = &x[r * ld + cols.start..][..width];
        let mut p = cols.start;
        let mut chunks = row.chunks_exact(8);
        for chunk in &mut chunks {
            // Whole zero chunks (image borders) are skipped with one test.
            if chunk.iter().fold(0u32, |a, &v| a | (v.to_bits() << 1)) != 0 {
                for (q, &v) in chunk.iter().enumerate() {
                    ent[k] = entry(p + q, v);
                    k += is_nonzero(v) as usize;
                }
            }
            p += 8;
        }
        for (q, &v) in chunks.remainder().iter().enumerate() {
            ent[k] = entry(p + q, v);
            k += is_nonzero(v) as usize;
        }
        n += k;
        e.start.push(n);
    }
}

/// Regroups row-grouped entries `rows` (columns in `cols`) by column into `e`: group `p -
/// cols.start` lists the rows (relative to the first row) holding a nonzero in column `p`,
/// rows increasing.
fn transpose_entries(rows: &Entries, cols: Range<usize>, e: &mut Entries) {
    let nnz = *rows.start.last().unwrap_or(&0);
    e.start.clear();
    e.start.resize(cols.len() + 1, 0);
    for &en in &rows.ent[..nnz] {
        e.start[entry_idx(en) - cols.start + 1] += 1;
    }
    for g in 1..e.start.len() {
        e.start[g] += e.start[g - 1];
    }
    if e.ent.len() < nnz {
        e.ent.resize(nnz, 0);
    }
    // Fill each group from its start, using start[g] as the cursor, then shift back.
    for r in 0..rows.start.len() - 1 {
        for q in rows.group(r) {
            let en = rows.ent[q];
            let g = entry_idx(en) - cols.start;
            let at = e.start[g];
            e.ent[at] = entry(r, entry_val(en));
            e.start[g] += 1;
        }
    }
    for g in (1..e.start.len()).rev() {
        e.start[g] = e.start[g - 1];
    }
    e.start[0] = 0;
}

/// `out[r, j0..j0 + NB·LANES] = sum over group r of val·m[idx, j0..]` for every group, then
/// `+ bias` (if any) and relu (if asked), for `NB` vectors of columns.
///
/// # Safety
/// Every `idx` is a row of `m` (row stride `ldm`) with `j0 + NB·LANES` columns; `out` holds
/// one row of stride `ldo` per group with those columns; `bias` is null or holds them; `V`'s
/// instructions are supported.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate_block<V: Vector, const NB: usize>(
    e: &Entries,
    groups: usize,
    m: *const f32,
    ldm: usize,
    j0: usize,
    bias: *const f32,
    relu: bool,
    out: *mut f32,
    ldo: usize,
) {
    // SAFETY (whole body): the accesses stay within the extents of the contract.
    unsafe {
        let zero = V::zero();
        for g in 0..groups {
            let mut acc = [zero; NB];
            let group = e.group(g);
            let last = group.end.saturating_sub(1);
            for q in group {
                // The rows an entry names are scattered, beyond the hardware prefetcher's
                // guess: ask for the one PREFETCH entries ahead while this one computes.
                let ahead = m.add(e.idx((q + PREFETCH).min(last)) * ldm + j0);
                for line in (0..NB * V::LANES).step_by(16) {
                    V::prefetch(ahead.add(line));
                }
                let en = *e.ent.get_unchecked(q);
                let xv = V::splat(entry_val(en));
                let row = m.add(entry_idx(en) * ldm + j0);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = xv.mul_add(V::load(row.add(j * V::LANES)), *a);
                }
            }
            let b = if bias.is_null() { bias } else { bias.add(j0) };
            store_row::<V, NB>(acc, b, relu, out.add(g * ldo + j0));
        }
    }
}

/// [`accumulate_block`] over all `cols` columns: blocks of `NV` vectors, then single vectors,
/// then the last few columns one at a time.
///
/// # Safety
/// As for [`accumulate_block`] with `cols` columns.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate<V: Vector>(
    e: &Entries,
    groups: usize,
    m: &[f32],
    cols: usize,
    bias: Option<&[f32]>,
    relu: bool,
    out: *mut f32,
    ldo: usize,
) {
    let l = V::LANES;
    let bp = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    let mut j0 = 0;
    // SAFETY: each block lies within the `cols` columns of the contract.
    unsafe {
        while j0 + NV * l <= cols {
            accumulate_block::<V, NV>(e, groups, m.as_ptr(), cols, j0, bp, relu, out, ldo);
            j0 += NV * l;
        }
        while j0 + l <= cols {
            accumulate_block::<V, 1>(e, groups, m.as_ptr(), cols, j0, bp, relu, out, ldo);
            j0 += l;
        }
    }
    for j in j0..cols {
        for g in 0..groups {
            let mut s = 0.0f32;
            for q in e.group(g) {
                s += entry_val(e.ent[q]) * m[entry_idx(e.ent[q]) * cols + j];
            }
            if let Some(b) = bias {
                s += b[j];
            }
            if relu {
                s = s.max(0.0);
            }
            // SAFETY: row g, column j of out is inside the contract's extent.
            unsafe { *out.add(g * ldo + j) = s };
        }
    }
}

/// [`accumulate_block`] for a packed panel (`pw` = NV·LANES floats a row), in blocks of
/// panel rows that fit in L1: each block is loaded once and serves every group's entries that
/// fall in it. A group's running sums go back to its row of `out` between blocks; the bias is
/// added at its first entry and the activation applied after its last.
///
/// # Safety
/// Every `idx` is a row of the panel; `out` holds one row of stride `ldo` per group with `pw`
/// columns; `bias` is null or holds `pw` floats; `V`'s instructions are supported.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate_blocked<V: Vector>(
    e: &Entries,
    groups: usize,
    cursor: &mut Vec<usize>,
    panel: *const f32,
    panel_rows: usize,
    bias: *const f32,
    relu: bool,
    out: *mut f32,
    ldo: usize,
) {
    let pw = NV * V::LANES;
    let block = (SPARSE_L1_BLOCK_BYTES / (4 * pw)).max(1);
    cursor.clear();
    cursor.extend_from_slice(&e.start[..groups]);
    // SAFETY (whole body): the accesses stay within the extents of the contract.
    unsafe {
        let zero = V::zero();
        // What a group's sums start from: the bias, or zero.
        let mut init = [zero; NV];
        if !bias.is_null() {
            for (j, a) in init.iter_mut().enumerate() {
                *a = V::load(bias.add(j * V::LANES));
            }
        }
        for g in 0..groups {
            if e.start[g] == e.start[g + 1] {
                store_row::<V, NV>(init, std::ptr::null(), relu, out.add(g * ldo));
            }
        }
        for k0 in (0..panel_rows).step_by(block) {
            let k1 = k0 + block;
            for (g, cur) in cursor.iter_mut().enumerate() {
                let (mut q, end) = (*cur, e.start[g + 1]);
                if q == end || e.idx(q) >= k1 {
                    continue;
                }
                let dst = out.add(g * ldo);
                let mut acc = init;
                if q != e.start[g] {
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = V::load(dst.add(j * V::LANES));
                    }
                }
                while q < end {
                    let en = *e.ent.get_unchecked(q);
                    if entry_idx(en) >= k1 {
                        break;
                    }
                    let xv = V::splat(entry_val(en));
                    let row = panel.add(entry_idx(en) * pw);
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = xv.mul_add(V::load(row.add(j * V::LANES)), *a);
                    }
                    q += 1;
                }
                *cur = q;
                store_row::<V, NV>(acc, std::ptr::null(), relu && q == end, dst);
            }
        }
    }
}

/// Stores `NB` vectors at `dst`, plus `bias` (if not null) and through relu if asked.
///
/// # Safety
/// `dst` is valid for `NB·LANES` floats and `bias` is null or readable for as many; `V`'s
/// instructions are supported.
#[inline(always)]
unsafe fn store_row<V: Vector, const NB: usize>(
    acc: [V; NB],
    bias: *const f32,
    relu: bool,
    dst: *mut f32,
) {
    // SAFETY: the contract.
    unsafe {
        for (j, &a) in acc.iter().enumerate() {
            let mut v = a;
            if !bias.is_null() {
                v = v.add(V::load(bias.add(j * V::LANES)));
            }
            if relu {
                v = v.max(V::zero());
            }
            v.store(dst.add(j * V::LANES));
        }
    }
}

/// Packs panel `b` (columns `b·PW..`, at most PW of them, PW = NV·LANES) of the `rows x cols`
/// matrix `m` and applies every group's entries to it with [`accumulate_blocked`], writing
/// those columns of each group's row of `out` (through a PW-wide buffer for a narrower last
/// panel).
///
/// # Safety
/// Every `idx` is a row of `m`; `out` holds one row of stride `ldo` per group with `cols`
/// columns; `V`'s instructions are supported.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate_panel<V: Vector>(
    e: &Entries,
    groups: usize,
    s_panel: &mut Scratch64,
    s_edge: &mut Vec<f32>,
    s_cursor: &mut Vec<usize>,
    used: &[bool],
    (m, rows, cols): (&[f32], usize, usize),
    b: usize,
    bias: Option<&[f32]>,
    relu: bool,
    out: *mut f32,
    ldo: usize,
) {
    let pw = NV * V::LANES;
    let c0 = b * pw;
    let width = pw.min(cols - c0);
    let s_panel = s_panel.get(rows * pw);
    pack_panel::<V>(m, rows, cols, c0, width, used, s_panel);
    let mut bpad = [0f32; MAX_PANEL];
    let bp = match bias {
        Some(bias) => {
            bpad[..width].copy_from_slice(&bias[c0..c0 + width]);
            bpad.as_ptr()
        }
        None => std::ptr::null(),
    };
    let panel = s_panel.as_ptr();
    // SAFETY: the panel holds `rows` rows of pw floats; stores stay inside `out`'s rows, or
    // inside `edge` (groups x pw) for a narrow last panel.
    unsafe {
        if width == pw {
            accumulate_blocked::<V>(e, groups, s_cursor, panel, rows, bp, relu, out.add(c0), ldo);
        } else {
            if s_edge.len() < groups * pw {
                s_edge.resize(groups * pw, 0.0);
            }
            let edge = s_edge.as_mut_ptr();
            accumulate_blocked::<V>(e, groups, s_cursor, panel, rows, bp, relu, edge, pw);
            for g in 0..groups {
                std::ptr::copy_nonoverlapping(edge.add(g * pw), out.add(g * ldo + c0), width);
            }
        }
    }
}

/// One piece of a call, run on the chosen instruction set: the forward pass over some rows,
/// or the weight gradient over some rows of `dw`.
enum Piece<'a> {
    /// Rows `rows` of the forward pass: against every packed panel of `w`, or against `w` in
    /// place for fewer than `SPARSE_PACK_MIN_ROWS` rows (packing would cost more than them).
    Forward {
        x: &'a [f32],
        w: &'a [f32],
        bias: &'a [f32],
        in_dim: usize,
        out_dim: usize,
        relu: bool,
        rows: Range<usize>,
    },
    /// Rows `cols` of `dw` against every packed panel of `dy`, into an output whose first
    /// row is row `first` of `dw`.
    WeightGrad {
        x: &'a [f32],
        dy: &'a [f32],
        batch: usize,
        in_dim: usize,
        out_dim: usize,
        cols: Range<usize>,
        first: usize,
    },
}

/// Runs one piece with scratch `s`, writing through `out`.
///
/// # Safety
/// The slices are long enough for their dimensions (checked by the public wrappers); `out` is
/// valid for the rows the piece writes (`batch x out_dim` forward; for the gradient, rows
/// `first..` of `in_dim x out_dim`) and no other thread writes them; `V`'s instructions are
/// supported.
#[inline(always)]
unsafe fn run_piece<V: Vector>(piece: Piece, out: *mut f32, s: &mut Scratch) {
    match piece {
        Piece::Forward {
            x,
            w,
            bias,
            in_dim,
            out_dim,
            relu,
            rows,
        } => {
            gather_rows(x, in_dim, rows.clone(), 0..in_dim, &mut s.rows);
            let o = out.wrapping_add(rows.start * out_dim);
            if rows.len() < SPARSE_PACK_MIN_ROWS {
                // SAFETY: the contract; row r of out starts at r * out_dim.
                unsafe {
                    accumulate::<V>(
                        &s.rows,
                        rows.len(),
                        w,
                        out_dim,
                        Some(bias),
                        relu,
                        o,
                        out_dim,
                    )
                };
                return;
            }
            // Only the rows of W that some entry names are packed (MNIST's border pixels are
            // zero in most images).
            s.used.clear();
            s.used.resize(in_dim, false);
            for &en in &s.rows.ent[..s.rows.start[rows.len()]] {
                s.used[entry_idx(en)] = true;
            }
            for b in 0..out_dim.div_ceil(NV * V::LANES) {
                // SAFETY: the contract; out is batch x out_dim.
                unsafe {
                    accumulate_panel::<V>(
                        &s.rows,
                        rows.len(),
                        &mut s.panel,
                        &mut s.edge,
                        &mut s.cursor,
                        &s.used,
                        (w, in_dim, out_dim),
                        b,
                        Some(bias),
                        relu,
                        o,
                        out_dim,
                    )
                }
            }
        }
        Piece::WeightGrad {
            x,
            dy,
            batch,
            in_dim,
            out_dim,
            cols,
            first,
        } => {
            gather_rows(x, in_dim, 0..batch, cols.clone(), &mut s.rows);
            transpose_entries(&s.rows, cols.clone(), &mut s.cols);
            let o = out.wrapping_add((cols.start - first) * out_dim);
            for b in 0..out_dim.div_ceil(NV * V::LANES) {
                // SAFETY: the contract; row p of dw starts at p * out_dim, and each column
                // group names rows of dy.
                unsafe {
                    accumulate_panel::<V>(
                        &s.cols,
                        cols.len(),
                        &mut s.panel,
                        &mut s.edge,
                        &mut s.cursor,
                        &[],
                        (dy, batch, out_dim),
                        b,
                        None,
                        false,
                        o,
                        out_dim,
                    )
                }
            }
        }
    }
}

/// # Safety
/// As for [`run_piece`], on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn piece_avx2(piece: Piece, out: *mut f32, s: &mut Scratch) {
    // SAFETY: forwarded contract; the features V8 needs are enabled here.
    unsafe { run_piece::<super::gemm::kernel::avx2::V8>(piece, out, s) }
}

/// # Safety
/// As for [`run_piece`], on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn piece_avx512(piece: Piece, out: *mut f32, s: &mut Scratch) {
    // SAFETY: forwarded contract; the features V16 needs are enabled here.
    unsafe { run_piece::<super::gemm::kernel::avx512::V16>(piece, out, s) }
}

/// Runs `piece` on `isa` with this thread's scratch.
///
/// # Safety
/// As for [`run_piece`]; `isa` is supported by this CPU.
unsafe fn dispatch(isa: Isa, piece: Piece, out: *mut f32) {
    // The scratch is taken out rather than borrowed in place: code inside a closure would not
    // inherit the target features of the wrappers, and the SIMD body would not be inlined.
    let mut s = SCRATCH.with_borrow_mut(std::mem::take);
    // SAFETY: forwarded contract.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => piece_avx512(piece, out, &mut s),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => piece_avx2(piece, out, &mut s),
            _ => run_piece::<super::gemm::kernel::portable::W8>(piece, out, &mut s),
        }
    }
    SCRATCH.with_borrow_mut(|t| *t = s);
}

/// Splits `0..len` into one range per thread when `dense_flops` pays for the split, and runs
/// `make(range)` on each; every output element is computed the same way whatever the split.
fn split<'a>(
    len: usize,
    dense_flops: usize,
    out: *mut f32,
    make: impl Fn(Range<usize>) -> Piece<'a> + Sync,
) {
    let isa = isa();
    let out = SharedOut(out);
    let threads = crate::kernels::split_threads(dense_flops);
    if threads < 2 || len < 2 {
        // SAFETY: the wrappers checked every length; the whole output belongs to this call.
        unsafe { dispatch(isa, make(0..len), out.ptr()) };
        return;
    }
    let per = len.div_ceil(threads);
    (0..len.div_ceil(per)).into_par_iter().for_each(|t| {
        let piece = make(t * per..((t + 1) * per).min(len));
        // SAFETY: as above, and the pieces write disjoint rows.
        unsafe { dispatch(isa, piece, out.ptr()) }
    });
}

/// [`super::dense_forward`] for an `x` that is mostly zeros: `out (batch x out_dim) =
/// act(x (batch x in_dim) · w (in_dim x out_dim) + bias (out_dim))`, row-major and contiguous,
/// with work proportional to the number of nonzero entries of `x`.
///
/// Each output row is `bias + sum of x[r, p]·w[p, :]` over the nonzero `x[r, p]`, `p`
/// increasing, then the activation; `out` is not read. Exact zeros of `x` are skipped (see the
/// module notes on NaN weights). Large batches are split over rayon's threads by rows, with
/// results identical to a one-thread run. Faster than [`super::dense_forward`] when at most
/// about [`params::SPARSE_MAX_DENSITY`](super::params::SPARSE_MAX_DENSITY) of `x` is nonzero.
///
/// # Panics
/// If `x` has fewer than `batch * in_dim` elements, `w` fewer than `in_dim * out_dim`, `bias`
/// fewer than `out_dim`, or `out` fewer than `batch * out_dim`; the message names
/// `sparse_dense_forward`, the argument and the length needed.
#[allow(clippy::too_many_arguments)]
pub fn sparse_dense_forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    out: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    act: Activation,
) {
    let name = "sparse_dense_forward";
    check_matrix(name, "x", x.len(), batch, in_dim, in_dim);
    check_matrix(name, "w", w.len(), in_dim, out_dim, out_dim);
    check_len(name, "bias", bias.len(), out_dim, "out_dim");
    check_matrix(name, "out", out.len(), batch, out_dim, out_dim);
    if batch == 0 || out_dim == 0 {
        return;
    }
    if in_dim > MAX_INDEX {
        return super::dense_forward(x, w, bias, out, batch, in_dim, out_dim, act);
    }
    let flops = 2usize
        .saturating_mul(batch)
        .saturating_mul(in_dim)
        .saturating_mul(out_dim);
    let relu = act == Activation::Relu;
    split(batch, flops, out.as_mut_ptr(), |rows| Piece::Forward {
        x,
        w,
        bias,
        in_dim,
        out_dim,
        relu,
        rows,
    });
}

/// The weight gradient of a dense layer whose input `x` is mostly zeros:
/// `dw (in_dim x out_dim) = xᵀ · dy`, with `x` `batch x in_dim` and `dy` `batch x out_dim`,
/// row-major and contiguous; the same as `sgemm(Yes, No, in_dim, out_dim, batch, 1.0, x,
/// in_dim, dy, out_dim, 0.0, dw, out_dim)` with work proportional to the nonzeros of `x`.
///
/// Row `p` of `dw` is the sum of `x[r, p]·dy[r, :]` over the nonzero `x[r, p]`, `r`
/// increasing (a column of `x` with no nonzero gives a zero row); `dw` is not read. Large
/// problems are split over rayon's threads by rows of `dw`, with results identical to a
/// one-thread run.
///
/// # Panics
/// If `x` has fewer than `batch * in_dim` elements, `dy` fewer than `batch * out_dim`, or
/// `dw` fewer than `in_dim * out_dim`; the message names `sparse_weight_grad`, the argument
/// and the length needed.
pub fn sparse_weight_grad(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
) {
    let name = "sparse_weight_grad";
    check_matrix(name, "dw", dw.len(), in_dim, out_dim, out_dim);
    weight_grad_rows(name, x, dy, dw, batch, in_dim, out_dim, 0..in_dim);
}

/// Rows `rows` of [`sparse_weight_grad`]'s `dw`, into `dw` (`rows.len() x out_dim`,
/// row-major): row `p - rows.start` of `dw` is row `p` of `xᵀ · dy`, bit for bit what
/// [`sparse_weight_grad`] gives it. Computing the gradient a block of rows at a time lets a
/// caller apply each block to the weights while it is still in cache, or split the gradient
/// over threads its own way.
///
/// # Panics
/// If `rows.end > in_dim` or `rows.start > rows.end`, if `x` has fewer than `batch * in_dim`
/// elements, `dy` fewer than `batch * out_dim`, or `dw` fewer than `rows.len() * out_dim`;
/// the message names `sparse_weight_grad_rows`, the argument and the length needed.
pub fn sparse_weight_grad_rows(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    rows: Range<usize>,
) {
    let name = "sparse_weight_grad_rows";
    assert!(
        rows.start <= rows.end && rows.end <= in_dim,
        "{name}: `rows` is {rows:?}, not a range of the {in_dim} rows of dw (in_dim)"
    );
    check_matrix(name, "dw", dw.len(), rows.len(), out_dim, out_dim);
    weight_grad_rows(name, x, dy, dw, batch, in_dim, out_dim, rows);
}

/// The body of both weight-gradient wrappers, once `dw` and `rows` are checked.
#[allow(clippy::too_many_arguments)]
fn weight_grad_rows(
    name: &str,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    batch: usize,
    in_dim: usize,
    out_dim: usize,
    rows: Range<usize>,
) {
    check_matrix(name, "x", x.len(), batch, in_dim, in_dim);
    check_matrix(name, "dy", dy.len(), batch, out_dim, out_dim);
    if rows.is_empty() || out_dim == 0 {
        return;
    }
    if batch > MAX_INDEX || in_dim > MAX_INDEX {
        // Columns `rows` of x, transposed: a sub-matrix view with x's row stride.
        let (t, n) = (super::Transpose::Yes, super::Transpose::No);
        let (m, k) = (rows.len(), batch);
        let a = &x[rows.start.min(x.len())..];
        return super::sgemm(
            t, n, m, out_dim, k, 1.0, a, in_dim, dy, out_dim, 0.0, dw, out_dim,
        );
    }
    let flops = 2usize
        .saturating_mul(batch)
        .saturating_mul(rows.len())
        .saturating_mul(out_dim);
    let first = rows.start;
    split(rows.len(), flops, dw.as_mut_ptr(), |r| Piece::WeightGrad {
        x,
        dy,
        batch,
        in_dim,
        out_dim,
        cols: first + r.start..first + r.end,
        first,
    })
}
