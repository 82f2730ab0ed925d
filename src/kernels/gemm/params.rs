//! Block sizes for the BLIS-style sgemm, one set per instruction-set path, all in this one place.
//!
//! The loops they cut (see `gemm/mod.rs`):
//! - `NC` (loop 5, columns of C/B): a packed `KC x NC` panel of B is meant to live in L3.
//! - `KC` (loop 4, the shared dimension): the depth of one microkernel call. The textbook
//!   choice fits an `MR x KC` micro-panel of A and a `KC x NR` micro-panel of B in L1
//!   together; a deeper block means fewer passes over C (each call loads and stores its tile)
//!   and fewer calls, which on AVX2 measured worth more than keeping B in L1 (see `AVX2`).
//! - `MC` (loop 3, rows of C/A): a packed `MC x KC` block of A should fit in (half of) L2.
//! - `MR x NR` (loops 1 and 2): the register tile the microkernel keeps in accumulators.
//!
//! `MC` is a multiple of `MR` and `NC` a multiple of `NR`, so tiles never straddle blocks and
//! a split of C at multiples of `MR` (rows) or `NR` (columns) gives bit-identical results.

/// Block sizes of one microkernel family.
#[derive(Clone, Copy, Debug)]
pub struct BlockSizes {
    /// Rows of the register tile (rows of C per microkernel call).
    pub mr: usize,
    /// Columns of the register tile (columns of C per microkernel call).
    pub nr: usize,
    /// Floats per SIMD vector: a micro-panel of B narrower than `nr` (the last one) is
    /// computed in `ceil(w / lanes)` vectors rather than all of the tile's.
    pub lanes: usize,
    /// Depth of one packed panel (the k extent per pass).
    pub kc: usize,
    /// Rows of C (and A) per packed A block.
    pub mc: usize,
    /// Columns of C (and B) per packed B panel.
    pub nc: usize,
}

/// AVX-512F: 32 zmm registers hold a 12 x 32 tile (24 accumulators) plus two B vectors and a
/// broadcast. KC 1024 makes a B micro-panel 128 KB and an A block (MC x KC) 768 KB: both come
/// from L2 (1 MB a core on Zen 4, 2 MB on Intel's AVX-512 server cores) rather than B from L1,
/// and C is loaded and stored once per 1024 steps rather than per 384. Against KC 384, A/B
/// within one process on Zen 4 (2026-11-29, median of paired speed ratios; identical code read
/// 0.992–1.002 in the same setting): one thread 512³ 1.026–1.038, 640³ 1.021, 1024³
/// 1.027–1.038, 1536³ 1.036, 2048³ 1.057; two threads 1024³ 1.056, 2048³ 1.058; KC 512 and
/// 768 gained less at 2048³ (1.021–1.024, 1.048). Depths up to 1024 are now one block, so
/// with it `IN_PLACE_B_MAX_BYTES` went from 1.37 to 2 MB, which keeps 128x784x512 reading B in
/// place (1.008 on one thread, 1.001 on two, against KC 384).
pub const AVX512: BlockSizes = BlockSizes {
    mr: 12,
    nr: 32,
    lanes: 16,
    kc: 1024,
    mc: 192,
    nc: 3072,
};

/// AVX2 + FMA: 16 ymm registers hold a 6 x 16 tile (12 accumulators) plus two B vectors and a
/// broadcast. A 144 x 512 A block is 288 KB, inside a 512 KB L2. KC 512 makes the 512 x 16
/// micro-panel of B 32 KB, all of a Zen 3 L1, so part of it comes back from L2 on every
/// tile; still, against KC 256 (the micro-panels of both in L1, 22 KB), it ran 2–5% faster
/// at 128x784x512, 1–3% at 512³ and up to 4% at 1024³ and 2048³, on one thread and on two
/// (A/B within one process, Zen 3, 2026-11-29), as C is loaded and stored half as often.
/// 384, 784 and 1024 were no better than 512.
pub const AVX2: BlockSizes = BlockSizes {
    mr: 6,
    nr: 16,
    lanes: 8,
    kc: 512,
    mc: 144,
    nc: 2048,
};

