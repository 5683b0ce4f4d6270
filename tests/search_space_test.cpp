// SearchSpace operations on toy spaces with known properties.
#include "nasforge/search_space.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "nasforge/error.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

SearchSpace toy_stage() { return SearchSpace::from_string(testing::kToyStageSpace, {}, "toy_stage"); }
SearchSpace toy_cell() { return SearchSpace::from_string(testing::kToyCellSpace, {}, "toy_cell"); }

std::size_t count_distinct(const SearchSpace& s) {
  std::size_t n = 0;
  std::set<Architecture> seen;
  s.for_each([&](const Architecture& a) {
    ++n;
    seen.insert(a);
  });
  EXPECT_EQ(seen.size(), n);
  return n;
}

}  // namespace

TEST(SearchSpace, ConditionalStageSizeMatchesEnumeration) {
  auto s = toy_stage();
  ASSERT_TRUE(s.has_conditional_decisions());
  EXPECT_EQ(s.size().exact, "28");
  EXPECT_EQ(count_distinct(s), 28u);
}

TEST(SearchSpace, NodeInputChoiceSizeMatchesEnumeration) {
  auto s = toy_cell();
  EXPECT_EQ(s.size().exact, std::to_string(4 * 12 * 24));
  EXPECT_EQ(count_distinct(s), 4u * 12 * 24);
}

TEST(SearchSpace, InactiveBlocksCanonicaliseToOptionZero) {
  auto s = toy_stage();
  auto d = s.find_decision("network[1].depth");
  auto k2 = s.find_decision("network[1].block[2].kernel");
  ASSERT_TRUE(d && k2);
  Architecture a(std::vector<std::uint32_t>(s.decisions().size(), 1));
  a.set(*d, 0);  // depth 1: blocks 1 and 2 are inactive
  auto act = s.active(a);
  EXPECT_FALSE(act[*k2]);
  auto c = s.canonical(a);
  EXPECT_EQ(c[*k2], 0u);
  // Inactive choices do not change the network.
  EXPECT_EQ(s.resolve(a).layers.size(), s.resolve(c).layers.size());
  EXPECT_EQ(s.resolve(a).to_string(), s.resolve(c).to_string());
  auto enc = s.encode_ordinal(a);
  EXPECT_EQ(enc[*k2], -1.0F);
}

TEST(SearchSpace, StageDepthControlsBlockCountAndLaterBlocksHaveStrideOne) {
  auto s = SearchSpace::from_string(R"({
    "params": {"input": [3, 32, 32]},
    "network": [{"type": "stage", "depth": 3,
                 "block": {"type": "conv", "out": 8, "kernel": 3, "stride": 2}}]})");
  auto net = s.resolve(Architecture{});
  ASSERT_EQ(net.layers.size(), 3u);
  EXPECT_EQ(net.layers[0].output_shape, (Shape{8, 16, 16}));
  EXPECT_EQ(net.layers[2].output_shape, (Shape{8, 16, 16}));
}

TEST(SearchSpace, SampleIsDeterministicPerSeedAndCanonical) {
  auto s = toy_stage();
  Rng r1(9), r2(9), r3(10);
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    auto a = s.sample(r1), b = s.sample(r2), c = s.sample(r3);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, s.canonical(a));
    differ += a != c;
  }
  EXPECT_GT(differ, 20);
}

TEST(SearchSpace, SampleCoversTheWholeSmallSpace) {
  auto s = toy_cell();
  Rng rng(1);
  std::set<Architecture> seen;
  for (int i = 0; i < 40000; ++i) seen.insert(s.sample(rng));
  EXPECT_EQ(seen.size(), 4u * 12 * 24);
}

TEST(SearchSpace, MutateChangesExactlyOneDecision) {
  auto s = toy_cell();
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    auto a = s.sample(rng);
    auto m = s.mutate(a, rng);
    EXPECT_NE(a, m);
    // One decision changes; choices that it deactivates fall back to option 0 (canonical).
    auto act_a = s.active(a), act_m = s.active(m);
    int changed = 0;
    for (std::size_t d = 0; d < a.size(); ++d) changed += act_a[d] && act_m[d] && a[d] != m[d];
    EXPECT_EQ(changed, 1);
    EXPECT_EQ(m, s.canonical(m));
  }
}

TEST(SearchSpace, CrossoverTakesEveryChoiceFromAParent) {
  auto s = toy_stage();
  Rng rng(4);
  for (int i = 0; i < 100; ++i) {
    auto a = s.sample(rng), b = s.sample(rng);
    auto c = s.crossover(a, b, rng);
    auto raw_ok = true;
    for (std::size_t d = 0; d < c.size(); ++d) {
      raw_ok &= c[d] == a[d] || c[d] == b[d] || c[d] == 0;
    }
    EXPECT_TRUE(raw_ok);
    EXPECT_EQ(c, s.canonical(c));
  }
}

