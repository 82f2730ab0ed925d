//! The embedding API: free functions over flat, row-major `f32` slices.
//!
//! Conventions shared by every function here:
//! - Matrices are row-major. A matrix with `rows` rows, `cols` columns and row stride `ld`
//!   (`ld >= cols`) occupies `(rows - 1) * ld + cols` floats; elements past `cols` in a row
//!   (the padding of a sub-matrix view) are never read or written.
//! - Slice lengths are checked once on entry. A slice too short for its dimensions, or a row
//!   stride smaller than the row, panics with a message naming the function, the argument and
//!   the length it needs. Nothing is read or written out of bounds.
//! - sgemm runs on the fastest instruction set this CPU has (AVX-512F, AVX2+FMA, or a portable
//!   `wide` path), chosen once at run time; see [`isa`]. Large problems are split over rayon's
//!   threads with results bit-identical to a single-threaded run.

mod dense;
mod elementwise;
pub(crate) mod gemm;
pub mod naive;
mod softmax;
mod sparse;
mod update;

pub use dense::dense_forward;
pub use elementwise::{
    add_bias_rows, argmax_rows, axpy, col_sums, relu_backward, relu_forward, scale,
};
pub use gemm::kernel::{ISA_ENV, Isa, ZMM_RATE_ENV, fma_peak_probe, isa, zmm_half_rate};
pub use gemm::params;
pub use softmax::{softmax_cross_entropy, softmax_rows};
pub use sparse::{
    nonzero_fraction, sparse_dense_forward, sparse_weight_grad, sparse_weight_grad_rows,
};
pub use update::{adam_update, rmsprop_update, sgd_update};

thread_local! {
    /// Set while this thread runs kernels that must not split their work (see [`serial`]).
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every kernel called on this thread kept on this thread: the model layer
/// trains the two halves of a batch side by side, one per thread, and splitting each kernel
/// again would only add synchronisation.
pub(crate) fn serial<R>(f: impl FnOnce() -> R) -> R {
    // Restores the previous setting on the way out, by return or by unwinding, so that a
    // panic cannot leave one of rayon's threads serial for good.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERIAL.set(self.0);
        }
    }
    let _restore = Restore(SERIAL.replace(true));
    f()
}

/// The threads a kernel called here may split its work over: rayon's, or 1 inside [`serial`].
pub(crate) fn threads() -> usize {
    if SERIAL.get() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Threads a kernel of `flops` floating-point operations splits its work over: those of
/// [`threads`] from [`params::PARALLEL_MIN_FLOPS`] on, else 1.
///
/// Smaller problems stay on the caller's thread even when it is one of rayon's workers, where
/// a split costs less than from outside a pool: there, 128x10x512 NT split from 1 MFLOP ran
/// 1.09–1.26x the serial call when called back to back (best 10.1 against 13.0 µs), but
/// 0.64x, 0.60x and 0.57x (medians) with 50 µs, 300 µs and 3 ms of the caller's own work
/// between calls, when the other worker has gone to sleep and must be woken (A/B within one
/// process, Zen 4, 2026-11-30). Waking it is the cost: `rayon::spawn` of an empty job took
/// the caller 0.07 µs with the workers 50 µs idle (still spinning), 12 µs at 300 µs idle and
/// 25 µs at 3 ms (medians; the job started 0.8, 40 and 96 µs later), more than such a
/// problem takes on one thread.
pub(crate) fn split_threads(flops: usize) -> usize {
    let threads = threads();
    if threads < 2 || flops < params::PARALLEL_MIN_FLOPS {
        1
    } else {
        threads
    }
}

/// Whether a matrix operand is used as stored or transposed (cblas semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Use the matrix as stored.
    No,
    /// Use the transpose of the stored matrix.
    Yes,
}

/// The activation [`dense_forward`] applies in its epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = max(x, 0)` (NaN maps to 0).
    Relu,
}

/// `C = alpha * op(A) * op(B) + beta * C`, row-major (cblas row-major semantics).
///
/// - op(A) is `m x k`: A is stored `m x k` with row stride `lda` ([`Transpose::No`]) or
///   `k x m` with row stride `lda` ([`Transpose::Yes`]).
/// - op(B) is `k x n`: B is stored `k x n` ([`Transpose::No`]) or `n x k` ([`Transpose::Yes`])
///   with row stride `ldb`.
/// - C is `m x n` with row stride `ldc`.
///
/// `beta == 0` never reads C (C may hold NaN). `m == 0 || n == 0` does nothing.
/// `k == 0` or `alpha == 0` gives `C = beta * C` without reading A or B.
///
/// Runs on [`isa`]; problems of at least [`params::PARALLEL_MIN_FLOPS`] are split over the
/// current rayon pool, with output identical to a one-thread run.
///
/// Memory: the packed panels live in buffers kept per thread and reused, so a warmed-up call
/// allocates nothing but, when split, the claim flags of its shared operand (a few bytes per
/// group of micro-panels). A thread's buffers grow to the largest panels it has packed: an
/// `MC x KC` block of A and a `KC x NC` panel of B (about 0.3 and 4 MB on AVX2), and on the
/// calling thread of a split call one phase of the shared packed operand: at most
/// [`params::SHARED_PHASE_BYTES`] (4 MB), or one depth block (`KC x NC` of B, or all `m` rows
/// of A by `KC`) when that is larger.
///
/// # Panics
/// If a row stride is smaller than its row (`lda`, `ldb`, `ldc`), or if `a`, `b` or `c` is
/// shorter than `(rows - 1) * ld + cols` of its stored shape. The message names `sgemm`, the
/// argument and the length needed.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
    let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
    check_matrix("sgemm", "a", a.len(), ar, ac, lda);
    check_matrix("sgemm", "b", b.len(), br, bc, ldb);
    check_matrix("sgemm", "c", c.len(), m, n, ldc);
    let g = gemm::Gemm {
        ta,
        tb,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c: c.as_mut_ptr(),
        ldc,
        bias: None,
        relu: false,
    };
    // SAFETY: the lengths of a, b and c were checked against their shapes above.
    unsafe { g.run(isa()) }
}

/// A raw pointer to an output that the tasks of one rayon split share, each writing its own
/// disjoint part of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: the tasks of one call write disjoint parts of the output.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    // A method, not `.0`: closures capture whole `SharedOut`s, which are Sync, not the field.
    pub(crate) fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// Floats a `rows x cols` matrix with row stride `ld` occupies.
pub(crate) fn matrix_len(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// Panics unless a slice of `len` floats holds a `rows x cols` matrix with row stride `ld`.
#[track_caller]
pub(crate) fn check_matrix(func: &str, arg: &str, len: usize, rows: usize, cols: usize, ld: usize) {
    if rows > 1 && ld < cols {
        panic!("{func}: row stride of `{arg}` is {ld}, smaller than its row of {cols} elements");
    }
    let need = matrix_len(rows, cols, ld);
    if len < need {
        panic!(
            "{func}: `{arg}` has {len} elements but needs {need} ({rows} x {cols}, row stride {ld})"
        );
    }
}

/// Panics unless a slice of `len` elements has at least `need`.
#[track_caller]
pub(crate) fn check_len(func: &str, arg: &str, len: usize, need: usize, what: &str) {
    if len < need {
        panic!("{func}: `{arg}` has {len} elements but needs {need} ({what})");
    }
}
