// The search driver (search.h): batches of proposals evaluated in parallel with oneTBB,
// atomic checkpoints, exact resume, result.json / history.csv / front.svg.
#include "nasforge/search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "detail/files.h"
#include "nasforge/error.h"
#include "nasforge/pareto.h"

namespace nasforge {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kCheckpointVersion = 1;

// Fills objectives and violation from metrics, or marks the trial failed when a metric the
// search needs is missing or not a finite number (a diverged network's NaN accuracy, say).
void score(Trial& t, const SearchOptions& o) {
  if (t.failed) return;
  t.objectives.clear();
  t.violation = 0;
  auto fail = [&](const std::string& metric, const char* why) {
    t.failed = true;
    t.error = fmt::format("metric \"{}\" {}", metric, why);
    t.objectives.clear();
    t.violation = 0;
  };
  auto value = [&](const std::string& metric, double& v) {
    auto it = t.metrics.find(metric);
    if (it == t.metrics.end()) return fail(metric, "is missing from the evaluator's result"), false;
    if (!std::isfinite(it->second)) return fail(metric, "is not a finite number"), false;
    v = it->second;
    return true;
  };
  double v = 0;
  for (const auto& obj : o.objectives) {
    if (!value(obj.metric, v)) return;
    t.objectives.push_back(obj.maximize ? -v : v);
  }
  for (const auto& c : o.constraints) {
    if (!value(c.metric, v)) return;
    t.violation += c.violation(t.metrics);
  }
  if (!o.budget.cost_metric.empty() && !value(o.budget.cost_metric, v)) return;
}

// Metrics as JSON: JSON has no NaN or infinity, so those are written as "nan", "inf", "-inf".
json metrics_json(const Metrics& m) {
  json j = json::object();
  for (const auto& [k, v] : m) {
    if (std::isfinite(v)) j[k] = v;
    else j[k] = std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  }
  return j;
}

Metrics metrics_from(const json& j) {
  Metrics m;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number()) m[k] = v.get<double>();
    else if (v.is_string()) m[k] = v == "inf" ? INFINITY : v == "-inf" ? -INFINITY : std::nan("");
  }
  return m;
}

json trial_json(const Trial& t) {
  return {{"id", t.id}, {"arch", t.arch}, {"metrics", metrics_json(t.metrics)}, {"failed", t.failed}, {"error", t.error},
          {"seconds", t.seconds}};
}

Trial trial_from(const json& j) {
  Trial t;
  t.id = j.at("id");
  t.arch = j.at("arch").get<Architecture>();
  t.metrics = metrics_from(j.at("metrics"));
  t.failed = j.at("failed");
  t.error = j.at("error");
  t.seconds = j.at("seconds");
  return t;
}

using detail::write_file_atomic;

// What a resumed search must share with the checkpoint it continues.
json settings_json(const SearchOptions& o) {
  json j{{"seed", o.seed}, {"objectives", json::array()}, {"constraints", json::array()}};
  for (const auto& obj : o.objectives) j["objectives"].push_back(obj.metric + (obj.maximize ? ":max" : ":min"));
  for (const auto& c : o.constraints) j["constraints"].push_back(fmt::format("{}{}{}", c.metric, c.at_most ? "<=" : ">=", c.bound));
  return j;
}

std::string arch_text(const SearchSpace& space, const Architecture& a) {
  return space.native_format() ? space.to_native(a) : space.to_json(a).dump();
}

json arch_json(const SearchSpace& space, const Architecture& a) {
  if (space.native_format()) return space.to_native(a);
  return space.to_json(a);
}

// Best feasible trial on the first objective (lowest id among ties).
std::optional<std::size_t> best_single(const std::vector<Trial>& h) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (h[i].failed || h[i].violation > 0) continue;
    if (!best || h[i].objectives[0] < h[*best].objectives[0]) best = i;
  }
  return best;
}

// ---- the SVG plot of a two-objective front --------------------------------------------------

