//! A stable-toolchain companion to the cargo-fuzz targets in `fuzz/`: random mutations of the
//! committed seed files (bit flips, byte changes, truncation, insertion, duplicated spans) fed
//! to each reader on every `cargo test`. A reader may accept or refuse a mutant but must never
//! panic; what it accepts must be consistent.

use mathblocks::data::{idx, iris};
use mathblocks::nn::checkpoint;
use mathblocks::rng::Rng;
use std::path::Path;

fn seeds(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = [0, 0xff, 0x7f, 0x80, b'9', b','][rng.below(6)];
            }
            2 => b.truncate(rng.below(len)),
            3 => {
                let i = rng.below(len).min(b.len());
                b.insert(i, rng.next_u64() as u8);
            }
            4 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = (i + 1 + rng.below(16)).min(b.len());
                let span = b[i..j].to_vec();
                b.splice(i..i, span);
            }
            _ => {}
        }
    }
    b
}

const MUTANTS: usize = 3000;

#[test]
fn idx_reader_survives_mutants() {
    let mut rng = Rng::new(1);
    let seeds = seeds("idx");
    let mut accepted = 0;
    for n in 0..MUTANTS {
        let m = mutate(&seeds[n % seeds.len()], &mut rng);
        if let Ok(a) = idx::from_file_bytes(&m, Path::new("m")) {
            assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
            accepted += 1;
        }
    }
    assert!(
        accepted > 0 && accepted < MUTANTS,
        "accepted {accepted} of {MUTANTS}"
    );
}

#[test]
fn iris_reader_survives_mutants() {
    let mut rng = Rng::new(2);
    let seeds = seeds("iris");
    let mut accepted = 0;
    for n in 0..MUTANTS {
        let m = mutate(&seeds[n % seeds.len()], &mut rng);
        let Ok(text) = std::str::from_utf8(&m) else {
            continue;
        };
        if let Ok((d, names)) = iris::parse(text, Path::new("m")) {
            assert_eq!((d.x.len(), d.y.len()), (d.n * d.features, d.n));
            assert!(d.y.iter().all(|&c| (c as usize) < names.len()));
            accepted += 1;
        }
    }
    assert!(
        accepted > 0 && accepted < MUTANTS,
        "accepted {accepted} of {MUTANTS}"
    );
}

#[test]
fn checkpoint_loader_survives_mutants() {
    let mut rng = Rng::new(3);
    let seeds = seeds("safetensors");
    let mut accepted = 0;
    for n in 0..MUTANTS {
        let m = mutate(&seeds[n % seeds.len()], &mut rng);
        if let Ok(model) = checkpoint::from_bytes(&m, Path::new("m")) {
            let p = model.predict(&vec![0.5; model.input_dim()], 1);
            assert_eq!(p.len(), model.output_dim());
            accepted += 1;
        }
    }
    assert!(
        accepted > 0 && accepted < MUTANTS,
        "accepted {accepted} of {MUTANTS}"
    );
}
