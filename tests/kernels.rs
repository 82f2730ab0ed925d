//! Every kernel against its `naive` reference, on awkward shapes, on every dispatch path.
//!
//! This binary runs once on the default path; the `every_isa` test re-runs it as a child
//! process with `MATHBLOCKS_ISA` forced to each other path this CPU supports.

mod common;

use common::{Rng, assert_padding_nan, matrix};
use mathblocks::kernels::{self, Activation, Isa, Transpose, naive};
use std::process::Command;

const CHILD: &str = "MATHBLOCKS_TEST_CHILD";

#[test]
fn every_isa() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // Each other path, with this CPU's 512-bit FMA rate; and AVX-512 with the other rate,
    // which swaps the narrow path's vectors (see `zmm_half_rate`), so both run here.
    let rate = |half: bool| if half { "half" } else { "full" };
    let mut runs: Vec<(Isa, &str)> = Isa::supported()
        .into_iter()
        .filter(|&isa| isa != kernels::isa())
        .map(|isa| (isa, rate(kernels::zmm_half_rate())))
        .collect();
    if Isa::Avx512.is_supported() {
        runs.push((Isa::Avx512, rate(!kernels::zmm_half_rate())));
    }
    for (isa, zmm) in runs {
        let out = Command::new(&exe)
            .env(kernels::ISA_ENV, isa.name())
            .env(kernels::ZMM_RATE_ENV, zmm)
            .env(CHILD, "1")
            .args(["--test-threads", "2"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kernel tests failed on {} ({zmm}-rate 512-bit FMA):\n{}\n{}",
            isa.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "kernel tests passed on {} ({zmm}-rate 512-bit FMA)",
            isa.name()
        );
    }
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
        if !isa.is_supported() {
            eprintln!("{}: not supported by this CPU, not tested here", isa.name());
        }
    }
}

#[test]
fn forced_isa_is_the_one_in_use() {
    if let Ok(name) = std::env::var(kernels::ISA_ENV) {
        let want = Isa::from_name(&name).unwrap();
        if want.is_supported() {
            assert_eq!(kernels::isa(), want);
        }
    } else {
        assert_eq!(kernels::isa(), Isa::supported()[0]);
    }
    match std::env::var(kernels::ZMM_RATE_ENV).as_deref() {
        Ok("half") => assert!(kernels::zmm_half_rate()),
        Ok("full") => assert!(!kernels::zmm_half_rate()),
        _ => {}
    }
}

/// Shapes that cross every blocking boundary of the path in use.
fn small_dims() -> Vec<usize> {
    let bs = kernels::isa().block_sizes();
    let mut d = vec![
        0,
        1,
        2,
        3,
        bs.mr - 1,
        bs.mr,
        bs.mr + 1,
        bs.nr - 1,
        bs.nr,
        bs.nr + 1,
        // The narrow path (n <= NARROW_N) and its first column count past it.
        kernels::params::NARROW_N,
        kernels::params::NARROW_N + 1,
        // Either side of the groups of eight columns in which the narrow path packs op(B), and
        // of the 8 x 8 blocks in which the small-depth path transposes it on AVX2.
        8,
        9,
    ];
    d.sort();
    d.dedup();
    d
}

fn big_dims() -> Vec<usize> {
    let bs = kernels::isa().block_sizes();
    vec![
        bs.kc - 1,
        bs.kc,
        bs.kc + 1,
        bs.mc + 1,
        127,
        129,
        257,
        784,
        1000,
    ]
}

const TRANSPOSES: [(Transpose, Transpose); 4] = [
    (Transpose::No, Transpose::No),
    (Transpose::Yes, Transpose::No),
    (Transpose::No, Transpose::Yes),
    (Transpose::Yes, Transpose::Yes),
];

struct Case {
    ta: Transpose,
    tb: Transpose,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    pad: usize,
}

impl Case {
    fn stored(&self) -> ((usize, usize), (usize, usize)) {
        let a = if self.ta == Transpose::No {
            (self.m, self.k)
        } else {
            (self.k, self.m)
        };
        let b = if self.tb == Transpose::No {
            (self.k, self.n)
        } else {
            (self.n, self.k)
        };
        (a, b)
    }

