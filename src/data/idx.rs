//! The IDX format of the MNIST files: a big-endian header (two zero bytes, a type code, the
//! number of dimensions, then each dimension as a u32) followed by the data. Only unsigned
//! bytes (type 0x08), the type every MNIST-layout set uses, are supported. Files may be
//! gzipped (detected by the gzip magic bytes, whatever the name).

use super::DataError;
use byteorder::{BigEndian, ReadBytesExt};
use flate2::read::GzDecoder;
use std::borrow::Cow;
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

/// Upper bound on the data a gzipped file may decompress to (MNIST's largest file is 47 MB).
const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Largest IDX header: four bytes, then up to 255 dimensions of four bytes.
const MAX_HEADER: u64 = 4 + 255 * 4;

/// The IDX bytes of a file's contents: gunzipped if they start with the gzip magic bytes, else
/// as they are. A gzip stream is decompressed only as far as its header says the data goes (plus
/// one byte, to detect trailing garbage), so a small file that inflates without end, or one whose
/// header claims more than it holds, costs no more memory than the data actually present.
pub fn decode<'a>(raw: &'a [u8], path: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(raw));
    }
    let gz_err =
        |e: std::io::Error| DataError::format(path, format!("not a valid gzip stream: {e}"));
    let mut dec = GzDecoder::new(raw);
    let mut out = Vec::new();
    (&mut dec).take(4).read_to_end(&mut out).map_err(gz_err)?;
    if out.len() == 4 {
        let dims_len = 4 * u64::from(out[3]);
        (&mut dec)
            .take(dims_len)
            .read_to_end(&mut out)
            .map_err(gz_err)?;
    }
    // A malformed header is reported by `parse`; read one byte past it so it can say so.
    let data_len = header(&out, path).map_or(1, |(_, count, _)| count as u64 + 1);
    (&mut dec)
        .take(data_len.min(MAX_DECOMPRESSED + 1))
        .read_to_end(&mut out)
        .map_err(gz_err)?;
    debug_assert!(out.len() as u64 <= MAX_HEADER + MAX_DECOMPRESSED + 1);
    Ok(Cow::Owned(out))
}

/// Parses the contents of an IDX file, plain or gzipped; `path` is only used in messages.
pub fn from_file_bytes(raw: &[u8], path: &Path) -> Result<Idx, DataError> {
    parse(&decode(raw, path)?, path)
}

/// The dimensions, element count and data (everything after the header) of IDX bytes, or
/// the first thing wrong with the header.
fn header<'a>(bytes: &'a [u8], path: &Path) -> Result<(Vec<usize>, usize, &'a [u8]), DataError> {
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
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    Ok((dims, count, r))
}

/// Parses uncompressed IDX bytes; `path` is only used in error messages.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Idx, DataError> {
    let bad = |msg: String| DataError::format(path, msg);
    // The count is checked against the bytes present before anything is allocated.
    let (dims, count, r) = header(bytes, path)?;
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
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    from_file_bytes(&raw, path)
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
