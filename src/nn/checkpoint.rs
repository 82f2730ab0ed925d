//! Weights as `.safetensors` files, readable by NumPy/PyTorch (`safetensors.numpy.load_file`).
//!
//! Layout: for layer `i` (0-based), `dense_{i}.kernel` is F32 of shape `[in_dim, out_dim]`
//! (row-major, Keras layout: `y = x @ kernel + bias`) and `dense_{i}.bias` is F32 of shape
//! `[out_dim]`. The header's `__metadata__` records the architecture so a file rebuilds its
//! model alone: `format = "mathblocks"`, `input_dim`, `layers` (e.g. `512:relu,10:softmax`)
//! and `loss` (`sparse_categorical_crossentropy` or `mean_squared_error`).
//!
//! Writes are atomic: a temporary file in the same directory, flushed to disk, then renamed
//! over the target, so an interrupted save leaves the old file or the new one, never a mix.

use super::{Act, Dense, Loss, Sequential};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A checkpoint that could not be written or read.
#[derive(Debug)]
pub struct CheckpointError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub msg: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.msg)
    }
}

impl std::error::Error for CheckpointError {}

fn err(path: &Path, msg: impl Into<String>) -> CheckpointError {
    CheckpointError {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn loss_name(l: Loss) -> &'static str {
    match l {
        Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        Loss::MeanSquaredError => "mean_squared_error",
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The file's bytes for `model`.
pub fn to_bytes(model: &Sequential) -> Vec<u8> {
    let mut tensors = Vec::new();
    for (i, l) in model.layers().iter().enumerate() {
        tensors.push((
            format!("dense_{i}.kernel"),
            vec![l.in_dim, l.out_dim],
            f32_bytes(model.kernel(i)),
        ));
        tensors.push((
            format!("dense_{i}.bias"),
            vec![l.out_dim],
            f32_bytes(model.bias(i)),
        ));
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data"),
            )
        })
        .collect();
    let layers: Vec<String> = model
        .layers()
        .iter()
        .map(|l| format!("{}:{}", l.out_dim, l.act.name()))
        .collect();
    let meta = HashMap::from([
        ("format".to_string(), "mathblocks".to_string()),
        ("input_dim".to_string(), model.input_dim().to_string()),
        ("layers".to_string(), layers.join(",")),
        ("loss".to_string(), loss_name(model.loss()).to_string()),
    ]);
    safetensors::serialize(views, Some(meta))
        .expect("serialising in-memory f32 tensors cannot fail")
}

/// Writes `model` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn save(model: &Sequential, path: &Path) -> Result<(), CheckpointError> {
    crate::atomic::write(path, &to_bytes(model))
        .map_err(|e| err(path, format!("cannot write: {e}")))
}

/// Parses a file's bytes into the model it describes; `path` is only used in messages.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Sequential, CheckpointError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| err(path, format!("not a valid safetensors file: {e}")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| err(path, format!("bad header: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k).ok_or_else(|| {
            err(
                path,
                format!("metadata has no `{k}`: not a mathblocks checkpoint"),
            )
        })
    };
    let input_dim: usize = get("input_dim")?
        .parse()
        .map_err(|_| err(path, "metadata `input_dim` is not a number"))?;
    let mut layers = Vec::new();
    for spec in get("layers")?.split(',') {
        let (u, a) = spec
            .split_once(':')
            .ok_or_else(|| err(path, format!("bad layer spec {spec:?}")))?;
        let units = u
            .parse()
            .map_err(|_| err(path, format!("bad layer width {u:?}")))?;
        let act =
            Act::from_name(a).ok_or_else(|| err(path, format!("unknown activation {a:?}")))?;
        layers.push(Dense::new(units, act));
    }
    let loss = match get("loss")?.as_str() {
        "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
        "mean_squared_error" => Loss::MeanSquaredError,
        other => return Err(err(path, format!("unknown loss {other:?}"))),
    };
    // The architecture comes from the file: check that the file holds its weights before
    // allocating them, so a forged header cannot ask for terabytes.
    let needed = layers
        .iter()
        .try_fold((input_dim, 0usize), |(i, total), d| {
            let here = i.checked_mul(d.units)?.checked_add(d.units)?;
            Some((d.units, total.checked_add(here)?))
        })
        .map(|(_, total)| total);
    match needed {
        Some(t) if t <= bytes.len() / 4 => {}
        _ => {
            return Err(err(
                path,
                format!(
                    "metadata describes {input_dim} inputs and layers {:?}, more weights than the {} bytes of the file hold",
                    get("layers")?,
                    bytes.len()
                ),
            ));
        }
    }
    let mut model =
        Sequential::zeros(input_dim, &layers, loss).map_err(|e| err(path, e.to_string()))?;
    let shapes: Vec<_> = model
        .layers()
        .iter()
        .map(|l| (l.in_dim, l.out_dim, l.w_off, l.b_off))
        .collect();
    for (i, (in_dim, out_dim, w_off, b_off)) in shapes.into_iter().enumerate() {
        for (name, shape, off) in [
            (format!("dense_{i}.kernel"), vec![in_dim, out_dim], w_off),
            (format!("dense_{i}.bias"), vec![out_dim], b_off),
        ] {
            let t = st
                .tensor(&name)
                .map_err(|_| err(path, format!("tensor `{name}` is missing")))?;
            if t.dtype() != Dtype::F32 {
                return Err(err(
                    path,
                    format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
                ));
            }
            if t.shape() != shape.as_slice() {
                return Err(err(
                    path,
                    format!(
                        "tensor `{name}` has shape {:?}, expected {shape:?}",
                        t.shape()
                    ),
                ));
            }
            let dst = &mut model.params_mut()[off..off + shape.iter().product::<usize>()];
            for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
    if model.params().iter().any(|p| !p.is_finite()) {
        return Err(err(path, "weights contain NaN or infinity"));
    }
    Ok(model)
}

/// Reads a model written by [`save`].
pub fn load(path: &Path) -> Result<Sequential, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    from_bytes(&bytes, path)
}
