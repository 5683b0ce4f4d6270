#pragma once
/// \file supernet_evaluator.h
/// An Evaluator that scores architectures with a trained supernet's inherited weights: for
/// each architecture it recalibrates batch-norm statistics on a few training batches (the
/// shared statistics belong to no single path), then measures accuracy on held-out data.
/// Metrics: `supernet_acc` (percent) and `supernet_loss`. Evaluations are serialised (the
/// supernet runs one path at a time); the search driver's parallelism then only overlaps the
/// other evaluators of a CompositeEvaluator.
///
/// ```cpp
/// nasforge::SupernetEvaluator eval(super, calibration_batches, valid);
/// auto r = nasforge::run_search(space, *strategy, eval, options);   // objective supernet_acc:max
/// ```

#include <mutex>
#include <vector>

#include <torch/types.h>

#include "nasforge/evaluator.h"
#include "nasforge/torch/data.h"
#include "nasforge/torch/supernet.h"

namespace nasforge {

class SupernetEvaluator final : public Evaluator {
 public:
  /// `calibration`: input batches run in train mode (no grad) to re-estimate BN statistics
  /// from scratch (cumulative average) for each architecture; `valid`: held-out images and
  /// labels; `batch`: evaluation batch size.
  SupernetEvaluator(Supernet supernet, std::vector<::torch::Tensor> calibration, TensorData valid, std::int64_t batch = 500);
  Metrics evaluate(const Architecture& arch) const override;
  std::vector<std::string> metric_names() const override { return {"supernet_acc", "supernet_loss"}; }

 private:
  Supernet net_;
  std::vector<::torch::Tensor> calibration_;
  TensorData valid_;
  std::int64_t batch_;
  mutable std::mutex mutex_;
};

}  // namespace nasforge
