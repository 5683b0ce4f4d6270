// Profiling and measuring latency with LibTorch (values are timings: the tests check
// structure and sanity, the accuracy figures live in docs/performance.md).
#include "nasforge/torch/latency.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include <torch/torch.h>

#include "nasforge/allocator.h"
#include "nasforge/error.h"
#include "nasforge/random.h"
#include "nasforge/torch/network.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {
// NB201 with one cell per stage, 8 channels, 16x16 inputs: layers of microseconds.
SearchSpace small_nb201() {
  return SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[3,16,16]"}});
}

// Few, short timings: these tests check structure and sanity, not accuracy.
ProfileOptions quick_options() {
  ProfileOptions o;
  o.min_reps = 3;
  o.min_ms = 1;
  o.warmup = 1;
  return o;
}
}  // namespace

TEST(Latency, ProfilesEveryLayerAndPredictsPositiveTimes) {
  auto space = small_nb201();
  ProfileOptions o = quick_options();
  auto t = profile_space(space, o, /*samples=*/20, /*calibration=*/3, /*seed=*/1);
  EXPECT_GT(t.ms.size(), 5U);
  ASSERT_EQ(t.calibration.size(), 3U);  // kept with the table, so it can be refitted
  for (const auto& p : t.calibration) EXPECT_GT(p.measured_ms, 0.0);
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
  auto space = small_nb201();
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
  ProfileOptions o = quick_options();
  o.in_network = true;
  auto t = profile_space(space, o, /*samples=*/4, /*calibration=*/2, /*seed=*/1);
  EXPECT_GT(t.ms.size(), 5U);
  for (const auto& [key, ms] : t.ms) EXPECT_GE(ms, 0.0) << key;
  EXPECT_TRUE(t.in_network);
  // Lazily: a layer of `net` the table lacks is timed inside `net`; no other entry changes.
  const std::string conv = [&] {
    for (std::size_t i = 0; i < net.layers.size(); ++i) {
      if (net.layers[i].op == "conv_bn_act" || net.layers[i].op == "relu_conv_bn") return layer_key(net, i);
    }
    return layer_key(net, 0);
  }();
  t.ms.erase(conv);
  const auto before = t.ms;
  ProfileOptions alone = o;
  alone.in_network = false;  // the table's own method wins: it was profiled in networks
  profile_layers(t, {net}, alone);
  EXPECT_TRUE(t.in_network);
  ASSERT_TRUE(t.ms.count(conv));
  EXPECT_EQ(t.ms.size(), before.size() + 1);
  for (const auto& [key, ms] : before) EXPECT_EQ(t.ms.at(key), ms) << "an entry changed: " << key;
  for (std::size_t i = 0; i < net.layers.size(); ++i) EXPECT_TRUE(t.ms.count(layer_key(net, i))) << i;
  EXPECT_GT(t.predict(net), 0.0);
  // The method survives JSON.
  EXPECT_TRUE(LatencyTable::from_json(t.to_json()).in_network);
  EXPECT_FALSE(LatencyTable::from_json([&] { auto j = t.to_json(); j.erase("timing"); return j; }()).in_network);
#if defined(__GLIBC__)
  EXPECT_TRUE(reuse_freed_memory());  // glibc accepts the settings (what they do: docs/performance.md)
#endif
}

