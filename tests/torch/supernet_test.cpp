// The supernet holds every candidate once, runs single-path and mixed, respects masks, and
// extracts sub-networks whose outputs equal its own single-path outputs.
#include "nasforge/torch/supernet.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

struct Case {
  const char* space;
  ParamOverrides small;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"nb201", {{"N", "1"}}},
      {"darts", {{"N", "1"}, {"C", "8"}}},
      {"fbnet", {}},
      // Elastic spaces, made small: the resolution stays a decision.
      {"mobilenetv3", {{"resolution", R"({"choice": [32, 48]})"}, {"classes", "10"}}},
      {"vit", {{"input", "[3,32,32]"}, {"patch", "8"}, {"classes", "10"}}},
  };
  return c;
}

std::int64_t count(const std::vector<::torch::Tensor>& ps) {
  std::int64_t n = 0;
  for (const auto& p : ps) n += p.numel();
  return n;
}

class SupernetSpaces : public ::testing::TestWithParam<std::size_t> {};

}  // namespace

TEST_P(SupernetSpaces, HoldsEveryCandidateOnce) {
  const auto& c = cases()[GetParam()];
  auto space = SearchSpace::from_file(testing::space_path(c.space));
  Supernet net(space);
  EXPECT_EQ(count(net->parameters()), analytic_costs(space.supernet()).params);
  // Architecture logits are not among the weights.
  std::size_t op_decisions = 0;
  for (const auto& d : space.decisions()) op_decisions += d.kind == DecisionKind::kOp;
  EXPECT_EQ(net->arch_parameters().size(), op_decisions);
}

TEST_P(SupernetSpaces, ExtractedNetworkMatchesSinglePath) {
  const auto& c = cases()[GetParam()];
  auto space = SearchSpace::from_file(testing::space_path(c.space), c.small);
  ::torch::manual_seed(3);
  Supernet net(space);
  // A little training-mode traffic so BN statistics are not at their initial values.
  Rng rng(4);
  auto input_of = [&] {
    std::vector<std::int64_t> in{4};
    const Shape& input = net->input_shape();
    in.insert(in.end(), input.begin(), input.end());
    return in;
  };
  {
    ::torch::NoGradGuard ng;
    for (int i = 0; i < 3; ++i) {
      net->set_architecture(net->sample(rng));
      net->forward(::torch::randn(input_of()));
    }
  }
  net->eval();
  ::torch::NoGradGuard no_grad;
  for (int i = 0; i < 4; ++i) {
    auto arch = net->sample(rng);
    net->set_architecture(arch);
    auto in = input_of();
    auto sub = net->extract(arch);
    EXPECT_FALSE(sub->is_training());
    EXPECT_EQ(sub->num_parameters(), analytic_costs(space.resolve(arch)).params);
    auto x = ::torch::randn(in);
    auto diff = (net->forward(x) - sub->forward(x)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-5) << c.space << " " << space.to_json(arch).dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Shipped, SupernetSpaces, ::testing::Range<std::size_t>(0, 5),
                         [](const auto& p) { return std::string(cases()[p.param].space); });

TEST(Supernet, MixedModeWithOneAllowedOptionEqualsSinglePath) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  ::torch::manual_seed(0);
  Supernet net(space);
  net->eval();
  auto arch = space.parse_architecture(
      "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|");
  for (std::size_t d = 0; d < arch.size(); ++d) {
    std::vector<bool> m(space.decisions()[d].options.size(), false);
    m[arch[d]] = true;
    net->set_mask(d, m);
  }
  ::torch::NoGradGuard no_grad;
  auto x = ::torch::randn({2, 3, 32, 32});
  net->set_architecture(arch);
  auto single = net->forward(x);
  net->set_mode(SupernetMode::kMixed);
  auto mixed = net->forward(x);
  EXPECT_LE((single - mixed).abs().max().item<double>(), 1e-5);
}

TEST(Supernet, MixedModeSendsGradientsToWeightsAndArchitectureParameters) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}});
  Supernet net(space, 7);
  net->set_mode(SupernetMode::kMixed);
  auto y = net->forward(::torch::randn({4, 3, 32, 32}));
  ::torch::nn::functional::cross_entropy(y, ::torch::tensor({0, 1, 2, 3})).backward();
  for (const auto& a : net->arch_parameters()) {
    ASSERT_TRUE(a.grad().defined());
    EXPECT_GT(a.grad().abs().sum().item<double>(), 0.0);
  }
  std::int64_t with_grad = 0;
  for (const auto& p : net->parameters()) with_grad += p.grad().defined();
  EXPECT_GT(with_grad, 0);
}