    /// Runs fast and naive on the same inputs (padding NaN, C NaN when beta == 0) and
    /// compares; `exact` demands identical bits, else the error-model tolerance.
    fn check(&self, rng: &mut Rng, exact: bool) {
        let ((ar, ac), (br, bc)) = self.stored();
        let (lda, ldb, ldc) = (ac + self.pad, bc + self.pad, self.n + self.pad);
        let mut gen_ = || {
            if exact {
                rng.small_int()
            } else {
                rng.uniform()
            }
        };
        let a = matrix(ar, ac, lda, &mut gen_);
        let b = matrix(br, bc, ldb, &mut gen_);
        let c0 = if self.beta == 0.0 {
            matrix(self.m, self.n, ldc, || f32::NAN)
        } else {
            matrix(self.m, self.n, ldc, &mut gen_)
        };
        let (mut fast, mut slow) = (c0.clone(), c0.clone());
        let Case {
            ta,
            tb,
            m,
            n,
            k,
            alpha,
            beta,
            ..
        } = *self;
        kernels::sgemm(
            ta, tb, m, n, k, alpha, &a, lda, &b, ldb, beta, &mut fast, ldc,
        );
        let ctx = format!(
            "{} {:?}{:?} m={m} n={n} k={k} alpha={alpha} beta={beta} pad={}",
            kernels::isa().name(),
            ta,
            tb,
            self.pad
        );
        assert_padding_nan(&fast, m, n, ldc, &ctx);
        if exact {
            naive::sgemm(
                ta, tb, m, n, k, alpha, &a, lda, &b, ldb, beta, &mut slow, ldc,
            );
            for i in 0..m {
                for j in 0..n {
                    let (f, s) = (fast[i * ldc + j], slow[i * ldc + j]);
                    assert!(f == s, "{ctx}: C[{i}][{j}] = {f}, naive {s}");
                }
            }
            return;
        }
        // f64 reference and the error model |err| <= (k + 2) eps (|alpha| sum|a||b| + |beta c|).
        let at = |i: usize, p: usize| {
            if ta == Transpose::No {
                a[i * lda + p]
            } else {
                a[p * lda + i]
            }
        };
        let bt = |p: usize, j: usize| {
            if tb == Transpose::No {
                b[p * ldb + j]
            } else {
                b[j * ldb + p]
            }
        };
        let mut worst = (0.0f64, 0, 0);
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut mag) = (0f64, 0f64);
                for p in 0..k {
                    s += at(i, p) as f64 * bt(p, j) as f64;
                    mag += (at(i, p) as f64 * bt(p, j) as f64).abs();
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    c0[i * ldc + j] as f64
                };
                let want = alpha as f64 * s + beta as f64 * old;
                let tol = (k as f64 + 2.0)
                    * f32::EPSILON as f64
                    * ((alpha as f64).abs() * mag + (beta as f64 * old).abs())
                    + 1e-30;
                let err = (fast[i * ldc + j] as f64 - want).abs();
                if err / tol > worst.0 {
                    worst = (err / tol, i, j);
                }
            }
        }
        assert!(
            worst.0 <= 1.0,
            "{ctx}: worst C[{}][{}] is {:.2}x the tolerance",
            worst.1,
            worst.2,
            worst.0
        );
    }
}

const ALPHAS: [f32; 3] = [0.0, 1.0, -2.5];
const BETAS_EXACT: [f32; 2] = [0.0, 1.0];

#[test]
fn sgemm_exact_small_shapes_all_transposes() {
    let mut rng = Rng::new(1);
    let d = small_dims();
    let mut count = 0usize;
    for &(ta, tb) in &TRANSPOSES {
        for &m in &d {
            for &n in &d {
                for &k in &d {
                    let alpha = ALPHAS[count % 3];
                    let beta = BETAS_EXACT[(count / 3) % 2];
                    Case {
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        alpha,
                        beta,
                        pad: count % 3,
                    }
                    .check(&mut rng, true);
                    count += 1;
                }
            }
        }
    }
}

#[test]
fn sgemm_exact_block_boundaries() {
    let mut rng = Rng::new(2);
    let small = [1, 5, 17];
    let mut count = 0usize;
    for &(ta, tb) in &TRANSPOSES {
        for &v in &big_dims() {
            for &s in &small {
                // The last runs the blocked path at a depth of v: one depth block, or two.
                for (m, n, k) in [
                    (v, s, 9),
                    (s, v, 9),
                    (s, 9, v),
                    (v, 33, 65),
                    (s + 16, 33, v),
                ] {
                    let alpha = ALPHAS[count % 3];
                    let beta = BETAS_EXACT[(count / 3) % 2];
                    Case {
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        alpha,
                        beta,
                        pad: 1 + count % 2,
                    }
                    .check(&mut rng, true);
                    count += 1;
                }
            }
        }
    }
}

/// Each side of the limits for reading A in place rather than packing it (AVX-512; other
/// paths always pack): the depth and the width of C at and just past them, and a row stride
/// of A that is a multiple of `IN_PLACE_A_ALIAS_BYTES` (packed) against one float more (in
/// place), with row counts that leave a bottom edge tile, in both layouts of A.
#[test]
fn sgemm_exact_around_in_place_a_limits() {
    use mathblocks::kernels::params::{
        IN_PLACE_A_ALIAS_BYTES, IN_PLACE_A_MAX_COLS, IN_PLACE_A_MAX_DEPTH,
    };
    let mut rng = Rng::new(11);
    let (d, w) = (IN_PLACE_A_MAX_DEPTH, IN_PLACE_A_MAX_COLS);
    let alias = IN_PLACE_A_ALIAS_BYTES / size_of::<f32>();
    // (m, n, k, pad): the last two give A (not transposed) a row stride of `alias` and
    // `alias + 1` at a depth well inside the limit.
    let shapes = [
        (37, 45, d, 0),
        (37, 45, d + 1, 1),
        (25, w, 20, 0),
        (25, w + 1, 20, 2),
        (37, 45, 300, alias - 300),
        (37, 45, 300, alias - 299),
    ];
    for (count, &(m, n, k, pad)) in shapes.iter().enumerate() {
        for ta in [Transpose::No, Transpose::Yes] {
            Case {
                ta,
                tb: Transpose::No,
                m,
                n,
                k,
                alpha: ALPHAS[count % 3],
                beta: BETAS_EXACT[count % 2],
                pad,
            }
            .check(&mut rng, true);
        }
    }
}

