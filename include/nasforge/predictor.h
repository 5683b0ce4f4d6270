#pragma once
/// \file predictor.h
/// Predictors of a metric from an architecture's features, trained on measured examples. The
/// predictor-guided search (`linas` in strategy.h) fits one per objective on everything
/// evaluated so far.
///
/// ```cpp
/// nasforge::RidgeRegression ridge(/*lambda=*/1.0);
/// std::vector<std::vector<float>> x;   // architecture_features(space, arch, true) per example
/// std::vector<double> y;               // the measured metric
/// ridge.fit(x, y);
/// double predicted = ridge.predict(architecture_features(space, other, true));
/// ```

#include <vector>

#include "nasforge/architecture.h"
#include "nasforge/search_space.h"

namespace nasforge {

/// Features of an architecture for learned predictors: the space's one-hot encoding and, with
/// `pairwise`, the products of every pair of one-hot entries of different decisions (which
/// lets a linear model see interactions, e.g. two edges that together disconnect a cell).
std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch, bool pairwise);

/// Ridge regression, y ≈ w·x + b, solved in closed form ((XᵀX + λI) w = Xᵀy on centred data,
/// Eigen's LDLT). Fits 15,625 NB201 examples of 30 features in milliseconds.
class RidgeRegression {
 public:
  /// `lambda` >= 0: the L2 penalty on w (not on the intercept).
  explicit RidgeRegression(double lambda = 1.0);
  /// Fits on rows `x` (all the same length, at least one) and targets `y`. Throws
  /// InvalidArgument on mismatched sizes or non-finite values.
  void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y);
  /// The prediction for one row (InvalidArgument before fit or for a wrong length).
  double predict(const std::vector<float>& x) const;
  /// True once fitted.
  bool fitted() const noexcept { return fitted_; }

 private:
  double lambda_;
  bool fitted_ = false;
  std::vector<double> w_;
  double b_ = 0;
};

}  // namespace nasforge
