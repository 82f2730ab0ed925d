//! The sparse-input kernels against the dense ones they replace, called round-robin on the
//! same inputs so that host drift hits both alike; best-call and median µs per call.
//!
//! - On real MNIST batches (128 shuffled training images, 784 -> 512): the forward pass
//!   (`dense_forward` vs `sparse_dense_forward`, bias + relu), the weight gradient (`sgemm`
//!   TN vs `sparse_weight_grad`), and one image's forward pass.
//! - On random inputs of set densities: where the crossover lies
//!   (`params::SPARSE_MAX_DENSITY`).
//!
//! `cargo bench --bench sparse [-- THREADS [SECONDS_PER_CASE]]` (default: 1 and 2 threads);
//! `MNIST_ONLY=1` skips the random inputs.

mod common;

use mathblocks::data::mnist;
use mathblocks::kernels::{self, Activation, Transpose};
use mathblocks::rng::Rng;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const IN: usize = 784;
const OUT: usize = 512;

/// (best, median) of µs samples.
fn stats(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2])
}

/// Times `dense` and `sparse` alternately for `budget`; returns their (best, median) µs.
fn race(budget: Duration, mut dense: impl FnMut(), mut sparse: impl FnMut()) -> [(f64, f64); 2] {
    let mut t: [Vec<f64>; 2] = Default::default();
    let start = Instant::now();
    while start.elapsed() < budget || t[0].len() < 5 {
        for (which, v) in t.iter_mut().enumerate() {
            rayon::join(|| (), || ());
            let t0 = Instant::now();
            if which == 0 {
                dense()
            } else {
                sparse()
            }
            v.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    [stats(&mut t[0]), stats(&mut t[1])]
}

fn row(name: &str, density: f64, r: [(f64, f64); 2]) {
    let [(db, dm), (sb, sm)] = r;
    println!(
        "| {name} | {:.0}% | {db:.1} / {dm:.1} | {sb:.1} / {sm:.1} | {:.2}x / {:.2}x |",
        density * 100.0,
        db / sb,
        dm / sm
    );
}

/// Forward and weight gradient of one `batch x IN` input, dense then sparse.
fn cases(name: &str, x: &[f32], batch: usize, w: &[f32], dy: &[f32], budget: Duration) {
    let bias = vec![0.01f32; OUT];
    let (mut out, mut out2) = (vec![0f32; batch * OUT], vec![0f32; batch * OUT]);
    let (mut dw, mut dw2) = (vec![0f32; IN * OUT], vec![0f32; IN * OUT]);
    let density = kernels::nonzero_fraction(x);
    let fwd = race(
        budget,
        || {
            kernels::dense_forward(x, w, &bias, &mut out, batch, IN, OUT, Activation::Relu);
            black_box(&mut out);
        },
        || {
            kernels::sparse_dense_forward(x, w, &bias, &mut out2, batch, IN, OUT, Activation::Relu);
            black_box(&mut out2);
        },
    );
    row(&format!("{name} forward {batch}x{IN}x{OUT}"), density, fwd);
    if batch == 1 {
        return;
    }
    let grad = race(
        budget,
        || {
            kernels::sgemm(
                Transpose::Yes,
                Transpose::No,
                IN,
                OUT,
                batch,
                1.0,
                x,
                IN,
                dy,
                OUT,
                0.0,
                &mut dw,
                OUT,
            );
            black_box(&mut dw);
        },
        || {
            kernels::sparse_weight_grad(x, dy, &mut dw2, batch, IN, OUT);
            black_box(&mut dw2);
        },
    );
    row(
        &format!("{name} weight grad {IN}x{batch}x{OUT}"),
        density,
        grad,
    );
}

fn main() {
    let (threads, budget) = common::threads_and_budget(2.0);
    let m = mnist::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist"
    )))
    .expect("data/mnist");
    let mut rng = Rng::new(1);
    let batch = 128;
    let mut x = Vec::with_capacity(batch * IN);
    for _ in 0..batch {
        let i = rng.below(m.train.n);
        x.extend_from_slice(&m.train.x[i * IN..(i + 1) * IN]);
    }
    let w: Vec<f32> = (0..IN * OUT).map(|_| rng.uniform(-0.07, 0.07)).collect();
    let dy: Vec<f32> = (0..batch * OUT).map(|_| rng.uniform(-0.01, 0.01)).collect();
    println!(
        "isa: {}; MNIST training set {:.1}% nonzero",
        kernels::isa().name(),
        100.0 * kernels::nonzero_fraction(&m.train.x)
    );
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        println!("\n## {t} thread(s): µs per call, best / median");
        println!("| case | nonzero | dense | sparse | speed-up |");
        println!("|---|---|---|---|---|");
        pool.install(|| {
            cases("MNIST", &x, batch, &w, &dy, budget);
            cases("MNIST", &m.test.x[..IN], 1, &w, &dy, budget);
            if std::env::var_os("MNIST_ONLY").is_some() {
                return;
            }
            for density in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6] {
                let xr: Vec<f32> = (0..batch * IN)
                    .map(|_| {
                        if rng.uniform(0.0, 1.0) < density as f32 {
                            rng.uniform(0.0, 1.0)
                        } else {
                            0.0
                        }
                    })
                    .collect();
                cases("random", &xr, batch, &w, &dy, budget);
            }
        });
    }
}