TEST(Supernet, MasksRestrictSamplingAndZeroTheWeights) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  Supernet net(space);
  net->set_mask(0, {false, true, false, true, false});
  Rng rng(1);
  for (int i = 0; i < 50; ++i) {
    auto a = net->sample(rng);
    EXPECT_TRUE(a[0] == 1 || a[0] == 3);
  }
  auto w = net->weights(0);
  EXPECT_EQ(w[0].item<float>(), 0.0F);
  EXPECT_NEAR(w.sum().item<float>(), 1.0F, 1e-6);
  EXPECT_THROW(net->set_mask(0, {false, false, false, false, false}), InvalidArgument);
  EXPECT_THROW(net->set_architecture(space.parse_architecture(
                   "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")),
               InvalidArgument);
}

TEST(Supernet, SameSeedSameArchitectureParameters) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  Supernet a(space, 11), b(space, 11), c(space, 12);
  EXPECT_TRUE(::torch::equal(a->alpha(0), b->alpha(0)));
  EXPECT_FALSE(::torch::equal(a->alpha(0), c->alpha(0)));
}

TEST(Supernet, CheckpointRestoresWeightsLogitsAndMasksOfTheSameSpaceOnly) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}});
  auto path = (std::filesystem::temp_directory_path() / "nasforge_supernet_ckpt.pt").string();
  ::torch::manual_seed(0);
  Supernet a(space, 1);
  a->set_mask(2, {true, false, true, true, true});
  a->save_checkpoint(path);
  ::torch::manual_seed(5);
  Supernet b(space, 2);
  b->load_checkpoint(path);
  EXPECT_TRUE(::torch::equal(a->alpha(0), b->alpha(0)));
  EXPECT_EQ(b->mask(2), a->mask(2));
  a->eval();
  b->eval();
  ::torch::NoGradGuard no_grad;
  auto x = ::torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(::torch::equal(a->forward(x), b->forward(x)));
  // Another parameterisation of the space is another space.
  Supernet other(SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "16"}}));
  try {
    other->load_checkpoint(path);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("fingerprint"), std::string::npos);
  }
  EXPECT_THROW(b->load_checkpoint(path + ".missing"), NotFound);
  std::filesystem::remove(path);
}

namespace {
// A small elastic chain: a stem, a stage of depth {1, 2} whose MBConv blocks choose kernel
// {3, 5, 7} and expansion {2, 4}, and a shared width choice.
const char* kElastic = R"({
  "params": {"input": [3, 12, 12], "w": {"choice": [8, 16]}},
  "network": [
    {"type": "conv_bn_act", "out": "$w", "kernel": 3, "act": "relu"},
    {"type": "stage", "depth": {"choice": [1, 2]},
     "block": {"type": "mbconv", "out": "$w", "act": "relu", "se": true,
               "kernel": {"choice": [3, 5, 7]}, "expansion": {"choice": [2, 4]}}},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": 3}
  ]
})";

Architecture elastic_arch(const SearchSpace& s, int kernel, int w, int depth) {
  nlohmann::json j;
  for (const auto& d : s.decisions()) {
    if (d.kind == DecisionKind::kDepth) j[d.name] = depth;
    else if (d.name == "w") j[d.name] = w;
    else if (d.path.find("kernel") != std::string::npos) j[d.name] = kernel;
  }
  return s.parse_architecture(j.dump());  // expansions left out: option 0 (2)
}
}  // namespace

TEST(SupernetElastic, SmallKernelTrainsTheCentreOfTheSharedKernelOnly) {
  auto space = SearchSpace::from_string(kElastic);
  ::torch::manual_seed(0);
  Supernet net(space);
  EXPECT_TRUE(net->elastic());
  net->set_architecture(elastic_arch(space, 3, 8, 1));
  net->forward(::torch::randn({2, 3, 12, 12})).sum().backward();
  // The first block's depthwise weight in the supernet: [64 = 16 * 4, 1, 7, 7].
  ::torch::Tensor dw;
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("dw.conv.weight") != std::string::npos && !dw.defined()) dw = p.value();
  }
  ASSERT_TRUE(dw.defined());
  ASSERT_EQ(dw.sizes(), (std::vector<std::int64_t>{64, 1, 7, 7}));
  auto g = dw.grad();
  ASSERT_TRUE(g.defined());
  // w = 8, expansion 2: 16 channels; kernel 3: the centre 3x3 of the 7x7.
  EXPECT_GT(g.narrow(0, 0, 16).narrow(2, 2, 3).narrow(3, 2, 3).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g.narrow(0, 16, 48).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g.narrow(2, 0, 2).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g.narrow(3, 5, 2).abs().sum().item<double>(), 0.0);
}

