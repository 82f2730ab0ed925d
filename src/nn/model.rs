//! `Sequential`: construction (Glorot-uniform init), forward, fused backward, fit, evaluate
//! and predict. The training loop allocates nothing per step: a [`Workspace`] sized once per
//! batch size holds every activation and gradient buffer.
//!
//! Threads: `fit` computes the two halves of each batch side by side, one per thread, with
//! the kernels of each half kept on its thread, then the first layer's weight gradient and
//! update in two blocks of rows the same way (on a helper thread that waits by spinning; see
//! `pair`); `evaluate` and `predict` split each chunk the same way. The halves are the same
//! whatever the thread count, so results are identical on one thread and on many. A first
//! layer whose input is mostly zeros (at most `kernels::params::SPARSE_MAX_DENSITY` nonzero,
//! as MNIST) runs on the sparse-input kernels.

use super::optim::{OptState, Optimizer};
use super::pair::{Pair, with_pair};
use crate::data::{Dataset, permutation};
use crate::kernels::{self, Activation, Transpose};
use crate::rng::Rng;
use std::fmt;
use std::time::Instant;

/// A layer's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// No activation (logits).
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// Row-wise softmax (probabilities). With sparse categorical cross-entropy it is fused
    /// into the loss.
    Softmax,
}

impl Act {
    /// The name used in checkpoints (`linear`, `relu`, `softmax`).
    pub fn name(self) -> &'static str {
        match self {
            Act::Linear => "linear",
            Act::Relu => "relu",
            Act::Softmax => "softmax",
        }
    }
    /// Parses [`Act::name`].
    pub fn from_name(s: &str) -> Option<Act> {
        match s {
            "linear" | "none" => Some(Act::Linear),
            "relu" => Some(Act::Relu),
            "softmax" => Some(Act::Softmax),
            _ => None,
        }
    }
}

/// A dense layer to add: `units` outputs and an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Output width.
    pub units: usize,
    /// Activation.
    pub act: Act,
}

impl Dense {
    /// `Dense(units, activation)`.
    pub fn new(units: usize, act: Act) -> Dense {
        Dense { units, act }
    }
}

/// A built layer: its shape, activation and where its parameters sit in the flat buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Input width.
    pub in_dim: usize,
    /// Output width.
    pub out_dim: usize,
    /// Activation.
    pub act: Act,
    /// Offset of the `(in_dim, out_dim)` kernel in the parameter buffer.
    pub w_off: usize,
    /// Offset of the `out_dim` bias in the parameter buffer.
    pub b_off: usize,
}

/// Loss functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Sparse categorical cross-entropy on integer labels, fused with a final softmax (or
    /// applied to logits when the last layer is linear).
    SparseCategoricalCrossentropy,
    /// Mean squared error between the outputs and the one-hot encoding of the labels, averaged
    /// over outputs and examples (Keras `mean_squared_error`).
    MeanSquaredError,
}

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    NonFinite {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// The learning rate in use.
        lr: f32,
        /// The loss value.
        loss: f32,
    },
    /// The configuration or data do not fit the model.
    Invalid(String),
    /// `on_step` asked to stop (e.g. on Ctrl-C) during this epoch (1-based).
    Interrupted {
        /// The epoch that was cut short.
        epoch: usize,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::NonFinite {
                epoch,
                step,
                lr,
                loss,
            } => write!(
                f,
                "loss became {loss} at epoch {epoch}, step {step} (learning rate {lr}); training stopped, try a lower learning rate"
            ),
            TrainError::Invalid(msg) => f.write_str(msg),
            TrainError::Interrupted { epoch } => write!(f, "interrupted during epoch {epoch}"),
        }
    }
}

impl std::error::Error for TrainError {}

/// Settings of [`Sequential::fit`].
#[derive(Clone, Debug)]
pub struct FitConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per step (the last step of an epoch may be smaller, as in Keras).
    pub batch_size: usize,
    /// Seed of the per-epoch shuffle.
    pub seed: u64,
    /// Shuffle the training data before each epoch.
    pub shuffle: bool,
}

impl Default for FitConfig {
    fn default() -> FitConfig {
        FitConfig {
            epochs: 5,
            batch_size: 128,
            seed: 0,
            shuffle: true,
        }
    }
}

