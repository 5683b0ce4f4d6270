// Ridge regression and architecture features.
#include "nasforge/predictor.h"

#include <cmath>

#include <gtest/gtest.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/evaluator.h"
#include "nasforge/random.h"
#include "testing/spaces.h"

namespace nasforge {

TEST(Ridge, RecoversALinearFunctionAndShrinksWithLambda) {
  Rng rng(1);
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> r{static_cast<float>(rng.uniform01()), static_cast<float>(rng.uniform01()), static_cast<float>(rng.uniform01())};
    y.push_back(3.0 * r[0] - 2.0 * r[1] + 0.5 * r[2] + 7.0);
    x.push_back(r);
  }
  RidgeRegression exact(0.0), shrunk(1e4);
  exact.fit(x, y);
  shrunk.fit(x, y);
  EXPECT_NEAR(exact.predict({1, 0, 0}), 10.0, 1e-6);
  EXPECT_NEAR(exact.predict({0, 1, 1}), 5.5, 1e-6);
  // A huge penalty predicts (nearly) the mean everywhere.
  double mean = 0;
  for (double v : y) mean += v / static_cast<double>(y.size());
  EXPECT_NEAR(shrunk.predict({1, 0, 0}), mean, 0.2);
  EXPECT_THROW(RidgeRegression().predict(std::vector<float>{1, 0, 0}), InvalidArgument);
  EXPECT_THROW(exact.predict(std::vector<float>{1, 0}), InvalidArgument);
  EXPECT_THROW(exact.fit({{1, 2}, {1}}, {1, 2}), InvalidArgument);
  EXPECT_THROW(RidgeRegression(-1), InvalidArgument);
}

TEST(Ridge, PairwiseFeaturesCaptureAnInteraction) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  const auto one = architecture_features(space, space.at(0), false);
  const auto two = architecture_features(space, space.at(0), true);
  EXPECT_EQ(one.size(), 30U);
  EXPECT_EQ(two.size(), 30U + 15U * 25U);
  // y = 1 when edges 0 and 1 are both `none`, else 0: invisible to one-hot, exact with pairs.
  std::vector<std::vector<float>> x1, x2;
  std::vector<double> y;
  space.for_each([&](const Architecture& a) {
    x1.push_back(architecture_features(space, a, false));
    x2.push_back(architecture_features(space, a, true));
    y.push_back(a[0] == 0 && a[1] == 0 ? 1.0 : 0.0);
  });
  RidgeRegression lin(1e-6), pair(1e-6);
  lin.fit(x1, y);
  pair.fit(x2, y);
  double err1 = 0, err2 = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    err1 = std::max(err1, std::abs(lin.predict(x1[i]) - y[i]));
    err2 = std::max(err2, std::abs(pair.predict(x2[i]) - y[i]));
  }
  EXPECT_GT(err1, 0.5);
  EXPECT_LT(err2, 1e-4);
}

}  // namespace nasforge

