#include "nasforge/predictor.h"

#include <cmath>

#include <Eigen/Dense>

#include "nasforge/error.h"

namespace nasforge {

std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch, bool pairwise) {
  std::vector<float> f = space.encode_onehot(arch);
  if (!pairwise) return f;
  // The active one-hot positions (one per decision), then their pairwise products: only pairs
  // of active entries are non-zero, but every pair of positions of different decisions gets a
  // slot so that the feature vector has a fixed layout.
  const auto& ds = space.decisions();
  std::vector<std::size_t> offset(ds.size() + 1, 0);
  for (std::size_t d = 0; d < ds.size(); ++d) offset[d + 1] = offset[d] + ds[d].options.size();
  const std::size_t n = f.size();
  std::vector<float> out(f);
  out.reserve(n + n * n / 2);
  for (std::size_t d = 0; d < ds.size(); ++d) {
    for (std::size_t e = d + 1; e < ds.size(); ++e) {
      for (std::size_t i = offset[d]; i < offset[d + 1]; ++i) {
        for (std::size_t j = offset[e]; j < offset[e + 1]; ++j) out.push_back(f[i] * f[j]);
      }
    }
  }
  return out;
}

RidgeRegression::RidgeRegression(double lambda) : lambda_(lambda) {
  NASFORGE_CHECK(lambda >= 0 && std::isfinite(lambda), "RidgeRegression: expected lambda >= 0, got {}", lambda);
}

void RidgeRegression::fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) {
  NASFORGE_CHECK(!x.empty() && x.size() == y.size(), "RidgeRegression::fit: expected as many rows as targets (>= 1), got {} and {}",
                 x.size(), y.size());
  const auto n = static_cast<Eigen::Index>(x.size()), p = static_cast<Eigen::Index>(x[0].size());
  Eigen::MatrixXd X(n, p);
  Eigen::VectorXd Y(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    NASFORGE_CHECK(static_cast<Eigen::Index>(x[i].size()) == p, "RidgeRegression::fit: row {} has {} features, row 0 has {}", i,
                   x[i].size(), p);
    NASFORGE_CHECK(std::isfinite(y[i]), "RidgeRegression::fit: target {} is not finite", i);
    for (Eigen::Index j = 0; j < p; ++j) X(i, j) = x[i][j];
    Y(i) = y[i];
  }
  const Eigen::RowVectorXd mx = X.colwise().mean();
  const double my = Y.mean();
  X.rowwise() -= mx;
  Y.array() -= my;
  Eigen::MatrixXd A = X.transpose() * X;
  A.diagonal().array() += lambda_ > 0 ? lambda_ : 1e-9;  // a tiny ridge keeps rank-deficient fits solvable
  Eigen::VectorXd w = A.ldlt().solve(X.transpose() * Y);
  w_.assign(w.data(), w.data() + w.size());
  b_ = my - mx.dot(w);
  fitted_ = true;
}

double RidgeRegression::predict(const std::vector<float>& x) const {
  NASFORGE_CHECK(fitted_, "RidgeRegression::predict: call fit first");
  NASFORGE_CHECK(x.size() == w_.size(), "RidgeRegression::predict: expected {} features, got {}", w_.size(), x.size());
  double s = b_;
  for (std::size_t i = 0; i < x.size(); ++i) s += w_[i] * x[i];
  return s;
}

}  // namespace nasforge
