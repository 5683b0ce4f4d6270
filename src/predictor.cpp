#include "nasforge/predictor.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <Eigen/Dense>
#include <fmt/format.h>
#include <xgboost/c_api.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/random.h"
#include "detail/stats.h"

namespace nasforge {
namespace {

void check_rows(const std::vector<std::vector<float>>& x, const std::vector<double>& y, const char* who) {
  NASFORGE_CHECK(!x.empty() && x.size() == y.size(), "{}::fit: expected as many rows as targets (>= 1), got {} and {}", who,
                 x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    NASFORGE_CHECK(x[i].size() == x[0].size(), "{}::fit: row {} has {} features, row 0 has {}", who, i, x[i].size(), x[0].size());
    NASFORGE_CHECK(std::isfinite(y[i]), "{}::fit: target {} is not finite ({})", who, i, y[i]);
  }
}

void xgb(int rc, const char* what) {
  if (rc != 0) throw InvalidArgument(fmt::format("XGBoost {}: {}", what, XGBGetLastError()));
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(a.size());
  mb /= static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

}  // namespace

// ---- features -------------------------------------------------------------------------------

namespace {
// How the decisions fall into count groups: decisions whose names differ only in the index of
// a `block[k]` (with `stage_counts`) or an `edge[k]` (with `edge_counts`) and that offer the
// same options share one; with `stage_first_apart`, `block[0]` is a group of its own. Every
// other decision is a group by itself. `network_wide` (network_counts): every `[k]` index is
// ignored instead, and only op and value decisions are grouped (the others: kNoGroup).
struct CountGroups {
  static constexpr std::size_t kNoGroup = static_cast<std::size_t>(-1);
  std::vector<std::size_t> of;    // per decision, its group
  std::vector<std::size_t> size;  // per group, how many decisions
  std::vector<bool> first;        // per decision: its name holds `block[0]`
};

CountGroups count_groups(const SearchSpace& space, const FeatureOptions& options,
                         bool network_wide = false) {
  const auto& ds = space.decisions();
  std::map<std::pair<std::string, std::vector<Value>>, std::size_t> ids;
  CountGroups g;
  g.of.assign(ds.size(), CountGroups::kNoGroup);
  g.first.resize(ds.size());
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (network_wide && ds[d].kind != DecisionKind::kOp && ds[d].kind != DecisionKind::kValue) {
      continue;
    }
    std::string key;
    const std::string& name = ds[d].name;
    for (std::size_t i = 0; i < name.size();) {
      // An index `[k]`: digits up to the first non-digit, which must be `]`.
      std::size_t j = i + 1;
      while (name[i] == '[' && j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
      if (name[i] == '[' && j > i + 1 && j < name.size() && name[j] == ']') {
        const bool block = key.ends_with("block"), edge = key.ends_with("edge");
        const bool is_first = block && j == i + 2 && name[i + 1] == '0';
        g.first[d] = g.first[d] || is_first;
        if (network_wide || (block && options.stage_counts) || (edge && options.edge_counts)) {
          key += !network_wide && options.stage_first_apart && is_first ? "[0]" : "[*]";
          i = j + 1;
          continue;
        }
      }
      key += name[i++];
    }
    g.of[d] = ids.try_emplace({key, ds[d].options}, ids.size()).first->second;
  }
  g.size.assign(ids.size(), 0);
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (g.of[d] != CountGroups::kNoGroup) ++g.size[g.of[d]];
  }
  return g;
}

// Appends, per group of at least `min_size` decisions, one slot per option: how many of its
// decisions take it (from the one-hot encoding `f`, where an inactive decision is all zeros).
void append_counts(std::vector<float>& out, const std::vector<float>& f, const SearchSpace& space,
                   const CountGroups& g, std::size_t min_size) {
  const auto& ds = space.decisions();
  std::vector<std::size_t> width(g.size.size(), 0);
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (g.of[d] != CountGroups::kNoGroup) width[g.of[d]] = ds[d].options.size();
  }
  std::vector<std::size_t> offset(g.size.size() + 1, 0);  // a group's slots: one per option
  for (std::size_t k = 0; k < g.size.size(); ++k) {
    offset[k + 1] = offset[k] + (g.size[k] >= min_size ? width[k] : 0);
  }
  const std::size_t base = out.size();
  out.resize(base + offset.back(), 0.0F);
  std::size_t at = 0;
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (g.of[d] != CountGroups::kNoGroup && g.size[g.of[d]] >= min_size) {
      for (std::size_t i = 0; i < ds[d].options.size(); ++i) out[base + offset[g.of[d]] + i] += f[at + i];
    }
    at += ds[d].options.size();
  }
}

