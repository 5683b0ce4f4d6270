// Profiling and measuring latency with LibTorch (values are timings: the tests check
// structure and sanity, the accuracy figures live in docs/performance.md).
#include "nasforge/torch/latency.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nasforge/allocator.h"
#include "nasforge/error.h"
#include "nasforge/random.h"
#include "nasforge/torch/network.h"
#include "testing/spaces.h"

namespace nasforge {

TEST(Latency, ProfilesEveryLayerAndPredictsPositiveTimes) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[3,16,16]"}});
  ProfileOptions o;
  o.min_reps = 3;
  o.min_ms = 1;
  o.warmup = 1;
  auto t = profile_space(space, o, /*samples=*/20, /*calibration=*/3, /*seed=*/1);
  EXPECT_GT(t.ms.size(), 5U);
  for (const auto& [key, ms] : t.ms) EXPECT_GE(ms, 0.0) << key;
  EXPECT_GT(t.scale, 0.0);
  auto model = make_lut_cost_model(space, t);
  Rng rng(9);
  auto arch = space.sample(rng);
  auto net = space.resolve(arch);
  profile_layers(t, {net}, o);  // lazily complete
  EXPECT_GT(t.predict(net), 0.0);
  EXPECT_GT(measure_latency_ms(net, o), 0.0);
  auto measured = make_measured_cost_model(space, o);
  EXPECT_EQ(measured->kind(), "measured");
  EXPECT_GT(measured->predict(arch), 0.0);
}

TEST(Latency, InNetworkProfilingTimesLayersInsideWholeNetworks) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[3,16,16]"}});
  Rng rng(4);
  auto net = space.resolve(space.sample(rng));
  // forward_timed: one time per layer, the same output as forward.
  Network module(net);
  module->eval();
  ::torch::NoGradGuard no_grad;
  auto x = ::torch::randn({2, 3, 16, 16});
  std::vector<double> layer_ms;
  auto y = module->forward_timed(x, layer_ms);
  ASSERT_EQ(layer_ms.size(), net.layers.size());
  for (double ms : layer_ms) EXPECT_GE(ms, 0.0);
  EXPECT_TRUE(::torch::equal(y, module->forward(x)));
  // Profiling inside networks covers every layer of the networks given, and only those.
  ProfileOptions o;
  o.min_reps = 3;
  o.min_ms = 1;
  o.warmup = 1;
  o.in_network = true;
  auto t = profile_space(space, o, /*samples=*/4, /*calibration=*/2, /*seed=*/1);
  EXPECT_GT(t.ms.size(), 5U);
  for (const auto& [key, ms] : t.ms) EXPECT_GE(ms, 0.0) << key;
  const auto before = t.ms;
  profile_layers(t, {net}, o);  // lazily: the network's missing layers, timed inside it
  for (std::size_t i = 0; i < net.layers.size(); ++i) EXPECT_TRUE(t.ms.count(layer_key(net, i))) << i;
  for (const auto& [key, ms] : before) EXPECT_EQ(t.ms.at(key), ms) << "an entry changed: " << key;
  EXPECT_GT(t.predict(net), 0.0);
#if defined(__GLIBC__)
  EXPECT_TRUE(reuse_freed_memory());  // the profiler's default already made it so
#endif
}

TEST(Latency, ExpectedLatencyOfAMixedSupernetIsDifferentiableAndFollowsTheLogits) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[3,16,16]"}});
  Supernet net(space);
  ProfileOptions o;
  o.min_reps = 3;
  o.min_ms = 1;
  o.warmup = 1;
  LatencyTable t;
  EXPECT_THROW(expected_latency_ms(*net, t), NotFound);
  profile_layers(t, {net->structure()}, o);
  auto e = expected_latency_ms(*net, t);
  EXPECT_GT(e.item<double>(), 0.0);
  e.backward();
  const auto& a0 = net->alpha(0);
  ASSERT_TRUE(a0.grad().defined());
  EXPECT_GT(a0.grad().abs().sum().item<double>(), 0.0);
  // Favouring `none` (option 0) on every edge lowers the expected latency.
  {
    ::torch::NoGradGuard ng;
    for (auto& a : net->arch_parameters()) a[0].fill_(5.0);
  }
  EXPECT_LT(expected_latency_ms(*net, t).item<double>(), e.item<double>());
}

}  // namespace nasforge
