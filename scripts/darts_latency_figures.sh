#!/usr/bin/env bash
# The latency-aware DARTS figure of docs/performance.md: first-order DARTS on the same reduced
# NB201 / Fashion-MNIST setting as scripts/darts_figures.sh (seed 0), with the architecture loss
# plus LAMBDA x the supernet's expected latency (ms, from one latency table profiled here at
# batch 1 on one thread), for several LAMBDA; then every derived network is measured on this
# CPU (batch 1, 1 thread, fastest of the calls).
#   scripts/darts_latency_figures.sh [OUT_DIR] [LAMBDA...]     (about 5 minutes per run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/darts_latency}"
shift || true
LAMBDAS=("${@:-0 0.1 0.3 1}")
LAMBDAS=(${LAMBDAS[@]})
SPACE=(--space search_spaces/nb201.json --set C=8 --set N=1 --set "input=[1,28,28]")
mkdir -p "$OUT"
[[ -f "$OUT/lut.json" ]] || build/bin/nasforge profile "${SPACE[@]}" --samples 300 --calibration 20 --out "$OUT/lut.json"
for lambda in "${LAMBDAS[@]}"; do
  dir="$OUT/lambda$lambda"
  echo "== lambda $lambda"
  build/bin/nasforge search "${SPACE[@]}" --strategy darts --data fashion-mnist --subset 10000 --epochs 10 \
    --batch 64 --threads 1 --seed 0 --latency-weight "$lambda" --cost "$OUT/lut.json" --resume --out "$dir" \
    2>"$dir.log" | grep -E "derived|LUT latency|params"
  arch=$(grep -o '"arch": "[^"]*"' "$dir/result.json" | tail -1 | cut -d'"' -f4)
  build/bin/nasforge measure "${SPACE[@]}" --arch "$arch" --batch 1 --threads 1 --fastest
done
