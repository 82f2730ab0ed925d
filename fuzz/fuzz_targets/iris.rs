//! The iris CSV reader on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mathblocks::data::iris;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((d, names)) = iris::parse(text, Path::new("fuzz.csv")) {
        assert_eq!(d.x.len(), d.n * d.features);
        assert_eq!(d.y.len(), d.n);
        assert!(d.y.iter().all(|&c| (c as usize) < names.len()));
    }
});
