//! A small sweep of every kernel against its naive reference, sized to run under Miri, which
//! checks the unsafe code in the packing, the microkernels, the sgemm paths and the
//! sparse-input kernels for undefined behaviour:
//! `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks" cargo +nightly miri test --test miri_small`.
//! (Tree borrows because rayon's crossbeam-epoch trips the stricter stacked-borrows model
//! inside its own code; ignore-leaks because rayon's global pool outlives `main`.) Under Miri
//! the CPU reports no SIMD extensions, so this exercises the portable path; natively it runs
//! on the path in use. Miri also runs the x86 paths, intrinsics included, when they are
//! compiled in and forced, which checks the AVX-512 path on a machine without AVX-512:
//! `MATHBLOCKS_ISA=avx512` and `RUSTFLAGS="-C target-feature=+avx512f,+avx512bw,+avx512dq,`
//! `+avx512vl,+avx512cd,+avx2,+fma,+bmi1,+bmi2,+lzcnt,+popcnt"` (`wide` needs avx512bw
//! beside avx512f), with `-Zmiri-env-forward=MATHBLOCKS_ISA` added to the flags above;
//! likewise `avx2` with `+avx2,+fma`. A separate `--target-dir` keeps these builds apart.

use mathblocks::kernels::{self, Activation, Transpose, naive};
use mathblocks::rng::Rng;

fn close(fast: &[f32], slow: &[f32], what: &str) {
    assert_eq!(fast.len(), slow.len());
    for (i, (a, b)) in fast.iter().zip(slow).enumerate() {
        if a.is_nan() && b.is_nan() {
            continue;
        }
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{what}: [{i}] {a} vs {b}"
        );
    }
}

#[test]
fn sgemm_paths_on_small_shapes() {
    if cfg!(miri) && std::env::var_os(kernels::ISA_ENV).is_none() {
        assert_eq!(
            kernels::isa(),
            kernels::Isa::Portable,
            "Miri reports no SIMD extensions"
        );
    }
    let mut rng = Rng::new(1);
    // 1..3 rows take the small-m path, n <= 12 the narrow path (2 x 5 and 6 x 2 tiles and
    // single rows, the last few floats of k from a copy; A transposed: the transposed
    // small-depth product), k <= 16 the small-depth path (with 6-, 4-, 2- and 1-row tiles and
    // single columns), the rest the packed path with partial edge tiles: of one vector, through
    // a local copy (20 columns on AVX2 and 36 on AVX-512) or straight into C (24 on AVX2, 48 on
    // AVX-512), and of two through a copy (20 on AVX-512). On AVX-512, A not transposed is
    // read in place, and A transposed copied by the first tiles (13 rows: one whole tile).
    let dims = [
        (0, 3, 2),
        (2, 5, 3),
        (5, 13, 9),
        (7, 3, 17),
        (9, 10, 11),
        (9, 17, 4),
        (13, 20, 11),
        (13, 20, 19),
        (7, 24, 18),
        (5, 36, 17),
        (5, 48, 17),
        // More rows than columns: with two or more threads, the split by rows with A and B
        // read in place (AVX-512), or the shared packed B.
        (25, 20, 18),
    ];
    for &(m, n, k) in &dims {
        for (ta, tb) in [
            (Transpose::No, Transpose::No),
            (Transpose::Yes, Transpose::No),
            (Transpose::No, Transpose::Yes),
            (Transpose::Yes, Transpose::Yes),
        ] {
            // Every matrix has one column of NaN padding past its rows.
            let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
            let (br, bc) = if tb == Transpose::No { (k, n) } else { (n, k) };
            let mut fill = |r: usize, c: usize| -> Vec<f32> {
                (0..r * (c + 1))
                    .map(|i| {
                        if i % (c + 1) == c {
                            f32::NAN
                        } else {
                            rng.uniform(-1.0, 1.0)
                        }
                    })
                    .collect()
            };
            let a = fill(ar, ac);
            let b = fill(br, bc);
            let c0 = fill(m, n);
            for (alpha, beta) in [(1.0, 0.0), (-2.5, 0.3)] {
                let [fast, slow] = [kernels::sgemm, naive::sgemm].map(|gemm| {
                    let mut c = c0.clone();
                    let (lda, ldb) = (ac + 1, bc + 1);
                    gemm(
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        alpha,
                        &a,
                        lda,
                        &b,
                        ldb,
                        beta,
                        &mut c,
                        n + 1,
                    );
                    c
                });
                close(&fast, &slow, &format!("sgemm {ta:?}{tb:?} {m}x{n}x{k}"));
                for i in 0..m {
                    assert!(fast[i * (n + 1) + n].is_nan(), "padding of C overwritten");
                }
            }
        }
    }
}