/// The narrow path (n <= NARROW_N, A as stored) picks its register tiles from n and from the
/// size of A: every column count, row counts around its blocks of two, three, four, six and
/// eight rows, and an A just past `NARROW_STREAM_BYTES`, which switches to blocks of six rows.
#[test]
fn sgemm_narrow_every_width_and_blocking() {
    let mut rng = Rng::new(7);
    let stream_rows = 100;
    let stream_k = kernels::params::NARROW_STREAM_BYTES / 4 / stream_rows + 9;
    let shapes = [
        (1, 9),
        (2, 17),
        (3, 8),
        (4, 1),
        (5, 9),
        (6, 33),
        (7, 7),
        (9, 9),
        (11, 17),
        (13, 9),
        (stream_rows, stream_k),
    ];
    let mut count = 0usize;
    for tb in [Transpose::No, Transpose::Yes] {
        for n in 1..=kernels::params::NARROW_N {
            for &(m, k) in &shapes {
                Case {
                    ta: Transpose::No,
                    tb,
                    m,
                    n,
                    k,
                    alpha: ALPHAS[count % 3],
                    beta: BETAS_EXACT[(count / 3) % 2],
                    pad: count % 2,
                }
                .check(&mut rng, true);
                count += 1;
            }
        }
    }
}

/// Every height of a bottom-edge tile (1..=MR rows, which the microkernel computes alone), at
/// full and partial tile width, on the packed path (k past SMALL_K, n past NARROW_N; B
/// transposed so that a few rows do not take the small-m path).
#[test]
fn sgemm_exact_every_edge_height() {
    let mut rng = Rng::new(8);
    let bs = kernels::isa().block_sizes();
    let mut count = 0usize;
    for m in 1..=2 * bs.mr {
        for n in [32, 37] {
            for (ta, tb) in [
                (Transpose::No, Transpose::Yes),
                (Transpose::Yes, Transpose::No),
            ] {
                Case {
                    ta,
                    tb,
                    m,
                    n,
                    k: 20,
                    alpha: [1.0, -2.5][count % 2],
                    beta: BETAS_EXACT[(count / 2) % 2],
                    pad: count % 3,
                }
                .check(&mut rng, true);
                count += 1;
            }
        }
    }
}

#[test]
fn sgemm_random_within_error_model() {
    let mut rng = Rng::new(3);
    let shapes = [
        (128, 512, 784),
        (784, 512, 128),
        (128, 784, 10),
        (128, 10, 512),
        (129, 257, 300),
        (61, 1000, 47),
        (1000, 7, 257),
    ];
    for (idx, &(m, n, k)) in shapes.iter().enumerate() {
        for (t, &(ta, tb)) in TRANSPOSES.iter().enumerate() {
            for &beta in &[0.0, 1.0, 0.3] {
                let alpha = ALPHAS[(idx + t) % 3].max(if beta == 0.3 { -2.5 } else { -9.0 });
                Case {
                    ta,
                    tb,
                    m,
                    n,
                    k,
                    alpha,
                    beta,
                    pad: t % 2 * 3,
                }
                .check(&mut rng, false);
            }
        }
    }
}

#[test]
fn sgemm_beta_zero_ignores_nan_in_c_and_k_zero_scales() {
    let (m, n) = (7, 19);
    let a = vec![1.0f32; m * 3];
    let b = vec![2.0f32; 3 * n];
    let mut c = vec![f32::NAN; m * n];
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        m,
        n,
        3,
        1.0,
        &a,
        3,
        &b,
        n,
        0.0,
        &mut c,
        n,
    );
    assert!(c.iter().all(|&v| v == 6.0));
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        m,
        n,
        0,
        1.0,
        &a,
        3,
        &b,
        n,
        0.5,
        &mut c,
        n,
    );
    assert!(c.iter().all(|&v| v == 3.0), "k == 0 must give C = beta * C");
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        m,
        n,
        0,
        1.0,
        &[],
        1,
        &[],
        n,
        0.0,
        &mut c,
        n,
    );
    assert!(
        c.iter().all(|&v| v == 0.0),
        "k == 0 with beta == 0 gives zeros"
    );
    let mut untouched = vec![f32::NAN; 4];
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        0,
        4,
        3,
        1.0,
        &[],
        3,
        &b,
        n,
        0.0,
        &mut untouched,
        4,
    );
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        1,
        0,
        3,
        1.0,
        &a,
        3,
        &[],
        0,
        0.0,
        &mut untouched,
        4,
    );
    assert!(
        untouched.iter().all(|v| v.is_nan()),
        "m == 0 or n == 0 must not write"
    );
}

fn bitwise(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn sgemm_threads_give_serial_bits() {
    let mut rng = Rng::new(4);
    for &(ta, tb, m, n, k) in &[
        (Transpose::No, Transpose::No, 300, 301, 257),
        (Transpose::Yes, Transpose::No, 784, 512, 128),
        (Transpose::No, Transpose::Yes, 128, 784, 512),
        (Transpose::No, Transpose::No, 37, 1000, 300),
        (Transpose::Yes, Transpose::No, 3, 1000, 300), // the small-m path, split by columns
        (Transpose::No, Transpose::No, 1001, 10, 300), // the narrow path, split by rows
        (Transpose::No, Transpose::Yes, 515, 12, 700),
        (Transpose::Yes, Transpose::No, 1003, 10, 300), // transposed narrow, split by rows of C
        (Transpose::Yes, Transpose::Yes, 1003, 7, 301),
        (Transpose::No, Transpose::Yes, 701, 515, 9), // the small-depth path, split by rows
        (Transpose::Yes, Transpose::No, 701, 515, 16),
        // Split by rows with A and B read in place, nothing shared (AVX-512), with an edge.
        (Transpose::No, Transpose::No, 301, 257, 255),
        (Transpose::No, Transpose::No, 250, 37, 300),
        // Split by columns with A read in place (AVX-512), B packed by each block: m >= n
        // with B too large to read in place for all of C, and m < n with B transposed.
        (Transpose::No, Transpose::No, 520, 500, 600),
        (Transpose::No, Transpose::Yes, 100, 515, 700),
        // Several depth blocks on each thread, split by rows and by columns.
        (Transpose::No, Transpose::No, 520, 515, 530),
        (Transpose::No, Transpose::Yes, 300, 700, 600),
        // More columns than one NC panel (2048 floats on AVX2 and portable, 3072 on
        // AVX-512), split by rows and by columns.
        (Transpose::No, Transpose::No, 2100, 2100, 20),
        (Transpose::No, Transpose::Yes, 100, 3200, 40),
        // A shared operand of more than `params::SHARED_PHASE_BYTES` (4 MB): packed A of
        // 1100 rows is 1 to 1.6 MB per depth block (KC 256 to 512), so the three to five
        // blocks take two phases.
        (Transpose::No, Transpose::No, 1100, 1200, 1100),
    ] {
        let ((ar, ac), (br, bc)) = Case {
            ta,
            tb,
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            pad: 0,
        }
        .stored();
        let a = matrix(ar, ac, ac, || rng.uniform());
        let b = matrix(br, bc, bc, || rng.uniform());
        let run = |threads: usize| {
            let mut c = vec![0.5f32; m * n];
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| kernels::sgemm(ta, tb, m, n, k, 0.7, &a, ac, &b, bc, 0.3, &mut c, n));
            bitwise(&c)
        };
        let serial = run(1);
        assert!(serial == run(2), "2 threads differ from 1 at {m}x{n}x{k}");
        assert!(serial == run(3), "3 threads differ from 1 at {m}x{n}x{k}");
    }
}