namespace nasforge {

TEST(Gbdt, LearnsANonLinearFunctionDeterministicallyAndRoundTripsThroughJson) {
  Rng rng(3);
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  for (int i = 0; i < 400; ++i) {
    float a = static_cast<float>(rng.uniform01()), b = static_cast<float>(rng.uniform01());
    x.push_back({a, b});
    y.push_back((a > 0.5F ? 3.0 : 0.0) + (b > 0.3F && a < 0.5F ? 1.0 : 0.0));  // steps and an interaction
  }
  auto g1 = make_predictor("gbdt", {{"rounds", 100}, {"depth", 3}, {"seed", 7}});
  auto g2 = make_predictor("gbdt", {{"rounds", 100}, {"depth", 3}, {"seed", 7}});
  g1->fit(x, y);
  g2->fit(x, y);
  auto p1 = g1->predict_batch(x), p2 = g2->predict_batch(x);
  EXPECT_EQ(p1, p2);  // same seed, same model
  auto q = prediction_quality(p1, y);
  EXPECT_GT(q.spearman, 0.85);  // y has three values: ties cap the rank correlation
  EXPECT_LT(q.rmse, 0.2);
  EXPECT_NEAR(g1->predict({0.9F, 0.1F}), 3.0, 0.2);
  EXPECT_NEAR(g1->predict({0.1F, 0.9F}), 1.0, 0.2);
  auto restored = make_predictor_from_json(nlohmann::json::parse(g1->to_json().dump()));
  EXPECT_EQ(restored->name(), "gbdt");
  EXPECT_EQ(restored->predict_batch(x), p1);
  EXPECT_THROW(g1->predict(std::vector<float>{0.5F}), InvalidArgument);
  EXPECT_THROW(make_predictor("gbdt")->predict(std::vector<float>{1.0F}), InvalidArgument);
  EXPECT_THROW(make_predictor("gbdt", {{"trees", 3}}), InvalidArgument);
  EXPECT_THROW(make_predictor("svr"), NotFound);
}

TEST(Ridge, DualSolutionForMoreFeaturesThanRowsEqualsThePrimal) {
  Rng rng(5);
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  for (int i = 0; i < 12; ++i) {
    std::vector<float> r;
    for (int j = 0; j < 30; ++j) r.push_back(static_cast<float>(rng.uniform01()));
    y.push_back(r[0] - 2 * r[3] + rng.uniform01());
    x.push_back(r);
  }
  RidgeRegression dual(0.7);
  dual.fit(x, y);  // p = 30 > n = 12: the n x n system
  // The same minimiser through the primal path: the data three times over with 3λ (p <= n).
  std::vector<std::vector<float>> x3;
  std::vector<double> y3;
  for (int k = 0; k < 3; ++k) x3.insert(x3.end(), x.begin(), x.end()), y3.insert(y3.end(), y.begin(), y.end());
  RidgeRegression primal(2.1);
  primal.fit(x3, y3);  // p = 30 <= n = 36
  for (const auto& row : x) EXPECT_NEAR(dual.predict(row), primal.predict(row), 1e-6);
}

TEST(Ridge, HuberLossResistsOutliersAndAgreesWithSquaredErrorWithoutThem) {
  Rng rng(7);
  std::vector<std::vector<float>> x;
  std::vector<double> clean, dirty;
  for (int i = 0; i < 100; ++i) {
    std::vector<float> r{static_cast<float>(rng.uniform01()), static_cast<float>(rng.uniform01()), static_cast<float>(rng.uniform01())};
    const double noise = 0.05 * (rng.uniform01() - 0.5);
    clean.push_back(3.0 * r[0] - 2.0 * r[1] + 0.5 * r[2] + 7.0 + noise);
    dirty.push_back(clean.back() + (i % 10 == 3 ? 20.0 : 0.0));  // every tenth reading far off
    x.push_back(r);
  }
  auto error = [&](const RidgeRegression& m) {  // the worst error over the unit cube's corners
    double worst = 0;
    for (int c = 0; c < 8; ++c) {
      std::vector<float> v{float(c & 1), float((c >> 1) & 1), float((c >> 2) & 1)};
      worst = std::max(worst, std::abs(m.predict(v) - (3.0 * v[0] - 2.0 * v[1] + 0.5 * v[2] + 7.0)));
    }
    return worst;
  };
  RidgeRegression squared(1e-3), huber(1e-3);
  huber.with_huber_loss();
  squared.fit(x, dirty);
  huber.fit(x, dirty);
  EXPECT_GT(error(squared), 1.0);  // the outliers drag the squared fit
  EXPECT_LT(error(huber), 0.1);
  EXPECT_GT(huber.irls_iterations(), 1);
  EXPECT_LE(huber.irls_iterations(), RidgeRegression::kMaxIrlsIterations);
  // Without outliers the two agree closely, and with leave-one-out lambda too.
  auto auto_huber = RidgeRegression::leave_one_out().with_huber_loss();
  auto auto_squared = RidgeRegression::leave_one_out();
  auto_huber.fit(x, clean);
  auto_squared.fit(x, clean);
  EXPECT_LT(error(auto_huber), 0.03);
  EXPECT_NEAR(auto_huber.predict({0.5F, 0.5F, 0.5F}), auto_squared.predict({0.5F, 0.5F, 0.5F}), 0.01);
  // An exact fit has no outliers: no reweighting at all.
  std::vector<double> exact;
  for (const auto& r : x) exact.push_back(3.0 * r[0] - 2.0 * r[1] + 0.5 * r[2] + 7.0);
  RidgeRegression exact_huber(0.0);
  exact_huber.with_huber_loss().fit(x, exact);
  EXPECT_EQ(exact_huber.irls_iterations(), 0);
  EXPECT_NEAR(exact_huber.predict({1, 0, 0}), 10.0, 1e-6);
  // Saved and restored with its loss; made by name; bad options are refused.
  auto back = make_predictor_from_json(nlohmann::json::parse(huber.to_json().dump()));
  EXPECT_EQ(back->predict({0.2F, 0.4F, 0.6F}), huber.predict({0.2F, 0.4F, 0.6F}));
  EXPECT_EQ(dynamic_cast<RidgeRegression&>(*back).huber_k(), RidgeRegression::kHuberK);
  EXPECT_EQ(dynamic_cast<RidgeRegression&>(*back).irls_iterations(), huber.irls_iterations());
  auto auto_back = RidgeRegression::from_json(nlohmann::json::parse(auto_huber.to_json().dump()));
  EXPECT_TRUE(auto_back.auto_lambda());
  EXPECT_EQ(auto_back.lambda(), auto_huber.lambda());
  EXPECT_EQ(auto_back.loo_mse(), auto_huber.loo_mse());
  auto no_k = huber.to_json();
  no_k.erase("huber_k");
  EXPECT_THROW(RidgeRegression::from_json(no_k), InvalidArgument);
  auto k_without_huber = squared.to_json();
  k_without_huber["huber_k"] = 2.0;
  EXPECT_THROW(RidgeRegression::from_json(k_without_huber), InvalidArgument);
  EXPECT_THROW(RidgeRegression::from_json({{"lambda", 1.0}}), InvalidArgument);  // no coefficients
  auto named = make_predictor("ridge", {{"lambda", "auto"}, {"loss", "huber"}, {"huber_k", 2.0}});
  EXPECT_EQ(dynamic_cast<RidgeRegression&>(*named).huber_k(), 2.0);
  EXPECT_EQ(dynamic_cast<RidgeRegression&>(*make_predictor("ridge", {{"loss", "squared"}})).huber_k(), 0.0);
  EXPECT_THROW(make_predictor("ridge", {{"loss", "l1"}}), InvalidArgument);
  EXPECT_THROW(make_predictor("ridge", {{"huber_k", 2.0}}), InvalidArgument);
  EXPECT_THROW(make_predictor("ridge", {{"loss", "huber"}, {"huber_k", 0.0}}), InvalidArgument);
  auto saved = huber.to_json();
  saved["loss"] = "l2";
  EXPECT_THROW(make_predictor_from_json(saved), InvalidArgument);
}

TEST(Ridge, JsonRoundTrip) {
  RidgeRegression r(0.5);
  r.fit({{0, 1}, {1, 0}, {1, 1}, {0, 0}}, {1, 2, 3, 0});
  auto back = make_predictor_from_json(nlohmann::json::parse(r.to_json().dump()));
  EXPECT_EQ(back->predict({1.0F, 1.0F}), r.predict({1.0F, 1.0F}));
  EXPECT_THROW(make_predictor_from_json({{"model", "forest"}}), InvalidArgument);
}

TEST(PredictionQuality, HandExample) {
  auto q = prediction_quality({1, 2, 3, 4}, {1, 2, 3, 5});
  EXPECT_DOUBLE_EQ(q.spearman, 1.0);
  EXPECT_DOUBLE_EQ(q.kendall, 1.0);
  EXPECT_DOUBLE_EQ(q.rmse, 0.5);
  EXPECT_DOUBLE_EQ(q.within_10pct, 0.75);  // 4 vs 5 is 20% off
  auto r = prediction_quality({4, 3, 2, 1}, {1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(r.spearman, -1.0);
  EXPECT_DOUBLE_EQ(r.kendall, -1.0);
  EXPECT_THROW(prediction_quality({1}, {1}), InvalidArgument);
}

TEST(Features, StatisticsAreLogParamsAndMacs) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  auto a = space.from_native("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|");
  auto f = architecture_features(space, a, FeatureOptions{false, true});
  ASSERT_EQ(f.size(), 32U);
  EXPECT_NEAR(f[30], std::log1p(615386.0), 1e-3);
  EXPECT_NEAR(f[31], std::log1p(86426240.0), 1e-3);
}

namespace {
// Leave-one-out mean squared error of ridge(lambda), by refitting n times.
double brute_force_loo(const std::vector<std::vector<float>>& x, const std::vector<double>& y, double lambda) {
  double sum = 0;
  for (std::size_t out = 0; out < x.size(); ++out) {
    std::vector<std::vector<float>> xt;
    std::vector<double> yt;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (i != out) xt.push_back(x[i]), yt.push_back(y[i]);
    }
    RidgeRegression r(lambda);
    r.fit(xt, yt);
    sum += std::pow(r.predict(x[out]) - y[out], 2);
  }
  return sum / static_cast<double>(x.size());
}
}  // namespace

TEST(Ridge, LeaveOneOutLambdaIsTheGridValueWithTheLeastExactLooError) {
  for (int features : {6, 40}) {  // the primal (p <= n) and the dual (p > n) paths
    Rng rng(static_cast<std::uint64_t>(features));
    std::vector<std::vector<float>> x;
    std::vector<double> y;
    for (int i = 0; i < 25; ++i) {
      std::vector<float> r;
      for (int j = 0; j < features; ++j) r.push_back(static_cast<float>(rng.uniform01()));
      y.push_back(2 * r[0] - r[1] + 0.3 * rng.uniform01());
      x.push_back(r);
    }
    auto model = RidgeRegression::leave_one_out();
    model.fit(x, y);
    ASSERT_TRUE(model.auto_lambda());
    // The closed form equals n refits at the chosen lambda, and no grid value does better.
    EXPECT_NEAR(model.loo_mse(), brute_force_loo(x, y, model.lambda()), 1e-9) << features << " features";
    for (double l : RidgeRegression::lambda_grid()) EXPECT_GE(brute_force_loo(x, y, l), model.loo_mse() - 1e-9) << l;
    // The chosen lambda's model is the fixed-lambda model.
    RidgeRegression fixed(model.lambda());
    fixed.fit(x, y);
    EXPECT_NEAR(model.predict(x[3]), fixed.predict(x[3]), 1e-9);
    // Saved and restored, and made by name.
    auto back = make_predictor_from_json(nlohmann::json::parse(model.to_json().dump()));
    EXPECT_EQ(back->predict(x[3]), model.predict(x[3]));
  }
  auto named = make_predictor("ridge", {{"lambda", "auto"}});
  EXPECT_TRUE(dynamic_cast<RidgeRegression&>(*named).auto_lambda());
  EXPECT_THROW(make_predictor("ridge", {{"lambda", "best"}}), InvalidArgument);
}

TEST(Ridge, WeightedFitAndItsLeaveOneOutAgreeWithRefits) {
  for (int features : {6, 40}) {  // primal and dual
    Rng rng(static_cast<std::uint64_t>(100 + features));
    std::vector<std::vector<float>> x;
    std::vector<double> y, w;
    for (int i = 0; i < 25; ++i) {
      std::vector<float> r;
      for (int j = 0; j < features; ++j) r.push_back(static_cast<float>(rng.uniform01()));
      y.push_back(2 * r[0] - r[1] + 0.3 * rng.uniform01());
      w.push_back(0.2 + 2 * rng.uniform01());
      x.push_back(r);
    }
    // The closed-form weighted leave-one-out error equals 25 weighted refits.
    auto model = RidgeRegression::leave_one_out();
    model.fit(x, y, w);
    double sum = 0, wsum = 0;
    for (std::size_t out = 0; out < x.size(); ++out) {
      std::vector<std::vector<float>> xt;
      std::vector<double> yt, wt;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (i != out) xt.push_back(x[i]), yt.push_back(y[i]), wt.push_back(w[i]);
      }
      RidgeRegression r(model.lambda());
      r.fit(xt, yt, wt);
      sum += w[out] * std::pow(r.predict(x[out]) - y[out], 2), wsum += w[out];
    }
    EXPECT_NEAR(model.loo_mse(), sum / wsum, 1e-9) << features << " features";
  }
  // Weight 2 is the row twice; weight 0 leaves it out.
  std::vector<std::vector<float>> x{{0, 1}, {1, 0}, {1, 1}, {0, 0}, {2, 1}};
  std::vector<double> y{1, 2, 3.5, 0.2, 4};
  RidgeRegression weighted(0.3), doubled(0.3), dropped(0.3), without(0.3);
  weighted.fit(x, y, {1, 2, 1, 1, 0});
  doubled.fit({x[0], x[1], x[1], x[2], x[3]}, {y[0], y[1], y[1], y[2], y[3]});
  EXPECT_NEAR(weighted.predict({0.5F, 0.5F}), doubled.predict({0.5F, 0.5F}), 1e-12);
  dropped.fit(x, y, {1, 1, 1, 1, 0});
  without.fit({x[0], x[1], x[2], x[3]}, {y[0], y[1], y[2], y[3]});
  EXPECT_NEAR(dropped.predict({2, 2}), without.predict({2, 2}), 1e-12);
  EXPECT_THROW(weighted.fit(x, y, {1, 1, 1}), InvalidArgument);
  EXPECT_THROW(weighted.fit(x, y, {1, -1, 1, 1, 1}), InvalidArgument);
  EXPECT_THROW(weighted.fit(x, y, {0, 0, 0, 0, 0}), InvalidArgument);
}