/// The parallel sgemm on two threads (under Miri every size is split, see
/// `params::PARALLEL_MIN_FLOPS`, and every depth block is a phase of its own, see
/// `params::SHARED_PHASE_BYTES`): threads claim, pack and read groups of micro-panels of one
/// shared buffer, reused from phase to phase, which Miri's race detector checks.
#[test]
fn sgemm_parallel_on_small_shapes() {
    let mut rng = Rng::new(3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // By rows (m >= n; B shared, several groups of panels; on AVX-512 with A not transposed,
    // blocks of rows reading A and B in place) and by columns (A shared; on AVX-512 with A
    // not transposed, blocks of columns reading A in place), each with two depth blocks.
    let k = kernels::isa().block_sizes().kc + 4;
    let shapes = [
        (Transpose::No, 40, 36, k),
        (Transpose::Yes, 40, 36, k),
        (Transpose::No, 12, 40, k),
        (Transpose::Yes, 12, 40, k),
    ];
    for &(ta, m, n, k) in &shapes {
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
        let (a, b) = (draw(m * k), draw(k * n));
        let lda = if ta == Transpose::No { k } else { m };
        let [fast, slow] = [kernels::sgemm, naive::sgemm].map(|gemm| {
            let mut c = vec![f32::NAN; m * n];
            pool.install(|| {
                gemm(
                    ta,
                    Transpose::No,
                    m,
                    n,
                    k,
                    1.0,
                    &a,
                    lda,
                    &b,
                    n,
                    0.0,
                    &mut c,
                    n,
                )
            });
            c
        });
        close(&fast, &slow, &format!("parallel sgemm {ta:?} {m}x{n}x{k}"));
    }
}

#[test]
fn fused_kernels_on_small_shapes() {
    let mut rng = Rng::new(2);
    // (10, 19, 10): the narrow path, whose first eight columns go through the epilogue as one
    // vector (on eight lanes) and the last two one by one.
    for &(batch, in_dim, out_dim) in &[(1, 3, 5), (3, 7, 10), (7, 5, 17), (10, 19, 10)] {
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
        let (x, w, bias) = (draw(batch * in_dim), draw(in_dim * out_dim), draw(out_dim));
        let mut fast = vec![f32::NAN; batch * out_dim];
        let mut slow = vec![0.0; batch * out_dim];
        kernels::dense_forward(
            &x,
            &w,
            &bias,
            &mut fast,
            batch,
            in_dim,
            out_dim,
            Activation::Relu,
        );
        naive::dense_forward(
            &x,
            &w,
            &bias,
            &mut slow,
            batch,
            in_dim,
            out_dim,
            Activation::Relu,
        );
        close(&fast, &slow, "dense_forward");
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % out_dim as u32).collect();
        let (mut g1, mut g2) = (vec![0.0; fast.len()], vec![0.0; fast.len()]);
        let l1 = kernels::softmax_cross_entropy(&fast, &labels, &mut g1, batch, out_dim);
        let l2 = naive::softmax_cross_entropy(&slow, &labels, &mut g2, batch, out_dim);
        assert!((l1 - l2).abs() <= 1e-5 * (1.0 + l2.abs()));
        close(&g1, &g2, "softmax_cross_entropy");
        kernels::softmax_rows(&mut fast, batch, out_dim);
        naive::softmax_rows(&mut slow, batch, out_dim);
        close(&fast, &slow, "softmax_rows");
    }
}

#[test]
fn sparse_kernels_on_small_shapes() {
    let mut rng = Rng::new(3);
    // Fewer than 16 rows read the weights in place; 17 rows go through packed panels, one of
    // them narrower than the panel width (70 = 64 + 6 columns).
    for &(batch, in_dim, out_dim) in &[(1, 9, 5), (3, 17, 70), (17, 9, 70)] {
        let mut draw = |n: usize, zeros: bool| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    if zeros && i % 3 != 0 {
                        0.0
                    } else {
                        rng.uniform(-1.0, 1.0)
                    }
                })
                .collect()
        };
        let x = draw(batch * in_dim, true);
        let (w, bias, dy) = (
            draw(in_dim * out_dim, false),
            draw(out_dim, false),
            draw(batch * out_dim, false),
        );
        let mut fast = vec![f32::NAN; batch * out_dim];
        let mut slow = vec![0.0; batch * out_dim];
        let act = Activation::Relu;
        kernels::sparse_dense_forward(&x, &w, &bias, &mut fast, batch, in_dim, out_dim, act);
        naive::sparse_dense_forward(&x, &w, &bias, &mut slow, batch, in_dim, out_dim, act);
        close(&fast, &slow, "sparse_dense_forward");
        let mut fast = vec![f32::NAN; in_dim * out_dim];
        let mut slow = vec![0.0; in_dim * out_dim];
        kernels::sparse_weight_grad(&x, &dy, &mut fast, batch, in_dim, out_dim);
        naive::sparse_weight_grad(&x, &dy, &mut slow, batch, in_dim, out_dim);
        close(&fast, &slow, "sparse_weight_grad");
    }
}
