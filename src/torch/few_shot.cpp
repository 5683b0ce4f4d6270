// Few-shot NAS: gradient-matching distances, partitions, the edge to split (ALGORITHMS.md 5).
#include "nasforge/torch/few_shot.h"

#include <torch/torch.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <limits>
#include <numeric>
#include <string>

#include <tbb/task_arena.h>
#include <tbb/parallel_for.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "nasforge/error.h"
#include "detail/files.h"
#include "torch/schedule.h"
#include "torch/thread_scope.h"

namespace nasforge {

std::vector<::torch::Tensor> shared_parameters(SupernetImpl& net, std::size_t decision) {
  const auto& layers = net.structure().layers;
  const auto& ds = net.space().decisions();
  NASFORGE_CHECK(decision < ds.size() && ds[decision].kind == DecisionKind::kOp,
                 "shared_parameters: decision {} is not an op decision of space \"{}\"", decision, net.space().name());
  std::vector<int> owner(layers.size(), -1);  // candidate layer -> its op decision
  std::size_t first = layers.size(), last = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].op != "mixed") continue;
    for (int c : layers[i].inputs) {
      owner[static_cast<std::size_t>(c)] = static_cast<int>(layers[i].attrs.i("decision"));
      first = std::min(first, static_cast<std::size_t>(c));
    }
    last = i;
  }
  std::vector<::torch::Tensor> out;
  for (const auto& p : net.named_parameters()) {
    const std::string& name = p.key();  // "l<layer>.<path>"
    if (name.size() < 2 || name[0] != 'l' || !std::isdigit(static_cast<unsigned char>(name[1]))) continue;
    const auto i = static_cast<std::size_t>(std::stoul(name.substr(1, name.find('.') - 1)));
    const bool other_candidate = owner[i] >= 0 && static_cast<std::size_t>(owner[i]) != decision;
    const bool between = owner[i] < 0 && i > first && i < last;
    if (other_candidate || between) out.push_back(p.value());
  }
  return out;
}

std::vector<std::vector<double>> gradient_match_distances(SupernetImpl& net, std::size_t decision, const BatchSource& batch,
                                                          const GradientMatchOptions& o) {
  NASFORGE_CHECK(o.repeats >= 1, "gradient_match_distances: repeats must be >= 1");
  const auto shared = shared_parameters(net, decision);
  NASFORGE_CHECK(!shared.empty(), "gradient_match_distances: decision \"{}\" has no shared weights to compare",
                 net.space().decisions()[decision].name);
  const auto& mask = net.mask(decision);
  const std::size_t k = mask.size();
  std::vector<std::vector<double>> dist(k, std::vector<double>(k, 0.0));
  const bool was_training = net.is_training();
  net.train();
  Rng paths(o.seed);
  const auto mixing = net.mixing_weights();
  for (std::size_t r = 0; r < o.repeats; ++r) {
    auto [x, y] = batch(r);
    std::vector<::torch::Tensor> base;
    if (o.single_path) {  // RSPS: every other edge runs one uniformly drawn enabled op
      const Architecture path = net.sample(paths);
      for (std::size_t d = 0; d < mixing.size(); ++d) {
        if (!mixing[d].defined()) {
          base.push_back(mixing[d]);
          continue;
        }
        auto one_hot = ::torch::zeros_like(mixing[d]).detach();
        one_hot[static_cast<std::int64_t>(path[d])] = 1.0;
        base.push_back(one_hot);
      }
    } else {
      for (const auto& w : mixing) base.push_back(w.defined() ? w.detach() : w);
    }
    std::vector<::torch::Tensor> g(k);
    for (std::size_t op = 0; op < k; ++op) {
      if (!mask[op]) continue;
      auto theta = base;
      auto row = ::torch::zeros_like(base[decision]);
      row[static_cast<std::int64_t>(op)] = o.hard ? ::torch::ones({}, row.options()) : base[decision][static_cast<std::int64_t>(op)];
      theta[decision] = row;
      auto loss = ::torch::nn::functional::cross_entropy(net.forward_mixed(x, theta), y);
      auto grads = ::torch::autograd::grad({loss}, shared, {}, false, false, /*allow_unused=*/true);
      std::vector<::torch::Tensor> flat;
      for (std::size_t i = 0; i < grads.size(); ++i) {
        flat.push_back(grads[i].defined() ? grads[i].reshape({-1}).to(::torch::kDouble)
                                          : ::torch::zeros({shared[i].numel()}, ::torch::kDouble));
      }
      g[op] = ::torch::cat(flat);
    }
    for (std::size_t a = 0; a < k; ++a) {
      for (std::size_t b = a + 1; b < k; ++b) {
        if (!mask[a] || !mask[b]) continue;
        const double cos = (g[a] * g[b]).sum().item<double>() / (g[a].norm().item<double>() * g[b].norm().item<double>() + 1e-6);
        dist[a][b] += (1.0 - cos) / static_cast<double>(o.repeats);
        dist[b][a] = dist[a][b];
      }
    }
  }
  net.train(was_training);
  for (std::size_t a = 0; a < k; ++a) {
    for (std::size_t b = 0; b < k; ++b) {
      if (!mask[a] || !mask[b]) {
        dist[a][b] = std::nan("");
      } else {
        NASFORGE_CHECK(std::isfinite(dist[a][b]), "gradient_match_distances: the distance between options {} and {} of \"{}\" "
                       "is not finite (a diverged loss?)", a, b, net.space().decisions()[decision].name);
      }
    }
  }
  return dist;
}