/// Portable (`wide`, SSE-width at default flags): a 4 x 8 tile of f32x8 (8 xmm registers of
/// accumulators, 16 on an x86 baseline).
pub const PORTABLE: BlockSizes = BlockSizes {
    mr: 4,
    nr: 8,
    lanes: 8,
    kc: 256,
    mc: 128,
    nc: 2048,
};

/// The AVX-512 path reads B in place, rather than packing it (on one thread, and in the
/// column blocks of a parallel split, where each thread packed its own columns), for a depth
/// block whose rows of B (`kc · ldb · 4` bytes), counted once for each block of `MC` rows of C
/// (each of which reads them again), come to at most this many bytes (see `Gemm::tiles`).
/// Reading in place saves the packing, but each tile then steps through B's rows `ldb` apart
/// rather than through a contiguous copy, which costs more the more often they are read. A/B
/// within one process against packing B (Zen 4, one thread, median of paired speed ratios,
/// 2026-11-29, with KC 384; an identical-code control read 1.002–1.020): 128x784x512 1.040
/// (0.8 MB by this count), 256³ 1.031 (0.5), 384³ 1.033 (1.2), 784x128x512 TN 1.051 (1.3);
/// with no limit, 512³ 1.008 (1.6 MB), 640³ 1.003 (3.3), 768³ 0.954 (4.7), 1024³ 0.954 (8.4).
/// With KC 1024, 128x784x512 is one depth block of 1.6 MB by this count, hence 2 MB.
pub const IN_PLACE_B_MAX_BYTES: usize = 2 << 20;

/// Loops 2..1 take the tiles of a block a row at a time, each micro-panel of A (`MR x kc`
/// floats) against every micro-panel of B, when A's micro-panel is at most this many bytes
/// and B's would not stay in L1: read in place (its rows `ldb` apart, which crowd into few
/// of L1's sets), or packed and larger than [`B_PANEL_L1_BYTES`]. Else a column at a time,
/// B's micro-panel against every micro-panel of A, as BLIS does (see `Gemm::rows_outer`).
/// The operand that streams from L2 is then B rather than A, and C is written a row of tiles
/// at a time. On AVX-512 that is depths up to 512, with B in place or deeper than 256; on
/// AVX2 (6 x 16 tiles, KC 512) B's micro-panel is never larger, and there the row order ran
/// 0.966–0.992 (A/B within one process, Zen 4 forced to AVX2, one thread, 2026-11-30:
/// 784x128x512 TN, 256³, 512³, 128x784x512, 1024³). On AVX-512 it pays together with the
/// assembly tiles' late fetch of C (see `C_PREFETCH_PASSES` in `kernel/avx512.rs`).
pub const A_PANEL_L1_BYTES: usize = 24 * 1024;

/// See [`A_PANEL_L1_BYTES`]: L1's data cache on the smallest of the cores in view (32 KB on
/// Zen 3 and Zen 4).
pub const B_PANEL_L1_BYTES: usize = 32 * 1024;

/// The AVX-512 path reads A in place, rather than packing its blocks (on one thread, and in
/// the row blocks of a parallel split, where each thread packed its own rows), when A is not
/// transposed, the depth block is at most this deep and the panel of B at most
/// [`IN_PLACE_A_MAX_COLS`] wide (see `Gemm::a_in_place`). Each tile then broadcasts from
/// twelve rows of A, twelve streams where a packed micro-panel is one; that costs little
/// while a row's run of the block fits in a few KB and is re-read by few tiles, and more than
/// the packing saves past that. A/B within one process against packing A (Zen 4, one thread,
/// median of paired speed ratios, 2026-11-29, with A read in place at every shape; identical
/// code read 0.997–0.998): 256³ 1.021, 512³ 1.022, 640³ 1.021, 768³ 1.016, 200x800x800
/// 1.021, 128x784x512 1.011, 784³ 0.996, 384³ 1.004; deeper or wider: 1000³ 0.969,
/// 1000x1000x512 0.990, 512x1000x512 0.990, 1000x512x1000 0.988, 512x512x1000 1.012. On two
/// threads (row blocks): 256³ 1.021, 512³ 1.020. With A transposed, where a tile's twelve
/// floats of a step are contiguous but the steps `lda` apart, reading it in place for every
/// tile measured slower (784x128x512 TN 0.979); there the first micro-panel of B's tiles read
/// it in place and copy it for the others (see `Gemm::a_mode`).
pub const IN_PLACE_A_MAX_DEPTH: usize = 800;

