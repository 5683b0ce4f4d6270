#!/usr/bin/env bash
# Kill-and-resume test of `nasforge search`: a search killed with SIGKILL mid-run and resumed
# with --resume ends with exactly the history of an uninterrupted run.
#   search_kill_resume.sh NASFORGE_EXE SOURCE_DIR WORK_DIR
set -euo pipefail
exe=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
# A complete table of the NAS-Bench-201 space with made-up but deterministic metrics.
python3 "$src/tests/data/make_nb201_table.py" "$work/table.csv" search
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
