#!/usr/bin/env bash
# Runs the benchmarks and compares them with the committed baselines (see docs/performance.md):
#   build/bin/nasforge_bench       vs benchmarks/baseline.json        (core)
#   build/bin/nasforge_torch_bench vs benchmarks/baseline_torch.json  (LibTorch; when built)
# `scripts/bench_gate.sh --update` rewrites the baselines' ratios from three fresh runs instead
# (each benchmark's median ratio; do it on an idle machine and commit the result with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
# Interleaved repetitions: the reference and every tracked benchmark sample the same stretches
# of machine time, so a slow spell of a shared host shifts them together.
run() {  # run NAME BINARY REPETITIONS OUT
  "build/bin/$2" --benchmark_repetitions="$3" --benchmark_enable_random_interleaving=true \
    --benchmark_min_time=0.05 --benchmark_out="$4.json" --benchmark_out_format=json \
    > "$4.txt"
  echo "bench_gate: $2 console output in $4.txt"
}
gate() {  # gate NAME BINARY REPETITIONS BASELINE
  run "$1" "$2" "$3" "build/bench/$1"
  if [[ "$MODE" == "--update" ]]; then  # the median ratio of three runs
    run "$1" "$2" "$3" "build/bench/$1.2"
    run "$1" "$2" "$3" "build/bench/$1.3"
    build/bin/nasforge_bench_gate baseline "$4" build/bench/"$1"{,.2,.3}.json
    return 0
  fi
  # A shared machine can stall any benchmark of a run; a real regression shows in most runs. So
  # after a failure measure again (up to three runs in all) and let each check pass when it
  # passed in any run so far (nasforge_bench_gate judges each run by itself, and ignores the
  # passes of a run whose reference stalled).
  local runs=("build/bench/$1.json") attempt
  for attempt in 2 3; do
    local rc=0
    build/bin/nasforge_bench_gate check "$4" "${runs[@]}" || rc=$?
    [[ $rc == 0 ]] && return 0
    [[ $rc == 1 ]] || exit "$rc"  # 2: bad input (a missing file, a broken baseline), not noise
    echo "bench_gate: $1 failed in ${#runs[@]} run(s); measuring again"
    run "$1" "$2" "$3" "build/bench/$1.$attempt"
    runs+=("build/bench/$1.$attempt.json")
  done
  build/bin/nasforge_bench_gate check "$4" "${runs[@]}"
}
MODE="${1:-}"
gate core nasforge_bench 7 benchmarks/baseline.json
if [[ -x build/bin/nasforge_torch_bench ]]; then
  gate torch nasforge_torch_bench 5 benchmarks/baseline_torch.json
else
  echo "bench_gate: nasforge_torch_bench not built (NASFORGE_WITH_TORCH=OFF); LibTorch gate skipped"
fi
