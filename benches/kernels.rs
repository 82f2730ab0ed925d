//! Criterion benchmarks: one group per kernel, ids `naive`, `mathblocks` and the peer crates
//! (`faer`, `matrixmultiply`) for sgemm; throughput in floating-point operations
//! (`Throughput::Elements(2·m·n·k)`, read criterion's "elem/s" as FLOP/s).
//!
//! `cargo bench --bench kernels` (all), or e.g. `cargo bench --bench kernels -- sgemm/1024`.
//! The sparse-input kernels are compared with the dense ones under the id `dense`.
//! The `fma_peak` group measures the core's FMA peak on the path in use, for % of peak.
//! Threads: rayon's default (all cores); `RAYON_NUM_THREADS=1` for one core (faer follows).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mathblocks::kernels::{self, Activation, Transpose, naive};
use std::hint::black_box;
use std::time::Duration;

struct Shape {
    id: &'static str,
    m: usize,
    k: usize,
    n: usize,
    ta: Transpose,
    tb: Transpose,
    naive: bool,
}

fn shapes() -> Vec<Shape> {
    use Transpose::{No, Yes};
    let sq = |id, s, naive| Shape {
        id,
        m: s,
        k: s,
        n: s,
        ta: No,
        tb: No,
        naive,
    };
    vec![
        Shape {
            id: "128x784x512_NN",
            m: 128,
            k: 784,
            n: 512,
            ta: No,
            tb: No,
            naive: true,
        },
        Shape {
            id: "784x128x512_TN",
            m: 784,
            k: 128,
            n: 512,
            ta: Yes,
            tb: No,
            naive: true,
        },
        Shape {
            id: "128x10x512_NT",
            m: 128,
            k: 10,
            n: 512,
            ta: No,
            tb: Yes,
            naive: true,
        },
        Shape {
            id: "128x512x10_NN",
            m: 128,
            k: 512,
            n: 10,
            ta: No,
            tb: No,
            naive: true,
        },
        sq("256", 256, true),
        sq("512", 512, false),
        sq("1024", 1024, false),
        sq("2048", 2048, false),
    ]
}

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 7919 % 2003) as f32 / 1001.0) - 1.0)
        .collect()
}

fn fma_peak(c: &mut Criterion) {
    let mut g = c.benchmark_group("fma_peak");
    let iters = 100_000;
    g.throughput(Throughput::Elements(
        kernels::fma_peak_probe(1).0 * iters as u64,
    ));
    g.bench_function(kernels::isa().name(), |b| {
        b.iter(|| black_box(kernels::fma_peak_probe(black_box(iters))))
    });
    g.finish();
}

fn sgemm(c: &mut Criterion) {
    let threads = rayon::current_num_threads();
    let par = if threads == 1 {
        faer::Par::Seq
    } else {
        faer::Par::rayon(threads)
    };
    for s in shapes() {
        let mut g = c.benchmark_group(format!("sgemm/{}", s.id));
        g.throughput(Throughput::Elements(2 * (s.m * s.n * s.k) as u64));
        if s.m * s.n * s.k > 1 << 28 {
            g.sample_size(10);
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
        let (a, b) = (data(ar * ac, 1), data(br * bc, 2));
        let mut out = vec![0f32; s.m * s.n];
        g.bench_function("mathblocks", |bn| {
            bn.iter(|| {
                kernels::sgemm(
                    s.ta, s.tb, s.m, s.n, s.k, 1.0, &a, ac, &b, bc, 0.0, &mut out, s.n,
                )
            })
        });
        if s.naive {
            g.bench_function("naive", |bn| {
                bn.iter(|| {
                    naive::sgemm(
                        s.ta, s.tb, s.m, s.n, s.k, 1.0, &a, ac, &b, bc, 0.0, &mut out, s.n,
                    )
                })
            });
        }
        g.bench_function("faer", |bn| {
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
            bn.iter(|| {
                let cm = faer::MatMut::from_row_major_slice_mut(&mut out, s.m, s.n);
                faer::linalg::matmul::matmul(cm, faer::Accum::Replace, am, bm, 1.0f32, par)
            })
        });
        g.bench_function("matrixmultiply", |bn| {
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
            // SAFETY: the strides describe the allocated a, b and out exactly.
            bn.iter(|| unsafe {
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
                    out.as_mut_ptr(),
                    s.n as isize,
                    1,
                )
            })
        });
        g.finish();
    }
}

fn dense(c: &mut Criterion) {
    for (batch, in_dim, out_dim) in [(128, 784, 512), (128, 512, 10), (1, 784, 512)] {
        let mut g = c.benchmark_group(format!("dense_forward/{batch}x{in_dim}x{out_dim}_relu"));
        g.throughput(Throughput::Elements(2 * (batch * in_dim * out_dim) as u64));
        let (x, w, bias) = (
            data(batch * in_dim, 3),
            data(in_dim * out_dim, 4),
            data(out_dim, 5),
        );
        let mut out = vec![0f32; batch * out_dim];
        g.bench_function("mathblocks", |b| {
            b.iter(|| {
                kernels::dense_forward(
                    &x,
                    &w,
                    &bias,
                    &mut out,
                    batch,
                    in_dim,
                    out_dim,
                    Activation::Relu,
                )
            })
        });
        // The same product without bias and relu: the epilogue should cost nothing over it.
        g.bench_function("sgemm_only", |b| {
            b.iter(|| {
                kernels::sgemm(
                    Transpose::No,
                    Transpose::No,
                    batch,
                    out_dim,
                    in_dim,
                    1.0,
                    &x,
                    in_dim,
                    &w,
                    out_dim,
                    0.0,
                    &mut out,
                    out_dim,
                )
            })
        });
        g.bench_function("naive", |b| {
            b.iter(|| {
                naive::dense_forward(
                    &x,
                    &w,
                    &bias,
                    &mut out,
                    batch,
                    in_dim,
                    out_dim,
                    Activation::Relu,
                )
            })
        });
        g.finish();
    }
}

