// Differentiable search: DARTS (first/second order), PC-DARTS, DARTS-PT, latency-aware loss.
// ALGORITHMS.md sections 1-3 and 8.1 are the specification.
#include "nasforge/torch/darts.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "nasforge/error.h"
#include "nasforge/random.h"
#include "nasforge/torch/latency.h"
#include "detail/files.h"
#include "torch/schedule.h"
#include "torch/thread_scope.h"

namespace nasforge {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using ::torch::Tensor;

constexpr std::uint32_t kUndecided = std::numeric_limits<std::uint32_t>::max();

// The SGD momentum buffer of `p`, or an undefined tensor before the first step. LibTorch 1.13
// keys optimiser state by the TensorImpl address as a string (what streaming the pointer
// prints; c10::guts::to_string, which did that, is gone in 2.x), 2.x by the address itself.
template <typename Map>
auto find_state(Map& state, const Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return state.find(key.str());
  } else {
    return state.find(p.unsafeGetTensorImpl());
  }
}

Tensor momentum_buffer(::torch::optim::Optimizer& opt, const Tensor& p) {
  auto& state = opt.state();
  auto it = find_state(state, p);
  if (it == state.end()) return {};
  return static_cast<::torch::optim::SGDParamState&>(*it->second).momentum_buffer();
}

