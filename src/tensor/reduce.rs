//! Reductions over one axis (the axis disappears from the shape, as NumPy's `axis=`) or over
//! every element.

use super::{ShapeError, Tensor, shape_err};

impl Tensor {
    /// Splits the shape around `axis` into (elements before, axis length, elements after).
    fn around(&self, axis: usize, what: &str) -> Result<(usize, usize, usize), ShapeError> {
        if axis >= self.ndim() {
            return shape_err!(
                "{what}: axis {axis} of shape {:?} ({} axes)",
                self.shape,
                self.ndim()
            );
        }
        let outer = self.shape[..axis].iter().product();
        let inner = self.shape[axis + 1..].iter().product();
        Ok((outer, self.shape[axis], inner))
    }

    /// Folds each lane along `axis` with `f`, starting from `init`.
    fn fold_axis(
        &self,
        axis: usize,
        what: &str,
        init: f32,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<Tensor, ShapeError> {
        let (outer, len, inner) = self.around(axis, what)?;
        let mut shape = self.shape.clone();
        shape.remove(axis);
        let mut out = Tensor::full(&shape, init);
        for o in 0..outer {
            for j in 0..len {
                let src = &self.data[(o * len + j) * inner..][..inner];
                let dst = &mut out.data[o * inner..][..inner];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = f(*d, s);
                }
            }
        }
        Ok(out)
    }

    /// Sum along `axis`.
    pub fn sum(&self, axis: usize) -> Result<Tensor, ShapeError> {
        self.fold_axis(axis, "sum", 0.0, |a, b| a + b)
    }

    /// Mean along `axis` (NaN where the axis is empty).
    pub fn mean(&self, axis: usize) -> Result<Tensor, ShapeError> {
        let n = *self.shape.get(axis).unwrap_or(&0) as f32;
        Ok(self.sum(axis)?.div_scalar(n))
    }

    /// Maximum along `axis`; NaN if the lane holds a NaN; errors on an empty axis.
    pub fn max(&self, axis: usize) -> Result<Tensor, ShapeError> {
        if self.shape.get(axis) == Some(&0) {
            return shape_err!("max: axis {axis} of shape {:?} is empty", self.shape);
        }
        self.fold_axis(axis, "max", f32::NEG_INFINITY, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        })
    }

    /// Index of the maximum along `axis` (the first one on ties; NaN is skipped), one per lane,
    /// in row-major order of the shape without `axis`. For `(rows, classes)` predictions,
    /// `argmax(1)` is the predicted class of each row. Errors on an empty axis.
    pub fn argmax(&self, axis: usize) -> Result<Vec<usize>, ShapeError> {
        let (outer, len, inner) = self.around(axis, "argmax")?;
        if len == 0 {
            return shape_err!("argmax: axis {axis} of shape {:?} is empty", self.shape);
        }
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| self.data[(o * len + j) * inner + i];
                let best = (0..len).fold(0, |b, j| {
                    if at(j) > at(b) || at(b).is_nan() {
                        j
                    } else {
                        b
                    }
                });
                out.push(best);
            }
        }
        Ok(out)
    }

    /// Sum of every element (0 for an empty tensor), accumulated in f64.
    pub fn sum_all(&self) -> f32 {
        self.data.iter().map(|&v| v as f64).sum::<f64>() as f32
    }

    /// Mean of every element (NaN for an empty tensor).
    pub fn mean_all(&self) -> f32 {
        (self.data.iter().map(|&v| v as f64).sum::<f64>() / self.len() as f64) as f32
    }
}