/// Metrics of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// Mean training loss over the epoch's steps (weighted by batch size).
    pub loss: f32,
    /// Training accuracy over the epoch.
    pub accuracy: f32,
    /// Loss on the validation data, if any.
    pub val_loss: Option<f32>,
    /// Accuracy on the validation data, if any.
    pub val_accuracy: Option<f32>,
    /// Wall time of the epoch's training steps, in seconds (validation excluded).
    pub seconds: f64,
}

/// Per-epoch metrics of a fit.
pub type History = Vec<EpochLog>;

/// What [`Sequential::fit`] reports after each step.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Running mean loss of this epoch.
    pub loss: f32,
    /// Running accuracy of this epoch.
    pub accuracy: f32,
    /// Seconds since the epoch started.
    pub seconds: f64,
}

/// Buffers for one batch size, made once and reused for every step: activations and
/// gradients in two sets (one for up to `batch` rows, one for up to `batch / 2`) so that
/// training and inference can run the two halves of a batch side by side, one per thread,
/// and the gathered batch with the gradient of its first layer, which the halves write in
/// two parts and the weight-gradient step reads whole.
pub struct Workspace {
    batch: usize,
    parts: [Buffers; 2],
    /// The gathered batch (`batch x input_dim`), sized on the first training step.
    x: Vec<f32>,
    /// Its labels.
    y: Vec<u32>,
    /// d(loss)/d(first layer's pre-activation) for the whole batch (`batch x units`).
    dz0: Vec<f32>,
}

/// Activations of every layer, the output gradient and the parameter gradients, for up to
/// `batch` rows.
struct Buffers {
    acts: Vec<Vec<f32>>,
    dz: Vec<f32>,
    da: Vec<f32>,
    pred: Vec<u32>,
    grads: Vec<f32>,
}

/// A stack of dense layers, Keras `Sequential`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential {
    input_dim: usize,
    layers: Vec<Layer>,
    params: Vec<f32>,
    loss: Loss,
}

impl Sequential {
    /// Builds the model for inputs of `input_dim` features, with Glorot-uniform kernels
    /// (`U(±sqrt(6 / (in + out)))`, as Keras) and zero biases, from `seed`.
    pub fn new(
        input_dim: usize,
        layers: &[Dense],
        loss: Loss,
        seed: u64,
    ) -> Result<Sequential, TrainError> {
        let mut m = Sequential::zeros(input_dim, layers, loss)?;
        let mut rng = Rng::new(seed);
        for l in &m.layers {
            let limit = (6.0 / (l.in_dim + l.out_dim) as f32).sqrt();
            for w in &mut m.params[l.w_off..l.b_off] {
                *w = rng.uniform(-limit, limit);
            }
        }
        Ok(m)
    }

    /// The same architecture with every parameter zero (for loading weights into).
    pub fn zeros(input_dim: usize, layers: &[Dense], loss: Loss) -> Result<Sequential, TrainError> {
        if input_dim == 0 {
            return Err(TrainError::Invalid("the input has 0 features".into()));
        }
        if layers.is_empty() {
            return Err(TrainError::Invalid(
                "a model needs at least one layer".into(),
            ));
        }
        let mut built = Vec::with_capacity(layers.len());
        let (mut in_dim, mut off) = (input_dim, 0);
        for (i, d) in layers.iter().enumerate() {
            if d.units == 0 {
                return Err(TrainError::Invalid(format!("layer {i} has 0 units")));
            }
            if d.act == Act::Softmax && i + 1 != layers.len() {
                return Err(TrainError::Invalid(format!(
                    "softmax is only supported on the last layer (layer {i})"
                )));
            }
            let too_big = || TrainError::Invalid(format!("layer {i} overflows the address space"));
            let w_off = off;
            let b_off = in_dim
                .checked_mul(d.units)
                .and_then(|w| w.checked_add(w_off))
                .ok_or_else(too_big)?;
            off = b_off.checked_add(d.units).ok_or_else(too_big)?;
            built.push(Layer {
                in_dim,
                out_dim: d.units,
                act: d.act,
                w_off,
                b_off,
            });
            in_dim = d.units;
        }
        Ok(Sequential {
            input_dim,
            layers: built,
            params: vec![0.0; off],
            loss,
        })
    }

