// The benchmark regression gate.
//
//   nasforge_bench_gate check    BASELINE RUN.json [RUN.json ...]
//       exit 1 when a tracked benchmark regressed or a target was missed in every run given
//       (a run whose denominator stalled does not count; see below)
//   nasforge_bench_gate baseline BASELINE RUN.json [RUN.json ...]
//       rewrite BASELINE's ratios: each benchmark's median over the runs of its ratio to the
//       reference of the same run
//
// RUN.json is Google Benchmark's JSON output with repetitions (the fastest repetition of each
// benchmark is used). Each tracked benchmark's time is divided by the reference benchmark's
// from the same run; a benchmark regresses when that ratio grows by more than the baseline's
// threshold. The baseline also holds targets checked on every run: absolute (max time, min items
// per second) and relative to another benchmark of the same run ({"max_ratio_to": NAME, "max":
// 1.10}), in time or, with {"counter": "peak_bytes"}, in a user counter (memory is deterministic,
// so such a target is exact).
//
// Given several runs (scripts/bench_gate.sh measures again after a failure), each check is judged
// on each run by itself and passes when it passes in at least one: ratios are never mixed across
// runs, since a reference that was fast in one run and a benchmark fast in another would make a
// ratio neither run saw. A stall only ever adds time, and a stalled denominator (the reference,
// or a target's other benchmark) makes every ratio look good; so a pass counts only from a run
// whose denominator is within kTrustedSlack of its fastest time over the runs given.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

// A run's pass counts only when the benchmark it divides by is at most this much slower than
// in the fastest of the runs given (the fastest repetitions of one benchmark vary by a few
// percent between quiet runs here; a stall adds 50-100%).
constexpr double kTrustedSlack = 0.20;

// True when `ns`, a time of benchmark `name` in one run, is a stall against the runs given.
bool stalled(const std::map<std::string, double>& fastest, const std::string& name, double ns) {
  return ns > (1 + kTrustedSlack) * fastest.at(name);
}

struct Median {
  double real_ns = 0;
  double items_per_second = 0;
  json entry;  // the repetition's JSON (user counters are its extra fields)
};

double to_ns(double t, const std::string& unit) {
  if (unit == "ns") return t;
  if (unit == "us") return t * 1e3;
  if (unit == "ms") return t * 1e6;
  if (unit == "s") return t * 1e9;
  throw std::runtime_error("unknown time unit " + unit);
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open", path));
  return json::parse(in, nullptr, true, true);
}

// The fastest repetition of each benchmark: interference from the rest of a shared machine
// only ever adds time, so the minimum is the most repeatable statistic. (When the run holds
// only aggregates, their median is used.)
std::map<std::string, Median> medians(const json& run) {
  std::map<std::string, Median> out, agg;
  for (const auto& b : run.at("benchmarks")) {
    const std::string type = b.value("run_type", "");
    std::string name = b.value("run_name", b.at("name").get<std::string>());
    Median m;
    m.real_ns = to_ns(b.at("real_time").get<double>(), b.value("time_unit", "ns"));
    m.items_per_second = b.value("items_per_second", 0.0);
    m.entry = b;
    if (type == "iteration") {
      auto it = out.find(name);
      if (it == out.end() || m.real_ns < it->second.real_ns) out[name] = m;
    } else if (type == "aggregate" && b.value("aggregate_name", "") == "median") {
      agg[name] = m;
    }
  }
  for (const auto& [name, m] : agg) out.emplace(name, m);
  return out;
}

int usage() {
  std::fputs("usage: nasforge_bench_gate check|baseline BASELINE.json RUN.json [RUN.json ...]\n",
             stderr);
  return 2;
}

// One check of one run: a tracked benchmark's ratio or a target, and the line that reports it.
struct Verdict {
  std::string key;  // the same check in every run has the same key
  bool ok = false;
  std::string line;
  bool trusted = true;  // false: its denominator stalled in this run, so a pass does not count
};

