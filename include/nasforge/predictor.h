#pragma once
/// \file predictor.h
/// Learned predictors of a metric (latency, energy, accuracy) from an architecture's
/// features, trained on measured examples; one interface, a registry, JSON save/load:
///
/// - `ridge`: ridge regression, closed form with Eigen (options: `lambda` 1, or `"auto"`: the
///   value of a grid from 0.001 to 1000 with the least exact leave-one-out error);
/// - `gbdt`: gradient-boosted trees through XGBoost's C API (options: `rounds` 300, `depth` 6,
///   `eta` 0.1, `subsample` 0.8, `min_child_weight` 1, `seed` 0), single-threaded, so the same
///   seed gives the same model.
///
/// Features (`FeatureOptions`): the space's one-hot encoding, optionally the pairwise products
/// of one-hot entries of different decisions (interactions a linear model cannot see),
/// optionally stage counts (how many blocks of a stage take each option: a stage's blocks after
/// the first share their shapes, so their costs add up by option, and a model of a 22-layer
/// FBNet needs 63 such counts instead of 198 one-hot entries; the first block, which changes
/// width and stride, is counted with the rest — coarser, and better from 100 samples), and
/// optionally free statistics of the
/// concrete network (log parameters and log MACs from the analytic counter), which
/// FBNetV3-style predictors lean on.
///
/// Latency is a sum of layer times, so it is linear in these encodings: fit latency itself
/// rather than its log with a linear model (docs/performance.md measures both).
///
/// ```cpp
/// nasforge::FeatureOptions fo{.pairwise = true, .statistics = true};
/// std::vector<std::vector<float>> x;   // architecture_features(space, arch, fo) per example
/// std::vector<double> y;               // the measured metric
/// auto model = nasforge::make_predictor("gbdt");
/// model->fit(x, y);
/// double predicted = model->predict(nasforge::architecture_features(space, other, fo));   // predict_batch for many
/// std::ofstream("latency.json") << model->to_json().dump();
/// ```
/// The predictor-guided search (`linas`, strategy.h) fits one per objective.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nasforge/architecture.h"
#include "nasforge/search_space.h"

