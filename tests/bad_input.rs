//! Malformed files, one test per kind of damage: each gives an `Err` whose message names the
//! problem (and the file), never a panic or an allocation the file cannot back.

use mathblocks::data::{DataError, idx, iris, mnist};
use mathblocks::nn::checkpoint;
use std::io::Write;
use std::path::Path;

fn idx_bytes(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    idx::write(&mut v, dims, data).unwrap();
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_err(bytes: &[u8], needle: &str) {
    match idx::from_file_bytes(bytes, Path::new("f.idx")) {
        Err(e @ DataError::Format { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains(needle) && m.contains("f.idx"),
                "{m:?} lacks {needle:?}"
            );
        }
        other => panic!("expected a format error with {needle:?}, got {other:?}"),
    }
}

#[test]
fn idx_header_claiming_more_than_the_file_holds() {
    // 2^30 x 2^30 elements: checked against the 4 bytes present, nothing allocated.
    let mut b = vec![0, 0, 8, 2, 0x40, 0, 0, 0, 0x40, 0, 0, 0];
    b.extend([1, 2, 3, 4]);
    idx_err(&b, "truncated");
    idx_err(&gz(&b), "truncated");
    // A product that overflows usize.
    let b = [
        0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    idx_err(&b, "overflow");
    idx_err(&gz(&b), "overflow");
}

#[test]
fn idx_gzip_damage() {
    let good = gz(&idx_bytes(&[4], &[1, 2, 3, 4]));
    assert_eq!(
        idx::from_file_bytes(&good, Path::new("x")).unwrap().data,
        [1, 2, 3, 4]
    );
    idx_err(&good[..good.len() - 4], "gzip");
    idx_err(&good[..12], "gzip");
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    assert!(idx::from_file_bytes(&flipped, Path::new("f.idx")).is_err());
    idx_err(&[0x1f, 0x8b, 8, 0, 0, 0], "gzip");
    // Not gzip at all and not IDX either.
    idx_err(b"PK\x03\x04 a zip file", "wrong magic");
}

#[test]
fn idx_gzip_bomb_stops_at_the_declared_size() {
    // One declared element followed by 64 MiB of zeros that compress to about 64 KB: the
    // decoder stops one byte past the declared data and reports trailing garbage.
    let mut raw = idx_bytes(&[1], &[7]);
    raw.resize(raw.len() + (64 << 20), 0);
    let bomb = gz(&raw);
    assert!(bomb.len() < 1 << 20);
    idx_err(&bomb, "trailing garbage");
}

#[test]
fn idx_trailing_garbage_and_truncation_plain_and_gzip() {
    let mut b = idx_bytes(&[3], &[1, 2, 3]);
    b.push(0);
    idx_err(&b, "1 bytes of trailing garbage");
    idx_err(&gz(&b), "1 bytes of trailing garbage");
    let b = idx_bytes(&[3], &[1, 2, 3]);
    idx_err(&b[..b.len() - 1], "truncated");
    idx_err(&gz(&b[..b.len() - 1]), "truncated");
    idx_err(&[0, 0, 0x0b, 1, 0, 0, 0, 1, 0, 0], "type code 0x0b");
}

fn write_split(dir: &Path, prefix: &str, images: &[u8], labels: &[u8]) {
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

#[test]
fn mnist_wrong_dimensions_and_empty_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let labels = idx_bytes(&[2], &[1, 2]);
    write_split(d, "t10k", &idx_bytes(&[2, 2, 2], &[0; 8]), &labels);
    // Images as a 2-d array.
    write_split(d, "train", &idx_bytes(&[2, 4], &[0; 8]), &labels);
    let e = mnist::load(d).unwrap_err().to_string();
    assert!(
        e.contains("expected 3 dimensions") && e.contains("train-images"),
        "{e}"
    );
    // Labels as a 2-d array.
    write_split(
        d,
        "train",
        &idx_bytes(&[2, 2, 2], &[0; 8]),
        &idx_bytes(&[2, 1], &[1, 2]),
    );
    let e = mnist::load(d).unwrap_err().to_string();
    assert!(
        e.contains("expected 1 dimension") && e.contains("train-labels"),
        "{e}"
    );
    // Images of 0 x 0 pixels.
    write_split(d, "train", &idx_bytes(&[2, 0, 0], &[]), &labels);
    let e = mnist::load(d).unwrap_err().to_string();
    assert!(e.contains("hold nothing"), "{e}");
    // Train and test images of different sizes.
    write_split(d, "train", &idx_bytes(&[2, 3, 3], &[0; 18]), &labels);
    let e = mnist::load(d).unwrap_err().to_string();
    assert!(
        e.contains("4 pixels per image, the training images have 9"),
        "{e}"
    );
    // Only the test files present.
    std::fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
    let e = mnist::load(d).unwrap_err().to_string();
    assert!(e.contains("train-labels-idx1-ubyte"), "{e}");
}

#[test]
fn iris_damage() {
    let p = Path::new("iris.csv");
    let bad = |text: &str, needle: &str| {
        let e = iris::parse(text, p).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains("iris.csv"),
            "{e:?} lacks {needle:?}"
        );
    };
    // A header that asks for more than the text could hold allocates nothing first.
    bad(
        "18446744073709551615,18446744073709551615,a\n1,0\n",
        "fields",
    );
    bad("99999999999999999999999,4,a\n", "not a count");
    bad("1,0,a\n", "0 features");
    bad("1,2,a,b\n1,NaN,0\n", "not a finite number");
    bad("1,2,a,b\n1,inf,0\n", "not a finite number");
    bad("1,2,a,b\n1,2,-1\n", "not an index");
    bad("1,2,a,b\n1,2,0\n3,4,1\n", "more rows than the 1");
    bad("\n\n  \n", "empty file");
    bad(
        "150,4,setosa,versicolor,virginica\n",
        "0 rows, the header declares 150",
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("latin1.csv");
    std::fs::write(&f, b"1,1,caf\xe9\n1,0\n").unwrap();
    let e = iris::load(&f).unwrap_err().to_string();
    assert!(e.contains("not UTF-8") && e.contains("latin1.csv"), "{e}");
    let e = iris::load(&dir.path().join("none.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.csv"), "{e}");
}

/// A safetensors file by hand: the 8-byte little-endian header length, the JSON header, data.
fn st_file(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend(header.as_bytes());
    v.resize(v.len() + data_len, 0);
    v
}

const META: &str = r#""__metadata__":{"input_dim":"2","layers":"3:softmax","loss":"sparse_categorical_crossentropy"}"#;

fn ckpt_err(bytes: &[u8], needle: &str) {
    match checkpoint::from_bytes(bytes, Path::new("w.safetensors")) {
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.contains(needle) && m.contains("w.safetensors"),
                "{m:?} lacks {needle:?}"
            );
        }
        Ok(_) => panic!("accepted a file that should fail with {needle:?}"),
    }
}

