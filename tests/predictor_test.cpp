// Ridge regression and architecture features.
#include "nasforge/predictor.h"

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
  EXPECT_THROW(RidgeRegression().predict({1, 0, 0}), InvalidArgument);
  EXPECT_THROW(exact.predict({1, 0}), InvalidArgument);
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
