// Differentiable search: PC-DARTS with K = 1 is DARTS, the second-order gradient matches a
// brute-force derivative of the unrolled objective, discretisation follows the DARTS and NB201
// rules, the latency term moves the architecture, DARTS-PT decides edges by perturbation, and
// a search resumed from its checkpoint ends where an uninterrupted one does.
#include "nasforge/torch/darts.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <torch/torch.h>

#include "detail/files.h"
#include "nasforge/error.h"
#include "nasforge/torch/latency.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {
namespace fs = std::filesystem;

SearchSpace tiny_nb201() {
  return SearchSpace::from_file(testing::space_path("nb201"),
                                {{"C", "4"}, {"N", "1"}, {"input", "[1,8,8]"}, {"classes", "3"}});
}
SearchSpace tiny_darts() {
  return SearchSpace::from_file(testing::space_path("darts"),
                                {{"C", "4"}, {"N", "1"}, {"input", "[1,8,8]"}, {"classes", "3"}});
}

double max_diff(const ::torch::Tensor& a, const ::torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::vector<std::uint32_t> choices(const Architecture& a) {
  std::vector<std::uint32_t> c;
  for (std::size_t d = 0; d < a.size(); ++d) c.push_back(a[d]);
  return c;
}

}  // namespace

TEST(Darts, PartialChannelsWithKOneEqualsDarts) {
  for (const auto& space : {tiny_nb201(), tiny_darts()}) {
    SupernetOptions plain, pc;
    pc.partial_channels = 1;
    ::torch::manual_seed(5);
    Supernet a(space, plain);
    ::torch::manual_seed(5);
    Supernet b(space, pc);
    auto x = ::torch::randn({6, 1, 8, 8});
    auto ya = a->forward_mixed(x, a->mixing_weights());
    auto yb = b->forward_mixed(x, b->mixing_weights());
    EXPECT_LT(max_diff(ya, yb), 1e-6) << space.name();
    auto ga = ::torch::autograd::grad({ya.pow(2).sum()}, a->arch_parameters());
    auto gb = ::torch::autograd::grad({yb.pow(2).sum()}, b->arch_parameters());
    for (std::size_t i = 0; i < ga.size(); ++i) EXPECT_LT(max_diff(ga[i], gb[i]), 1e-5) << space.name();
  }
}

TEST(Darts, ChannelsLastComputesTheSameNumbers) {
  for (const auto& space : {tiny_nb201(), tiny_darts()}) {
    SupernetOptions nchw, nhwc;
    nhwc.channels_last = true;
    nhwc.partial_channels = nchw.partial_channels = 2;
    ::torch::manual_seed(5);
    Supernet a(space, nchw);
    ::torch::manual_seed(5);
    Supernet b(space, nhwc);
    auto x = ::torch::randn({6, 1, 8, 8});
    auto ya = a->forward_mixed(x, a->mixing_weights());
    auto yb = b->forward_mixed(x, b->mixing_weights());
    EXPECT_LT(max_diff(ya, yb), 1e-5) << space.name();
    auto ga = ::torch::autograd::grad({ya.pow(2).sum()}, a->arch_parameters());
    auto gb = ::torch::autograd::grad({yb.pow(2).sum()}, b->arch_parameters());
    for (std::size_t i = 0; i < ga.size(); ++i) EXPECT_LT(max_diff(ga[i], gb[i]), 1e-4) << space.name();
  }
}

TEST(Darts, PartialChannelsShrinkTheEdgesAndRunEveryMode) {
  auto space = tiny_darts();
  SupernetOptions pc;
  pc.partial_channels = 2;
  pc.edge_normalization = true;
  Supernet full(space), part(space, pc);
  std::int64_t nf = 0, np = 0;
  for (const auto& p : full->parameters()) nf += p.numel();
  for (const auto& p : part->parameters()) np += p.numel();
  EXPECT_LT(np, nf / 2);
  part->set_mode(SupernetMode::kMixed);
  auto y = part->forward(::torch::randn({4, 1, 8, 8}));
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{4, 3}));
  part->set_mode(SupernetMode::kSinglePath);
  Rng rng(1);
  part->set_architecture(space.sample(rng));
  EXPECT_EQ(part->forward(::torch::randn({4, 1, 8, 8})).size(1), 3);
  EXPECT_THROW(part->extract(part->architecture()), InvalidArgument);
  // Edge normalisation: one beta per node with >= 2 incoming edges, per cell type.
  EXPECT_EQ(part->betas().size(), 8U);  // 4 nodes x (normal, reduce)
  EXPECT_EQ(part->arch_parameters().size(), 28U + 8U);
  SupernetOptions odd;
  odd.partial_channels = 3;  // 4 channels are not divisible by 3
  EXPECT_THROW(Supernet(space, odd), InvalidArgument);
}

