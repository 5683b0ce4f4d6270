// Shape rules and per-op cost formulas against hand counts.
#include "nasforge/ops.h"

#include <gtest/gtest.h>

#include "nasforge/error.h"
#include "nasforge/search_space.h"

namespace nasforge {
namespace {

LayerAttrs attrs_for(const OpDef& def, std::map<std::string, Value> given) {
  LayerAttrs a;
  for (const auto& ad : def.attrs) {
    auto it = given.find(ad.name);
    if (it != given.end()) a.set(ad.name, it->second);
    else if (ad.fallback) a.set(ad.name, *ad.fallback);
  }
  return a;
}

struct Applied {
  Shape out;
  LayerCost cost;
};

Applied apply(const std::string& op, const Shape& in, std::map<std::string, Value> given) {
  const OpDef& def = find_op(op);
  auto a = attrs_for(def, std::move(given));
  Shape out = def.infer({in}, a);
  return {out, def.cost({in}, out, a)};
}

}  // namespace

TEST(Ops, ConvOutputSizeFollowsTheConvolutionFormula) {
  // floor((H + 2p - d(k-1) - 1) / s) + 1
  EXPECT_EQ(apply("conv", {3, 32, 32}, {{"out", 8}, {"kernel", 3}, {"stride", 2}}).out, (Shape{8, 16, 16}));
  EXPECT_EQ(apply("conv", {3, 7, 7}, {{"out", 8}, {"kernel", 3}, {"stride", 2}, {"padding", 0}}).out,
            (Shape{8, 3, 3}));
  EXPECT_EQ(apply("conv", {3, 9, 9}, {{"out", 4}, {"kernel", 3}, {"dilation", 2}}).out, (Shape{4, 9, 9}));
  auto g = apply("conv", {8, 4, 4}, {{"out", 8}, {"kernel", 3}, {"groups", 8}});
  EXPECT_EQ(g.cost.params, 8 * 9);  // depthwise
  EXPECT_EQ(g.cost.macs, 16 * 8 * 9);
}

TEST(Ops, MbconvCountsMatchAHandCount) {
  // 16 -> 24 channels, k5, expansion 6 (mid 96), stride 2, squeeze-excite to 24, on 8x8.
  auto r = apply("mbconv", {16, 8, 8},
                 {{"out", 24}, {"kernel", 5}, {"expansion", 6}, {"stride", 2}, {"se", true}, {"divisor", 8}});
  EXPECT_EQ(r.out, (Shape{24, 4, 4}));
  const std::int64_t expand = 16 * 96 + 2 * 96, dw = 96 * 25 + 2 * 96,
                     se = 96 * 24 + 24 + 24 * 96 + 96, project = 96 * 24 + 2 * 24;
  EXPECT_EQ(r.cost.params, expand + dw + se + project);
  EXPECT_EQ(r.cost.macs, 8 * 8 * 16 * 96 + 4 * 4 * 96 * 25 + 2 * 96 * 24 + 4 * 4 * 96 * 24);
}

TEST(Ops, GroupedMbconvDividesPointwiseCosts) {
  auto dense = apply("mbconv", {16, 4, 4}, {{"out", 16}, {"kernel", 3}, {"expansion", 3}});
  auto grouped = apply("mbconv", {16, 4, 4}, {{"out", 16}, {"kernel", 3}, {"expansion", 3}, {"groups", 2}});
  // Pointwise weights halve; depthwise and BN stay.
  EXPECT_EQ(dense.cost.params - grouped.cost.params, (16 * 48 + 48 * 16) / 2);
  EXPECT_THROW((void)apply("mbconv", {15, 4, 4}, {{"out", 16}, {"groups", 2}}), InvalidArgument);
}

TEST(Ops, TransformerBlockCountsMatchAHandCount) {
  // T=5 tokens of D=8; 2 heads of 4; MLP 16 wide.
  auto r = apply("transformer_block", {5, 8}, {{"heads", 2}, {"head_dim", 4}, {"mlp_ratio", 2.0}});
  EXPECT_EQ(r.out, (Shape{5, 8}));
  EXPECT_EQ(r.cost.params, 16 + (8 * 24 + 24) + (8 * 8 + 8) + 16 + (8 * 16 + 16) + (16 * 8 + 8));
  EXPECT_EQ(r.cost.macs, 5 * 8 * 24 + 2 * 5 * 5 * 8 + 5 * 8 * 8 + 2 * 5 * 8 * 16);
}

TEST(Ops, PatchEmbedMakesTokens) {
  auto r = apply("patch_embed", {3, 32, 32}, {{"out", 64}, {"patch", 8}});
  EXPECT_EQ(r.out, (Shape{17, 64}));
  EXPECT_EQ(r.cost.params, 3 * 64 * 64 + 64 + 64 + 17 * 64);
  EXPECT_THROW((void)apply("patch_embed", {3, 30, 30}, {{"out", 64}, {"patch", 8}}), InvalidArgument);
}

TEST(Ops, SkipProjectsOnlyWhenShapesChange) {
  EXPECT_EQ(apply("identity", {8, 8, 8}, {}).cost.params, 0);
  auto f = apply("identity", {8, 8, 8}, {{"out", 16}, {"stride", 2}, {"reduce", "factorized"}});
  EXPECT_EQ(f.out, (Shape{16, 4, 4}));
  EXPECT_EQ(f.cost.params, 8 * 16 + 2 * 16);
  EXPECT_THROW((void)apply("factorized_reduce", {8, 7, 7}, {{"out", 8}}), InvalidArgument);
}

TEST(Ops, PoolsCannotChangeChannels) {
  EXPECT_EQ(apply("avg_pool", {8, 8, 8}, {{"out", 8}}).out, (Shape{8, 8, 8}));
  EXPECT_THROW((void)apply("avg_pool", {8, 8, 8}, {{"out", 16}}), InvalidArgument);
}

TEST(Ops, MakeDivisibleRoundsLikeOnceForAll) {
  EXPECT_EQ(make_divisible(30, 8), 32);
  EXPECT_EQ(make_divisible(24, 8), 24);
  EXPECT_EQ(make_divisible(3, 8), 8);
  EXPECT_EQ(make_divisible(36, 8), 40);  // 32 would be below 90% of 36
}

TEST(Ops, AUserOpIsOneRegistration) {
  if (!has_op("test_double_width")) {
    OpDef def;
    def.name = "test_double_width";
    def.doc = "doubles the channels (test op)";
    def.infer = [](const std::vector<Shape>& in, const LayerAttrs&) {
      Shape s = in[0];
      s[0] *= 2;
      return s;
    };
    def.cost = [](const std::vector<Shape>& in, const Shape&, const LayerAttrs&) {
      return LayerCost{in[0][0], 0, 0};
    };
    register_op(def);
    EXPECT_THROW(register_op(def), InvalidArgument);
  }
  auto s = SearchSpace::from_string(R"({"params": {"input": [3, 4, 4]},
      "network": [{"type": "test_double_width"}]})");
  EXPECT_EQ(s.resolve(Architecture{}).output_shape(), (Shape{6, 4, 4}));
}

TEST(Ops, UnknownOpNamesTheKnownOnes) {
  try {
    (void)find_op("convv");
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("mbconv"), std::string::npos);
  }
}

}  // namespace nasforge