/// See [`IN_PLACE_A_MAX_DEPTH`]: the widest panel of B (columns of C) for which A is read in
/// place.
pub const IN_PLACE_A_MAX_COLS: usize = 800;

/// A is never read in place when its row stride in bytes is a multiple of this, L1's span of
/// one way (32 KB in 8 ways on Zen 4, 48 KB in 12 on Intel's recent cores): the twelve rows a
/// tile broadcasts from would then share one cache set, more than it has ways, and evict one
/// another at every step. With A read in place regardless: 1024³ 0.905, 128x1024x512 0.880,
/// 256x1024x256 0.895 (as above).
pub const IN_PLACE_A_ALIAS_BYTES: usize = 4096;

/// Below this many floating-point operations (2·m·n·k) sgemm stays on the calling thread:
/// splitting costs a few microseconds of rayon wake-up, more than it saves. Under Miri it is
/// zero, so that the parallel paths run, and are checked, on shapes small enough for it.
pub const PARALLEL_MIN_FLOPS: usize = if cfg!(miri) { 0 } else { 4_000_000 };

/// Blocks of C per thread when sgemm splits over rayon's threads (see `gemm/parallel.rs`):
/// more blocks than threads let a thread that is slower, or woken late, take fewer of them.
/// Capped by the tiles across C (MR rows or NR columns a block at the least). Against 8, 32
/// gave the medians of two threads 2–5% more at 128x784x512, 784x128x512 TN, 1024³ and
/// 2048³, and 0–4% at 256³ and 512³, level on best call (A/B within one process, Zen 3,
/// 2026-11-29): a block of C rarely holds enough rows to fill MC, but a call whose second
/// core stalls loses less at the end of each phase.
pub const PARALLEL_BLOCKS_PER_THREAD: usize = 32;

/// Blocks of C per thread when sgemm splits over rayon's threads with A read in place and
/// nothing shared (see `Gemm::serial_blocks`): blocks of rows where one thread would read B
/// in place for all of C (`IN_PLACE_B_MAX_BYTES`), else blocks of columns, each packing its
/// own columns of B, where that reads A over fewer times than the shared split would read
/// its operand.
///
/// Rows, A/B within one process against the shared packed B (Zen 4, two threads,
/// 2026-11-29): 256³ 1.114–1.139, 384³ 1.099–1.272, 300x200x100 1.039–1.062. Per thread, at
/// 256³ and 512³: one block 0.909 and 0.799 (a thread woken late leaves the other idle), two
/// 1.111–1.122 and 1.012–1.038, four 1.123–1.125 and 1.001–1.014, eight 1.132 and 1.026.
/// With the split allowed up to 4 MB of B by that count, 448³ read 1.226 but 512³ (3 MB)
/// 1.106, 0.963 and 0.970 in three runs, so it keeps to the one-thread limit.
///
/// Columns, against the shared split (2026-11-30, two threads): 512³ 1.012–1.032 by the
/// median of paired ratios, best call 1208–1223 µs against 1275–1284 (faer 1221–1242);
/// 128x784x512 (m < n: the shared split packed A) 1.125; 128x784x512 NT 1.077 on best
/// call; 768³ 1.013. One, two and four blocks a thread at 512³: 1.013–1.051, 1.007–1.018,
/// 1.022–1.030. Where A is packed (deeper than `IN_PLACE_A_MAX_DEPTH`, as at 1024³), each
/// block packing all of A lost: 1024³ 0.921.
pub const IN_PLACE_SPLIT_BLOCKS_PER_THREAD: usize = 4;

