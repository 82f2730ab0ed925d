//! Calling the kernels directly on plain `Vec<f32>`s, as a crate that embeds mathblocks does
//! (the README's example): `cargo run --release --example embed_kernels`.

use mathblocks::kernels::{self, Activation, Transpose};

fn main() {
    let (m, k, n) = (2, 3, 4);
    let a = vec![1.0f32; m * k]; // m x k, row-major
    let b = vec![0.5f32; k * n]; // k x n
    let mut c = vec![0.0f32; m * n]; // m x n
    kernels::sgemm(
        Transpose::No,
        Transpose::No,
        m,
        n,
        k,
        1.0,
        &a,
        k,
        &b,
        n,
        0.0,
        &mut c,
        n,
    );
    println!("sgemm: {c:?}");
    let bias = vec![-1.0f32; n];
    kernels::dense_forward(&a, &b, &bias, &mut c, m, k, n, Activation::Relu); // relu(a·b + bias)
    println!("dense_forward: {c:?}");
    kernels::softmax_rows(&mut c, m, n);
    println!("softmax_rows: {c:?} (isa {})", kernels::isa().name());
}
