//! Helpers shared by the integration tests: a seeded generator and matrix builders.
#![allow(dead_code)]

/// SplitMix64: a tiny deterministic generator, so tests need no rand crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// An integer in -3..=3, as f32 (products and sums stay exact).
    pub fn small_int(&mut self) -> f32 {
        (self.next_u64() % 7) as f32 - 3.0
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
