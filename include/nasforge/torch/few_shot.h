#pragma once
/// \file few_shot.h
/// Few-shot NAS building blocks (Zhao et al., ICML 2021; GM-NAS, Hu et al., ICLR 2022;
/// ALGORITHMS.md section 5): the gradient-matching (GM) score of an edge, the partition of its
/// ops into groups whose gradients on the shared weights agree, the choice of the edge to
/// split, and the baselines (random partition, one group per op).
///
/// A sub-supernet is a supernet whose masks restrict some edges to a group of their ops
/// (`Supernet::set_mask`): mixing weights are the softmax over the enabled ops only and
/// single-path sampling draws only enabled ops.
///
/// ```cpp
/// auto batches = [&](std::size_t r) { return loader.batch(r % loader.num_batches()); };
/// nasforge::EdgeSplit s = nasforge::choose_split(*supernet, batches, {}, /*branch=*/2);
/// for (const auto& group : s.groups) { /* a child: supernet masks with s.decision := group */ }
/// ```
///
/// Which weights are "shared": the candidates of every other op decision, and the fixed layers
/// between the first candidate and the last mixed slot of the network (NB201's inter-stage
/// ResNet blocks; in the DARTS space also the preprocessing convs of every cell but the first,
/// which the reference code leaves out). The stem and the classifier are not; neither are the
/// candidates of the edge itself, in any cell that shares its decision.
///
/// Which edge is split: the unsplit edge whose best partition has the largest cut (the sum of
/// the distances between ops in different groups), NB201's rule in the reference code; its
/// DARTS-space code picks the smallest intra-group cost instead, which differs when groups have
/// unequal sizes. One rule for every space here; every op decision is a candidate (the
/// reference's DARTS-space code splits normal-cell edges only) and groups have balanced sizes
/// (it also tries 2 + 5 for 7 ops).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "nasforge/random.h"
#include "nasforge/torch/darts.h"
#include "nasforge/torch/supernet.h"
#include "nasforge/torch/supernet_evaluator.h"

