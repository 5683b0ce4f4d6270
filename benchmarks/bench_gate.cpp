// The benchmark regression gate.
//
//   nasforge_bench_gate check    BASELINE RUN.json   exit 1 when a tracked benchmark regressed
//   nasforge_bench_gate baseline BASELINE RUN.json   rewrite BASELINE's ratios from RUN.json
//
// RUN.json is Google Benchmark's JSON output with repetitions (the fastest repetition of each
// benchmark is used). Each tracked benchmark's time is divided by the reference benchmark's
// from the same run; a benchmark regresses when that ratio grows by more than the baseline's threshold. The
// baseline also holds targets checked on every run: absolute (max time, min items per second)
// and relative to another benchmark of the same run ({"max_ratio_to": NAME, "max": 1.10}), in
// time or, with {"counter": "peak_bytes"}, in a user counter (memory is deterministic, so such
// a target is exact).
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

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
  std::fputs("usage: nasforge_bench_gate check|baseline BASELINE.json RUN.json\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return usage();
  const std::string mode = argv[1], base_path = argv[2], run_path = argv[3];
  if (mode != "check" && mode != "baseline") return usage();
  try {
    json base = read_json(base_path);
    auto run = medians(read_json(run_path));
    const std::string ref = base.at("reference").get<std::string>();
    if (!run.count(ref)) throw std::runtime_error(fmt::format("{}: no reference benchmark {}", run_path, ref));
    const double ref_ns = run[ref].real_ns;

    if (mode == "baseline") {
      json tracked = json::object();
      for (const auto& [name, m] : run) {
        if (name != ref) tracked[name] = {{"ratio", m.real_ns / ref_ns}, {"real_ns", m.real_ns}};
      }
      base["benchmarks"] = tracked;
      std::ofstream(base_path) << base.dump(2) << "\n";
      fmt::print("wrote {} tracked benchmarks to {}\n", tracked.size(), base_path);
      return 0;
    }

    const double threshold = base.at("threshold").get<double>();
    int failures = 0;
    fmt::print("{:<36} {:>12} {:>10} {:>10} {:>8}  {}\n", "benchmark", "fastest", "ratio", "baseline", "change", "verdict");
    for (const auto& [name, entry] : base.at("benchmarks").items()) {
      auto it = run.find(name);
      if (it == run.end()) {
        fmt::print("{:<36} missing from the run\n", name);
        ++failures;
        continue;
      }
      double ratio = it->second.real_ns / ref_ns, base_ratio = entry.at("ratio").get<double>();
      double change = ratio / base_ratio - 1;
      bool bad = change > threshold;
      failures += bad;
      fmt::print("{:<36} {:>10.0f}ns {:>10.4f} {:>10.4f} {:>+7.1f}%  {}\n", name, it->second.real_ns, ratio,
                 base_ratio, 100 * change, bad ? "REGRESSED" : "ok");
    }
    const json targets = base.value("targets", json::object());
    for (const auto& [name, t] : targets.items()) {
      auto it = run.find(name);
      if (it == run.end()) {
        fmt::print("target {}: missing from the run\n", name);
        ++failures;
        continue;
      }
      if (t.contains("max_ratio_to")) {
        // A ratio between two benchmarks of the same run, e.g. supernet step / extracted step.
        const std::string other = t["max_ratio_to"].get<std::string>();
        auto o = run.find(other);
        if (o == run.end()) {
          fmt::print("target {}: {} missing from the run\n", name, other);
          ++failures;
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
        failures += missed;
        fmt::print("target {}: {:.3f}x {}{} (at most {:.2f}x) {}\n", name, r, other,
                   counter.empty() ? "" : " in " + counter, max, missed ? "MISSED" : "met");
      } else if (t.contains("max_real_ns") && it->second.real_ns > t["max_real_ns"].get<double>()) {
        fmt::print("target {}: {:.0f} ns > {:.0f} ns MISSED\n", name, it->second.real_ns, t["max_real_ns"].get<double>());
        ++failures;
      } else if (t.contains("min_items_per_second") &&
                 it->second.items_per_second < t["min_items_per_second"].get<double>()) {
        fmt::print("target {}: {:.0f}/s < {:.0f}/s MISSED\n", name, it->second.items_per_second,
                   t["min_items_per_second"].get<double>());
        ++failures;
      } else {
        fmt::print("target {}: met ({:.0f} ns, {:.0f}/s)\n", name, it->second.real_ns, it->second.items_per_second);
      }
    }
    fmt::print("threshold +{:.0f}% relative to {}; {}\n", 100 * threshold, ref,
               failures ? fmt::format("{} FAILED", failures) : std::string("all ok"));
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nasforge_bench_gate: {}\n", e.what());
    return 2;
  }
}
