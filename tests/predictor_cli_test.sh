#!/usr/bin/env bash
# `nasforge predictor fit` and `nasforge predict` on a made-up but exactly additive table
# (latency = 1 + a cost per op): unpenalised ridge must recover it exactly.
#   predictor_cli_test.sh NASFORGE_EXE SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
python3 - "$work/table.csv" <<'PY'
import itertools, sys
ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
cost = [0.0, 0.1, 1.0, 3.0, 0.5]
with open(sys.argv[1], "w") as f:
    f.write("arch_str,lat\n")
    for c in itertools.product(range(5), repeat=6):
        f.write("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(ops[k] for k in c)) + "," + str(1 + sum(cost[k] for k in c)) + "\n")
PY
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --model ridge --model-options '{"lambda": 0}' --train 60 --seed 1 --out "$work/model.json" | tee "$work/fit.log"
grep -Eq "spearman (1.0000|0.99)" "$work/fit.log"  # ties in y: 1e-10 noise breaks them
grep -q "within ±10% 100.0%" "$work/fit.log"
"$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/model.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' | tee "$work/predict.log"
grep -q "^lat 19$" "$work/predict.log"
# A model of another space is refused.
if "$exe" predict --space "$src/search_spaces/nb201.json" --set C=8 --model "$work/model.json" --arch '[0,0,0,0,0,0]' 2> "$work/err.log"; then
  echo "FAIL: a model of another space was accepted"; exit 1
fi
grep -q "fitted on space" "$work/err.log"
echo "OK: predictor fit and predict"