// linear_costs: MACs, params, activation bytes the computing layers write (outputs and internal
// intermediates), layers with MACs, all layers.
constexpr std::size_t kLinearCosts = 5;
// With `live` (pruned_graph), the live layers' alone.
std::array<double, kLinearCosts> linear_costs_of(const AnalyticCosts& c,
                                                 const std::vector<bool>* live = nullptr) {
  std::array<double, kLinearCosts> v{};
  for (std::size_t i = 0; i < c.layers.size(); ++i) {
    if (live && !(*live)[i]) continue;
    const LayerCosts& layer = c.layers[i];
    v[0] += static_cast<double>(layer.macs);
    v[1] += static_cast<double>(layer.params);
    v[4] += 1;
    if (layer.macs == 0) continue;
    v[2] += static_cast<double>(layer.output_bytes + layer.workspace_bytes);
    v[3] += 1;
  }
  return v;
}

// pruned_graph: the op options of the space's op decisions, each once, in first-seen order.
std::vector<std::string> op_labels(const SearchSpace& space) {
  std::vector<std::string> labels;
  for (const auto& d : space.decisions()) {
    if (d.kind != DecisionKind::kOp) continue;
    for (const auto& v : d.options) {
      const std::string label = v.is_string() ? v.as_string() : v.repr();
      if (std::find(labels.begin(), labels.end(), label) == labels.end()) labels.push_back(label);
    }
  }
  return labels;
}

// Per space (by fingerprint), the mean and standard deviation of each linear cost over
// kLinearCostSamples seeded random architectures, of the whole network and of its live layers
// (pruned_graph): computed once, then shared.
struct CostMoments {
  std::array<double, kLinearCosts> mean{}, sd{};
};
struct CostScale {
  CostMoments full, pruned;
};
const CostScale& linear_cost_scale(const SearchSpace& space) {
  static std::mutex mutex;
  static std::map<std::string, CostScale> cache;
  std::lock_guard lock(mutex);
  auto it = cache.find(space.fingerprint());
  if (it != cache.end()) return it->second;
  Rng rng(kLinearCostSeed);
  std::array<double, kLinearCosts> sum{}, sum2{}, psum{}, psum2{};
  for (int i = 0; i < kLinearCostSamples; ++i) {
    const ConcreteNetwork net = space.resolve(space.sample(rng));
    const AnalyticCosts c = analytic_costs(net);
    const std::vector<bool> live = live_layers(net);
    const auto v = linear_costs_of(c), p = linear_costs_of(c, &live);
    for (std::size_t k = 0; k < kLinearCosts; ++k) {
      sum[k] += v[k], sum2[k] += v[k] * v[k], psum[k] += p[k], psum2[k] += p[k] * p[k];
    }
  }
  auto moments = [](const std::array<double, kLinearCosts>& s1,
                    const std::array<double, kLinearCosts>& s2) {
    CostMoments m;
    for (std::size_t k = 0; k < kLinearCosts; ++k) {
      m.mean[k] = s1[k] / kLinearCostSamples;
      const double var = s2[k] / kLinearCostSamples - m.mean[k] * m.mean[k];
      m.sd[k] =
          var > 1e-12 * (1.0 + m.mean[k] * m.mean[k]) ? std::sqrt(var) : 0.0;  // 0: a constant
    }
    return m;
  };
  return cache.emplace(space.fingerprint(), CostScale{moments(sum, sum2), moments(psum, psum2)})
      .first->second;
}

void check_features(const FeatureOptions& o) {
  NASFORGE_CHECK(!(o.stage_first_apart && o.stage_first_delta),
                 "features: stage_first_apart and stage_first_delta are two treatments of a stage's first block "
                 "(a group of its own, or counted with the rest plus a shrunken deviation); choose one");
  NASFORGE_CHECK(o.stage_counts || !(o.stage_first_apart || o.stage_first_delta),
                 "features: stage_first_apart and stage_first_delta refine stage_counts, which is off");
}
}  // namespace

nlohmann::json features_to_json(const FeatureOptions& o) {
  nlohmann::json j{{"pairwise", o.pairwise},
                   {"statistics", o.statistics},
                   {"stage_counts", o.stage_counts},
                   {"stage_first_apart", o.stage_first_apart},
                   {"stage_first_delta", o.stage_first_delta},
                   {"edge_counts", o.edge_counts},
                   {"linear_costs", o.linear_costs},
                   {"onehot", o.onehot}};
  // Newer options only when on, so that builds before them can still read models without them.
  if (o.network_counts) j["network_counts"] = true;
  if (o.pruned_graph) j["pruned_graph"] = true;
  return j;
}

FeatureOptions features_from_json(const nlohmann::json& j) {
  NASFORGE_CHECK(j.is_object(), "features: expected a JSON object, got {}", j.dump());
  FeatureOptions o;
  for (const auto& [key, value] : j.items()) {
    // The cost scales are checked by the overload that has the space.
    if (key == "linear_cost_scale" || key == "pruned_cost_scale") continue;
    NASFORGE_CHECK(value.is_boolean(), "features: \"{}\" must be true or false, got {}", key, value.dump());
    if (key == "pairwise") o.pairwise = value.get<bool>();
    else if (key == "statistics") o.statistics = value.get<bool>();
    else if (key == "stage_counts") o.stage_counts = value.get<bool>();
    else if (key == "stage_first_apart") o.stage_first_apart = value.get<bool>();
    else if (key == "stage_first_delta") o.stage_first_delta = value.get<bool>();
    else if (key == "edge_counts") o.edge_counts = value.get<bool>();
    else if (key == "linear_costs") o.linear_costs = value.get<bool>();
    else if (key == "network_counts") o.network_counts = value.get<bool>();
    else if (key == "pruned_graph") o.pruned_graph = value.get<bool>();
    else if (key == "onehot") o.onehot = value.get<bool>();
    else throw InvalidArgument(
          fmt::format("features: unknown key \"{}\" (expected pairwise, statistics, stage_counts, "
                      "stage_first_apart, stage_first_delta, edge_counts, linear_costs, "
                      "network_counts, pruned_graph, onehot)",
                      key));
  }
  check_features(o);
  return o;
}

