// A tour of a search space: its decisions and size, a few random architectures with their
// parameters, MACs and peak activation memory, and — when the space is NAS-Bench-201 and the
// benchmark table is given — the accuracy each of them reached when trained (200 epochs).
//
//   nasforge_space_tour SPACE.json [NB201_TABLE.csv] [N] [SEED]
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <fmt/core.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/search_space.h"

namespace {

// arch_str -> valid_acc from nb201_cifar10_200ep.csv (columns: index, arch_str, train_acc,
// valid_acc, test_acc, train_time_s).
std::map<std::string, double> read_nb201_table(const std::string& path) {
  std::map<std::string, double> acc;
  std::ifstream in(path);
  if (!in) return acc;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string idx, arch, train, valid;
    std::getline(ss, idx, ',');
    std::getline(ss, arch, ',');
    std::getline(ss, train, ',');
    std::getline(ss, valid, ',');
    acc[arch] = std::stod(valid);
  }
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: nasforge_space_tour SPACE.json [NB201_TABLE.csv] [N] [SEED]\n", stderr);
    return 2;
  }
  try {
    auto space = nasforge::SearchSpace::from_file(argv[1]);
    auto table = argc > 2 ? read_nb201_table(argv[2]) : std::map<std::string, double>{};
    const int n = argc > 3 ? std::stoi(argv[3]) : 8;
    nasforge::Rng rng(argc > 4 ? std::stoull(argv[4]) : 2026);

    fmt::print("{}\n", space.summary());
    if (argc > 2 && table.empty()) fmt::print("(no table at {}: accuracies not shown)\n\n", argv[2]);
    fmt::print("{:>9} {:>11} {:>10} {:>9}  {}\n", "params", "MFLOPs", "peak KiB", table.empty() ? "" : "valid %",
               "architecture");
    double best_acc = -1;
    std::string best;
    for (int i = 0; i < n; ++i) {
      auto arch = space.sample(rng);
      auto costs = nasforge::analytic_costs(space.resolve(arch));
      std::string name = space.native_format() ? space.to_native(arch) : arch.to_string();
      std::string acc;
      if (auto it = table.find(name); it != table.end()) {
        acc = fmt::format("{:.2f}", it->second);
        if (it->second > best_acc) {
          best_acc = it->second;
          best = name;
        }
      }
      fmt::print("{:>9} {:>11.2f} {:>10.1f} {:>9}  {}\n", costs.params, costs.flops() / 1e6,
                 costs.peak_activation_bytes / 1024.0, acc, name);
    }
    if (best_acc >= 0) fmt::print("\nbest of {} random: {:.2f}% valid  {}\n", n, best_acc, best);
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "nasforge_space_tour: {}\n", e.what());
    return 2;
  }
}