TEST(Darts, EdgeNormalisationScalesTheOpWeights) {
  auto space = tiny_nb201();
  SupernetOptions o;
  o.edge_normalization = true;
  Supernet net(space, o);
  ASSERT_EQ(net->betas().size(), 2U);  // node 2 (2 edges) and node 3 (3 edges); node 1 has one
  auto w = net->mixing_weights();
  double total = 0;
  for (std::size_t d = 1; d < 3; ++d) total += w[d].sum().item<double>();  // the edges into node 2
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_NEAR(w[0].sum().item<double>(), 1.0, 1e-6);  // node 1's single edge
  EXPECT_EQ(net->beta_of(0).first, -1);
}

class SecondOrder : public ::testing::TestWithParam<bool> {};

// An NB201-shaped cell whose ops are smooth (tanh, swish, average pooling): the unrolled
// objective is then differentiable everywhere, so a central difference is a fair reference
// (with ReLU, a perturbation that crosses a kink spoils the brute-force derivative itself).
constexpr const char* kSmoothCell = R"({
  "name": "smooth_cell",
  "params": {"input": [1, 8, 8], "classes": 3},
  "ops": {"none": {"type": "zero"}, "skip": {"type": "identity"},
          "c1": {"type": "conv_bn_act", "kernel": 1, "act": "tanh"},
          "c3": {"type": "conv_bn_act", "kernel": 3, "act": "swish"},
          "pool": {"type": "avg_pool", "kernel": 3}},
  "network": [
    {"type": "conv_bn_act", "out": 4, "kernel": 3, "act": "tanh"},
    {"type": "cell", "name": "cell", "nodes": 3, "ops": ["none", "skip", "c1", "c3", "pool"]},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": "$classes"}
  ]
})";

TEST_P(SecondOrder, GradientMatchesTheUnrolledObjective) {
  auto space = SearchSpace::from_string(kSmoothCell);
  DartsOptions o = darts_preset("darts2");
  o.seed = 3;
  o.nesterov = GetParam();  // NB201's DARTS configuration uses Nesterov
  DartsSearch s(space, o);
  s.supernet()->to(::torch::kDouble);
  ::torch::manual_seed(11);
  auto xt = ::torch::randn({16, 1, 8, 8}, ::torch::kDouble), xv = ::torch::randn({16, 1, 8, 8}, ::torch::kDouble);
  auto yt = ::torch::randint(0, 3, {16}, ::torch::kLong), yv = ::torch::randint(0, 3, {16}, ::torch::kLong);
  // Train a little first, so that the momentum buffer and the architecture are not trivial.
  for (int i = 0; i < 5; ++i) {
    s.weight_step(xt, yt, 0.05);
    s.arch_step(xt, yt, xv, yv, 0.05);
  }
  const double lr = 0.5;  // a large virtual step, so that the second-order term matters
  auto g = s.arch_gradient(xt, yt, xv, yv, lr);
  auto alpha = s.supernet()->arch_parameters();
  double err2 = 0, ref2 = 0, first2 = 0;
  const double h = 1e-5;
  for (std::size_t k = 0; k < alpha.size(); ++k) {
    for (std::int64_t j = 0; j < alpha[k].size(0); ++j) {
      double orig = 0;
      {
        ::torch::NoGradGuard no_grad;
        orig = alpha[k][j].item<double>();
        alpha[k][j].fill_(orig + h);
      }
      const double fp = s.unrolled_validation_loss(xt, yt, xv, yv, lr);
      {
        ::torch::NoGradGuard no_grad;
        alpha[k][j].fill_(orig - h);
      }
      const double fm = s.unrolled_validation_loss(xt, yt, xv, yv, lr);
      {
        ::torch::NoGradGuard no_grad;
        alpha[k][j].fill_(orig);
      }
      const double fd = (fp - fm) / (2 * h);
      const double got = g[k][j].item<double>();
      err2 += (got - fd) * (got - fd);
      ref2 += fd * fd;
    }
  }
  // The first-order gradient (L_val at w) is clearly different: the check can fail.
  ::torch::Tensor lv = ::torch::nn::functional::cross_entropy(s.supernet()->forward_mixed(xv, s.current_weights()), yv);
  auto g1 = ::torch::autograd::grad({lv}, alpha);
  for (std::size_t k = 0; k < alpha.size(); ++k) first2 += (g1[k] - g[k]).pow(2).sum().item<double>();
  EXPECT_LT(std::sqrt(err2 / ref2), 1e-3) << "relative error " << std::sqrt(err2 / ref2);
  std::printf("second-order gradient (nesterov %d): relative error %.2e against the brute-force derivative\n",
              static_cast<int>(GetParam()), std::sqrt(err2 / ref2));
}
INSTANTIATE_TEST_SUITE_P(Darts, SecondOrder, ::testing::Bool());

