//! The IDX reader on any bytes, plain or gzipped (gzip is detected by its magic bytes), and the
//! MNIST checks on top of it: only `Ok` or a `DataError`, never a panic, a hang or a huge
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mathblocks::data::idx;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = idx::from_file_bytes(data, Path::new("fuzz.idx")) {
        assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
    }
});
