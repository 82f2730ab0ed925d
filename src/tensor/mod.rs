//! `Tensor`: a shape plus a flat, row-major `Vec<f32>` — the NumPy arrays of the seed's
//! chapter, for exploring data and checking gradients interactively.
//!
//! Every operation that can meet a shape it cannot handle returns a [`ShapeError`] naming the
//! shapes involved, because shapes here often come from data of unknown shape. Operations copy:
//! a tensor owns its data and there are no views (slices, transposes and reshapes allocate).
//!
//! - shape: [`Tensor::reshape`], [`Tensor::transpose`], [`Tensor::permute`], slicing with
//!   [`s!`](crate::s) and [`Tensor::slice`], [`Tensor::batches`] along axis 0;
//! - element-wise ([`Tensor::add`], [`Tensor::mul`], [`Tensor::maximum`], ...) with NumPy
//!   broadcasting, unary maps and scalar operations;
//! - [`Tensor::matmul`] through the sgemm kernel and [`Tensor::tensordot`] over given axes;
//! - reductions along an axis or over everything (`sum`, `mean`, `max`, `argmax`).

mod broadcast;
mod convert;
mod linalg;
mod reduce;
mod slice;

pub use broadcast::broadcast_shape;
pub use slice::{Batches, Span};

use crate::rng::Rng;
use std::fmt;

/// An n-dimensional array of `f32`: `shape` (outermost axis first) and the elements in
/// row-major order. A 0-d tensor (shape `[]`) is a scalar holding one element.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// A shape that does not fit an operation; the message names the shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// `Err(ShapeError(format!(...)))`.
macro_rules! shape_err {
    ($($t:tt)*) => { Err($crate::tensor::ShapeError(format!($($t)*))) };
}
pub(crate) use shape_err;

/// The number of elements of `shape`, or an error if it overflows `usize`.
fn count(shape: &[usize]) -> Result<usize, ShapeError> {
    match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
        Some(n) => Ok(n),
        None => shape_err!("shape {shape:?} has more elements than fit in memory"),
    }
}

/// Row-major strides of `shape`, in elements.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Tensor {
    /// A tensor of `shape` holding `data` (row-major).
    ///
    /// Errors if `data.len()` is not the product of `shape`.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Tensor, ShapeError> {
        if count(shape)? != data.len() {
            return shape_err!(
                "shape {shape:?} needs {} elements, got {}",
                count(shape)?,
                data.len()
            );
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A 0-d tensor holding `v`.
    pub fn scalar(v: f32) -> Tensor {
        Tensor {
            shape: vec![],
            data: vec![v],
        }
    }

    /// A tensor of `shape` with every element `v`.
    ///
    /// # Panics
    /// If the element count overflows `usize`.
    pub fn full(shape: &[usize], v: f32) -> Tensor {
        let n = count(shape).expect("Tensor::full: shape too large");
        Tensor {
            shape: shape.to_vec(),
            data: vec![v; n],
        }
    }

    /// Zeros of `shape` (see [`Tensor::full`]).
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// Ones of `shape` (see [`Tensor::full`]).
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// Uniform random elements in `[0, 1)`, like `np.random.random(shape)`.
    pub fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        t.data.iter_mut().for_each(|v| *v = rng.uniform(0.0, 1.0));
        t
    }

    /// A 1-d tensor of `0, 1, ..., n - 1`.
    pub fn arange(n: usize) -> Tensor {
        Tensor {
            shape: vec![n],
            data: (0..n).map(|i| i as f32).collect(),
        }
    }

    /// The rank: number of axes (0 for a scalar).
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The extent of each axis, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no elements (some axis is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The elements, giving up the shape.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The value of a tensor with exactly one element (a scalar, or shape `[1]`, `[1, 1]`...).
    pub fn item(&self) -> Result<f32, ShapeError> {
        match self.data.as_slice() {
            [v] => Ok(*v),
            _ => shape_err!(
                "item() needs a tensor of one element, shape {:?} has {}",
                self.shape,
                self.len()
            ),
        }
    }

    /// The element at `index` (one coordinate per axis).
    pub fn get(&self, index: &[usize]) -> Result<f32, ShapeError> {
        if index.len() != self.ndim() || index.iter().zip(&self.shape).any(|(&i, &d)| i >= d) {
            return shape_err!("index {index:?} is outside shape {:?}", self.shape);
        }
        let off: usize = index
            .iter()
            .zip(strides(&self.shape))
            .map(|(i, s)| i * s)
            .sum();
        Ok(self.data[off])
    }

    /// The same elements under a new shape with the same element count (`x.reshape((60000,
    /// 28 * 28))`). One axis may be given as `usize::MAX` to be inferred, like NumPy's `-1`.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, ShapeError> {
        self.clone().into_shape(shape)
    }

    /// [`Tensor::reshape`] without copying the elements.
    pub fn into_shape(self, shape: &[usize]) -> Result<Tensor, ShapeError> {
        let mut shape = shape.to_vec();
        let inferred: Vec<usize> = (0..shape.len())
            .filter(|&i| shape[i] == usize::MAX)
            .collect();
        if inferred.len() > 1 {
            return shape_err!("reshape: only one axis can be inferred, got {shape:?}");
        }
        if let Some(&i) = inferred.first() {
            let known = shape
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .try_fold(1usize, |a, (_, &d)| a.checked_mul(d))
                .unwrap_or(0);
            if known == 0 || !self.len().is_multiple_of(known) {
                return shape_err!(
                    "reshape: cannot infer an axis of {shape:?} for {:?} ({} elements)",
                    self.shape,
                    self.len()
                );
            }
            shape[i] = self.len() / known;
        }
        if count(&shape)? != self.len() {
            return shape_err!(
                "cannot reshape {:?} ({} elements) to {shape:?} ({} elements)",
                self.shape,
                self.len(),
                count(&shape)?
            );
        }
        Ok(Tensor {
            shape,
            data: self.data,
        })
    }

    /// The tensor with its axes reordered: axis `i` of the result is axis `axes[i]` of `self`
    /// (NumPy's `np.transpose(x, axes)`).
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor, ShapeError> {
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        if axes.len() != nd
            || axes
                .iter()
                .any(|&a| a >= nd || std::mem::replace(&mut seen[a], true))
        {
            return shape_err!(
                "permute: {axes:?} is not a permutation of the {nd} axes of {:?}",
                self.shape
            );
        }
        let shape: Vec<usize> = axes.iter().map(|&a| self.shape[a]).collect();
        let src = strides(&self.shape);
        let from: Vec<usize> = axes.iter().map(|&a| src[a]).collect();
        let mut data = Vec::with_capacity(self.len());
        for_each_offset(&shape, &from, |off| data.push(self.data[off]));
        Ok(Tensor { shape, data })
    }

    /// The tensor with axes `a0` and `a1` swapped (`transpose(0, 1)` of a matrix is its
    /// transpose).
    pub fn transpose(&self, a0: usize, a1: usize) -> Result<Tensor, ShapeError> {
        let nd = self.ndim();
        if a0 >= nd || a1 >= nd {
            return shape_err!(
                "transpose: axes {a0} and {a1} of shape {:?} ({nd} axes)",
                self.shape
            );
        }
        let mut axes: Vec<usize> = (0..nd).collect();
        axes.swap(a0, a1);
        self.permute(&axes)
    }

    /// `f` applied to every element.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// `max(x, 0)` element-wise.
    pub fn relu(&self) -> Tensor {
        self.map(|v| v.max(0.0))
    }

    /// `e^x` element-wise.
    pub fn exp(&self) -> Tensor {
        self.map(f32::exp)
    }

    /// Natural logarithm element-wise (NaN below 0, -inf at 0, as NumPy).
    pub fn log(&self) -> Tensor {
        self.map(f32::ln)
    }

    /// `x + s` element-wise.
    pub fn add_scalar(&self, s: f32) -> Tensor {
        self.map(|v| v + s)
    }

    /// `x * s` element-wise.
    pub fn mul_scalar(&self, s: f32) -> Tensor {
        self.map(|v| v * s)
    }

    /// `x / s` element-wise.
    pub fn div_scalar(&self, s: f32) -> Tensor {
        self.map(|v| v / s)
    }
}