/// The parallel sgemm packs the operand every block needs once, into one buffer, a group of
/// micro-panels at a time by whichever thread gets there first: a race between packing and
/// reading would show as a result that differs from the serial one in some runs. (With the
/// wait for a group another thread is packing removed, this failed in three of four runs.)
#[test]
fn sgemm_shared_packing_gives_serial_bits_every_run() {
    let mut rng = Rng::new(5);
    for &(ta, m, n, k) in &[
        (Transpose::No, 1200, 1100, 300), // by rows: packed B shared
        (Transpose::Yes, 700, 1000, 300), // by columns: packed A shared
    ] {
        let (ar, ac) = if ta == Transpose::No { (m, k) } else { (k, m) };
        let a = matrix(ar, ac, ac, || rng.uniform());
        let b = matrix(k, n, n, || rng.uniform());
        let run = |pool: &rayon::ThreadPool| {
            let mut c = vec![0f32; m * n];
            pool.install(|| {
                kernels::sgemm(
                    ta,
                    Transpose::No,
                    m,
                    n,
                    k,
                    1.0,
                    &a,
                    ac,
                    &b,
                    n,
                    0.0,
                    &mut c,
                    n,
                )
            });
            bitwise(&c)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let serial = run(&one);
        for i in 0..40 {
            let threads = 2 + i % 3;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert!(
                serial == run(&pool),
                "run {i} on {threads} threads at {m}x{n}x{k} differs from serial"
            );
        }
    }
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn short_slices_panic_naming_function_argument_and_length() {
    let msg = panic_message(|| {
        let mut c = vec![0.0; 4];
        kernels::sgemm(
            Transpose::No,
            Transpose::No,
            2,
            2,
            3,
            1.0,
            &[0.0; 5],
            3,
            &[0.0; 6],
            2,
            0.0,
            &mut c,
            2,
        )
    });
    assert!(
        msg.contains("sgemm") && msg.contains("`a`") && msg.contains("needs 6"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let mut c = vec![0.0; 5];
        kernels::sgemm(
            Transpose::No,
            Transpose::No,
            2,
            2,
            3,
            1.0,
            &[0.0; 6],
            3,
            &[0.0; 6],
            2,
            0.0,
            &mut c,
            4,
        )
    });
    assert!(msg.contains("`c`") && msg.contains("needs 6"), "{msg}");
    let msg = panic_message(|| {
        let mut c = vec![0.0; 4];
        kernels::sgemm(
            Transpose::No,
            Transpose::No,
            2,
            2,
            3,
            1.0,
            &[0.0; 6],
            2,
            &[0.0; 6],
            2,
            0.0,
            &mut c,
            2,
        )
    });
    assert!(msg.contains("row stride of `a`"), "{msg}");
    let msg = panic_message(|| {
        let mut out = vec![0.0; 8];
        kernels::dense_forward(
            &[0.0; 6],
            &[0.0; 12],
            &[0.0; 3],
            &mut out,
            2,
            3,
            4,
            Activation::Relu,
        )
    });
    assert!(
        msg.contains("dense_forward") && msg.contains("`bias`") && msg.contains("needs 4"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let mut g = vec![0.0; 4];
        kernels::softmax_cross_entropy(&[0.0; 4], &[0, 2], &mut g, 2, 2);
    });
    assert!(
        msg.contains("softmax_cross_entropy") && msg.contains("label 2 in row 1"),
        "{msg}"
    );
    let msg = panic_message(|| kernels::softmax_rows(&mut [0.0; 5], 2, 3));
    assert!(
        msg.contains("softmax_rows") && msg.contains("needs 6"),
        "{msg}"
    );
}

#[test]
fn dense_forward_matches_naive_exactly() {
    let mut rng = Rng::new(5);
    let d = small_dims();
    let mut shapes: Vec<(usize, usize, usize)> = Vec::new();
    for &b in &d {
        for &o in &d {
            shapes.push((b, 5, o));
        }
    }
    shapes.extend([
        (128, 784, 512),
        (128, 512, 10),
        (1, 784, 512),
        (3, 0, 7),
        (130, 257, 33),
        // On several threads with several depth blocks: bias and relu on the last only.
        (520, 530, 515),
    ]);
    for (batch, in_dim, out_dim) in shapes {
        let x = matrix(batch, in_dim, in_dim, || rng.small_int());
        let w = matrix(in_dim, out_dim, out_dim, || rng.small_int());
        let bias = matrix(1, out_dim, out_dim, || rng.small_int());
        for act in [Activation::Identity, Activation::Relu] {
            let mut fast = vec![f32::NAN; batch * out_dim];
            let mut slow = vec![0.0; batch * out_dim];
            kernels::dense_forward(&x, &w, &bias, &mut fast, batch, in_dim, out_dim, act);
            naive::dense_forward(&x, &w, &bias, &mut slow, batch, in_dim, out_dim, act);
            assert!(
                bitwise(&fast) == bitwise(&slow),
                "dense {act:?} {batch}x{in_dim}x{out_dim}"
            );
        }
    }
}

#[test]
fn softmax_rows_edge_rows_and_against_naive() {
    let inf = f32::INFINITY;
    let mut x = vec![
        1000.0, -1000.0, 0.0, //
        -inf, 0.0, 1.0, //
        -inf, -inf, -inf, //
        inf, 1.0, inf, //
        88.0, 88.5, 89.0,
    ];
    let mut want = x.clone();
    kernels::softmax_rows(&mut x, 5, 3);
    naive::softmax_rows(&mut want, 5, 3);
    for (r, row) in x.chunks(3).enumerate() {
        assert!(row.iter().all(|v| v.is_finite()), "row {r}: {row:?}");
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-6, "row {r} sums to {s}");
    }
    assert_eq!(&x[..3], &[1.0, 0.0, 0.0]);
    assert_eq!(&x[9..12], &[0.5, 0.0, 0.5]);
    let mut rng = Rng::new(6);
    for &(rows, cols) in &[(1, 1), (3, 10), (128, 10), (70, 1000)] {
        let mut a = matrix(rows, cols, cols, || 20.0 * rng.uniform());
        let mut b = a.clone();
        kernels::softmax_rows(&mut a, rows, cols);
        naive::softmax_rows(&mut b, rows, cols);
        for (i, (&u, &v)) in a.iter().zip(&b).enumerate() {
            // exp(x - max) carries the rounding of x - max: relative error about |x - max| * eps.
            assert!(
                (u - v).abs() <= 1e-5 * v + 1e-30,
                "{rows}x{cols} [{i}]: {u} vs {v}"
            );
        }
    }
}

#[test]
fn softmax_cross_entropy_matches_naive() {
    let mut rng = Rng::new(7);
    for &(rows, cols) in &[(1, 1), (1, 10), (128, 10), (33, 3), (700, 100)] {
        let logits = matrix(rows, cols, cols, || 30.0 * rng.uniform());
        let labels: Vec<u32> = (0..rows)
            .map(|_| (rng.next_u64() % cols as u64) as u32)
            .collect();
        let (mut g1, mut g2) = (vec![f32::NAN; rows * cols], vec![0.0; rows * cols]);
        let l1 = kernels::softmax_cross_entropy(&logits, &labels, &mut g1, rows, cols);
        let l2 = naive::softmax_cross_entropy(&logits, &labels, &mut g2, rows, cols);
        assert!(
            (l1 - l2).abs() <= 1e-5 * l2.abs().max(1.0),
            "{rows}x{cols}: loss {l1} vs {l2}"
        );
        for (i, (&u, &v)) in g1.iter().zip(&g2).enumerate() {
            assert!(
                (u - v).abs() <= 1e-6 / rows as f32,
                "{rows}x{cols} grad[{i}]: {u} vs {v}"
            );
        }
        for row in g1.chunks(cols) {
            assert!(
                row.iter().sum::<f32>().abs() < 1e-5,
                "gradient rows sum to 0"
            );
        }
    }
    // Extreme logits: the loss is finite and exact enough.
    let mut g = [0.0; 2];
    let l = kernels::softmax_cross_entropy(&[1000.0, -1000.0], &[1], &mut g, 1, 2);
    assert!((l - 2000.0).abs() < 1e-3, "{l}");
    assert_eq!(g, [1.0, -1.0]);
    assert_eq!(
        kernels::softmax_cross_entropy(&[], &[], &mut [], 0, 10),
        0.0
    );
}

#[test]
fn elementwise_kernels_match_naive() {
    let mut rng = Rng::new(8);
    // 130 columns: two blocks of col_sums' 64 and two left over; 91 and 650 elements leave
    // relu_backward's 8-lane loop a tail.
    for &(rows, cols) in &[(0, 3), (1, 1), (7, 13), (5, 130), (128, 512), (3, 0)] {
        let x = matrix(rows, cols, cols, || rng.uniform());
        let bias = matrix(1, cols, cols, || rng.uniform());
        let (mut s1, mut s2) = (vec![f32::NAN; cols], vec![f32::NAN; cols]);
        kernels::col_sums(&x, rows, cols, &mut s1);
        naive::col_sums(&x, rows, cols, &mut s2);
        assert!(bitwise(&s1) == bitwise(&s2), "col_sums {rows}x{cols}");
        let (mut a, mut b) = (x.clone(), x.clone());
        kernels::add_bias_rows(&mut a, &bias, rows, cols);
        naive::add_bias_rows(&mut b, &bias, rows, cols);
        assert!(bitwise(&a) == bitwise(&b), "add_bias_rows {rows}x{cols}");
        kernels::relu_forward(&mut a);
        naive::relu_forward(&mut b);
        assert!(bitwise(&a) == bitwise(&b), "relu_forward");
        let (mut g1, mut g2) = (x.clone(), x.clone());
        kernels::relu_backward(&mut g1, &a);
        naive::relu_backward(&mut g2, &b);
        assert!(bitwise(&g1) == bitwise(&g2), "relu_backward");
        // NaN, -0.0 and +0.0 activations stop the gradient; NaN gradients pass where kept.
        let act: Vec<f32> = (0..x.len())
            .map(|i| [f32::NAN, -0.0, 0.0, 1.0, -1.0][i % 5])
            .collect();
        let grad: Vec<f32> = (0..x.len())
            .map(|i| if i % 7 == 3 { f32::NAN } else { x[i] })
            .collect();
        let (mut g1, mut g2) = (grad.clone(), grad.clone());
        kernels::relu_backward(&mut g1, &act);
        naive::relu_backward(&mut g2, &act);
        assert!(
            bitwise(&g1) == bitwise(&g2),
            "relu_backward with NaN and zeros"
        );
        kernels::axpy(-0.3, &x, &mut g1);
        naive::axpy(-0.3, &x, &mut g2);
        assert!(bitwise(&g1) == bitwise(&g2), "axpy");
        kernels::scale(1.7, &mut g1);
        naive::scale(1.7, &mut g2);
        assert!(bitwise(&g1) == bitwise(&g2), "scale");
        if cols > 0 {
            let (mut i1, mut i2) = (vec![99; rows], vec![98; rows]);
            kernels::argmax_rows(&x, rows, cols, &mut i1);
            naive::argmax_rows(&x, rows, cols, &mut i2);
            assert_eq!(i1, i2, "argmax_rows {rows}x{cols}");
        }
    }
    let mut idx = [0u32; 2];
    kernels::argmax_rows(&[f32::NAN, 1.0, 3.0, 3.0, 2.0, f32::NAN], 2, 3, &mut idx);
    assert_eq!(idx, [2, 0]);
}

#[test]
fn rmsprop_zero_gradient_blocks_keep_the_full_rule_bits() {
    // Runs of zero gradient (which skip the square roots) next to nonzero ones, against
    // parameters and averages that make the skipped rule's edge cases: -0.0 and NaN weights,
    // NaN and zero averages (with epsilon 0, 0/0 is NaN and must still be written).
    let mut rng = Rng::new(10);
    let n = 16 * 40 + 5;
    let mut g = vec![0.0f32; n];
    for (i, g) in g.iter_mut().enumerate() {
        *g = match (i / 16) % 5 {
            0 | 1 => 0.0,
            2 => -0.0,
            3 => rng.uniform(),
            _ => {
                if i % 7 == 0 {
                    rng.uniform()
                } else {
                    0.0
                }
            }
        };
    }
    let p0: Vec<f32> = (0..n)
        .map(|i| match i % 11 {
            0 => -0.0,
            1 => f32::NAN,
            _ => rng.uniform(),
        })
        .collect();
    // Special averages only in every third block, so that other zero blocks do skip, and
    // NaN in only half of those, so that 0/0 has blocks of its own.
    let a0: Vec<f32> = (0..n)
        .map(|i| match (i / 16 % 6, i % 13) {
            (0, 0) => f32::NAN,
            (0 | 3, 1 | 2) => 0.0,
            _ => rng.uniform().abs(),
        })
        .collect();
    for (lr, epsilon) in [(1e-3, 1e-7), (1e-3, 0.0), (0.0, 1e-7), (-1e-3, 1e-7)] {
        let (mut p1, mut a1, mut p2, mut a2) = (p0.clone(), a0.clone(), p0.clone(), a0.clone());
        kernels::rmsprop_update(&mut p1, &g, &mut a1, lr, 0.9, epsilon);
        naive::rmsprop_update(&mut p2, &g, &mut a2, lr, 0.9, epsilon);
        assert!(
            bitwise(&a1) == bitwise(&a2),
            "averages, lr {lr} epsilon {epsilon}"
        );
        for i in 0..n {
            assert_eq!(
                p1[i].to_bits(),
                p2[i].to_bits(),
                "p[{i}] (g {}, p {}, a {}), lr {lr} epsilon {epsilon}",
                g[i],
                p0[i],
                a0[i]
            );
        }
        if epsilon == 0.0 && lr > 0.0 {
            assert!(
                p1.iter()
                    .zip(&g)
                    .zip(&a0)
                    .any(|((p, &g), &a)| p.is_nan() && g == 0.0 && a == 0.0),
                "0/0 must give NaN"
            );
        }
    }
}

#[test]
fn optimiser_updates_match_naive_bitwise() {
    let mut rng = Rng::new(9);
    // The last two are split over threads (parts of at least UPDATE_PARALLEL_MIN).
    for n in [0, 1, 7, 8, 9, 31, 1000, 4099, 131_079, 407_050] {
        let g: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let p0: Vec<f32> = (0..n).map(|_| rng.uniform()).collect();
        let s0: Vec<f32> = (0..n).map(|_| rng.uniform().abs()).collect();
        let t0: Vec<f32> = (0..n).map(|_| rng.uniform().abs()).collect();
        for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
            let (mut p1, mut v1, mut p2, mut v2) = (p0.clone(), s0.clone(), p0.clone(), s0.clone());
            kernels::sgd_update(&mut p1, &g, &mut v1, 0.01, momentum, nesterov);
            naive::sgd_update(&mut p2, &g, &mut v2, 0.01, momentum, nesterov);
            assert!(
                bitwise(&p1) == bitwise(&p2) && bitwise(&v1) == bitwise(&v2),
                "sgd n={n}"
            );
            assert!(n == 0 || p1 != p0, "sgd moved nothing");
        }
        let (mut p1, mut a1, mut p2, mut a2) = (p0.clone(), s0.clone(), p0.clone(), s0.clone());
        kernels::rmsprop_update(&mut p1, &g, &mut a1, 1e-3, 0.9, 1e-7);
        naive::rmsprop_update(&mut p2, &g, &mut a2, 1e-3, 0.9, 1e-7);
        assert!(
            bitwise(&p1) == bitwise(&p2) && bitwise(&a1) == bitwise(&a2),
            "rmsprop n={n}"
        );
        let (mut p1, mut m1, mut v1) = (p0.clone(), s0.clone(), t0.clone());
        let (mut p2, mut m2, mut v2) = (p0.clone(), s0.clone(), t0.clone());
        kernels::adam_update(&mut p1, &g, &mut m1, &mut v1, 3e-4, 0.9, 0.999, 1e-7);
        naive::adam_update(&mut p2, &g, &mut m2, &mut v2, 3e-4, 0.9, 0.999, 1e-7);
        assert!(
            bitwise(&p1) == bitwise(&p2)
                && bitwise(&m1) == bitwise(&m2)
                && bitwise(&v1) == bitwise(&v2),
            "adam n={n}"
        );
    }
    let msg = panic_message(|| {
        kernels::rmsprop_update(&mut [0.0; 4], &[0.0; 3], &mut [0.0; 4], 1e-3, 0.9, 1e-7)
    });
    assert!(
        msg.contains("rmsprop_update") && msg.contains("grads"),
        "{msg}"
    );
}

