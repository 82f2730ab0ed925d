//! Reverse-mode automatic differentiation: a [`Tape`] records operations on [`Var`]s as they
//! run, then [`Tape::gradient`] walks the record backwards — TensorFlow's `GradientTape`.
//!
//! ```
//! use mathblocks::autograd::Tape;
//! let tape = Tape::persistent();
//! let x = tape.watch(3.0);
//! let y = x.mul(&x)?; // y = x²
//! let z = y.mul(&y)?; // z = y²
//! assert_eq!(tape.gradient(&y, &x)?.item()?, 6.0); // 2x
//! assert_eq!(tape.gradient(&z, &x)?.item()?, 108.0); // 4x³
//! assert_eq!(tape.gradient(&z, &y)?.item()?, 18.0); // 2y
//! # Ok::<(), mathblocks::autograd::TapeError>(())
//! ```
//!
//! Operations: `add`, `sub`, `mul`, `div` (broadcasting, like [`Tensor`]'s), `matmul`, `relu`,
//! `exp`, `log`, `sum` and `mean` of all elements, and `softmax_cross_entropy` against integer
//! labels. Values are computed eagerly; the tape keeps each result and what it came from.

use crate::kernels::{self, Transpose};
use crate::tensor::{ShapeError, Tensor};
use std::cell::{Cell, RefCell};
use std::fmt;

/// What went wrong in a taped computation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapeError {
    /// Operand shapes do not fit the operation.
    Shape(ShapeError),
    /// A non-persistent tape was asked for a second gradient.
    Consumed,
    /// Two variables of different tapes were combined, or a gradient was asked of a variable
    /// of another tape.
    OtherTape,
    /// A label is not a valid class index for the logits.
    Label(String),
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::Shape(e) => e.fmt(f),
            TapeError::Consumed => f.write_str(
                "this tape has already computed a gradient; use Tape::persistent() for several",
            ),
            TapeError::OtherTape => f.write_str("the variables belong to different tapes"),
            TapeError::Label(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TapeError {}

impl From<ShapeError> for TapeError {
    fn from(e: ShapeError) -> TapeError {
        TapeError::Shape(e)
    }
}

/// How a recorded value was made; indices are positions on the tape.
#[derive(Clone, Debug)]
enum Op {
    Leaf,
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    MatMul(usize, usize),
    Relu(usize),
    Exp(usize),
    Log(usize),
    Sum(usize),
    Mean(usize),
    /// Mean cross-entropy of softmax(logits); keeps d(loss)/d(logits).
    SoftmaxCe(usize, Tensor),
}

struct Node {
    value: Tensor,
    op: Op,
}

/// A record of operations for reverse-mode differentiation. Non-persistent tapes ([`Tape::new`])
/// answer one [`Tape::gradient`] call; persistent ones ([`Tape::persistent`]) any number.
pub struct Tape {
    nodes: RefCell<Vec<Node>>,
    persistent: bool,
    used: Cell<bool>,
}

/// A value on a [`Tape`]: the result of [`Tape::watch`], [`Tape::constant`] or an operation.
#[derive(Clone, Copy)]
pub struct Var<'t> {
    tape: &'t Tape,
    id: usize,
}

impl fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var({}, {:?})", self.id, self.value())
    }
}

impl Default for Tape {
    fn default() -> Tape {
        Tape::new()
    }
}

impl Tape {
    /// A tape that answers one gradient query.
    pub fn new() -> Tape {
        Tape {
            nodes: RefCell::new(Vec::new()),
            persistent: false,
            used: Cell::new(false),
        }
    }

    /// A tape that answers any number of gradient queries.
    pub fn persistent() -> Tape {
        Tape {
            persistent: true,
            ..Tape::new()
        }
    }

