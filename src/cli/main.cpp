// The `nasforge` command-line tool. Exit status: 0 success, 2 bad input (usage, unreadable or
// invalid search space, architecture outside the space), 1 internal error.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/allocator.h"
#include "nasforge/cost_model.h"
#include "nasforge/evaluator.h"
#include "nasforge/ops.h"
#include "nasforge/predictor.h"
#include "nasforge/random.h"
#include "nasforge/search.h"
#include "nasforge/search_space.h"
#include "nasforge/strategy.h"
#include "cli/args.h"

namespace {

using nasforge::SearchSpace;
using nasforge::cli::Args;
using nasforge::cli::UsageError;
using nasforge::cli::parse_args;
using nlohmann::json;

constexpr const char* kUsage = R"(nasforge — neural architecture search engine

Usage:
  nasforge space inspect FILE [--arch ARCH] [--set K=V]... [--batch B] [--json]
      Decisions and size of a search space; with --arch, the concrete layers of that
      architecture and its parameters, MACs (FLOPs = 2 x MACs) and peak activation memory.
  nasforge space sample FILE [-n N] [--seed S] [--set K=V]... [--batch B] [--json]
      N random architectures (default 5, seed 0) with their costs.
  nasforge ops [--json]
      The op types a search space can use, with their attributes.
  nasforge train --space FILE --arch ARCH [--set K=V]... [--data fashion-mnist|synthetic]
                 [--epochs E] [--batch B] [--lr LR] [--threads T] [--seed S]
                 [--subset N] [--no-augment] --out DIR
      Trains the architecture's network (from scratch, or from a sub-network directory given
      with --init DIR) and reports test accuracy. DIR gets result.json, a checkpoint per epoch
      (rerunning the command resumes) and the trained sub-network in DIR/model.
  nasforge supernet init --space FILE [--set K=V]... [--seed S] [--kernel-transform] --out CKPT
      Writes a freshly initialised weight-sharing supernet checkpoint of the space.
  nasforge extract --space FILE [--set K=V]... --supernet CKPT [--kernel-transform] --arch ARCH
                   --out DIR
      Extracts the architecture's sub-network with the supernet's (sliced) weights and BN
      statistics into DIR (arch.json + weights.pt; Python's torch.load reads weights.pt).
  nasforge search --space FILE --strategy random|rea|nsga2 --evaluator table:CSV[,CSV]...
                  --objective METRIC:max|min... [--constraint METRIC<=X]... [--budget N]
                  [--budget-seconds S] [--budget-simulated S --cost-metric METRIC]
                  [--strategy-options JSON] [--seed S] [--threads T] [--checkpoint-every K]
                  [--set K=V]... --out DIR [--resume]
      Runs a search: proposals are evaluated in parallel, a checkpoint is written every K
      trials (default 50) and --resume continues it exactly. DIR gets result.json (best,
      front, history), history.csv and, for two objectives, front.svg.
  nasforge search --space FILE --strategy darts|darts2|pc-darts|darts-pt [--data fashion-mnist|synthetic]
                  [--subset N] [--epochs E] [--batch B] [--lr LR] [--latency-weight L]
                  [--latency-budget MS] [--cost LUT.json] [--evaluator table:CSV] [--strategy-options JSON]
                  [--threads T] [--seed S] [--set K=V]... --out DIR [--resume]
      Differentiable search on the space's mixed supernet (a cell space: nb201, darts) with the
      published defaults of each algorithm; the training images (N of them, default all) are
      split 50/50 into weights and architecture data. --latency-weight adds L x the expected
      latency (ms) of a latency table (--cost, completed by profiling here; profiled here when
      absent); with --latency-budget only the excess over MS counts. --evaluator looks the
      derived architecture up in a table. DIR gets result.json, weights.svg (op weights per
      epoch) and checkpoint.pt after every epoch; --resume continues exactly. JSON options:
      the DartsOptions fields (arch_lr, warmup_epochs, partial_channels, pt_interval, ...).
  nasforge search --space FILE --strategy few-shot-gm [--inner darts|darts2|pc-darts|darts-pt|rea|random]
                  [--split gm|random|exhaustive] [--splits E1,E2,...] [--branch B1,B2,...] [--gm-repeats R]
                  [--no-restart] [--parallel] [--budget N] [--data fashion-mnist|synthetic] [--subset N] [--epochs E]
                  [--batch B] [--lr LR] [--threads T] [--seed S] [--strategy-options JSON]
                  [--evaluator table:CSV] --out DIR [--resume]
      Few-shot NAS (GM-NAS): trains the supernet's weights, splits every supernet at the end of
      each epoch of --splits (default 15,30) into --branch groups of an edge's ops (gradient
      matching over R batches, default 100: every unsplit edge x R x its ops forward and backward
      passes; or a random split; or one sub-supernet per op), then trains every sub-supernet E
      more epochs (default 30; after the last split they restart from scratch, as GM-NAS does,
      unless --no-restart or --split exhaustive, which keep the inherited weights).
      DARTS inners (darts, darts2, pc-darts, darts-pt) search in every mixed sub-supernet and keep
      the leaf whose derived architecture validates best (DIR/leaf_<i>/ holds each leaf's run).
      rea and random train the sub-supernets single-path (RSPS) and run that population search
      for --budget N evaluations, each architecture scored by the sub-supernet holding it
      (supernet_acc; JSON {"inner": {...}} sets the strategy's options). A checkpoint follows
      every epoch; --resume continues exactly. DIR/result.json lists every leaf. --parallel
      trains the sub-supernets of a level concurrently (T at a time, one thread each).
  nasforge predictor fit --space FILE --table CSV --target COL [--arch-column COL]
                  [--model ridge|gbdt|mlp] [--model-options JSON] [--features LIST]
                  [--log-target] [--train N] [--seed S] [--set K=V]... --out MODEL.json
      Fits a predictor of a table column on N random rows (default 100) and prints Spearman,
      Kendall tau, RMSE, MAPE and the share within ±10% on the other rows. LIST: onehot (always
      included unless counts replace it; name both for both), pairwise, counts (per-stage
      option counts), first (counts with each stage's first block apart), first-delta (counts
      plus each first block's shrunken deviation), edges (per-cell op counts over its edges),
      costs (analytic costs as nearly unpenalised linear terms), network (network-wide counts:
      an option's cost shared by every stage), pruned (op counts, and with
      costs the costs, of the layers a graph runtime such as TFLite keeps after removing dead
      code), stats (log params, log MACs). Alternatives separated by | (e.g. "edges,costs|
      edges,costs,pruned") are chosen between by ridge's leave-one-out error on the training
      rows; the fit prints each one's error and saves the chosen.
  nasforge predict --space FILE --model MODEL.json --arch ARCH [--set K=V]...
      The value a saved model gives an architecture: a predictor from `predictor fit` or any
      cost model JSON (a latency table from `profile`, analytic, energy).
  nasforge profile --space FILE [--set K=V]... [--batch B] [--threads T] [--samples N]
                   [--calibration N] [--calibration-fit scale|affine] [--fastest] [--in-network]
                   [--reference ARCH] [--device D] --out LUT.json
  nasforge profile --space FILE --reanchor LUT.json [--out NEW.json]
      Times every distinct layer of N random architectures (all, for a smaller space; default
      300) on this machine into a latency table, calibrated against N end-to-end measurements.
      --in-network times the layers inside those networks (default 30): the accurate way at
      larger batches (docs/predictors.md). --calibration-fit affine fits a fixed overhead
      too (Theil-Sen); the default is the median ratio alone. --reference times network ARCH
      beside every measurement and brings all of them to its speed when profiling began: for
      a machine whose speed drifts. --reanchor times a referenced table's reference now and
      rescales the table to today's speed (in place, or into NEW.json).
  nasforge measure --space FILE --arch ARCH [--set K=V]... [--batch B] [--threads T] [--fastest]
                   [--device D] [--energy] [--energy-ms MS] [--reference ARCH]
  nasforge measure --space FILE --samples N --out CSV [--seed S] [--resume] [same options]
      Times the architecture's network on this machine (median, or fastest, of the calls);
      --energy adds its measured energy per forward (NVML on a CUDA device, RAPL on the CPU,
      over a window of MS, default 500; an error says why where neither is available).
      --samples measures N random architectures into a table (arch, latency_ms[, energy_mj,
      watts]) that `predictor fit` reads, a row flushed as each is measured; --resume keeps
      the rows already there. --reference times network ARCH just before and after each
      measurement and adds the latency relative to it (columns reference_ms, relative_latency):
      on a machine whose speed drifts, the steadier quantity to fit a predictor to.
      D (profile too): cpu (default), cuda or cuda:N.
  nasforge --help | --version

ARCH is the space's native string (NAS-Bench-201 `|nor_conv_3x3~0|+|...|`, FBNet op index
list `7-8-1-...`), a JSON array of option indices, or a JSON object {"decision": value}.
--set overrides a parameter of the space: --set N=1 --set input=[1,28,28].

Exit status: 0 ok, 2 bad input, 1 internal error.
)";

json costs_json(const nasforge::AnalyticCosts& c) {
  return {{"params", c.params},
          {"macs", c.macs},
          {"flops", c.flops()},
          {"peak_activation_bytes", c.peak_activation_bytes}};
}

std::string arch_text(const SearchSpace& s, const nasforge::Architecture& a) {
  return s.native_format() ? s.to_native(a) : a.to_string();
}

json arch_json(const SearchSpace& s, const nasforge::Architecture& a) {
  if (s.native_format()) return s.to_native(a);
  return a;
}

json value_json(const nasforge::Value& v) {
  if (v.is_int()) return v.as_int();
  if (v.is_double()) return v.as_double();
  if (v.is_bool()) return v.as_bool();
  return v.as_string();
}

std::string human(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int p = 0;
  while (v >= 1000 && p < 4) {
    v /= 1000;
    ++p;
  }
  std::string suffix = std::string(prefixes[p]) + unit;
  return suffix.empty() ? fmt::format("{:.3g}", v) : fmt::format("{:.3g} {}", v, suffix);
}

int cmd_inspect(const Args& a) {
  if (a.positional.size() != 1) throw UsageError("space inspect: expected one FILE");
  SearchSpace s = SearchSpace::from_file(a.positional[0], a.overrides);
  const nasforge::CostOptions opts{.batch = a.batch};
  if (a.json) {
    json j;
    j["name"] = s.name();
    j["description"] = s.description();
    j["file"] = s.origin();
    j["fingerprint"] = s.fingerprint();
    j["params"] = json::object();
    for (const auto& [k, v] : s.params()) j["params"][k] = json::parse(v);
    j["decisions"] = json::array();
    for (const auto& d : s.decisions()) {
      json opts_j = json::array();
      for (const auto& o : d.options) opts_j.push_back(value_json(o));
      j["decisions"].push_back({{"name", d.name},
                                {"kind", nasforge::decision_kind_name(d.kind)},
                                {"options", opts_j},
                                {"path", d.path},
                                {"conditional", d.conditional}});
    }
    auto size = s.size();
    j["size"] = {{"exact", size.exact}, {"log10", size.log10}};
    if (s.native_format()) j["native_format"] = *s.native_format();
    if (!a.arch.empty()) {
      auto arch = s.parse_architecture(a.arch);
      auto net = s.resolve(arch);
      auto c = nasforge::analytic_costs(net, opts);
      j["arch"] = {{"choices", arch}, {"named", s.to_json(arch)}};
      if (s.native_format()) j["arch"]["native"] = s.to_native(arch);
      j["input_shape"] = net.input_shape;
      j["layers"] = json::array();
      for (std::size_t i = 0; i < net.layers.size(); ++i) {
        const auto& l = net.layers[i];
        json attrs = json::object();
        for (const auto& [k, v] : l.attrs.values()) attrs[k] = value_json(v);
        j["layers"].push_back({{"name", l.name},
                               {"op", l.op},
                               {"choice", l.choice},
                               {"inputs", l.inputs},
                               {"output_shape", l.output_shape},
                               {"attrs", attrs},
                               {"params", c.layers[i].params},
                               {"macs", c.layers[i].macs}});
      }
      j["costs"] = costs_json(c);
      j["costs"]["batch"] = a.batch;
    }
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  // Parse and resolve before printing anything, so a bad --arch prints only its error.
  std::optional<nasforge::Architecture> arch;
  std::optional<nasforge::ConcreteNetwork> net;
  if (!a.arch.empty()) {
    arch = s.parse_architecture(a.arch);
    net = s.resolve(*arch);
  }
  fmt::print("{}", s.summary());
  if (arch) {
    auto c = nasforge::analytic_costs(*net, opts);
    fmt::print("\narchitecture {}\n", arch_text(s, *arch));
    fmt::print("{:>4} {:<36} {:<26} {:<16} {:>10} {:>14}\n", "#", "layer", "op", "output", "params", "MACs");
    for (std::size_t i = 0; i < net->layers.size(); ++i) {
      const auto& l = net->layers[i];
      fmt::print("{:>4} {:<36} {:<26} {:<16} {:>10} {:>14}\n", i, l.name,
                 l.choice.empty() ? l.op : l.op + ":" + l.choice,
                 nasforge::shape_to_string(l.output_shape), c.layers[i].params, c.layers[i].macs);
    }
    fmt::print("\nparams {} ({})\nMACs   {} ({}; FLOPs = 2 x MACs = {}) at batch {}\n"
               "peak activation memory {} bytes ({}) at batch {}, float32\n",
               c.params, human(static_cast<double>(c.params), ""), c.macs,
               human(static_cast<double>(c.macs), ""), human(static_cast<double>(c.flops()), ""),
               a.batch, c.peak_activation_bytes,
               human(static_cast<double>(c.peak_activation_bytes), "B"), a.batch);
  }
  return 0;
}

int cmd_sample(const Args& a) {
  if (a.positional.size() != 1) throw UsageError("space sample: expected one FILE");
  if (!a.arch.empty()) throw UsageError("space sample: --arch is for space inspect");
  SearchSpace s = SearchSpace::from_file(a.positional[0], a.overrides);
  nasforge::Rng rng(a.seed);
  const nasforge::CostOptions opts{.batch = a.batch};
  json out = json::array();
  if (!a.json) fmt::print("{:>12} {:>14} {:>14}  architecture\n", "params", "MACs", "peak bytes");
  for (long long i = 0; i < a.n; ++i) {
    auto arch = s.sample(rng);
    auto c = nasforge::analytic_costs(s.resolve(arch), opts);
    if (a.json) {
      json e = costs_json(c);
      e["arch"] = arch_json(s, arch);
      e["choices"] = arch;
      out.push_back(std::move(e));
    } else {
      fmt::print("{:>12} {:>14} {:>14}  {}\n", c.params, c.macs, c.peak_activation_bytes, arch_text(s, arch));
    }
  }
  if (a.json) fmt::print("{}\n", out.dump(2));
  return 0;
}

int cmd_ops(const Args& a) {
  json out = json::array();
  for (const auto& name : nasforge::op_names()) {
    const auto& def = nasforge::find_op(name);
    if (a.json) {
      json attrs = json::array();
      for (const auto& ad : def.attrs) {
        attrs.push_back({{"name", ad.name},
                         {"type", nasforge::attr_type_name(ad.type)},
                         {"default", ad.fallback ? value_json(*ad.fallback) : json(nullptr)},
                         {"doc", ad.doc}});
      }
      out.push_back({{"name", name}, {"doc", def.doc}, {"attrs", attrs}});
      continue;
    }
    fmt::print("{}\n    {}\n", name, def.doc);
    for (const auto& ad : def.attrs) {
      fmt::print("    {:<12} {:<8} {:<10} {}\n", ad.name, nasforge::attr_type_name(ad.type),
                 ad.fallback ? ad.fallback->repr() : std::string("required"), ad.doc);
    }
  }
  if (a.json) fmt::print("{}\n", out.dump(2));
  return 0;
}

// Wraps an evaluator with a fixed delay per call (--sleep-ms): a stand-in for an expensive
// evaluator, used by the kill-and-resume test.
class SlowEvaluator final : public nasforge::Evaluator {
 public:
  SlowEvaluator(const nasforge::Evaluator& inner, long long ms) : inner_(inner), ms_(ms) {}
  nasforge::Metrics evaluate(const nasforge::Architecture& a) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    return inner_.evaluate(a);
  }
  std::vector<std::string> metric_names() const override { return inner_.metric_names(); }
  std::vector<std::pair<nasforge::Architecture, nasforge::Metrics>> known() const override { return inner_.known(); }
  bool complete() const override { return inner_.complete(); }

 private:
  const nasforge::Evaluator& inner_;
  long long ms_;
};

int cmd_search(const Args& a) {
  if (a.strategy == "darts" || a.strategy == "darts2" || a.strategy == "pc-darts" || a.strategy == "darts-pt" ||
      a.strategy == "few-shot-gm") {
#ifdef NASFORGE_CLI_HAS_TORCH
    if (a.strategy == "few-shot-gm") return nasforge::cli::cmd_search_few_shot(a);
    return nasforge::cli::cmd_search_darts(a);
#else
    throw UsageError(fmt::format("search: --strategy {} needs LibTorch (this nasforge was built with NASFORGE_WITH_TORCH=OFF)",
                                 a.strategy));
#endif
  }
  if (a.space.empty()) throw UsageError("search: expected --space FILE");
  if (a.evaluators.empty()) throw UsageError("search: expected --evaluator table:CSV");
  if (a.objectives.empty()) throw UsageError("search: expected at least one --objective METRIC:max|min");
  if (a.out.empty()) throw UsageError("search: expected --out DIR");
  if (!a.positional.empty()) throw UsageError(fmt::format("search: unexpected argument \"{}\"", a.positional[0]));
  auto space = SearchSpace::from_file(a.space, a.overrides);
  // Every --evaluator table:... joins one table evaluator.
  std::string tables;
  for (const auto& spec : a.evaluators) {
    if (spec.rfind("table:", 0) != 0) throw UsageError(fmt::format("--evaluator: expected table:CSV[,CSV...], found \"{}\"", spec));
    if (!tables.empty()) tables.push_back(',');
    tables.append(spec, 6, std::string::npos);
  }
  auto table = nasforge::make_evaluator("table:" + tables, space);
  SlowEvaluator slow(*table, a.sleep_ms);
  const nasforge::Evaluator& evaluator = a.sleep_ms > 0 ? static_cast<const nasforge::Evaluator&>(slow) : *table;

  nasforge::SearchOptions o;
  for (const auto& t : a.objectives) o.objectives.push_back(nasforge::parse_objective(t));
  for (const auto& t : a.constraints) o.constraints.push_back(nasforge::parse_constraint(t));
  // --budget-seconds or --budget-simulated alone: no evaluation limit unless --budget is given.
  const bool other_budget = a.budget_seconds > 0 || a.budget_simulated > 0;
  o.budget.evaluations = other_budget && !a.budget_set ? 0 : static_cast<std::uint64_t>(a.budget);
  o.budget.wall_seconds = a.budget_seconds;
  o.budget.simulated_seconds = a.budget_simulated;
  o.budget.cost_metric = a.cost_metric;
  o.threads = static_cast<int>(a.threads);
  o.out_dir = a.out;
  o.resume = a.resume;
  o.seed = a.seed;
  o.checkpoint_every = static_cast<std::uint64_t>(a.checkpoint_every);
  json options = json::parse(a.strategy_options, nullptr, false);
  if (options.is_discarded() || !options.is_object()) {
    throw UsageError(fmt::format("--strategy-options: expected a JSON object, found \"{}\"", a.strategy_options));
  }
  auto strategy = nasforge::make_strategy(a.strategy, space, options, a.seed);
  const bool tty = isatty(fileno(stderr)) != 0;
  const auto& first = o.objectives[0];
  o.on_progress = [&](const nasforge::SearchProgress& p) {
    std::string best = p.best ? fmt::format("{:.4g}", p.best->metrics.at(first.metric)) : std::string("-");
    std::string limit = o.budget.evaluations ? std::to_string(o.budget.evaluations) : std::string("-");
    std::string line = fmt::format("{} {}/{}  failed {}  best {} {}  {:.1f} s", a.strategy, p.evaluations, limit, p.failed,
                                   first.metric, best, p.wall_seconds);
    if (tty) fmt::print(stderr, "\r{}   ", line);
    return false;
  };
  auto r = nasforge::run_search(space, *strategy, evaluator, o);
  if (tty) fmt::print(stderr, "\n");
  fmt::print("{}{} evaluations ({} failed) in {:.2f} s{}\n", r.resumed ? "resumed; " : "", r.history.size(),
             std::count_if(r.history.begin(), r.history.end(), [](const auto& t) { return t.failed; }), r.wall_seconds,
             o.budget.cost_metric.empty() ? std::string() : fmt::format(", simulated {:.0f} s", r.simulated_seconds));
  fmt::print("{} ({}):\n", o.objectives.size() == 1 ? "best" : "Pareto front", r.best.size());
  for (std::size_t i : r.best) {
    const auto& t = r.history[i];
    std::string ms;
    for (const auto& obj : o.objectives) ms += fmt::format("  {} {:.4g}", obj.metric, t.metrics.at(obj.metric));
    fmt::print("  {}{}\n", arch_text(space, t.arch), ms);
  }
  fmt::print("results in {}/result.json\n", a.out);
  return 0;
}

nasforge::FeatureOptions parse_features(const std::string& text) {
  // One-hot is always there, as before, unless counts (`counts`, `first`, `first-delta`,
  // `edges`: coarser one-hots) replace it; `counts,onehot` has both.
  nasforge::FeatureOptions f;
  bool onehot_named = false;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part == "pairwise") f.pairwise = true;
    else if (part == "stats") f.statistics = true;
    else if (part == "counts") f.stage_counts = true;
    else if (part == "first") f.stage_counts = f.stage_first_apart = true;
    else if (part == "first-delta") f.stage_counts = f.stage_first_delta = true;
    else if (part == "edges") f.edge_counts = true;
    else if (part == "costs") f.linear_costs = true;
    else if (part == "pruned") f.pruned_graph = true;
    else if (part == "network") f.network_counts = true;
    else if (part == "onehot") onehot_named = true;
    else {
      throw UsageError(fmt::format(
          "--features: expected onehot, pairwise, counts, first, first-delta, edges, costs, "
          "network, pruned or stats, found \"{}\"",
          part));
    }
  }
  f.onehot = onehot_named || !(f.stage_counts || f.edge_counts);
  return f;
}

