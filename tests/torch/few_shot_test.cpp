// Few-shot NAS: gradient matching separates ops that provably push the shared weights in
// opposite directions, partitions are exhaustive and balanced, and the edge chosen for a split
// is the one whose ops disagree most.
#include "nasforge/torch/few_shot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "detail/files.h"
#include "nasforge/error.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

// Edge "e" has four 1x1 convs; edge "f" (two 1x1 convs) and the linear head follow. With e's
// convs set to +I, +I, -I, -I and f's weights at zero, f's output is zero whatever e chose, so
// the loss's gradient w.r.t. f's output is the same for every op of e, and the gradient w.r.t.
// f's weights (the shared weights of e) is that times e's output: equal for the two +I ops,
// equal for the two -I ops, and exactly opposite between the pairs.
constexpr const char* kSpace = R"({
  "name": "gm_toy",
  "params": {"input": [2, 4, 4], "classes": 3},
  "ops": {"a": {"type": "conv", "kernel": 1}, "b": {"type": "conv", "kernel": 1},
          "c": {"type": "conv", "kernel": 1}, "d": {"type": "conv", "kernel": 1}},
  "network": [
    {"type": "choose", "name": "e", "out": 2, "options": ["a", "b", "c", "d"]},
    {"type": "choose", "name": "f", "out": 2, "options": ["a", "b"]},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": "$classes"}
  ]
})";

// Sets option `option` of op decision `decision` to `scale` x identity.
void set_conv(Supernet& net, std::size_t decision, std::size_t option, double scale) {
  const auto& layers = net->structure().layers;
  ::torch::NoGradGuard no_grad;
  for (const auto& l : layers) {
    if (l.op != "mixed" || static_cast<std::size_t>(l.attrs.i("decision")) != decision) continue;
    const std::string prefix = fmt::format("l{}.", l.inputs[option]);
    for (auto& p : net->named_parameters()) {
      if (p.key().rfind(prefix, 0) == 0) p.value().copy_(scale * ::torch::eye(2).reshape({2, 2, 1, 1}));
    }
  }
}

// NB201 with one cell per stage, 4 channels, 8x8 inputs: a tree trains in seconds.
SearchSpace tiny_nb201() {
  return SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "4"}, {"input", "[1,8,8]"}});
}

// A two-level single-path tree (2 x 2 leaves after epochs 1 and 2) of `steps` batches of 16
// per epoch, GM over 2 batches.
FewShotOptions two_level_single_path(std::uint64_t seed, std::int64_t steps, std::int64_t final_epochs) {
  FewShotOptions o;
  o.training = "single-path";
  o.search.batch = 16;
  o.search.steps_per_epoch = steps;
  o.search.seed = seed;
  o.split_epochs = {1, 2};
  o.branch = {2, 2};
  o.final_epochs = final_epochs;
  o.gm.repeats = 2;
  return o;
}

// Batch r of GM's repeats: the (r mod 4)-th batch of 16 samples of `data`.
BatchSource batches_of(const TensorData& data) {
  return [&data](std::size_t r) {
    const auto at = static_cast<std::int64_t>(r % 4) * 16;
    return std::pair{data.images.narrow(0, at, 16), data.labels.narrow(0, at, 16)};
  };
}