/// A `rows x cols` matrix in which about `density` of the entries are drawn from `f` and the
/// rest are +0.0 or -0.0.
fn sparse_matrix(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    density: f64,
    mut f: impl FnMut(&mut Rng) -> f32,
) -> Vec<f32> {
    (0..rows * cols)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if u < density {
                f(rng)
            } else if u < density + (1.0 - density) / 8.0 {
                -0.0
            } else {
                0.0
            }
        })
        .collect()
}

/// Shapes for the sparse kernels: around the register block (8 vectors), one vector, and the
/// 8-wide zero-chunk test of the gather, for every path's vector width.
fn sparse_shapes() -> Vec<(usize, usize, usize)> {
    let lanes = [8usize, 16];
    let mut outs = vec![0, 1, 2, 3];
    for l in lanes {
        outs.extend([l - 1, l, l + 1, 8 * l - 1, 8 * l, 8 * l + 1, 9 * l + 3]);
    }
    let mut shapes = Vec::new();
    for &batch in &[0, 1, 2, 5, 15, 16, 17] {
        for &in_dim in &[0, 1, 7, 8, 9, 17] {
            for &o in &outs {
                shapes.push((batch, in_dim, o));
            }
        }
    }
    shapes.extend([
        (128, 784, 512),
        (1, 784, 512),
        (130, 257, 33),
        (300, 100, 200),
    ]);
    shapes
}