TEST(Features, StageCountsAddUpTheBlocksOfAStageByOption) {
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  // FBNet: stages of 1, 4, 4, 4, 4, 4, 1 blocks, 9 options each: 7 groups x 9 counts.
  auto a = fbnet.from_native("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5");
  FeatureOptions counts_only;
  counts_only.onehot = false, counts_only.stage_counts = true;
  auto f = architecture_features(fbnet, a, counts_only);
  ASSERT_EQ(f.size(), 63U);
  // Stage 2 (blocks 1-4): options 8, 1, 8, 4 -> two `skip`, one k3_e1_g2, one k5_e1.
  EXPECT_EQ(f[9 + 8], 2.0F);
  EXPECT_EQ(f[9 + 1], 1.0F);
  EXPECT_EQ(f[9 + 4], 1.0F);
  float total = 0;
  for (float v : f) total += v;
  EXPECT_EQ(total, 22.0F);
  FeatureOptions both;
  both.stage_counts = true;
  EXPECT_EQ(architecture_features(fbnet, a, both).size(), 198U + 63U);
  // First blocks apart: stages 2-6 split into their first block and the rest (12 groups).
  FeatureOptions first = counts_only;
  first.stage_first_apart = true;
  auto g = architecture_features(fbnet, a, first);
  ASSERT_EQ(g.size(), 108U);
  EXPECT_EQ(g[9 + 8], 1.0F);  // stage 2's first block: skip
  EXPECT_EQ(g[18 + 8], 1.0F);  // the other three: skip, k3_e1_g2, k5_e1
  EXPECT_EQ(g[18 + 1], 1.0F);
  EXPECT_EQ(g[18 + 4], 1.0F);
  float g_total = 0;
  for (float v : g) g_total += v;
  EXPECT_EQ(g_total, 22.0F);
  // NB201's edges are no stage: their counts are their one-hot entries.
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  auto n = nb201.at(1234);
  EXPECT_EQ(architecture_features(nb201, n, counts_only), architecture_features(nb201, n, FeatureOptions{}));
  // MobileNetV3: blocks beyond a stage's depth are inactive and count nothing.
  auto mb = SearchSpace::from_file(testing::space_path("mobilenetv3"));
  Rng rng(3);
  auto m = mb.sample(rng);
  auto active = mb.active(m);
  std::size_t n_active = 0;
  for (std::size_t d = 0; d < active.size(); ++d) n_active += active[d];
  auto fm = architecture_features(mb, m, counts_only);
  float sum = 0;
  for (float v : fm) sum += v;
  EXPECT_EQ(sum, static_cast<float>(n_active));
}