    /// Input features.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }
    /// Output width (classes).
    pub fn output_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_dim)
    }
    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }
    /// All parameters, flat (see the module docs for the layout).
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// All parameters, mutable.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
    /// Layer `i`'s kernel, `(in_dim, out_dim)` row-major.
    pub fn kernel(&self, i: usize) -> &[f32] {
        let l = &self.layers[i];
        &self.params[l.w_off..l.b_off]
    }
    /// Layer `i`'s bias.
    pub fn bias(&self, i: usize) -> &[f32] {
        let l = &self.layers[i];
        &self.params[l.b_off..l.b_off + l.out_dim]
    }

    /// Buffers for batches of up to `batch` examples.
    pub fn workspace(&self, batch: usize) -> Workspace {
        Workspace {
            batch,
            parts: [self.buffers(batch), self.buffers(batch / 2)],
            x: Vec::new(),
            y: Vec::new(),
            dz0: Vec::new(),
        }
    }

    fn buffers(&self, batch: usize) -> Buffers {
        let widest = self.layers.iter().map(|l| l.out_dim).max().unwrap_or(0);
        Buffers {
            acts: self
                .layers
                .iter()
                .map(|l| vec![0.0; batch * l.out_dim])
                .collect(),
            dz: vec![0.0; batch * widest],
            da: vec![0.0; batch * widest],
            pred: vec![0; batch],
            // Sized on the first backward pass: inference never needs them.
            grads: Vec::new(),
        }
    }

    /// Forward pass of `rows` examples; the last layer's buffer holds its pre-softmax logits
    /// when the activation is softmax (the loss or `predict` applies it). With `sparse` the
    /// first layer reads `x` through the sparse-input kernel (see [`sparse_input`]).
    fn forward(&self, x: &[f32], rows: usize, sparse: bool, ws: &mut Buffers) {
        for (i, l) in self.layers.iter().enumerate() {
            let (before, rest) = ws.acts.split_at_mut(i);
            let input = if i == 0 {
                x
            } else {
                &before[i - 1][..rows * l.in_dim]
            };
            let act = if l.act == Act::Relu {
                Activation::Relu
            } else {
                Activation::Identity
            };
            let layer = if i == 0 && sparse {
                kernels::sparse_dense_forward
            } else {
                kernels::dense_forward
            };
            layer(
                input,
                &self.params[l.w_off..l.b_off],
                &self.params[l.b_off..l.b_off + l.out_dim],
                &mut rest[0][..rows * l.out_dim],
                rows,
                l.in_dim,
                l.out_dim,
                act,
            );
        }
    }

    /// Loss of the forward pass in `ws` against `y`, writing d(loss)/d(last pre-activation)
    /// into `ws.dz`. Returns (mean loss, correct predictions).
    fn loss_and_grad(&self, y: &[u32], rows: usize, ws: &mut Buffers) -> (f32, usize) {
        let l = self.layers.last().expect("at least one layer");
        let cols = l.out_dim;
        let out = &mut ws.acts[self.layers.len() - 1][..rows * cols];
        kernels::argmax_rows(out, rows, cols, &mut ws.pred[..rows]);
        let correct = ws.pred[..rows]
            .iter()
            .zip(y)
            .filter(|(p, y)| p == y)
            .count();
        let dz = &mut ws.dz[..rows * cols];
        let loss = match self.loss {
            Loss::SparseCategoricalCrossentropy => {
                kernels::softmax_cross_entropy(out, y, dz, rows, cols)
            }
            Loss::MeanSquaredError => {
                if l.act == Act::Softmax {
                    kernels::softmax_rows(out, rows, cols);
                }
                let scale = 2.0 / (rows * cols) as f32;
                let mut total = 0.0f64;
                for ((o, g), &label) in out.chunks(cols).zip(dz.chunks_mut(cols)).zip(y) {
                    for (j, (&p, g)) in o.iter().zip(g.iter_mut()).enumerate() {
                        let e = p - if j == label as usize { 1.0 } else { 0.0 };
                        total += (e * e) as f64;
                        *g = scale * e;
                    }
                    if l.act == Act::Softmax {
                        // Through the softmax Jacobian: dz_i = p_i (g_i - sum_j g_j p_j).
                        let dot: f32 = o.iter().zip(g.iter()).map(|(p, g)| p * g).sum();
                        for (g, &p) in g.iter_mut().zip(o) {
                            *g = p * (*g - dot);
                        }
                    }
                }
                if l.act == Act::Relu {
                    kernels::relu_backward(dz, out);
                }
                (total / (rows * cols) as f64) as f32
            }
        };
        (loss, correct)
    }

    /// Backward pass from `ws.dz` (gradient of the last pre-activation) into `ws.grads`; with
    /// `sparse` the first layer's weight gradient goes through the sparse-input kernel. With
    /// `dz0`, the first layer's weight gradient is left to the caller: the gradient of its
    /// pre-activation is written into `dz0` instead (`rows x units`), and only its bias
    /// gradient into `ws.grads`.
    fn backward(
        &self,
        x: &[f32],
        rows: usize,
        sparse: bool,
        ws: &mut Buffers,
        mut dz0: Option<&mut [f32]>,
    ) {
        let Buffers {
            acts,
            dz,
            da,
            grads,
            ..
        } = ws;
        for (i, l) in self.layers.iter().enumerate().skip(1).rev() {
            let input = &acts[i - 1][..rows * l.in_dim];
            let g = &dz[..rows * l.out_dim];
            // dW = inputᵀ · dz  (in_dim x out_dim), db = column sums of dz.
            kernels::sgemm(
                Transpose::Yes,
                Transpose::No,
                l.in_dim,
                l.out_dim,
                rows,
                1.0,
                input,
                l.in_dim,
                g,
                l.out_dim,
                0.0,
                &mut grads[l.w_off..l.b_off],
                l.out_dim,
            );
            kernels::col_sums(g, rows, l.out_dim, &mut grads[l.b_off..l.b_off + l.out_dim]);
            // d(input) = dz · Wᵀ, then through the previous layer's relu; the first layer's
            // goes straight to the caller's buffer if it gave one.
            let to_caller = i == 1 && dz0.is_some();
            let di = match dz0.as_deref_mut() {
                Some(d) if i == 1 => &mut d[..rows * l.in_dim],
                _ => &mut da[..rows * l.in_dim],
            };
            kernels::sgemm(
                Transpose::No,
                Transpose::Yes,
                rows,
                l.in_dim,
                l.out_dim,
                1.0,
                g,
                l.out_dim,
                &self.params[l.w_off..l.b_off],
                l.out_dim,
                0.0,
                di,
                l.in_dim,
            );
            if self.layers[i - 1].act == Act::Relu {
                kernels::relu_backward(di, input);
            }
            if !to_caller {
                std::mem::swap(dz, da);
            }
        }
        let l = &self.layers[0];
        let n0 = rows * l.out_dim;
        let g = match dz0 {
            Some(d) => {
                if self.layers.len() == 1 {
                    d[..n0].copy_from_slice(&dz[..n0]);
                }
                &d[..n0]
            }
            None => {
                first_weight_grad(
                    &x[..rows * l.in_dim],
                    &dz[..n0],
                    (rows, l.in_dim, l.out_dim),
                    sparse,
                    0..l.in_dim,
                    &mut grads[l.w_off..l.b_off],
                );
                &dz[..n0]
            }
        };
        // No gradient with respect to the data is needed.
        kernels::col_sums(g, rows, l.out_dim, &mut grads[l.b_off..l.b_off + l.out_dim]);
    }

    /// Loss and parameter gradients of one batch (`rows <= ws` batch size) into `ws`; returns
    /// (mean loss, correct predictions). The gradients are in `grads(ws)`.
    pub fn compute_gradients(
        &self,
        x: &[f32],
        y: &[u32],
        rows: usize,
        ws: &mut Workspace,
    ) -> (f32, usize) {
        assert!(
            rows <= ws.batch,
            "compute_gradients: {rows} rows but the workspace holds {}",
            ws.batch
        );
        assert!(
            x.len() >= rows * self.input_dim && y.len() >= rows,
            "compute_gradients: x or y too short for {rows} rows"
        );
        let sparse = sparse_input(&x[..rows * self.input_dim], self.input_dim);
        self.gradients_scaled(x, y, rows, 1.0, sparse, &mut ws.parts[0], None)
    }

    /// Loss and gradients of a batch of `rows` examples computed as two halves side by side,
    /// one per thread with every kernel kept on its thread: far fewer hand-offs between
    /// threads than splitting each kernel of a step. Each half gathers its rows into its part
    /// of `ws.x` and scales its loss gradient by its share of the batch, so that the batch's
    /// gradient of every parameter after the first layer's kernel is the sum of the two
    /// parts' `grads`; the first layer's kernel gradient is left to [`Self::apply_step`],
    /// from the whole batch's `ws.x` and `ws.dz0`. The split is the same whatever the thread
    /// count, so results do not depend on it. Returns (mean loss, correct predictions).
    fn batch_gradients(
        &self,
        data: &Dataset,
        idx: &[usize],
        sparse: bool,
        ws: &mut Workspace,
        pair: &Pair,
    ) -> (f32, usize) {
        let rows = idx.len();
        let split = rows.div_ceil(2);
        let (f, u) = (self.input_dim, self.layers[0].out_dim);
        let batch = ws.batch;
        for (v, len) in [(&mut ws.x, batch * f), (&mut ws.dz0, batch * u)] {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        ws.y.resize(batch.max(ws.y.len()), 0);
        let Workspace {
            parts: [wa, wb],
            x,
            y,
            dz0,
            ..
        } = ws;
        let half =
            |idx: &[usize], w: &mut Buffers, x: &mut [f32], y: &mut [u32], dz0: &mut [f32]| {
                if idx.is_empty() {
                    return (0.0, 0);
                }
                kernels::serial(|| {
                    for (r, &i) in idx.iter().enumerate() {
                        x[r * f..(r + 1) * f].copy_from_slice(&data.x[i * f..(i + 1) * f]);
                        y[r] = data.y[i];
                    }
                    let n = idx.len();
                    let share = n as f32 / rows as f32;
                    self.gradients_scaled(x, y, n, share, sparse, w, Some(dz0))
                })
            };
        let (xa, xb) = x[..rows * f].split_at_mut(split * f);
        let (ya, yb) = y[..rows].split_at_mut(split);
        let (da, db) = dz0[..rows * u].split_at_mut(split * u);
        let ((la, ca), (lb, cb)) = pair.join(
            || half(&idx[..split], wa, xa, ya, da),
            || half(&idx[split..], wb, xb, yb, db),
        );
        let loss = (la * split as f32 + lb * (rows - split) as f32) / rows as f32;
        (loss, ca + cb)
    }

    /// The optimiser step after [`Self::batch_gradients`] of `rows` examples: the first
    /// layer's kernel gradient is computed from the whole batch in two blocks of rows, one per
    /// thread, each applied to the weights right after it is computed (and so without a
    /// second pass over a gradient buffer as large as the weights); the other parameters take
    /// the sum of the two halves' gradients. The blocks are the same whatever the thread
    /// count, so results do not depend on it.
    fn apply_step(
        &mut self,
        state: &mut OptState,
        rows: usize,
        (sparse, mid): (bool, usize),
        ws: &mut Workspace,
        pair: &Pair,
    ) {
        let l = self.layers[0];
        let (f, u) = (l.in_dim, l.out_dim);
        let Workspace {
            parts: [wa, wb],
            x,
            dz0,
            ..
        } = ws;
        let (x, dz0) = (&x[..rows * f], &dz0[..rows * u]);
        let more = (rows > 1).then_some(&wb.grads[..]);
        // The first layer's kernel is params[..l.b_off] (w_off is 0), row p at p * u.
        let grad_of = |range: std::ops::Range<usize>, g: &mut [f32]| {
            let r = range.start / u..range.end / u;
            first_weight_grad(x, dz0, (rows, f, u), sparse, r, g);
        };
        state.step_split(
            &mut self.params,
            &mut wa.grads,
            l.b_off,
            mid * u,
            more,
            grad_of,
            pair,
        );
    }

    /// Loss and gradients of `rows` examples that are the fraction `share` of a batch, with
    /// the first layer's kernels chosen by the caller:
    /// the gradients (not the returned mean loss) are scaled by `share`, so that the halves of
    /// a batch add up to the batch's gradient. With `dz0`, the first layer's kernel gradient
    /// is left to the caller (see [`Self::backward`]).
    #[allow(clippy::too_many_arguments)]
    fn gradients_scaled(
        &self,
        x: &[f32],
        y: &[u32],
        rows: usize,
        share: f32,
        sparse: bool,
        ws: &mut Buffers,
        dz0: Option<&mut [f32]>,
    ) -> (f32, usize) {
        self.forward(x, rows, sparse, ws);
        let r = self.loss_and_grad(&y[..rows], rows, ws);
        if share != 1.0 {
            let cols = self.output_dim();
            kernels::scale(share, &mut ws.dz[..rows * cols]);
        }
        ws.grads.resize(self.params.len(), 0.0);
        self.backward(x, rows, sparse, ws, dz0);
        r
    }

    /// The parameter gradients left in `ws` by [`Sequential::compute_gradients`] (empty
    /// before the first call).
    pub fn grads(ws: &Workspace) -> &[f32] {
        &ws.parts[0].grads
    }

    /// Trains on `train` (and reports `val` each epoch, if given) with `opt`, calling
    /// `on_step` after every step (returning `false` stops with [`TrainError::Interrupted`])
    /// and `on_epoch` after every epoch (which may, for instance, keep a checkpoint). Stops
    /// with [`TrainError::NonFinite`] as soon as a loss is NaN or infinite, before applying
    /// that step's update. Uses the current rayon pool (see the module notes on threads).
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: Option<&Dataset>,
        cfg: &FitConfig,
        opt: Optimizer,
        mut on_step: impl FnMut(&Progress) -> bool,
        mut on_epoch: impl FnMut(&Sequential, &EpochLog),
    ) -> Result<History, TrainError> {
        self.check_data(train)?;
        if let Some(v) = val {
            self.check_data(v)?;
        }
        if cfg.batch_size == 0 || cfg.epochs == 0 {
            return Err(TrainError::Invalid(
                "batch size and epochs must be at least 1".into(),
            ));
        }
        if train.n == 0 {
            return Err(TrainError::Invalid("no training examples".into()));
        }
        let bs = cfg.batch_size.min(train.n);
        let mut ws = self.workspace(bs);
        let mut state = OptState::new(opt, self.params.len());
        let mut rng = Rng::new(cfg.seed);
        let steps = train.n.div_ceil(bs);
        let mut history = Vec::with_capacity(cfg.epochs);
        // Decided once for the data set rather than per batch: batches of one data set differ
        // little in density, and the scan would cost a pass over every batch.
        let sparse = sparse_input(&train.x, self.input_dim);
        let mid = if sparse {
            balanced_split(&train.x, train.n, self.input_dim)
        } else {
            self.input_dim / 2
        };
        for epoch in 1..=cfg.epochs {
            let order: Vec<usize> = if cfg.shuffle {
                permutation(train.n, &mut rng)
            } else {
                (0..train.n).collect()
            };
            let start = Instant::now();
            let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
            // The epoch's steps with a second thread at hand (the helper is given back before
            // validation, which splits its own work).
            with_pair(|pair| {
                for (step, idx) in order.chunks(bs).enumerate() {
                    let rows = idx.len();
                    let (loss, ok) = self.batch_gradients(train, idx, sparse, &mut ws, pair);
                    // A non-finite loss stops before the update, so the parameters stay those
                    // of the last step that produced finite outputs.
                    if !loss.is_finite() {
                        return Err(TrainError::NonFinite {
                            epoch,
                            step: step + 1,
                            lr: opt.lr(),
                            loss,
                        });
                    }
                    self.apply_step(&mut state, rows, (sparse, mid), &mut ws, pair);
                    loss_sum += loss as f64 * rows as f64;
                    correct += ok;
                    seen += rows;
                    let go_on = on_step(&Progress {
                        epoch,
                        epochs: cfg.epochs,
                        step: step + 1,
                        steps,
                        loss: (loss_sum / seen as f64) as f32,
                        accuracy: correct as f32 / seen as f32,
                        seconds: start.elapsed().as_secs_f64(),
                    });
                    if !go_on {
                        return Err(TrainError::Interrupted { epoch });
                    }
                }
                Ok(())
            })?;
            let seconds = start.elapsed().as_secs_f64();
            let (val_loss, val_accuracy) = match val {
                Some(v) if v.n > 0 => {
                    let (l, a) = self.evaluate(v);
                    (Some(l), Some(a))
                }
                _ => (None, None),
            };
            let log = EpochLog {
                loss: (loss_sum / seen as f64) as f32,
                accuracy: correct as f32 / seen as f32,
                val_loss,
                val_accuracy,
                seconds,
            };
            on_epoch(self, &log);
            history.push(log);
        }
        Ok(history)
    }

    fn check_data(&self, d: &Dataset) -> Result<(), TrainError> {
        if d.features != self.input_dim {
            return Err(TrainError::Invalid(format!(
                "the data has {} features per example, the model takes {}",
                d.features, self.input_dim
            )));
        }
        if d.classes > self.output_dim() {
            return Err(TrainError::Invalid(format!(
                "the data has {} classes, the model outputs {}",
                d.classes,
                self.output_dim()
            )));
        }
        Ok(())
    }

    /// Rows per chunk in evaluate/predict: big enough for full-speed sgemm, small enough to
    /// keep activations in cache-friendly sizes.
    const INFER_BATCH: usize = 2048;

    /// Mean loss and accuracy over `data`.
    ///
    /// # Panics
    /// If the data's feature count differs from the model's input.
    pub fn evaluate(&self, data: &Dataset) -> (f32, f32) {
        assert_eq!(
            data.features, self.input_dim,
            "evaluate: feature count differs from the model's input"
        );
        if data.n == 0 {
            return (0.0, 0.0);
        }
        let bs = Self::INFER_BATCH.min(data.n);
        let mut ws = self.workspace(bs);
        let f = self.input_dim;
        let (mut loss, mut correct) = (0f64, 0usize);
        for start in (0..data.n).step_by(bs) {
            let rows = bs.min(data.n - start);
            let x = &data.x[start * f..(start + rows) * f];
            let y = &data.y[start..start + rows];
            let h = self.infer_halves(x, rows, &mut ws);
            let [wa, wb] = &mut ws.parts;
            for (w, y) in [(wa, &y[..h]), (wb, &y[h..])] {
                if !y.is_empty() {
                    let (l, ok) = self.loss_and_grad(y, y.len(), w);
                    loss += l as f64 * y.len() as f64;
                    correct += ok;
                }
            }
        }
        (
            (loss / data.n as f64) as f32,
            correct as f32 / data.n as f32,
        )
    }

    /// Outputs for `rows` examples (`x` is `rows x input_dim`): probabilities when the last
    /// layer is softmax, else the last layer's activations; `rows x output_dim` row-major.
    ///
    /// # Panics
    /// If `x` has fewer than `rows * input_dim` elements.
    pub fn predict(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = vec![0.0; rows * self.output_dim()];
        let mut ws = self.workspace(Self::INFER_BATCH.min(rows));
        self.predict_into(x, rows, &mut ws, &mut out);
        out
    }

    /// [`Sequential::predict`] into `out` with a caller-held workspace (no allocation).
    ///
    /// # Panics
    /// If `x` or `out` is too short, or the workspace was made for 0 rows while `rows > 0`.
    pub fn predict_into(&self, x: &[f32], rows: usize, ws: &mut Workspace, out: &mut [f32]) {
        let (f, c) = (self.input_dim, self.output_dim());
        assert!(
            x.len() >= rows * f,
            "predict: x has {} elements, needs {}",
            x.len(),
            rows * f
        );
        assert!(
            out.len() >= rows * c,
            "predict: out has {} elements, needs {}",
            out.len(),
            rows * c
        );
        let last = self.layers.len() - 1;
        for start in (0..rows).step_by(ws.batch.max(1)) {
            let n = ws.batch.min(rows - start);
            let h = self.infer_halves(&x[start * f..(start + n) * f], n, ws);
            let o = &mut out[start * c..(start + n) * c];
            o[..h * c].copy_from_slice(&ws.parts[0].acts[last][..h * c]);
            o[h * c..].copy_from_slice(&ws.parts[1].acts[last][..(n - h) * c]);
            if self.layers[last].act == Act::Softmax {
                kernels::softmax_rows(o, n, c);
            }
        }
    }

    /// The forward pass of `n <= ws.batch` rows of `x`: rows `..h` into `ws.parts[0]` and
    /// rows `h..` into `ws.parts[1]`, the two halves side by side, one per thread with every
    /// kernel kept on its thread (as in training); below [`INFER_HALVES_MIN_ROWS`] rows all in
    /// `ws.parts[0]`. Returns `h`.
    fn infer_halves(&self, x: &[f32], n: usize, ws: &mut Workspace) -> usize {
        let f = self.input_dim;
        let sparse = sparse_input(&x[..n * f], f);
        let [wa, wb] = &mut ws.parts;
        if n < INFER_HALVES_MIN_ROWS {
            self.forward(x, n, sparse, wa);
            return n;
        }
        let h = n.div_ceil(2);
        let part = |w: &mut Buffers, rows: std::ops::Range<usize>| {
            kernels::serial(|| {
                self.forward(&x[rows.start * f..rows.end * f], rows.len(), sparse, w)
            })
        };
        rayon::join(|| part(wa, 0..h), || part(wb, h..n));
        h
    }
}