TEST(Darts, EdgeNormalisationScalesThePartialChannelBypassToo) {
  auto space = tiny_nb201();
  SupernetOptions o;
  o.partial_channels = 2;
  o.edge_normalization = true;
  Supernet net(space, o);
  ASSERT_EQ(net->beta_of(2).first, 0);  // edge 2<-1 is the second edge into node 2
  {
    ::torch::NoGradGuard no_grad;
    net->betas()[0].copy_(::torch::tensor({30.0F, -30.0F}));  // node 2 takes edge 2<-0 only
  }
  auto x = ::torch::randn({4, 1, 8, 8});
  auto w = net->mixing_weights();
  auto full = net->forward_mixed(x, w);
  w[2] = ::torch::zeros_like(w[2]);  // the edge removed altogether, bypass included
  auto without = net->forward_mixed(x, w);
  EXPECT_LT(max_diff(full, without), 1e-5);
}

TEST(Darts, DiscretisationFollowsEachSpacesRule) {
  {  // NB201: argmax over all ops, none included
    DartsSearch s(tiny_nb201(), darts_preset("darts"));
    auto alpha = s.supernet()->arch_parameters();
    ::torch::NoGradGuard no_grad;
    for (std::size_t d = 0; d < 6; ++d) alpha[d].zero_();
    alpha[0][0].fill_(3.0);  // none wins on edge 0
    alpha[1][3].fill_(3.0);  // nor_conv_3x3 on edge 1
    for (std::size_t d = 2; d < 6; ++d) alpha[d][1].fill_(3.0);  // skip elsewhere
    EXPECT_EQ(tiny_nb201().to_native(s.derive()),
              "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|");
  }
  {  // DARTS: top-2 incoming edges by the best non-none weight, op = best non-none
    auto space = tiny_darts();
    DartsSearch s(space, darts_preset("darts"));
    auto alpha = s.supernet()->arch_parameters();
    const auto& ds = space.decisions();
    ::torch::NoGradGuard no_grad;
    for (std::size_t k = 0; k < alpha.size(); ++k) {
      alpha[k].zero_();
      alpha[k][0].fill_(5.0);  // none dominates everywhere and must never be chosen
    }
    // normal node 1 (edges 2, 3, 4 from sources 0, 1, 2): make sources 0 and 2 the strongest.
    std::map<std::string, std::size_t> op_index;
    std::size_t k = 0;
    for (std::size_t d = 0; d < ds.size(); ++d) {
      if (ds[d].kind == DecisionKind::kOp) op_index[ds[d].name] = k++;
    }
    alpha[op_index["normal.edge[2]"]][4].fill_(4.0);  // sep_conv_3x3
    alpha[op_index["normal.edge[4]"]][6].fill_(4.5);  // dil_conv_3x3
    alpha[op_index["normal.edge[3]"]][1].fill_(1.0);  // max_pool, weaker
    const Architecture a = s.derive();
    auto named = space.to_json(a);
    EXPECT_EQ(named["normal.node[1].inputs"], "0+2") << named.dump();
    EXPECT_EQ(named["normal.edge[2]"], "sep_conv_3x3") << named.dump();
    EXPECT_EQ(named["normal.edge[4]"], "dil_conv_3x3") << named.dump();
    const auto active = space.active(a);
    for (std::size_t d = 0; d < ds.size(); ++d) {
      if (active[d] && ds[d].kind == DecisionKind::kOp) {
        EXPECT_NE(a[d], 0U) << ds[d].name << " is none";
      }
    }
  }
}

