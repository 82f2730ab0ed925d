//! Slicing with a range per axis (NumPy's `x[:, 14:, 14:]`) and batches along axis 0.

use super::{ShapeError, Tensor, for_each_offset, shape_err, strides};
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// What to take along one axis: a range of indices (`..`, `14..`, `..10`, `128 * n..128 *
/// (n + 1)`) or a single index, which removes the axis as NumPy's `x[0]` does. Build them with
/// the [`s!`](crate::s) macro.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Indices `start..end` (`end: None` runs to the end of the axis).
    Range {
        /// First index taken.
        start: usize,
        /// One past the last index taken, or the end of the axis.
        end: Option<usize>,
    },
    /// One index; the axis is dropped from the result.
    Index(usize),
}

impl From<RangeFull> for Span {
    fn from(_: RangeFull) -> Span {
        Span::Range {
            start: 0,
            end: None,
        }
    }
}
impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        Span::Range {
            start: r.start,
            end: Some(r.end),
        }
    }
}
impl From<RangeFrom<usize>> for Span {
    fn from(r: RangeFrom<usize>) -> Span {
        Span::Range {
            start: r.start,
            end: None,
        }
    }
}
impl From<RangeTo<usize>> for Span {
    fn from(r: RangeTo<usize>) -> Span {
        Span::Range {
            start: 0,
            end: Some(r.end),
        }
    }
}
impl From<RangeInclusive<usize>> for Span {
    fn from(r: RangeInclusive<usize>) -> Span {
        Span::Range {
            start: *r.start(),
            end: Some(r.end().saturating_add(1)),
        }
    }
}
impl From<RangeToInclusive<usize>> for Span {
    fn from(r: RangeToInclusive<usize>) -> Span {
        Span::Range {
            start: 0,
            end: Some(r.end.saturating_add(1)),
        }
    }
}
impl From<usize> for Span {
    fn from(i: usize) -> Span {
        Span::Index(i)
    }
}

/// Slice spans, one per leading axis, for [`Tensor::slice`]: `s![.., 14.., 14..]` is NumPy's
/// `[:, 14:, 14:]`; `s![3]` takes one entry of axis 0 and drops that axis.
#[macro_export]
macro_rules! s {
    ($($e:expr),* $(,)?) => {
        [$($crate::tensor::Span::from($e)),*]
    };
}

impl Tensor {
    /// A copy of the part selected by `spans`, one per leading axis (missing trailing axes are
    /// taken whole). Errors if there are more spans than axes or a span leaves its axis.
    pub fn slice(&self, spans: &[Span]) -> Result<Tensor, ShapeError> {
        if spans.len() > self.ndim() {
            return shape_err!(
                "{} slice spans for shape {:?} ({} axes)",
                spans.len(),
                self.shape,
                self.ndim()
            );
        }
        let st = strides(&self.shape);
        let mut base = 0usize;
        let (mut shape, mut from) = (Vec::new(), Vec::new());
        for (ax, &d) in self.shape.iter().enumerate() {
            let span = spans.get(ax).copied().unwrap_or(Span::Range {
                start: 0,
                end: None,
            });
            match span {
                Span::Index(i) => {
                    if i >= d {
                        return shape_err!(
                            "index {i} is outside axis {ax} of shape {:?}",
                            self.shape
                        );
                    }
                    base += i * st[ax];
                }
                Span::Range { start, end } => {
                    let end = end.unwrap_or(d);
                    if start > end || end > d {
                        return shape_err!(
                            "range {start}..{end} is outside axis {ax} of shape {:?}",
                            self.shape
                        );
                    }
                    base += start * st[ax];
                    shape.push(end - start);
                    from.push(st[ax]);
                }
            }
        }
        let mut data = Vec::with_capacity(shape.iter().product());
        for_each_offset(&shape, &from, |off| data.push(self.data[base + off]));
        Ok(Tensor { shape, data })
    }

    /// Consecutive batches of `size` entries along axis 0 (the last may be smaller), as the
    /// seed's `train_images[128 * n:128 * (n + 1)]`.
    ///
    /// # Panics
    /// If `size` is 0 or the tensor is a scalar.
    pub fn batches(&self, size: usize) -> Batches<'_> {
        assert!(size > 0, "Tensor::batches: size must be at least 1");
        assert!(self.ndim() > 0, "Tensor::batches: a scalar has no axis 0");
        Batches {
            t: self,
            size,
            next: 0,
        }
    }
}

/// Iterator over batches along axis 0, from [`Tensor::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    t: &'a Tensor,
    size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Tensor;
    fn next(&mut self) -> Option<Tensor> {
        let n = self.t.shape[0];
        if self.next >= n {
            return None;
        }
        let end = (self.next + self.size).min(n);
        let row = self.t.len() / n;
        let mut shape = self.t.shape.clone();
        shape[0] = end - self.next;
        let data = self.t.data[self.next * row..end * row].to_vec();
        self.next = end;
        Some(Tensor { shape, data })
    }
}
