#!/usr/bin/env bash
# The differentiable-search figures of docs/performance.md ("DARTS family on NB201 /
# Fashion-MNIST"): DARTS, DARTS-PT and PC-DARTS on the NB201 space reduced for CPU (C = 8,
# one cell per stage, 28x28x1 input), 10,000 Fashion-MNIST training images split 50/50 into
# weights and architecture data, batch 64, 10 search epochs, one thread per run, seeds 0-2.
# Each derived cell is looked up in NAS-Bench-201's CIFAR-10 table as a quality signal.
#   scripts/darts_figures.sh [OUT_DIR] [SEEDS...]     (about 5 minutes per run on this VM)
# ALGOS="darts pc-darts" restricts the algorithms run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/darts_figures}"
shift || true
SEEDS=("${@:-0 1 2}")
SEEDS=(${SEEDS[@]})
TABLE=../shared/data/nb201/nb201_cifar10_200ep.csv
COMMON=(--space search_spaces/nb201.json --set C=8 --set N=1 --set "input=[1,28,28]" --data fashion-mnist
        --subset 10000 --epochs 10 --batch 64 --threads 1 --evaluator "table:$TABLE")
run() {  # run NAME SEED ARGS...
  local name=$1 seed=$2
  shift 2
  local dir="$OUT/$name-seed$seed"
  echo "== $name seed $seed"
  build/bin/nasforge search "${COMMON[@]}" --seed "$seed" --out "$dir" --resume "$@" 2>"$dir.log" | tail -n 9
}
mkdir -p "$OUT"
ALGOS=" ${ALGOS:-darts darts-pt pc-darts} "
want() { [[ "$ALGOS" == *" $1 "* ]]; }
for seed in "${SEEDS[@]}"; do
  want darts && run darts "$seed" --strategy darts
  # DARTS-PT: the same 10 DARTS epochs, then 6 projections one epoch apart, each op scored on
  # 2,000 architecture-split images.
  want darts-pt && run darts-pt "$seed" --strategy darts-pt --strategy-options '{"pt_interval": 1, "pt_eval_samples": 2000}'
  # PC-DARTS: K = 2 (4 of 8 channels through the ops), edge normalisation, 3 warm-up epochs
  # (the paper's 15 of 50, scaled), DARTS's lr 0.025 (the paper's 0.1 goes with batch 256).
  want pc-darts && run pc-darts "$seed" --strategy pc-darts --lr 0.025 --strategy-options '{"partial_channels": 2, "warmup_epochs": 3}'
done
exit 0
