#pragma once
// Command-line arguments shared by the nasforge CLI's commands.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "nasforge/error.h"
#include "nasforge/search_space.h"

namespace nasforge::cli {

struct UsageError : nasforge::Error {
  using Error::Error;
};

struct Args {
  // space / sample / inspect
  std::vector<std::string> positional;
  nasforge::ParamOverrides overrides;
  std::string arch;
  bool json = false;
  long long n = 5;
  unsigned long long seed = 0;
  long long batch = 1;
  bool batch_set = false;
  // train
  std::string space, data = "fashion-mnist", out;
  long long epochs = 10, threads = 0, subset = 0;
  bool epochs_set = false, lr_set = false;
  // differentiable search
  double latency_weight = 0, latency_budget = 0;
  std::string cost;  // a latency table (nasforge profile's JSON)
  // few-shot search
  std::string split = "gm", inner = "darts", splits = "15,30", branch = "2,2";
  long long gm_repeats = 100;
  bool no_restart = false, parallel = false;
  double lr = 0.1;
  bool augment = true;
  std::string init;  // train: start from a sub-network directory
  // search
  std::string strategy = "random", strategy_options = "{}";
  std::vector<std::string> evaluators, objectives, constraints;
  long long budget = 100, sleep_ms = 0, checkpoint_every = 50;
  bool budget_set = false;
  double budget_seconds = 0, budget_simulated = 0;
  std::string cost_metric;
  bool resume = false;
  // predictor fit / predict
  std::string table, target, arch_column, model, model_options = "{}", features = "onehot";
  long long train = 100;
  bool log_target = false;
  // profile / measure
  long long samples = 0, calibration = 20;  // samples 0: 300 layer-alone, 30 --in-network
  bool fastest = false;
  bool in_network = false;
  std::string device = "cpu";  // cpu, cuda, cuda:N
  bool energy = false;         // measure: energy per forward too
  double energy_ms = 500;      // measure --energy: the counter window
  std::string calibration_fit = "scale";  // profile: scale | affine
  std::string reference;                  // profile: ARCH, the reference network to profile beside
  std::string reanchor;                   // profile: a referenced LUT.json to move to today's speed
  // supernet / extract
  std::string supernet;
  bool kernel_transform = false;
};

inline long long to_number(const std::string& flag, const std::string& v, long long lo, long long hi) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE || x < lo || x > hi) {
    throw UsageError(fmt::format("{}: expected an integer in [{}, {}], found \"{}\"", flag, lo, hi, v));
  }
  return x;
}

