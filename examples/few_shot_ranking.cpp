// Ranking quality of one-shot vs few-shot supernets (issue 7, ALGORITHMS.md 5): how well does
// the accuracy a supernet estimates for an architecture rank architectures by the accuracy they
// reach trained stand-alone? NAS-Bench-201 (C = 8, one cell per stage) on Fashion-MNIST:
//
// 1. ARCHS architectures drawn uniformly (a fixed seed, the same for every run) are trained
//    stand-alone for EPOCHS epochs on the IMAGES training images and tested on the 10,000 test
//    images (cached in OUT/standalone.csv, so a rerun skips them).
// 2. Per seed and method, supernets train single-path (SPOS / RSPS) on half of those images:
//    `one-shot` (one supernet, SPLIT2 + FINAL epochs), `gm` and `random` (split at the end of
//    epochs SPLIT1 and SPLIT2 into 2 x 2 = 4 sub-supernets, by gradient matching over R batches
//    or at random, each leaf trained FINAL more epochs with the weights it inherited), and
//    `exhaustive` (Few-shot NAS: at the end of epoch SPLIT2 one sub-supernet per op of the
//    first edge, 5, each trained FINAL more epochs), `one-shot-long` (one supernet trained for
//    as many supernet-epochs as the 2 x 2 split trees);
//    a `-parallel` suffix trains a level's sub-supernets concurrently, THREADS at a time on one
//    intra-op thread each (the result of the sequential method at THREADS = 1).
// 3. Every architecture is scored by the (sub-)supernet that contains it (BN recalibrated on
//    10 batches, accuracy on the other half of the images); Kendall tau-b and Spearman against
//    the stand-alone accuracies go to OUT/ranking.csv (one row per seed and method; a rerun
//    skips rows already there), the per-architecture estimates to OUT/estimates.csv.
//
//   nasforge_few_shot_ranking [OUT] [ARCHS] [IMAGES] [EPOCHS] [SPLIT1,SPLIT2,FINAL] [SEEDS] [METHODS] [R] [THREADS] [RETRAIN]
//   defaults: runs/few_shot_ranking 30 10000 4 3,6,6 0,1 one-shot,gm,random,one-shot-long 10 2 0
// RETRAIN > 0 trains the first RETRAIN architectures again with another seed and prints the
// Kendall tau between the two runs: how far the stand-alone ranking itself is from exact.
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <torch/torch.h>

#include "nasforge/error.h"
#include "nasforge/predictor.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/few_shot.h"
#include "nasforge/torch/trainer.h"