std::string svg_plot(const SearchOptions& o, const std::vector<Trial>& h, const std::vector<std::size_t>& front,
                     const std::vector<Metrics>& true_front) {
  const std::string& ym = o.objectives[0].metric;  // vertical: the first objective
  const std::string& xm = o.objectives[1].metric;  // horizontal: the second
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto extend = [&](const Metrics& m) {
    x0 = std::min(x0, m.at(xm)), x1 = std::max(x1, m.at(xm));
    y0 = std::min(y0, m.at(ym)), y1 = std::max(y1, m.at(ym));
  };
  for (const auto& t : h) {
    if (!t.failed) extend(t.metrics);
  }
  for (const auto& m : true_front) extend(m);
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const double W = 720, H = 480, L = 70, R = 20, T = 30, B = 50;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::string s = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">)"
                              "\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                              W, H);
  s += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="black"/>)" "\n",
                   L, H - B, W - R, H - B, L, T, L, H - B);
  for (int k = 0; k <= 4; ++k) {
    double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
    s += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{:.4g}</text>)" "\n", px(xv), H - B + 16, xv);
    s += fmt::format(R"(<text x="{}" y="{:.1f}" text-anchor="end">{:.4g}</text>)" "\n", L - 6, py(yv) + 4, yv);
  }
  s += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{} ({})</text>)" "\n", (L + W - R) / 2, H - 12, xm,
                   o.objectives[1].maximize ? "max" : "min");
  s += fmt::format(R"~(<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{} ({})</text>)~" "\n",
                   (T + H - B) / 2, (T + H - B) / 2, ym, o.objectives[0].maximize ? "max" : "min");
  for (const auto& t : h) {
    if (t.failed) continue;
    s += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2" fill="#999"/>)" "\n", px(t.metrics.at(xm)), py(t.metrics.at(ym)));
  }
  auto polyline = [&](std::vector<std::pair<double, double>> pts, const char* color, double width) {
    std::sort(pts.begin(), pts.end());
    std::string p;
    for (auto [x, y] : pts) p += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    s += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="{}"/>)" "\n", p, color, width);
    for (auto [x, y] : pts) s += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)" "\n", px(x), py(y), color);
  };
  if (!true_front.empty()) {
    std::vector<std::pair<double, double>> pts;
    for (const auto& m : true_front) pts.emplace_back(m.at(xm), m.at(ym));
    polyline(pts, "#1f77b4", 1.5);
  }
  std::vector<std::pair<double, double>> found;
  for (std::size_t i : front) found.emplace_back(h[i].metrics.at(xm), h[i].metrics.at(ym));
  polyline(found, "#d62728", 2);
  s += fmt::format(R"(<text x="{}" y="18" fill="#d62728">front found ({})</text>)", L + 10, front.size());
  if (!true_front.empty()) s += fmt::format(R"(<text x="{}" y="18" fill="#1f77b4">true front ({})</text>)", L + 180, true_front.size());
  s += "\n</svg>\n";
  return s;
}

}  // namespace

Objective parse_objective(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || (text.substr(colon + 1) != "max" && text.substr(colon + 1) != "min")) {
    throw InvalidArgument(fmt::format("objective \"{}\": expected METRIC:max or METRIC:min", text));
  }
  return {text.substr(0, colon), text.substr(colon + 1) == "max"};
}

Constraint parse_constraint(const std::string& text) {
  for (const char* op : {"<=", ">="}) {
    auto p = text.find(op);
    if (p == std::string::npos || p == 0) continue;
    std::string num = text.substr(p + 2);
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || !std::isfinite(v)) break;
    return {text.substr(0, p), std::string(op) == "<=", v};
  }
  throw InvalidArgument(fmt::format("constraint \"{}\": expected METRIC<=NUMBER or METRIC>=NUMBER", text));
}

double Constraint::violation(const Metrics& m) const {
  auto it = m.find(metric);
  if (it == m.end()) return std::numeric_limits<double>::infinity();
  return at_most ? std::max(0.0, it->second - bound) : std::max(0.0, bound - it->second);
}

std::vector<std::size_t> feasible_front(const std::vector<Trial>& trials) {
  std::vector<std::size_t> ok;
  std::vector<ObjectivePoint> pts;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    if (trials[i].failed || trials[i].violation > 0) continue;
    ok.push_back(i);
    pts.push_back(trials[i].objectives);
  }
  std::vector<std::size_t> out;
  for (std::size_t k : pareto_front(pts)) out.push_back(ok[k]);
  return out;
}