nlohmann::json features_to_json(const FeatureOptions& options, const SearchSpace& space) {
  nlohmann::json j = features_to_json(options);
  if (options.linear_costs) {
    const CostScale& scale = linear_cost_scale(space);
    j["linear_cost_scale"] = {{"mean", scale.full.mean}, {"sd", scale.full.sd}};
    if (options.pruned_graph)
      j["pruned_cost_scale"] = {{"mean", scale.pruned.mean}, {"sd", scale.pruned.sd}};
  }
  return j;
}

namespace {
// A saved cost scale (`key`) against the one this build computes.
void check_cost_scale(const nlohmann::json& j, const char* key, const CostMoments& now,
                      const SearchSpace& space) {
  if (!j.contains(key)) return;
  try {
    const auto& saved = j.at(key);
    const auto mean = saved.at("mean").get<std::vector<double>>(), sd = saved.at("sd").get<std::vector<double>>();
    NASFORGE_CHECK(mean.size() == kLinearCosts && sd.size() == kLinearCosts,
                   "features: \"{}\" must hold {} means and {} spreads, got {} and {}", key,
                   kLinearCosts, kLinearCosts, mean.size(), sd.size());
    auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)}); };
    for (std::size_t k = 0; k < kLinearCosts; ++k) {
      NASFORGE_CHECK(
          same(mean[k], now.mean[k]) && same(sd[k], now.sd[k]),
          "features: the model's {} were scaled by mean {} and spread {} for cost {} of space "
          "\"{}\", this build computes {} and {}: it was fitted by another version of the analytic "
          "costs; refit it",
          key, mean[k], sd[k], k, space.name(), now.mean[k], now.sd[k]);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(fmt::format("features: a malformed \"{}\" ({})", key, e.what()));
  }
}
}  // namespace

FeatureOptions features_from_json(const nlohmann::json& j, const SearchSpace& space) {
  FeatureOptions o = features_from_json(j);
  if (!o.linear_costs) return o;
  const CostScale& now = linear_cost_scale(space);
  check_cost_scale(j, "linear_cost_scale", now.full, space);
  if (o.pruned_graph) {
    // (Older models may lack linear_cost_scale; every model with pruned_graph saved this one.)
    NASFORGE_CHECK(
        j.contains("pruned_cost_scale"),
        "features: pruned_graph with linear_costs needs \"pruned_cost_scale\" (the live layers' "
        "cost scale), which this model lacks; refit it");
    check_cost_scale(j, "pruned_cost_scale", now.pruned, space);
  }
  return o;
}

std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch, const FeatureOptions& options) {
  check_features(options);
  std::vector<float> f = space.encode_onehot(arch);
  std::vector<float> out;
  if (options.onehot) out = f;
  if (options.stage_counts || options.edge_counts) {
    const auto& ds = space.decisions();
    const CountGroups g = count_groups(space, options);
    append_counts(out, f, space, g, 1);
    if (options.stage_first_delta) {  // the first blocks' one-hot, scaled
      std::size_t at = 0;
      for (std::size_t d = 0; d < ds.size(); ++d) {
        if (g.first[d] && g.size[g.of[d]] > 1) {
          for (std::size_t i = 0; i < ds[d].options.size(); ++i) out.push_back(kFirstDeltaScale * f[at + i]);
        }
        at += ds[d].options.size();
      }
    }
  }
  // Groups of op and value decisions whose names match with every `[k]` index removed; a group
  // of one decision would repeat its one-hot entries and is left out.
  if (options.network_counts) append_counts(out, f, space, count_groups(space, options, true), 2);
  std::optional<ConcreteNetwork> net;
  std::vector<bool> live;
  if (options.pruned_graph) {
    net = space.resolve(arch);
    live = live_layers(*net);
    const auto labels = op_labels(space);
    std::vector<float> counts(labels.size(), 0.0F);
    for (std::size_t i = 0; i < net->layers.size(); ++i) {
      if (!live[i] || net->layers[i].choice.empty()) continue;
      const auto at = std::find(labels.begin(), labels.end(), net->layers[i].choice);
      if (at != labels.end()) counts[static_cast<std::size_t>(at - labels.begin())] += 1.0F;
    }
    out.insert(out.end(), counts.begin(), counts.end());
  }
  if (options.pairwise) {
    // A slot for every pair of one-hot positions of different decisions (fixed layout).
    const auto& ds = space.decisions();
    std::vector<std::size_t> offset(ds.size() + 1, 0);
    for (std::size_t d = 0; d < ds.size(); ++d) offset[d + 1] = offset[d] + ds[d].options.size();
    for (std::size_t d = 0; d < ds.size(); ++d) {
      for (std::size_t e = d + 1; e < ds.size(); ++e) {
        for (std::size_t i = offset[d]; i < offset[d + 1]; ++i) {
          for (std::size_t j = offset[e]; j < offset[e + 1]; ++j) out.push_back(f[i] * f[j]);
        }
      }
    }
  }
  if (!options.linear_costs && !options.statistics) return out;
  if (!net) net = space.resolve(arch);
  const AnalyticCosts c = analytic_costs(*net);
  if (options.linear_costs) {
    const CostScale& scale = linear_cost_scale(space);
    auto push = [&](const std::array<double, kLinearCosts>& v, const CostMoments& m) {
      for (std::size_t k = 0; k < kLinearCosts; ++k) {
        out.push_back(m.sd[k] > 0
                          ? static_cast<float>(kLinearCostWeight * (v[k] - m.mean[k]) / m.sd[k])
                          : 0.0F);
      }
    };
    push(linear_costs_of(c), scale.full);
    if (options.pruned_graph) push(linear_costs_of(c, &live), scale.pruned);
  }
  if (options.statistics) {
    out.push_back(static_cast<float>(std::log1p(static_cast<double>(c.params))));
    out.push_back(static_cast<float>(std::log1p(static_cast<double>(c.macs))));
  }
  return out;
}