TEST(Features, EdgeCountsCountACellsEdgesByOp) {
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  auto a = nb201.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|");
  FeatureOptions edges;
  edges.onehot = false, edges.edge_counts = true;
  // One cell of 6 edges, 5 ops (none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3).
  EXPECT_EQ(architecture_features(nb201, a, edges), (std::vector<float>{0, 2, 0, 3, 1}));
  FeatureOptions with_onehot = edges;
  with_onehot.onehot = true;
  auto f = architecture_features(nb201, a, with_onehot);
  ASSERT_EQ(f.size(), 35U);
  EXPECT_EQ(std::vector<float>(f.begin(), f.begin() + 30), architecture_features(nb201, a, FeatureOptions{}));
  // Stage counts leave edges alone, and edge counts leave blocks alone.
  FeatureOptions stages;
  stages.onehot = false, stages.stage_counts = true;
  EXPECT_EQ(architecture_features(nb201, a, stages).size(), 30U);
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  auto b = fbnet.from_native("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5");
  EXPECT_EQ(architecture_features(fbnet, b, edges), architecture_features(fbnet, b, FeatureOptions{}));
  // DARTS: the normal and the reduction cell count their edges apart (8 ops each), the node
  // input decisions stay one-hot; a decision left inactive counts nothing.
  auto darts = SearchSpace::from_file(testing::space_path("darts"));
  Rng rng(5);
  auto d = darts.sample(rng);
  auto active = darts.active(d);
  std::size_t n_active = 0, one_hot_width = 0, ops = 0;
  for (std::size_t i = 0; i < darts.decisions().size(); ++i) {
    n_active += active[i];
    const auto& decision = darts.decisions()[i];
    if (decision.name.find(".edge[") == std::string::npos) {
      one_hot_width += decision.options.size();
    } else {
      ops = decision.options.size();
    }
  }
  auto g = architecture_features(darts, d, edges);
  EXPECT_EQ(g.size(), one_hot_width + 2 * ops);
  float total = 0;
  for (float v : g) total += v;
  EXPECT_EQ(total, static_cast<float>(n_active));
  FeatureOptions both = edges;
  both.stage_counts = true;
  EXPECT_EQ(architecture_features(darts, d, both), g);  // DARTS has no blocks
}