// "0+2" -> {0, 2}.
std::set<std::int64_t> sources_of(const std::string& option) {
  std::set<std::int64_t> out;
  std::size_t start = 0;
  while (start <= option.size()) {
    std::size_t end = std::min(option.find('+', start), option.size());
    out.insert(std::stoll(option.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

// The option of inputs decision `d` that keeps exactly `sources`.
std::uint32_t option_keeping(const SearchSpace& space, std::size_t d, const std::set<std::int64_t>& sources) {
  const auto& opts = space.decisions()[d].options;
  for (std::uint32_t o = 0; o < opts.size(); ++o) {
    if (sources_of(opts[o].as_string()) == sources) return o;
  }
  throw InvalidArgument(fmt::format("darts: no option of \"{}\" keeps the inputs {}", space.decisions()[d].name,
                                    fmt::join(sources, "+")));
}

std::string group_of(const std::string& decision_name) { return decision_name.substr(0, decision_name.find('.')); }

// Per op decision: which options are the zero op; per inputs decision: the edges entering its node.
struct CellLayout {
  std::vector<std::vector<bool>> zero;                                   // [decision][option]
  std::map<std::size_t, std::vector<std::pair<std::int64_t, std::size_t>>> node_edges;  // inputs decision -> (source, op decision)
};

CellLayout layout_of(const SearchSpace& space, const ConcreteNetwork& s) {
  CellLayout c;
  c.zero.resize(space.decisions().size());
  for (const auto& l : s.layers) {
    if (l.op != "mixed") continue;
    const auto d = static_cast<std::size_t>(l.attrs.i("decision"));
    c.zero[d].assign(l.inputs.size(), false);
    for (std::size_t o = 0; o < l.inputs.size(); ++o) c.zero[d][o] = s.layers[static_cast<std::size_t>(l.inputs[o])].op == "zero";
    const auto idec = l.attrs.i("input_decision");
    if (idec < 0) continue;
    auto& edges = c.node_edges[static_cast<std::size_t>(idec)];
    const std::pair<std::int64_t, std::size_t> e{l.attrs.i("source"), d};
    if (std::find(edges.begin(), edges.end(), e) == edges.end()) edges.push_back(e);
  }
  return c;
}

double number_or_nan(const json& j) { return j.is_null() ? std::nan("") : j.get<double>(); }

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json epoch_json(const DartsEpoch& e) {
  return {{"epoch", e.epoch}, {"phase", e.phase}, {"lr", e.lr}, {"train_loss", number_or_null(e.train_loss)},
          {"train_accuracy", number_or_null(e.train_accuracy)}, {"valid_loss", number_or_null(e.valid_loss)},
          {"valid_accuracy", number_or_null(e.valid_accuracy)},
          {"expected_latency_ms", e.expected_latency_ms}, {"derived", e.derived}, {"weights", e.weights},
          {"seconds", e.seconds}};
}

DartsEpoch epoch_from(const json& j) {
  DartsEpoch e;
  e.epoch = j.at("epoch");
  e.phase = j.at("phase");
  e.lr = j.at("lr");
  e.train_loss = number_or_nan(j.at("train_loss"));
  e.train_accuracy = number_or_nan(j.at("train_accuracy"));
  e.valid_loss = number_or_nan(j.at("valid_loss"));
  e.valid_accuracy = number_or_nan(j.at("valid_accuracy"));
  e.expected_latency_ms = j.at("expected_latency_ms");
  e.derived = j.at("derived").get<Architecture>();
  e.weights = j.at("weights").get<std::vector<std::vector<double>>>();
  e.seconds = j.at("seconds");
  return e;
}

json projection_json(const Projection& p) {
  json score = json::array();
  for (double v : p.score) score.push_back(std::isfinite(v) ? json(v) : json(nullptr));
  return {{"decision", p.decision}, {"chosen", p.chosen}, {"score", score}, {"after_epoch", p.after_epoch}};
}

Projection projection_from(const json& j) {
  Projection p;
  p.decision = j.at("decision");
  p.chosen = j.at("chosen");
  for (const auto& v : j.at("score")) p.score.push_back(v.is_null() ? std::nan("") : v.get<double>());
  p.after_epoch = j.at("after_epoch");
  return p;
}

}  // namespace

json darts_epoch_to_json(const DartsEpoch& e) { return epoch_json(e); }
DartsEpoch darts_epoch_from_json(const json& j) { return epoch_from(j); }

// ---- presets ------------------------------------------------------------------------------

DartsOptions darts_preset(const std::string& algorithm) {
  DartsOptions o;
  o.algorithm = algorithm;
  o.supernet.candidate_affine = false;  // DARTS searches with affine-free BN in the ops
  o.supernet.channels_last = true;      // faster on CPU (docs/performance.md)
  if (algorithm == "darts" || algorithm == "darts2") return o;
  if (algorithm == "pc-darts") {  // Xu et al.: K = 4, edge normalisation, lr 0.1 to 0, arch lr 6e-4, 15 warm-up epochs
    o.supernet.partial_channels = 4;
    o.supernet.edge_normalization = true;
    o.lr = 0.1;
    o.lr_min = 0.0;
    o.arch_lr = 6e-4;
    o.warmup_epochs = 15;
    o.batch = 256;
    return o;
  }
  if (algorithm == "darts-pt") {  // Wang et al.: first-order DARTS, then projections every 5 epochs at lr / 10
    o.pt_interval = 5;
    return o;
  }
  throw InvalidArgument(fmt::format("darts_preset: unknown algorithm \"{}\"; expected darts, darts2, pc-darts or darts-pt",
                                    algorithm));
}

namespace {
// Calls f(name, field) for every field of DartsOptions that JSON can carry (all but the
// latency table and the callback), so that reading, writing and comparing settings share one list.
template <typename Options, typename F>
void visit_fields(Options& o, F&& f) {
  f("algorithm", o.algorithm);
  f("epochs", o.epochs);
  f("batch", o.batch);
  f("train_portion", o.train_portion);
  f("steps_per_epoch", o.steps_per_epoch);
  f("lr", o.lr);
  f("lr_min", o.lr_min);
  f("momentum", o.momentum);
  f("weight_decay", o.weight_decay);
  f("nesterov", o.nesterov);
  f("grad_clip", o.grad_clip);
  f("arch_lr", o.arch_lr);
  f("arch_beta1", o.arch_beta1);
  f("arch_beta2", o.arch_beta2);
  f("arch_weight_decay", o.arch_weight_decay);
  f("hvp_radius", o.hvp_radius);
  f("warmup_epochs", o.warmup_epochs);
  f("partial_channels", o.supernet.partial_channels);
  f("edge_normalization", o.supernet.edge_normalization);
  f("candidate_affine", o.supernet.candidate_affine);
  f("channels_last", o.supernet.channels_last);
  f("latency_weight", o.latency_weight);
  f("latency_budget_ms", o.latency_budget_ms);
  f("pt_interval", o.pt_interval);
  f("pt_criterion", o.pt_criterion);
  f("pt_eval_samples", o.pt_eval_samples);
  f("pt_lr", o.pt_lr);
  f("seed", o.seed);
  f("threads", o.threads);
}

// 64-bit FNV-1a: a stable fingerprint of a latency table's JSON for the resume check.
std::string fingerprint(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("{:016x}", h);
}
}  // namespace

nlohmann::json darts_options_to_json(const DartsOptions& o) {
  json j = json::object();
  visit_fields(o, [&](const char* key, const auto& field) { j[key] = field; });
  return j;
}

void darts_options_from_json(DartsOptions& o, const nlohmann::json& j) {
  NASFORGE_CHECK(j.is_object(), "darts options: expected a JSON object, found {}", j.dump());
  std::set<std::string> known;
  visit_fields(o, [&](const char* key, auto& field) {
    known.insert(key);
    auto it = j.find(key);
    if (it == j.end()) return;
    const json& v = *it;
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, bool>) {
      NASFORGE_CHECK(v.is_boolean(), "darts options: \"{}\" must be true or false, found {}", key, v.dump());
      field = v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      NASFORGE_CHECK(v.is_string(), "darts options: \"{}\" must be a string, found {}", key, v.dump());
      field = v.get<std::string>();
    } else if constexpr (std::is_integral_v<T>) {
      NASFORGE_CHECK(v.is_number_integer() && (std::is_signed_v<T> || v.get<std::int64_t>() >= 0),
                     "darts options: \"{}\" must be an integer{}, found {}", key, std::is_signed_v<T> ? "" : " >= 0",
                     v.dump());
      field = v.get<T>();
    } else {
      NASFORGE_CHECK(v.is_number(), "darts options: \"{}\" must be a number, found {}", key, v.dump());
      field = v.get<T>();
    }
  });
  for (const auto& [key, v] : j.items()) {
    if (!known.count(key)) {
      throw InvalidArgument(fmt::format("darts options: unknown key \"{}\"; known: {}", key, fmt::join(known, ", ")));
    }
  }
}

// ---- DartsSearch ---------------------------------------------------------------------------

DartsSearch::DartsSearch(const SearchSpace& space, const DartsOptions& o) : space_(space), o_(o) {
  static const std::set<std::string> kAlgorithms{"darts", "darts2", "pc-darts", "darts-pt"};
  NASFORGE_CHECK(kAlgorithms.count(o.algorithm) != 0,
                 "darts: unknown algorithm \"{}\"; expected darts, darts2, pc-darts or darts-pt", o.algorithm);
  NASFORGE_CHECK(o.epochs >= 0 && o.batch >= 1 && o.steps_per_epoch >= 0 && o.warmup_epochs >= 0,
                 "darts: expected epochs >= 0, batch >= 1, steps_per_epoch >= 0, warmup_epochs >= 0; got {}, {}, {}, {}",
                 o.epochs, o.batch, o.steps_per_epoch, o.warmup_epochs);
  NASFORGE_CHECK(o.epochs == 0 || o.warmup_epochs < o.epochs,
                 "darts: warmup_epochs ({}) must be below epochs ({}), else no architecture step ever runs", o.warmup_epochs,
                 o.epochs);
  NASFORGE_CHECK(o.train_portion > 0 && o.train_portion < 1, "darts: train_portion must be in (0, 1), got {}", o.train_portion);
  NASFORGE_CHECK(o.lr > 0 && o.lr_min >= 0 && o.momentum >= 0 && o.momentum < 1 && o.weight_decay >= 0 && o.grad_clip >= 0,
                 "darts: expected lr > 0, lr_min >= 0, momentum in [0, 1), weight_decay >= 0, grad_clip >= 0; got {}, {}, "
                 "{}, {}, {}", o.lr, o.lr_min, o.momentum, o.weight_decay, o.grad_clip);
  NASFORGE_CHECK(o.arch_lr > 0 && o.arch_beta1 >= 0 && o.arch_beta1 < 1 && o.arch_beta2 >= 0 && o.arch_beta2 < 1 &&
                     o.arch_weight_decay >= 0,
                 "darts: expected arch_lr > 0, arch_beta1 and arch_beta2 in [0, 1), arch_weight_decay >= 0; got {}, {}, {}, {}",
                 o.arch_lr, o.arch_beta1, o.arch_beta2, o.arch_weight_decay);
  NASFORGE_CHECK(o.hvp_radius > 0, "darts: hvp_radius must be > 0, got {}", o.hvp_radius);
  NASFORGE_CHECK(o.latency_weight >= 0 && o.latency_budget_ms >= 0,
                 "darts: latency_weight and latency_budget_ms must be >= 0, got {} and {}", o.latency_weight,
                 o.latency_budget_ms);
  NASFORGE_CHECK(o.latency || (o.latency_weight == 0 && o.latency_budget_ms == 0),
                 "darts: latency_weight {} / latency_budget_ms {} need a latency table (DartsOptions::latency)",
                 o.latency_weight, o.latency_budget_ms);
  NASFORGE_CHECK(o.latency_budget_ms == 0 || o.latency_weight > 0,
                 "darts: a latency budget ({} ms) needs latency_weight > 0", o.latency_budget_ms);
  NASFORGE_CHECK(o.pt_criterion == "acc" || o.pt_criterion == "loss", "darts: pt_criterion must be acc or loss, got \"{}\"",
                 o.pt_criterion);
  NASFORGE_CHECK(o.pt_interval >= 1 && o.pt_eval_samples >= 0 && o.pt_lr >= 0 && o.threads >= 0,
                 "darts: expected pt_interval >= 1, pt_eval_samples >= 0, pt_lr >= 0, threads >= 0; got {}, {}, {}, {}",
                 o.pt_interval, o.pt_eval_samples, o.pt_lr, o.threads);
  for (const auto& d : space_.decisions()) {
    NASFORGE_CHECK(d.kind == DecisionKind::kOp || d.kind == DecisionKind::kInputs,
                   "darts: space \"{}\" has the {} decision \"{}\"; differentiable search needs a space of op and input "
                   "decisions (a cell space such as nb201 or darts)",
                   space_.name(), decision_kind_name(d.kind), d.name);
  }
  ::torch::manual_seed(o.seed);
  SupernetOptions so = o.supernet;
  so.seed = o.seed;
  net_ = Supernet(space_, so);
  net_->set_mode(SupernetMode::kMixed);
  net_->train();
  weights_ = net_->parameters();
  wopt_ = std::make_unique<::torch::optim::SGD>(
      weights_, ::torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay).nesterov(o.nesterov));
  aopt_ = std::make_unique<::torch::optim::Adam>(
      net_->arch_parameters(),
      ::torch::optim::AdamOptions(o.arch_lr).betas({o.arch_beta1, o.arch_beta2}).weight_decay(o.arch_weight_decay));
  decided_.assign(space_.decisions().size(), -1);
  topology_.assign(space_.decisions().size(), kUndecided);
  if (o.algorithm == "darts-pt") {
    // DARTS-PT searches the DARTS space without `none` (its s5 space; NB201 keeps it): in a
    // cell whose nodes choose their inputs, `none` is masked out from the start.
    const CellLayout layout = layout_of(space_, net_->structure());
    std::set<std::string> selecting;
    for (const auto& [idec, edges] : layout.node_edges) selecting.insert(group_of(space_.decisions()[idec].name));
    for (std::size_t d = 0; d < layout.zero.size(); ++d) {
      if (layout.zero[d].empty() || !selecting.count(group_of(space_.decisions()[d].name))) continue;
      std::vector<bool> keep(layout.zero[d].size());
      for (std::size_t k = 0; k < keep.size(); ++k) keep[k] = !layout.zero[d][k];
      if (std::find(keep.begin(), keep.end(), true) != keep.end()) net_->set_mask(d, keep);
    }
  }
  if (o_.latency) (void)expected_latency_ms();  // a table without the supernet's layers fails now, not mid-search
}

DartsSearch::~DartsSearch() = default;

::torch::optim::Optimizer& DartsSearch::weight_optimizer() { return *wopt_; }
::torch::optim::Optimizer& DartsSearch::arch_optimizer() { return *aopt_; }

std::vector<Tensor> DartsSearch::current_weights() const {
  auto w = net_->mixing_weights();  // decided edges are masked to one option: exactly one-hot
  for (std::size_t d = 0; d < w.size(); ++d) {
    if (w[d].defined() && decided_[d] == -2) w[d] = ::torch::zeros_like(w[d]);  // an edge topology selection dropped
  }
  return w;
}

std::vector<Tensor> DartsSearch::latency_weights() const {
  // Op probabilities (softmax(alpha), masks applied; not beta: every kept edge of a node runs
  // in the final network); an edge topology selection dropped costs nothing.
  std::vector<Tensor> w(decided_.size());
  for (std::size_t d = 0; d < w.size(); ++d) {
    if (!net_->alpha(d).defined()) continue;
    w[d] = net_->weights(d);
    if (decided_[d] == -2) w[d] = ::torch::zeros_like(w[d]);
  }
  return w;
}

Tensor DartsSearch::loss_of(const Tensor& x, const Tensor& y, const std::vector<Tensor>& w, double* accuracy) {
  Tensor logits = net_->forward_mixed(x, w);
  if (accuracy) *accuracy = logits.detach().argmax(1).eq(y).to(::torch::kDouble).mean().item<double>();
  return ::torch::nn::functional::cross_entropy(logits, y);
}

Tensor DartsSearch::latency_penalty() const {
  if (!o_.latency || o_.latency_weight == 0) return {};
  Tensor e = nasforge::expected_latency_ms(*net_, *o_.latency, latency_weights());
  if (o_.latency_budget_ms > 0) return o_.latency_weight * ::torch::relu(e - o_.latency_budget_ms) / o_.latency_budget_ms;
  return o_.latency_weight * e;
}

double DartsSearch::expected_latency_ms() const {
  if (!o_.latency) return 0;
  ::torch::NoGradGuard no_grad;
  return nasforge::expected_latency_ms(*net_, *o_.latency, latency_weights()).item<double>();
}

std::vector<Tensor> DartsSearch::step_direction(const std::vector<Tensor>& grads) {
  // The weight optimiser's exact update direction (LibTorch SGD: weight decay, momentum
  // without dampening, optional Nesterov), so that w - lr * direction is its next step.
  std::vector<Tensor> dir(weights_.size());
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    Tensor d = grads[i].defined() ? grads[i] : ::torch::zeros_like(weights_[i]);
    if (o_.weight_decay != 0) d = d + o_.weight_decay * weights_[i].detach();
    if (o_.momentum != 0) {
      Tensor buf = momentum_buffer(*wopt_, weights_[i]);
      Tensor next = buf.defined() ? o_.momentum * buf + d : d;
      d = o_.nesterov ? d + o_.momentum * next : next;
    }
    dir[i] = d;
  }
  return dir;
}

