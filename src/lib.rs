//! # mathblocks
//!
//! The mathematical building blocks of neural networks, fast on the CPU.
//!
//! - [`kernels`]: free functions over flat, row-major `f32` slices — a cache-blocked SIMD
//!   sgemm with run-time CPU dispatch (AVX-512F, AVX2+FMA, portable), the fused dense layer
//!   (`act(x·W + b)` with bias and relu applied as tiles are stored), stable softmax and fused
//!   softmax cross-entropy, dense-layer kernels driven by the nonzeros of sparse inputs
//!   (`sparse_dense_forward`, `sparse_weight_grad`), and the helpers backprop needs.
//!   [`kernels::naive`] holds a plain-loop reference of each.
//!
//! - [`nn`]: a Keras-like `Sequential` model of dense layers with SGD/momentum, RMSprop and
//!   Adam, trained on flat buffers with the kernels above.
//! - [`data`]: MNIST-layout IDX files and TensorFlow's iris CSV (IDX needs the `io` feature).
//! - [`tensor`]: `Tensor`, an owned n-d array with NumPy-style slicing ([`s!`]), broadcasting,
//!   `matmul`/`tensordot` and reductions, returning shape errors as values.
//! - [`autograd`]: a reverse-mode `Tape` (TensorFlow's `GradientTape`) over tensors.
//!
//! Conventions: matrices are row-major; a leading dimension (`lda`, `ldb`, `ldc`) is the row
//! stride in elements and may exceed the row length (sub-matrix views). Kernels check slice
//! lengths on entry and panic with the function, argument and length needed; file readers
//! and the CLI return errors instead.
//!
//! Dispatch needs no build flags: the instruction set is detected once at run time
//! ([`kernels::isa`]) and can be forced with the `MATHBLOCKS_ISA` environment variable
//! (`avx512`, `avx2`, `portable`; ignored if the CPU lacks it).

#![warn(missing_docs)]

pub mod atomic;
pub mod autograd;
pub mod data;
pub mod kernels;
pub mod nn;
pub mod rng;
pub mod tensor;
