//! The model layer: a Keras-like `Sequential` stack of dense layers over the fused kernels,
//! losses, accuracy, optimisers and the training loop.
//!
//! Parameters live in one flat buffer, layer after layer, each layer's kernel `(in_dim,
//! out_dim)` row-major (Keras layout, `y = x·W + b`) followed by its bias; gradients use the
//! same layout, so optimisers are plain loops over two slices.

#[cfg(feature = "io")]
pub mod checkpoint;
mod model;
pub mod optim;
mod pair;

pub use model::{
    Act, Dense, EpochLog, FitConfig, History, Layer, Loss, Progress, Sequential, TrainError,
    Workspace,
};
pub use optim::{OptState, Optimizer};