namespace nasforge {

/// Which features describe an architecture.
struct FeatureOptions {
  bool pairwise = false;    ///< add products of one-hot entries of every pair of decisions
  bool statistics = false;  ///< add log(1 + params) and log(1 + MACs) of the resolved network
  /// Add, per group of decisions that differ only in a `block[k]` index of their name and
  /// offer the same options (the blocks of one stage), how many active ones take each option.
  /// A decision outside any such group gives its one-hot entries again.
  bool stage_counts = false;
  /// With stage_counts: count each stage's first block (`block[0]`) in a group of its own. It
  /// takes the stage's stride and channel change, so it costs unlike the blocks after it, which
  /// share one shape. On FBNet's pixel3 column ridge then ranks the 4,900 held-out networks at
  /// Spearman 1.000 from 100 (0.953-0.954 with the first block counted with the rest).
  bool stage_first_apart = false;
  /// With stage_counts, the other treatment of a stage's first block: count it with the rest,
  /// and add its one-hot entries again, scaled by kFirstDeltaScale (stages of one block have
  /// none). A linear model then learns the first block's cost as the stage's cost plus a
  /// deviation, and ridge, whose penalty on a feature's weight grows as the feature shrinks,
  /// holds that deviation 10x tighter than the rest: it moves away from zero only as far as
  /// the data insist. On FBNet from 100 samples it keeps stage_first_apart's gains (pixel3 1.000)
  /// without its losses on the noisier columns (docs/performance.md). Not with
  /// stage_first_apart, and like it only with stage_counts (InvalidArgument otherwise).
  bool stage_first_delta = false;
  /// Count, per cell, how many of its edges take each op: decisions whose names differ only in
  /// an `edge[k]` index (the edges of one cell) and offer the same ops form one group, like a
  /// stage's blocks. In NAS-Bench-201 every edge of a cell maps one shape to the same shape, so
  /// an op costs the same on any edge: 5 counts instead of 30 one-hot entries, and ridge from
  /// 100 samples meets the target (Spearman >= 0.97 and >= 85% within ±10%) on 2 more of the
  /// 16 device columns. Where edges differ
  /// in cost (DARTS reduction cells: stride 2 on the edges from the cell's inputs), keep the
  /// one-hot entries too (`onehot`).
  bool edge_counts = false;
  /// Add the network's analytic costs as linear features, nearly unpenalised: MACs, params,
  /// the activation bytes that layers with MACs write (their outputs and internal
  /// intermediates: memory traffic), the number of such layers and of all layers (kernel
  /// launches). Each is standardised by its mean and spread over kLinearCostSamples
  /// seeded random architectures of the space and weighted kLinearCostWeight, so ridge's
  /// penalty hardly touches them: the fit starts from an analytic cost model of the device
  /// and the counts or one-hot entries correct it only as far as the samples support. On
  /// FBNet from 100 samples (first blocks as deviations), Spearman rises on 15 of the 16
  /// columns, by up to 0.30 on the phones (docs/performance.md). Linear, so a latency that
  /// adds up over layers stays linear in the features (`statistics` are logs, for trees).
  /// The scale is recomputed from the space (same space and --set, same fingerprint, same
  /// scale) and saved models record it (features_to_json with the space), so a model fitted
  /// under other constants or another version of the analytic costs is refused on load.
  bool linear_costs = false;
  bool onehot = true;  ///< include the one-hot encoding itself (off: counts or statistics alone)
  // (Fields added after onehot, so positional initialisers written before them keep meaning.)
  /// Add network-wide counts: per group of op and value decisions whose names differ only in
  /// their `[k]` indices and that offer the same options (every stage's blocks; every block's
  /// kernel; a cell's edges), how many active ones take each option; a group of one decision
  /// adds nothing. Beside stage counts an option's cost then splits into a part shared by
  /// every stage and a per-stage deviation, and ridge learns the shared part from all stages'
  /// samples at once (a hierarchical prior). On FBNet from 100 samples, with first blocks as
  /// deviations and linear costs, Spearman rises on 12 of the 16 columns, most on the noisy
  /// ones (1080ti_1 0.892 -> 0.922, silver_4114 0.886 -> 0.906, gold_6240 0.921 -> 0.934),
  /// holds on three and falls by 0.002 on samsung_s7 (docs/performance.md): let
  /// choose_features decide per device.
  bool network_counts = false;
  /// Describe the network a graph runtime actually runs once it removes dead code
  /// (`live_layers`: branches that reach the output only through `none` edges are dropped,
  /// and a network whose output does not depend on its input is folded away entirely): add,
  /// per op option of the space's op decisions (in the order they first appear), how many
  /// live layers took it, and with linear_costs the same five costs again over the live
  /// layers alone (standardised over the same samples' live layers). For devices measured
  /// through such a runtime: on NAS-Bench-201's Pixel 3 column (TFLite) ridge from 100
  /// samples ranks at Spearman 0.967 with them against 0.910 without (docs/performance.md).
  /// Eager runtimes (PyTorch, nasforge's own tables) run every layer: leave it off there. The
  /// full-network features stay, so ridge weighs the two views.
  bool pruned_graph = false;
};
/// linear_costs: how many seeded random architectures set each cost's mean and spread, the
/// seed, and the weight on the standardised cost (10: its weight costs ridge 1/100 as much).
inline constexpr int kLinearCostSamples = 256;
inline constexpr std::uint64_t kLinearCostSeed = 20261127;
inline constexpr double kLinearCostWeight = 10.0;
/// The scale of stage_first_delta's entries: 1/sqrt(10), so ridge penalises their weights 10x.
/// (Chosen on FBNet's 16 columns: leave-one-out choice among 1x-100x did no better than 10x.)
inline constexpr float kFirstDeltaScale = 0.31622777F;
/// `{"pairwise": .., "statistics": .., "stage_counts": .., "stage_first_apart": ..,
/// "stage_first_delta": .., "edge_counts": .., "linear_costs": .., "onehot": ..}`, plus
/// `"network_counts": true` and `"pruned_graph": true` when on (so that builds before them
/// read the rest); absent keys take their defaults, unknown keys are an InvalidArgument, and
/// so are stage_first_apart with
/// stage_first_delta, and either of them without stage_counts (before these checks a
/// refinement of counts that were off was ignored).
nlohmann::json features_to_json(const FeatureOptions& options);
FeatureOptions features_from_json(const nlohmann::json& j);
/// The same, for a model of `space`: with linear_costs the JSON also records the costs' scale
/// (`"linear_cost_scale": {"mean": [..], "sd": [..]}`; with pruned_graph too, the live layers'
/// as `"pruned_cost_scale"`), and reading them back checks that this
/// build scales them the same way — InvalidArgument ("refit it") where the analytic costs or
/// the sampling changed since the model was saved. Saved models use these.
nlohmann::json features_to_json(const FeatureOptions& options, const SearchSpace& space);
FeatureOptions features_from_json(const nlohmann::json& j, const SearchSpace& space);

/// The feature vector of `arch` (fixed length for a space and options): the one-hot entries
/// (`onehot`), the counts (`stage_counts`, `edge_counts`: one slot per group and option, in
/// the order the groups' first decisions come), the first blocks' deviations
/// (`stage_first_delta`), the network-wide counts (`network_counts`), the live layers' op
/// counts (`pruned_graph`), pairwise products, linear costs (then the live layers' linear
/// costs, with pruned_graph), statistics. InvalidArgument for options that contradict each
/// other (see features_from_json).
std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch,
                                         const FeatureOptions& options);