namespace {
// grads of `loss` w.r.t. `inputs`; zeros where `loss` does not depend on an input.
std::vector<Tensor> grads_of(const Tensor& loss, const std::vector<Tensor>& inputs) {
  auto g = ::torch::autograd::grad({loss}, inputs, {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) g[i] = ::torch::zeros_like(inputs[i]);
  }
  return g;
}

std::vector<Tensor> detached(const std::vector<Tensor>& w) {
  std::vector<Tensor> out(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i].defined()) out[i] = w[i].detach();
  }
  return out;
}

void assign(std::vector<Tensor>& params, const std::vector<Tensor>& values) {
  ::torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(values[i]);
}

void axpy(std::vector<Tensor>& params, const std::vector<Tensor>& base, double a, const std::vector<Tensor>& v) {
  ::torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(base[i] + a * v[i]);
}
}  // namespace

std::vector<Tensor> DartsSearch::virtual_step(const Tensor& xt, const Tensor& yt, double lr) {
  std::vector<Tensor> saved;
  for (const auto& p : weights_) saved.push_back(p.detach().clone());
  auto g = grads_of(loss_of(xt, yt, detached(current_weights()), nullptr), weights_);
  axpy(weights_, saved, -lr, step_direction(g));
  return saved;
}

double DartsSearch::unrolled_validation_loss(const Tensor& xt, const Tensor& yt, const Tensor& xv, const Tensor& yv,
                                             double lr) {
  const auto saved = virtual_step(xt, yt, lr);
  double v = 0;
  {
    ::torch::NoGradGuard no_grad;
    v = loss_of(xv, yv, current_weights(), nullptr).item<double>();
  }
  assign(weights_, saved);
  return v;
}