// Runs f and expects an InvalidArgument whose message contains `words`.
void expect_error(const std::function<void()>& f, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning " << words;
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(FewShot, GradientMatchingSeparatesOppositeOps) {
  auto space = SearchSpace::from_string(kSpace);
  ::torch::manual_seed(0);
  Supernet net(space);
  set_conv(net, 0, 0, 1);
  set_conv(net, 0, 1, 1);
  set_conv(net, 0, 2, -1);
  set_conv(net, 0, 3, -1);
  set_conv(net, 1, 0, 0);
  set_conv(net, 1, 1, 0);
  ASSERT_EQ(shared_parameters(*net, 0).size(), 2U);  // f's two conv weights
  auto batch = [](std::size_t r) {
    ::torch::manual_seed(100 + r);
    // Large inputs: the gradients dwarf the 1e-6 in the cosine's denominator.
    return std::pair{30 * ::torch::randn({8, 2, 4, 4}), ::torch::randint(0, 3, {8}, ::torch::kLong)};
  };
  GradientMatchOptions o;
  o.repeats = 3;
  auto d = gradient_match_distances(*net, 0, batch, o);
  EXPECT_NEAR(d[0][1], 0.0, 1e-5);
  EXPECT_NEAR(d[2][3], 0.0, 1e-5);
  EXPECT_NEAR(d[0][2], 2.0, 1e-5);
  EXPECT_NEAR(d[1][3], 2.0, 1e-5);
  EdgeSplit s = best_partition(d, {0, 1, 2, 3}, 2);
  ASSERT_EQ(s.groups.size(), 2U);
  EXPECT_EQ(s.groups[0], (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(s.groups[1], (std::vector<std::uint32_t>{2, 3}));
  EXPECT_NEAR(s.intra, 0.0, 1e-5);
  EXPECT_NEAR(s.cut, 8.0, 1e-5);  // four cross pairs at distance 2
  // The edge to split is e: f's ops are identical (zero weights) from e's side.
  EXPECT_EQ(choose_split(*net, batch, o, 2).decision, 0U);
  // Nothing accumulated into the weights' gradients.
  for (const auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(FewShot, PartitionsAreBalancedExhaustiveAndRandomBaselineMatchesSizes) {
  // Five ops (NB201): 2 + 3; the optimum puts {0, 4} together and {1, 2, 3} together.
  std::vector<std::vector<double>> d(5, std::vector<double>(5, 1.0));
  for (int i = 0; i < 5; ++i) d[i][i] = 0;
  d[0][4] = d[4][0] = 0.1;
  d[1][2] = d[2][1] = d[1][3] = d[3][1] = d[2][3] = d[3][2] = 0.2;
  EdgeSplit s = best_partition(d, {0, 1, 2, 3, 4}, 2);
  EXPECT_EQ(s.groups[0], (std::vector<std::uint32_t>{0, 4}));
  EXPECT_EQ(s.groups[1], (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_NEAR(s.intra, 0.1 + 0.6, 1e-12);
  EXPECT_NEAR(s.cut, 6 * 1.0, 1e-12);
  // Exhaustive: no partition with sizes 2 + 3 has a smaller intra cost.
  Rng rng(3);
  for (int t = 0; t < 200; ++t) {
    EdgeSplit r = random_partition({0, 1, 2, 3, 4}, 2, rng);
    ASSERT_EQ(r.groups[0].size() + r.groups[1].size(), 5U);
    EXPECT_EQ(std::min(r.groups[0].size(), r.groups[1].size()), 2U);
    double intra = 0;
    for (const auto& g : r.groups) {
      for (std::size_t i = 0; i < g.size(); ++i) {
        for (std::size_t j = i + 1; j < g.size(); ++j) intra += d[g[i]][g[j]];
      }
    }
    EXPECT_GE(intra, s.intra - 1e-12);
  }
  // Three groups of 7 ops (DARTS without none): sizes 2, 2, 3.
  std::vector<std::vector<double>> d7(7, std::vector<double>(7, 1.0));
  EdgeSplit s7 = best_partition(d7, {0, 1, 2, 3, 4, 5, 6}, 3);
  EXPECT_EQ(s7.groups.size(), 3U);
  EXPECT_THROW(best_partition(d, {0, 1}, 3), InvalidArgument);
}

TEST(FewShot, UnsplitEdgesFollowTheMasks) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "4"}});
  Supernet net(space);
  EXPECT_EQ(unsplit_edges(*net).size(), 6U);
  net->set_mask(2, {true, false, true, false, true});
  auto left = unsplit_edges(*net);
  EXPECT_EQ(left.size(), 5U);
  EXPECT_EQ(std::count(left.begin(), left.end(), 2U), 0);
  // NB201's shared weights for an edge: the other edges' candidates and the ResNet blocks, not
  // the stem or the classifier.
  auto shared = shared_parameters(*net, 0);
  std::int64_t n = 0;
  for (const auto& p : shared) n += p.numel();
  std::int64_t all = 0;
  for (const auto& p : net->parameters()) all += p.numel();
  EXPECT_GT(n, 0);
  EXPECT_LT(n, all);
}

TEST(FewShot, TheSplittingTreeSearchesEveryLeaf) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(192, {1, 8, 8}, 10, 5);
  for (const char* how : {"gm", "random", "exhaustive"}) {
    FewShotOptions o;
    o.search.batch = 16;
    o.search.steps_per_epoch = 2;
    o.search.seed = 4;
    o.split = how;
    o.split_epochs = {1, 2};
    o.branch = {2, 2};
    o.final_epochs = 1;
    o.gm.repeats = 2;
    if (std::string(how) == "exhaustive") {
      o.split_epochs = {1};
      o.branch = {2};
    }
    FewShotResult r = run_few_shot(space, data, o);
    const bool exhaustive = std::string(how) == "exhaustive";
    const std::size_t leaves = exhaustive ? 5U : 4U;  // one per op of the edge (NB201 keeps none), or 2 x 2
    ASSERT_EQ(r.leaves.size(), leaves) << how;
    // The first split's groups partition its edge's ops, and every leaf's derived
    // architecture respects its own masks.
    const std::size_t d0 = r.leaves[0].splits[0].decision;
    std::vector<int> seen(5, 0);
    for (const auto& leaf : r.leaves) {
      EXPECT_EQ(leaf.splits[0].decision, d0) << how;
      for (std::uint32_t op = 0; op < 5; ++op) seen[op] += leaf.masks[d0][op];
      for (std::size_t d = 0; d < leaf.masks.size(); ++d) EXPECT_TRUE(leaf.masks[d][leaf.derived[d]]) << how;
      EXPECT_GE(leaf.valid_accuracy, 0.0);
      EXPECT_EQ(leaf.epochs.size(), 1U);
    }
    if (exhaustive) {  // every op once
      EXPECT_EQ(seen, (std::vector<int>{1, 1, 1, 1, 1}));
    } else {  // each first-level group has 2 leaves below it
      for (int c : seen) EXPECT_EQ(c, 2) << how;
    }
    EXPECT_EQ(r.derived, r.leaves[r.best].derived);
  }
  FewShotOptions bad;
  bad.branch = {2};
  EXPECT_THROW(run_few_shot(space, data, bad), InvalidArgument);  // two split epochs, one branch factor
}

TEST(FewShot, DartsPtRunsInsideEveryLeafAndDecidesEveryEdge) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(192, {1, 8, 8}, 10, 5);
  FewShotOptions o;
  o.search = darts_preset("darts-pt");
  o.search.batch = 16;
  o.search.steps_per_epoch = 2;
  o.search.pt_interval = 1;
  o.search.pt_eval_samples = 32;
  o.search.seed = 3;
  o.split_epochs = {1};
  o.branch = {2};
  o.final_epochs = 1;
  o.gm.repeats = 2;
  FewShotResult r = run_few_shot(space, data, o);
  ASSERT_EQ(r.leaves.size(), 2U);
  for (const auto& leaf : r.leaves) {
    // 1 search epoch, then NB201's 6 projections one tuning epoch apart, and a last one.
    EXPECT_EQ(leaf.epochs.size(), 1U + 6U);
    EXPECT_EQ(leaf.epochs.back().phase, "tune");
    for (std::size_t d = 0; d < leaf.masks.size(); ++d) EXPECT_TRUE(leaf.masks[d][leaf.derived[d]]);
  }
}

TEST(FewShot, BadSettingsFailBeforeAnyTraining) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(64, {1, 8, 8}, 10, 5);
  auto fails = [&](const FewShotOptions& o, const std::string& words) {
    expect_error([&] { run_few_shot(space, data, o); }, words);
  };
  FewShotOptions o;
  o.search.batch = 16;
  o.split_epochs = {1};
  o.branch = {6};  // NB201 edges have 5 ops
  fails(o, "branch factor 6");
  o.branch = {1};
  fails(o, "branch factor 1");
  o.branch = {2};
  o.search.batch = 64;  // 32 training samples
  fails(o, "fewer than a batch of 64");
  o.search.batch = 16;
  o.split_epochs = {1, 2, 3, 4, 5, 6, 7};
  o.branch = std::vector<std::size_t>(7, 2);
  fails(o, "7 split levels need as many splittable edges");
  o.split_epochs = {1};
  o.branch = {2};
  data = synthetic_data(64, {3, 8, 8}, 10, 5);
  fails(o, "the data has");  // 3-channel images for a 1-channel space
}

