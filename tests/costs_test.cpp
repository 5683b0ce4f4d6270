// Analytic costs against hand counts.
#include "nasforge/costs.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "nasforge/error.h"
#include "nasforge/search_space.h"
#include "testing/spaces.h"

namespace nasforge {

namespace {
const char* kNb201Fact =
    "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|";
}

TEST(AnalyticCosts, Nb201ParameterCountMatchesTheBenchmark) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  auto c = analytic_costs(s.resolve(s.parse_architecture(kNb201Fact)));
  EXPECT_EQ(c.params, 615386);  // NAS-Bench-201's own count for this cell, 10 classes
}

TEST(AnalyticCosts, Nb201MacsMatchAHandCount) {
  // By hand, for 32x32 CIFAR input. A conv producing Co x Ho x Wo from Ci channels with a
  // k x k kernel costs Ho*Wo*Co*Ci*k*k MACs; pools, BN, ReLU, sums cost none.
  const std::int64_t stem = 32 * 32 * 16 * 3 * 9;
  auto cell = [](std::int64_t hw, std::int64_t c) {
    // Two nor_conv_3x3 and two nor_conv_1x1 edges; skip and none are free.
    return 2 * hw * c * c * 9 + 2 * hw * c * c;
  };
  auto resblock = [](std::int64_t hw_out, std::int64_t ci, std::int64_t co) {
    return hw_out * 9 * ci * co + hw_out * 9 * co * co + hw_out * ci * co;  // conv_a, conv_b, shortcut
  };
  const std::int64_t expected = stem + 5 * cell(32 * 32, 16) + resblock(16 * 16, 16, 32) +
                                5 * cell(16 * 16, 32) + resblock(8 * 8, 32, 64) +
                                5 * cell(8 * 8, 64) + 64 * 10;
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  auto c = analytic_costs(s.resolve(s.parse_architecture(kNb201Fact)));
  EXPECT_EQ(c.macs, expected);
  EXPECT_EQ(c.flops(), 2 * expected);
  std::int64_t sum = 0;
  for (const auto& l : c.layers) sum += l.macs;
  EXPECT_EQ(sum, c.macs);
}

TEST(AnalyticCosts, AllNoneCellHasOnlyMacroCosts) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  auto c = analytic_costs(s.resolve(s.parse_architecture(
      "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")));
  // stem 464 + ResNet blocks 14464 + 57600 + head BN 128 + linear 650.
  EXPECT_EQ(c.params, 464 + 14464 + 57600 + 128 + 650);
}

TEST(AnalyticCosts, PeakMemoryOfAChainFreesEachTensorAfterItsLastReader) {
  auto s = SearchSpace::from_string(R"({"params": {"input": [1, 4, 4]}, "network": [
      {"type": "conv", "out": 2, "kernel": 1}, {"type": "global_avg_pool"},
      {"type": "linear", "out": 3}]})");
  auto c = analytic_costs(s.resolve(Architecture{}));
  // input 16 floats + conv output 32 floats alive together: 48 * 4 bytes.
  EXPECT_EQ(c.peak_activation_bytes, 48 * 4);
}

TEST(AnalyticCosts, PeakMemoryOfACellKeepsBranchesAliveUntilTheirSum) {
  auto s = SearchSpace::from_string(R"({"params": {"input": [2, 4, 4]},
      "ops": {"c": {"type": "relu_conv_bn", "kernel": 1}},
      "network": [{"type": "cell", "nodes": 2, "ops": ["c"]}]})");
  auto net = s.resolve(Architecture{0, 0, 0});
  ASSERT_EQ(net.layers.size(), 4u);  // edge 0->1, edge 0->2, edge 1->2, sum
  // While edge 0->2 runs: input, node 1, its own output (32 floats each) and its ReLU
  // workspace (32 floats) = 128 floats.
  EXPECT_EQ(analytic_costs(net).peak_activation_bytes, 128 * 4);
}

TEST(AnalyticCosts, ZeroOpIsNeverMaterialised) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  auto net = s.resolve(s.parse_architecture("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"));
  auto c = analytic_costs(net);
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    if (net.layers[i].op == "zero") {
      EXPECT_EQ(c.layers[i].output_bytes, 0);
    }
  }
}

// NAS-Bench-201 edges: edge[0] 0->1, edge[1] 0->2, edge[2] 1->2, edge[3] 0->3, edge[4] 1->3,
// edge[5] 2->3; node 3 is the cell's output.
namespace {
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

TEST(LiveLayers, ABranchThatFeedsOnlyNoneEdgesIsDead) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  // Node 1 (a 3x3 conv of the input) is read only by the `none` edges 1->2 and 1->3.
  auto net = s.resolve(s.parse_architecture(
      "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"));
  const auto live = live_layers(net);
  ASSERT_EQ(live.size(), net.layers.size());
  std::size_t dead = 0;
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const bool edge0 = ends_with(net.layers[i].name, ".edge[0]");
    EXPECT_EQ(live[i], !edge0)
        << net.layers[i].name;  // the `none` layers themselves are read: live
    dead += !live[i];
  }
  EXPECT_EQ(dead, 15U);  // one per cell
}

TEST(LiveLayers, AConvOnANoneNodeRunsAndAConstantOutputFoldsEverything) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  // Node 1 takes only `none`: the 3x3 conv 1->2 reads zeros, but its result reaches the output.
  auto net = s.resolve(s.parse_architecture(
      "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"));
  for (bool l : live_layers(net)) EXPECT_TRUE(l);
  // Node 3 takes only `none`: the output does not depend on the input, nothing runs.
  for (const char* arch :
       {"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"}) {
    const auto live = live_layers(s.resolve(s.parse_architecture(arch)));
    EXPECT_EQ(std::count(live.begin(), live.end(), true), 0) << arch;
  }
  // Without `none`, everything runs.
  const auto all = live_layers(
      s.resolve(s.parse_architecture("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_"
                                     "3x3~0|nor_conv_3x3~1|skip_connect~2|")));
  EXPECT_EQ(std::count(all.begin(), all.end(), false), 0);
  // kNb201Fact's edge 2->3 is `none`: node 2 (two convs and their sum) is dead in every cell.
  const auto fact = live_layers(s.resolve(s.parse_architecture(kNb201Fact)));
  EXPECT_EQ(std::count(fact.begin(), fact.end(), false), 3 * 15);
}

TEST(LiveLayers, RejectsALayerThatReadsAhead) {
  ConcreteNetwork net;
  net.input_shape = {4};
  net.layers.push_back(ConcreteLayer{"a", "identity", "", {1}, {{4}}, {4}, {}});
  net.layers.push_back(ConcreteLayer{"b", "identity", "", {-1}, {{4}}, {4}, {}});
  EXPECT_THROW((void)live_layers(net), InvalidArgument);
  EXPECT_TRUE(live_layers(ConcreteNetwork{}).empty());
}

TEST(AnalyticCosts, RejectsBadOptions) {
  ConcreteNetwork net;
  net.input_shape = {1};
  EXPECT_THROW((void)analytic_costs(net, {.batch = 0}), InvalidArgument);
}

}  // namespace nasforge