std::vector<Tensor> DartsSearch::arch_gradient(const Tensor& xt, const Tensor& yt, const Tensor& xv, const Tensor& yv,
                                               double lr) {
  return gradient(xt, yt, xv, yv, lr, nullptr, nullptr);
}

std::vector<Tensor> DartsSearch::gradient(const Tensor& xt, const Tensor& yt, const Tensor& xv, const Tensor& yv, double lr,
                                          double* loss, double* accuracy) {
  auto arch = net_->arch_parameters();
  Tensor penalty = latency_penalty();
  std::vector<Tensor> g;
  if (o_.algorithm != "darts2") {
    Tensor l = loss_of(xv, yv, current_weights(), accuracy);
    if (loss) *loss = l.item<double>();
    g = grads_of(penalty.defined() ? l + penalty : l, arch);
    return g;
  }
  // Second order (ALGORITHMS.md 1.3): virtual step w' = w - lr * direction(grad L_train(w)),
  // g1 = dL_val(w')/dalpha, v = dL_val(w')/dw', then the finite-difference Hessian-vector
  // product at the original w: g = g1 - lr * (dL_train(w+)/dalpha - dL_train(w-)/dalpha) / 2eps,
  // w+- = w +- eps v, eps = hvp_radius / ||v||. The loss reported is L_val at w'.
  const auto saved = virtual_step(xt, yt, lr);
  std::vector<Tensor> inputs = arch;
  inputs.insert(inputs.end(), weights_.begin(), weights_.end());
  Tensor l = loss_of(xv, yv, current_weights(), accuracy);
  if (loss) *loss = l.item<double>();
  auto g_val = grads_of(l, inputs);
  std::vector<Tensor> g1(g_val.begin(), g_val.begin() + static_cast<std::ptrdiff_t>(arch.size()));
  std::vector<Tensor> v(g_val.begin() + static_cast<std::ptrdiff_t>(arch.size()), g_val.end());
  double norm2 = 0;
  for (const auto& t : v) norm2 += t.pow(2).sum().item<double>();
  const double norm = std::sqrt(norm2);
  g = g1;
  if (norm > 0) {
    const double eps = o_.hvp_radius / norm;
    axpy(weights_, saved, eps, v);
    auto gp = grads_of(loss_of(xt, yt, current_weights(), nullptr), arch);
    axpy(weights_, saved, -eps, v);
    auto gm = grads_of(loss_of(xt, yt, current_weights(), nullptr), arch);
    // d w'/d alpha = -lr * (d direction / d grad) * d grad / d alpha: 1 for plain momentum,
    // 1 + momentum with Nesterov (its direction holds the gradient twice).
    const double chain = o_.nesterov ? 1.0 + o_.momentum : 1.0;
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = g1[i] - lr * chain * (gp[i] - gm[i]) / (2 * eps);
  }
  assign(weights_, saved);  // restore w exactly
  if (penalty.defined()) {  // the latency term does not depend on w: its gradient adds directly
    auto gl = grads_of(penalty, arch);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] + gl[i];
  }
  return g;
}

std::pair<double, double> DartsSearch::arch_step(const Tensor& xt, const Tensor& yt, const Tensor& xv, const Tensor& yv,
                                                 double lr) {
  auto arch = net_->arch_parameters();
  double acc = 0, loss = 0;
  auto g = gradient(xt, yt, xv, yv, lr, &loss, &acc);
  aopt_->zero_grad();
  for (std::size_t i = 0; i < arch.size(); ++i) arch[i].mutable_grad() = g[i];
  aopt_->step();
  return {loss, acc};
}

std::pair<double, double> DartsSearch::weight_step(const Tensor& x, const Tensor& y, double lr) {
  for (auto& group : wopt_->param_groups()) static_cast<::torch::optim::SGDOptions&>(group.options()).lr(lr);
  double acc = 0;
  Tensor loss = loss_of(x, y, detached(current_weights()), &acc);
  wopt_->zero_grad();
  loss.backward();
  if (o_.grad_clip > 0) ::torch::nn::utils::clip_grad_norm_(weights_, o_.grad_clip);
  wopt_->step();
  return {loss.item<double>(), acc};
}