TEST(FewShot, SinglePathGradientMatchingIsSeededAndDiffersFromMixed) {
  auto space = tiny_nb201();
  ::torch::manual_seed(0);
  Supernet net(space);
  net->set_mode(SupernetMode::kMixed);
  TensorData data = synthetic_data(64, {1, 8, 8}, 10, 3);
  const BatchSource batch = batches_of(data);
  GradientMatchOptions o;
  o.repeats = 3;
  const auto mixed = gradient_match_distances(*net, 2, batch, o);
  o.single_path = true;
  o.seed = 7;
  const auto a = gradient_match_distances(*net, 2, batch, o), b = gradient_match_distances(*net, 2, batch, o);
  double differs = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < a.size(); ++j) {
      EXPECT_EQ(a[i][j], b[i][j]);  // same seed, same paths, same distances
      if (i != j) {
        EXPECT_TRUE(std::isfinite(a[i][j]));
        differs += std::abs(a[i][j] - mixed[i][j]);
      }
    }
  }
  EXPECT_GT(differs, 1e-3);  // the other edges ran single paths, not the mix
}

TEST(FewShot, SinglePathTreeLeavesPartitionTheSpaceAndTheEvaluatorRoutesToThem) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(192, {1, 8, 8}, 10, 5);
  FewShotOptions o = two_level_single_path(/*seed=*/2, /*steps=*/3, /*final_epochs=*/1);
  o.restart = false;
  auto run = [&] {
    ::torch::manual_seed(0);
    return train_sub_supernets(space, data, o);
  };
  SubSupernets tree = run();
  ASSERT_EQ(tree.leaves.size(), 4U);
  EXPECT_EQ(tree.train.size() + tree.valid.size(), data.size());
  std::vector<::torch::Tensor> calibration{tree.train.images.narrow(0, 0, 16)};
  FewShotEvaluator eval(tree.leaves, calibration, tree.valid);
  Rng rng(3);
  std::vector<double> first;
  for (int i = 0; i < 40; ++i) {  // every architecture lies in exactly one leaf, the one scoring it
    const Architecture a = space.sample(rng);
    int holders = 0;
    for (const auto& leaf : tree.leaves) holders += leaf.contains(a);
    ASSERT_EQ(holders, 1) << a.to_string();
    const Metrics m = eval.evaluate(a);
    EXPECT_EQ(static_cast<std::size_t>(m.at("sub_supernet")), eval.leaf_of(a));
    EXPECT_TRUE(tree.leaves[eval.leaf_of(a)].contains(a));
    EXPECT_GE(m.at("supernet_acc"), 0.0);
    EXPECT_LE(m.at("supernet_acc"), 100.0);
    if (i < 5) first.push_back(m.at("supernet_acc"));
  }
  // Same seed, same supernets, same estimates.
  SubSupernets again = run();
  FewShotEvaluator eval2(again.leaves, calibration, again.valid);
  Rng rng2(3);
  for (double acc : first) EXPECT_DOUBLE_EQ(eval2.evaluate(space.sample(rng2)).at("supernet_acc"), acc);
  for (std::size_t l = 0; l < 4; ++l) EXPECT_EQ(again.leaves[l].masks, tree.leaves[l].masks);
  // An architecture no leaf holds is a clear error.
  FewShotEvaluator only_first(std::vector<SubSupernet>{tree.leaves[0]}, calibration, tree.valid);
  Rng rng3(5);
  for (int i = 0; i < 40; ++i) {
    const Architecture a = space.sample(rng3);
    if (tree.leaves[0].contains(a)) continue;
    EXPECT_THROW(only_first.evaluate(a), InvalidArgument);
    break;
  }
  // No split epochs: the one-shot supernet, one leaf holding every architecture.
  o.split_epochs.clear();
  o.branch.clear();
  SubSupernets one = run();
  ASSERT_EQ(one.leaves.size(), 1U);
  EXPECT_TRUE(one.leaves[0].contains(space.sample(rng)));
}