fn softmax(c: &mut Criterion) {
    for (rows, cols) in [(128, 10), (10_000, 10)] {
        let logits = data(rows * cols, 6);
        let labels: Vec<u32> = (0..rows as u32).map(|i| i % cols as u32).collect();
        let mut g = c.benchmark_group(format!("softmax_rows/{rows}x{cols}"));
        g.throughput(Throughput::Elements((rows * cols) as u64));
        let mut x = logits.clone();
        g.bench_function("mathblocks", |b| {
            b.iter(|| {
                x.copy_from_slice(&logits);
                kernels::softmax_rows(&mut x, rows, cols)
            })
        });
        g.bench_function("naive", |b| {
            b.iter(|| {
                x.copy_from_slice(&logits);
                naive::softmax_rows(&mut x, rows, cols)
            })
        });
        g.finish();
        let mut g = c.benchmark_group(format!("softmax_cross_entropy/{rows}x{cols}"));
        g.throughput(Throughput::Elements((rows * cols) as u64));
        let mut grad = vec![0f32; rows * cols];
        g.bench_function("mathblocks", |b| {
            b.iter(|| kernels::softmax_cross_entropy(&logits, &labels, &mut grad, rows, cols))
        });
        g.bench_function("naive", |b| {
            b.iter(|| naive::softmax_cross_entropy(&logits, &labels, &mut grad, rows, cols))
        });
        g.finish();
    }
}

fn elementwise(c: &mut Criterion) {
    let (rows, cols) = (128, 512);
    let x = data(rows * cols, 7);
    let mut g = c.benchmark_group("col_sums/128x512");
    g.throughput(Throughput::Elements((rows * cols) as u64));
    let mut out = vec![0f32; cols];
    g.bench_function("mathblocks", |b| {
        b.iter(|| kernels::col_sums(&x, rows, cols, &mut out))
    });
    g.bench_function("naive", |b| {
        b.iter(|| naive::col_sums(&x, rows, cols, &mut out))
    });
    g.finish();
    let mut g = c.benchmark_group("relu_backward/128x512");
    g.throughput(Throughput::Elements((rows * cols) as u64));
    let mut grad = x.clone();
    g.bench_function("mathblocks", |b| {
        b.iter(|| kernels::relu_backward(&mut grad, &x))
    });
    g.bench_function("naive", |b| b.iter(|| naive::relu_backward(&mut grad, &x)));
    g.finish();
}

/// `data` with all but about one in five entries zeroed (MNIST pixels are 19% nonzero).
fn sparse_data(len: usize, seed: usize) -> Vec<f32> {
    let mut v = data(len, seed);
    for (i, x) in v.iter_mut().enumerate() {
        if (i * 2654435761 + seed) % 100 >= 19 {
            *x = 0.0;
        }
    }
    v
}

/// The sparse-input kernels on a 19%-nonzero input, against their naive references and the
/// dense kernels they replace (`dense`). Throughput counts the dense FLOPs, so the figures
/// compare directly with the dense ones.
fn sparse(c: &mut Criterion) {
    for (batch, in_dim, out_dim) in [(128, 784, 512), (1, 784, 512)] {
        let mut g = c.benchmark_group(format!(
            "sparse_dense_forward/{batch}x{in_dim}x{out_dim}_relu"
        ));
        g.throughput(Throughput::Elements(2 * (batch * in_dim * out_dim) as u64));
        let (x, w, bias) = (
            sparse_data(batch * in_dim, 3),
            data(in_dim * out_dim, 4),
            data(out_dim, 5),
        );
        let mut out = vec![0f32; batch * out_dim];
        let relu = Activation::Relu;
        g.bench_function("mathblocks", |b| {
            b.iter(|| {
                kernels::sparse_dense_forward(&x, &w, &bias, &mut out, batch, in_dim, out_dim, relu)
            })
        });
        g.bench_function("dense", |b| {
            b.iter(|| kernels::dense_forward(&x, &w, &bias, &mut out, batch, in_dim, out_dim, relu))
        });
        g.bench_function("naive", |b| {
            b.iter(|| {
                naive::sparse_dense_forward(&x, &w, &bias, &mut out, batch, in_dim, out_dim, relu)
            })
        });
        g.finish();
    }
    let (batch, in_dim, out_dim) = (128, 784, 512);
    let mut g = c.benchmark_group(format!("sparse_weight_grad/{in_dim}x{batch}x{out_dim}"));
    g.throughput(Throughput::Elements(2 * (batch * in_dim * out_dim) as u64));
    let (x, dy) = (sparse_data(batch * in_dim, 6), data(batch * out_dim, 7));
    let mut dw = vec![0f32; in_dim * out_dim];
    g.bench_function("mathblocks", |b| {
        b.iter(|| kernels::sparse_weight_grad(&x, &dy, &mut dw, batch, in_dim, out_dim))
    });
    g.bench_function("dense", |b| {
        b.iter(|| {
            kernels::sgemm(
                Transpose::Yes,
                Transpose::No,
                in_dim,
                out_dim,
                batch,
                1.0,
                &x,
                in_dim,
                &dy,
                out_dim,
                0.0,
                &mut dw,
                out_dim,
            )
        })
    });
    g.bench_function("naive", |b| {
        b.iter(|| naive::sparse_weight_grad(&x, &dy, &mut dw, batch, in_dim, out_dim))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = fma_peak, sgemm, dense, sparse, softmax, elementwise }
criterion_main!(benches);