// A table profiled beside a reference network records it, keeps it through JSON, is completed
// only beside the same one, and moves to today's speed by one timing (reanchor).
TEST(Latency, AReferencedTableRecordsItsReferenceAndReanchors) {
  auto space = small_nb201();
  ProfileOptions o = quick_options();
  o.in_network = true;
  const auto ref = space.resolve(space.parse_architecture("[3,3,3,3,3,3]"));
  o.reference = ref;
  auto t = profile_space(space, o, /*samples=*/3, /*calibration=*/3, /*seed=*/1);
  EXPECT_GT(t.reference_ms, 0.0);
  EXPECT_EQ(t.reference_fingerprint.size(), 16U);
  ASSERT_EQ(t.calibration.size(), 3U);
  for (const auto& p : t.calibration) EXPECT_GT(p.measured_ms, 0.0);
  const auto back = LatencyTable::from_json(t.to_json());
  EXPECT_EQ(back.reference_ms, t.reference_ms);
  EXPECT_EQ(back.reference_fingerprint, t.reference_fingerprint);
  // The reference beside itself: the same network timed three times running.
  const auto self = measure_relative_latency(ref, o);
  EXPECT_GT(self.relative(), 0.5);
  EXPECT_LT(self.relative(), 2.0);
  Rng rng(9);
  const auto net = space.resolve(space.sample(rng));
  // Completed without a reference, or beside another network: refused, naming the reference.
  ProfileOptions none = o;
  none.reference.reset();
  EXPECT_THROW(profile_layers(t, {net}, none), InvalidArgument);
  EXPECT_THROW(measure_relative_latency(net, none), InvalidArgument);
  ProfileOptions other = o;
  other.reference = space.resolve(space.parse_architecture("[1,1,1,1,1,1]"));
  try {
    profile_layers(t, {net}, other);
    ADD_FAILURE() << "another reference network was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(t.reference_fingerprint), std::string::npos) << e.what();
  }
  EXPECT_THROW(reanchor(t, other), InvalidArgument);
  // An absolute table cannot be continued beside a reference.
  ProfileOptions plain = none;
  auto absolute = profile_space(space, plain, 2, 2, 1);
  EXPECT_THROW(profile_layers(absolute, {net}, o), InvalidArgument);
  EXPECT_THROW(reanchor(absolute, o), InvalidArgument);
  // Other batch or threads than the table's: refused, naming both.
  ProfileOptions batch4 = o;
  batch4.batch = 4;
  try {
    profile_layers(t, {net}, batch4);
    ADD_FAILURE() << "another batch was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("batch 1"), std::string::npos) << e.what();
  }
  // The direction of the scaling: timings are brought to the speed when the table was begun,
  // so a table whose reference ran twice as long then gets layers about twice as long as the
  // same layers timed for a table whose reference ran as it runs now.
  Rng more(21);
  const auto fresh = space.resolve(space.sample(more));
  LatencyTable now = t, slow = t;
  for (std::size_t i = 0; i < fresh.layers.size(); ++i) now.ms.erase(layer_key(fresh, i)), slow.ms.erase(layer_key(fresh, i));
  now.reference_ms = measure_latency_ms(ref, o);
  slow.reference_ms = 2 * now.reference_ms;
  profile_layers(now, {fresh}, o);
  profile_layers(slow, {fresh}, o);
  std::vector<double> ratios;
  for (std::size_t i = 0; i < fresh.layers.size(); ++i) {
    const std::string key = layer_key(fresh, i);
    if (now.ms.at(key) > 0) ratios.push_back(slow.ms.at(key) / now.ms.at(key));
  }
  ASSERT_GE(ratios.size(), 3U);
  std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
  EXPECT_GT(ratios[ratios.size() / 2], 1.4);
  EXPECT_LT(ratios[ratios.size() / 2], 2.8);
  // reanchor scales every prediction by the reference's speed now against then, entries too:
  // layers profiled after it add up with the old ones.
  profile_layers(t, {net}, o);
  const double before = t.predict(net), then = t.reference_ms, layers_then = t.layers_ms(net);
  const double k = reanchor(t, o);
  EXPECT_GT(k, 0.0);
  EXPECT_NEAR(t.reference_ms, k * then, 1e-9 * then);
  EXPECT_NEAR(t.predict(net), k * before, 1e-9 * before);
  EXPECT_NEAR(t.layers_ms(net), k * layers_then, 1e-9 * layers_then);
}