TEST(FewShot, TrainingModesAreCheckedBeforeTraining) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(64, {1, 8, 8}, 10, 5);
  auto fails = [&](bool single, const FewShotOptions& o, const std::string& words) {
    expect_error([&] { single ? (void)train_sub_supernets(space, data, o) : (void)run_few_shot(space, data, o); }, words);
  };
  FewShotOptions o;
  o.search.batch = 16;
  o.split_epochs = {1};
  o.branch = {2};
  fails(true, o, "train_sub_supernets trains single-path");
  o.training = "single-path";
  fails(false, o, "run_few_shot searches with DARTS in mixed supernets");
  o.training = "spos";
  fails(true, o, "training must be mixed or single-path, got \"spos\"");
  o.training = "single-path";
  o.search.supernet.partial_channels = 2;
  fails(true, o, "partial channels (2)");
  o.search.supernet.partial_channels = 0;
  o.training = "mixed";
  o.split_epochs.clear();
  o.branch.clear();
  fails(false, o, "(and at least one split)");
}

TEST(FewShot, AStoppedTreeResumesToTheSameResultInBothTrainings) {
  namespace fs = std::filesystem;
  auto space = tiny_nb201();
  TensorData data = synthetic_data(192, {1, 8, 8}, 10, 5);
  for (const char* training : {"mixed", "single-path"}) {
    FewShotOptions o;
    o.training = training;
    o.search.batch = 16;
    o.search.steps_per_epoch = 2;
    o.search.seed = 6;
    o.split_epochs = {2, 3};
    o.branch = {2, 2};
    o.final_epochs = 2;
    o.gm.repeats = 2;
    o.restart = std::string(training) == "mixed";
    const fs::path a = fs::temp_directory_path() / fmt::format("nasforge_few_shot_a_{}", training);
    const fs::path b = fs::temp_directory_path() / fmt::format("nasforge_few_shot_b_{}", training);
    detail::remove_tree(a);
    detail::remove_tree(b);
    o.out_dir = a.string();
    const bool mixed = std::string(training) == "mixed";
    FewShotResult full;
    SubSupernets full_tree;
    if (mixed) full = run_few_shot(space, data, o);
    else full_tree = train_sub_supernets(space, data, o);
    // Stopped three times: inside the splitting phase, right after the last split, and in
    // the middle of leaf 2's final phase; each run resumes the previous one.
    o.out_dir = b.string();
    int stops = 0;
    for (auto stop_at : std::vector<std::function<bool(const FewShotProgress&)>>{
             [](const FewShotProgress& p) { return p.phase == "split" && p.epoch == 1; },
             [](const FewShotProgress& p) { return p.phase == "split" && p.epoch == 3; },
             [](const FewShotProgress& p) { return p.phase == "final" && p.leaf == 2 && p.epoch == 1; }}) {
      o.on_epoch = stop_at;
      const bool stopped = mixed ? run_few_shot(space, data, o).stopped : train_sub_supernets(space, data, o).stopped;
      EXPECT_TRUE(stopped) << training << " stop " << stops;
      o.resume = true;
      ++stops;
    }
    // The last resume trains only what is left: epoch 2 of leaf 2 and both epochs of leaf 3.
    int epochs_run = 0;
    o.on_epoch = [&](const FewShotProgress& p) {
      EXPECT_EQ(p.phase, "final");
      ++epochs_run;
      return false;
    };
    if (mixed) {
      FewShotResult r = run_few_shot(space, data, o);
      EXPECT_EQ(epochs_run, 3);
      EXPECT_TRUE(r.resumed);
      ASSERT_EQ(r.leaves.size(), full.leaves.size());
      for (std::size_t l = 0; l < r.leaves.size(); ++l) {
        EXPECT_EQ(r.leaves[l].masks, full.leaves[l].masks) << l;
        EXPECT_EQ(r.leaves[l].derived, full.leaves[l].derived) << l;
        EXPECT_EQ(r.leaves[l].valid_accuracy, full.leaves[l].valid_accuracy) << l;
        ASSERT_EQ(r.leaves[l].epochs.size(), 2U);
        for (std::size_t e = 0; e < 2; ++e) {
          EXPECT_EQ(r.leaves[l].epochs[e].weights, full.leaves[l].epochs[e].weights) << l << " " << e;
          EXPECT_EQ(r.leaves[l].epochs[e].train_loss, full.leaves[l].epochs[e].train_loss) << l << " " << e;
        }
      }
      EXPECT_EQ(r.best, full.best);
    } else {
      SubSupernets r = train_sub_supernets(space, data, o);
      EXPECT_EQ(epochs_run, 3);
      EXPECT_TRUE(r.resumed);
      ASSERT_EQ(r.leaves.size(), full_tree.leaves.size());
      for (std::size_t l = 0; l < r.leaves.size(); ++l) {
        EXPECT_EQ(r.leaves[l].masks, full_tree.leaves[l].masks) << l;
        auto p = r.leaves[l].supernet->parameters(), q = full_tree.leaves[l].supernet->parameters();
        ASSERT_EQ(p.size(), q.size());
        for (std::size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(::torch::equal(p[i], q[i])) << "leaf " << l << " tensor " << i;
      }
    }
    // A checkpoint of other settings is refused, not silently continued.
    o.gm.repeats = 3;
    EXPECT_THROW(mixed ? (void)run_few_shot(space, data, o) : (void)train_sub_supernets(space, data, o), InvalidArgument);
    detail::remove_tree(a);
    detail::remove_tree(b);
  }
}

// A MobileNetV3 stage (the 40-channel one: SE, ReLU, stride 2) as a chain of op decisions:
// each of its 3 blocks picks kernel {3,5,7} x expansion {3,6}, after a stem conv.
constexpr const char* kMbv3Stage = R"({
  "name": "mbv3_stage",
  "params": {"input": [3, 16, 16], "classes": 10},
  "ops": {"k3_e3": {"type": "mbconv", "kernel": 3, "expansion": 3, "se": true, "act": "relu"},
          "k3_e6": {"type": "mbconv", "kernel": 3, "expansion": 6, "se": true, "act": "relu"},
          "k5_e3": {"type": "mbconv", "kernel": 5, "expansion": 3, "se": true, "act": "relu"},
          "k5_e6": {"type": "mbconv", "kernel": 5, "expansion": 6, "se": true, "act": "relu"},
          "k7_e3": {"type": "mbconv", "kernel": 7, "expansion": 3, "se": true, "act": "relu"},
          "k7_e6": {"type": "mbconv", "kernel": 7, "expansion": 6, "se": true, "act": "relu"}},
  "network": [
    {"type": "conv_bn_act", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"},
    {"type": "stage", "depth": 3, "block": {"type": "choose", "out": 40, "stride": 2,
      "options": ["k3_e3", "k3_e6", "k5_e3", "k5_e6", "k7_e3", "k7_e6"]}},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": "$classes"}
  ]
})";