#[test]
fn sparse_kernels_match_naive_exactly() {
    let mut rng = Rng::new(11);
    for (batch, in_dim, out_dim) in sparse_shapes() {
        for density in [0.0, 0.2, 1.0] {
            let x = sparse_matrix(&mut rng, batch, in_dim, density, |r| r.small_int());
            let w = matrix(in_dim, out_dim, out_dim, || rng.small_int());
            let bias = matrix(1, out_dim, out_dim, || rng.small_int());
            let dy = matrix(batch, out_dim, out_dim, || rng.small_int());
            let ctx = format!("{batch}x{in_dim}x{out_dim} density {density}");
            for act in [Activation::Identity, Activation::Relu] {
                let mut fast = vec![f32::NAN; batch * out_dim];
                let mut slow = vec![0.0; batch * out_dim];
                kernels::sparse_dense_forward(
                    &x, &w, &bias, &mut fast, batch, in_dim, out_dim, act,
                );
                naive::sparse_dense_forward(&x, &w, &bias, &mut slow, batch, in_dim, out_dim, act);
                assert_eq!(fast, slow, "sparse_dense_forward {act:?} {ctx}");
            }
            let mut fast = vec![f32::NAN; in_dim * out_dim];
            let mut slow = vec![0.0; in_dim * out_dim];
            kernels::sparse_weight_grad(&x, &dy, &mut fast, batch, in_dim, out_dim);
            naive::sparse_weight_grad(&x, &dy, &mut slow, batch, in_dim, out_dim);
            assert_eq!(fast, slow, "sparse_weight_grad {ctx}");
            // Any block of rows gives those rows of the whole gradient, bit for bit.
            let mid = in_dim / 2;
            for rows in [
                0..0,
                0..in_dim.min(1),
                mid..in_dim,
                1.min(in_dim)..mid.max(1.min(in_dim)),
            ] {
                let mut part = vec![f32::NAN; rows.len() * out_dim + 3];
                let r = rows.clone();
                kernels::sparse_weight_grad_rows(&x, &dy, &mut part, batch, in_dim, out_dim, r);
                let want = &slow[rows.start * out_dim..rows.end * out_dim];
                assert_eq!(&part[..want.len()], want, "rows {rows:?} {ctx}");
                let mut reference = vec![f32::NAN; want.len()];
                let r = rows.clone();
                naive::sparse_weight_grad_rows(&x, &dy, &mut reference, batch, in_dim, out_dim, r);
                assert_eq!(reference, want, "naive rows {rows:?} {ctx}");
                assert!(
                    part[want.len()..].iter().all(|v| v.is_nan()),
                    "past rows {rows:?} {ctx}"
                );
            }
            let frac = kernels::nonzero_fraction(&x);
            assert_eq!(frac, naive::nonzero_fraction(&x), "nonzero_fraction {ctx}");
        }
    }
}