TEST(Features, FirstDeltaAddsEachFirstBlocksOneHotShrunken) {
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  auto a = fbnet.from_native("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5");
  FeatureOptions counts;
  counts.onehot = false, counts.stage_counts = true;
  FeatureOptions delta = counts;
  delta.stage_first_delta = true;
  auto c = architecture_features(fbnet, a, counts);
  auto f = architecture_features(fbnet, a, delta);
  // 63 counts (first blocks counted with the rest), then 5 stages of 4 blocks x 9 options; the
  // stages of one block have no deviation (it would repeat their count).
  ASSERT_EQ(f.size(), 63U + 45U);
  EXPECT_EQ(std::vector<float>(f.begin(), f.begin() + 63), c);
  std::vector<float> expected(45, 0.0F);
  const int firsts[] = {8, 8, 4, 3, 2};  // blocks 1, 5, 9, 13, 17 of the native string
  for (int s = 0; s < 5; ++s) expected[9 * s + firsts[s]] = kFirstDeltaScale;
  EXPECT_EQ(std::vector<float>(f.begin() + 63, f.end()), expected);
  // Two treatments of one block, or a refinement of counts that are off: refused.
  FeatureOptions clash = delta;
  clash.stage_first_apart = true;
  EXPECT_THROW(architecture_features(fbnet, a, clash), InvalidArgument);
  EXPECT_THROW(features_from_json(features_to_json(clash)), InvalidArgument);
  FeatureOptions orphan;
  orphan.stage_first_delta = true;
  EXPECT_THROW(architecture_features(fbnet, a, orphan), InvalidArgument);
}

TEST(Features, LinearCostsAreTheAnalyticCostsStandardisedOverTheSpace) {
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  FeatureOptions costs;
  costs.onehot = false, costs.linear_costs = true;
  // Over the very architectures that set the scale, each feature has mean 0 and spread
  // kLinearCostWeight (every FBNet network has as many layers: that one is constant, 0).
  Rng rng(kLinearCostSeed);
  std::vector<std::vector<float>> f;
  std::vector<AnalyticCosts> c;
  for (int i = 0; i < kLinearCostSamples; ++i) {
    auto a = fbnet.sample(rng);
    f.push_back(architecture_features(fbnet, a, costs));
    c.push_back(analytic_costs(fbnet.resolve(a)));
  }
  ASSERT_EQ(f[0].size(), 5U);
  for (std::size_t k = 0; k < 5; ++k) {
    double sum = 0, sum2 = 0;
    for (const auto& row : f) sum += row[k], sum2 += static_cast<double>(row[k]) * row[k];
    const double mean = sum / kLinearCostSamples, sd = std::sqrt(std::max(0.0, sum2 / kLinearCostSamples - mean * mean));
    EXPECT_NEAR(mean, 0.0, 1e-3) << k;
    EXPECT_NEAR(sd, k == 4 ? 0.0 : kLinearCostWeight, 1e-3) << k;
  }
  // MACs (feature 0) and params (feature 1): increasing affine functions of the analytic counts.
  for (std::size_t k : {0U, 1U}) {
    auto stat = [&](std::size_t i) { return static_cast<double>(k == 0 ? c[i].macs : c[i].params); };
    const double slope = (f[1][k] - f[0][k]) / (stat(1) - stat(0));
    EXPECT_GT(slope, 0.0);
    for (std::size_t i = 2; i < 6; ++i) EXPECT_NEAR(f[i][k] - f[0][k], slope * (stat(i) - stat(0)), 1e-3 * kLinearCostWeight);
  }
  FeatureOptions both = costs;
  both.onehot = true;
  EXPECT_EQ(architecture_features(fbnet, fbnet.sample(rng), both).size(), 198U + 5U);
}