namespace nasforge {

/// Settings of the gradient-matching score.
struct GradientMatchOptions {
  std::size_t repeats = 100;  ///< each repeat takes a fresh training batch; distances are averaged
  /// true: op o alone on the edge (weight 1, NB201 reference); false: o keeps its soft weight
  /// and the edge's other ops get 0 (the DARTS-space reference code).
  bool hard = true;
  /// true: in each repeat the other edges run one uniformly sampled enabled op each (RSPS, the
  /// reference's single-path mode) instead of their mixing weights; the path is drawn from
  /// Rng(seed) per call, so the same seed gives the same distances. (The splitting tree draws
  /// this seed for every supernet it scores.)
  bool single_path = false;
  std::uint64_t seed = 0;
};

/// A source of training batches: batch(r) for repeat r = 0, 1, ...
using BatchSource = std::function<std::pair<::torch::Tensor, ::torch::Tensor>(std::size_t repeat)>;

/// The shared weights the GM score compares for op decision `decision` (see the file comment).
std::vector<::torch::Tensor> shared_parameters(SupernetImpl& net, std::size_t decision);

/// D[a][b] = mean over repeats of 1 - cos(g_a, g_b), where g_o is the gradient of the
/// cross-entropy on the repeat's batch w.r.t. the shared weights (flattened and concatenated),
/// with op o on edge `decision` and every other edge mixed by the current mixing weights; BN in
/// train mode, the same batch for every op of a repeat. Rows and columns of masked options are
/// NaN; a non-finite distance (a diverged loss) is an InvalidArgument. Leaves the supernet's
/// weights and gradients unchanged; its BN running statistics see the forwards (train mode).
std::vector<std::vector<double>> gradient_match_distances(SupernetImpl& net, std::size_t decision, const BatchSource& batch,
                                                          const GradientMatchOptions& options = {});

/// A split of one edge into groups of its options.
struct EdgeSplit {
  std::size_t decision = 0;
  std::vector<std::vector<std::uint32_t>> groups;  ///< option indices, ascending within a group
  double intra = 0;  ///< sum of distances between options of the same group
  double cut = 0;    ///< sum of distances between options of different groups (the edge's score)
};

/// The partition of `options` into `branch` groups whose sizes differ by at most one (NB201:
/// 5 ops into 2 + 3) with the least total intra-group distance; exhaustive (ties: the first
/// in enumeration order). Throws InvalidArgument when branch < 2 or exceeds the option count.
EdgeSplit best_partition(const std::vector<std::vector<double>>& distances, const std::vector<std::uint32_t>& options,
                         std::size_t branch);

/// A uniformly random partition with the same group sizes (the random-split baseline).
EdgeSplit random_partition(const std::vector<std::uint32_t>& options, std::size_t branch, Rng& rng);

/// The op decisions a split may still choose: every option enabled and more than one option.
std::vector<std::size_t> unsplit_edges(const SupernetImpl& net);

/// Enabled options of decision `d` (its mask's true entries), ascending.
std::vector<std::uint32_t> enabled_options(const SupernetImpl& net, std::size_t d);

/// Scores the candidate edges (`edges`; empty: unsplit_edges(net)) and returns the split of the
/// one with the largest cut, partitioning each edge's enabled options only. Edges with fewer
/// enabled options than `branch` are skipped.
EdgeSplit choose_split(SupernetImpl& net, const BatchSource& batch, const GradientMatchOptions& options,
                       std::size_t branch, std::vector<std::size_t> edges = {});

/// Where a few-shot search stands after an epoch (FewShotOptions::on_epoch).
struct FewShotProgress {
  std::string phase;          ///< `split` (training until the last split) or `final` (per leaf)
  std::int64_t epoch = 0;     ///< split phase: epochs done; final phase: epochs of `leaf` done
  std::size_t supernets = 0;  ///< sub-supernets alive (the current level)
  std::size_t leaf = 0;       ///< final phase: the leaf in training
  double seconds = 0;         ///< since the start, resumed runs included
};

/// Settings of a few-shot search (the splitting tree of GM-NAS, ALGORITHMS.md 5.2).
struct FewShotOptions {
  /// Supernet training and the search run inside every sub-supernet after the last split
  /// (`darts`, `darts2`, `pc-darts` or `darts-pt`; its `epochs` is ignored: see below).
  DartsOptions search = darts_preset("darts");
  /// Epochs (counted from the start) at whose end every current supernet is split; until the
  /// last one only the weights train (alpha stays at its initialisation, as the reference fixes
  /// it so that the ops' gradients are comparable).
  std::vector<std::int64_t> split_epochs{15, 30};
  std::vector<std::size_t> branch{2, 2};  ///< groups per split, one entry per split epoch
  /// `gm` (gradient matching), `random` (a random unsplit edge, a random balanced partition) or
  /// `exhaustive` (Few-shot NAS: the first unsplit edge, one sub-supernet per op — NB201's 5;
  /// in spaces whose cells choose their inputs (DARTS) not for `none`, 7; `branch` ignored,
  /// and `restart` should be off to keep Few-shot NAS's weight transfer).
  std::string split = "gm";
  GradientMatchOptions gm;
  /// After the last split, re-initialise every sub-supernet (weights, alpha, optimisers), as
  /// the reference's `--restart final`; else they continue with what they inherited.
  bool restart = true;
  /// Epochs after the last split, with architecture steps, on a new cosine schedule.
  std::int64_t final_epochs = 30;
  /// How the supernets train: `mixed` (DARTS: every enabled op weighted by its mixing weight;
  /// alpha fixed until the last split, then the inner DARTS search; run_few_shot) or
  /// `single-path` (RSPS / SPOS: one uniformly sampled path of enabled ops per batch, no
  /// alpha, GM with random single paths; train_sub_supernets, whose leaves a FewShotEvaluator
  /// queries for any search or ranking).
  std::string training = "mixed";
  /// Train the sub-supernets of a level concurrently (oneTBB tasks, as many at a time as the
  /// search's `threads`, each on one LibTorch intra-op thread): the splitting phase, the GM
  /// scores of a level and the single-path final phase. The result equals a sequential run
  /// on one thread (tested). Mixed final phases (the DARTS inners) stay sequential. Memory is
  /// what a sequential run holds (every sub-supernet of a level is alive either way) plus one
  /// batch's activations per concurrent task.
  bool parallel = false;
  /// With a directory: a checkpoint after every epoch of every phase (DIR/tree.json, written
  /// last and atomically, one file per sub-supernet that changed, and each DARTS leaf's run in
  /// DIR/leaf_<i>/), so that `resume` continues a killed search exactly (same seed, same
  /// result); the settings that shape the result must match. A fresh run removes an earlier
  /// run's tree files there. Empty: nothing written.
  std::string out_dir;
  bool resume = false;  ///< continue DIR/tree.json when present
  /// Called after every epoch (after its checkpoint); return true to stop there. A stopped
  /// search returns what it has (`stopped` set): the finished leaves of run_few_shot, no
  /// leaves from train_sub_supernets; `resume` continues it.
  std::function<bool(const FewShotProgress&)> on_epoch;
};

/// One leaf of the splitting tree.
struct SubSupernetResult {
  std::vector<std::vector<bool>> masks;   ///< per decision
  std::vector<EdgeSplit> splits;          ///< the splits on the way from the root (this leaf's group last)
  Architecture derived;                   ///< its search's discretisation
  double valid_accuracy = 0;              ///< of `derived` in this sub-supernet (single path, train-mode BN)
  std::vector<DartsEpoch> epochs;         ///< its final-phase epochs
};

/// What a few-shot search found.
struct FewShotResult {
  std::vector<SubSupernetResult> leaves;
  std::size_t best = 0;                   ///< the leaf whose derived architecture validates best
  Architecture derived;                   ///< leaves[best].derived
  bool resumed = false;                   ///< continued a checkpoint of options.out_dir
  bool stopped = false;                   ///< on_epoch stopped it (leaves: the finished ones)
};

/// Runs the splitting tree on `data` (split into D_train and D_val as run_darts does): trains
/// the root supernet's weights, splits every supernet at each split epoch (children inherit
/// weights, alpha, BN statistics and optimiser state), then searches inside every leaf and
/// compares the leaves' derived architectures by validation accuracy in their own
/// sub-supernet. Sub-supernets of one level train one after another (concurrently in the
/// splitting phase with `parallel`); a parent is freed once
/// its children exist, so at most (leaves + 1) supernets are alive at a time. Bad settings
/// (branch factors, levels, data shape, too few samples) are errors before any training.
FewShotResult run_few_shot(const SearchSpace& space, const TensorData& data, const FewShotOptions& options);

/// A trained sub-supernet of a single-path splitting tree.
struct SubSupernet {
  Supernet supernet;                      ///< single-path mode, masks set
  std::vector<std::vector<bool>> masks;   ///< per decision
  std::vector<EdgeSplit> splits;          ///< from the root (this leaf's group last)
  /// True when every op decision of `arch` is enabled here.
  bool contains(const Architecture& arch) const;
};

/// The leaves of a single-path splitting tree and the data they were trained and checked on.
struct SubSupernets {
  std::vector<SubSupernet> leaves;
  TensorData train, valid;  ///< the seeded split of the data (as run_darts splits it)
  double seconds = 0;       ///< wall time of the training and the splits (before a resume too)
  bool resumed = false;     ///< continued a checkpoint of options.out_dir
  bool stopped = false;     ///< on_epoch stopped it before the end (no leaves then)
};

/// Trains the splitting tree single-path (`options.training` must be `single-path`): every
/// batch trains one uniformly sampled path of enabled ops of every current supernet with the
/// weight optimiser of `options.search` (SGD, cosine schedule over the splitting phase, a new
/// cosine over `final_epochs` after the last split), splits as run_few_shot does (GM distances
/// over random single paths) and returns the leaves. An empty `split_epochs` trains one
/// supernet for `final_epochs`: the one-shot baseline on the same code path. With `restart` the
/// leaves start afresh after the last split; without it they keep what they inherited (Few-shot
/// NAS's weight transfer). Sub-supernets train one after another (or concurrently with
/// `parallel`); at most (leaves + 1) are
/// alive at a time.
SubSupernets train_sub_supernets(const SearchSpace& space, const TensorData& data, const FewShotOptions& options);

/// An Evaluator over the leaves of a splitting tree: an architecture is scored by the one
/// sub-supernet that contains it (leaves partition the space) with the SupernetEvaluator
/// protocol: BN statistics recalibrated on the calibration batches, then accuracy on `valid`.
/// Metrics `supernet_acc` (percent), `supernet_loss`, `sub_supernet` (the leaf's index).
/// Evaluations are serialised per leaf.
class FewShotEvaluator final : public Evaluator {
 public:
  FewShotEvaluator(std::vector<SubSupernet> leaves, std::vector<::torch::Tensor> calibration, TensorData valid,
                   std::int64_t batch = 500);
  ~FewShotEvaluator() override;
  Metrics evaluate(const Architecture& arch) const override;
  std::vector<std::string> metric_names() const override { return {"supernet_acc", "supernet_loss", "sub_supernet"}; }
  /// The leaf that contains `arch`; InvalidArgument when none does.
  std::size_t leaf_of(const Architecture& arch) const;
  const std::vector<SubSupernet>& leaves() const noexcept { return leaves_; }

 private:
  std::vector<SubSupernet> leaves_;
  std::vector<std::unique_ptr<SupernetEvaluator>> evaluators_;
};

}  // namespace nasforge
