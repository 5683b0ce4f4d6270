#!/usr/bin/env bash
# Kill-and-resume test of `nasforge search`: a search killed with SIGKILL mid-run and resumed
# with --resume ends with exactly the history of an uninterrupted run.
#   search_kill_resume.sh NASFORGE_EXE SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
# A complete table of the NAS-Bench-201 space with made-up but deterministic metrics.
python3 - "$work/table.csv" <<'PY'
import itertools, sys
ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
with open(sys.argv[1], "w") as f:
    f.write("arch_str,acc,lat\n")
    for i, c in enumerate(itertools.product(range(5), repeat=6)):
        s = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(ops[k] for k in c))
        acc = sum((k in (2, 3)) * (j + 1) for j, k in enumerate(c)) + (i * 7919 % 1000) / 1000.0
        lat = 1 + sum(k * (6 - j) for j, k in enumerate(c)) + (i * 104729 % 100) / 100.0
        f.write(f"{s},{acc},{lat}\n")
PY
args=(search --space "$src/search_spaces/nb201.json" --strategy nsga2 --strategy-options '{"population": 20}'
      --evaluator "table:$work/table.csv" --objective acc:max --objective lat:min --constraint "lat<=60"
      --budget 200 --checkpoint-every 20 --seed 3 --threads 2)
"$exe" "${args[@]}" --out "$work/full" > "$work/full.log"

# The same search, slowed down so that it can be killed mid-run.
"$exe" "${args[@]}" --out "$work/killed" --sleep-ms 25 > "$work/killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [[ -f "$work/killed/checkpoint.json" ]] && break
  sleep 0.05
done
sleep 0.3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
if [[ -f "$work/killed/result.json" ]]; then
  echo "FAIL: the search finished before it could be killed"
  exit 1
fi
done_trials=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['history']))" "$work/killed/checkpoint.json")
echo "killed with $done_trials of 200 trials checkpointed"
"$exe" "${args[@]}" --out "$work/killed" --resume > "$work/resumed.log"
grep -q "resumed; 200 evaluations" "$work/resumed.log" || { echo "FAIL: no resume"; cat "$work/resumed.log"; exit 1; }
if ! cmp "$work/full/history.csv" "$work/killed/history.csv"; then
  echo "FAIL: the resumed history differs from the uninterrupted one"
  diff "$work/full/history.csv" "$work/killed/history.csv" | head
  exit 1
fi
echo "OK: resumed after a kill at $done_trials trials; history identical to the uninterrupted run"