TEST(Features, PrunedGraphCountsAndCostsTheLayersAGraphRuntimeKeeps) {
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  FeatureOptions pruned;
  pruned.onehot = false, pruned.pruned_graph = true;
  // Labels in the op list's order: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
  // Node 1's 3x3 conv feeds only `none` edges: dead in all 15 cells; the rest run (the two
  // `none` layers of each cell are read by live sums).
  auto a = nb201.from_native(
      "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|");
  EXPECT_EQ(architecture_features(nb201, a, pruned), (std::vector<float>{30, 15, 15, 0, 15}));
  // A constant output: nothing runs, nothing counts.
  auto folded =
      nb201.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|");
  EXPECT_EQ(architecture_features(nb201, folded, pruned), (std::vector<float>(5, 0.0F)));
  // With linear costs: the full network's five, then the live layers' five on the same scale.
  FeatureOptions costs;
  costs.onehot = false, costs.linear_costs = true;
  FeatureOptions both = costs;
  both.pruned_graph = true;
  const auto full = architecture_features(nb201, a, costs),
             f = architecture_features(nb201, a, both);
  ASSERT_EQ(f.size(), 5U + 5U + 5U);
  EXPECT_EQ(std::vector<float>(f.begin() + 5, f.begin() + 10), full);
  // The same network with node 1's conv replaced by `none` runs exactly the layers `a` runs:
  // equal live costs, lower full costs.
  auto c =
      nb201.from_native("|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|");
  const auto fc = architecture_features(nb201, c, both);
  EXPECT_EQ(std::vector<float>(f.begin() + 10, f.end()),
            std::vector<float>(fc.begin() + 10, fc.end()));
  EXPECT_GT(f[5], fc[5]);  // MACs of the full network
  // The number of layers is the same in every NB201 network (that cost is 0), not of live ones.
  EXPECT_EQ(f[9], 0.0F);
  EXPECT_NE(f[14], 0.0F);
  // Where nothing is dead every cell's every edge counts.
  auto all_live = nb201.from_native(
      "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_"
      "connect~2|");
  EXPECT_EQ(architecture_features(nb201, all_live, pruned),
            (std::vector<float>{0, 30, 15, 30, 15}));
  // FBNet has no `none`: every block runs, the counts are the op counts over all 22 layers.
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  const auto h = architecture_features(
      fbnet, fbnet.from_native("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5"), pruned);
  EXPECT_EQ(h, (std::vector<float>{0, 2, 3, 2, 5, 1, 0, 4, 5}));
}

TEST(Features, NetworkCountsCountMatchingDecisionsAcrossTheWholeNetwork) {
  auto fbnet = SearchSpace::from_file(testing::space_path("fbnet"));
  FeatureOptions network;
  network.onehot = false, network.network_counts = true;
  // All 22 blocks (network[s].block[k]) are one group: blocks k3_e1, k3_e1_g2, k3_e3, k3_e6,
  // k5_e1, k5_e1_g2, k5_e3, k5_e6, skip by index.
  auto b = fbnet.from_native("7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5");
  EXPECT_EQ(architecture_features(fbnet, b, network),
            (std::vector<float>{0, 2, 3, 2, 5, 1, 0, 4, 5}));
  // NB201: one cell, so they are its edge counts.
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  FeatureOptions edges;
  edges.onehot = false, edges.edge_counts = true;
  auto a = nb201.from_native(
      "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_"
      "connect~2|");
  EXPECT_EQ(architecture_features(nb201, a, network), architecture_features(nb201, a, edges));
  // MobileNetV3: every block's kernel is one group and every block's expansion another (value
  // decisions); blocks beyond a stage's depth count nothing; the resolution is a group of one
  // (no slots) and depths are no value.
  auto mb = SearchSpace::from_file(testing::space_path("mobilenetv3"));
  Rng rng(4);
  auto m = mb.sample(rng);
  const auto active = mb.active(m);
  float kernels = 0, expansions = 0;
  for (std::size_t d = 0; d < active.size(); ++d) {
    const std::string& name = mb.decisions()[d].name;
    kernels += active[d] && name.size() > 7 && name.compare(name.size() - 7, 7, ".kernel") == 0;
    expansions +=
        active[d] && name.size() > 10 && name.compare(name.size() - 10, 10, ".expansion") == 0;
  }
  const auto f = architecture_features(mb, m, network);
  ASSERT_EQ(f.size(), 6U);
  EXPECT_EQ(f[0] + f[1] + f[2], kernels);
  EXPECT_EQ(f[3] + f[4] + f[5], expansions);
  EXPECT_GT(kernels, 0.0F);
}