TEST(FewShot, SplitsAMobileNetV3StageInBothTrainings) {
  auto space = SearchSpace::from_string(kMbv3Stage);
  ASSERT_EQ(space.decisions().size(), 3U);
  TensorData data = synthetic_data(128, {3, 16, 16}, 10, 8);
  {  // GM on the first block: the shared weights are the other blocks' candidates
    ::torch::manual_seed(0);
    Supernet net(space);
    net->set_mode(SupernetMode::kMixed);
    const auto shared = shared_parameters(*net, 0);
    EXPECT_FALSE(shared.empty());
    std::size_t all = 0;
    for (const auto& p : net->parameters()) all += static_cast<std::size_t>(p.numel());
    std::size_t counted = 0;
    for (const auto& p : shared) counted += static_cast<std::size_t>(p.numel());
    EXPECT_LT(counted, all);
    const BatchSource batch = batches_of(data);
    GradientMatchOptions o;
    o.repeats = 2;
    const auto d = gradient_match_distances(*net, 0, batch, o);
    for (std::size_t a = 0; a < 6; ++a) {
      for (std::size_t b = 0; b < 6; ++b) {
        EXPECT_TRUE(std::isfinite(d[a][b]));
        EXPECT_GE(d[a][b], -1e-9);
        EXPECT_LE(d[a][b], 2 + 1e-9);
      }
    }
  }
  for (const char* training : {"mixed", "single-path"}) {
    FewShotOptions o;
    o.training = training;
    o.search.batch = 16;
    o.search.steps_per_epoch = 2;
    o.split_epochs = {1};
    o.branch = {3};  // 6 ops into 3 pairs
    o.final_epochs = 1;
    o.gm.repeats = 2;
    std::vector<std::vector<std::vector<bool>>> masks;
    if (std::string(training) == "mixed") {
      FewShotResult r = run_few_shot(space, data, o);
      ASSERT_EQ(r.leaves.size(), 3U);
      for (const auto& leaf : r.leaves) {
        masks.push_back(leaf.masks);
        for (std::size_t d = 0; d < leaf.masks.size(); ++d) EXPECT_TRUE(leaf.masks[d][leaf.derived[d]]);
      }
    } else {
      SubSupernets t = train_sub_supernets(space, data, o);
      ASSERT_EQ(t.leaves.size(), 3U);
      FewShotEvaluator eval(t.leaves, {t.train.images.narrow(0, 0, 16)}, t.valid);
      Rng rng(1);
      for (int i = 0; i < 6; ++i) {
        const Architecture a = space.sample(rng);
        EXPECT_GE(eval.evaluate(a).at("supernet_acc"), 0.0);
      }
      for (const auto& leaf : t.leaves) masks.push_back(leaf.masks);
    }
    // The split block's 6 ops are divided into 3 disjoint pairs.
    std::size_t split = 3;
    for (std::size_t d = 0; d < 3; ++d) {
      if (std::count(masks[0][d].begin(), masks[0][d].end(), true) == 2) split = d;
    }
    ASSERT_LT(split, 3U) << training;
    std::vector<int> seen(6, 0);
    for (const auto& m : masks) {
      EXPECT_EQ(std::count(m[split].begin(), m[split].end(), true), 2) << training;
      for (std::size_t op = 0; op < 6; ++op) seen[op] += m[split][op];
    }
    EXPECT_EQ(seen, std::vector<int>(6, 1)) << training;
  }
}

