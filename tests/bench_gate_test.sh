#!/usr/bin/env bash
# nasforge_bench_gate on handmade runs: a check passes when it passes in at least one run, a
# check that fails in every run fails the gate, and ratios are never mixed across runs.
#   bench_gate_test.sh NASFORGE_BENCH_GATE_EXE WORK_DIR
set -euo pipefail
gate=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cat > "$work/base.json" <<'JSON'
{"reference": "Ref", "threshold": 0.5,
 "benchmarks": {"A": {"ratio": 2.0}, "B": {"ratio": 1.0}},
 "targets": {"B": {"max_ratio_to": "Ref", "max": 1.10}}}
JSON
# run FILE REF_NS A_NS B_NS: two repetitions of each benchmark; the gate takes the fastest.
run() {
  cat > "$1" <<JSON
{"benchmarks": [
 {"name": "Ref", "run_name": "Ref", "run_type": "iteration", "real_time": $2, "time_unit": "ns"},
 {"name": "Ref", "run_name": "Ref", "run_type": "iteration", "real_time": $(($2 * 2)), "time_unit": "ns"},
 {"name": "A", "run_name": "A", "run_type": "iteration", "real_time": $3, "time_unit": "ns"},
 {"name": "A", "run_name": "A", "run_type": "iteration", "real_time": $(($3 * 3)), "time_unit": "ns"},
 {"name": "B", "run_name": "B", "run_type": "iteration", "real_time": $4, "time_unit": "ns"}]}
JSON
}
expect() {  # expect EXIT_CODE GREP_PATTERN RUNS...
  local want=$1 pattern=$2 got=0
  shift 2
  "$gate" check "$work/base.json" "$@" > "$work/out.txt" 2>&1 || got=$?
  cat "$work/out.txt"
  [ "$got" -eq "$want" ] || { echo "FAIL: exit $got, expected $want for $*"; exit 1; }
  grep -q "$pattern" "$work/out.txt" || { echo "FAIL: no '$pattern' for $*"; exit 1; }
}
run "$work/good.json" 100 200 100      # A 2.0x, B 1.0x: all ok
run "$work/slow_a.json" 100 400 100    # A regressed (+100%)
run "$work/slow_b.json" 100 200 130    # B regressed (+30% is within threshold) but misses 1.10x
run "$work/fast_ref.json" 50 200 100   # the reference stalled the other way: both regress
expect 0 "all ok" "$work/good.json"
expect 1 "REGRESSED" "$work/slow_a.json"
expect 1 "target B: 1.300x Ref (at most 1.10x) MISSED" "$work/slow_b.json"
# One stalled run, one clean run: passes, and says which checks did not pass in every run.
expect 0 "not in every run: A" "$work/slow_a.json" "$work/good.json"
# A fails in one run and B's target in the other: each check passed once, so the gate passes.
expect 0 "not in every run: A, target B" "$work/slow_a.json" "$work/slow_b.json"
# A regressed in both runs: fails, naming it.
expect 1 "failed in every run: A" "$work/slow_a.json" "$work/fast_ref.json"
# Ratios stay within a run: the fast reference of one run never divides the other run's times.
run "$work/mixed1.json" 100 260 100    # A 2.6x (+30%)
run "$work/mixed2.json" 60 200 100     # A 3.3x, B 1.67x: fails alone
expect 0 "not in every run: A, B, target B" "$work/mixed1.json" "$work/mixed2.json"
# A baseline from three runs takes each benchmark's median ratio: the stalled run (A 4.0x)
# moves nothing.
cp "$work/base.json" "$work/new.json"
"$gate" baseline "$work/new.json" "$work/good.json" "$work/slow_a.json" "$work/mixed1.json" | tee "$work/out.txt"
grep -q "median ratio over 3 run(s)" "$work/out.txt" || { echo "FAIL: baseline message"; exit 1; }
tr -d ' \n' < "$work/new.json" | grep -q '"A":{"ratio":2.6' || { echo "FAIL: A's median ratio"; exit 1; }
tr -d ' \n' < "$work/new.json" | grep -q '"B":{"ratio":1.0' || { echo "FAIL: B's median ratio"; exit 1; }
# Bad input: a run without the reference is an error (exit 2) naming the file.
echo '{"benchmarks": []}' > "$work/empty.json"
expect 2 "empty.json: no reference benchmark Ref" "$work/empty.json"
echo "OK: bench gate"