TEST(SupernetElastic, BatchNormStatisticsOfTheSliceAreUpdatedInPlace) {
  auto space = SearchSpace::from_string(kElastic);
  Supernet net(space);
  net->set_architecture(elastic_arch(space, 5, 8, 2));
  ::torch::Tensor mean;  // the stem's BN running mean, 16 channels in the supernet
  for (const auto& b : net->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos && !mean.defined()) mean = b.value();
  }
  ASSERT_TRUE(mean.defined());
  ASSERT_EQ(mean.size(0), 16);
  {
    ::torch::NoGradGuard ng;
    net->forward(::torch::randn({4, 3, 12, 12}) + 1.0);
  }
  EXPECT_GT(mean.narrow(0, 0, 8).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(mean.narrow(0, 8, 8).abs().sum().item<double>(), 0.0);
}

TEST(SupernetElastic, KernelTransformStartsAsTheCentreAndExtractsWhatItRuns) {
  auto space = SearchSpace::from_string(kElastic);
  ::torch::manual_seed(1);
  Supernet plain(space);
  ::torch::manual_seed(1);
  Supernet ofa(space, SupernetOptions{0, true});
  // A matrix per odd size below 7 (25x25, 9x9, 1x1) per block, two blocks.
  EXPECT_EQ(count(ofa->parameters()) - count(plain->parameters()), 2 * (25 * 25 + 9 * 9 + 1));
  plain->eval();
  ofa->eval();
  ::torch::NoGradGuard ng;
  auto arch = elastic_arch(space, 3, 16, 2);
  plain->set_architecture(arch);
  ofa->set_architecture(arch);
  auto x = ::torch::randn({2, 3, 12, 12});
  EXPECT_LE((plain->forward(x) - ofa->forward(x)).abs().max().item<double>(), 1e-6);
  for (auto& p : ofa->named_parameters()) {
    if (p.key().find("kernel_transform") != std::string::npos) p.value().add_(0.05 * ::torch::randn_like(p.value()));
  }
  auto y = ofa->forward(x);
  EXPECT_GT((plain->forward(x) - y).abs().max().item<double>(), 1e-4);
  EXPECT_LE((ofa->extract(arch)->forward(x) - y).abs().max().item<double>(), 1e-5);
}

TEST(SupernetElastic, MixedModeAndWrongResolutionsAreClearErrors) {
  auto space = SearchSpace::from_file(testing::space_path("mobilenetv3"),
                                      {{"resolution", R"({"choice": [32, 48]})"}, {"classes", "10"}});
  Supernet net(space);
  EXPECT_EQ(net->input_shape(), (Shape{3, 32, 32}));
  try {
    net->forward(::torch::randn({1, 3, 48, 48}));
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("[batch, 3, 32, 32]"), std::string::npos) << e.what();
  }
  net->set_mode(SupernetMode::kMixed);
  try {
    net->forward(::torch::randn({1, 3, 32, 32}));
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("value decision"), std::string::npos) << e.what();
  }
}