TEST(Features, ChooseFeaturesPicksTheSetThatExplainsTheRows) {
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  FeatureOptions edges, pruned;
  edges.onehot = false, edges.edge_counts = true;
  pruned = edges;
  pruned.pruned_graph = true;
  // A latency that only live layers pay: exactly linear in the pruned counts, not in the edges.
  Rng rng(11);
  std::vector<Architecture> archs;
  std::vector<double> y;
  for (int i = 0; i < 80; ++i) {
    archs.push_back(nb201.sample(rng));
    const auto c = architecture_features(nb201, archs.back(),
                                         FeatureOptions{.onehot = false, .pruned_graph = true});
    y.push_back(0.5 + 0.01 * c[1] + 0.1 * c[2] + 0.3 * c[3] + 0.05 * c[4]);
  }
  const auto choice = choose_features(nb201, {edges, pruned}, archs, y);
  EXPECT_EQ(choice.best, 1U);
  ASSERT_EQ(choice.loo_mse.size(), 2U);
  EXPECT_LT(choice.loo_mse[1], 1e-3 * choice.loo_mse[0]);
  EXPECT_EQ(choose_features(nb201, {pruned, edges}, archs, y).best, 0U);
  EXPECT_EQ(choose_features(nb201, {edges}, archs, y).best, 0U);
  EXPECT_THROW((void)choose_features(nb201, {}, archs, y), InvalidArgument);
  EXPECT_THROW((void)choose_features(nb201, {edges}, archs, std::vector<double>(3, 1.0)),
               InvalidArgument);
  EXPECT_THROW((void)choose_features(nb201, {edges}, {archs[0], archs[1]}, {1.0, 2.0}),
               InvalidArgument);
}

// The structure features on the real tables: fewer unknowns, so a better fit from 100 noisy
// samples; and the analytic costs as a prior (docs/performance.md has every column). Each
// pair is (plain, better): NB201 one-hot vs edge counts, FBNet counts vs first blocks as
// deviations, deviations vs deviations plus linear costs, then the pruned graph (NB201 pixel3)
// and network-wide counts (FBNet gold_6240). Skipped where ../shared/data is not.
TEST(Features, StructureAndLinearCostsFitTheSharedTablesBetter) {
  auto run = [](const std::string& which, const std::string& file, const std::string& column,
                const FeatureOptions& plain, const FeatureOptions& structured) {
    auto space = SearchSpace::from_file(testing::space_path(which));
    TableEvaluator table(space);
    table.add_csv(file, {column});
    auto rows = table.known();
    Rng rng(0);
    for (std::size_t i = 0; i < 100; ++i) std::swap(rows[i], rows[i + rng.uniform(rows.size() - i)]);
    std::vector<std::pair<double, double>> spearman_within;
    for (const auto* fo : {&plain, &structured}) {
      std::vector<std::vector<float>> xt, xv;
      std::vector<double> yt, yv;
      for (std::size_t i = 0; i < rows.size(); ++i) {
        (i < 100 ? xt : xv).push_back(architecture_features(space, rows[i].first, *fo));
        (i < 100 ? yt : yv).push_back(rows[i].second.at(column));
      }
      auto ridge = RidgeRegression::leave_one_out();
      ridge.fit(xt, yt);
      auto q = prediction_quality(ridge.predict_batch(xv), yv);
      spearman_within.emplace_back(q.spearman, q.within_10pct);
    }
    return spearman_within;
  };
  auto nb201 = testing::shared_data("nb201/nb201_latency_ms.csv");
  auto fbnet = testing::shared_data("fbnet/fbnet_latency_ms.csv");
  if (nb201.empty() || fbnet.empty()) GTEST_SKIP() << "../shared/data is not here";
  FeatureOptions onehot, edges, counts, delta;
  edges.onehot = false, edges.edge_counts = true;
  counts.onehot = false, counts.stage_counts = true;
  delta = counts;
  delta.stage_first_delta = true;
  // NB201 samsung_a50 (whole-millisecond readings): the edge counts meet the ±10% target.
  auto a50 = run("nb201", nb201, "samsung_a50", onehot, edges);
  EXPECT_GT(a50[1].second, a50[0].second + 0.03);
  EXPECT_GE(a50[1].second, 0.85);
  EXPECT_GE(a50[1].first, 0.97);
  // FBNet pixel3 (a sum of per-layer costs): exact with the first blocks' deviations.
  auto pixel3 = run("fbnet", fbnet, "pixel3", counts, delta);
  EXPECT_GE(pixel3[1].first, 0.999);
  EXPECT_LT(pixel3[0].first, 0.97);
  // FBNet samsung_a50 (whole milliseconds, wild readings): the analytic costs as a prior.
  FeatureOptions priced = delta;
  priced.linear_costs = true;
  auto phone = run("fbnet", fbnet, "samsung_a50", delta, priced);
  EXPECT_GT(phone[1].first, phone[0].first + 0.1);
  // NB201 pixel3 (TFLite drops dead branches and folds constant networks): the pruned graph.
  FeatureOptions edges_priced = edges;
  edges_priced.linear_costs = true;
  FeatureOptions pruned = edges_priced;
  pruned.pruned_graph = true;
  auto tflite = run("nb201", nb201, "pixel3", edges_priced, pruned);
  EXPECT_GT(tflite[1].first, tflite[0].first + 0.03);
  EXPECT_GT(tflite[1].second, tflite[0].second + 0.1);
  // FBNet gold_6240: an option's cost shared by every stage.
  FeatureOptions network = priced;
  network.network_counts = true;
  auto gold = run("fbnet", fbnet, "gold_6240", priced, network);
  EXPECT_GT(gold[1].first, gold[0].first + 0.005);
}

