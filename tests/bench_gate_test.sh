#!/usr/bin/env bash
# nasforge_bench_gate on handmade runs: a check passes when it passes in at least one run, a
# check that fails in every run fails the gate, ratios are never mixed across runs, and a run
# whose reference (or a target's other benchmark) stalled cannot pass a check.
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
expect() {  # expect EXIT_CODE GREP_PATTERN RUNS... (against $base, by default base.json)
  local want=$1 pattern=$2 got=0
  shift 2
  "$gate" check "${base:-$work/base.json}" "$@" > "$work/out.txt" 2>&1 || got=$?
  cat "$work/out.txt"
  [ "$got" -eq "$want" ] || { echo "FAIL: exit $got, expected $want for $*"; exit 1; }
  grep -q "$pattern" "$work/out.txt" || { echo "FAIL: no '$pattern' for $*"; exit 1; }
}
run "$work/good.json" 100 200 100      # A 2.0x, B 1.0x: all ok
run "$work/slow_a.json" 100 400 100    # A regressed (+100%)
run "$work/slow_b.json" 100 200 130    # B regressed (+30% is within threshold) but misses 1.10x
run "$work/fast_a.json" 90 400 100    # A regressed again (4.4x), the reference within 20%
expect 0 "all ok$" "$work/good.json"
expect 1 "A .* +100.0%  REGRESSED" "$work/slow_a.json"
expect 1 "target B: 1.300x Ref (at most 1.10x) MISSED" "$work/slow_b.json"
# One stalled run, one clean run: passes, and says which checks did not pass in every run.
expect 0 "(not in every run: A)$" "$work/slow_a.json" "$work/good.json"
# A fails in one run and B's target in the other: each check passed once, so the gate passes.
expect 0 "(not in every run: A, target B)$" "$work/slow_a.json" "$work/slow_b.json"
# A regressed in both runs: fails, naming it.
expect 1 "passed in no counted run: A$" "$work/slow_a.json" "$work/fast_a.json"
# Ratios stay within a run: run 2's reference with run 1's A would make A 3.41x (+71%) and fail;
# judged run by run, A passes in run 1 (2.9x) and B's target in run 1 only.
run "$work/mixed1.json" 100 290 100    # A 2.9x (+45%), B 1.0x: all ok
run "$work/mixed2.json" 85 400 100     # A 4.7x: regressed; B 1.18x: target missed
expect 0 "(not in every run: A, target B)$" "$work/mixed1.json" "$work/mixed2.json"
# A stalled reference makes every ratio look good: a run whose reference took more than 20%
# longer than in the fastest run passes nothing, so it cannot hide a regression from the others.
run "$work/stalled_ref.json" 300 400 100   # alone: A 1.33x, B 0.33x, all ok
expect 0 "all ok$" "$work/stalled_ref.json"
expect 1 "passed in no counted run: A$" "$work/slow_a.json" "$work/stalled_ref.json"
grep -q "warning: the reference Ref took +200% longer" "$work/out.txt" || { echo "FAIL: no warning"; exit 1; }
# The same for a target's other benchmark: A's target divides by B, a stalled B passes it.
cat > "$work/base2.json" <<'JSON'
{"reference": "Ref", "threshold": 0.5, "benchmarks": {"A": {"ratio": 2.0}},
 "targets": {"A": {"max_ratio_to": "B", "max": 2.5}}}
JSON
run "$work/a_miss.json" 100 290 100      # A 2.9x B: target missed (A's ratio +45% is ok)
run "$work/b_stalled.json" 100 290 150   # A 1.93x B, but B took 50% longer than in a_miss
base="$work/base2.json" expect 0 "target A: 1.933x B (at most 2.50x) met$" "$work/b_stalled.json"
base="$work/base2.json" expect 1 "passed in no counted run: target A$" "$work/a_miss.json" \
  "$work/b_stalled.json"
grep -q "met (not counted: B stalled in this run)" "$work/out.txt" || { echo "FAIL: B stall"; exit 1; }
# A baseline from three runs takes each benchmark's median ratio (A: 2.0, 4.0, 2.9): the stalled run
# moves nothing. From two runs the median is the mean of the two (2.45).
cp "$work/base.json" "$work/new.json"
"$gate" baseline "$work/new.json" "$work/good.json" "$work/slow_a.json" "$work/mixed1.json" | tee "$work/out.txt"
grep -q "median ratio over 3 run(s)" "$work/out.txt" || { echo "FAIL: baseline message"; exit 1; }
tr -d ' \n' < "$work/new.json" | grep -q '"A":{"ratio":2.9' || { echo "FAIL: A's median ratio"; exit 1; }
tr -d ' \n' < "$work/new.json" | grep -q '"B":{"ratio":1.0' || { echo "FAIL: B's median ratio"; exit 1; }
"$gate" baseline "$work/new.json" "$work/good.json" "$work/mixed1.json" > "$work/out.txt"
tr -d ' \n' < "$work/new.json" | grep -q '"A":{"ratio":2.4[45]' || { echo "FAIL: two-run median"; exit 1; }
# Bad input: a run without the reference is an error (exit 2) naming the file.
echo '{"benchmarks": []}' > "$work/empty.json"
expect 2 "empty.json: no reference benchmark Ref" "$work/empty.json"
echo "OK: bench gate"