/// Calls `f` with the source offset of every element of `shape`, in row-major order, where
/// `from[i]` is the source stride of axis i (0 for a broadcast axis).
fn for_each_offset(shape: &[usize], from: &[usize], mut f: impl FnMut(usize)) {
    for_each_offset2(shape, from, &vec![0; from.len()], |o, _| f(o));
}

/// [`for_each_offset`] over two sources at once: `f(offset in a, offset in b)`.
fn for_each_offset2(
    shape: &[usize],
    from_a: &[usize],
    from_b: &[usize],
    mut f: impl FnMut(usize, usize),
) {
    if shape.contains(&0) {
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        f(0, 0);
        return;
    }
    let mut idx = vec![0usize; nd];
    let (mut oa, mut ob) = (0usize, 0usize);
    let (inner, sa, sb) = (shape[nd - 1], from_a[nd - 1], from_b[nd - 1]);
    loop {
        for j in 0..inner {
            f(oa + j * sa, ob + j * sb);
        }
        // Advance the outer axes like an odometer.
        let mut ax = nd - 1;
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            oa += from_a[ax];
            ob += from_b[ax];
            if idx[ax] < shape[ax] {
                break;
            }
            oa -= from_a[ax] * shape[ax];
            ob -= from_b[ax] * shape[ax];
            idx[ax] = 0;
        }
    }
}

impl fmt::Display for Tensor {
    /// NumPy-style nested brackets. As NumPy, a tensor of more than 1000 elements is
    /// summarised: axes longer than 6 show their first and last 3 entries around `...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn rec(
            t: &Tensor,
            f: &mut fmt::Formatter<'_>,
            axis: usize,
            off: usize,
            st: &[usize],
        ) -> fmt::Result {
            let summarise = t.len() > 1000;
            if axis == t.ndim() {
                return match f.precision() {
                    Some(p) => write!(f, "{:.*}", p, t.data[off]),
                    None => write!(f, "{}", t.data[off]),
                };
            }
            let d = t.shape[axis];
            let shown: Vec<Option<usize>> = if summarise && d > 6 {
                (0..3)
                    .map(Some)
                    .chain([None])
                    .chain((d - 3..d).map(Some))
                    .collect()
            } else {
                (0..d).map(Some).collect()
            };
            f.write_str("[")?;
            for (n, i) in shown.iter().enumerate() {
                if n > 0 {
                    f.write_str(if axis + 1 < t.ndim() { ",\n" } else { ", " })?;
                    if axis + 1 < t.ndim() {
                        write!(f, "{:width$}", "", width = axis + 1)?;
                    }
                }
                match i {
                    Some(i) => rec(t, f, axis + 1, off + i * st[axis], st)?,
                    None => f.write_str("...")?,
                }
            }
            f.write_str("]")
        }
        rec(self, f, 0, 0, &strides(&self.shape))
    }
}

impl From<f32> for Tensor {
    fn from(v: f32) -> Tensor {
        Tensor::scalar(v)
    }
}