int cmd_predictor_fit(const Args& a) {
  if (a.space.empty() || a.table.empty() || a.target.empty() || a.out.empty()) {
    throw UsageError("predictor fit: expected --space FILE --table CSV --target COL --out MODEL.json");
  }
  auto space = SearchSpace::from_file(a.space, a.overrides);
  nasforge::TableEvaluator table(space);
  table.add_csv(a.table, {a.target}, a.arch_column);
  auto rows = table.known();
  if (static_cast<std::size_t>(a.train) + 2 > rows.size()) {
    throw UsageError(fmt::format("--train: the table has {} rows; expected at most {} training rows (two held out), found {}",
                                 rows.size(), rows.size() < 2 ? 0 : rows.size() - 2, a.train));
  }
  // `--features A|B|...`: alternatives, chosen between by ridge's leave-one-out error on the
  // training rows (below, once they are drawn).
  std::vector<std::string> alternatives{""};
  for (char c : a.features) {
    if (c == '|') alternatives.emplace_back();
    else if (!std::isspace(static_cast<unsigned char>(c))) alternatives.back() += c;
  }
  for (std::size_t i = 0; alternatives.size() > 1 && i < alternatives.size(); ++i) {
    if (alternatives[i].empty()) {
      throw UsageError(fmt::format(
          "--features: alternative {} of {} in \"{}\" is empty; expected a feature list such as "
          "edges,costs on each side of |",
          i + 1, alternatives.size(), a.features));
    }
  }
  if (alternatives.size() > 1 && a.train < 3) {
    throw UsageError(fmt::format(
        "--train: choosing between feature sets by leave-one-out needs at least 3 training "
        "rows, found {}",
        a.train));
  }
  std::vector<nasforge::FeatureOptions> candidates;
  for (const auto& text : alternatives) candidates.push_back(parse_features(text));
  json options = json::parse(a.model_options, nullptr, false);
  if (options.is_discarded() || !options.is_object()) {
    throw UsageError(fmt::format("--model-options: expected a JSON object, found \"{}\"", a.model_options));
  }
  const std::string kind = a.model.empty() ? "ridge" : a.model;
  auto model = nasforge::make_predictor(kind, options);
  nasforge::Rng rng(a.seed);  // a seeded random training subset, the rest held out
  std::vector<std::size_t> idx(rows.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  const auto n = static_cast<std::size_t>(a.train);
  for (std::size_t i = 0; i < n; ++i) std::swap(idx[i], idx[i + rng.uniform(idx.size() - i)]);
  std::vector<double> yt, yv;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    double y = rows[idx[i]].second.at(a.target);
    if (a.log_target && !(y > 0)) throw UsageError(fmt::format("--log-target: \"{}\" has a value <= 0 ({})", a.target, y));
    (i < n ? yt : yv).push_back(y);
  }
  if (a.log_target) {
    for (auto& y : yt) y = std::log(y);
  }
  nasforge::FeatureOptions features = candidates[0];
  if (candidates.size() > 1) {
    std::vector<nasforge::Architecture> train_archs;
    for (std::size_t i = 0; i < n; ++i) train_archs.push_back(rows[idx[i]].first);
    const auto choice = nasforge::choose_features(space, candidates, train_archs, yt);
    features = candidates[choice.best];
    fmt::print("features by leave-one-out on the training rows:");
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      fmt::print(" {}\"{}\" {:.4g}", c == choice.best ? "*" : "", alternatives[c],
                 choice.loo_mse[c]);
    }
    fmt::print(" (MSE; * chosen)\n");
  }
  std::vector<std::vector<float>> xt, xv;
  for (std::size_t i = 0; i < idx.size(); ++i) {
    (i < n ? xt : xv)
        .push_back(nasforge::architecture_features(space, rows[idx[i]].first, features));
  }
  const auto t0 = std::chrono::steady_clock::now();
  model->fit(xt, yt);
  auto pred = model->predict_batch(xv);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.log_target) {
    for (auto& p : pred) p = std::exp(p);
  }
  auto q = nasforge::prediction_quality(pred, yv);
  fmt::print("{} on {} ({} features): trained on {} rows, tested on {} (fit + predict {:.3f} s)\n", kind, a.target,
             xt[0].size(), xt.size(), xv.size(), seconds);
  fmt::print("spearman {:.4f}  kendall {:.4f}  rmse {:.4g}  mape {:.2f}%  within ±10% {:.1f}%\n", q.spearman, q.kendall,
             q.rmse, 100 * q.mape, 100 * q.within_10pct);
  json saved{{"space", {{"name", space.name()}, {"fingerprint", space.fingerprint()}}},
             {"target", a.target}, {"table", a.table}, {"log_target", a.log_target},
             {"features", nasforge::features_to_json(features, space)},
             {"held_out", {{"spearman", q.spearman}, {"kendall", q.kendall}, {"rmse", q.rmse}, {"mape", q.mape},
                           {"within_10pct", q.within_10pct}, {"rows", yv.size()}}},
             {"predictor", model->to_json()}};
  std::ofstream out(a.out);
  out << saved.dump() << "\n";
  if (!out) throw nasforge::InvalidArgument(fmt::format("{}: cannot write", a.out));
  fmt::print("saved to {}\n", a.out);
  return 0;
}

