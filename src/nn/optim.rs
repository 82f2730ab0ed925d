//! Optimisers with Keras's update rules and defaults, over flat parameter and gradient
//! buffers (one slot buffer per state variable, the same length as the parameters).

use super::pair::Pair;
use crate::kernels;
use std::ops::Range;

/// An optimiser and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent, Keras `SGD`: `v = momentum·v - lr·g`; `p += v`, or with
    /// Nesterov `p += momentum·v - lr·g`. With momentum 0: `p -= lr·g`.
    Sgd {
        /// Learning rate (Keras default 0.01).
        lr: f32,
        /// Momentum (0 for plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Keras `RMSprop` (not centred, no momentum): `a = rho·a + (1 - rho)·g²`;
    /// `p -= lr·g / sqrt(a + epsilon)`.
    RmsProp {
        /// Learning rate (default 0.001).
        lr: f32,
        /// Decay of the squared-gradient average (default 0.9).
        rho: f32,
        /// Added under the square root (default 1e-7).
        epsilon: f32,
    },
    /// Keras `Adam`: `m += (1 - b1)(g - m)`, `v += (1 - b2)(g² - v)`,
    /// `p -= lr·sqrt(1 - b2^t)/(1 - b1^t) · m / (sqrt(v) + epsilon)`.
    Adam {
        /// Learning rate (default 0.001).
        lr: f32,
        /// First-moment decay (default 0.9).
        beta1: f32,
        /// Second-moment decay (default 0.999).
        beta2: f32,
        /// Added to the denominator (default 1e-7).
        epsilon: f32,
    },
}

impl Optimizer {
    /// Keras defaults: SGD lr 0.01.
    pub fn sgd() -> Optimizer {
        Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.0,
            nesterov: false,
        }
    }
    /// SGD with momentum 0.9 (lr 0.01).
    pub fn momentum() -> Optimizer {
        Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.9,
            nesterov: false,
        }
    }
    /// Keras defaults: lr 0.001, rho 0.9, epsilon 1e-7.
    pub fn rmsprop() -> Optimizer {
        Optimizer::RmsProp {
            lr: 0.001,
            rho: 0.9,
            epsilon: 1e-7,
        }
    }
    /// Keras defaults: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7.
    pub fn adam() -> Optimizer {
        Optimizer::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::RmsProp { lr, .. }
            | Optimizer::Adam { lr, .. } => lr,
        }
    }

    /// The same optimiser with another learning rate.
    pub fn with_lr(mut self, new: f32) -> Optimizer {
        match &mut self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::RmsProp { lr, .. }
            | Optimizer::Adam { lr, .. } => *lr = new,
        }
        self
    }
}

/// An optimiser's state for one parameter buffer.
#[derive(Clone, Debug)]
pub struct OptState {
    /// The rule and hyper-parameters.
    pub opt: Optimizer,
    /// Velocity (SGD), squared-gradient average (RMSprop) or first moment (Adam).
    s1: Vec<f32>,
    /// Second moment (Adam only).
    s2: Vec<f32>,
    /// Steps taken.
    t: u64,
}

impl OptState {
    /// Fresh state (zero slots) for `len` parameters.
    pub fn new(opt: Optimizer, len: usize) -> OptState {
        let s2 = if matches!(opt, Optimizer::Adam { .. }) {
            vec![0.0; len]
        } else {
            Vec::new()
        };
        OptState {
            opt,
            s1: vec![0.0; len],
            s2,
            t: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// One update of `params` from `grads`.
    ///
    /// # Panics
    /// If `params`, `grads` and the state differ in length.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(
            params.len(),
            grads.len(),
            "OptState::step: params and grads differ in length"
        );
        assert_eq!(
            params.len(),
            self.s1.len(),
            "OptState::step: state sized for another model"
        );
        self.t += 1;
        // The update kernels split themselves over rayon's threads.
        apply(self.opt, self.t, params, grads, &mut self.s1, &mut self.s2);
    }

    /// [`OptState::step`] with the gradient of `params[..head]` computed in two blocks,
    /// `..mid` and `mid..head`, each applied right after it is computed and the two side by
    /// side on the two threads of `pair` (`grad_of(range, g)` writes the gradient of
    /// `params[range]` into `g`, which is `grads[range]`): each block is still in cache when
    /// it is applied. The gradient of `params[head..]` is `grads[head..]`, plus `more[head..]`
    /// when given (left in `grads`). Every element is updated by itself, so results depend on
    /// neither the thread count nor `mid`.
    ///
    /// # Panics
    /// If the buffers and the state differ in length, or `mid > head`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn step_split(
        &mut self,
        params: &mut [f32],
        grads: &mut [f32],
        head: usize,
        mid: usize,
        more: Option<&[f32]>,
        grad_of: impl Fn(Range<usize>, &mut [f32]) + Sync,
        pair: &Pair,
    ) {
        let n = params.len();
        assert!(
            grads.len() == n && more.is_none_or(|m| m.len() == n) && self.s1.len() == n,
            "OptState::step_split: buffers of different lengths"
        );
        assert!(
            mid <= head && head <= n,
            "OptState::step_split: blocks out of range"
        );
        self.t += 1;
        let (opt, t) = (self.opt, self.t);
        let (p, p_tail) = params.split_at_mut(head);
        let (g, g_tail) = grads.split_at_mut(head);
        let (s1, s1_tail) = self.s1.split_at_mut(head);
        let (s2, s2_tail) = halve(&mut self.s2, head);
        let (p0, p1) = p.split_at_mut(mid);
        let (g0, g1) = g.split_at_mut(mid);
        let (s10, s11) = s1.split_at_mut(mid);
        let (s20, s21) = halve(s2, mid);
        let block = |range: Range<usize>, p: &mut [f32], g: &mut [f32], s1, s2| {
            kernels::serial(|| {
                grad_of(range, g);
                apply(opt, t, p, g, s1, s2);
            })
        };
        pair.join(
            || block(0..mid, p0, g0, s10, s20),
            || {
                block(mid..head, p1, g1, s11, s21);
                kernels::serial(|| {
                    if let Some(m) = more {
                        for (g, &m) in g_tail.iter_mut().zip(&m[head..]) {
                            *g += m;
                        }
                    }
                    apply(opt, t, p_tail, g_tail, s1_tail, s2_tail);
                });
            },
        );
    }
}

/// Splits a state slot at `mid`; an unused (empty) one stays empty in both parts.
fn halve(s: &mut [f32], mid: usize) -> (&mut [f32], &mut [f32]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(mid)
    }
}

/// One update of `params` by rule `opt` at step `t` (1-based), with state slots `s1`, `s2`.
fn apply(
    opt: Optimizer,
    t: u64,
    params: &mut [f32],
    grads: &[f32],
    s1: &mut [f32],
    s2: &mut [f32],
) {
    match opt {
        Optimizer::Sgd {
            lr,
            momentum,
            nesterov,
        } => kernels::sgd_update(params, grads, s1, lr, momentum, nesterov),
        Optimizer::RmsProp { lr, rho, epsilon } => {
            kernels::rmsprop_update(params, grads, s1, lr, rho, epsilon)
        }
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            epsilon,
        } => {
            let t = t as i32;
            let step = lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
            kernels::adam_update(params, grads, s1, s2, step, beta1, beta2, epsilon)
        }
    }
}