TEST(FewShot, ParallelLevelsGiveTheSequentialOneThreadResult) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(192, {1, 8, 8}, 10, 5);
  FewShotOptions o = two_level_single_path(/*seed=*/8, /*steps=*/3, /*final_epochs=*/2);
  o.search.threads = 1;
  SubSupernets sequential = train_sub_supernets(space, data, o);
  o.parallel = true;
  o.search.threads = 2;  // two sub-supernets at a time, one intra-op thread each
  SubSupernets parallel = train_sub_supernets(space, data, o);
  // And stopped after the first epoch of the (parallel) final phase, then resumed.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "nasforge_few_shot_parallel";
  detail::remove_tree(dir);
  o.out_dir = dir.string();
  o.on_epoch = [](const FewShotProgress& p) { return p.phase == "final" && p.epoch == 1; };
  EXPECT_TRUE(train_sub_supernets(space, data, o).stopped);
  o.on_epoch = {};
  o.resume = true;
  SubSupernets resumed = train_sub_supernets(space, data, o);
  EXPECT_TRUE(resumed.resumed);
  detail::remove_tree(dir);
  for (const SubSupernets* run : {&parallel, &resumed}) {
    ASSERT_EQ(run->leaves.size(), sequential.leaves.size());
    for (std::size_t l = 0; l < run->leaves.size(); ++l) {
      EXPECT_EQ(run->leaves[l].masks, sequential.leaves[l].masks);
      auto p = run->leaves[l].supernet->parameters(), q = sequential.leaves[l].supernet->parameters();
      ASSERT_EQ(p.size(), q.size());
      for (std::size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(::torch::equal(p[i], q[i])) << "leaf " << l << " tensor " << i;
    }
  }
}

