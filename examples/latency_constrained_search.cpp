// A latency-constrained search on the NAS-Bench-201 tables: NSGA-II maximises CIFAR-10
// validation accuracy and minimises the latency measured on a Pixel 3, keeping only networks
// that run in at most 10 ms there, and prints the chosen architectures with their measured
// accuracy and latency.
//
//   nasforge_latency_constrained_search [SHARED_DATA_DIR] [DEVICE] [MAX_MS] [OUT_DIR]
#include <string>

#include <fmt/core.h>

#include "nasforge/error.h"
#include "nasforge/search.h"

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : std::string(NASFORGE_SOURCE_DIR) + "/../shared/data";
  const std::string device = argc > 2 ? argv[2] : "pixel3";
  const std::string max_ms = argc > 3 ? argv[3] : "10";
  const std::string out = argc > 4 ? argv[4] : "runs/latency_constrained";
  try {
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json");
    nasforge::TableEvaluator table(space);  // measured tables: accuracy and per-device latency
    table.add_csv(data + "/nb201/nb201_cifar10_200ep.csv", {"valid_acc", "test_acc"});
    table.add_csv(data + "/nb201/nb201_latency_ms.csv", {device});

    nasforge::SearchOptions o;
    o.objectives = {nasforge::parse_objective("valid_acc:max"), nasforge::parse_objective(device + ":min")};
    o.constraints = {nasforge::parse_constraint(device + "<=" + max_ms)};
    o.budget.evaluations = 500;
    o.out_dir = out;
    auto strategy = nasforge::make_strategy("nsga2", space, {{"population", 50}}, /*seed=*/0);
    auto r = nasforge::run_search(space, *strategy, table, o);

    fmt::print("{} evaluations; Pareto front under {} <= {} ms ({} networks):\n", r.history.size(), device, max_ms,
               r.front.size());
    fmt::print("  {:<90} {:>9} {:>9} {:>8}\n", "architecture", "valid %", "test %", "ms");
    for (std::size_t i : r.front) {
      const auto& t = r.history[i];
      fmt::print("  {:<90} {:>9.2f} {:>9.2f} {:>8.2f}\n", space.to_native(t.arch), t.metrics.at("valid_acc"),
                 t.metrics.at("test_acc"), t.metrics.at(device));
    }
    fmt::print("plot: {}/front.svg, results: {}/result.json\n", out, out);
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
