//! Products: `matmul` of matrices through the sgemm kernel, and `tensordot` over given axes.

use super::{ShapeError, Tensor, shape_err};
use crate::kernels::{self, Transpose};

impl Tensor {
    /// The matrix product of two 2-d tensors, `(m, k) x (k, n) -> (m, n)`, through
    /// [`kernels::sgemm`].
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor, ShapeError> {
        self.matmul_t(Transpose::No, other, Transpose::No)
    }

    /// `op(self) x op(other)` for 2-d tensors, where `op` transposes when asked, without
    /// copying a transpose first (the backward pass of a product needs `A·Bᵀ` and `Aᵀ·B`).
    pub fn matmul_t(
        &self,
        ta: Transpose,
        other: &Tensor,
        tb: Transpose,
    ) -> Result<Tensor, ShapeError> {
        let (&[ar, ac], &[br, bc]) = (self.shape(), other.shape()) else {
            return shape_err!(
                "matmul needs two 2-d tensors, got shapes {:?} and {:?}",
                self.shape,
                other.shape
            );
        };
        let (m, k) = if ta == Transpose::No {
            (ar, ac)
        } else {
            (ac, ar)
        };
        let (k2, n) = if tb == Transpose::No {
            (br, bc)
        } else {
            (bc, br)
        };
        if k != k2 {
            return shape_err!(
                "matmul: shapes {:?} and {:?} do not chain ({k} vs {k2})",
                self.shape,
                other.shape
            );
        }
        let mut out = Tensor::zeros(&[m, n]);
        kernels::sgemm(
            ta,
            tb,
            m,
            n,
            k,
            1.0,
            &self.data,
            ac.max(1),
            &other.data,
            bc.max(1),
            0.0,
            &mut out.data,
            n.max(1),
        );
        Ok(out)
    }

    /// NumPy's `np.tensordot(a, b, axes=(axes_a, axes_b))`: sums the products over the paired
    /// axes (`axes_a[i]` of `self` with `axes_b[i]` of `other`, equal extents); the result's
    /// axes are the remaining axes of `self`, then those of `other`. With one pair of axes on
    /// two matrices, `tensordot(b, &[1], &[0])` is `matmul(b)`.
    pub fn tensordot(
        &self,
        other: &Tensor,
        axes_a: &[usize],
        axes_b: &[usize],
    ) -> Result<Tensor, ShapeError> {
        let bad = |why: &str| {
            shape_err!(
                "tensordot of {:?} and {:?} over axes {axes_a:?} and {axes_b:?}: {why}",
                self.shape,
                other.shape
            )
        };
        if axes_a.len() != axes_b.len() {
            return bad("different numbers of axes");
        }
        if axes_a.iter().any(|&a| a >= self.ndim()) || axes_b.iter().any(|&b| b >= other.ndim()) {
            return bad("an axis is out of range");
        }
        if axes_a
            .iter()
            .zip(axes_b)
            .any(|(&a, &b)| self.shape[a] != other.shape[b])
        {
            return bad("paired axes differ in length");
        }
        let free_a: Vec<usize> = (0..self.ndim()).filter(|a| !axes_a.contains(a)).collect();
        let free_b: Vec<usize> = (0..other.ndim()).filter(|b| !axes_b.contains(b)).collect();
        // Repeated axes would make the permutations below fail; report them as such.
        if free_a.len() + axes_a.len() != self.ndim() || free_b.len() + axes_b.len() != other.ndim()
        {
            return bad("an axis is repeated");
        }
        let k: usize = axes_a.iter().map(|&a| self.shape[a]).product();
        let m: usize = free_a.iter().map(|&a| self.shape[a]).product();
        let n: usize = free_b.iter().map(|&b| other.shape[b]).product();
        let pa: Vec<usize> = free_a.iter().chain(axes_a).copied().collect();
        let pb: Vec<usize> = axes_b.iter().chain(&free_b).copied().collect();
        let a = self.permute(&pa)?.into_shape(&[m, k])?;
        let b = other.permute(&pb)?.into_shape(&[k, n])?;
        let shape: Vec<usize> = free_a
            .iter()
            .map(|&a| self.shape[a])
            .chain(free_b.iter().map(|&b| other.shape[b]))
            .collect();
        a.matmul(&b)?.into_shape(&shape)
    }
}