#[test]
fn safetensors_damage() {
    let kernel = r#""dense_0.kernel":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#;
    let bias = r#""dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}"#;
    // The hand-made file is right when whole...
    let good = st_file(&format!("{{{META},{kernel},{bias}}}"), 36);
    let m = checkpoint::from_bytes(&good, Path::new("w.safetensors")).unwrap();
    assert_eq!((m.input_dim(), m.output_dim()), (2, 3));
    // ...and each kind of damage is named.
    ckpt_err(&good[..good.len() - 1], "not a valid safetensors");
    ckpt_err(&good[..5], "not a valid safetensors");
    ckpt_err(
        &st_file(&format!("{{{META},{kernel}"), 36),
        "not a valid safetensors",
    );
    ckpt_err(
        &st_file(&format!("{{{META},{kernel}}}"), 24),
        "`dense_0.bias` is missing",
    );
    let wide = r#""dense_0.kernel":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}"#;
    ckpt_err(
        &st_file(&format!("{{{META},{wide},{bias}}}"), 36),
        "has shape [3, 2]",
    );
    let f64k = r#""dense_0.kernel":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]}"#;
    let f64b = r#""dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[48,60]}"#;
    ckpt_err(
        &st_file(&format!("{{{META},{f64k},{f64b}}}"), 60),
        "expected F32",
    );
    // Offsets past the end of the data.
    let far = r#""dense_0.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,4000]}"#;
    ckpt_err(
        &st_file(&format!("{{{META},{kernel},{far}}}"), 36),
        "not a valid safetensors",
    );
    // A header length far beyond the file.
    let mut huge = (1u64 << 40).to_le_bytes().to_vec();
    huge.extend(b"{}");
    ckpt_err(&huge, "not a valid safetensors");
    // No metadata: some other program's file.
    ckpt_err(
        &st_file(&format!("{{{kernel},{bias}}}"), 36),
        "not a mathblocks checkpoint",
    );
    // Metadata describing a model far larger than the file: refused before allocating.
    let big = r#""__metadata__":{"input_dim":"1000000000","layers":"1000000000:relu,10:softmax","loss":"sparse_categorical_crossentropy"}"#;
    ckpt_err(
        &st_file(&format!("{{{big},{kernel},{bias}}}"), 36),
        "more weights than",
    );
    let bad_layers = r#""__metadata__":{"input_dim":"2","layers":"3:tanh","loss":"sparse_categorical_crossentropy"}"#;
    ckpt_err(
        &st_file(&format!("{{{bad_layers},{kernel},{bias}}}"), 36),
        "unknown activation",
    );
    // Non-finite weights.
    let mut nan = good.clone();
    let at = nan.len() - 4;
    nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    ckpt_err(&nan, "NaN");
}

#[test]
fn model_sizes_that_overflow_are_errors() {
    use mathblocks::nn::{Act, Dense, Loss, Sequential};
    let e = Sequential::zeros(
        usize::MAX / 2,
        &[Dense::new(4, Act::Relu), Dense::new(3, Act::Softmax)],
        Loss::SparseCategoricalCrossentropy,
    )
    .unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}