/// Below this many rows, evaluate and predict run a chunk in one piece: one image's latency
/// would pay for waking a second thread.
const INFER_HALVES_MIN_ROWS: usize = 64;

/// Rows `rows` of the first layer's kernel gradient `xᵀ·dz` into `dw` (`rows.len() x
/// units`), from `x` (`batch x in_dim`) and `dz` (`batch x units`), dims `(batch, in_dim,
/// units)`: through the sparse-input kernel with `sparse`, else sgemm on those columns of
/// `x`.
fn first_weight_grad(
    x: &[f32],
    dz: &[f32],
    (batch, in_dim, units): (usize, usize, usize),
    sparse: bool,
    rows: std::ops::Range<usize>,
    dw: &mut [f32],
) {
    if sparse {
        kernels::sparse_weight_grad_rows(x, dz, dw, batch, in_dim, units, rows);
    } else {
        let a = &x[rows.start..];
        let (t, n) = (Transpose::Yes, Transpose::No);
        let m = rows.len();
        kernels::sgemm(
            t, n, m, units, batch, 1.0, a, in_dim, dz, units, 0.0, dw, units,
        );
    }
}

/// Where to split the `f` columns of the `n x f` sparse input `x` so that each side holds
/// about half of the nonzeros, counted on up to 4,096 evenly spaced rows: the first layer's
/// weight gradient is computed in two blocks of rows (columns of `x`), one per thread, and
/// its work follows the nonzeros (MNIST's lower half holds 53% of them). Any split gives the
/// same results.
fn balanced_split(x: &[f32], n: usize, f: usize) -> usize {
    let step = n.div_ceil(4096).max(1);
    let mut count = vec![0usize; f];
    for r in (0..n).step_by(step) {
        for (c, &v) in count.iter_mut().zip(&x[r * f..(r + 1) * f]) {
            *c += (v != 0.0) as usize;
        }
    }
    let total: usize = count.iter().sum();
    let mut seen = 0;
    for (c, &k) in count.iter().enumerate() {
        if 2 * (seen + k) > total {
            // Whichever of c and c + 1 leaves the halves closer.
            return if 2 * seen + k > total { c } else { c + 1 };
        }
        seen += k;
    }
    f / 2
}