TEST(Features, SavedLinearCostsCarryTheirScaleAndAnotherScaleIsRefused) {
  auto nb201 = SearchSpace::from_file(testing::space_path("nb201"));
  FeatureOptions o;
  o.edge_counts = true, o.linear_costs = true;
  auto j = features_to_json(o, nb201);
  ASSERT_TRUE(j.contains("linear_cost_scale"));
  EXPECT_EQ(j["linear_cost_scale"]["mean"].size(), 5U);
  auto back = features_from_json(nlohmann::json::parse(j.dump()), nb201);
  EXPECT_TRUE(back.linear_costs && back.edge_counts);
  EXPECT_TRUE(features_from_json(j).linear_costs);  // without the space: read, not checked
  // Another space (other --set values): another scale.
  auto small = SearchSpace::from_file(testing::space_path("nb201"), {{"C", "8"}});
  EXPECT_THROW(features_from_json(j, small), InvalidArgument);
  auto tampered = j;
  tampered["linear_cost_scale"]["sd"][1] = 2 * tampered["linear_cost_scale"]["sd"][1].get<double>();
  EXPECT_THROW(features_from_json(tampered, nb201), InvalidArgument);
  tampered["linear_cost_scale"] = {{"mean", {1, 2}}};
  EXPECT_THROW(features_from_json(tampered, nb201), InvalidArgument);
  // Without linear costs nothing is added.
  EXPECT_FALSE(features_to_json(FeatureOptions{}, nb201).contains("linear_cost_scale"));
  // With pruned_graph the live layers' scale is saved and checked as well.
  FeatureOptions pruned;
  pruned.linear_costs = true, pruned.pruned_graph = true;
  auto p = features_to_json(pruned, nb201);
  ASSERT_TRUE(p.contains("pruned_cost_scale"));
  EXPECT_TRUE(features_from_json(p, nb201).pruned_graph);
  auto lacking = p;
  lacking.erase("pruned_cost_scale");
  EXPECT_THROW((void)features_from_json(lacking, nb201), InvalidArgument);
  p["pruned_cost_scale"]["mean"][0] = 1.01 * p["pruned_cost_scale"]["mean"][0].get<double>();
  EXPECT_THROW((void)features_from_json(p, nb201), InvalidArgument);
  // The newer keys are written only when on: files for builds before them stay readable.
  EXPECT_FALSE(features_to_json(FeatureOptions{}).contains("pruned_graph"));
  EXPECT_FALSE(features_to_json(FeatureOptions{}).contains("network_counts"));
  EXPECT_FALSE(features_to_json(o, nb201).contains("pruned_cost_scale"));
}

TEST(Features, OptionsRoundTripThroughJsonAndRejectUnknownKeys) {
  FeatureOptions o;
  o.pairwise = true, o.stage_counts = true, o.stage_first_apart = true, o.edge_counts = true, o.onehot = false;
  o.linear_costs = true, o.pruned_graph = true, o.network_counts = true;
  auto back = features_from_json(features_to_json(o));
  EXPECT_EQ(back.pruned_graph, true);
  EXPECT_EQ(back.network_counts, true);
  EXPECT_EQ(back.pairwise, true);
  EXPECT_EQ(back.stage_first_apart, true);
  EXPECT_EQ(back.stage_first_delta, false);
  EXPECT_EQ(back.edge_counts, true);
  EXPECT_EQ(back.linear_costs, true);
  o.stage_first_apart = false, o.stage_first_delta = true;
  EXPECT_EQ(features_from_json(features_to_json(o)).stage_first_delta, true);
  EXPECT_EQ(back.statistics, false);
  EXPECT_EQ(back.stage_counts, true);
  EXPECT_EQ(back.onehot, false);
  EXPECT_TRUE(features_from_json(nlohmann::json::object()).onehot);  // older files: the defaults
  EXPECT_THROW(features_from_json({{"pairs", true}}), InvalidArgument);
  EXPECT_THROW(features_from_json({{"pairwise", 1}}), InvalidArgument);
}

}  // namespace nasforge
