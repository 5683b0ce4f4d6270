// The trainer learns, is deterministic for a seed, and resumes from its checkpoint to exactly
// the weights an uninterrupted run reaches.
#include "nasforge/torch/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <torch/torch.h>

#include "detail/files.h"
#include "nasforge/error.h"
#include "nasforge/search_space.h"

namespace nasforge {
namespace {

ConcreteNetwork small_net() {
  auto s = SearchSpace::from_string(R"({"params": {"input": [1, 8, 8]}, "network": [
      {"type": "conv_bn_act", "out": 8, "kernel": 3, "act": "relu"},
      {"type": "conv_bn_act", "out": 8, "kernel": 3, "stride": 2, "act": "relu"},
      {"type": "global_avg_pool"}, {"type": "linear", "out": 4}]})");
  return s.resolve(Architecture{});
}

TrainOptions fast(std::uint64_t seed) {
  TrainOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.lr = 0.05;
  o.seed = seed;
  o.pad_crop = 1;
  return o;
}

std::vector<::torch::Tensor> weights(Network& n) {
  std::vector<::torch::Tensor> w;
  for (const auto& p : n->parameters()) w.push_back(p.detach().clone());
  return w;
}

}  // namespace

TEST(Trainer, LearnsASyntheticTask) {
  // The test set must share the class patterns, so draw one set and split it.
  auto all = synthetic_data(768, {1, 8, 8}, 4, 3);
  TensorData tr{all.images.slice(0, 0, 512), all.labels.slice(0, 0, 512)};
  TensorData te{all.images.slice(0, 512), all.labels.slice(0, 512)};
  ::torch::manual_seed(0);
  Network net(small_net());
  double before = evaluate_accuracy(net, te);
  auto opts = fast(0);
  opts.epochs = 8;
  opts.pad_crop = 0;  // the synthetic patterns are not shift or flip invariant
  opts.flip = false;
  auto hist = train(net, tr, te, opts);
  ASSERT_EQ(hist.size(), 8u);
  EXPECT_LT(hist.back().train_loss, hist.front().train_loss);
  EXPECT_GT(hist.back().test_accuracy, std::max(0.6, before + 0.2));
}

TEST(Trainer, ResumesFromItsCheckpointToTheSameWeights) {
  auto data = synthetic_data(256, {1, 8, 8}, 4, 9);
  auto dir = std::filesystem::temp_directory_path() / "nasforge_trainer_test_ckpt";
  detail::remove_tree(dir);

  ::torch::manual_seed(1);
  Network straight(small_net());
  train(straight, data, data, fast(5));

  ::torch::manual_seed(1);
  Network interrupted(small_net());
  auto opts = fast(5);
  opts.checkpoint_dir = dir.string();
  // Stop after the first epoch, as a kill after its checkpoint would.
  train(interrupted, data, data, opts, [](const EpochStats& s) { return s.epoch == 1; });
  ::torch::manual_seed(123);  // a different initialisation, overwritten by the resume
  Network resumed(small_net());
  auto hist = train(resumed, data, data, opts);
  EXPECT_EQ(hist.size(), 3u);
  auto a = weights(straight), b = weights(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(::torch::equal(a[i], b[i])) << "parameter " << i;
  detail::remove_tree(dir);
}

TEST(Trainer, RejectsBadOptions) {
  auto data = synthetic_data(16, {1, 8, 8}, 4, 0);
  Network net(small_net());
  TrainOptions o;
  o.epochs = 0;
  EXPECT_THROW(train(net, data, data, o), InvalidArgument);
}

}  // namespace nasforge