// Every check the baseline asks for, on one run. `fastest` holds each benchmark's fastest time
// over all the runs given, to tell a stalled denominator.
std::vector<Verdict> check_run(const json& base, const std::map<std::string, Median>& run,
                               const std::string& ref, double threshold,
                               const std::map<std::string, double>& fastest) {
  std::vector<Verdict> out;
  const double ref_ns = run.at(ref).real_ns;
  const bool ref_stalled = stalled(fastest, ref, ref_ns);
  for (const auto& [name, entry] : base.at("benchmarks").items()) {
    auto it = run.find(name);
    if (it == run.end()) {
      out.push_back({name, false, fmt::format("{:<36} missing from the run", name)});
      continue;
    }
    double ratio = it->second.real_ns / ref_ns, base_ratio = entry.at("ratio").get<double>();
    double change = ratio / base_ratio - 1;
    bool bad = change > threshold;
    out.push_back({name, !bad,
                   fmt::format("{:<36} {:>10.0f}ns {:>10.4f} {:>10.4f} {:>+7.1f}%  {}", name,
                               it->second.real_ns, ratio, base_ratio, 100 * change,
                               bad ? "REGRESSED" : ref_stalled ? "ok (not counted)" : "ok"),
                   !ref_stalled});
  }
  const json targets = base.value("targets", json::object());
  for (const auto& [name, t] : targets.items()) {
    const std::string key = "target " + name;
    auto it = run.find(name);
    if (it == run.end()) {
      out.push_back({key, false, fmt::format("target {}: missing from the run", name)});
      continue;
    }
    if (t.contains("max_ratio_to")) {
      // A ratio between two benchmarks of the same run, e.g. supernet step / extracted step.
      const std::string other = t["max_ratio_to"].get<std::string>();
      auto o = run.find(other);
      if (o == run.end()) {
        out.push_back({key, false, fmt::format("target {}: {} missing from the run", name, other)});
        continue;
      }
      const std::string counter = t.value("counter", "");
      auto value = [&](const Median& m) {
        if (counter.empty()) return m.real_ns;
        if (!m.entry.contains(counter)) throw std::runtime_error(fmt::format("target {}: no counter {}", name, counter));
        return m.entry.at(counter).get<double>();
      };
      const double r = value(it->second) / value(o->second), max = t.at("max").get<double>();
      const bool missed = r > max;
      // A counter (peak bytes) does not stall; a time does.
      const bool trusted = !counter.empty() || !stalled(fastest, other, o->second.real_ns);
      out.push_back({key, !missed,
                     fmt::format("target {}: {:.3f}x {}{} (at most {:.2f}x) {}", name, r, other,
                                 counter.empty() ? "" : " in " + counter, max,
                                 missed    ? "MISSED"
                                 : trusted ? "met"
                                           : "met (not counted: " + other + " stalled in this run)"),
                     trusted});
    } else if (t.contains("max_real_ns") && it->second.real_ns > t["max_real_ns"].get<double>()) {
      out.push_back({key, false,
                     fmt::format("target {}: {:.0f} ns > {:.0f} ns MISSED", name, it->second.real_ns,
                                 t["max_real_ns"].get<double>())});
    } else if (t.contains("min_items_per_second") &&
               it->second.items_per_second < t["min_items_per_second"].get<double>()) {
      out.push_back({key, false,
                     fmt::format("target {}: {:.0f}/s < {:.0f}/s MISSED", name, it->second.items_per_second,
                                 t["min_items_per_second"].get<double>())});
    } else {
      out.push_back({key, true,
                     fmt::format("target {}: met ({:.0f} ns, {:.0f}/s)", name, it->second.real_ns,
                                 it->second.items_per_second)});
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string mode = argv[1], base_path = argv[2];
  if (mode != "check" && mode != "baseline") return usage();
  try {
    json base = read_json(base_path);
    const std::string ref = base.at("reference").get<std::string>();
    std::vector<std::map<std::string, Median>> runs;
    for (int i = 3; i < argc; ++i) {
      runs.push_back(medians(read_json(argv[i])));
      if (!runs.back().count(ref)) throw std::runtime_error(fmt::format("{}: no reference benchmark {}", argv[i], ref));
    }

    if (mode == "baseline") {
      // Each benchmark's ratio to the reference of its own run, the median over the runs: one
      // stalled run then moves no baseline.
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        const size_t n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
      };
      json tracked = json::object();
      for (const auto& [name, unused] : runs[0]) {
        if (name == ref) continue;
        std::vector<double> ratios, times;
        for (size_t i = 0; i < runs.size(); ++i) {
          auto it = runs[i].find(name);
          if (it == runs[i].end()) throw std::runtime_error(fmt::format("{}: no benchmark {}", argv[3 + i], name));
          ratios.push_back(it->second.real_ns / runs[i].at(ref).real_ns);
          times.push_back(it->second.real_ns);
        }
        tracked[name] = {{"ratio", median(ratios)}, {"real_ns", median(times)}};
      }
      base["benchmarks"] = tracked;
      std::ofstream(base_path) << base.dump(2) << "\n";
      fmt::print("wrote {} tracked benchmarks to {} (median ratio over {} run(s))\n", tracked.size(), base_path,
                 runs.size());
      return 0;
    }

    // A check passes when it passes in at least one run whose denominator did not stall: a slow
    // spell of a shared host stalls one run's benchmarks at random, while a real regression or a
    // missed target shows in most runs, and a denominator that stalled against the other runs
    // given cannot hide it (a single run is taken as it is).
    std::map<std::string, int> passes;  // key -> runs it passed in (and counted)
    std::vector<std::string> order;     // keys in the baseline's order
    const double threshold = base.at("threshold").get<double>();
    std::map<std::string, double> fastest;  // each benchmark's fastest time over the runs
    for (const auto& run : runs) {
      for (const auto& [name, m] : run) {
        auto [it, fresh] = fastest.emplace(name, m.real_ns);
        if (!fresh) it->second = std::min(it->second, m.real_ns);
      }
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      if (runs.size() > 1) fmt::print("run {} of {}: {}\n", i + 1, runs.size(), argv[3 + i]);
      const double ref_ns = runs[i].at(ref).real_ns;
      if (stalled(fastest, ref, ref_ns)) {
        fmt::print("warning: the reference {} took {:+.0f}% longer than in the fastest run; this "
                   "run's ratios are too low, so its passes do not count\n",
                   ref, 100 * (ref_ns / fastest.at(ref) - 1));
      }
      fmt::print("{:<36} {:>12} {:>10} {:>10} {:>8}  {}\n", "benchmark", "fastest", "ratio",
                 "baseline", "change", "verdict");
      int failures = 0;
      for (const auto& v : check_run(base, runs[i], ref, threshold, fastest)) {
        fmt::print("{}\n", v.line);
        if (!passes.count(v.key)) order.push_back(v.key);
        passes[v.key] += v.ok && v.trusted;
        failures += !v.ok;
      }
      fmt::print("threshold +{:.0f}% relative to {}; {}\n", 100 * threshold, ref,
                 failures ? fmt::format("{} FAILED", failures) : std::string("all ok"));
    }
    std::vector<std::string> failed, some;
    for (const auto& key : order) {
      if (passes[key] == 0) failed.push_back(key);
      else if (passes[key] < static_cast<int>(runs.size())) some.push_back(key);
    }
    if (runs.size() > 1) {
      if (failed.empty()) {
        fmt::print("over {} runs every check passed at least once; all ok", runs.size());
        if (!some.empty()) fmt::print(" (not in every run: {})", fmt::join(some, ", "));
        fmt::print("\n");
      } else {
        fmt::print("over {} runs, passed in no counted run: {}\n", runs.size(),
                   fmt::join(failed, ", "));
      }
    }
    return failed.empty() ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nasforge_bench_gate: {}\n", e.what());
    return 2;
  }
}
