//! Interleaved sgemm comparison: mathblocks, faer and matrixmultiply called round-robin on the
//! same inputs (the order turning each round), so host speed drift hits every candidate
//! alike; prints best-call and median GFLOP/s (with the percentage of an FMA-peak probe, and
//! the time per call in µs), each cell `best / median`. The probe runs at the start of each
//! thread count and again every 100 ms among each shape's calls; the `probe` column is the
//! larger of the first and the best of the second, which the percentages are of. NN shapes
//! also time `dense_forward` with bias and relu, whose epilogue should cost nothing over the
//! plain sgemm. Each candidate gets at least `MIN_CALLS` calls a shape. With one thread and
//! more in the list, a last table times the large squares on one thread and on more call by
//! call, for the thread scaling.
//!
//! `cargo bench --bench interleaved [-- THREADS [SECONDS_PER_SHAPE]]` (default: 1 and 2 threads).

mod common;

use mathblocks::kernels::{self, Transpose};
use std::hint::black_box;
use std::time::{Duration, Instant};

struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    ta: Transpose,
    tb: Transpose,
}

fn shapes() -> Vec<Shape> {
    use Transpose::{No, Yes};
    let sq = |name, s| Shape {
        name,
        m: s,
        k: s,
        n: s,
        ta: No,
        tb: No,
    };
    vec![
        Shape {
            name: "128x784x512 NN",
            m: 128,
            k: 784,
            n: 512,
            ta: No,
            tb: No,
        },
        Shape {
            name: "784x128x512 TN",
            m: 784,
            k: 128,
            n: 512,
            ta: Yes,
            tb: No,
        },
        Shape {
            name: "128x10x512 NT",
            m: 128,
            k: 10,
            n: 512,
            ta: No,
            tb: Yes,
        },
        Shape {
            name: "128x512x10 NN",
            m: 128,
            k: 512,
            n: 10,
            ta: No,
            tb: No,
        },
        // Half a training step's output-layer products: dz·Wᵀ and hᵀ·dz.
        Shape {
            name: "64x10x512 NT",
            m: 64,
            k: 10,
            n: 512,
            ta: No,
            tb: Yes,
        },
        Shape {
            name: "512x64x10 TN",
            m: 512,
            k: 64,
            n: 10,
            ta: Yes,
            tb: No,
        },
        sq("256^3", 256),
        sq("512^3", 512),
        sq("1024^3", 1024),
        sq("2048^3", 2048),
    ]
}

/// Best of 20 runs of the FMA-peak probe on every thread of `pool` at once, timed by the wall
/// clock: the two-thread figure is what both cores reach together (about 2% below twice one
/// core here, and less when the host is busy), not twice a one-core run.
fn concurrent_peak(pool: &rayon::ThreadPool) -> f64 {
    // A new pool's threads may start on one core; a stretch of work lets the scheduler spread
    // them before anything is timed.
    black_box(pool.broadcast(|_| kernels::fma_peak_probe(50_000_000)));
    (0..20)
        .map(|_| probe_once(pool, 2_000_000))
        .fold(0f64, f64::max)
}

/// One run of `iters` rounds of the FMA-peak probe on every thread of `pool` at once:
/// GFLOP/s by the wall clock.
fn probe_once(pool: &rayon::ThreadPool, iters: usize) -> f64 {
    let t = Instant::now();
    let runs = pool.broadcast(|_| kernels::fma_peak_probe(iters));
    let flops: u64 = runs.iter().map(|r| r.0).sum();
    black_box(runs);
    flops as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// Calls per candidate at the least, even past the time budget: at 2048³ five seconds hold
/// only about six calls each, and the best of six is as much the host's slow spells as the
/// code (a 20 s run read 88% of the probe where the 5 s runs read 80–82%).
const MIN_CALLS: usize = 15;

/// Time between the short probe runs interleaved with a shape's calls.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Rounds of the probe per interleaved run: about 1 ms on one AVX2 core.
const PROBE_ITERS: usize = 500_000;

/// The peak the percentages of `t` threads are quoted against: `one` (the one-thread probe)
/// for one thread, else the concurrent probe, tried up to three times while it reads under 1.5
/// cores' worth of `one`.
/// On this host it sometimes ran both threads on one core for the whole probe (two runs of
/// six read 102 GFLOP/s) while sgemm, right after, got both; then `t * one` is used, and said.
fn peak_gflops(pool: &rayon::ThreadPool, t: usize, one: f64) -> f64 {
    if t == 1 {
        return one;
    }
    let mut got = 0f64;
    for _ in 0..3 {
        got = got.max(concurrent_peak(pool));
        if got >= 1.5 * one {
            return got;
        }
    }
    println!(
        "\n(the probe's {t} threads did not get {t} cores at once: it read {got:.1} GFLOP/s; \
         percentages below use {t} x the one-thread probe)"
    );
    t as f64 * one
}

/// (best, median) of GFLOP/s samples.
fn stats(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() - 1], v[v.len() / 2])
}

