//! Conversions between tensors and the data sets and model of the rest of the crate, so a user
//! can go from `mnist::load` to `Sequential::fit` and `predict` through tensors.

use super::{ShapeError, Tensor, shape_err};
use crate::data::Dataset;
use crate::nn::Sequential;

impl From<Dataset> for Tensor {
    /// The examples as an `(n, features)` tensor (labels are dropped; keep `y` separately).
    fn from(d: Dataset) -> Tensor {
        Tensor {
            shape: vec![d.n, d.features],
            data: d.x,
        }
    }
}

impl Dataset {
    /// A data set from a tensor of examples (axis 0; the other axes are flattened into
    /// features, so `(60000, 28, 28)` images give 784 features) and one label per example.
    ///
    /// Errors if the tensor is 0-d, the label count differs from the examples, or a label is
    /// not below `classes`.
    pub fn from_tensor(x: &Tensor, labels: &[u32], classes: usize) -> Result<Dataset, ShapeError> {
        let Some((&n, rest)) = x.shape().split_first() else {
            return shape_err!("a data set needs examples along axis 0, got a scalar");
        };
        if labels.len() != n {
            return shape_err!(
                "{} labels for {n} examples of shape {:?}",
                labels.len(),
                x.shape()
            );
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
            return shape_err!("label {bad} is not below the {classes} classes");
        }
        Ok(Dataset {
            x: x.data().to_vec(),
            y: labels.to_vec(),
            n,
            features: rest.iter().product(),
            classes,
        })
    }
}

impl Sequential {
    /// [`Sequential::predict`] on a tensor of examples along axis 0 (other axes flattened, so
    /// `(10, 28, 28)` images work): a `(rows, outputs)` tensor of probabilities (or the last
    /// layer's activations). Errors if an example's size differs from the model's input.
    pub fn predict_tensor(&self, x: &Tensor) -> Result<Tensor, ShapeError> {
        let Some((&rows, rest)) = x.shape().split_first() else {
            return shape_err!("predict needs examples along axis 0, got a scalar");
        };
        let features: usize = rest.iter().product();
        if features != self.input_dim() {
            return shape_err!(
                "examples of shape {rest:?} ({features} values) for a model of {} inputs",
                self.input_dim()
            );
        }
        Tensor::new(&[rows, self.output_dim()], self.predict(x.data(), rows))
    }
}
