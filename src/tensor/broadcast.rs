//! Element-wise binary operations with NumPy's broadcasting rules: shapes are aligned at
//! their last axes, and each pair of extents must be equal or one of them 1 (a missing axis
//! counts as 1). So (3, 2) and (2,) combine to (3, 2); (3, 2) and (3,) do not.

use super::{ShapeError, Tensor, for_each_offset, for_each_offset2, shape_err, strides};

/// The shape two operands broadcast to, or an error naming both.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, ShapeError> {
    let nd = a.len().max(b.len());
    let mut out = vec![0; nd];
    for i in 0..nd {
        let da = if i < nd - a.len() {
            1
        } else {
            a[i - (nd - a.len())]
        };
        let db = if i < nd - b.len() {
            1
        } else {
            b[i - (nd - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return shape_err!(
                    "shapes {a:?} and {b:?} cannot be broadcast together (axis {i}: {da} vs {db})"
                );
            }
        };
    }
    Ok(out)
}

/// Source strides of `shape` when read as `out` (0 on broadcast axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let st = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < lead || shape[i - lead] == 1 {
                0
            } else {
                st[i - lead]
            }
        })
        .collect()
}

impl Tensor {
    /// `self` repeated to `shape` by broadcasting (NumPy's `np.broadcast_to`, but a copy).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor, ShapeError> {
        if broadcast_shape(&self.shape, shape)? != shape {
            return shape_err!("shape {:?} cannot be broadcast to {shape:?}", self.shape);
        }
        let from = broadcast_strides(&self.shape, shape);
        let mut data = Vec::with_capacity(shape.iter().product());
        for_each_offset(shape, &from, |o| data.push(self.data[o]));
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// `f(a, b)` element-wise over the broadcast shape of `self` and `other`.
    pub fn zip_with(
        &self,
        other: &Tensor,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<Tensor, ShapeError> {
        if self.shape == other.shape {
            let data = self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect();
            return Ok(Tensor {
                shape: self.shape.clone(),
                data,
            });
        }
        let shape = broadcast_shape(&self.shape, &other.shape)?;
        let (from_a, from_b) = (
            broadcast_strides(&self.shape, &shape),
            broadcast_strides(&other.shape, &shape),
        );
        let mut data = Vec::with_capacity(shape.iter().product());
        for_each_offset2(&shape, &from_a, &from_b, |oa, ob| {
            data.push(f(self.data[oa], other.data[ob]))
        });
        Ok(Tensor { shape, data })
    }

    /// `self + other`, broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.zip_with(other, |a, b| a + b)
    }

    /// `self - other`, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.zip_with(other, |a, b| a - b)
    }

    /// `self * other` element-wise (not a matrix product), broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.zip_with(other, |a, b| a * b)
    }

    /// `self / other` element-wise, broadcasting.
    pub fn div(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.zip_with(other, |a, b| a / b)
    }

    /// The larger of each pair, broadcasting (NumPy's `np.maximum`: a NaN on either side
    /// gives NaN).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.zip_with(other, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        })
    }

    /// Sums `self` down to `shape` over the axes that broadcasting expanded: the gradient of a
    /// broadcast operand. `shape` must broadcast to `self.shape()`.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor, ShapeError> {
        if broadcast_shape(shape, &self.shape)? != self.shape {
            return shape_err!("shape {:?} cannot be summed to {shape:?}", self.shape);
        }
        let from = broadcast_strides(shape, &self.shape);
        let mut out = Tensor::zeros(shape);
        let mut i = 0;
        for_each_offset(&self.shape, &from, |o| {
            out.data[o] += self.data[i];
            i += 1;
        });
        Ok(out)
    }
}