TEST(Darts, LatencyWeightLowersTheExpectedLatency) {
  auto space = tiny_nb201();
  ProfileOptions po;
  po.min_reps = 3;
  po.min_ms = 1;
  po.warmup = 1;
  LatencyTable table;
  profile_layers(table, {space.supernet()}, po);
  auto run = [&](double lambda, double budget) {
    DartsOptions o = darts_preset("darts");
    o.arch_lr = 0.05;
    o.latency = table;
    o.latency_weight = lambda;
    o.latency_budget_ms = budget;
    DartsSearch s(space, o);
    ::torch::manual_seed(2);
    auto x = ::torch::randn({16, 1, 8, 8});
    auto y = ::torch::randint(0, 3, {16}, ::torch::kLong);
    const double before = s.expected_latency_ms();
    for (int i = 0; i < 30; ++i) s.arch_step(x, y, x, y, 0.025);
    return std::pair{before, s.expected_latency_ms()};
  };
  auto [b0, free] = run(0.0, 0.0);
  auto [b1, penalised] = run(50.0, 0.0);
  EXPECT_DOUBLE_EQ(b0, b1);  // same seed, same start
  EXPECT_LT(penalised, free * 0.9);
  // Target mode: a budget above every architecture never penalises, so it matches lambda = 0.
  EXPECT_NEAR(run(50.0, 1e6).second, free, 1e-9);
}

TEST(Darts, PerturbationPicksTheOpWhoseRemovalHurtsMost) {
  auto space = tiny_nb201();
  DartsOptions o = darts_preset("darts-pt");
  DartsSearch s(space, o);
  TensorData valid = synthetic_data(64, {1, 8, 8}, 3, 4);
  for (int i = 0; i < 10; ++i) s.weight_step(valid.images.narrow(0, 0, 32), valid.labels.narrow(0, 0, 32), 0.05);
  Projection p = s.project_edge(3, valid);
  ASSERT_EQ(p.score.size(), 5U);
  for (double v : p.score) EXPECT_LE(p.score[p.chosen], v);
  EXPECT_EQ(s.decided()[3], static_cast<std::int64_t>(p.chosen));
  EXPECT_EQ(choices(s.derive())[3], p.chosen);
  auto w = s.current_weights();
  EXPECT_DOUBLE_EQ(w[3][p.chosen].item<double>(), 1.0);  // a decided edge is one-hot
  // Topology selection keeps two inputs per node (DARTS space).
  auto dspace = tiny_darts();
  DartsSearch t(dspace, o);
  std::size_t idec = 0;
  for (std::size_t d = 0; d < dspace.decisions().size(); ++d) {
    if (dspace.decisions()[d].name == "normal.node[2].inputs") idec = d;
  }
  const auto opt = t.project_topology(idec, valid);
  EXPECT_EQ(choices(t.derive())[idec], opt);
}

