//! MNIST-layout data sets (MNIST, Fashion-MNIST): the four IDX files of a folder, as f32
//! pixels in [0, 1] (byte / 255) and u32 labels.

use super::{DataError, Dataset, idx};
use std::path::{Path, PathBuf};

/// Training and test sets.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// The training set (60,000 images for MNIST).
    pub train: Dataset,
    /// The test set (10,000 images for MNIST).
    pub test: Dataset,
}

/// The ten classes of MNIST-layout sets.
pub const CLASSES: usize = 10;

/// Finds `stem` or `stem.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::io(
        &dir.join(format!("{stem}.gz")),
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "missing: neither {stem}.gz nor {stem} is in {}",
                dir.display()
            ),
        ),
    ))
}

/// Loads one split: images (`n x rows x cols`) and labels (`n`), checked against each other.
pub fn load_split(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let im = idx::read(images)?;
    let lb = idx::read(labels)?;
    if im.dims.len() != 3 {
        return Err(DataError::format(
            images,
            format!("expected 3 dimensions (n, rows, cols), found {:?}", im.dims),
        ));
    }
    if lb.dims.len() != 1 {
        return Err(DataError::format(
            labels,
            format!("expected 1 dimension (n), found {:?}", lb.dims),
        ));
    }
    let n = im.dims[0];
    if lb.dims[0] != n {
        return Err(DataError::format(
            labels,
            format!(
                "{} labels for {n} images in {}",
                lb.dims[0],
                images.display()
            ),
        ));
    }
    if let Some((i, &l)) = lb
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= CLASSES)
    {
        return Err(DataError::format(
            labels,
            format!("label {l} at index {i} is outside 0..{CLASSES}"),
        ));
    }
    let features = im.dims[1] * im.dims[2];
    if features == 0 {
        return Err(DataError::format(
            images,
            format!("images of {:?} pixels hold nothing", &im.dims[1..]),
        ));
    }
    Ok(Dataset {
        x: im.data.iter().map(|&b| b as f32 / 255.0).collect(),
        y: lb.data.iter().map(|&l| l as u32).collect(),
        n,
        features,
        classes: CLASSES,
    })
}

/// Loads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte` (each plain or `.gz`) from `dir`. Train and test images must have
/// the same size.
pub fn load(dir: &Path) -> Result<Mnist, DataError> {
    if !dir.is_dir() {
        return Err(DataError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    let train = load_split(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
    )?;
    let test_images = find(dir, "t10k-images-idx3-ubyte")?;
    let test = load_split(&test_images, &find(dir, "t10k-labels-idx1-ubyte")?)?;
    if test.features != train.features {
        return Err(DataError::format(
            &test_images,
            format!(
                "{} pixels per image, the training images have {}",
                test.features, train.features
            ),
        ));
    }
    Ok(Mnist { train, test })
}
