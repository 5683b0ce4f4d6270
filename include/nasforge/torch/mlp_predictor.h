#pragma once
/// \file mlp_predictor.h
/// An ensemble of small MLPs (LibTorch) as a Predictor, with an uncertainty estimate: the
/// ensemble's mean is the prediction, the standard deviation across members the uncertainty.
/// Members differ by initialisation and by a bootstrap resample of the training rows.
/// Targets and features are standardised internally. Options (defaults): `members` 5,
/// `hidden` 64, `layers` 2, `epochs` 300, `lr` 1e-2 (Adam, full batch), `weight_decay` 1e-4,
/// `seed` 0. Deterministic for a seed (one thread while fitting).
///
/// `register_torch_predictors()` makes it available as `mlp` to make_predictor and
/// make_predictor_from_json (the CLI calls it).

#include <cstdint>
#include <memory>
#include <vector>

#include "nasforge/predictor.h"

namespace nasforge {

class MlpEnsemble final : public Predictor {
 public:
  struct Options {
    int members = 5, hidden = 64, layers = 2, epochs = 300;
    double lr = 1e-2, weight_decay = 1e-4;
    std::uint64_t seed = 0;
  };
  explicit MlpEnsemble(Options options);
  MlpEnsemble() : MlpEnsemble(Options{}) {}
  ~MlpEnsemble() override;
  std::string name() const override { return "mlp"; }
  void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) override;
  std::vector<double> predict_batch(const std::vector<std::vector<float>>& x) const override;
  /// Mean and standard deviation across the members, per row.
  std::pair<std::vector<double>, std::vector<double>> predict_with_uncertainty(const std::vector<std::vector<float>>& x) const;
  bool fitted() const override;
  nlohmann::json to_json() const override;
  static std::unique_ptr<MlpEnsemble> from_json(const nlohmann::json& j);

 private:
  struct State;
  Options o_;
  std::unique_ptr<State> s_;
};

/// Registers `mlp` with the predictor registry (idempotent).
void register_torch_predictors();

}  // namespace nasforge
