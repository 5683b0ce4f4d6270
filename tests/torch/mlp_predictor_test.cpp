// The LibTorch MLP ensemble predictor.
#include "nasforge/torch/mlp_predictor.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nasforge/error.h"
#include "nasforge/random.h"

namespace nasforge {

TEST(MlpEnsemble, FitsANonLinearFunctionWithUncertaintyAndRoundTrips) {
  Rng rng(2);
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  for (int i = 0; i < 200; ++i) {
    float a = static_cast<float>(rng.uniform01()), b = static_cast<float>(rng.uniform01());
    x.push_back({a, b});
    y.push_back(std::sin(3.0 * a) + a * b);
  }
  register_torch_predictors();
  auto m1 = make_predictor("mlp", {{"members", 3}, {"epochs", 300}, {"seed", 4}});
  auto m2 = make_predictor("mlp", {{"members", 3}, {"epochs", 300}, {"seed", 4}});
  m1->fit(x, y);
  m2->fit(x, y);
  auto p1 = m1->predict_batch(x);
  EXPECT_EQ(p1, m2->predict_batch(x));  // same seed, same ensemble
  auto q = prediction_quality(p1, y);
  EXPECT_GT(q.spearman, 0.97);
  EXPECT_LT(q.rmse, 0.1);
  // Far outside the data the members disagree more than inside it.
  auto& ens = dynamic_cast<MlpEnsemble&>(*m1);
  auto [mean_in, sd_in] = ens.predict_with_uncertainty({{0.5F, 0.5F}});
  auto [mean_out, sd_out] = ens.predict_with_uncertainty({{8.0F, -6.0F}});
  EXPECT_GT(sd_out[0], sd_in[0]);
  auto back = make_predictor_from_json(nlohmann::json::parse(m1->to_json().dump()));
  EXPECT_EQ(back->name(), "mlp");
  auto pb = back->predict_batch(x);
  for (std::size_t i = 0; i < pb.size(); ++i) EXPECT_NEAR(pb[i], p1[i], 1e-5);
  EXPECT_THROW(make_predictor("mlp", {{"neurons", 3}}), InvalidArgument);
  EXPECT_THROW(MlpEnsemble().predict(std::vector<float>{1.0F, 2.0F}), InvalidArgument);
}

}  // namespace nasforge