std::vector<float> architecture_features(const SearchSpace& space, const Architecture& arch, bool pairwise) {
  return architecture_features(space, arch, FeatureOptions{pairwise, false});
}

// ---- ridge ----------------------------------------------------------------------------------

FeatureChoice choose_features(const SearchSpace& space,
                              const std::vector<FeatureOptions>& candidates,
                              const std::vector<Architecture>& archs,
                              const std::vector<double>& y) {
  NASFORGE_CHECK(!candidates.empty(),
                 "choose_features: expected at least one candidate feature set, got none");
  NASFORGE_CHECK(archs.size() == y.size(),
                 "choose_features: expected one target per architecture, got {} and {}",
                 archs.size(), y.size());
  NASFORGE_CHECK(archs.size() >= 3,
                 "choose_features: expected at least 3 rows to leave one out of, got {}",
                 archs.size());
  FeatureChoice choice;
  for (const auto& options : candidates) {
    std::vector<std::vector<float>> x;
    x.reserve(archs.size());
    for (const auto& a : archs) x.push_back(architecture_features(space, a, options));
    RidgeRegression ridge = RidgeRegression::leave_one_out();
    ridge.fit(x, y);
    choice.loo_mse.push_back(ridge.loo_mse());
    if (ridge.loo_mse() < choice.loo_mse[choice.best]) choice.best = choice.loo_mse.size() - 1;
  }
  return choice;
}

RidgeRegression::RidgeRegression(double lambda) : lambda_(lambda) {
  NASFORGE_CHECK(lambda >= 0 && std::isfinite(lambda), "RidgeRegression: expected lambda >= 0, got {}", lambda);
}

RidgeRegression RidgeRegression::leave_one_out() {
  RidgeRegression r(1.0);
  r.auto_ = true;
  return r;
}

const std::vector<double>& RidgeRegression::lambda_grid() {
  static const std::vector<double> grid{1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000};
  return grid;
}

RidgeRegression& RidgeRegression::with_huber_loss(double k) {
  NASFORGE_CHECK(k > 0 && std::isfinite(k), "RidgeRegression: expected a Huber threshold k > 0 (in robust standard "
                 "deviations of the residuals), got {}", k);
  huber_k_ = k;
  return *this;
}

