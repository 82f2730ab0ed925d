//! Data readers: IDX round trips (plain and gzip) on files the test writes, every malformed
//! header, MNIST folder checks and the iris CSV format.

use flate2::{Compression, write::GzEncoder};
use mathblocks::data::{DataError, idx, iris, mnist};
use std::io::Write;
use std::path::Path;

fn idx_bytes(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    idx::write(&mut v, dims, data).unwrap();
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn format_err(r: Result<idx::Idx, DataError>, needle: &str) {
    match r {
        Err(DataError::Format { msg, .. }) => {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}")
        }
        other => panic!("expected a format error containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn idx_round_trips_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 11) as u8).collect();
    let plain = dir.path().join("a-idx3-ubyte");
    let zipped = dir.path().join("a-idx3-ubyte.gz");
    std::fs::write(&plain, idx_bytes(&[2, 3, 4], &data)).unwrap();
    std::fs::write(&zipped, gz(&idx_bytes(&[2, 3, 4], &data))).unwrap();
    for p in [&plain, &zipped] {
        let r = idx::read(p).unwrap();
        assert_eq!(r.dims, vec![2, 3, 4]);
        assert_eq!(r.data, data);
    }
}

#[test]
fn idx_rejects_every_malformed_header() {
    let p = Path::new("bad");
    let good = idx_bytes(&[2, 2], &[1, 2, 3, 4]);
    let mut b = good.clone();
    b[0] = 7;
    format_err(idx::parse(&b, p), "wrong magic");
    let mut b = good.clone();
    b[2] = 0x0D;
    format_err(idx::parse(&b, p), "type code 0x0d");
    let mut b = good.clone();
    b[3] = 0;
    format_err(idx::parse(&b, p), "0 dimensions");
    format_err(idx::parse(&good[..6], p), "header truncated");
    format_err(idx::parse(&good[..2], p), "too short");
    format_err(idx::parse(&good[..good.len() - 1], p), "truncated");
    let mut b = good.clone();
    b.push(9);
    format_err(idx::parse(&b, p), "trailing garbage");
    let huge = [
        0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let r = idx::parse(&huge, p);
    assert!(matches!(r, Err(DataError::Format { .. })), "{r:?}");
}

#[test]
fn idx_bad_gzip_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gz");
    let z = gz(&idx_bytes(&[100], &[5; 100]));
    std::fs::write(&cut, &z[..z.len() / 2]).unwrap();
    format_err(idx::read(&cut), "gzip");
    let fake = dir.path().join("fake.gz");
    std::fs::write(&fake, [0x1f, 0x8b, 1, 2, 3, 4]).unwrap();
    format_err(idx::read(&fake), "gzip");
    let missing = dir.path().join("nope");
    match idx::read(&missing) {
        Err(e @ DataError::Io { .. }) => assert!(e.to_string().contains("nope")),
        other => panic!("{other:?}"),
    }
}

fn write_set(dir: &Path, prefix: &str, n_images: usize, labels: &[u8]) {
    std::fs::write(
        dir.join(format!("{prefix}-images-idx3-ubyte")),
        idx_bytes(&[n_images, 2, 2], &vec![255; n_images * 4]),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
        gz(&idx_bytes(&[labels.len()], labels)),
    )
    .unwrap();
}

#[test]
fn mnist_folder_checks() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "train", 3, &[0, 9, 4]);
    let err = mnist::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte"),
        "names the missing file: {err}"
    );
    write_set(dir.path(), "t10k", 2, &[1, 2]);
    let m = mnist::load(dir.path()).unwrap();
    assert_eq!((m.train.n, m.train.features, m.test.n), (3, 4, 2));
    assert!(m.train.x.iter().all(|&v| v == 1.0), "bytes scale to [0, 1]");
    write_set(dir.path(), "t10k", 2, &[1, 2, 3]);
    assert!(
        mnist::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("3 labels for 2 images")
    );
    write_set(dir.path(), "t10k", 2, &[1, 10]);
    assert!(
        mnist::load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("label 10")
    );
    assert!(
        mnist::load(&dir.path().join("none"))
            .unwrap_err()
            .to_string()
            .contains("none")
    );
}

#[test]
fn iris_csv_format() {
    let p = Path::new("iris.csv");
    let (d, names) = iris::parse("3,2,a,b\n1,2,0\n3,4.5,1\n-1,0,1\n", p).unwrap();
    assert_eq!((d.n, d.features, d.classes), (3, 2, 2));
    assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.5, -1.0, 0.0]);
    assert_eq!(d.y, vec![0, 1, 1]);
    assert_eq!(names, vec!["a", "b"]);
    let bad = |text: &str, needle: &str| {
        let e = iris::parse(text, p).unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    };
    bad("", "empty file");
    bad("x,2,a,b\n", "not a count");
    bad("1,2\n", "class names");
    bad("1,2,a,b\n1,2,3,0\n", "4 fields");
    bad("1,2,a,b\n1,zz,0\n", "\"zz\" is not a number");
    bad("1,2,a,b\n1,2,5\n", "class index 5");
    bad("2,2,a,b\n1,2,0\n", "1 rows, the header declares 2");
    let (real, _) = iris::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/iris/iris.csv"
    )))
    .unwrap();
    assert_eq!((real.n, real.features, real.classes), (150, 4, 3));
}
