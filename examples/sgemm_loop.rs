//! Calls sgemm in a loop at one shape, for profilers: `cargo run --release --example
//! sgemm_loop -- M K N [ITERS]` (NN, alpha 1, beta 0).
fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("M K N [ITERS]"))
        .collect();
    let (m, k, n, iters) = (a[0], a[1], a[2], *a.get(3).unwrap_or(&20));
    let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
    let w: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut c = vec![0f32; m * n];
    let t = std::time::Instant::now();
    for _ in 0..iters {
        mathblocks::kernels::sgemm(
            mathblocks::kernels::Transpose::No,
            mathblocks::kernels::Transpose::No,
            m,
            n,
            k,
            1.0,
            &x,
            k,
            &w,
            n,
            0.0,
            &mut c,
            n,
        );
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{:.1} GFLOP/s, {:.1} us/call",
        2.0 * (m * n * k * iters) as f64 / s / 1e9,
        s / iters as f64 * 1e6
    );
}