TEST(FewShot, AFreshTreeRemovesAnEarlierRunsFiles) {
  namespace fs = std::filesystem;
  auto space = tiny_nb201();
  TensorData data = synthetic_data(128, {1, 8, 8}, 10, 5);
  const fs::path dir = fs::temp_directory_path() / "nasforge_few_shot_stale";
  detail::remove_tree(dir);
  fs::create_directories(dir / "leaf_0");
  std::ofstream(dir / "leaf_0" / "checkpoint.pt") << "an earlier run's leaf";
  std::ofstream(dir / "node_7_0.pt") << "an earlier run's node";
  std::ofstream(dir / "keep.txt") << "not ours";
  FewShotOptions o;
  o.training = "single-path";
  o.search.batch = 16;
  o.search.steps_per_epoch = 1;
  o.split_epochs = {1};
  o.branch = {2};
  o.final_epochs = 1;
  o.gm.repeats = 1;
  o.out_dir = dir.string();
  o.on_epoch = [](const FewShotProgress&) { return true; };  // stopped after the first epoch
  EXPECT_TRUE(train_sub_supernets(space, data, o).stopped);
  EXPECT_FALSE(fs::exists(dir / "leaf_0"));
  EXPECT_FALSE(fs::exists(dir / "node_7_0.pt"));
  EXPECT_TRUE(fs::exists(dir / "keep.txt"));
  EXPECT_TRUE(fs::exists(dir / "tree.json"));
  detail::remove_tree(dir);
}

