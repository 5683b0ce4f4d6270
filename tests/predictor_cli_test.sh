#!/usr/bin/env bash
# `nasforge predictor fit` and `nasforge predict` on a made-up but exactly additive table
# (latency = 1 + a cost per op): unpenalised ridge must recover it exactly.
#   predictor_cli_test.sh NASFORGE_EXE SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
python3 "$src/tests/data/make_nb201_table.py" "$work/table.csv" additive
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
# Stage counts (NB201: the one-hot encoding again) with lambda by leave-one-out: the saved
# model keeps its feature options, so predict rebuilds the same features; a tiny lambda wins.
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --model ridge --model-options '{"lambda": "auto"}' --features counts --train 60 --seed 1 --out "$work/counts.json" | tee "$work/counts.log"
grep -q "within ±10% 100.0%" "$work/counts.log"
grep -q '"stage_counts":true' "$work/counts.json"
"$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/counts.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' | grep -Eq "^lat (19|18\.99[0-9]*|19\.00[0-9]*)$"
if "$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --features count --out "$work/x.json" 2> "$work/err2.log"; then
  echo "FAIL: an unknown feature was accepted"; exit 1
fi
grep -q "expected onehot, pairwise, counts, first, first-delta, edges, costs, network, pruned or stats" "$work/err2.log"
# Edge counts: the table's cost per op is the same on every edge, so 6 unknowns, and 10 rows
# are enough to recover it (one-hot's 31 unknowns are not).
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --model ridge --model-options '{"lambda": 0}' --features edges --train 10 --seed 1 --out "$work/edges.json" | tee "$work/edges.log"
grep -q "within ±10% 100.0%" "$work/edges.log"
grep -q '"edge_counts":true' "$work/edges.json"
# With the analytic costs beside them (on NB201 they are linear in the edge counts: no harm).
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --model ridge --model-options '{"lambda": "auto", "loss": "huber"}' --features edges,costs --train 30 --seed 1 \
  --out "$work/costs.json" | tee "$work/costs.log"
grep -q "within ±10% 100.0%" "$work/costs.log"
grep -q '"linear_costs":true' "$work/costs.json"
grep -q '"linear_cost_scale"' "$work/costs.json"
grep -q '"loss":"huber"' "$work/costs.json"
# A fresh process rebuilds the costs' scale from the space and finds it the same.
"$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/costs.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' | grep -Eq "^lat (19|18\.99[0-9]*|19\.00[0-9]*)$"
# A model whose saved scale differs (another version of the analytic costs) is refused.
python3 -c "
import json, sys
m = json.load(open(sys.argv[1])); m['features']['linear_cost_scale']['mean'][0] *= 1.01
json.dump(m, open(sys.argv[2], 'w'))" "$work/costs.json" "$work/costs_other.json"
if "$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/costs_other.json" --arch '[0,0,0,0,0,0]' 2> "$work/err4.log"; then
  echo "FAIL: a model with another linear-cost scale was accepted"; exit 1
fi
grep -q "refit it" "$work/err4.log"
# First blocks as deviations parse and fit (NB201 has no stages: the one-hot entries again).
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --model ridge --model-options '{"lambda": "auto"}' --features first-delta --train 60 --seed 1 --out "$work/delta.json" > /dev/null
grep -q '"stage_first_delta":true' "$work/delta.json"
"$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/edges.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' | grep -Eq "^lat (19|18\.99[0-9]*|19\.00[0-9]*)$"
if "$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --features first,first-delta --out "$work/x.json" 2> "$work/err3.log"; then
  echo "FAIL: first and first-delta together were accepted"; exit 1
fi
grep -q "stage_first_apart and stage_first_delta are two treatments" "$work/err3.log"
# Alternatives: on a table of what a graph runtime runs (dead branches dropped), ridge's
# leave-one-out error on the training rows picks the pruned graph's features, and the saved
# model rebuilds them: the dead 3x3 conv of this cell costs nothing (1 + 1.0 + 0.1 + 0.5).
python3 "$src/tests/data/make_nb201_table.py" "$work/pruned.csv" pruned
"$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/pruned.csv" --target lat \
  --model ridge --model-options '{"lambda": "auto"}' --features 'edges|edges,pruned' --train 60 --seed 1 \
  --out "$work/pruned.json" | tee "$work/pruned.log"
grep -Eq 'features by leave-one-out on the training rows: "edges" [0-9.e+-]+ \*"edges,pruned" [0-9.e+-]+ ' "$work/pruned.log"
grep -q "within ±10% 100.0%" "$work/pruned.log"
grep -q '"pruned_graph":true' "$work/pruned.json"
"$exe" predict --space "$src/search_spaces/nb201.json" --model "$work/pruned.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|' | tee "$work/pruned_predict.log"
grep -Eq "^lat (2\.6|2\.59[5-9][0-9]*|2\.60[0-4][0-9]*)$" "$work/pruned_predict.log"
# An empty alternative is a usage error, not a silent one-hot.
if "$exe" predictor fit --space "$src/search_spaces/nb201.json" --table "$work/table.csv" --target lat \
  --features 'edges||edges,pruned' --out "$work/x.json" 2> "$work/err5.log"; then
  echo "FAIL: an empty feature alternative was accepted"; exit 1
fi
grep -q "alternative 2 of 3" "$work/err5.log"
echo "OK: predictor fit and predict"