#[test]
fn sparse_kernels_random_within_error_model() {
    let mut rng = Rng::new(12);
    for &(batch, in_dim, out_dim) in &[(128, 784, 512), (7, 300, 77), (64, 129, 130)] {
        let x = sparse_matrix(&mut rng, batch, in_dim, 0.25, |r| r.uniform());
        let w = matrix(in_dim, out_dim, out_dim, || rng.uniform());
        let dy = matrix(batch, out_dim, out_dim, || rng.uniform());
        let bias = vec![0.0; out_dim];
        let mut out = vec![f32::NAN; batch * out_dim];
        kernels::sparse_dense_forward(
            &x,
            &w,
            &bias,
            &mut out,
            batch,
            in_dim,
            out_dim,
            Activation::Identity,
        );
        let mut dw = vec![f32::NAN; in_dim * out_dim];
        kernels::sparse_weight_grad(&x, &dy, &mut dw, batch, in_dim, out_dim);
        // Reference in f64; f32 summation of n terms errs by at most about n·eps·sum|terms|.
        let eps = f32::EPSILON as f64;
        for r in 0..batch {
            for j in 0..out_dim {
                let (mut s, mut abs) = (0f64, 0f64);
                for p in 0..in_dim {
                    let t = x[r * in_dim + p] as f64 * w[p * out_dim + j] as f64;
                    s += t;
                    abs += t.abs();
                }
                let err = (out[r * out_dim + j] as f64 - s).abs();
                assert!(
                    err <= in_dim as f64 * eps * abs + 1e-30,
                    "forward ({r}, {j}): {err}"
                );
            }
        }
        for p in 0..in_dim {
            for j in 0..out_dim {
                let (mut s, mut abs) = (0f64, 0f64);
                for r in 0..batch {
                    let t = x[r * in_dim + p] as f64 * dy[r * out_dim + j] as f64;
                    s += t;
                    abs += t.abs();
                }
                let err = (dw[p * out_dim + j] as f64 - s).abs();
                assert!(
                    err <= batch as f64 * eps * abs + 1e-30,
                    "grad ({p}, {j}): {err}"
                );
            }
        }
    }
}