int cmd_predict(const Args& a) {
  if (a.space.empty() || a.model.empty() || a.arch.empty()) {
    throw UsageError("predict: expected --space FILE --model MODEL.json --arch ARCH");
  }
  auto space = SearchSpace::from_file(a.space, a.overrides);
  std::ifstream in(a.model);
  if (!in) throw nasforge::NotFound(fmt::format("{}: cannot open the model", a.model));
  json saved = json::parse(in, nullptr, false);
  const auto print = [&](const nasforge::CostModel& model) {
    fmt::print("{} {:.6g}\n", model.metric(), model.predict(space.parse_architecture(a.arch)));
    return 0;
  };
  if (!saved.is_object()) {
    throw nasforge::InvalidArgument(fmt::format("{}: expected a JSON object (a model), found {}", a.model,
                                                saved.is_discarded() ? "invalid JSON" : saved.type_name()));
  }
  if (saved.contains("kind") && saved.contains("cost_model")) {  // `nasforge profile` output
    auto model = nasforge::load_cost_model(space, saved["cost_model"]);
    if (saved.value("fingerprint", std::string()) != space.fingerprint()) {
      throw nasforge::InvalidArgument(fmt::format("{}: profiled for another space or parameters (fingerprint {}, this "
                                                  "space {})", a.model, saved.value("fingerprint", std::string("?")),
                                                  space.fingerprint()));
    }
    return print(*model);
  }
  // A bare analytic or energy model ({"kind": "energy", "batch": 256, "mac_pj": ...}, as
  // CostModel::to_json writes it): computed from the space itself, so no fingerprint to check.
  const auto kind = saved.contains("kind") && saved["kind"].is_string() ? saved["kind"].get<std::string>() : "";
  if (kind == "analytic" || kind == "energy") return print(*nasforge::load_cost_model(space, saved));
  if (!saved.contains("predictor")) {
    throw nasforge::InvalidArgument(fmt::format("{}: not a model written by `nasforge predictor fit` or `nasforge profile`, "
                                                "nor an analytic or energy cost model", a.model));
  }
  if (saved.value("/space/fingerprint"_json_pointer, std::string()) != space.fingerprint()) {
    throw nasforge::InvalidArgument(fmt::format("{}: fitted on space \"{}\" (fingerprint {}), not on {} ({})", a.model,
                                                saved.value("/space/name"_json_pointer, std::string("?")),
                                                saved.value("/space/fingerprint"_json_pointer, std::string("?")), space.name(),
                                                space.fingerprint()));
  }
  auto model = nasforge::make_predictor_from_json(saved["predictor"]);
  const json feats = saved.value("features", json::object());
  const nasforge::FeatureOptions f = nasforge::features_from_json(feats, space);
  auto arch = space.parse_architecture(a.arch);
  double v = model->predict(nasforge::architecture_features(space, arch, f));
  if (saved.value("log_target", false)) v = std::exp(v);
  fmt::print("{} {:.6g}\n", saved.value("target", std::string("value")), v);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Reuse freed tensor memory instead of faulting in fresh pages for every large tensor
  // (allocator.h): ~10% faster training steps here, and stable latency measurements.
  nasforge::reuse_freed_memory();
  try {
#ifdef NASFORGE_CLI_HAS_TORCH
    nasforge::cli::register_torch_extensions();  // `--model mlp`
#endif
    if (argc < 2) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "--version") {
      fmt::print("nasforge 0.1.0\n");
      return 0;
    }
    if (cmd == "ops") return cmd_ops(parse_args(argc, argv, 2));
    if (cmd == "search") return cmd_search(parse_args(argc, argv, 2));
    if (cmd == "predict") return cmd_predict(parse_args(argc, argv, 2));
    if (cmd == "predictor") {
      if (argc < 3 || std::string(argv[2]) != "fit") throw UsageError("predictor: expected the subcommand fit");
      return cmd_predictor_fit(parse_args(argc, argv, 3));
    }
    if (cmd == "train" || cmd == "extract" || cmd == "supernet" || cmd == "profile" || cmd == "measure") {
#ifdef NASFORGE_CLI_HAS_TORCH
      if (cmd == "train") return nasforge::cli::cmd_train(parse_args(argc, argv, 2));
      if (cmd == "profile") return nasforge::cli::cmd_profile(parse_args(argc, argv, 2));
      if (cmd == "measure") return nasforge::cli::cmd_measure(parse_args(argc, argv, 2));
      if (cmd == "extract") return nasforge::cli::cmd_extract(parse_args(argc, argv, 2));
      if (argc < 3 || std::string(argv[2]) != "init") throw UsageError("supernet: expected the subcommand init");
      return nasforge::cli::cmd_supernet_init(parse_args(argc, argv, 3));
#else
      throw UsageError(fmt::format("{}: this nasforge was built without LibTorch (NASFORGE_WITH_TORCH=OFF)", cmd));
#endif
    }
    if (cmd == "space") {
      if (argc < 3) throw UsageError("space: expected a subcommand: inspect or sample");
      std::string sub = argv[2];
      Args a = parse_args(argc, argv, 3);
      if (sub == "inspect") return cmd_inspect(a);
      if (sub == "sample") return cmd_sample(a);
      throw UsageError(fmt::format("space: unknown subcommand \"{}\"; expected inspect or sample", sub));
    }
    throw UsageError(fmt::format("unknown command \"{}\" (see nasforge --help)", cmd));
  } catch (const UsageError& e) {
    fmt::print(stderr, "nasforge: {}\n", e.what());
    return 2;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "nasforge: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nasforge: internal error: {}\n", e.what());
    return 1;
  }
}
