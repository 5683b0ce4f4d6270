#!/usr/bin/env bash
# Runs the core benchmarks and compares them with benchmarks/baseline.json (see
# docs/performance.md). `scripts/bench_gate.sh --update` rewrites the baseline's ratios from a
# fresh run instead (do it on an idle machine and commit the result with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
run() {
  # Interleaved repetitions: the reference and every tracked benchmark sample the same stretches
  # of machine time, so a slow spell of a shared host shifts them together.
  build/bin/nasforge_bench --benchmark_repetitions=7 --benchmark_enable_random_interleaving=true \
    --benchmark_min_time=0.05 --benchmark_out=build/bench/run.json --benchmark_out_format=json \
    > build/bench/console.txt
  echo "bench_gate: benchmark console output in build/bench/console.txt"
}
run
if [[ "${1:-}" == "--update" ]]; then
  build/bin/nasforge_bench_gate baseline benchmarks/baseline.json build/bench/run.json
  exit 0
fi
# A shared machine can stall one run; a real regression survives a second run.
if ! build/bin/nasforge_bench_gate check benchmarks/baseline.json build/bench/run.json; then
  echo "bench_gate: failed once; measuring again"
  run
  build/bin/nasforge_bench_gate check benchmarks/baseline.json build/bench/run.json
fi
