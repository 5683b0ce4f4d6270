#include "nasforge/torch/supernet_evaluator.h"

#include <torch/torch.h>

#include "nasforge/error.h"

namespace nasforge {

SupernetEvaluator::SupernetEvaluator(Supernet supernet, std::vector<::torch::Tensor> calibration, TensorData valid,
                                     std::int64_t batch)
    : net_(std::move(supernet)), calibration_(std::move(calibration)), valid_(std::move(valid)), batch_(batch) {
  NASFORGE_CHECK(valid_.size() > 0, "SupernetEvaluator: expected held-out data");
  NASFORGE_CHECK(batch_ >= 1, "SupernetEvaluator: expected batch >= 1, got {}", batch_);
}

Metrics SupernetEvaluator::evaluate(const Architecture& arch) const {
  std::lock_guard lock(mutex_);
  ::torch::NoGradGuard no_grad;
  auto& net = const_cast<Supernet&>(net_);  // the supernet's mode and path change; its weights do not
  net->set_architecture(arch);
  // BN recalibration: reset the running statistics and average them over the calibration
  // batches (momentum None = cumulative moving average), as single-path NAS evaluates paths.
  const auto momentum = net->set_bn_momentum(std::nullopt);
  net->reset_bn_statistics();
  const bool was_training = net->is_training();
  if (!calibration_.empty()) {
    net->train();
    for (const auto& x : calibration_) net->forward(x);
  }
  net->eval();
  double loss = 0;
  std::int64_t right = 0;
  for (std::int64_t s = 0; s < valid_.size(); s += batch_) {
    auto x = valid_.images.slice(0, s, s + batch_), y = valid_.labels.slice(0, s, s + batch_);
    auto logits = net->forward(x);
    loss += ::torch::nn::functional::cross_entropy(logits, y,
                                                   ::torch::nn::functional::CrossEntropyFuncOptions().reduction(::torch::kSum))
                .item<double>();
    right += logits.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  net->set_bn_momentum(momentum);
  net->train(was_training);
  const double n = static_cast<double>(valid_.size());
  return {{"supernet_acc", 100.0 * static_cast<double>(right) / n}, {"supernet_loss", loss / n}};
}

}  // namespace nasforge