/// Shorthand: one-hot, plus pairwise products when `pairwise`.
std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch, bool pairwise);

/// A regression model from feature rows to one value.
class Predictor {
 public:
  virtual ~Predictor() = default;
  /// The registry name (`ridge`, `gbdt`).
  virtual std::string name() const = 0;
  /// Fits on rows `x` (all of one length, at least one row) and targets `y`. Throws
  /// InvalidArgument on mismatched sizes or non-finite values.
  virtual void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) = 0;
  /// Predictions for rows `x` (InvalidArgument before fit or for a wrong row length).
  virtual std::vector<double> predict_batch(const std::vector<std::vector<float>>& x) const = 0;
  /// The prediction for one row.
  double predict(const std::vector<float>& row) const { return predict_batch(std::vector<std::vector<float>>{row}).front(); }
  /// True once fitted (or loaded).
  virtual bool fitted() const = 0;
  /// The model, with `{"model": name()}`; make_predictor_from_json restores it.
  virtual nlohmann::json to_json() const = 0;
};

/// Registers a predictor implemented elsewhere (the LibTorch MLP ensemble registers itself as
/// `mlp` through `nasforge::register_torch_predictors()`, torch/mlp_predictor.h): a factory
/// from options and a loader from saved JSON.
using PredictorFactory = std::function<std::unique_ptr<Predictor>(const nlohmann::json& options)>;
void register_predictor(const std::string& name, PredictorFactory make, PredictorFactory load);

/// Builds predictor `name` with `options` (see above; unknown keys are an error). Throws
/// NotFound for an unknown name.
std::unique_ptr<Predictor> make_predictor(const std::string& name, const nlohmann::json& options = nlohmann::json::object());
/// Restores a predictor saved with to_json().
std::unique_ptr<Predictor> make_predictor_from_json(const nlohmann::json& saved);

/// Ridge regression, y ≈ w·x + b, solved in closed form ((XᵀX + λI) w = Xᵀy on centred data,
/// Eigen's LDLT).
class RidgeRegression final : public Predictor {
 public:
  /// `lambda` >= 0: the L2 penalty on w (not on the intercept).
  explicit RidgeRegression(double lambda = 1.0);
  /// A ridge that picks its lambda at each fit: the value of lambda_grid() with the least
  /// exact leave-one-out squared error on the training rows (one symmetric eigendecomposition
  /// of the smaller Gram matrix serves the whole grid; 15,000 NB201 rows fit in 0.014 s).
  static RidgeRegression leave_one_out();
  /// The candidates leave_one_out() chooses from: 0.001 to 1000 in half decades.
  static const std::vector<double>& lambda_grid();
  /// The penalty in use: the chosen one after a leave-one-out fit.
  double lambda() const { return lambda_; }
  /// True for a leave_one_out() model.
  bool auto_lambda() const { return auto_; }
  /// The leave-one-out mean squared error of the chosen lambda (0 before fit or when fixed;
  /// weighted by the row weights, and with the Huber loss by the final round's weights too).
  double loo_mse() const { return loo_mse_; }
  /// The usual Huber threshold: 95% efficiency when the residuals are Gaussian.
  static constexpr double kHuberK = 1.345;
  /// The most reweighting rounds of a Huber fit.
  static constexpr int kMaxIrlsIterations = 50;
  /// Fit the Huber loss instead of squared error (robust ridge, by iteratively reweighted least
  /// squares): residuals beyond `k` robust standard deviations count linearly, so a few wild
  /// readings in the training rows (a phone's table: whole milliseconds, the odd reading 2x
  /// the rest) pull the fit less. On FBNet's samsung_s7 column from 100 rows, with linear
  /// costs: Spearman 0.740 -> 0.751 (docs/performance.md). Options `{"loss": "huber",
  /// "huber_k": k}`. Returns *this.
  RidgeRegression& with_huber_loss(double k = kHuberK);
  /// The Huber threshold, or 0 for squared error (the default).
  double huber_k() const { return huber_k_; }
  /// How many reweighting rounds the last Huber fit took (0 for squared error).
  int irls_iterations() const { return irls_iterations_; }
  std::string name() const override { return "ridge"; }
  void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) override;
  /// Weighted ridge: minimises Σ w_i (y_i - b - x_i·β)² + λ|β|² (weights >= 0, not all 0;
  /// a row of weight 0 is left out). The leave-one-out choice of lambda minimises the weighted
  /// leave-one-out error Σ w_i (y_i - ŷ_(-i))² / Σ w_i, exactly, as for unit weights. E.g. rows
  /// weighted by how many repeats their measurement is a median of.
  void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y, const std::vector<double>& row_weights);
  std::vector<double> predict_batch(const std::vector<std::vector<float>>& x) const override;
  bool fitted() const override { return fitted_; }
  nlohmann::json to_json() const override;
  /// Restores to_json() output (InvalidArgument for a malformed one).
  static RidgeRegression from_json(const nlohmann::json& j);

 private:
  double lambda_;
  bool auto_ = false;
  double loo_mse_ = 0;
  double huber_k_ = 0;
  int irls_iterations_ = 0;
  bool fitted_ = false;
  std::vector<double> w_;
  double b_ = 0;
};