    fn push(&self, value: Tensor, op: Op) -> Var<'_> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node { value, op });
        Var {
            tape: self,
            id: nodes.len() - 1,
        }
    }

    /// Records `value` (a tensor, or an `f32` for a scalar) as a variable to differentiate
    /// with respect to.
    pub fn watch(&self, value: impl Into<Tensor>) -> Var<'_> {
        self.push(value.into(), Op::Leaf)
    }

    /// Records an input. Gradients flow to constants too (they are leaves like watched
    /// values); the two names only say what the caller means.
    pub fn constant(&self, value: impl Into<Tensor>) -> Var<'_> {
        self.push(value.into(), Op::Leaf)
    }

    /// d(sum of `target`)/d(`source`), shaped like `source` (zeros if `target` does not depend
    /// on it). As TensorFlow, a non-scalar target is summed first.
    pub fn gradient(&self, target: &Var, source: &Var) -> Result<Tensor, TapeError> {
        if !std::ptr::eq(target.tape, self) || !std::ptr::eq(source.tape, self) {
            return Err(TapeError::OtherTape);
        }
        if !self.persistent && self.used.replace(true) {
            return Err(TapeError::Consumed);
        }
        let nodes = self.nodes.borrow();
        let mut grads: Vec<Option<Tensor>> = vec![None; target.id + 1];
        grads[target.id] = Some(Tensor::ones(nodes[target.id].value.shape()));
        for id in (0..=target.id).rev() {
            let Some(g) = grads[id].take() else {
                continue;
            };
            if id == source.id {
                return Ok(g);
            }
            let val = |i: usize| &nodes[i].value;
            let mut send = |to: usize, d: Tensor| -> Result<(), ShapeError> {
                // Broadcasting in the forward pass means summing back to the operand's shape.
                let d = if d.shape() == val(to).shape() {
                    d
                } else {
                    d.sum_to(val(to).shape())?
                };
                grads[to] = Some(match grads[to].take() {
                    Some(acc) => acc.add(&d)?,
                    None => d,
                });
                Ok(())
            };
            match &nodes[id].op {
                Op::Leaf => {}
                &Op::Add(a, b) => {
                    send(a, g.clone())?;
                    send(b, g)?;
                }
                &Op::Sub(a, b) => {
                    send(a, g.clone())?;
                    send(b, g.mul_scalar(-1.0))?;
                }
                &Op::Mul(a, b) => {
                    send(a, g.mul(val(b))?)?;
                    send(b, g.mul(val(a))?)?;
                }
                &Op::Div(a, b) => {
                    // d(a/b) = g/b da - g·a/b² db
                    send(a, g.div(val(b))?)?;
                    let db = g.mul(val(a))?.div(&val(b).mul(val(b))?)?;
                    send(b, db.mul_scalar(-1.0))?;
                }
                &Op::MatMul(a, b) => {
                    send(a, g.matmul_t(Transpose::No, val(b), Transpose::Yes)?)?;
                    send(b, val(a).matmul_t(Transpose::Yes, &g, Transpose::No)?)?;
                }
                &Op::Relu(a) => {
                    let mut d = g;
                    kernels::relu_backward(d.data_mut(), val(a).data());
                    send(a, d)?;
                }
                &Op::Exp(a) => send(a, g.mul(val(id))?)?,
                &Op::Log(a) => send(a, g.div(val(a))?)?,
                &Op::Sum(a) => send(a, Tensor::full(val(a).shape(), g.item()?))?,
                &Op::Mean(a) => {
                    let n = val(a).len() as f32;
                    send(a, Tensor::full(val(a).shape(), g.item()? / n))?
                }
                Op::SoftmaxCe(a, dlogits) => send(*a, dlogits.mul_scalar(g.item()?))?,
            }
        }
        Ok(Tensor::zeros(nodes[source.id].value.shape()))
    }
}