namespace {
// A weighted ridge fit with an unpenalised intercept: minimises Σ w_i (y_i - b - x_i·β)² + λ|β|².
// Centring on the weighted means takes the intercept out exactly; scaling a row by √w_i makes
// the rest an ordinary ridge, whose hat matrix on the centred, scaled rows plus the intercept's
// w_i / Σw gives the exact weighted leave-one-out residuals √w_i (y_i - ŷ_(-i)) = r̃_i / (1 - h_ii).
struct WeightedRidge {
  Eigen::VectorXd beta;
  double b = 0;
  double lambda = 0;
  double loo_mse = 0;  // Σ w_i (y_i - ŷ_(-i))² / Σ w_i, for a leave-one-out choice of lambda
};

WeightedRidge weighted_ridge(const Eigen::MatrixXd& X0, const Eigen::VectorXd& Y0, const Eigen::VectorXd& weights,
                             double lambda, bool choose) {
  const Eigen::Index n = X0.rows(), p = X0.cols();
  const double wsum = weights.sum();
  const Eigen::RowVectorXd mx = (weights.transpose() * X0) / wsum;
  const double my = weights.dot(Y0) / wsum;
  const Eigen::VectorXd sw = weights.cwiseSqrt();
  Eigen::MatrixXd X = X0;
  X.rowwise() -= mx;
  X = sw.asDiagonal() * X;
  const Eigen::VectorXd Y = sw.cwiseProduct((Y0.array() - my).matrix());
  WeightedRidge out;
  out.lambda = lambda;
  if (choose) {
    // One eigendecomposition of the smaller Gram matrix serves every lambda of the grid: with
    // XᵀX = V S Vᵀ (or XXᵀ = U S Uᵀ when p > n) the fit and the hat matrix's diagonal are sums
    // over the eigenvalues.
    const bool primal = p <= n;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(primal ? Eigen::MatrixXd(X.transpose() * X)
                                                              : Eigen::MatrixXd(X * X.transpose()));
    const Eigen::VectorXd ev = eig.eigenvalues().cwiseMax(0.0);
    const Eigen::MatrixXd B = primal ? Eigen::MatrixXd(X * eig.eigenvectors()) : eig.eigenvectors();  // n x k
    const Eigen::VectorXd by = B.transpose() * Y;
    const Eigen::MatrixXd B2 = B.array().square();
    double best = std::numeric_limits<double>::infinity();
    for (double l : RidgeRegression::lambda_grid()) {
      // primal: ŷ = B diag(1/(s+λ)) Bᵀ y, H_ii = Σ B_ij² / (s_j + λ)
      // dual:   ŷ = U diag(s/(s+λ)) Uᵀ y,    H_ii = Σ U_ij² s_j / (s_j + λ)
      Eigen::VectorXd g(ev.size());
      for (Eigen::Index j = 0; j < ev.size(); ++j) g(j) = (primal ? 1.0 : ev(j)) / (ev(j) + l);
      const Eigen::VectorXd fitted = B * g.cwiseProduct(by);
      const Eigen::VectorXd h = (B2 * g).array() + weights.array() / wsum;
      double loo = 0;
      for (Eigen::Index i = 0; i < n; ++i) {
        const double r = (Y(i) - fitted(i)) / std::max(1e-12, 1.0 - h(i));
        loo += r * r;
      }
      if (loo < best) best = loo, out.lambda = l;
    }
    out.loo_mse = best / wsum;
  }
  const double ridge = out.lambda > 0 ? out.lambda : 1e-9;  // a tiny ridge keeps rank-deficient fits solvable
  if (p <= n) {  // primal: (XᵀX + λI) β = Xᵀy, a p x p system
    Eigen::MatrixXd A = X.transpose() * X;
    A.diagonal().array() += ridge;
    out.beta = A.ldlt().solve(X.transpose() * Y);
  } else {  // dual, the same solution: β = Xᵀ (XXᵀ + λI)⁻¹ y, an n x n system (pairwise FBNet: p = 18,909)
    Eigen::MatrixXd K = X * X.transpose();
    K.diagonal().array() += ridge;
    out.beta = X.transpose() * K.ldlt().solve(Y);
  }
  out.b = my - mx.dot(out.beta);
  return out;
}

}  // namespace

void RidgeRegression::fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) {
  fit(x, y, std::vector<double>(x.size(), 1.0));
}

void RidgeRegression::fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y,
                          const std::vector<double>& row_weights) {
  check_rows(x, y, "RidgeRegression");
  NASFORGE_CHECK(row_weights.size() == y.size(), "RidgeRegression::fit: expected one weight per row ({}), got {}",
                 y.size(), row_weights.size());
  double total = 0;
  for (std::size_t i = 0; i < row_weights.size(); ++i) {
    NASFORGE_CHECK(std::isfinite(row_weights[i]) && row_weights[i] >= 0,
                   "RidgeRegression::fit: weight {} must be finite and >= 0, got {}", i, row_weights[i]);
    total += row_weights[i];
  }
  NASFORGE_CHECK(total > 0, "RidgeRegression::fit: every row weight is 0");
  const auto n = static_cast<Eigen::Index>(x.size()), p = static_cast<Eigen::Index>(x[0].size());
  Eigen::MatrixXd X(n, p);
  Eigen::VectorXd Y(n), user(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const auto r = static_cast<std::size_t>(i);
    for (Eigen::Index j = 0; j < p; ++j) X(i, j) = x[r][static_cast<std::size_t>(j)];
    Y(i) = y[r];
    user(i) = row_weights[r];
  }
  WeightedRidge fit = weighted_ridge(X, Y, user, lambda_, auto_);  // (a fixed lambda_ comes back unchanged)
  irls_iterations_ = 0;
  if (huber_k_ > 0) {
    // Huber loss by iteratively reweighted least squares: a row whose residual is beyond k
    // robust standard deviations (1.4826 x the median absolute residual of the rows that
    // weigh, re-estimated each round) weighs k s / |r| (times its own weight), so its pull
    // grows linearly, not quadratically. Lambda is chosen again each round by the weighted
    // leave-one-out error. Stops when no Huber weight moves by 1e-4, or at once when the fit
    // is exact to 1e-8 of the targets' range (nothing is an outlier).
    Eigen::VectorXd huber = Eigen::VectorXd::Ones(n);
    for (int round = 0; round < kMaxIrlsIterations; ++round) {
      const Eigen::VectorXd r = Y - ((X * fit.beta).array() + fit.b).matrix();
      std::vector<double> abs_r;
      for (Eigen::Index i = 0; i < n; ++i) {
        if (user(i) > 0) abs_r.push_back(std::abs(r(i)));
      }
      const double scale = 1.4826 * detail::median(abs_r);
      if (!(scale > 1e-8 * (Y.maxCoeff() - Y.minCoeff()))) break;  // (nearly) exact: nothing is an outlier
      Eigen::VectorXd next(n);
      for (Eigen::Index i = 0; i < n; ++i) next(i) = std::min(1.0, huber_k_ * scale / std::max(std::abs(r(i)), 1e-300));
      const double moved = (next - huber).cwiseAbs().maxCoeff();
      huber = next;
      fit = weighted_ridge(X, Y, user.cwiseProduct(huber), lambda_, auto_);
      ++irls_iterations_;
      if (moved < 1e-4) break;
    }
  }
  lambda_ = fit.lambda;
  loo_mse_ = auto_ ? fit.loo_mse : 0.0;
  w_.assign(fit.beta.data(), fit.beta.data() + fit.beta.size());
  b_ = fit.b;
  fitted_ = true;
}

