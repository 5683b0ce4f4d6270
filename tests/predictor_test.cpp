// Ridge regression and architecture features.
#include "nasforge/predictor.h"

#include <cmath>

#include <gtest/gtest.h>

#include "nasforge/error.h"
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

TEST(Features, OptionsRoundTripThroughJsonAndRejectUnknownKeys) {
  FeatureOptions o;
  o.pairwise = true, o.stage_counts = true, o.stage_first_apart = true, o.onehot = false;
  auto back = features_from_json(features_to_json(o));
  EXPECT_EQ(back.pairwise, true);
  EXPECT_EQ(back.stage_first_apart, true);
  EXPECT_EQ(back.statistics, false);
  EXPECT_EQ(back.stage_counts, true);
  EXPECT_EQ(back.onehot, false);
  EXPECT_TRUE(features_from_json(nlohmann::json::object()).onehot);  // older files: the defaults
  EXPECT_THROW(features_from_json({{"pairs", true}}), InvalidArgument);
  EXPECT_THROW(features_from_json({{"pairwise", 1}}), InvalidArgument);
}

}  // namespace nasforge