/// Whether rows of `f` features this sparse are cheaper through the sparse-input kernels
/// than through sgemm (at most [`kernels::params::SPARSE_MAX_DENSITY`] of the entries
/// nonzero), judged on at most [`DENSITY_SAMPLE_ROWS`] evenly spaced rows: the density of a
/// data set shows in a few hundred rows, and scanning every row took 4% of a pass of
/// inference over MNIST's test set.
fn sparse_input(x: &[f32], f: usize) -> bool {
    let rows = x.len() / f.max(1);
    let step = rows.div_ceil(DENSITY_SAMPLE_ROWS).max(1);
    let (mut sum, mut seen) = (0.0, 0);
    for r in (0..rows).step_by(step) {
        sum += kernels::nonzero_fraction(&x[r * f..(r + 1) * f]);
        seen += 1;
    }
    seen > 0 && sum / seen as f64 <= kernels::params::SPARSE_MAX_DENSITY
}

/// Rows [`sparse_input`] looks at.
const DENSITY_SAMPLE_ROWS: usize = 256;

#[cfg(test)]
mod tests {
    use super::{balanced_split, sparse_input};

    #[test]
    fn sparse_input_judges_density_on_a_sample() {
        let f = 10;
        // 1,000 rows: 3 nonzeros in 10 (sparse) or 5 (dense), on every row.
        let rows = |k: usize| -> Vec<f32> {
            (0..1000 * f)
                .map(|i| if i % f < k { 1.0 } else { 0.0 })
                .collect()
        };
        assert!(sparse_input(&rows(3), f));
        assert!(!sparse_input(&rows(5), f));
        assert!(
            !sparse_input(&[], f),
            "no rows: dense, the kernels do nothing anyway"
        );
        assert!(sparse_input(&[0.0; 10], f));
    }

    #[test]
    fn balanced_split_halves_the_nonzeros() {
        let (n, f) = (10, 8);
        // Nonzeros only in columns 4..8, one per row in each: split after two of them.
        let mut x = vec![0.0f32; n * f];
        for r in 0..n {
            for c in 4..8 {
                x[r * f + c] = 1.0;
            }
        }
        assert_eq!(balanced_split(&x, n, f), 6);
        // Column 7 holds as many nonzeros as all the others.
        for r in 0..n {
            x[r * f..(r + 1) * f].copy_from_slice(&[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        }
        let s = balanced_split(&x, n, f);
        assert!(s == 2 || s == 7, "{s}");
        // No nonzeros: the middle.
        assert_eq!(balanced_split(&vec![0.0; n * f], n, f), 4);
        assert_eq!(balanced_split(&[], 0, f), 4);
    }
}