/// What choose_features found: the winner and every candidate's error.
struct FeatureChoice {
  std::size_t best = 0;         ///< index of the candidate with the least leave-one-out error
  std::vector<double> loo_mse;  ///< per candidate, ridge's leave-one-out mean squared error
};
/// Which of several feature sets suits these training rows, decided on the rows alone: each
/// candidate is fitted by RidgeRegression::leave_one_out() to `y` (pass log latency to choose
/// for a fit of log latency), and the one with the least exact leave-one-out squared error
/// wins (a tie: the earlier). Leave-one-out estimates the error on new architectures without
/// holding rows out, so a device whose runtime is unknown can pick, say, between the full
/// network's features and `pruned_graph`'s: on NAS-Bench-201 from 100 rows it takes
/// pruned_graph on Pixel 3 (TFLite) in 5 of 5 seeds and the full network's features on most
/// fits of the other 15 columns (docs/performance.md). The choice is a linear model's; a tree
/// model fitted on the winner may prefer another. InvalidArgument for no candidates, sizes
/// that differ, fewer than 3 rows, or a candidate architecture_features rejects.
FeatureChoice choose_features(const SearchSpace& space,
                              const std::vector<FeatureOptions>& candidates,
                              const std::vector<Architecture>& archs, const std::vector<double>& y);

/// Gradient-boosted regression trees (XGBoost, squared error).
class GbdtRegressor final : public Predictor {
 public:
  struct Options {
    int rounds = 300;
    int depth = 6;
    double eta = 0.1;
    double subsample = 0.8;
    double min_child_weight = 1;
    std::uint64_t seed = 0;
  };
  explicit GbdtRegressor(Options options);
  GbdtRegressor() : GbdtRegressor(Options{}) {}
  ~GbdtRegressor() override;
  GbdtRegressor(const GbdtRegressor&) = delete;
  GbdtRegressor& operator=(const GbdtRegressor&) = delete;
  std::string name() const override { return "gbdt"; }
  void fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) override;
  std::vector<double> predict_batch(const std::vector<std::vector<float>>& x) const override;
  bool fitted() const override { return booster_ != nullptr; }
  nlohmann::json to_json() const override;
  /// Restores to_json() output.
  static std::unique_ptr<GbdtRegressor> from_json(const nlohmann::json& j);

 private:
  Options o_;
  void* booster_ = nullptr;  // BoosterHandle
  std::size_t features_ = 0;
};

/// Ranks scaled to [0, 1] (ties share their mean rank): the rank transform of Spearman's
/// correlation, and LINAS's targets (NSGA-II needs an objective's order only).
std::vector<double> fractional_ranks(const std::vector<double>& values);

/// Rank correlation and error statistics of predictions against measurements.
struct PredictionQuality {
  double spearman = 0, kendall = 0, rmse = 0, mape = 0;
  double within_10pct = 0;  ///< share of predictions within ±10% of the measurement
};
/// Computes them (sizes must match, at least two values).
PredictionQuality prediction_quality(const std::vector<double>& predicted, const std::vector<double>& measured);

}  // namespace nasforge
