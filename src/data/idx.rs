//! The IDX format of the MNIST files: a big-endian header (two zero bytes, a type code, the
//! number of dimensions, then each dimension as a u32) followed by the data. Only unsigned
//! bytes (type 0x08), the type every MNIST-layout set uses, are supported. Files may be
//! gzipped (detected by the gzip magic bytes, whatever the name).

use super::DataError;
use byteorder::{BigEndian, ReadBytesExt};
use flate2::read::GzDecoder;
use std::io::{Read, Write};
use std::path::Path;

/// Type code of unsigned bytes.
pub const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major; `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// Upper bound on the decompressed size of a gzipped file, so that a small malicious `.gz`
/// cannot exhaust memory (MNIST's largest file is 47 MB).
const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Reads the whole file, gunzipping it if it starts with the gzip magic bytes.
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut out)
            .map_err(|e| DataError::format(path, format!("not a valid gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Idx, DataError> {
    let bad = |msg: String| DataError::format(path, msg);
    let mut r = bytes;
    if r.len() < 4 {
        return Err(bad(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        )));
    }
    let (z0, z1, ty, ndim) = (r[0], r[1], r[2], r[3]);
    r = &r[4..];
    if z0 != 0 || z1 != 0 {
        return Err(bad(format!(
            "wrong magic: first bytes {z0:#04x} {z1:#04x}, expected 0x00 0x00"
        )));
    }
    if ty != UBYTE {
        return Err(bad(format!(
            "unsupported IDX type code {ty:#04x} (only 0x08, unsigned bytes)"
        )));
    }
    if ndim == 0 {
        return Err(bad("IDX header has 0 dimensions".into()));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for i in 0..ndim {
        let d = r
            .read_u32::<BigEndian>()
            .map_err(|_| bad(format!("header truncated in dimension {i} of {ndim}")))?;
        dims.push(d as usize);
    }
    // Checked against the bytes present before anything is allocated.
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    if r.len() < count {
        return Err(bad(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, the file holds {}",
            r.len()
        )));
    }
    if r.len() > count {
        return Err(bad(format!(
            "{} bytes of trailing garbage after {count} data bytes",
            r.len() - count
        )));
    }
    Ok(Idx {
        dims,
        data: r.to_vec(),
    })
}

/// Reads an IDX file of unsigned bytes, plain or gzipped.
pub fn read(path: &Path) -> Result<Idx, DataError> {
    parse(&read_bytes(path)?, path)
}

/// Serialises an IDX array of unsigned bytes (used by tests and tools).
///
/// # Panics
/// If `dims` has more than 255 entries, a dimension exceeds `u32::MAX`, or `data.len()` is
/// not the product of `dims`.
pub fn write(out: &mut impl Write, dims: &[usize], data: &[u8]) -> std::io::Result<()> {
    assert!(dims.len() <= 255, "idx::write: at most 255 dimensions");
    assert_eq!(
        dims.iter().product::<usize>(),
        data.len(),
        "idx::write: data length"
    );
    out.write_all(&[0, 0, UBYTE, dims.len() as u8])?;
    for &d in dims {
        out.write_all(
            &u32::try_from(d)
                .expect("idx::write: dimension fits u32")
                .to_be_bytes(),
        )?;
    }
    out.write_all(data)
}