#[test]
fn sparse_kernels_threads_give_serial_bits_and_skip_only_zeros() {
    let mut rng = Rng::new(13);
    let (batch, in_dim, out_dim) = (300, 784, 130);
    let x = sparse_matrix(&mut rng, batch, in_dim, 0.2, |r| r.uniform());
    let w = matrix(in_dim, out_dim, out_dim, || rng.uniform());
    let bias = matrix(1, out_dim, out_dim, || rng.uniform());
    let dy = matrix(batch, out_dim, out_dim, || rng.uniform());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut out = vec![f32::NAN; batch * out_dim];
        let mut dw = vec![f32::NAN; in_dim * out_dim];
        pool.install(|| {
            kernels::sparse_dense_forward(
                &x,
                &w,
                &bias,
                &mut out,
                batch,
                in_dim,
                out_dim,
                Activation::Relu,
            );
            kernels::sparse_weight_grad(&x, &dy, &mut dw, batch, in_dim, out_dim);
        });
        (bitwise(&out), bitwise(&dw))
    };
    let serial = run(1);
    assert!(serial == run(2), "2 threads differ from 1");
    assert!(serial == run(3), "3 threads differ from 1");

    // Zeros (either sign) are skipped even against an infinite weight; NaN inputs are not.
    let x = [0.0, -0.0, 1.0, f32::NAN, 0.0, 2.0];
    let w = [f32::INFINITY, f32::NEG_INFINITY, 1.0, 3.0];
    let mut out = [f32::NAN; 6];
    kernels::sparse_dense_forward(&x, &w, &[0.5, 0.5], &mut out, 3, 2, 2, Activation::Identity);
    assert_eq!(out[..2], [0.5, 0.5], "zeros against infinite weights");
    assert!(
        out[2].is_nan() && out[3].is_nan(),
        "a NaN input must propagate: {out:?}"
    );
    assert_eq!(out[4..], [2.5, 6.5], "the last row");
}

#[test]
fn sparse_kernels_short_slices_panic_with_names() {
    let msg = panic_message(|| {
        let mut out = vec![0.0; 8];
        kernels::sparse_dense_forward(
            &[0.0; 6],
            &[0.0; 11],
            &[0.0; 4],
            &mut out,
            2,
            3,
            4,
            Activation::Relu,
        )
    });
    assert!(
        msg.contains("sparse_dense_forward") && msg.contains("`w`") && msg.contains("needs 12"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let mut dw = vec![0.0; 11];
        kernels::sparse_weight_grad(&[0.0; 6], &[0.0; 8], &mut dw, 2, 3, 4)
    });
    assert!(
        msg.contains("sparse_weight_grad") && msg.contains("`dw`") && msg.contains("needs 12"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let mut dw = vec![0.0; 7];
        kernels::sparse_weight_grad_rows(&[0.0; 6], &[0.0; 8], &mut dw, 2, 3, 4, 1..3)
    });
    assert!(
        msg.contains("sparse_weight_grad_rows") && msg.contains("`dw`") && msg.contains("needs 8"),
        "{msg}"
    );
    let msg = panic_message(|| {
        let mut dw = vec![0.0; 16];
        kernels::sparse_weight_grad_rows(&[0.0; 6], &[0.0; 8], &mut dw, 2, 3, 4, 2..4)
    });
    assert!(
        msg.contains("sparse_weight_grad_rows") && msg.contains("`rows`") && msg.contains("2..4"),
        "{msg}"
    );
}
