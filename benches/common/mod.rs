//! Command-line arguments shared by the interleaved benchmarks.

use std::time::Duration;

/// `[THREADS [SECONDS]]` after `cargo bench --bench NAME --`: a comma list of thread counts
/// (default 1 and 2) and the time budget per case (default `default_secs`). Flags such as
/// cargo's `--bench` are ignored.
pub fn threads_and_budget(default_secs: f64) -> (Vec<usize>, Duration) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let threads = match args.first() {
        Some(t) => t
            .split(',')
            .map(|x| x.parse().expect("THREADS: a number or comma list"))
            .collect(),
        None => vec![1, 2],
    };
    let secs = args
        .get(1)
        .map_or(default_secs, |s| s.parse().expect("SECONDS: a number"));
    (threads, Duration::from_secs_f64(secs))
}