/// Micro-panels of the shared packed operand claimed and packed at a time by one thread in a
/// parallel sgemm (four NR panels of B span 64 to 128 floats of each of its rows).
pub const SHARED_PACK_GROUP: usize = 4;

/// Bytes of the shared packed operand a parallel sgemm works through before its threads meet
/// (see `gemm/parallel.rs`): well inside L3, which every block of C re-reads it from. Under
/// Miri it is zero, one depth block per phase, so that the small shapes Miri can run reuse the
/// shared buffer from phase to phase.
pub const SHARED_PHASE_BYTES: usize = if cfg!(miri) { 0 } else { 4 << 20 };

/// At or below this many rows of C (with B not transposed), sgemm skips packing and streams
/// B row by row, one fused multiply-add sweep per element of A: packing a 784 x 512 B for one
/// image costs ten times the arithmetic.
pub const SMALL_M: usize = 4;

/// Floats of B at or above which the small-m path splits its columns over rayon's threads.
pub const SMALL_M_PARALLEL_MIN_B: usize = 1 << 16;

/// At or below this many columns of C (with A not transposed), sgemm computes each element as
/// a dot product of a row of A, read in place, with a column of op(B) (see `gemm/narrow.rs`):
/// a 16- or 32-column register tile would leave most of its lanes idle.
pub const NARROW_N: usize = 12;

/// Rows of C the narrow path's split over threads cuts at multiples of: every height of its
/// blocks (8, 6, 4, 3, 2) divides it.
pub const NARROW_SPLIT_ROWS: usize = 24;

/// Above this many bytes of A per thread, the narrow path reads A in blocks of six rows with
/// tiles of two vectors, rather than in its wider tiles of fewer rows: A then streams from
/// memory, and six rows at once keep more misses in flight. A/B within one process (before the
/// layout of 2026-11-29 15:00, when the wide tile was 3 x 4 columns), median of paired speed
/// ratios of the wide tiles over the 6 x 2: on one thread 1.08 at 2000x512x10 (4 MB of A),
/// 1.07 at 8 MB, 1.01 at 10 MB, 0.97 at 12 MB, 0.94 at 16 MB; on two threads 1.04 at 10 MB a
/// thread, 0.97 at 14 MB. A quarter of this host's 32 MB L3, where the one-thread crossover
/// is past.
pub const NARROW_STREAM_BYTES: usize = 8 << 20;

/// At or below this depth (and with C wider than [`NARROW_N`] columns), sgemm skips packing
/// A and runs the small-depth path (see `gemm/small_k.rs`): with a few steps per microkernel
/// call, the call's fixed costs weigh as much as its arithmetic.
pub const SMALL_K: usize = 16;

/// Rows of C per register tile of the small-depth path (by two vectors of columns: 12
/// accumulators, two B vectors and a broadcast in 16 registers).
pub const SMALL_K_TILE_ROWS: usize = 6;

/// At or below this fraction of nonzero inputs, a dense layer's input products are cheaper
/// through `sparse_dense_forward` and `sparse_weight_grad` than through sgemm (measured with
/// `cargo bench --bench sparse`: the crossover is near 50% on Zen 3; MNIST pixels are 19%
/// nonzero).
pub const SPARSE_MAX_DENSITY: f64 = 0.4;

/// From this many rows on (per thread, when the batch is split), `sparse_dense_forward`
/// copies the weights into contiguous panels of 8 vectors' width before use (see
/// `kernels/sparse.rs`); fewer rows read them in place, as the copy would cost more than
/// their arithmetic.
pub const SPARSE_PACK_MIN_ROWS: usize = 16;

/// Bytes of a packed panel that the sparse-input kernels work through at a time, applying
/// every row's entries in the block before moving on. Smaller blocks stay in L1 but make each
/// row reload its running sums more often; 32 and 64 KB measured best (8 KB to 1 MB tried,
/// Zen 3 with a 32 KB L1).
pub const SPARSE_L1_BLOCK_BYTES: usize = 32 * 1024;

/// The optimiser updates split their slices over rayon's threads into parts of at least this
/// many parameters (the seed network's 407,050 go in two halves).
pub const UPDATE_PARALLEL_MIN: usize = 1 << 16;