namespace {
// Group sizes for n items in `branch` groups, differing by at most one (larger groups last).
std::vector<std::size_t> group_sizes(std::size_t n, std::size_t branch) {
  NASFORGE_CHECK(branch >= 2 && branch <= n, "partition: cannot split {} options into {} groups (need 2 <= groups <= options)",
                 n, branch);
  std::vector<std::size_t> s(branch, n / branch);
  for (std::size_t i = 0; i < n % branch; ++i) ++s[branch - 1 - i];
  return s;
}

void score(EdgeSplit& s, const std::vector<std::vector<double>>& d) {
  s.intra = s.cut = 0;
  std::vector<std::pair<std::uint32_t, std::size_t>> all;  // (option, group)
  for (std::size_t g = 0; g < s.groups.size(); ++g) {
    for (auto o : s.groups[g]) all.emplace_back(o, g);
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      const double v = d.empty() ? 0.0 : d[all[i].first][all[j].first];
      (all[i].second == all[j].second ? s.intra : s.cut) += v;
    }
  }
}
}  // namespace

EdgeSplit best_partition(const std::vector<std::vector<double>>& d, const std::vector<std::uint32_t>& options,
                         std::size_t branch) {
  const auto sizes = group_sizes(options.size(), branch);
  for (auto o : options) {
    NASFORGE_CHECK(o < d.size() && d[o].size() == d.size(), "best_partition: option {} outside the {}x{} distance matrix", o,
                   d.size(), d.size());
  }
  // Enumerate assignments option -> group with the required group sizes; a group's first
  // member fixes its label among equal-sized groups, so each partition appears once per
  // ordering of same-size groups (cheap for the <= 8 options of the shipped spaces).
  EdgeSplit best;
  best.intra = std::numeric_limits<double>::infinity();
  std::vector<std::size_t> assign(options.size()), count(branch, 0);
  std::function<void(std::size_t)> rec = [&](std::size_t i) {
    if (i == options.size()) {
      EdgeSplit s;
      s.groups.assign(branch, {});
      for (std::size_t k = 0; k < options.size(); ++k) s.groups[assign[k]].push_back(options[k]);
      score(s, d);
      if (s.intra < best.intra) best = std::move(s);
      return;
    }
    for (std::size_t g = 0; g < branch; ++g) {
      if (count[g] == sizes[g]) continue;
      // Symmetry: an empty group may only be opened if every earlier group of the same size is used.
      bool skip = false;
      if (count[g] == 0) {
        for (std::size_t h = 0; h < g; ++h) skip |= sizes[h] == sizes[g] && count[h] == 0;
      }
      if (skip) continue;
      assign[i] = g;
      ++count[g];
      rec(i + 1);
      --count[g];
    }
  };
  rec(0);
  return best;
}

EdgeSplit random_partition(const std::vector<std::uint32_t>& options, std::size_t branch, Rng& rng) {
  const auto sizes = group_sizes(options.size(), branch);
  std::vector<std::uint32_t> perm = options;
  for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[rng.uniform(i)]);
  EdgeSplit s;
  std::size_t at = 0;
  for (std::size_t g = 0; g < branch; ++g) {
    std::vector<std::uint32_t> group(perm.begin() + static_cast<std::ptrdiff_t>(at),
                                     perm.begin() + static_cast<std::ptrdiff_t>(at + sizes[g]));
    std::sort(group.begin(), group.end());
    s.groups.push_back(std::move(group));
    at += sizes[g];
  }
  return s;
}

std::vector<std::size_t> unsplit_edges(const SupernetImpl& net) {
  std::vector<std::size_t> out;
  const auto& ds = net.space().decisions();
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (ds[d].kind != DecisionKind::kOp || ds[d].options.size() < 2) continue;
    const auto& m = net.mask(d);
    if (std::all_of(m.begin(), m.end(), [](bool b) { return b; })) out.push_back(d);
  }
  return out;
}

std::vector<std::uint32_t> enabled_options(const SupernetImpl& net, std::size_t d) {
  std::vector<std::uint32_t> out;
  const auto& m = net.mask(d);
  for (std::uint32_t o = 0; o < m.size(); ++o) {
    if (m[o]) out.push_back(o);
  }
  return out;
}

EdgeSplit choose_split(SupernetImpl& net, const BatchSource& batch, const GradientMatchOptions& o, std::size_t branch,
                       std::vector<std::size_t> edges) {
  if (edges.empty()) edges = unsplit_edges(net);
  NASFORGE_CHECK(!edges.empty(), "choose_split: every op decision of space \"{}\" is already split", net.space().name());
  NASFORGE_CHECK(std::any_of(edges.begin(), edges.end(), [&](std::size_t d) { return enabled_options(net, d).size() >= branch; }),
                 "choose_split: no candidate edge of space \"{}\" has {} enabled options to split into {} groups",
                 net.space().name(), branch, branch);
  EdgeSplit best;
  bool have = false;
  for (std::size_t d : edges) {
    const auto opts = enabled_options(net, d);
    if (opts.size() < branch) continue;  // cannot give every group an op
    const auto dist = gradient_match_distances(net, d, batch, o);
    EdgeSplit s = best_partition(dist, opts, branch);
    s.decision = d;
    if (!have || s.cut > best.cut) {
      best = std::move(s);
      have = true;
    }
  }
  return best;
}

}  // namespace nasforge