TEST(SearchSpace, NeighboursDifferInOneDecision) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  auto a = s.parse_architecture("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|");
  auto ns = s.neighbours(a);
  EXPECT_EQ(ns.size(), 6u * 4);
  std::set<Architecture> distinct(ns.begin(), ns.end());
  EXPECT_EQ(distinct.size(), ns.size());
  for (const auto& n : ns) {
    int diff = 0;
    for (std::size_t d = 0; d < n.size(); ++d) diff += n[d] != a[d];
    EXPECT_EQ(diff, 1);
  }
}

TEST(SearchSpace, OneHotHasOneBitPerActiveDecision) {
  auto s = toy_stage();
  Rng rng(2);
  for (int i = 0; i < 50; ++i) {
    auto a = s.sample(rng);
    auto oh = s.encode_onehot(a);
    ASSERT_EQ(oh.size(), s.onehot_size());
    auto act = s.active(a);
    float sum = 0;
    for (float v : oh) sum += v;
    EXPECT_EQ(static_cast<std::size_t>(sum), static_cast<std::size_t>(std::count(act.begin(), act.end(), true)));
  }
}

TEST(SearchSpace, IndexAndAtAreInverse) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  ASSERT_TRUE(s.is_enumerable());
  for (std::uint64_t i : {0ULL, 1ULL, 777ULL, 15624ULL}) EXPECT_EQ(s.index_of(s.at(i)), i);
  EXPECT_THROW((void)s.at(15625), InvalidArgument);
}

TEST(SearchSpace, ParsesArchitecturesAsIndicesNamesOrNative) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  const std::string native = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";
  auto a = s.parse_architecture(native);
  EXPECT_EQ(s.to_native(a), native);
  EXPECT_EQ(s.parse_architecture(nlohmann::json(a).dump()), a);
  EXPECT_EQ(s.parse_architecture(s.to_json(a).dump()), a);
  EXPECT_EQ(s.parse_architecture(R"({"cell.edge[0]": "nor_conv_3x3"})")[0], 3u);
  EXPECT_THROW((void)s.parse_architecture(R"({"cell.edge[9]": "none"})"), SearchSpaceError);
  EXPECT_THROW((void)s.parse_architecture(R"({"cell.edge[0]": "conv"})"), SearchSpaceError);
  EXPECT_THROW((void)s.parse_architecture("[0,0,0]"), SearchSpaceError);
  EXPECT_THROW((void)s.parse_architecture("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"), SearchSpaceError);
}

TEST(SearchSpace, OverridesChangeTheNetworkAndTheFingerprint) {
  auto big = SearchSpace::from_file(testing::space_path("nb201"));
  auto small = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"input", "[1,28,28]"}});
  EXPECT_NE(big.fingerprint(), small.fingerprint());
  EXPECT_EQ(big.fingerprint(), SearchSpace::from_file(testing::space_path("nb201")).fingerprint());
  auto a = big.at(1234);
  auto nb = big.resolve(a), ns = small.resolve(a);
  EXPECT_EQ(ns.input_shape, (Shape{1, 28, 28}));
  EXPECT_LT(ns.layers.size(), nb.layers.size());
  EXPECT_EQ(ns.output_shape(), (Shape{10}));
}

TEST(SearchSpace, SharedNamedChoiceIsOneDecision) {
  auto s = SearchSpace::from_string(R"({
    "params": {"input": [3, 16, 16]},
    "network": [
      {"type": "conv", "out": 8, "kernel": {"choice": [1, 3], "name": "k"}},
      {"type": "conv", "out": 8, "kernel": {"choice": [1, 3], "name": "k"}},
      {"type": "conv", "out": 8, "kernel": {"choice": [1, 3]}}]})");
  ASSERT_EQ(s.decisions().size(), 2u);
  EXPECT_EQ(s.decisions()[0].name, "k");
  auto net = s.resolve(Architecture{1, 0});
  EXPECT_EQ(net.layers[0].attrs.i("kernel"), 3);
  EXPECT_EQ(net.layers[1].attrs.i("kernel"), 3);
  EXPECT_EQ(net.layers[2].attrs.i("kernel"), 1);
}

TEST(SearchSpace, ExpressionsFollowArithmeticRules) {
  auto s = SearchSpace::from_string(R"({
    "params": {"input": [3, 16, 16], "C": 6, "D": "($C + 2) * 3 // 4"},
    "network": [{"type": "conv", "out": "${D} - 1", "kernel": 1}]})");
  EXPECT_EQ(s.resolve(Architecture{}).layers[0].attrs.i("out"), 5);  // (6+2)*3//4 - 1
}

}  // namespace nasforge
