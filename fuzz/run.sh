#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 660) one after another, starting from the seeds
# in seeds/<target>, and keeps libFuzzer's log of each in logs/<target>.log.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-660}
mkdir -p logs
for t in idx iris safetensors; do
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -timeout=10 > "logs/$t.log" 2>&1 || echo "$t: fuzzer stopped with an error, see logs/$t.log"
done