std::vector<double> RidgeRegression::predict_batch(const std::vector<std::vector<float>>& x) const {
  NASFORGE_CHECK(fitted_, "RidgeRegression::predict: call fit first");
  std::vector<double> out;
  out.reserve(x.size());
  for (const auto& row : x) {
    NASFORGE_CHECK(row.size() == w_.size(), "RidgeRegression::predict: expected {} features, got {}", w_.size(), row.size());
    double s = b_;
    for (std::size_t i = 0; i < row.size(); ++i) s += w_[i] * row[i];
    out.push_back(s);
  }
  return out;
}

nlohmann::json RidgeRegression::to_json() const {
  nlohmann::json j{{"model", "ridge"}, {"lambda", lambda_}, {"fitted", fitted_}, {"w", w_}, {"b", b_}};
  if (auto_) j["auto"] = true, j["loo_mse"] = loo_mse_;
  if (huber_k_ > 0) j["loss"] = "huber", j["huber_k"] = huber_k_, j["irls_iterations"] = irls_iterations_;
  return j;
}

namespace {
// The loss keys of ridge options or of a saved ridge: "loss" ("squared", the default, or
// "huber") and "huber_k" (only with "huber"; options default it, a saved model must have it).
void apply_ridge_loss(RidgeRegression& r, const nlohmann::json& j, bool saved) {
  const std::string loss = j.value("loss", "squared");
  NASFORGE_CHECK(loss == "squared" || loss == "huber", "ridge: \"loss\" must be \"squared\" or \"huber\", got \"{}\"", loss);
  NASFORGE_CHECK(loss == "huber" || !j.contains("huber_k"), "ridge: \"huber_k\" needs \"loss\": \"huber\"");
  if (loss != "huber") return;
  NASFORGE_CHECK(!saved || j.contains("huber_k"), "ridge: a saved Huber model lacks \"huber_k\"");
  r.with_huber_loss(j.value("huber_k", RidgeRegression::kHuberK));
}
}  // namespace

RidgeRegression RidgeRegression::from_json(const nlohmann::json& j) try {
  NASFORGE_CHECK(j.is_object(), "ridge: expected a saved model (a JSON object), got {}", j.dump());
  RidgeRegression r(j.at("lambda").get<double>());
  r.auto_ = j.value("auto", false);
  r.loo_mse_ = j.value("loo_mse", 0.0);
  apply_ridge_loss(r, j, /*saved=*/true);
  if (r.huber_k_ > 0) r.irls_iterations_ = j.value("irls_iterations", 0);
  r.fitted_ = j.at("fitted");
  r.w_ = j.at("w").get<std::vector<double>>();
  r.b_ = j.at("b");
  return r;
} catch (const nlohmann::json::exception& e) {
  throw InvalidArgument(fmt::format("ridge: a malformed saved model ({})", e.what()));
}

// ---- gradient-boosted trees -----------------------------------------------------------------

GbdtRegressor::GbdtRegressor(Options options) : o_(options) {
  NASFORGE_CHECK(o_.rounds >= 1 && o_.depth >= 1 && o_.eta > 0 && o_.subsample > 0 && o_.subsample <= 1,
                 "GbdtRegressor: expected rounds >= 1, depth >= 1, eta > 0, subsample in (0, 1]");
}

GbdtRegressor::~GbdtRegressor() {
  if (booster_) XGBoosterFree(booster_);
}

