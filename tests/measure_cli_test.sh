#!/usr/bin/env bash
# `nasforge measure --samples N --out CSV`: a table of measured networks that `predictor fit`
# reads, written row by row and resumable; device and energy errors; a bare energy model in
# `nasforge predict`.
#   measure_cli_test.sh NASFORGE_EXE SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
space="$src/search_spaces/nb201.json"
small=(--set C=8 --set N=1 --set input=[1,16,16])
rm -rf "$work"
mkdir -p "$work"
"$exe" measure --space "$space" "${small[@]}" --samples 6 --seed 3 --out "$work/t.csv" | tee "$work/m.log"
grep -q "measured 6 architecture(s) of nb201 (0 already in the table)" "$work/m.log"
[ "$(head -1 "$work/t.csv")" = "arch,latency_ms" ] || { echo "FAIL: header"; exit 1; }
[ "$(wc -l < "$work/t.csv")" -eq 7 ] || { echo "FAIL: expected 6 rows"; exit 1; }
# Resume after an interruption: the rows kept stay as they were, the missing ones come back.
head -3 "$work/t.csv" > "$work/r.csv"
"$exe" measure --space "$space" "${small[@]}" --samples 6 --seed 3 --out "$work/r.csv" --resume | tee "$work/r.log"
grep -q "measured 4 architecture(s) of nb201 (2 already in the table)" "$work/r.log"
[ "$(head -3 "$work/r.csv")" = "$(head -3 "$work/t.csv")" ] || { echo "FAIL: resume rewrote kept rows"; exit 1; }
diff <(cut -d, -f1 "$work/t.csv") <(cut -d, -f1 "$work/r.csv") || { echo "FAIL: resume measured other networks"; exit 1; }
# An interrupted last row (no newline) is dropped and measured again; an existing table is
# never overwritten without --resume.
head -4 "$work/t.csv" > "$work/p.csv"
printf '%s' "$(sed -n 5p "$work/t.csv" | cut -c1-20)" >> "$work/p.csv"
"$exe" measure --space "$space" "${small[@]}" --samples 6 --seed 3 --out "$work/p.csv" --resume | grep -q "measured 3 architecture(s)"
diff <(cut -d, -f1 "$work/t.csv") <(cut -d, -f1 "$work/p.csv") || { echo "FAIL: partial row not replaced"; exit 1; }
if "$exe" measure --space "$space" "${small[@]}" --samples 6 --seed 3 --out "$work/p.csv" 2> "$work/e0.log"; then
  echo "FAIL: an existing table was overwritten"; exit 1
fi
grep -q "exists; --resume continues it" "$work/e0.log"
# The table is a predictor's training table.
"$exe" predictor fit --space "$space" "${small[@]}" --table "$work/t.csv" --target latency_ms --train 4 \
  --out "$work/p.json" | grep -q "trained on 4 rows, tested on 2"
# Beside a reference network: two more columns, the relative one a predictor's target; one
# network alone prints its relative latency too.
ref='|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
"$exe" measure --space "$space" "${small[@]}" --samples 5 --seed 3 --reference "$ref" --out "$work/ref.csv" \
  | grep -q "measured 5 architecture(s)"
[ "$(head -1 "$work/ref.csv")" = "arch,latency_ms,reference_ms,relative_latency" ] || { echo "FAIL: reference header"; exit 1; }
awk -F, 'NR > 1 && !($3 > 0 && $4 > 0 && ($2 / $3 - $4) ^ 2 < 1e-6) { bad = 1 } END { exit bad }' "$work/ref.csv" \
  || { echo "FAIL: relative_latency is not latency_ms / reference_ms"; exit 1; }
"$exe" predictor fit --space "$space" "${small[@]}" --table "$work/ref.csv" --target relative_latency --train 3 \
  --out "$work/pr.json" | grep -q "trained on 3 rows, tested on 2"
"$exe" measure --space "$space" "${small[@]}" --arch "$ref" --reference "$ref" | grep -Eq "^relative_latency [0-9.]+ \(the reference"
# Clear errors: a device that is not one, a resume of another kind of table, --samples without --out.
if "$exe" measure --space "$space" --samples 2 --out "$work/x.csv" --device gpu 2> "$work/e1.log"; then
  echo "FAIL: --device gpu accepted"; exit 1
fi
grep -q 'device: expected cpu, cuda or cuda:N, found "gpu"' "$work/e1.log"
# (--energy: no energy counter here, or one, and then the latency-only table cannot be resumed.)
if "$exe" measure --space "$space" "${small[@]}" --samples 6 --seed 3 --out "$work/t.csv" --resume --energy \
     2> "$work/e2.log"; then
  echo "FAIL: --energy resumed a latency-only table"; exit 1
fi
grep -Eq 'not available here|cannot resume: expected the header "arch,latency_ms,energy_mj,watts"' "$work/e2.log"
if "$exe" measure --space "$space" --samples 2 2> "$work/e3.log"; then echo "FAIL: no --out accepted"; exit 1; fi
grep -q "expected --out CSV" "$work/e3.log"
# A bare energy cost model (CostModel::to_json) predicts directly.
echo '{"kind": "energy", "batch": 256}' > "$work/energy.json"
"$exe" predict --space "$space" --model "$work/energy.json" \
  --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|' | grep -q "^energy_mj 551.25"
echo "OK: measure tables"