TEST(Darts, ResumedSearchEndsWhereAnUninterruptedOneDoes) {
  auto space = tiny_nb201();
  TensorData data = synthetic_data(256, {1, 8, 8}, 3, 7);
  for (const char* algo : {"darts", "darts-pt", "pc-darts"}) {
    DartsOptions o = darts_preset(algo);
    o.epochs = 3;
    o.batch = 32;
    o.steps_per_epoch = 3;
    o.warmup_epochs = std::string(algo) == "pc-darts" ? 1 : 0;
    o.supernet.partial_channels = std::string(algo) == "pc-darts" ? 2 : 0;
    o.pt_interval = 1;
    o.pt_eval_samples = 32;
    o.seed = 9;
    const fs::path a = fs::temp_directory_path() / fmt::format("nasforge_darts_a_{}", algo);
    const fs::path b = fs::temp_directory_path() / fmt::format("nasforge_darts_b_{}", algo);
    detail::remove_tree(a);
    detail::remove_tree(b);
    o.out_dir = a.string();
    DartsResult full = run_darts(space, data, o);
    o.out_dir = b.string();
    o.on_epoch = [](const DartsEpoch& e) { return e.epoch == 2; };  // "killed" after epoch 2
    DartsResult part = run_darts(space, data, o);
    ASSERT_EQ(part.epochs.size(), 2U);
    o.on_epoch = {};
    o.resume = true;
    DartsResult resumed = run_darts(space, data, o);
    EXPECT_TRUE(resumed.resumed);
    ASSERT_EQ(resumed.epochs.size(), full.epochs.size()) << algo;
    EXPECT_EQ(resumed.derived, full.derived) << algo;
    for (std::size_t e = 0; e < full.epochs.size(); ++e) {
      EXPECT_EQ(resumed.epochs[e].weights, full.epochs[e].weights) << algo << " epoch " << e;
      EXPECT_EQ(resumed.epochs[e].train_loss, full.epochs[e].train_loss) << algo << " epoch " << e;
    }
    EXPECT_EQ(resumed.projections.size(), full.projections.size());
    if (std::string(algo) == "darts-pt") {
      EXPECT_EQ(full.projections.size(), 6U);
    }
    EXPECT_TRUE(fs::exists(a / "result.json"));
    EXPECT_TRUE(fs::exists(a / "weights.svg"));
    // Other settings are refused, not silently mixed.
    o.seed = 10;
    EXPECT_THROW(run_darts(space, data, o), InvalidArgument);
    detail::remove_tree(a);
    detail::remove_tree(b);
  }
}

TEST(Darts, EveryAlgorithmRunsOnTheDartsSpace) {
  auto space = tiny_darts();
  TensorData data = synthetic_data(128, {1, 8, 8}, 3, 3);
  for (const char* algo : {"darts", "darts2", "pc-darts", "darts-pt"}) {
    DartsOptions o = darts_preset(algo);
    o.epochs = 1;
    o.batch = 16;
    o.steps_per_epoch = 2;
    o.warmup_epochs = 0;
    o.supernet.partial_channels = std::string(algo) == "pc-darts" ? 2 : 0;
    o.pt_interval = 1;
    o.pt_eval_samples = 16;
    DartsResult r = run_darts(space, data, o);
    const auto active = space.active(r.derived);
    const auto& ds = space.decisions();
    for (std::size_t d = 0; d < ds.size(); ++d) {  // the DARTS rule: no `none` on a kept edge
      if (active[d] && ds[d].kind == DecisionKind::kOp) {
        EXPECT_NE(r.derived[d], 0U) << algo << " " << ds[d].name;
      }
    }
    if (std::string(algo) == "darts-pt") {  // 14 edge steps + 3 topology steps, both cell types each
      EXPECT_EQ(r.projections.size(), 2U * (14 + 3)) << algo;
      EXPECT_EQ(r.epochs.size(), 1U + 16U + 1U) << algo;
    }
  }
}

TEST(Darts, BadInputIsAClearError) {
  auto space = tiny_nb201();
  DartsOptions o = darts_preset("darts");
  o.algorithm = "enas";
  EXPECT_THROW(DartsSearch(space, o), InvalidArgument);
  EXPECT_THROW(darts_preset("enas"), InvalidArgument);
  o = darts_preset("darts");
  TensorData wrong = synthetic_data(64, {3, 8, 8}, 3, 1);
  try {
    run_darts(space, wrong, o);
    FAIL() << "expected a shape error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expects images"), std::string::npos) << e.what();
  }
  auto elastic = SearchSpace::from_file(testing::space_path("mobilenetv3"));
  EXPECT_THROW(DartsSearch(elastic, o), InvalidArgument);
}

}  // namespace nasforge