void GbdtRegressor::fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) {
  check_rows(x, y, "GbdtRegressor");
  const std::size_t features = x[0].size();
  std::vector<float> flat;
  flat.reserve(x.size() * features);
  for (const auto& row : x) flat.insert(flat.end(), row.begin(), row.end());
  std::vector<float> labels(y.begin(), y.end());
  // Handles are freed on every path; the previous model is replaced only on success.
  struct Handles {
    DMatrixHandle d = nullptr;
    BoosterHandle b = nullptr;
    ~Handles() {
      if (b) XGBoosterFree(b);
      if (d) XGDMatrixFree(d);
    }
  } h;
  xgb(XGDMatrixCreateFromMat(flat.data(), x.size(), features, NAN, &h.d), "create matrix");
  xgb(XGDMatrixSetFloatInfo(h.d, "label", labels.data(), labels.size()), "set labels");
  xgb(XGBoosterCreate(&h.d, 1, &h.b), "create booster");
  auto set = [&](const char* k, const std::string& v) { xgb(XGBoosterSetParam(h.b, k, v.c_str()), k); };
  set("objective", "reg:squarederror");
  set("max_depth", std::to_string(o_.depth));
  set("eta", fmt::format("{}", o_.eta));
  set("subsample", fmt::format("{}", o_.subsample));
  set("min_child_weight", fmt::format("{}", o_.min_child_weight));
  set("seed", std::to_string(o_.seed));
  set("tree_method", "hist");  // histogram splits: fast, and exact enough for one-hot features
  set("nthread", "1");         // deterministic, and callers parallelise across models
  set("verbosity", "0");
  for (int i = 0; i < o_.rounds; ++i) xgb(XGBoosterUpdateOneIter(h.b, i, h.d), "train");
  if (booster_) XGBoosterFree(booster_);
  booster_ = h.b;
  h.b = nullptr;
  features_ = features;
}

std::vector<double> GbdtRegressor::predict_batch(const std::vector<std::vector<float>>& x) const {
  NASFORGE_CHECK(booster_, "GbdtRegressor::predict: call fit first");
  std::vector<float> flat;
  flat.reserve(x.size() * features_);
  for (const auto& row : x) {
    NASFORGE_CHECK(row.size() == features_, "GbdtRegressor::predict: expected {} features, got {}", features_, row.size());
    flat.insert(flat.end(), row.begin(), row.end());
  }
  // XGBoost's predict buffer belongs to the booster: one call at a time.
  static std::mutex m;
  std::lock_guard lock(m);
  DMatrixHandle d = nullptr;
  xgb(XGDMatrixCreateFromMat(flat.data(), x.size(), features_, NAN, &d), "create matrix");
  bst_ulong n = 0;
  const float* out = nullptr;
  int rc = XGBoosterPredict(booster_, d, 0, 0, 0, &n, &out);
  std::vector<double> r;
  if (rc == 0) r.assign(out, out + n);
  XGDMatrixFree(d);
  xgb(rc, "predict");
  return r;
}

nlohmann::json GbdtRegressor::to_json() const {
  nlohmann::json j{{"model", "gbdt"},
                   {"rounds", o_.rounds}, {"depth", o_.depth}, {"eta", o_.eta}, {"subsample", o_.subsample},
                   {"min_child_weight", o_.min_child_weight}, {"seed", o_.seed}, {"features", features_}};
  if (booster_) {
    bst_ulong len = 0;
    const char* buf = nullptr;
    xgb(XGBoosterSaveModelToBuffer(booster_, R"({"format": "json"})", &len, &buf), "save");
    j["booster"] = nlohmann::json::parse(std::string(buf, len));
  }
  return j;
}

std::unique_ptr<GbdtRegressor> GbdtRegressor::from_json(const nlohmann::json& j) {
  Options o;
  o.rounds = j.at("rounds");
  o.depth = j.at("depth");
  o.eta = j.at("eta");
  o.subsample = j.at("subsample");
  o.min_child_weight = j.at("min_child_weight");
  o.seed = j.at("seed");
  auto g = std::make_unique<GbdtRegressor>(o);
  g->features_ = j.at("features");
  if (j.contains("booster")) {
    const std::string text = j["booster"].dump();
    BoosterHandle b = nullptr;
    xgb(XGBoosterCreate(nullptr, 0, &b), "create booster");
    if (XGBoosterLoadModelFromBuffer(b, text.data(), text.size()) != 0) {
      std::string why = XGBGetLastError();
      XGBoosterFree(b);
      throw InvalidArgument(fmt::format("XGBoost load: {}", why));
    }
    g->booster_ = b;
  }
  return g;
}

// ---- registry and quality -------------------------------------------------------------------

namespace {
std::mutex g_registry_mutex;
std::map<std::string, std::pair<PredictorFactory, PredictorFactory>>& registry() {
  static std::map<std::string, std::pair<PredictorFactory, PredictorFactory>> r;
  return r;
}
}  // namespace

void register_predictor(const std::string& name, PredictorFactory make, PredictorFactory load) {
  NASFORGE_CHECK(make && load, "register_predictor({}): expected a factory and a loader", name);
  NASFORGE_CHECK(name != "ridge" && name != "gbdt", "register_predictor: \"{}\" is built in", name);
  std::lock_guard lock(g_registry_mutex);
  registry()[name] = {std::move(make), std::move(load)};  // registering again replaces: idempotent setup calls
}

