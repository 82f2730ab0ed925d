//! End-to-end figures of the seed network on the shipped MNIST: training wall time of 5
//! epochs (batch 128, RMSprop), test accuracy, and inference throughput on the 10,000 test
//! images and latency of one image (best and median of repeated calls).
//!
//! `cargo bench --bench train [-- SEEDS]` (default seed 0; e.g. `-- 0,1,2,3,4`).

use mathblocks::data::mnist;
use mathblocks::nn::{Act, Dense, FitConfig, Loss, Optimizer, Sequential};
use std::path::Path;
use std::time::Instant;

fn main() {
    let seeds: Vec<u64> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map_or(vec![0], |s| {
            s.split(',')
                .map(|x| x.parse().expect("SEEDS: comma list"))
                .collect()
        });
    let m = mnist::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/mnist"
    )))
    .expect("data/mnist");
    println!(
        "isa {} | {} threads",
        mathblocks::kernels::isa().name(),
        rayon::current_num_threads()
    );
    let layers = [Dense::new(512, Act::Relu), Dense::new(10, Act::Softmax)];
    let mut last = None;
    for &seed in &seeds {
        let mut model =
            Sequential::new(784, &layers, Loss::SparseCategoricalCrossentropy, seed).unwrap();
        let cfg = FitConfig {
            epochs: 5,
            batch_size: 128,
            seed,
            shuffle: true,
        };
        let t = Instant::now();
        let h = model
            .fit(
                &m.train,
                None,
                &cfg,
                Optimizer::rmsprop(),
                |_| true,
                |_, _| {},
            )
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (loss, acc) = model.evaluate(&m.test);
        let epochs: Vec<String> = h.iter().map(|e| format!("{:.2}", e.seconds)).collect();
        println!(
            "seed {seed}: train {secs:.2} s (epochs {}) test_loss {loss:.4} test_accuracy {acc:.4}",
            epochs.join(" ")
        );
        last = Some(model);
    }
    let model = last.expect("at least one seed");
    let mut ws = model.workspace(2048);
    let mut out = vec![0f32; m.test.n * 10];
    let mut rates = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        model.predict_into(&m.test.x, m.test.n, &mut ws, &mut out);
        rates.push(m.test.n as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| b.partial_cmp(a).unwrap());
    println!(
        "inference, 10000 images: best {:.0} images/s, median {:.0}",
        rates[0],
        rates[rates.len() / 2]
    );
    let mut ws1 = model.workspace(1);
    let mut one = [0f32; 10];
    let mut lat = Vec::new();
    for i in 0..2000 {
        let x = &m.test.x[(i % 100) * 784..(i % 100 + 1) * 784];
        let t = Instant::now();
        model.predict_into(x, 1, &mut ws1, &mut one);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "one image: best {:.1} us, median {:.1} us",
        lat[0],
        lat[lat.len() / 2]
    );
}