SearchResult run_search(const SearchSpace& space, Strategy& strategy, const Evaluator& evaluator,
                        const SearchOptions& o) {
  NASFORGE_CHECK(!o.objectives.empty(), "run_search: expected at least one objective");
  const auto names = evaluator.metric_names();
  auto check_metric = [&](const std::string& m, const char* what) {
    if (std::find(names.begin(), names.end(), m) == names.end()) {
      throw InvalidArgument(fmt::format("{} \"{}\": the evaluator has no such metric (it has: {})", what, m, fmt::join(names, ", ")));
    }
  };
  for (const auto& obj : o.objectives) check_metric(obj.metric, "objective");
  for (const auto& c : o.constraints) check_metric(c.metric, "constraint");
  if (!o.budget.cost_metric.empty()) check_metric(o.budget.cost_metric, "cost metric");
  NASFORGE_CHECK(o.budget.simulated_seconds <= 0 || !o.budget.cost_metric.empty(),
                 "run_search: a simulated-time budget needs budget.cost_metric");
  NASFORGE_CHECK(o.budget.evaluations > 0 || o.budget.wall_seconds > 0 || o.budget.simulated_seconds > 0,
                 "run_search: expected a budget (evaluations, wall seconds or simulated seconds)");

  SearchResult r;
  double wall_before = 0;
  const fs::path dir = o.out_dir;
  const fs::path ckpt = dir / "checkpoint.json";
  if (!o.out_dir.empty()) fs::create_directories(dir);
  if (o.resume && !o.out_dir.empty() && fs::exists(ckpt)) {
    std::ifstream in(ckpt);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || j.value("version", 0) != kCheckpointVersion) {
      throw InvalidArgument(fmt::format("{}: not a nasforge search checkpoint (version {})", ckpt.string(), kCheckpointVersion));
    }
    if (j.at("fingerprint") != space.fingerprint() || j.at("strategy") != strategy.name()) {
      throw InvalidArgument(fmt::format("{}: the checkpoint is of strategy \"{}\" on a space with fingerprint {}; this "
                                        "search is \"{}\" on {} (fingerprint {})",
                                        ckpt.string(), j.at("strategy").get<std::string>(), j.at("fingerprint").get<std::string>(),
                                        strategy.name(), space.name(), space.fingerprint()));
    }
    if (j.contains("settings") && j["settings"] != settings_json(o)) {
      throw InvalidArgument(fmt::format("{}: the checkpoint was written with other objectives, constraints or seed ({}); "
                                        "this search has {}",
                                        ckpt.string(), j["settings"].dump(), settings_json(o).dump()));
    }
    strategy.restore(j.at("strategy_state"));
    for (const auto& t : j.at("history")) {
      r.history.push_back(trial_from(t));
      score(r.history.back(), o);
    }
    wall_before = j.at("wall_seconds");
    r.simulated_seconds = j.at("simulated_seconds");
    r.resumed = true;
  }

  auto checkpoint = [&] {
    if (o.out_dir.empty()) return;
    json j{{"version", kCheckpointVersion}, {"fingerprint", space.fingerprint()}, {"space", space.name()},
           {"strategy", strategy.name()}, {"seed", o.seed}, {"settings", settings_json(o)}, {"strategy_state", strategy.state()},
           {"wall_seconds", r.wall_seconds}, {"simulated_seconds", r.simulated_seconds}, {"history", json::array()}};
    for (const auto& t : r.history) j["history"].push_back(trial_json(t));
    write_file_atomic(ckpt, j.dump(-1, ' ', false, json::error_handler_t::replace));
  };

  std::optional<tbb::global_control> limit;
  if (o.threads > 0) limit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(o.threads));
  const auto t0 = Clock::now();
  auto wall = [&] { return wall_before + std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::uint64_t last_ckpt = r.history.size();
  r.wall_seconds = wall();
  while (true) {
    const auto& b = o.budget;
    if (b.evaluations > 0 && r.history.size() >= b.evaluations) break;
    if (b.wall_seconds > 0 && wall() >= b.wall_seconds) break;
    if (b.simulated_seconds > 0 && r.simulated_seconds >= b.simulated_seconds) break;
    std::size_t n = o.batch > 0 ? o.batch : std::max<std::size_t>(1, strategy.preferred_batch());
    if (b.evaluations > 0) n = std::min<std::size_t>(n, b.evaluations - r.history.size());
    auto archs = strategy.ask(n);
    if (archs.empty()) break;  // the strategy has nothing more to propose
    std::vector<Trial> batch(archs.size());
    for (std::size_t i = 0; i < archs.size(); ++i) {
      batch[i].id = r.history.size() + i;
      batch[i].arch = std::move(archs[i]);
    }
    tbb::parallel_for(std::size_t{0}, batch.size(), [&](std::size_t i) {
      Trial& t = batch[i];
      const auto s = Clock::now();
      try {
        t.metrics = evaluator.evaluate(t.arch);
      } catch (const std::exception& e) {  // one failing candidate never ends the search
        t.failed = true;
        t.error = e.what();
        t.metrics.clear();
      } catch (...) {
        t.failed = true;
        t.error = "the evaluator threw a non-standard exception";
        t.metrics.clear();
      }
      t.seconds = std::chrono::duration<double>(Clock::now() - s).count();
      score(t, o);
    });
    strategy.tell(batch);
    for (auto& t : batch) {
      if (!b.cost_metric.empty() && !t.failed) r.simulated_seconds += t.metrics.at(b.cost_metric);
      r.history.push_back(std::move(t));
    }
    r.wall_seconds = wall();
    if (o.checkpoint_every > 0 && r.history.size() / o.checkpoint_every > last_ckpt / o.checkpoint_every) {
      checkpoint();
      last_ckpt = r.history.size();
    }
    if (o.on_progress) {
      SearchProgress p;
      p.evaluations = r.history.size();
      for (const auto& t : r.history) p.failed += t.failed;
      p.wall_seconds = r.wall_seconds;
      p.simulated_seconds = r.simulated_seconds;
      auto best = best_single(r.history);
      p.best = best ? &r.history[*best] : nullptr;
      if (o.on_progress(p)) break;
    }
  }
  r.wall_seconds = wall();
  r.front = feasible_front(r.history);
  std::stable_sort(r.front.begin(), r.front.end(), [&](std::size_t a, std::size_t b) {
    return r.history[a].objectives < r.history[b].objectives;  // best first on the first objective
  });
  if (o.objectives.size() == 1) {
    if (auto b = best_single(r.history)) r.best = {*b};
  } else {
    r.best = r.front;
  }
  if (o.out_dir.empty()) return r;
  checkpoint();

  // ---- results --------------------------------------------------------------------------
  auto t_json = [&](const Trial& t) { return json{{"arch", arch_json(space, t.arch)}, {"metrics", metrics_json(t.metrics)}}; };
  json res{{"space", {{"name", space.name()}, {"file", space.origin()}, {"fingerprint", space.fingerprint()}}},
           {"strategy", strategy.name()}, {"seed", o.seed}, {"evaluations", r.history.size()},
           {"simulated_seconds", r.simulated_seconds}, {"wall_seconds", r.wall_seconds},
           {"objectives", json::array()}, {"constraints", json::array()},
           {"best", json::array()}, {"front", json::array()}, {"history", json::array()}};
  for (const auto& obj : o.objectives) res["objectives"].push_back({{"metric", obj.metric}, {"goal", obj.maximize ? "max" : "min"}});
  for (const auto& c : o.constraints) res["constraints"].push_back({{"metric", c.metric}, {"op", c.at_most ? "<=" : ">="}, {"bound", c.bound}});
  for (std::size_t i : r.best) res["best"].push_back(t_json(r.history[i]));
  for (std::size_t i : r.front) res["front"].push_back(t_json(r.history[i]));
  for (const auto& t : r.history) {
    json j = t_json(t);
    j["id"] = t.id;
    j["failed"] = t.failed;
    if (t.failed) j["error"] = t.error;
    res["history"].push_back(std::move(j));
  }
  write_file_atomic(dir / "result.json", res.dump(2, ' ', false, json::error_handler_t::replace) + "\n");

  std::string csv = "id,arch,failed";
  for (const auto& m : names) csv += "," + m;
  csv += "\n";
  for (const auto& t : r.history) {
    std::string a = arch_text(space, t.arch);
    if (a.find_first_of(",\"\n") != std::string::npos) {  // RFC 4180 quoting (JSON architectures)
      std::string q = "\"";
      for (char ch : a) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      a = q + "\"";
    }
    csv += fmt::format("{},{},{}", t.id, a, t.failed ? 1 : 0);
    for (const auto& m : names) {
      auto it = t.metrics.find(m);
      csv += it == t.metrics.end() ? std::string(",") : fmt::format(",{}", it->second);
    }
    csv += "\n";
  }
  write_file_atomic(dir / "history.csv", csv);

  if (o.objectives.size() == 2) {
    std::vector<Metrics> true_front;
    if (evaluator.complete()) {  // the whole space is known: draw its front too
      std::vector<Trial> all;
      for (auto& [a, m] : evaluator.known()) {
        Trial t;
        t.arch = a;
        t.metrics = m;
        score(t, o);
        all.push_back(std::move(t));
      }
      for (std::size_t i : feasible_front(all)) true_front.push_back(all[i].metrics);
    }
    write_file_atomic(dir / "front.svg", svg_plot(o, r.history, r.front, true_front));
  }
  return r;
}

}  // namespace nasforge