std::unique_ptr<Predictor> make_predictor(const std::string& name, const nlohmann::json& options) try {
  {
    std::lock_guard lock(g_registry_mutex);
    auto it = registry().find(name);
    if (it != registry().end()) return it->second.first(options);
  }
  const nlohmann::json o = options.is_null() ? nlohmann::json::object() : options;
  auto check_keys = [&](std::initializer_list<const char*> known) {
    for (const auto& [k, v] : o.items()) {
      if (std::find_if(known.begin(), known.end(), [&](const char* s) { return k == s; }) == known.end()) {
        throw InvalidArgument(fmt::format("predictor \"{}\": unknown option \"{}\"", name, k));
      }
    }
  };
  if (name == "ridge") {
    check_keys({"lambda", "loss", "huber_k"});
    std::unique_ptr<RidgeRegression> r;
    if (o.contains("lambda") && o["lambda"].is_string()) {
      NASFORGE_CHECK(o["lambda"] == "auto", "ridge: \"lambda\" must be a number >= 0 or \"auto\", got {}", o["lambda"].dump());
      r = std::make_unique<RidgeRegression>(RidgeRegression::leave_one_out());
    } else {
      r = std::make_unique<RidgeRegression>(o.value("lambda", 1.0));
    }
    apply_ridge_loss(*r, o, /*saved=*/false);
    return r;
  }
  if (name == "gbdt") {
    check_keys({"rounds", "depth", "eta", "subsample", "min_child_weight", "seed"});
    GbdtRegressor::Options g;
    g.rounds = o.value("rounds", g.rounds);
    g.depth = o.value("depth", g.depth);
    g.eta = o.value("eta", g.eta);
    g.subsample = o.value("subsample", g.subsample);
    g.min_child_weight = o.value("min_child_weight", g.min_child_weight);
    g.seed = o.value("seed", g.seed);
    return std::make_unique<GbdtRegressor>(g);
  }
  std::string known = "gbdt, ridge";
  {
    std::lock_guard lock(g_registry_mutex);
    for (const auto& [k, v] : registry()) known += ", " + k;
  }
  throw NotFound(fmt::format("predictor \"{}\": no such model (known: {})", name, known));
} catch (const nlohmann::json::exception& e) {
  throw InvalidArgument(fmt::format("predictor \"{}\": an option has the wrong type ({})", name, e.what()));
}

std::unique_ptr<Predictor> make_predictor_from_json(const nlohmann::json& saved) {
  const std::string m = saved.value("model", "");
  if (m == "ridge") return std::make_unique<RidgeRegression>(RidgeRegression::from_json(saved));
  if (m == "gbdt") return GbdtRegressor::from_json(saved);
  {
    std::lock_guard lock(g_registry_mutex);
    auto it = registry().find(m);
    if (it != registry().end()) return it->second.second(saved);
  }
  throw InvalidArgument(fmt::format("expected a saved predictor with \"model\": \"ridge\" or \"gbdt\", found \"{}\"", m));
}

std::vector<double> fractional_ranks(const std::vector<double>& y) {
  std::vector<std::size_t> order(y.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return y[a] < y[b]; });
  std::vector<double> r(y.size());
  const double scale = y.size() > 1 ? 1.0 / static_cast<double>(y.size() - 1) : 1.0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && y[order[j + 1]] == y[order[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * static_cast<double>(i + j) * scale;
    i = j + 1;
  }
  return r;
}

PredictionQuality prediction_quality(const std::vector<double>& p, const std::vector<double>& y) {
  NASFORGE_CHECK(p.size() == y.size() && p.size() >= 2, "prediction_quality: expected equal sizes >= 2, got {} and {}",
                 p.size(), y.size());
  PredictionQuality q;
  q.spearman = pearson(fractional_ranks(p), fractional_ranks(y));  // scaling ranks leaves Pearson as is
  double concordant = 0, discordant = 0, tp = 0, ty = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    for (std::size_t j = i + 1; j < p.size(); ++j) {
      double a = p[i] - p[j], b = y[i] - y[j];
      if (a == 0 && b == 0) continue;
      if (a == 0) ++tp;
      else if (b == 0) ++ty;
      else if ((a > 0) == (b > 0)) ++concordant;
      else ++discordant;
    }
  }
  const double n1 = concordant + discordant + tp, n2 = concordant + discordant + ty;
  q.kendall = n1 > 0 && n2 > 0 ? (concordant - discordant) / std::sqrt(n1 * n2) : 0.0;  // tau-b
  double se = 0, ape = 0, within = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    se += (p[i] - y[i]) * (p[i] - y[i]);
    if (y[i] != 0) {
      ape += std::abs(p[i] / y[i] - 1);
      within += std::abs(p[i] / y[i] - 1) <= 0.1;
    }
  }
  q.rmse = std::sqrt(se / static_cast<double>(p.size()));
  q.mape = ape / static_cast<double>(p.size());
  q.within_10pct = within / static_cast<double>(p.size());
  return q;
}

}  // namespace nasforge