/// The A and B every candidate multiplies: `a_len` and `b_len` floats of a short repeating
/// pattern of small values, so that no candidate meets denormals or overflow.
fn operands(a_len: usize, b_len: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..a_len)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
        .collect();
    let b = (0..b_len)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
        .collect();
    (a, b)
}

/// One call of sgemm at `s`³ on `pool`, in seconds.
fn square_call(pool: &rayon::ThreadPool, s: usize, a: &[f32], b: &[f32], c: &mut [f32]) -> f64 {
    pool.install(|| {
        rayon::join(|| (), || ());
        let t0 = Instant::now();
        kernels::sgemm(
            Transpose::No,
            Transpose::No,
            s,
            s,
            s,
            1.0,
            a,
            s,
            b,
            s,
            0.0,
            c,
            s,
        );
        black_box(c);
        t0.elapsed().as_secs_f64()
    })
}

/// Thread scaling measured within one loop: sgemm at the large squares on a one-thread pool
/// and a `t`-thread pool, call by call, the order swapped each round, so that the two figures
/// see the same host rather than two tables minutes apart. Prints GFLOP/s best / median of
/// each, the ratio of the bests and the median of the ratios of the pairs.
fn scaling(t: usize, budget: Duration, filter: Option<&str>) {
    let pools = [1, t].map(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    });
    println!("\n## {t} threads against 1, interleaved call by call (sgemm NN)");
    println!("| shape | 1 thread | {t} threads | ratio of bests | median ratio of pairs |");
    println!("|---|---|---|---|---|");
    for (name, s) in [("512^3", 512), ("1024^3", 1024), ("2048^3", 2048)] {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let (a, b) = operands(s * s, s * s);
        let mut c = vec![0f32; s * s];
        let flops = 2.0 * (s * s * s) as f64;
        let mut times: [Vec<f64>; 2] = Default::default();
        let start = Instant::now();
        let mut round = 0;
        while start.elapsed() < budget || times[0].len() < MIN_CALLS {
            for q in 0..2 {
                let which = (q + round) % 2;
                times[which].push(square_call(&pools[which], s, &a, &b, &mut c));
            }
            round += 1;
        }
        let mut ratios: Vec<f64> = times[0].iter().zip(&times[1]).map(|(x, y)| x / y).collect();
        let mut gflops = times
            .each_ref()
            .map(|v| v.iter().map(|x| flops / x / 1e9).collect::<Vec<f64>>());
        let (b1, m1) = stats(&mut gflops[0]);
        let (bt, mt) = stats(&mut gflops[1]);
        let (_, mr) = stats(&mut ratios);
        println!(
            "| {name} | {b1:.1} / {m1:.1} | {bt:.1} / {mt:.1} | {:.2}x | {mr:.2}x |",
            bt / b1
        );
    }
}