TEST(FewShot, DartsPtSplitsTheDartsSpaceWhereNoneIsMaskedFromTheStart) {
  namespace fs = std::filesystem;
  auto space = SearchSpace::from_file(testing::space_path("darts"),
                                      {{"C", "4"}, {"N", "1"}, {"input", "[1,8,8]"}, {"classes", "3"}});
  TensorData data = synthetic_data(128, {1, 8, 8}, 3, 5);
  FewShotOptions o;
  o.search = darts_preset("darts-pt");  // masks `none` out of every DARTS edge from the start
  o.search.batch = 16;
  o.search.steps_per_epoch = 1;
  o.split_epochs = {1};
  o.branch = {2};
  o.final_epochs = 1;
  o.gm.repeats = 1;
  const fs::path dir = fs::temp_directory_path() / "nasforge_few_shot_darts_pt";
  detail::remove_tree(dir);
  o.out_dir = dir.string();
  // The split is what is tested (DARTS-PT's 18 projections per leaf would take a minute): stop
  // in the first leaf's first epoch and read the tree's checkpoint.
  o.on_epoch = [](const FewShotProgress& p) { return p.phase == "final"; };
  EXPECT_TRUE(run_few_shot(space, data, o).stopped);
  std::ifstream in(dir / "tree.json");
  const auto tree = nlohmann::json::parse(in);
  ASSERT_EQ(tree.at("nodes").size(), 2U);
  std::vector<int> seen(8, 0);
  for (const auto& node : tree.at("nodes")) {
    const auto& split = node.at("splits").at(0);
    EXPECT_EQ(split.at("decision"), tree.at("nodes")[0].at("splits")[0].at("decision"));
    const auto group = split.at("groups").at(0).get<std::vector<std::uint32_t>>();
    EXPECT_TRUE(group.size() == 3 || group.size() == 4) << group.size();  // 7 ops: none stays out
    for (auto op : group) ++seen.at(op);
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 7);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 1);  // none
  detail::remove_tree(dir);
}

}  // namespace nasforge