// ---- the splitting tree --------------------------------------------------------------------

namespace nasforge {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// Every decision's mask of `net`, in decision order.
std::vector<std::vector<bool>> masks_of(const SupernetImpl& net) {
  std::vector<std::vector<bool>> out;
  for (std::size_t d = 0; d < net.space().decisions().size(); ++d) out.push_back(net.mask(d));
  return out;
}

// A checkpoint file in the temp directory, unique per process and use, removed on every path.
struct ScratchFile {
  fs::path path;
  ScratchFile(const char* what, std::uint64_t seed) {
    static std::atomic<unsigned> uses{0};
    path = fs::temp_directory_path() / fmt::format("nasforge_few_shot_{}_{}_{}_{}.pt", what, ::getpid(), seed, uses.fetch_add(1));
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  ~ScratchFile() {
    std::error_code ec;
    fs::remove(path, ec);
    fs::remove(path.string() + ".tmp", ec);
  }
};

struct Node {
  std::unique_ptr<DartsSearch> search;
  BatchLoader train, valid;
  std::vector<EdgeSplit> splits;
  Rng paths;         // single-path training: the paths this supernet samples
  std::string file;  // its checkpoint file of the current generation; empty when it changed since
};


bool is_zero(SupernetImpl& net, std::size_t decision, std::uint32_t option) {
  for (const auto& l : net.structure().layers) {
    if (l.op == "mixed" && static_cast<std::size_t>(l.attrs.i("decision")) == decision) {
      return net.structure().layers[static_cast<std::size_t>(l.inputs[option])].op == "zero";
    }
  }
  return false;
}

double derived_accuracy(DartsSearch& s, const Architecture& a, const TensorData& valid, std::int64_t batch) {
  auto& net = s.supernet();
  ::torch::NoGradGuard no_grad;
  net->set_mode(SupernetMode::kSinglePath);
  net->set_architecture(a);
  net->train();  // batch statistics, as DARTS-PT and GM-NAS evaluate supernet paths
  double correct = 0;
  for (std::int64_t at = 0; at < valid.size(); at += batch) {
    const auto len = std::min(batch, valid.size() - at);
    correct += net->forward(valid.images.narrow(0, at, len)).argmax(1).eq(valid.labels.narrow(0, at, len)).sum().item<double>();
  }
  net->set_mode(SupernetMode::kMixed);
  return valid.size() ? correct / static_cast<double>(valid.size()) : 0.0;
}
}  // namespace

namespace {
void check_settings(const SearchSpace& space, const FewShotOptions& o, bool allow_no_split) {
  NASFORGE_CHECK(o.split == "gm" || o.split == "random" || o.split == "exhaustive",
                 "few-shot: split must be gm, random or exhaustive, got \"{}\"", o.split);
  NASFORGE_CHECK(o.training == "mixed" || o.training == "single-path",
                 "few-shot: training must be mixed or single-path, got \"{}\"", o.training);
  const bool exhaustive = o.split == "exhaustive";
  NASFORGE_CHECK((allow_no_split || !o.split_epochs.empty()) && (exhaustive || o.split_epochs.size() == o.branch.size()),
                 "few-shot: expected one branch factor per split epoch{}, got {} split epochs and {} branch factors",
                 allow_no_split ? "" : " (and at least one split)", o.split_epochs.size(), o.branch.size());
  std::size_t widest = 0, splittable = 0;  // the most options of an op decision; decisions with >= 2
  for (const auto& d : space.decisions()) {
    if (d.kind != DecisionKind::kOp) continue;
    widest = std::max(widest, d.options.size());
    splittable += d.options.size() >= 2;
  }
  NASFORGE_CHECK(splittable >= o.split_epochs.size(), "few-shot: {} split levels need as many splittable edges; space "
                 "\"{}\" has {}", o.split_epochs.size(), space.name(), splittable);
  for (std::size_t k = 0; !exhaustive && k < o.branch.size(); ++k) {
    NASFORGE_CHECK(o.branch[k] >= 2 && o.branch[k] <= widest, "few-shot: branch factor {} at level {} must be in [2, {}] "
                   "(the most ops an edge of \"{}\" has)", o.branch[k], k + 1, widest, space.name());
  }
  for (std::size_t k = 0; k < o.split_epochs.size(); ++k) {
    NASFORGE_CHECK(o.split_epochs[k] >= 1 && (k == 0 || o.split_epochs[k] > o.split_epochs[k - 1]),
                   "few-shot: split epochs must be >= 1 and increasing, got {}", fmt::join(o.split_epochs, ", "));
  }
  NASFORGE_CHECK(o.final_epochs >= 1, "few-shot: final_epochs must be >= 1, got {}", o.final_epochs);
}

json split_json(const EdgeSplit& s) {
  return {{"decision", s.decision}, {"groups", s.groups}, {"intra", s.intra}, {"cut", s.cut}};
}
EdgeSplit split_from(const json& j) {
  EdgeSplit s;
  s.decision = j.at("decision");
  s.groups = j.at("groups").get<std::vector<std::vector<std::uint32_t>>>();
  s.intra = j.at("intra");
  s.cut = j.at("cut");
  return s;
}

// The splitting tree: the splitting phase shared by both trainings, the leaves' restarts, and
// the checkpoints that make a long few-shot search resumable. With an out_dir, every epoch ends
// in a checkpoint: tree.json (the position, settings and node list, written last and
// atomically) and one file per sub-supernet that changed since the previous checkpoint
// (node_<generation>_<index>.pt; files tree.json no longer names are removed).
class Tree {
 public:
  Tree(const SearchSpace& space, const FewShotOptions& o, DartsOptions so, const TensorData& train, const TensorData& valid)
      : space_(space), o_(o), so_(std::move(so)), train_(train), valid_(valid), single_(o.training == "single-path"),
        rng_(so_.seed ^ 0x5EED5EEDULL), dir_(o.out_dir), tmp_("parent", so_.seed) {
    if (!dir_.empty()) fs::create_directories(dir_);
    if (o.resume && !dir_.empty() && fs::exists(dir_ / "tree.json")) {
      resume();
    } else {
      if (!dir_.empty()) {  // a fresh tree: an earlier run's sub-supernets and leaf runs must not be resumed
        for (const auto& entry : fs::directory_iterator(dir_)) {
          const std::string name = entry.path().filename().string();
          if (name.rfind("node_", 0) == 0 || name.rfind("leaf_", 0) == 0 || name == "tree.json") detail::remove_tree(entry.path());
        }
      }
      level_.push_back(make_node(so_, {}, Rng(so_.seed ^ 0xA7A7ULL)));
    }
    t0_ = std::chrono::steady_clock::now();
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;

  // One epoch of weight training (alpha fixed) of node n at learning rate lr.
  void train_epoch(Node& n, double lr) {
    n.file.clear();
    if (!single_) {
      n.search->run_epoch(n.train, n.valid, lr, /*arch_updates=*/false);
      return;
    }
    auto& net = *n.search->supernet();
    const std::int64_t steps =
        so_.steps_per_epoch > 0 ? std::min(so_.steps_per_epoch, n.train.num_batches()) : n.train.num_batches();
    for (std::int64_t i = 0; i < steps; ++i) {
      auto [x, y] = n.train.batch(i);
      n.search->path_step(x, y, lr, net.sample(n.paths));
    }
    n.train.next_epoch();
    n.valid.next_epoch();
  }

  // Runs f on every node of the current level: in oneTBB tasks with `parallel` (as many at a
  // time as the search's threads, each on one intra-op thread), else one after another.
  template <typename F>
  void for_each_node(F&& f) {
    if (!o_.parallel) {
      for (auto& n : level_) f(n);
      return;
    }
    const int tasks = so_.threads > 0 ? so_.threads : ::torch::get_num_threads();
    detail::ThreadScope one(1, /*blas=*/true);  // a lone supernet too: the result is the one-thread result
    if (level_.size() < 2) {
      for (auto& n : level_) f(n);
      return;
    }
    tbb::task_arena arena(std::max(1, tasks));  // this many at a time, whatever the process's other limits
    arena.execute([&] {
      tbb::parallel_for(std::size_t{0}, level_.size(), [&](std::size_t i) {
        // LibTorch keeps its OpenMP thread count per thread: a worker that ran torch code at
        // another count before would keep it.
        ::torch::set_num_threads(1);
        f(level_[i]);
      });
    });
  }

  // Runs (or, after a resume, finishes) the splitting phase; returns the leaves.
  std::vector<Node>& grow() {
    const std::int64_t split_total = o_.split_epochs.empty() ? 0 : o_.split_epochs.back();
    if (phase_ == "final") return level_;
    for (std::size_t k = splits_done_; k < o_.split_epochs.size(); ++k) {
      for (; epoch_ < o_.split_epochs[k]; ++epoch_) {  // weights only; one cosine over the splitting phase
        const double lr = detail::cosine_lr(so_.lr, so_.lr_min, epoch_, split_total + o_.final_epochs);
        for_each_node([&](Node& n) { train_epoch(n, lr); });
        if (epoch_ + 1 < o_.split_epochs[k]) {
          checkpoint("split", epoch_ + 1, k, 0, 0, json::object());
          if (stopped_) {
            ++epoch_;
            return level_;
          }
        }
      }
      std::vector<EdgeSplit> splits(level_.size());
      if (o_.split == "gm") {  // the scores need no shared state: one task per supernet
        std::vector<std::uint64_t> seeds;
        for (auto& n : level_) seeds.push_back(n.paths());
        for_each_node([&](Node& n) {
          const auto i = static_cast<std::size_t>(&n - level_.data());
          splits[i] = gm_split(n, k, seeds[i]);
        });
      } else {
        for (std::size_t i = 0; i < level_.size(); ++i) splits[i] = other_split(level_[i], k);
      }
      std::vector<Node> next;
      for (std::size_t i = 0; i < level_.size(); ++i) make_children(level_[i], splits[i], next);
      level_ = std::move(next);
      splits_done_ = k + 1;
      checkpoint("split", epoch_, splits_done_, 0, 0, json::object());
      if (stopped_) return level_;
    }
    phase_ = "final";
    return level_;
  }

  // Re-initialises leaf `leaf` (weights, alpha, optimisers); only its masks stay.
  void restart(std::size_t leaf) {
    auto& n = level_[leaf];
    const auto masks = masks_of(*n.search->supernet());
    DartsOptions fresh = so_;
    fresh.seed = so_.seed + 1 + leaf;
    n.search.reset();
    n.search = std::make_unique<DartsSearch>(space_, fresh);
    n.file.clear();
    for (std::size_t d = 0; d < masks.size(); ++d) n.search->supernet()->set_mask(d, masks[d]);
  }

  // Where the final phase stands: the leaf in progress, its completed epochs, and what the
  // driver stored with the last checkpoint (json object; empty on a fresh run).
  std::size_t leaf() const noexcept { return leaf_; }
  std::int64_t leaf_epoch() const noexcept { return leaf_epoch_; }
  const json& extra() const noexcept { return extra_; }
  bool resumed() const noexcept { return resumed_; }
  bool stopped() const noexcept { return stopped_; }
  // Wall seconds of this run plus those before the resume.
  double seconds() const {
    return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

  // A checkpoint in the final phase: `epochs` of leaf `leaf` are done.
  // `notify`: also report it to on_epoch (single-path training; run_darts reports the mixed
  // leaves' epochs itself).
  void checkpoint_final(std::size_t leaf, std::int64_t epochs, const json& extra, bool notify) {
    if (notify) {
      checkpoint("final", epoch_, splits_done_, leaf, epochs, extra);
    } else {
      save("final", epoch_, splits_done_, leaf, epochs, extra);
    }
  }

 private:
  Node make_node(const DartsOptions& so, std::vector<EdgeSplit> splits, Rng paths) {
    return {std::make_unique<DartsSearch>(space_, so), BatchLoader(train_, so_.batch, true, so_.seed, true),
            BatchLoader(valid_, so_.batch, true, so_.seed + 1, true), std::move(splits), paths, {}};
  }

  json settings() const {
    json j = darts_options_to_json(so_);
    j.erase("threads");  // a running option
    j["samples"] = train_.size() + valid_.size();
    j["split_epochs"] = o_.split_epochs;
    j["branch"] = o_.branch;
    j["split"] = o_.split;
    j["gm"] = {{"repeats", o_.gm.repeats}, {"hard", o_.gm.hard}, {"single_path", o_.gm.single_path}, {"seed", o_.gm.seed}};
    j["restart"] = o_.restart;
    j["final_epochs"] = o_.final_epochs;
    j["training"] = o_.training;
    j["parallel"] = o_.parallel;  // the final phase's checkpoints differ
    return j;
  }

  void checkpoint(const std::string& phase, std::int64_t epoch, std::size_t splits_done, std::size_t leaf,
                  std::int64_t leaf_epoch, const json& extra) {
    save(phase, epoch, splits_done, leaf, leaf_epoch, extra);
    if (o_.on_epoch) {
      FewShotProgress p{phase, phase == "final" ? leaf_epoch : epoch, level_.size(), leaf, seconds()};
      stopped_ = o_.on_epoch(p);
    }
  }

  void save(const std::string& phase, std::int64_t epoch, std::size_t splits_done, std::size_t leaf,
            std::int64_t leaf_epoch, const json& extra) {
    if (dir_.empty()) return;
    ++generation_;
    json nodes = json::array();
    for (std::size_t i = 0; i < level_.size(); ++i) {
      auto& n = level_[i];
      if (n.file.empty()) {
        n.file = fmt::format("node_{}_{}.pt", generation_, i);
        n.search->save((dir_ / n.file).string(), "{}");
      }
      json splits = json::array();
      for (const auto& sp : n.splits) splits.push_back(split_json(sp));
      const auto st = n.paths.state();
      nodes.push_back({{"file", n.file}, {"splits", splits}, {"paths", std::vector<std::uint64_t>(st.begin(), st.end())},
                       {"loader_epoch", n.train.epoch()}});
    }
    const auto rs = rng_.state();
    json st{{"settings", settings()}, {"phase", phase}, {"epoch", epoch}, {"splits_done", splits_done},
            {"leaf", leaf}, {"leaf_epoch", leaf_epoch}, {"rng", std::vector<std::uint64_t>(rs.begin(), rs.end())},
            {"nodes", nodes}, {"extra", extra}, {"seconds", seconds()}, {"generation", generation_}};
    detail::write_file_atomic(dir_ / "tree.json", st.dump(1) + "\n");
    std::set<std::string> keep;
    for (const auto& n : level_) keep.insert(n.file);
    for (const auto& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("node_", 0) == 0 && !keep.count(name)) {
        std::error_code ec;
        fs::remove(entry.path(), ec);
      }
    }
  }

  void resume() {
    const fs::path path = dir_ / "tree.json";
    std::ifstream in(path);
    json st = json::parse(in, nullptr, false);
    NASFORGE_CHECK(!st.is_discarded() && st.is_object() && st.contains("settings") && st.contains("nodes"),
                   "{}: not a few-shot checkpoint (expected the JSON tree.json writes)", path.string());
    const json now = settings();
    if (st.at("settings") != now) {
      std::vector<std::string> differ;
      for (const auto& [k, v] : now.items()) {
        if (!st["settings"].contains(k) || st["settings"][k] != v) {
          differ.push_back(fmt::format("{} ({} there, {} now)", k, st["settings"].value(k, json()).dump(), v.dump()));
        }
      }
      throw InvalidArgument(fmt::format("{}: the checkpoint was written with other settings: {}; use another output "
                                        "directory or the same settings", path.string(), fmt::join(differ, ", ")));
    }
    try {
      restore(st);
    } catch (const json::exception& e) {
      throw InvalidArgument(fmt::format("{}: a damaged few-shot checkpoint ({})", path.string(), e.what()));
    }
  }

  void restore(const json& st) {
    auto state_of = [](const json& j) {
      std::array<std::uint64_t, 4> a{};
      for (std::size_t i = 0; i < 4; ++i) a[i] = j.at(i).get<std::uint64_t>();
      return a;
    };
    phase_ = st.at("phase");
    epoch_ = st.at("epoch");
    splits_done_ = st.at("splits_done");
    leaf_ = st.at("leaf");
    leaf_epoch_ = st.at("leaf_epoch");
    extra_ = st.at("extra");
    seconds_before_ = st.at("seconds");
    generation_ = st.at("generation");  // new files never take a name the last tree.json uses
    rng_.set_state(state_of(st.at("rng")));
    for (const auto& j : st.at("nodes")) {
      std::vector<EdgeSplit> splits;
      for (const auto& sp : j.at("splits")) splits.push_back(split_from(sp));
      Rng paths;
      paths.set_state(state_of(j.at("paths")));
      Node n = make_node(so_, std::move(splits), paths);
      n.file = j.at("file");
      n.search->load((dir_ / n.file).string());  // weights, alpha, BN statistics, masks, optimiser state
      for (std::int64_t e = 0; e < j.at("loader_epoch").get<std::int64_t>(); ++e) {
        n.train.next_epoch();
        n.valid.next_epoch();
      }
      level_.push_back(std::move(n));
    }
    resumed_ = true;
  }

  // The edges node n may still split: op decisions no split on its path restricted, with at
  // least `least` enabled options. (Not unsplit_edges: DARTS-PT masks `none` out of DARTS
  // cells from the start, so their masks are never all true.)
  std::vector<std::size_t> open_edges(Node& n, std::size_t least, std::size_t k) {
    auto& net = *n.search->supernet();
    std::vector<std::size_t> open;
    const auto& ds = space_.decisions();
    for (std::size_t d = 0; d < ds.size(); ++d) {
      if (ds[d].kind != DecisionKind::kOp) continue;
      const bool split_before = std::any_of(n.splits.begin(), n.splits.end(), [&](const EdgeSplit& e) { return e.decision == d; });
      if (!split_before && enabled_options(net, d).size() >= std::max<std::size_t>(least, 2)) open.push_back(d);
    }
    NASFORGE_CHECK(!open.empty(), "few-shot: at level {} no edge that is not split yet has {} enabled options", k + 1,
                   std::max<std::size_t>(least, 2));
    return open;
  }

  EdgeSplit gm_split(Node& n, std::size_t k, std::uint64_t seed) {
    auto& net = *n.search->supernet();
    auto batches = [&](std::size_t r) { return n.train.batch(static_cast<std::int64_t>(r) % n.train.num_batches()); };
    GradientMatchOptions gm = o_.gm;
    gm.single_path = gm.single_path || single_;
    gm.seed = seed;
    return choose_split(net, batches, gm, o_.branch[k], open_edges(n, o_.branch[k], k));
  }

  EdgeSplit other_split(Node& n, std::size_t k) {
    auto& net = *n.search->supernet();
    EdgeSplit s;
    if (o_.split == "random") {
      const auto wide = open_edges(n, o_.branch[k], k);
      const std::size_t d = wide[rng_.uniform(wide.size())];
      s = random_partition(enabled_options(net, d), o_.branch[k], rng_);
      s.decision = d;
    } else {  // exhaustive: Few-shot NAS splits one edge into one sub-supernet per op
      // One per op; in cells whose nodes choose their inputs (DARTS) not for `none`, which
      // they never keep: Few-shot NAS's 5 sub-supernets on NB201, 7 on the DARTS space.
      const auto& ds = space_.decisions();
      const bool selects_inputs =
          std::any_of(ds.begin(), ds.end(), [](const Decision& d) { return d.kind == DecisionKind::kInputs; });
      s.decision = open_edges(n, 2, k).front();
      for (std::uint32_t op : enabled_options(net, s.decision)) {
        if (!selects_inputs || !is_zero(net, s.decision, op)) s.groups.push_back({op});
      }
    }
    return s;
  }

  void make_children(Node& n, const EdgeSplit& s, std::vector<Node>& next) {
    auto& net = *n.search->supernet();
    n.search->save(tmp_.path.string(), "{}");
    for (const auto& group : s.groups) {
      Node child{std::make_unique<DartsSearch>(space_, so_), n.train, n.valid, n.splits, Rng(n.paths()), {}};
      child.search->load(tmp_.path.string());  // weights, alpha, BN statistics, optimiser state
      std::vector<bool> allowed(net.mask(s.decision).size(), false);
      for (auto op : group) allowed[op] = true;
      child.search->supernet()->set_mask(s.decision, allowed);
      EdgeSplit mine = s;
      mine.groups = {group};
      child.splits.push_back(std::move(mine));
      next.push_back(std::move(child));
    }
    n.search.reset();  // the parent's weights live on in its children only
  }

  const SearchSpace& space_;
  const FewShotOptions& o_;
  DartsOptions so_;
  const TensorData& train_;
  const TensorData& valid_;
  bool single_;
  Rng rng_;
  fs::path dir_;
  ScratchFile tmp_;  // the parent's checkpoint while its children load it
  std::vector<Node> level_;
  std::string phase_ = "split";
  std::int64_t epoch_ = 0, leaf_epoch_ = 0;
  std::size_t splits_done_ = 0, leaf_ = 0;
  json extra_ = json::object();
  bool resumed_ = false, stopped_ = false;
  unsigned generation_ = 0;
  double seconds_before_ = 0;
  std::chrono::steady_clock::time_point t0_;
};
}  // namespace

FewShotResult run_few_shot(const SearchSpace& space, const TensorData& data, const FewShotOptions& o) {
  check_settings(space, o, /*allow_no_split=*/false);
  NASFORGE_CHECK(o.training == "mixed", "few-shot: run_few_shot searches with DARTS in mixed supernets; for "
                 "single-path training use train_sub_supernets and a FewShotEvaluator");
  detail::ThreadScope threads(o.search.threads, /*blas=*/true);
  DartsOptions so = o.search;
  so.warmup_epochs = 0;
  so.epochs = o.final_epochs;
  so.out_dir.clear();
  so.resume = false;
  so.on_epoch = {};
  so.on_finish = {};
  so.initial_checkpoint.clear();
  const auto [train, valid] = split_search_data(space, data, so, "few-shot");
  Tree tree(space, o, so, train, valid);
  auto& level = tree.grow();
  FewShotResult r;
  r.resumed = tree.resumed();
  if (tree.stopped()) {
    r.stopped = true;
    return r;
  }
  // The inner search of every leaf is run_darts started from the leaf (a new cosine schedule,
  // the reference's --fix_sche; DARTS-PT's projections after it), in DIR/leaf_<i> when the
  // tree checkpoints: a resumed tree resumes the leaf in progress from its own checkpoint.
  json done = tree.extra().value("leaves", json::array());  // leaves finished before a resume
  const ScratchFile init("leaf", so.seed);
  bool stopped = false;
  for (std::size_t leaf = tree.leaf(); leaf < level.size() && !stopped; ++leaf) {
    if (o.restart) tree.restart(leaf);  // fresh weights, alpha and optimisers; only the masks stay
    auto& n = level[leaf];
    n.search->save(init.path.string(), "{}");
    DartsOptions lo = so;
    lo.initial_checkpoint = init.path.string();
    if (!o.out_dir.empty()) {
      lo.out_dir = (fs::path(o.out_dir) / fmt::format("leaf_{}", leaf)).string();
      lo.resume = tree.resumed() && leaf == tree.leaf();
    }
    lo.progress = o.search.progress;
    lo.on_epoch = [&](const DartsEpoch& e) {
      stopped = o.on_epoch && o.on_epoch(FewShotProgress{"final", e.epoch, level.size(), leaf, tree.seconds()});
      return stopped;
    };
    double accuracy = 0;
    lo.on_finish = [&](DartsSearch& s) { accuracy = derived_accuracy(s, s.derive(), valid, so.batch); };
    DartsResult dr = run_darts(space, data, lo);
    if (stopped) break;
    const auto masks = masks_of(*n.search->supernet());
    json splits = json::array(), epochs = json::array();
    for (const auto& sp : n.splits) splits.push_back(split_json(sp));
    for (const auto& e : dr.epochs) epochs.push_back(darts_epoch_to_json(e));
    done.push_back({{"masks", masks}, {"splits", splits}, {"derived", dr.derived}, {"valid_accuracy", accuracy},
                    {"epochs", epochs}});
    tree.checkpoint_final(leaf + 1, 0, {{"leaves", done}}, /*notify=*/false);  // the next leaf starts as inherited
  }
  r.stopped = stopped;
  for (const auto& j : done) {
    SubSupernetResult out;
    out.masks = j.at("masks").get<std::vector<std::vector<bool>>>();
    for (const auto& sp : j.at("splits")) out.splits.push_back(split_from(sp));
    out.derived = j.at("derived").get<Architecture>();
    out.valid_accuracy = j.at("valid_accuracy");
    for (const auto& e : j.at("epochs")) out.epochs.push_back(darts_epoch_from_json(e));
    r.leaves.push_back(std::move(out));
  }
  for (std::size_t i = 1; i < r.leaves.size(); ++i) {
    if (r.leaves[i].valid_accuracy > r.leaves[r.best].valid_accuracy) r.best = i;
  }
  if (!r.leaves.empty()) r.derived = r.leaves[r.best].derived;
  return r;
}

SubSupernets train_sub_supernets(const SearchSpace& space, const TensorData& data, const FewShotOptions& o) {
  check_settings(space, o, /*allow_no_split=*/true);
  NASFORGE_CHECK(o.training == "single-path", "few-shot: train_sub_supernets trains single-path (training = "
                 "\"single-path\"); for mixed supernets with a DARTS search use run_few_shot");
  NASFORGE_CHECK(o.search.supernet.partial_channels <= 1 && !o.search.supernet.edge_normalization,
                 "few-shot: single-path training runs whole candidates; partial channels ({}) and edge normalisation "
                 "are PC-DARTS settings of mixed supernets", o.search.supernet.partial_channels);
  detail::ThreadScope threads(o.search.threads, /*blas=*/true);
  DartsOptions so = o.search;
  so.warmup_epochs = 0;
  so.epochs = o.final_epochs;
  so.out_dir.clear();
  const auto [train, valid] = split_search_data(space, data, so, "few-shot");
  Tree tree(space, o, so, train, valid);
  auto& level = tree.grow();
  if (o.parallel && !tree.stopped()) {  // every leaf's epoch e together; the checkpoints say (0, e)
    const std::int64_t first = tree.resumed() ? tree.leaf_epoch() : 0;
    for (std::size_t leaf = 0; first == 0 && o.restart && !o.split_epochs.empty() && leaf < level.size(); ++leaf) {
      tree.restart(leaf);
    }
    for (std::int64_t e = first; e < o.final_epochs && !tree.stopped(); ++e) {
      const double lr = detail::cosine_lr(so.lr, so.lr_min, e, o.final_epochs);
      tree.for_each_node([&](Node& n) { tree.train_epoch(n, lr); });
      tree.checkpoint_final(0, e + 1, json::object(), /*notify=*/true);
    }
  }
  for (std::size_t leaf = tree.leaf(); !o.parallel && leaf < level.size() && !tree.stopped(); ++leaf) {
    const bool resuming = leaf == tree.leaf() && tree.resumed();
    const std::int64_t first = resuming ? tree.leaf_epoch() : 0;
    if (first == 0 && o.restart && !o.split_epochs.empty()) tree.restart(leaf);
    for (std::int64_t e = first; e < o.final_epochs && !tree.stopped(); ++e) {
      tree.train_epoch(level[leaf], detail::cosine_lr(so.lr, so.lr_min, e, o.final_epochs));
      tree.checkpoint_final(leaf, e + 1, json::object(), /*notify=*/true);
    }
    if (tree.stopped()) break;
  }
  SubSupernets r;
  r.resumed = tree.resumed();
  r.seconds = tree.seconds();
  if (tree.stopped()) {
    r.stopped = true;
    return r;
  }
  for (auto& n : level) {
    SubSupernet out{n.search->supernet(), masks_of(*n.search->supernet()), n.splits};
    out.supernet->set_mode(SupernetMode::kSinglePath);
    n.search.reset();  // the optimiser state goes; the supernet lives on in the leaf
    r.leaves.push_back(std::move(out));
  }
  r.train = train;
  r.valid = valid;
  return r;
}

bool SubSupernet::contains(const Architecture& arch) const {
  NASFORGE_CHECK(arch.size() == masks.size(), "SubSupernet::contains: the architecture has {} decisions, the space {}",
                 arch.size(), masks.size());
  for (std::size_t d = 0; d < masks.size(); ++d) {
    if (arch[d] >= masks[d].size() || !masks[d][arch[d]]) return false;
  }
  return true;
}

FewShotEvaluator::FewShotEvaluator(std::vector<SubSupernet> leaves, std::vector<::torch::Tensor> calibration, TensorData valid,
                                   std::int64_t batch)
    : leaves_(std::move(leaves)) {
  NASFORGE_CHECK(!leaves_.empty(), "FewShotEvaluator: expected at least one sub-supernet");
  for (auto& leaf : leaves_) {
    leaf.supernet->set_mode(SupernetMode::kSinglePath);
    evaluators_.push_back(std::make_unique<SupernetEvaluator>(leaf.supernet, calibration, valid, batch));
  }
}

FewShotEvaluator::~FewShotEvaluator() = default;

std::size_t FewShotEvaluator::leaf_of(const Architecture& arch) const {
  for (std::size_t i = 0; i < leaves_.size(); ++i) {
    if (leaves_[i].contains(arch)) return i;
  }
  throw InvalidArgument(fmt::format("FewShotEvaluator: no sub-supernet of the {} contains architecture {}", leaves_.size(),
                                    arch.to_string()));
}

Metrics FewShotEvaluator::evaluate(const Architecture& arch) const {
  const std::size_t i = leaf_of(arch);
  Metrics m = evaluators_[i]->evaluate(arch);
  m["sub_supernet"] = static_cast<double>(i);
  return m;
}

}  // namespace nasforge