std::pair<double, double> DartsSearch::path_step(const Tensor& x, const Tensor& y, double lr, const Architecture& path) {
  for (auto& group : wopt_->param_groups()) static_cast<::torch::optim::SGDOptions&>(group.options()).lr(lr);
  struct Mixed {  // back to mixed mode on every path out
    SupernetImpl& n;
    ~Mixed() { n.set_mode(SupernetMode::kMixed); }
  } restore{*net_};
  net_->set_mode(SupernetMode::kSinglePath);
  net_->set_architecture(path);
  Tensor logits = net_->forward(x);
  Tensor loss = ::torch::nn::functional::cross_entropy(logits, y);
  const double acc = logits.detach().argmax(1).eq(y).to(::torch::kDouble).mean().item<double>();
  // Gradients set to none, not zero: candidates off the path get no update at all (no weight
  // decay, no momentum), whatever paths ran before, so a checkpoint (which keeps no gradients)
  // resumes exactly.
  for (auto& p : weights_) p.mutable_grad() = Tensor();
  loss.backward();
  if (o_.grad_clip > 0) ::torch::nn::utils::clip_grad_norm_(weights_, o_.grad_clip);
  wopt_->step();
  return {loss.item<double>(), acc};
}

Architecture DartsSearch::derive() const {
  ::torch::NoGradGuard no_grad;
  const auto& ds = space_.decisions();
  const CellLayout layout = layout_of(space_, net_->structure());
  const auto w = current_weights();
  std::vector<std::vector<float>> W(ds.size());
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (!w[d].defined()) continue;
    auto c = w[d].to(::torch::kCPU, ::torch::kFloat).contiguous();
    W[d].assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  std::vector<std::uint32_t> pick(ds.size(), 0);
  auto best_op = [&](std::size_t d, bool exclude_zero) {
    if (decided_[d] >= 0) return static_cast<std::uint32_t>(decided_[d]);
    std::int64_t best = -1;
    for (std::size_t o = 0; o < W[d].size(); ++o) {
      if (!net_->mask(d)[o] || (exclude_zero && layout.zero[d][o])) continue;
      if (best < 0 || W[d][o] > W[d][static_cast<std::size_t>(best)]) best = static_cast<std::int64_t>(o);
    }
    if (best < 0) {  // only none is allowed
      for (std::size_t o = 0; o < W[d].size(); ++o) if (net_->mask(d)[o]) best = static_cast<std::int64_t>(o);
    }
    return static_cast<std::uint32_t>(best);
  };
  // Cells whose nodes choose their inputs (DARTS) never keep `none` on an edge, not even on
  // the edges of a node that keeps all its inputs.
  std::set<std::string> selecting;
  for (const auto& [idec, edges] : layout.node_edges) selecting.insert(group_of(ds[idec].name));
  std::vector<bool> in_node(ds.size(), false);
  for (std::size_t d = 0; d < ds.size(); ++d) in_node[d] = selecting.count(group_of(ds[d].name)) != 0;
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (ds[d].kind == DecisionKind::kOp) pick[d] = best_op(d, in_node[d]);
  }
  for (const auto& [idec, edges] : layout.node_edges) {
    const auto& opts = ds[idec].options;
    if (topology_[idec] != kUndecided) {
      pick[idec] = topology_[idec];
      continue;
    }
    const std::size_t keep = sources_of(opts.at(0).as_string()).size();
    std::vector<std::pair<double, std::int64_t>> strength;  // (max non-none weight, source)
    for (const auto& [src, d] : edges) {
      double s = -1;
      if (decided_[d] == -2) {
        s = -2;  // dropped by topology selection
      } else {
        for (std::size_t o = 0; o < W[d].size(); ++o) {
          if (!layout.zero[d][o] && net_->mask(d)[o]) s = std::max(s, static_cast<double>(W[d][o]));
        }
      }
      strength.emplace_back(s, src);
    }
    std::stable_sort(strength.begin(), strength.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::set<std::int64_t> chosen;
    for (std::size_t k = 0; k < keep && k < strength.size(); ++k) chosen.insert(strength[k].second);
    pick[idec] = option_keeping(space_, idec, chosen);
  }
  return space_.canonical(Architecture(std::move(pick)));
}

std::pair<double, double> DartsSearch::evaluate(const TensorData& data, const std::vector<Tensor>& w) {
  ::torch::NoGradGuard no_grad;
  net_->train();  // batch statistics, as DARTS-PT evaluates its perturbed supernets
  double correct = 0, loss = 0;
  const std::int64_t n = data.size();
  for (std::int64_t s = 0; s < n; s += o_.batch) {
    const std::int64_t len = std::min(o_.batch, n - s);
    Tensor logits = net_->forward_mixed(data.images.narrow(0, s, len), w);
    Tensor y = data.labels.narrow(0, s, len);
    correct += logits.argmax(1).eq(y).sum().item<double>();
    loss += ::torch::nn::functional::cross_entropy(logits, y).item<double>() * static_cast<double>(len);
  }
  return {n ? correct / static_cast<double>(n) : 0.0, n ? loss / static_cast<double>(n) : 0.0};
}

Projection DartsSearch::project_edge(std::size_t d, const TensorData& valid) {
  NASFORGE_CHECK(d < decided_.size() && space_.decisions()[d].kind == DecisionKind::kOp,
                 "project_edge: decision {} is not an op decision", d);
  Projection p;
  p.decision = d;
  const auto& mask = net_->mask(d);
  p.score.assign(mask.size(), std::nan(""));
  const auto base = detached(current_weights());
  std::int64_t best = -1;
  for (std::size_t o = 0; o < mask.size(); ++o) {
    if (!mask[o]) continue;
    auto w = base;
    w[d] = w[d].clone();
    w[d][static_cast<std::int64_t>(o)] = 0;  // remove op o; the others are not renormalised
    auto [acc, loss] = evaluate(valid, w);
    p.score[o] = o_.pt_criterion == "acc" ? acc : loss;
    // acc: the op whose removal lowers accuracy most; loss: whose removal raises loss most.
    const bool better = best < 0 || (o_.pt_criterion == "acc" ? p.score[o] < p.score[static_cast<std::size_t>(best)]
                                                             : p.score[o] > p.score[static_cast<std::size_t>(best)]);
    if (better) best = static_cast<std::int64_t>(o);
  }
  p.chosen = static_cast<std::uint32_t>(best);
  std::vector<bool> one(mask.size(), false);
  one[p.chosen] = true;
  net_->set_mask(d, one);
  decided_[d] = best;
  return p;
}

