//! Data sets: the IDX reader (MNIST and anything laid out like it), TensorFlow's iris CSV,
//! and the in-memory [`Dataset`] the model trains on. The IDX/MNIST readers need the `io`
//! feature (byteorder, flate2). Readers return [`DataError`], never
//! panic, whatever the bytes.

mod error;
#[cfg(feature = "io")]
pub mod idx;
pub mod iris;
#[cfg(feature = "io")]
pub mod mnist;

pub use error::DataError;

/// Examples as a row-major `n x features` matrix of f32 plus one class label per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Row-major features, `n * features` floats.
    pub x: Vec<f32>,
    /// Class labels, `n` of them, each in `0..classes`.
    pub y: Vec<u32>,
    /// Number of examples.
    pub n: usize,
    /// Features per example (784 for MNIST).
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// The examples at `indices`, in that order (a copy).
    ///
    /// # Panics
    /// If an index is `>= self.n`.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let f = self.features;
        let mut x = Vec::with_capacity(indices.len() * f);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(&self.x[i * f..(i + 1) * f]);
            y.push(self.y[i]);
        }
        Dataset {
            x,
            y,
            n: indices.len(),
            features: f,
            classes: self.classes,
        }
    }

    /// The first `n` examples (all of them if `n >= self.n`).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.n);
        Dataset {
            x: self.x[..n * self.features].to_vec(),
            y: self.y[..n].to_vec(),
            n,
            features: self.features,
            classes: self.classes,
        }
    }

    /// Splits off the last `fraction` of the examples (rounded down), as Keras's
    /// `validation_split` does: returns (first part, last part).
    pub fn split_tail(&self, fraction: f64) -> (Dataset, Dataset) {
        let tail = ((self.n as f64) * fraction).floor() as usize;
        let head = self.n - tail;
        let all: Vec<usize> = (0..self.n).collect();
        (self.select(&all[..head]), self.select(&all[head..]))
    }
}

/// A deterministic permutation of `0..n` (Fisher–Yates driven by [`crate::rng::Rng`]).
pub fn permutation(n: usize, rng: &mut crate::rng::Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut p);
    p
}