impl<'t> Var<'t> {
    /// The value computed for this variable (a copy).
    pub fn value(&self) -> Tensor {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    fn same_tape(&self, other: &Var) -> Result<(), TapeError> {
        if std::ptr::eq(self.tape, other.tape) {
            Ok(())
        } else {
            Err(TapeError::OtherTape)
        }
    }

    fn binary(
        &self,
        other: &Var,
        f: impl Fn(&Tensor, &Tensor) -> Result<Tensor, ShapeError>,
        op: fn(usize, usize) -> Op,
    ) -> Result<Var<'t>, TapeError> {
        self.same_tape(other)?;
        let v = {
            let nodes = self.tape.nodes.borrow();
            f(&nodes[self.id].value, &nodes[other.id].value)?
        };
        Ok(self.tape.push(v, op(self.id, other.id)))
    }

    fn unary(&self, f: impl Fn(&Tensor) -> Tensor, op: fn(usize) -> Op) -> Var<'t> {
        let v = f(&self.tape.nodes.borrow()[self.id].value);
        self.tape.push(v, op(self.id))
    }

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Var) -> Result<Var<'t>, TapeError> {
        self.binary(other, Tensor::add, Op::Add)
    }

    /// `self - other`, broadcasting.
    pub fn sub(&self, other: &Var) -> Result<Var<'t>, TapeError> {
        self.binary(other, Tensor::sub, Op::Sub)
    }

    /// `self * other` element-wise, broadcasting.
    pub fn mul(&self, other: &Var) -> Result<Var<'t>, TapeError> {
        self.binary(other, Tensor::mul, Op::Mul)
    }

    /// `self / other` element-wise, broadcasting.
    pub fn div(&self, other: &Var) -> Result<Var<'t>, TapeError> {
        self.binary(other, Tensor::div, Op::Div)
    }

    /// Matrix product of 2-d values.
    pub fn matmul(&self, other: &Var) -> Result<Var<'t>, TapeError> {
        self.binary(other, Tensor::matmul, Op::MatMul)
    }

    /// `max(x, 0)` element-wise (gradient 0 at 0, as the relu kernels).
    pub fn relu(&self) -> Var<'t> {
        self.unary(Tensor::relu, Op::Relu)
    }

    /// `e^x` element-wise.
    pub fn exp(&self) -> Var<'t> {
        self.unary(Tensor::exp, Op::Exp)
    }

    /// Natural logarithm element-wise.
    pub fn log(&self) -> Var<'t> {
        self.unary(Tensor::log, Op::Log)
    }

    /// Sum of all elements (a scalar).
    pub fn sum(&self) -> Var<'t> {
        self.unary(|t| Tensor::scalar(t.sum_all()), Op::Sum)
    }

    /// Mean of all elements (a scalar).
    pub fn mean(&self) -> Var<'t> {
        self.unary(|t| Tensor::scalar(t.mean_all()), Op::Mean)
    }

    /// Mean sparse categorical cross-entropy of `softmax(self)` against `labels`, where `self`
    /// is `(rows, classes)` logits — the loss of the seed's network, through
    /// [`kernels::softmax_cross_entropy`].
    pub fn softmax_cross_entropy(&self, labels: &[u32]) -> Result<Var<'t>, TapeError> {
        let (loss, dlogits) = {
            let nodes = self.tape.nodes.borrow();
            let logits = &nodes[self.id].value;
            let &[rows, cols] = logits.shape() else {
                return Err(ShapeError(format!(
                    "softmax_cross_entropy needs (rows, classes) logits, got shape {:?}",
                    logits.shape()
                ))
                .into());
            };
            if labels.len() != rows {
                return Err(ShapeError(format!(
                    "{} labels for logits of shape {:?}",
                    labels.len(),
                    logits.shape()
                ))
                .into());
            }
            if let Some(l) = labels.iter().find(|&&l| l as usize >= cols) {
                return Err(TapeError::Label(format!(
                    "label {l} is not below the {cols} classes of the logits"
                )));
            }
            let mut grad = Tensor::zeros(&[rows, cols]);
            let loss = if rows == 0 {
                0.0
            } else {
                kernels::softmax_cross_entropy(logits.data(), labels, grad.data_mut(), rows, cols)
            };
            (loss, grad)
        };
        Ok(self
            .tape
            .push(Tensor::scalar(loss), Op::SoftmaxCe(self.id, dlogits)))
    }
}