namespace {
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}
std::map<std::string, std::string> read_rows(const std::filesystem::path& p, std::size_t key_columns) {
  std::map<std::string, std::string> rows;  // key (first key_columns fields) -> the line
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    auto f = split(line);
    if (f.size() < key_columns) continue;
    std::string key;
    for (std::size_t i = 0; i < key_columns; ++i) key += f[i] + ",";
    rows[key] = line;
  }
  return rows;
}
void append(const std::filesystem::path& p, const std::string& header, const std::string& line) {
  const bool fresh = !std::filesystem::exists(p);
  std::ofstream out(p, std::ios::app);
  if (fresh) out << header << "\n";
  out << line << "\n";
}
}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, const char* fallback) { return std::string(argc > i ? argv[i] : fallback); };
  const std::filesystem::path out = arg(1, "runs/few_shot_ranking");
  const long n_archs = std::stol(arg(2, "30")), images = std::stol(arg(3, "10000")), epochs = std::stol(arg(4, "4"));
  const auto schedule = split(arg(5, "3,6,6"));
  const auto seeds = split(arg(6, "0,1")), methods = split(arg(7, "one-shot,gm,random,one-shot-long"));
  const long repeats = std::stol(arg(8, "10"));
  const int threads = std::stoi(arg(9, "2"));
  const auto retrain = static_cast<std::size_t>(std::stol(arg(10, "0")));
  try {
    NASFORGE_CHECK(schedule.size() == 3, "expected SPLIT1,SPLIT2,FINAL, got \"{}\"", arg(5, ""));
    const long s1 = std::stol(schedule[0]), s2 = std::stol(schedule[1]), fin = std::stol(schedule[2]);
    std::filesystem::create_directories(out);
    torch::set_num_threads(threads);
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json",
                                                  {{"N", "1"}, {"C", "8"}, {"input", "[1,28,28]"}});
    auto train_set = nasforge::load_fashion_mnist(true), test_set = nasforge::load_fashion_mnist(false);
    auto subset = nasforge::train_valid_split(train_set.size(), static_cast<double>(images) / 60000.0, 1).valid;
    auto norm = nasforge::compute_normalization(train_set, subset);
    auto data = nasforge::to_tensors(train_set, norm, subset);
    auto test = nasforge::to_tensors(test_set, norm);

    // 1. The architectures and their stand-alone accuracies (seed 0; with `retrain`, seed 1:
    // the second run of the same recipe says how noisy the ground truth itself is).
    nasforge::Rng pick(20261127);
    std::vector<nasforge::Architecture> archs;
    std::set<nasforge::Architecture> seen;
    while (static_cast<long>(archs.size()) < n_archs) {
      auto a = space.sample(pick);
      if (seen.insert(a).second) archs.push_back(a);
    }
    auto standalone = [&](std::size_t count, std::uint64_t seed, const std::filesystem::path& csv) {
      auto cached = read_rows(csv, 1);
      std::vector<double> acc;
      for (std::size_t i = 0; i < count; ++i) {
        const std::string name = space.to_native(archs[i]);
        if (auto it = cached.find(name + ","); it != cached.end()) {
          acc.push_back(std::stod(split(it->second).at(1)));
          continue;
        }
        torch::manual_seed(static_cast<std::uint64_t>(i) + 1000 * seed);
        nasforge::Network net(space.resolve(archs[i]));
        nasforge::TrainOptions t;
        t.epochs = epochs;
        t.batch = 128;
        t.lr = 0.05;
        t.seed = i + 1000 * seed;
        t.threads = threads;
        auto h = nasforge::train(net, data, test, t);
        double secs = 0;
        for (const auto& e : h) secs += e.seconds;
        acc.push_back(100 * h.back().test_accuracy);
        append(csv, "arch,test_acc,train_seconds", fmt::format("{},{:.2f},{:.1f}", name, acc.back(), secs));
        fmt::print("stand-alone (seed {}) {:>2}/{} {}  test {:.2f}%  ({:.0f} s)\n", seed, i + 1, count, name, acc.back(), secs);
        std::fflush(stdout);
      }
      return acc;
    };
    const std::vector<double> truth = standalone(archs.size(), 0, out / "standalone.csv");
    if (retrain > 0) {
      const auto again = standalone(std::min<std::size_t>(retrain, archs.size()), 1, out / "standalone_seed1.csv");
      const auto q = nasforge::prediction_quality(again, std::vector<double>(truth.begin(), truth.begin() + again.size()));
      fmt::print("ground-truth noise: Kendall tau {:.3f} (Spearman {:.3f}) between two training seeds of the first {} "
                 "architectures\n", q.kendall, q.spearman, again.size());
    }

    // 2-3. Supernets per seed and method, and the ranking they give.
    const auto ranking_csv = out / "ranking.csv";
    auto done = read_rows(ranking_csv, 2);
    for (const auto& seed : seeds) {
      for (const auto& method : methods) {
        if (done.count(seed + "," + method + ",")) continue;
        nasforge::FewShotOptions o;
        o.training = "single-path";
        o.search.seed = std::stoull(seed);
        o.search.threads = threads;
        o.search.batch = 64;
        o.restart = false;  // weight transfer: every leaf has seen SPLIT2 + FINAL epochs, as the one-shot supernet
        o.gm.repeats = static_cast<std::size_t>(repeats);
        // "-parallel": the same, the sub-supernets of a level trained concurrently (THREADS at a
        // time, one intra-op thread each): the same result as on one thread, in less time.
        std::string how = method;
        if (how.size() > 9 && how.substr(how.size() - 9) == "-parallel") {
          how.resize(how.size() - 9);
          o.parallel = true;
        }
        if (how == "gm" || how == "random") {
          o.split = how;
          o.split_epochs = {s1, s2};
          o.branch = {2, 2};
          o.final_epochs = fin;
        } else if (how == "exhaustive") {  // Few-shot NAS: one sub-supernet per op of one edge, at SPLIT2
          o.split = how;
          o.split_epochs = {s2};
          o.branch = {2};  // ignored
          o.final_epochs = fin;
        } else if (how == "one-shot" || how == "one-shot-long") {
          o.split_epochs.clear();
          o.branch.clear();
          o.final_epochs = how == "one-shot" ? s2 + fin : s1 + 2 * (s2 - s1) + 4 * fin;  // long: the trees' epochs
        } else {
          throw nasforge::InvalidArgument(fmt::format("unknown method \"{}\" (one-shot, gm, random, exhaustive, one-shot-long, each "
                                                        "with an optional -parallel suffix)", method));
        }
        torch::manual_seed(o.search.seed);
        auto tree = nasforge::train_sub_supernets(space, data, o);
        std::vector<torch::Tensor> calibration;
        for (std::int64_t b = 0; b < 10 && (b + 1) * 64 <= tree.train.size(); ++b) {
          calibration.push_back(tree.train.images.narrow(0, b * 64, 64));
        }
        std::string splits;
        for (const auto& leaf : tree.leaves) {
          std::string path;
          for (const auto& s : leaf.splits) path += fmt::format("{}{}", path.empty() ? "" : ">", s.decision);
          splits += (splits.empty() ? "" : " ") + path;
        }
        nasforge::FewShotEvaluator eval(std::move(tree.leaves), calibration, tree.valid);
        std::vector<double> estimate;
        for (std::size_t i = 0; i < archs.size(); ++i) {
          auto m = eval.evaluate(archs[i]);
          estimate.push_back(m.at("supernet_acc"));
          append(out / "estimates.csv", "seed,method,arch,sub_supernet,supernet_acc,standalone_acc",
                 fmt::format("{},{},{},{},{:.2f},{:.2f}", seed, method, space.to_native(archs[i]), m.at("sub_supernet"),
                             estimate.back(), truth[i]));
        }
        const auto q = nasforge::prediction_quality(estimate, truth);
        double weights_mb = 0;  // what the leaves hold: weights and BN statistics
        for (const auto& leaf : eval.leaves()) {
          for (const auto& t : leaf.supernet->parameters()) weights_mb += static_cast<double>(t.nbytes()) / 1e6;
          for (const auto& t : leaf.supernet->buffers()) weights_mb += static_cast<double>(t.nbytes()) / 1e6;
        }
        append(ranking_csv, "seed,method,leaves,kendall_tau,spearman,supernet_seconds,leaf_weights_mb,edges_split",
               fmt::format("{},{},{},{:.4f},{:.4f},{:.0f},{:.2f},{}", seed, method, eval.leaves().size(), q.kendall,
                           q.spearman, tree.seconds, weights_mb, splits.empty() ? "-" : splits));
        fmt::print("seed {} {:<13} {} sub-supernet(s): Kendall tau {:.3f}  Spearman {:.3f}  ({:.0f} s)\n", seed, method,
                   eval.leaves().size(), q.kendall, q.spearman, tree.seconds);
        std::fflush(stdout);
      }
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    fmt::print("{} (peak resident memory of this run {:.0f} MB)\n", ranking_csv.string(), ru.ru_maxrss / 1024.0);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
}