std::uint32_t DartsSearch::project_topology(std::size_t idec, const TensorData& valid) {
  const CellLayout layout = layout_of(space_, net_->structure());
  auto it = layout.node_edges.find(idec);
  NASFORGE_CHECK(it != layout.node_edges.end(), "project_topology: decision {} does not choose a node's inputs", idec);
  const auto& opts = space_.decisions()[idec].options;
  const std::size_t keep = sources_of(opts.at(0).as_string()).size();
  auto edges = it->second;
  while (edges.size() > keep) {
    const auto base = detached(current_weights());
    std::size_t drop = 0;
    double best = -INFINITY;
    for (std::size_t k = 0; k < edges.size(); ++k) {
      auto w = base;
      w[edges[k].second] = ::torch::zeros_like(w[edges[k].second]);  // the whole edge removed
      auto [acc, loss] = evaluate(valid, w);
      const double s = o_.pt_criterion == "acc" ? acc : -loss;
      if (s > best) {  // the edge whose removal hurts least goes
        best = s;
        drop = k;
      }
    }
    decided_[edges[drop].second] = -2;
    edges.erase(edges.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  std::set<std::int64_t> chosen;
  for (const auto& e : edges) chosen.insert(e.first);
  topology_[idec] = option_keeping(space_, idec, chosen);
  return topology_[idec];
}

void DartsSearch::save(const std::string& path, const std::string& state) const {
  json s = json::parse(state, nullptr, false);
  NASFORGE_CHECK(s.is_object(), "DartsSearch::save: the state must be a JSON object's text, got \"{}\"", state);
  s["decided"] = decided_;
  s["topology"] = topology_;
  net_->save_checkpoint(path, wopt_.get(), aopt_.get(), s.dump());
}

std::string DartsSearch::load(const std::string& path) {
  std::string state;
  net_->load_checkpoint(path, wopt_.get(), aopt_.get(), &state);
  json s = json::parse(state, nullptr, false);
  NASFORGE_CHECK(!s.is_discarded() && s.contains("decided") && s.contains("topology"),
                 "{}: not a differentiable-search checkpoint (no search state)", path);
  decided_ = s.at("decided").get<std::vector<std::int64_t>>();
  topology_ = s.at("topology").get<std::vector<std::uint32_t>>();
  NASFORGE_CHECK(decided_.size() == space_.decisions().size() && topology_.size() == decided_.size(),
                 "{}: the search state has {} decisions, the space {}", path, decided_.size(), space_.decisions().size());
  return state;
}

DartsEpoch DartsSearch::run_epoch(BatchLoader& train, BatchLoader& valid, double lr, bool arch_updates,
                                  const std::function<void(std::int64_t, std::int64_t, double)>& on_step) {
  DartsEpoch rec;
  rec.lr = lr;
  const std::int64_t steps = o_.steps_per_epoch > 0 ? std::min(o_.steps_per_epoch, train.num_batches()) : train.num_batches();
  double tl_sum = 0, ta_sum = 0, vl_sum = 0, va_sum = 0;
  for (std::int64_t i = 0; i < steps; ++i) {
    auto [xt, yt] = train.batch(i);
    if (arch_updates) {
      auto [xv, yv] = valid.batch(i % valid.num_batches());
      auto [l, a] = arch_step(xt, yt, xv, yv, lr);
      vl_sum += l;
      va_sum += a;
    }
    auto [l, a] = weight_step(xt, yt, lr);
    tl_sum += l;
    ta_sum += a;
    if (on_step) on_step(i, steps, l);
  }
  train.next_epoch();
  valid.next_epoch();
  const double n = static_cast<double>(std::max<std::int64_t>(steps, 1));
  rec.train_loss = tl_sum / n;
  rec.train_accuracy = ta_sum / n;
  rec.valid_loss = arch_updates ? vl_sum / n : std::nan("");
  rec.valid_accuracy = arch_updates ? va_sum / n : std::nan("");
  rec.expected_latency_ms = expected_latency_ms();
  rec.derived = derive();
  ::torch::NoGradGuard no_grad;
  const auto w = current_weights();
  rec.weights.resize(w.size());
  for (std::size_t d = 0; d < w.size(); ++d) {
    if (!w[d].defined()) continue;
    auto c = w[d].to(::torch::kCPU, ::torch::kDouble).contiguous();
    rec.weights[d].assign(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  }
  return rec;
}

// ---- the driver ----------------------------------------------------------------------------

std::string weights_trajectory_svg(const SearchSpace& space, const std::vector<DartsEpoch>& epochs) {
  const auto& ds = space.decisions();
  std::vector<std::size_t> ops;
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (ds[d].kind == DecisionKind::kOp) ops.push_back(d);
  }
  const int cols = std::min<int>(4, std::max<int>(1, static_cast<int>(ops.size())));
  const int rows = static_cast<int>((ops.size() + static_cast<std::size_t>(cols) - 1) / static_cast<std::size_t>(cols));
  const double pw = 240, ph = 150, m = 30;
  static const char* kColours[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"10\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      cols * (pw + m) + m, rows * (ph + m) + m + 20 + 14 * 10);
  const std::size_t n = epochs.size();
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const std::size_t d = ops[k];
    const double x0 = m + static_cast<double>(k % static_cast<std::size_t>(cols)) * (pw + m);
    const double y0 = m + static_cast<double>(k / static_cast<std::size_t>(cols)) * (ph + m);
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", x0, y0, pw, ph);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", x0, y0 - 4, ds[d].name);
    for (std::size_t o = 0; o < ds[d].options.size(); ++o) {
      std::string pts;
      for (std::size_t e = 0; e < n; ++e) {
        if (epochs[e].weights.size() <= d || epochs[e].weights[d].size() <= o) continue;
        const double x = x0 + (n > 1 ? pw * static_cast<double>(e) / static_cast<double>(n - 1) : pw / 2);
        const double y = y0 + ph * (1.0 - epochs[e].weights[d][o]);
        pts += fmt::format("{:.1f},{:.1f} ", x, y);
      }
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", kColours[o % 10], pts);
    }
  }
  // Legend: the options of the first op decision (cell spaces share their op lists).
  if (!ops.empty()) {
    const double ly = m + rows * (ph + m);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">op weight (0 to 1) per epoch; one panel per edge</text>\n", m, ly);
    for (std::size_t o = 0; o < ds[ops[0]].options.size(); ++o) {
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"3\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                         m, ly + 10 + 14 * o, kColours[o % 10], m + 14, ly + 14 + 14 * o, ds[ops[0]].options[o].repr());
    }
  }
  return svg + "</svg>\n";
}