fn main() {
    let (threads, budget) = common::threads_and_budget(3.0);
    let filter = std::env::var("SHAPES").ok();
    println!("isa: {}", kernels::isa().name());
    let one = {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        concurrent_peak(&pool)
    };
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let par = if t == 1 {
            faer::Par::Seq
        } else {
            faer::Par::rayon(t)
        };
        let peak = peak_gflops(&pool, t, one);
        println!("\n## {t} thread(s); FMA-peak probe {peak:.1} GFLOP/s at the start");
        println!(
            "| shape | probe | mathblocks sgemm | faer | matrixmultiply | mathblocks dense_forward+relu |"
        );
        println!("|---|---|---|---|---|---|");
        for s in shapes() {
            if filter
                .as_ref()
                .is_some_and(|f| !s.name.contains(f.as_str()))
            {
                continue;
            }
            let (ar, ac) = if s.ta == Transpose::No {
                (s.m, s.k)
            } else {
                (s.k, s.m)
            };
            let (br, bc) = if s.tb == Transpose::No {
                (s.k, s.n)
            } else {
                (s.n, s.k)
            };
            let (a, b) = operands(ar * ac, br * bc);
            let mut c = vec![0f32; s.m * s.n];
            let flops = 2.0 * (s.m * s.n * s.k) as f64;
            // dense_forward (bias + relu epilogue) only has the NN layout.
            let dense = s.ta == Transpose::No && s.tb == Transpose::No;
            let bias: Vec<f32> = (0..s.n).map(|j| (j % 7) as f32 / 7.0 - 0.5).collect();
            let mut times: [Vec<f64>; 4] = Default::default();
            // The host's speed drifts over minutes, so the probe also runs every
            // PROBE_EVERY among this shape's calls; percentages are of the larger of its best
            // and the run's first probe, so that a slow spell never inflates them.
            let mut shape_probe = 0f64;
            let mut next_probe = Instant::now();
            let start = Instant::now();
            // One call per candidate per round, until the budget is spent; the whole loop runs
            // inside the pool so no call pays for a hop into it.
            pool.install(|| {
                let mut round = 0;
                while start.elapsed() < budget || times[0].len() < MIN_CALLS {
                    // The order turns by one each round, so that no candidate always follows
                    // the same one: a multi-threaded call leaves rayon's workers awake or
                    // asleep for the next.
                    round += 1;
                    if Instant::now() >= next_probe {
                        shape_probe = shape_probe.max(probe_once(&pool, PROBE_ITERS));
                        next_probe = Instant::now() + PROBE_EVERY;
                    }
                    for which in (0..4).map(|i| (i + round) % 4) {
                        if which == 3 && !dense {
                            continue;
                        }
                        let v = &mut times[which];
                        // Wake rayon's workers first: after the single-threaded
                        // matrixmultiply call they have gone to sleep, and the candidate that
                        // follows it would otherwise pay their wake-up.
                        rayon::join(|| (), || ());
                        let t0 = Instant::now();
                        match which {
                            0 => kernels::sgemm(
                                s.ta, s.tb, s.m, s.n, s.k, 1.0, &a, ac, &b, bc, 0.0, &mut c, s.n,
                            ),
                            1 => {
                                let am = faer::MatRef::from_row_major_slice(&a, ar, ac);
                                let bm = faer::MatRef::from_row_major_slice(&b, br, bc);
                                let am = if s.ta == Transpose::No {
                                    am
                                } else {
                                    am.transpose()
                                };
                                let bm = if s.tb == Transpose::No {
                                    bm
                                } else {
                                    bm.transpose()
                                };
                                let cm = faer::MatMut::from_row_major_slice_mut(&mut c, s.m, s.n);
                                faer::linalg::matmul::matmul(
                                    cm,
                                    faer::Accum::Replace,
                                    am,
                                    bm,
                                    1.0f32,
                                    par,
                                );
                            }
                            3 => kernels::dense_forward(
                                &a,
                                &b,
                                &bias,
                                &mut c,
                                s.m,
                                s.k,
                                s.n,
                                kernels::Activation::Relu,
                            ),
                            _ => {
                                let (rsa, csa) = if s.ta == Transpose::No {
                                    (ac as isize, 1)
                                } else {
                                    (1, ac as isize)
                                };
                                let (rsb, csb) = if s.tb == Transpose::No {
                                    (bc as isize, 1)
                                } else {
                                    (1, bc as isize)
                                };
                                // SAFETY: strides describe the allocated a, b and c exactly.
                                unsafe {
                                    matrixmultiply::sgemm(
                                        s.m,
                                        s.k,
                                        s.n,
                                        1.0,
                                        a.as_ptr(),
                                        rsa,
                                        csa,
                                        b.as_ptr(),
                                        rsb,
                                        csb,
                                        0.0,
                                        c.as_mut_ptr(),
                                        s.n as isize,
                                        1,
                                    )
                                }
                            }
                        }
                        black_box(&mut c);
                        v.push(flops / t0.elapsed().as_secs_f64() / 1e9);
                    }
                }
            });
            let peak = peak.max(shape_probe);
            let cells: Vec<String> = times
                .iter_mut()
                .map(|v| {
                    if v.is_empty() {
                        return "-".to_string();
                    }
                    let (best, med) = stats(v);
                    format!(
                        "{best:.1} / {med:.1} ({:.0}% / {:.0}%; {:.1} / {:.1} µs)",
                        100.0 * best / peak,
                        100.0 * med / peak,
                        flops / best / 1e3,
                        flops / med / 1e3
                    )
                })
                .collect();
            println!(
                "| {} | {peak:.1} | {} | {} | {} | {} |",
                s.name, cells[0], cells[1], cells[2], cells[3]
            );
        }
    }
    if threads.contains(&1) {
        for &t in threads.iter().filter(|&&t| t > 1) {
            scaling(t, budget, filter.as_deref());
        }
    }
}