TEST(Latency, ExpectedLatencyOfAMixedSupernetIsDifferentiableAndFollowsTheLogits) {
  auto space = small_nb201();
  Supernet net(space);
  ProfileOptions o = quick_options();
  LatencyTable t;
  EXPECT_THROW(expected_latency_ms(*net, t), NotFound);
  o.in_network = true;  // a supernet cannot run whole: its layers are timed alone
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

TEST(Latency, DevicesAreParsedAndCheckedWithClearErrors) {
  EXPECT_EQ(parse_device("cpu"), ::torch::Device(::torch::kCPU));
  EXPECT_THROW(parse_device("gpu"), InvalidArgument);
  EXPECT_THROW(parse_device("cuda:"), InvalidArgument);
  EXPECT_THROW(parse_device("cuda:x"), InvalidArgument);
  EXPECT_THROW(parse_device("cuda:99999"), InvalidArgument);
  EXPECT_THROW(parse_device("cuda:4096"), NotFound);  // no machine has that many
  if (::torch::cuda::is_available()) {
    EXPECT_EQ(parse_device("cuda"), ::torch::Device(::torch::kCUDA, 0));
  } else {
    try {
      parse_device("cuda");
      ADD_FAILURE() << "cuda accepted where LibTorch sees no CUDA device";
    } catch (const NotFound& e) {
      EXPECT_NE(std::string(e.what()).find("sees no CUDA device"), std::string::npos) << e.what();
    }
  }
}

// A small random NB201 network (one cell per stage, 8 channels, 16x16 input).
ConcreteNetwork small_network() {
  auto space = small_nb201();
  Rng rng(2);
  return space.resolve(space.sample(rng));
}

TEST(Latency, MeasuredEnergyOfANetworkOrAClearNotAvailable) {
  const auto net = small_network();
  ProfileOptions o;
  o.warmup = 1;
  for (const bool gpu : {false, true}) {
    if (gpu && !::torch::cuda::is_available()) continue;
    o.device = gpu ? ::torch::Device(::torch::kCUDA, 0) : ::torch::Device(::torch::kCPU);
    try {
      const auto e = measure_energy(net, o, /*window_ms=*/250);
      EXPECT_GT(e.mj_per_call, 0.0);
      EXPECT_GT(e.calls, 0);
      EXPECT_GE(e.ms_per_call * static_cast<double>(e.calls), 250.0);  // the whole window
      EXPECT_GT(e.watts, 1.0);  // a whole CPU package or GPU draws watts
      EXPECT_LT(e.watts, 5000.0);
    } catch (const NotFound& e) {  // no RAPL here (virtual machines); a CUDA machine must have NVML
      EXPECT_FALSE(gpu) << e.what();
      EXPECT_NE(std::string(e.what()).find("not available here"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(measure_energy(net, o, 0), InvalidArgument);
}

TEST(Latency, EnergyWindowOpensAndClosesOnTheCountersSteps) {
  const auto net = small_network();
  ProfileOptions o;
  o.warmup = 1;
  // A meter that steps by 10 mJ every 50 ms (0.2 W), as NVML steps every 100 ms: read naively
  // over a 120 ms window it would give 2 or 3 steps (0.17-0.25 W); aligned, 0.2 W.
  const auto t0 = std::chrono::steady_clock::now();
  auto meter = EnergyCounter::from_function([t0] {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return 10.0 * std::floor(ms / 50.0);
  }, "fake meter");
  for (int i = 0; i < 3; ++i) {
    const auto e = measure_energy(net, o, meter, /*window_ms=*/120);
    EXPECT_EQ(e.counter, "fake meter");
    EXPECT_GT(e.calls, 0);
    EXPECT_NEAR(e.watts, 0.2, 0.01) << "run " << i;  // off by at most a forward at each end
  }
  // A counter that never steps is an error, after max(window, 2 s), not a zero.
  auto stuck = EnergyCounter::from_function([] { return 5.0; }, "stuck meter");
  try {
    measure_energy(net, o, stuck, /*window_ms=*/10);
    ADD_FAILURE() << "a counter that never steps gave a measurement";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("stuck meter did not step"), std::string::npos) << e.what();
  }
}

}  // namespace nasforge