std::pair<TensorData, TensorData> split_search_data(const SearchSpace& space, const TensorData& data,
                                                    const DartsOptions& o, const std::string& who) {
  NASFORGE_CHECK(data.size() >= 2, "{}: expected at least 2 samples, got {}", who, data.size());
  const Shape& want = space.supernet().input_shape;
  NASFORGE_CHECK(data.images.dim() == static_cast<std::int64_t>(want.size()) + 1 &&
                     std::equal(want.begin(), want.end(), data.images.sizes().begin() + 1),
                 "{}: space \"{}\" expects images [N, {}], the data has [{}] (set the space's input parameter)", who,
                 space.name(), fmt::join(want, ", "), fmt::join(data.images.sizes(), ", "));
  const Split split = train_valid_split(data.size(), 1.0 - o.train_portion, o.seed);
  NASFORGE_CHECK(static_cast<std::int64_t>(split.train.size()) >= o.batch && static_cast<std::int64_t>(split.valid.size()) >= o.batch,
                 "{}: {} training and {} validation samples, fewer than a batch of {}", who, split.train.size(),
                 split.valid.size(), o.batch);
  return {subset(data, split.train), subset(data, split.valid)};
}

DartsResult run_darts(const SearchSpace& space, const TensorData& data, const DartsOptions& o) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  detail::ThreadScope threads(o.threads, /*blas=*/true);
  const auto [train, valid] = split_search_data(space, data, o, "run_darts");
  TensorData pt_valid = valid;
  if (o.pt_eval_samples > 0 && o.pt_eval_samples < valid.size()) {
    pt_valid = {valid.images.narrow(0, 0, o.pt_eval_samples), valid.labels.narrow(0, 0, o.pt_eval_samples)};
  }

  DartsSearch s(space, o);
  const auto& ds = space.decisions();
  // DARTS-PT's projection plan: each step decides one random undecided edge of every cell
  // group ("normal", "reduce", ...), then one node's inputs per group.
  std::map<std::string, std::vector<std::size_t>> op_groups, node_groups;
  const CellLayout layout = layout_of(space, s.supernet()->structure());
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (ds[d].kind == DecisionKind::kOp && ds[d].options.size() > 1) op_groups[group_of(ds[d].name)].push_back(d);
  }
  for (const auto& [idec, edges] : layout.node_edges) {
    if (edges.size() > sources_of(ds[idec].options.at(0).as_string()).size()) node_groups[group_of(ds[idec].name)].push_back(idec);
  }
  std::size_t op_steps = 0, node_steps = 0;
  for (const auto& [g, v] : op_groups) op_steps = std::max(op_steps, v.size());
  for (const auto& [g, v] : node_groups) node_steps = std::max(node_steps, v.size());
  const bool pt = o.algorithm == "darts-pt";
  const std::size_t projections = pt ? op_steps + node_steps : 0;
  const std::int64_t tune_epochs = projections ? o.pt_interval * static_cast<std::int64_t>(projections - 1) + 1 : 0;
  const std::int64_t total_epochs = o.epochs + tune_epochs;

  DartsResult r;
  std::int64_t done = 0;
  const fs::path dir = o.out_dir;
  const fs::path ckpt = dir / "checkpoint.pt";
  // Everything that shapes the result must match on resume; running options may differ.
  auto settings = [&] {
    json j = darts_options_to_json(o);
    j.erase("threads");  // a running option: a resume may use another thread count
    j["samples"] = data.size();
    j["latency_table"] = o.latency ? fingerprint(o.latency->to_json().dump()) : "none";
    return j;
  };
  if (!o.out_dir.empty()) fs::create_directories(dir);
  if (o.resume && !o.out_dir.empty() && fs::exists(ckpt)) {
    json st = json::parse(s.load(ckpt.string()));
    NASFORGE_CHECK(st.at("settings") == settings(),
                   "{}: the checkpoint was written with other settings ({}) than this run ({}); use another --out or the same "
                   "settings", ckpt.string(), st.at("settings").dump(), settings().dump());
    done = st.at("done");
    for (const auto& e : st.at("epochs")) r.epochs.push_back(epoch_from(e));
    for (const auto& p : st.at("projections")) r.projections.push_back(projection_from(p));
    r.resumed = true;
  }
  if (!r.resumed && !o.initial_checkpoint.empty()) s.load(o.initial_checkpoint);
  BatchLoader tl(train, o.batch, /*shuffle=*/true, o.seed, /*drop_last=*/true);
  BatchLoader vl(valid, o.batch, /*shuffle=*/true, o.seed + 1, /*drop_last=*/true);
  for (std::int64_t e = 0; e < done; ++e) {
    tl.next_epoch();
    vl.next_epoch();
  }
  // The tuning phase runs with a fresh SGD at a constant learning rate (DARTS-PT).
  const double pt_lr = o.pt_lr > 0 ? o.pt_lr : o.lr / 10;
  // Momentum buffers start again, as with the new optimiser DARTS-PT creates for tuning.
  auto reset_weight_optimizer = [&] { s.weight_optimizer().state().clear(); };
  const bool tty = isatty(fileno(stderr)) != 0;
  const double resumed_seconds = [&] {
    double sum = 0;
    for (const auto& e : r.epochs) sum += e.seconds;
    return sum;
  }();
  double spent = 0;
  bool stopped = false;
  for (std::int64_t e = done; e < total_epochs; ++e) {
    const auto te = clock::now();
    const bool tuning = e >= o.epochs;
    DartsEpoch rec;
    rec.epoch = e + 1;
    rec.phase = tuning ? "tune" : (e < o.warmup_epochs ? "warmup" : "search");
    if (tuning) {
      const std::int64_t t = e - o.epochs;
      if (t == 0) reset_weight_optimizer();
      if (t % o.pt_interval == 0) {
        const auto step = static_cast<std::size_t>(t / o.pt_interval);
        Rng rng(o.seed * 0x9E3779B97F4A7C15ULL + step + 1);
        const bool ops_phase = step < op_steps;
        for (auto& [g, members] : ops_phase ? op_groups : node_groups) {
          std::vector<std::size_t> open;  // undecided edges, or nodes that still have all their edges
          for (std::size_t d : members) {
            bool is_open = true;
            if (ops_phase) is_open = s.decided()[d] == -1;
            else for (const auto& edge : layout.node_edges.at(d)) is_open &= s.decided()[edge.second] != -2;
            if (is_open) open.push_back(d);
          }
          if (open.empty()) continue;
          const std::size_t pick = open[rng.uniform(open.size())];
          if (ops_phase) {
            Projection p = s.project_edge(pick, pt_valid);
            p.after_epoch = e;
            r.projections.push_back(std::move(p));
          } else {
            Projection p;
            p.decision = pick;
            p.chosen = s.project_topology(pick, pt_valid);
            p.after_epoch = e;
            r.projections.push_back(std::move(p));
          }
        }
      }
    }
    rec.lr = tuning ? pt_lr : detail::cosine_lr(o.lr, o.lr_min, e, o.epochs);
    const bool arch_updates = e >= o.warmup_epochs;
    const auto on_step = [&](std::int64_t i, std::int64_t steps, double loss) {
      if (!o.progress || !tty) return;
      const double el = std::chrono::duration<double>(clock::now() - te).count();
      const double per_epoch = el / static_cast<double>(i + 1) * static_cast<double>(steps);
      const double eta = per_epoch * static_cast<double>(total_epochs - e) - el;
      std::fprintf(stderr, "\r%s %s epoch %lld/%lld  step %lld/%lld  loss %.3f  ETA %s   ", o.algorithm.c_str(),
                   rec.phase.c_str(), static_cast<long long>(e + 1), static_cast<long long>(total_epochs),
                   static_cast<long long>(i + 1), static_cast<long long>(steps), loss, detail::eta_text(eta).c_str());
    };
    const std::string phase = rec.phase;
    const std::int64_t number = rec.epoch;
    rec = s.run_epoch(tl, vl, rec.lr, arch_updates, on_step);
    rec.phase = phase;
    rec.epoch = number;
    rec.seconds = std::chrono::duration<double>(clock::now() - te).count();
    spent += rec.seconds;
    r.epochs.push_back(rec);
    if (o.progress) {
      const double eta = spent / static_cast<double>(e + 1 - done) * static_cast<double>(total_epochs - e - 1);
      std::fprintf(stderr, "%s%s %s epoch %lld/%lld  train loss %.3f acc %.3f  valid acc %s%s  %s  %.1f s  ETA %s\n",
                   tty ? "\r" : "", o.algorithm.c_str(), rec.phase.c_str(), static_cast<long long>(e + 1),
                   static_cast<long long>(total_epochs), rec.train_loss, rec.train_accuracy,
                   std::isnan(rec.valid_accuracy) ? "-" : fmt::format("{:.3f}", rec.valid_accuracy).c_str(),
                   o.latency ? fmt::format("  E[LAT] {:.3f} ms", rec.expected_latency_ms).c_str() : "",
                   space.native_format() ? space.to_native(rec.derived).c_str() : space.to_json(rec.derived).dump().c_str(),
                   rec.seconds, detail::eta_text(eta).c_str());
    }
    if (!o.out_dir.empty()) {
      json st{{"settings", settings()}, {"done", e + 1}, {"epochs", json::array()}, {"projections", json::array()}};
      for (const auto& x : r.epochs) st["epochs"].push_back(epoch_json(x));
      for (const auto& p : r.projections) st["projections"].push_back(projection_json(p));
      s.save(ckpt.string(), st.dump());
    }
    if (o.on_epoch && o.on_epoch(r.epochs.back())) {
      stopped = true;
      break;
    }
  }
  r.derived = s.derive();
  if (o.on_finish && !stopped) o.on_finish(s);

  // The population search's result shape: one trial per epoch.
  for (const auto& e : r.epochs) {
    Trial t;
    t.id = static_cast<std::uint64_t>(e.epoch - 1);
    t.arch = e.derived;
    t.metrics = {{"epoch", static_cast<double>(e.epoch)}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                 {"valid_loss", e.valid_loss}, {"valid_accuracy", e.valid_accuracy}};
    if (o.latency) t.metrics["expected_latency_ms"] = e.expected_latency_ms;
    t.seconds = e.seconds;
    r.search.history.push_back(std::move(t));
  }
  if (!r.search.history.empty()) {
    r.search.best = {r.search.history.size() - 1};
    r.search.front = r.search.best;
  }
  r.search.resumed = r.resumed;
  r.search.wall_seconds = resumed_seconds + std::chrono::duration<double>(clock::now() - t0).count();
  if (o.out_dir.empty()) return r;

  auto arch_out = [&](const Architecture& a) { return space.native_format() ? json(space.to_native(a)) : space.to_json(a); };
  auto metrics_out = [](const Metrics& m) {
    json j = json::object();
    for (const auto& [k, v] : m) j[k] = std::isfinite(v) ? json(v) : json(nullptr);
    return j;
  };
  json res{{"space", {{"name", space.name()}, {"file", space.origin()}, {"fingerprint", space.fingerprint()}}},
           {"strategy", o.algorithm}, {"seed", o.seed}, {"evaluations", r.search.history.size()},
           {"wall_seconds", r.search.wall_seconds}, {"objectives", json::array({{{"metric", "valid_accuracy"}, {"goal", "max"}}})},
           {"constraints", json::array()}, {"derived", arch_out(r.derived)}, {"settings", settings()},
           {"best", json::array()}, {"front", json::array()}, {"history", json::array()}, {"arch_weights", json::array()},
           {"projections", json::array()}};
  for (std::size_t i : r.search.best) {
    res["best"].push_back({{"arch", arch_out(r.search.history[i].arch)}, {"metrics", metrics_out(r.search.history[i].metrics)}});
  }
  res["front"] = res["best"];
  for (const auto& t : r.search.history) {
    res["history"].push_back({{"id", t.id}, {"arch", arch_out(t.arch)}, {"metrics", metrics_out(t.metrics)}, {"failed", false}});
  }
  for (const auto& e : r.epochs) res["arch_weights"].push_back({{"epoch", e.epoch}, {"phase", e.phase}, {"weights", e.weights}});
  for (const auto& p : r.projections) {
    json j = projection_json(p);
    j["name"] = ds[p.decision].name;
    j["chosen_name"] = ds[p.decision].options[p.chosen].repr();
    res["projections"].push_back(std::move(j));
  }
  detail::write_file_atomic(dir / "result.json", res.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  detail::write_file_atomic(dir / "weights.svg", weights_trajectory_svg(space, r.epochs));
  return r;
}

}  // namespace nasforge