TEST(SupernetElastic, CheckpointRoundTrip) {
  auto space = SearchSpace::from_string(kElastic);
  ::torch::manual_seed(5);
  Supernet a(space, SupernetOptions{0, true});
  ::torch::manual_seed(6);
  Supernet b(space, SupernetOptions{0, true});
  const std::string path = (std::filesystem::temp_directory_path() / "nasforge_elastic_ckpt.pt").string();
  a->save_checkpoint(path);
  b->load_checkpoint(path);
  a->eval();
  b->eval();
  ::torch::NoGradGuard ng;
  auto arch = elastic_arch(space, 5, 16, 2);
  a->set_architecture(arch);
  b->set_architecture(arch);
  auto x = ::torch::randn({2, 3, 12, 12});
  EXPECT_EQ((a->forward(x) - b->forward(x)).abs().max().item<double>(), 0.0);
  // Loading it into a supernet without the kernel transformation would drop the matrices.
  Supernet plain(space);
  try {
    plain->load_checkpoint(path);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("with the kernel transformation"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace nasforge

namespace nasforge {

TEST(Supernet, CheckpointResumesTheOptimisersExactly) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[1,16,16]"}});
  auto x = ::torch::randn({8, 1, 16, 16});
  auto y = ::torch::randint(0, 10, {8});
  auto step = [&](Supernet& net, ::torch::optim::SGD& w, ::torch::optim::Adam& a) {
    w.zero_grad();
    a.zero_grad();
    ::torch::nn::functional::cross_entropy(net->forward(x), y).backward();
    w.step();
    a.step();
  };
  ::torch::manual_seed(0);
  Supernet a(space);
  a->set_mode(SupernetMode::kMixed);
  ::torch::optim::SGD wa(a->parameters(), ::torch::optim::SGDOptions(0.05).momentum(0.9));
  ::torch::optim::Adam aa(a->arch_parameters(), ::torch::optim::AdamOptions(3e-3));
  for (int i = 0; i < 2; ++i) step(a, wa, aa);
  const std::string path = (std::filesystem::temp_directory_path() / "nasforge_opt_ckpt.pt").string();
  a->save_checkpoint(path, &wa, &aa);

  ::torch::manual_seed(1);  // other initial weights: everything must come from the checkpoint
  Supernet b(space);
  b->set_mode(SupernetMode::kMixed);
  ::torch::optim::SGD wb(b->parameters(), ::torch::optim::SGDOptions(0.05).momentum(0.9));
  ::torch::optim::Adam ab(b->arch_parameters(), ::torch::optim::AdamOptions(3e-3));
  b->load_checkpoint(path, &wb, &ab);
  step(a, wa, aa);
  step(b, wb, ab);
  for (std::size_t i = 0; i < a->parameters().size(); ++i) {
    EXPECT_TRUE(::torch::equal(a->parameters()[i], b->parameters()[i])) << i;
  }
  for (std::size_t i = 0; i < a->arch_parameters().size(); ++i) {
    EXPECT_TRUE(::torch::equal(a->arch_parameters()[i], b->arch_parameters()[i])) << i;
  }
  // A checkpoint saved without optimiser state cannot restore one.
  a->save_checkpoint(path);
  try {
    b->load_checkpoint(path, &wb);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("no weight optimiser state"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace nasforge

#include "nasforge/search.h"
#include "nasforge/torch/supernet_evaluator.h"

namespace nasforge {

TEST(SupernetEvaluator, ScoresPathsWithRecalibratedStatisticsAndDrivesASearch) {
  for (const char* name : {"nb201", "mobilenetv3"}) {
    auto space = std::string(name) == "nb201"
                     ? SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[3,16,16]"}})
                     : SearchSpace::from_file(testing::space_path("mobilenetv3"), {{"resolution", "32"}, {"classes", "10"}});
    ::torch::manual_seed(0);
    Supernet super(space);
    const Shape in = super->input_shape();
    auto data = synthetic_data(300, in, 10, 1);
    std::vector<::torch::Tensor> calib{data.images.slice(0, 0, 100), data.images.slice(0, 100, 200)};
    TensorData valid{data.images.slice(0, 200), data.labels.slice(0, 200)};
    SupernetEvaluator eval(super, calib, valid, 50);
    Rng rng(1);
    auto arch = super->sample(rng);
    auto m1 = eval.evaluate(arch), m2 = eval.evaluate(arch);
    EXPECT_EQ(m1, m2) << name;  // recalibration from scratch: the same path scores the same
    EXPECT_GE(m1.at("supernet_acc"), 0.0);
    EXPECT_LE(m1.at("supernet_acc"), 100.0);
    EXPECT_GT(m1.at("supernet_loss"), 0.0);
    // The momentum is restored afterwards.
    EXPECT_EQ(super->set_bn_momentum(0.1), std::optional<double>(0.1));
    SearchOptions o;
    o.objectives = {parse_objective("supernet_acc:max")};
    o.budget.evaluations = 6;
    o.batch = 3;
    auto r = run_search(space, *make_strategy("random", space, {}, 2), eval, o);
    EXPECT_EQ(r.history.size(), 6U);
    for (const auto& t : r.history) EXPECT_FALSE(t.failed) << t.error;
  }
}

}  // namespace nasforge
