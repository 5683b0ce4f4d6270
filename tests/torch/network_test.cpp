// The torch Network built from a ConcreteNetwork agrees with the torch-free core: parameter
// counts equal the analytic counts exactly, and every layer's output has the recorded shape.
#include "nasforge/torch/network.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "nasforge/costs.h"
#include "nasforge/search_space.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

struct Case {
  const char* space;
  ParamOverrides small;  // a cheaper variant for forward passes
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"nb201", {{"N", "1"}}},
      {"darts", {{"N", "1"}, {"C", "8"}}},
      {"fbnet", {}},
      {"mobilenetv3", {{"resolution", "96"}}},
      {"vit", {{"input", "[3,64,64]"}}},
  };
  return c;
}

class TorchNetwork : public ::testing::TestWithParam<std::size_t> {};

}  // namespace

TEST_P(TorchNetwork, ParameterCountEqualsTheAnalyticCount) {
  const auto& c = cases()[GetParam()];
  auto s = SearchSpace::from_file(testing::space_path(c.space));
  Rng rng(21);
  for (int i = 0; i < 4; ++i) {
    auto net = s.resolve(s.sample(rng));
    Network module(net);
    EXPECT_EQ(module->num_parameters(), analytic_costs(net).params) << c.space;
  }
}

TEST_P(TorchNetwork, EveryLayerOutputHasTheConcreteShape) {
  const auto& c = cases()[GetParam()];
  auto s = SearchSpace::from_file(testing::space_path(c.space), c.small);
  Rng rng(22);
  ::torch::NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) {
    auto net = s.resolve(s.sample(rng));
    Network module(net);
    module->eval();
    std::vector<std::int64_t> in{2};
    in.insert(in.end(), net.input_shape.begin(), net.input_shape.end());
    auto outs = module->forward_all(::torch::randn(in));
    ASSERT_EQ(outs.size(), net.layers.size());
    for (std::size_t l = 0; l < outs.size(); ++l) {
      std::vector<std::int64_t> want{2};
      want.insert(want.end(), net.layers[l].output_shape.begin(), net.layers[l].output_shape.end());
      ASSERT_EQ(outs[l].sizes().vec(), want) << c.space << " layer " << net.layers[l].name;
    }
    auto y = module->forward(::torch::randn(in));
    EXPECT_TRUE(::torch::isfinite(y).all().item<bool>());
  }
}

INSTANTIATE_TEST_SUITE_P(Shipped, TorchNetwork, ::testing::Range<std::size_t>(0, 5),
                         [](const auto& p) { return std::string(cases()[p.param].space); });

TEST(TorchNetwork, SavedWeightsReloadToIdenticalOutputs) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  auto net = s.resolve(s.parse_architecture(
      "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"));
  ::torch::manual_seed(0);
  Network a(net);
  a->eval();
  auto path = std::filesystem::temp_directory_path() / "nasforge_network_test.pt";
  ::torch::save(a, path.string());
  ::torch::manual_seed(1);  // a different initialisation, overwritten by the load
  Network b(net);
  ::torch::load(b, path.string());
  b->eval();
  std::filesystem::remove(path);
  ::torch::NoGradGuard no_grad;
  auto x = ::torch::randn({3, 3, 32, 32});
  EXPECT_TRUE(::torch::equal(a->forward(x), b->forward(x)));
}

TEST(TorchNetwork, NoneEverywhereGivesTheBiasOfTheClassifier) {
  // An all-`none` cell zeroes the cells' outputs; the ResNet blocks' shortcuts carry zeros too,
  // so the logits are the head's response to zeros: identical for every input.
  auto s = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  auto net = s.resolve(s.parse_architecture("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"));
  Network m(net);
  m->eval();
  ::torch::NoGradGuard no_grad;
  auto y = m->forward(::torch::randn({2, 3, 32, 32}));
  EXPECT_TRUE(::torch::allclose(y[0], y[1]));
}

}  // namespace nasforge
