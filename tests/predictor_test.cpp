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

}  // namespace nasforge
