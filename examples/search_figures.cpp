// Measures the population-search figures of docs/performance.md on the shared NAS-Bench-201
// tables (medians over many seeds):
//   nasforge_search_figures [SHARED_DATA_DIR] [DEVICE] [SEEDS] [NSGA2_OPTIONS_JSON] [LINAS_OPTIONS_JSON]
// - random search: best valid_acc of 100 queries vs the exact expectation from the table;
// - regularized evolution: best valid_acc after 100 and 300 queries;
// - NSGA-II (population 50, 500 evaluations) and random search (1,000) on valid_acc (max) and
//   the latency of DEVICE (min): hypervolume relative to the true front (objectives scaled so
//   the true front spans [0,1], reference point 1.1) and the share of true-front points found.
#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include <fmt/core.h>

#include "nasforge/error.h"
#include "nasforge/pareto.h"
#include "nasforge/search.h"

using namespace nasforge;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// E[max of k draws without replacement] from the values of the whole table.
double expected_best(std::vector<double> v, std::size_t k) {
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  auto log_choose = [](double a, double b) { return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1); };
  double e = 0, prev = 0;
  for (std::size_t i = k; i <= v.size(); ++i) {  // P(max <= v_i) = C(i, k) / C(n, k)
    double p = std::exp(log_choose(static_cast<double>(i), static_cast<double>(k)) - log_choose(n, static_cast<double>(k)));
    e += v[i - 1] * (p - prev);
    prev = p;
  }
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : std::string(NASFORGE_SOURCE_DIR) + "/../shared/data";
  const std::string device = argc > 2 ? argv[2] : "pixel3";
  const int seeds = argc > 3 ? std::stoi(argv[3]) : 30;
  const nlohmann::json nsga_options = nlohmann::json::parse(argc > 4 ? argv[4] : R"({"population": 50})");
  const nlohmann::json linas_options = nlohmann::json::parse(argc > 5 ? argv[5] : "{}");
  try {
    auto space = SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json");
    TableEvaluator table(space);
    table.add_csv(data + "/nb201/nb201_cifar10_200ep.csv", {"valid_acc"});
    table.add_csv(data + "/nb201/nb201_latency_ms.csv", {device});
    const auto all = table.known();

    // ---- single objective ---------------------------------------------------------------
    std::vector<double> accs;
    for (const auto& [a, m] : all) accs.push_back(m.at("valid_acc"));
    auto run_best = [&](const char* strategy, std::uint64_t seed, std::uint64_t budget, std::vector<std::uint64_t> at) {
      SearchOptions o;
      o.objectives = {parse_objective("valid_acc:max")};
      o.budget.evaluations = budget;
      o.batch = 1;
      o.checkpoint_every = 0;
      auto s = make_strategy(strategy, space, {}, seed);
      auto r = run_search(space, *s, table, o);
      std::vector<double> best;
      double b = -1;
      for (std::size_t i = 0; i < r.history.size(); ++i) {
        b = std::max(b, r.history[i].metrics.at("valid_acc"));
        if (std::find(at.begin(), at.end(), i + 1) != at.end()) best.push_back(b);
      }
      return best;
    };
    std::vector<double> rnd100, rea100, rea300;
    for (int s = 0; s < seeds; ++s) {
      rnd100.push_back(run_best("random", static_cast<std::uint64_t>(s), 100, {100})[0]);
      auto r = run_best("rea", static_cast<std::uint64_t>(s), 300, {100, 300});
      rea100.push_back(r[0]);
      rea300.push_back(r[1]);
    }
    fmt::print("| figure ({} seeds) | median | mean | target |\n|---|---|---|---|\n", seeds);
    fmt::print("| random, best valid_acc of 100 | {:.3f} | {:.3f} | exact expectation {:.3f} |\n", median(rnd100),
               mean(rnd100), expected_best(accs, 100));
    fmt::print("| REA, best valid_acc after 100 | {:.3f} | {:.3f} | >= 91.30 |\n", median(rea100), mean(rea100));
    fmt::print("| REA, best valid_acc after 300 | {:.3f} | {:.3f} | >= 91.50 |\n", median(rea300), mean(rea300));

    // ---- two objectives -----------------------------------------------------------------
    std::vector<ObjectivePoint> pts;
    for (const auto& [a, m] : all) pts.push_back({-m.at("valid_acc"), m.at(device)});
    std::set<Architecture> truth;
    std::vector<ObjectivePoint> true_front;
    for (std::size_t i : pareto_front(pts)) truth.insert(all[i].first), true_front.push_back(pts[i]);
    const auto scale = scaling_of(true_front);
    std::vector<ObjectivePoint> scaled_true;
    for (const auto& p : true_front) scaled_true.push_back(scale.apply(p));
    const ObjectivePoint ref{1.1, 1.1};
    const double true_hv = hypervolume(scaled_true, ref);
    auto multi = [&](const char* strategy, std::uint64_t seed, std::uint64_t budget, nlohmann::json options) {
      SearchOptions o;
      o.objectives = {parse_objective("valid_acc:max"), parse_objective(device + ":min")};
      o.budget.evaluations = budget;
      o.checkpoint_every = 0;
      auto s = make_strategy(strategy, space, options, seed);
      auto r = run_search(space, *s, table, o);
      std::vector<ObjectivePoint> found;
      std::size_t hits = 0;
      for (std::size_t i : r.front) {
        found.push_back(scale.apply(r.history[i].objectives));
        hits += truth.count(r.history[i].arch);
      }
      return std::pair{hypervolume(found, ref) / true_hv, static_cast<double>(hits) / static_cast<double>(truth.size())};
    };
    std::vector<double> nsga_hv, nsga_share, rnd_hv, rnd_share, linas_hv, linas_share, linas250_hv;
    for (int s = 0; s < seeds; ++s) {
      auto [h3, f3] = multi("linas", static_cast<std::uint64_t>(s), 500, linas_options);
      linas_hv.push_back(h3), linas_share.push_back(f3);
      linas250_hv.push_back(multi("linas", static_cast<std::uint64_t>(s), 250, linas_options).first);
      auto [h1, f1] = multi("nsga2", static_cast<std::uint64_t>(s), 500, nsga_options);
      nsga_hv.push_back(h1), nsga_share.push_back(f1);
      auto [h2, f2] = multi("random", static_cast<std::uint64_t>(s), 1000, nlohmann::json::object());
      rnd_hv.push_back(h2), rnd_share.push_back(f2);
    }
    fmt::print("| NSGA-II 500 evals, hypervolume / true ({}) | {:.4f} | {:.4f} | >= 0.995 |\n", device, median(nsga_hv), mean(nsga_hv));
    fmt::print("| NSGA-II 500 evals, true-front points found | {:.1f}% | {:.1f}% | >= 13% |\n", 100 * median(nsga_share),
               100 * mean(nsga_share));
    fmt::print("| random 1000 evals, hypervolume / true | {:.4f} | {:.4f} | |\n", median(rnd_hv), mean(rnd_hv));
    fmt::print("| random 1000 evals, true-front points found | {:.1f}% | {:.1f}% | about 6% |\n", 100 * median(rnd_share),
               100 * mean(rnd_share));
    fmt::print("| LINAS 500 evals, hypervolume / true | {:.4f} | {:.4f} | |\n", median(linas_hv), mean(linas_hv));
    fmt::print("| LINAS 500 evals, true-front points found | {:.1f}% | {:.1f}% | >= 40%, >= 2x NSGA-II |\n",
               100 * median(linas_share), 100 * mean(linas_share));
    fmt::print("| LINAS 250 evals, hypervolume / true | {:.4f} | {:.4f} | >= NSGA-II at 500 |\n", median(linas250_hv),
               mean(linas250_hv));
    fmt::print("true front of valid_acc vs {}: {} architectures\n", device, truth.size());
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
