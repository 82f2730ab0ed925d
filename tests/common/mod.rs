//! Helpers shared by the integration tests: seeded draws and strided matrix builders.
#![allow(dead_code)]

/// The crate's seeded generator with the two draws the kernel tests use.
pub struct Rng(mathblocks::rng::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mathblocks::rng::Rng::new(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        self.0.uniform(-1.0, 1.0)
    }
    /// An integer in -3..=3, as f32 (products and sums stay exact).
    pub fn small_int(&mut self) -> f32 {
        self.0.below(7) as f32 - 3.0
    }
}

/// A `rows x cols` matrix with row stride `ld`, padding filled with NaN.
pub fn matrix(rows: usize, cols: usize, ld: usize, mut f: impl FnMut() -> f32) -> Vec<f32> {
    let len = if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    };
    let mut v = vec![f32::NAN; len];
    for i in 0..rows {
        for j in 0..cols {
            v[i * ld + j] = f();
        }
    }
    v
}

/// Asserts that every element outside the `rows x cols` part of a strided matrix is NaN.
pub fn assert_padding_nan(c: &[f32], rows: usize, cols: usize, ld: usize, ctx: &str) {
    for (idx, v) in c.iter().enumerate() {
        if idx % ld >= cols || idx / ld >= rows {
            assert!(
                v.is_nan(),
                "{ctx}: padding element {idx} was overwritten with {v}"
            );
        }
    }
}
