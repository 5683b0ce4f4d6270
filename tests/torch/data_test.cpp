// Normalised tensors, seeded batches and the synthetic data set.
#include "nasforge/torch/data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <torch/torch.h>

namespace nasforge {

TEST(TorchData, NormalisedTrainingImagesHaveZeroMeanUnitStd) {
  if (!std::filesystem::exists(kFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  auto train = load_fashion_mnist(true);
  auto split = train_valid_split(train.size(), 0.1, 0);
  auto norm = compute_normalization(train, split.train);
  // Fashion-MNIST's pixel mean is about 0.286 and its std about 0.353.
  EXPECT_NEAR(norm.mean[0], 0.286, 0.005);
  EXPECT_NEAR(norm.std[0], 0.353, 0.005);
  auto t = to_tensors(train, norm, split.train);
  EXPECT_EQ(t.images.sizes().vec(), (std::vector<std::int64_t>{54000, 1, 28, 28}));
  EXPECT_NEAR(t.images.mean().item<double>(), 0.0, 1e-3);
  EXPECT_NEAR(t.images.std().item<double>(), 1.0, 1e-3);
}

TEST(BatchLoader, VisitsEveryItemOncePerEpochInASeededOrder) {
  auto data = synthetic_data(103, {1, 4, 4}, 3, 5);
  BatchLoader a(data, 10, true, 42), b(data, 10, true, 42);
  EXPECT_EQ(a.num_batches(), 11);
  std::set<double> seen;
  for (std::int64_t i = 0; i < a.num_batches(); ++i) {
    auto [x, y] = a.batch(i);
    auto [x2, y2] = b.batch(i);
    EXPECT_TRUE(::torch::equal(x, x2));
    for (std::int64_t k = 0; k < x.size(0); ++k) seen.insert(x[k].sum().item<double>());
  }
  EXPECT_EQ(seen.size(), 103u);
  auto first = a.batch(0).second.clone();
  a.next_epoch();
  EXPECT_FALSE(::torch::equal(first, a.batch(0).second)) << "a new epoch reshuffles";
  BatchLoader dropped(data, 10, false, 0, true);
  EXPECT_EQ(dropped.num_batches(), 10);
}

TEST(SyntheticData, IsDeterministicAndLearnableByItsClassMeans) {
  auto a = synthetic_data(600, {8}, 4, 1), b = synthetic_data(600, {8}, 4, 1);
  EXPECT_TRUE(::torch::equal(a.images, b.images));
  // Nearest class mean (estimated on the first half) classifies the second half well above chance.
  auto xs = a.images.slice(0, 0, 300), ys = a.labels.slice(0, 0, 300);
  std::vector<::torch::Tensor> means;
  for (int c = 0; c < 4; ++c) means.push_back(xs.index({ys == c}).mean(0));
  auto m = ::torch::stack(means);
  auto xt = a.images.slice(0, 300), yt = a.labels.slice(0, 300);
  auto pred = ::torch::cdist(xt, m).argmin(1);
  EXPECT_GT(pred.eq(yt).to(::torch::kFloat32).mean().item<double>(), 0.8);
}

}  // namespace nasforge