inline Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= argc) throw UsageError(fmt::format("{} expects a value", flag));
      return argv[++i];
    };
    if (s == "--json") {
      a.json = true;
    } else if (s == "--arch") {
      a.arch = value(s);
    } else if (s == "-n") {
      a.n = to_number(s, value(s), 1, 10'000'000);
    } else if (s == "--seed") {
      a.seed = static_cast<unsigned long long>(to_number(s, value(s), 0, (1LL << 62)));
    } else if (s == "--batch") {
      a.batch = to_number(s, value(s), 1, 1 << 20);
      a.batch_set = true;
    } else if (s == "--space") {
      a.space = value(s);
    } else if (s == "--data") {
      a.data = value(s);
    } else if (s == "--out") {
      a.out = value(s);
    } else if (s == "--epochs") {
      a.epochs = to_number(s, value(s), 0, 100000);
      a.epochs_set = true;
    } else if (s == "--threads") {
      a.threads = to_number(s, value(s), 0, 1024);
    } else if (s == "--subset") {
      a.subset = to_number(s, value(s), 0, 1LL << 40);
    } else if (s == "--samples") {
      a.samples = to_number(s, value(s), 1, 1LL << 30);
    } else if (s == "--calibration") {
      a.calibration = to_number(s, value(s), 0, 1LL << 20);
    } else if (s == "--fastest") {
      a.fastest = true;
    } else if (s == "--in-network") {
      a.in_network = true;
    } else if (s == "--device") {
      a.device = value(s);
    } else if (s == "--energy") {
      a.energy = true;
    } else if (s == "--reference") {
      a.reference = value(s);
    } else if (s == "--reanchor") {
      a.reanchor = value(s);
    } else if (s == "--calibration-fit") {
      a.calibration_fit = value(s);
      if (a.calibration_fit != "scale" && a.calibration_fit != "affine") {
        throw UsageError(fmt::format("--calibration-fit: expected scale or affine, found \"{}\"", a.calibration_fit));
      }
    } else if (s == "--energy-ms") {
      std::string v = value(s);
      char* end = nullptr;
      a.energy_ms = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.energy_ms >= 1 && a.energy_ms <= 600000)) {
        throw UsageError(fmt::format("--energy-ms: expected milliseconds in [1, 600000], found \"{}\"", v));
      }
    } else if (s == "--table") {
      a.table = value(s);
    } else if (s == "--target") {
      a.target = value(s);
    } else if (s == "--arch-column") {
      a.arch_column = value(s);
    } else if (s == "--model") {
      a.model = value(s);
    } else if (s == "--model-options") {
      a.model_options = value(s);
    } else if (s == "--features") {
      a.features = value(s);
    } else if (s == "--train") {
      a.train = to_number(s, value(s), 1, 1LL << 40);
    } else if (s == "--log-target") {
      a.log_target = true;
    } else if (s == "--strategy") {
      a.strategy = value(s);
    } else if (s == "--strategy-options") {
      a.strategy_options = value(s);
    } else if (s == "--evaluator") {
      a.evaluators.push_back(value(s));
    } else if (s == "--objective") {
      a.objectives.push_back(value(s));
    } else if (s == "--constraint") {
      a.constraints.push_back(value(s));
    } else if (s == "--budget") {
      a.budget = to_number(s, value(s), 1, 1LL << 40);
      a.budget_set = true;
    } else if (s == "--latency-weight" || s == "--latency-budget") {
      std::string v = value(s);
      char* end = nullptr;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(x >= 0) || !std::isfinite(x)) {
        throw UsageError(fmt::format("{}: expected a number >= 0, found \"{}\"", s, v));
      }
      (s == "--latency-weight" ? a.latency_weight : a.latency_budget) = x;
    } else if (s == "--cost") {
      a.cost = value(s);
    } else if (s == "--split") {
      a.split = value(s);
    } else if (s == "--splits") {
      a.splits = value(s);
    } else if (s == "--branch") {
      a.branch = value(s);
    } else if (s == "--gm-repeats") {
      a.gm_repeats = to_number(s, value(s), 1, 100000);
    } else if (s == "--inner") {
      a.inner = value(s);
    } else if (s == "--no-restart") {
      a.no_restart = true;
    } else if (s == "--parallel") {
      a.parallel = true;
    } else if (s == "--budget-seconds" || s == "--budget-simulated") {
      std::string v = value(s);
      char* end = nullptr;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(x > 0)) throw UsageError(fmt::format("{}: expected a positive number, found \"{}\"", s, v));
      (s == "--budget-seconds" ? a.budget_seconds : a.budget_simulated) = x;
    } else if (s == "--cost-metric") {
      a.cost_metric = value(s);
    } else if (s == "--checkpoint-every") {
      a.checkpoint_every = to_number(s, value(s), 0, 1LL << 40);
    } else if (s == "--sleep-ms") {
      a.sleep_ms = to_number(s, value(s), 0, 60000);
    } else if (s == "--resume") {
      a.resume = true;
    } else if (s == "--init") {
      a.init = value(s);
    } else if (s == "--supernet") {
      a.supernet = value(s);
    } else if (s == "--kernel-transform") {
      a.kernel_transform = true;
    } else if (s == "--no-augment") {
      a.augment = false;
    } else if (s == "--lr") {
      std::string v = value(s);
      char* end = nullptr;
      a.lr = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.lr > 0 && a.lr < 100)) {
        throw UsageError(fmt::format("--lr: expected a number in (0, 100), found \"{}\"", v));
      }
      a.lr_set = true;
    } else if (s == "--set") {
      std::string kv = value(s);
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw UsageError(fmt::format("--set: expected NAME=VALUE, found \"{}\"", kv));
      }
      a.overrides[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (s.size() > 1 && s[0] == '-') {
      throw UsageError(fmt::format("unknown option \"{}\" (see nasforge --help)", s));
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

#ifdef NASFORGE_CLI_HAS_TORCH
/// `nasforge train` (src/cli/train.cpp).
int cmd_train(const Args& a);
/// `nasforge supernet init` (src/cli/train.cpp).
int cmd_supernet_init(const Args& a);
/// `nasforge extract` (src/cli/train.cpp).
int cmd_extract(const Args& a);
/// Makes the LibTorch predictors (`mlp`) available to the CLI (src/cli/train.cpp).
void register_torch_extensions();
/// `nasforge profile` and `nasforge measure` (src/cli/train.cpp).
int cmd_profile(const Args& a);
int cmd_measure(const Args& a);
/// `nasforge search --strategy darts|darts2|pc-darts|darts-pt` (src/cli/train.cpp).
int cmd_search_darts(const Args& a);
/// `nasforge search --strategy few-shot-gm` (src/cli/train.cpp).
int cmd_search_few_shot(const Args& a);
#endif

}  // namespace nasforge::cli
