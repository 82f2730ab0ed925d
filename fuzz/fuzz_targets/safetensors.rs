//! The checkpoint loader on any bytes; a model it accepts must also predict without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mathblocks::nn::checkpoint;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = checkpoint::from_bytes(data, Path::new("fuzz.safetensors")) {
        let x = vec![0.5f32; model.input_dim()];
        let p = model.predict(&x, 1);
        assert_eq!(p.len(), model.output_dim());
    }
});
