#include "nasforge/torch/mlp_predictor.h"

#include <cmath>

#include <torch/torch.h>

#include "nasforge/error.h"
#include "nasforge/random.h"
#include "torch/thread_scope.h"

namespace nasforge {

struct MlpEnsemble::State {
  std::vector<::torch::nn::Sequential> members;
  std::vector<double> x_mean, x_std;
  double y_mean = 0, y_std = 1;
  std::size_t features = 0;
};

namespace {
::torch::nn::Sequential make_mlp(std::size_t in, int hidden, int layers) {
  ::torch::nn::Sequential m;
  auto width = static_cast<std::int64_t>(in);
  for (int l = 0; l < layers; ++l) {
    m->push_back(::torch::nn::Linear(width, hidden));
    m->push_back(::torch::nn::ReLU());
    width = hidden;
  }
  m->push_back(::torch::nn::Linear(width, 1));
  return m;
}

}  // namespace

MlpEnsemble::MlpEnsemble(Options o) : o_(o) {
  NASFORGE_CHECK(o_.members >= 1 && o_.hidden >= 1 && o_.layers >= 1 && o_.epochs >= 1 && o_.lr > 0 && o_.weight_decay >= 0,
                 "MlpEnsemble: expected members, hidden, layers, epochs >= 1, lr > 0, weight_decay >= 0");
}

MlpEnsemble::~MlpEnsemble() = default;

bool MlpEnsemble::fitted() const { return s_ != nullptr; }

void MlpEnsemble::fit(const std::vector<std::vector<float>>& x, const std::vector<double>& y) {
  NASFORGE_CHECK(!x.empty() && x.size() == y.size(), "MlpEnsemble::fit: expected as many rows as targets (>= 1), got {} and {}",
                 x.size(), y.size());
  detail::ThreadScope one(1);  // deterministic
  auto s = std::make_unique<State>();
  s->features = x[0].size();
  const auto n = static_cast<std::int64_t>(x.size()), p = static_cast<std::int64_t>(s->features);
  std::vector<float> flat;
  for (std::size_t i = 0; i < x.size(); ++i) {
    NASFORGE_CHECK(x[i].size() == s->features, "MlpEnsemble::fit: row {} has {} features, row 0 has {}", i, x[i].size(), s->features);
    NASFORGE_CHECK(std::isfinite(y[i]), "MlpEnsemble::fit: target {} is not finite", i);
    flat.insert(flat.end(), x[i].begin(), x[i].end());
  }
  auto X = ::torch::from_blob(flat.data(), {n, p}, ::torch::kFloat).clone();
  auto Y = ::torch::tensor(std::vector<float>(y.begin(), y.end())).view({n, 1});
  auto xm = X.mean(0), xs = X.std(0, /*unbiased=*/false).clamp_min(1e-6);
  s->y_mean = Y.mean().item<double>();
  s->y_std = std::max(Y.std(0, false).item<double>(), 1e-9);
  s->x_mean.assign(xm.data_ptr<float>(), xm.data_ptr<float>() + p);
  s->x_std.assign(xs.data_ptr<float>(), xs.data_ptr<float>() + p);
  X = (X - xm) / xs;
  Y = (Y - s->y_mean) / s->y_std;
  Rng rng(o_.seed);
  for (int m = 0; m < o_.members; ++m) {
    ::torch::manual_seed(static_cast<std::uint64_t>(o_.seed * 7919 + static_cast<std::uint64_t>(m)));
    auto net = make_mlp(s->features, o_.hidden, o_.layers);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
    for (auto& i : idx) i = static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(n)));  // bootstrap
    auto ii = ::torch::tensor(idx);
    auto Xb = X.index_select(0, ii), Yb = Y.index_select(0, ii);
    ::torch::optim::Adam opt(net->parameters(), ::torch::optim::AdamOptions(o_.lr).weight_decay(o_.weight_decay));
    for (int e = 0; e < o_.epochs; ++e) {
      opt.zero_grad();
      auto loss = ::torch::mse_loss(net->forward(Xb), Yb);
      loss.backward();
      opt.step();
    }
    net->eval();
    s->members.push_back(net);
  }
  s_ = std::move(s);
}

std::pair<std::vector<double>, std::vector<double>> MlpEnsemble::predict_with_uncertainty(
    const std::vector<std::vector<float>>& x) const {
  NASFORGE_CHECK(s_, "MlpEnsemble::predict: call fit first");
  detail::ThreadScope one(1);  // deterministic
  ::torch::NoGradGuard ng;
  const auto n = static_cast<std::int64_t>(x.size()), p = static_cast<std::int64_t>(s_->features);
  std::vector<float> flat;
  for (const auto& r : x) {
    NASFORGE_CHECK(r.size() == s_->features, "MlpEnsemble::predict: expected {} features, got {}", s_->features, r.size());
    flat.insert(flat.end(), r.begin(), r.end());
  }
  auto X = ::torch::from_blob(flat.data(), {n, p}, ::torch::kFloat).clone();
  auto xm = ::torch::tensor(std::vector<float>(s_->x_mean.begin(), s_->x_mean.end()));
  auto xs = ::torch::tensor(std::vector<float>(s_->x_std.begin(), s_->x_std.end()));
  X = (X - xm) / xs;
  std::vector<::torch::Tensor> outs;
  for (auto m : s_->members) outs.push_back(m->forward(X).view({n}) * s_->y_std + s_->y_mean);  // a handle copy: forward is non-const
  auto all = ::torch::stack(outs).to(::torch::kDouble);
  auto mean = all.mean(0), sd = all.std(0, /*unbiased=*/false);
  return {std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + n),
          std::vector<double>(sd.data_ptr<double>(), sd.data_ptr<double>() + n)};
}

std::vector<double> MlpEnsemble::predict_batch(const std::vector<std::vector<float>>& x) const {
  return predict_with_uncertainty(x).first;
}

nlohmann::json MlpEnsemble::to_json() const {
  nlohmann::json j{{"model", "mlp"}, {"members", o_.members}, {"hidden", o_.hidden}, {"layers", o_.layers},
                   {"epochs", o_.epochs}, {"lr", o_.lr}, {"weight_decay", o_.weight_decay}, {"seed", o_.seed}};
  if (!s_) return j;
  j["features"] = s_->features;
  j["x_mean"] = s_->x_mean;
  j["x_std"] = s_->x_std;
  j["y_mean"] = s_->y_mean;
  j["y_std"] = s_->y_std;
  j["weights"] = nlohmann::json::array();
  for (const auto& m : s_->members) {
    nlohmann::json member = nlohmann::json::array();
    for (const auto& p : m->parameters()) {
      auto c = p.detach().contiguous().to(::torch::kFloat);
      member.push_back(std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
    }
    j["weights"].push_back(std::move(member));
  }
  return j;
}

std::unique_ptr<MlpEnsemble> MlpEnsemble::from_json(const nlohmann::json& j) {
  Options o;
  o.members = j.at("members");
  o.hidden = j.at("hidden");
  o.layers = j.at("layers");
  o.epochs = j.at("epochs");
  o.lr = j.at("lr");
  o.weight_decay = j.at("weight_decay");
  o.seed = j.at("seed");
  auto e = std::make_unique<MlpEnsemble>(o);
  if (!j.contains("weights")) return e;
  auto s = std::make_unique<State>();
  s->features = j.at("features");
  s->x_mean = j.at("x_mean").get<std::vector<double>>();
  s->x_std = j.at("x_std").get<std::vector<double>>();
  s->y_mean = j.at("y_mean");
  s->y_std = j.at("y_std");
  ::torch::NoGradGuard ng;
  for (const auto& member : j.at("weights")) {
    auto net = make_mlp(s->features, o.hidden, o.layers);
    auto params = net->parameters();
    NASFORGE_CHECK(member.size() == params.size(), "MlpEnsemble::from_json: expected {} tensors per member, found {}",
                   params.size(), member.size());
    for (std::size_t k = 0; k < params.size(); ++k) {
      auto v = member[k].get<std::vector<float>>();
      NASFORGE_CHECK(static_cast<std::int64_t>(v.size()) == params[k].numel(), "MlpEnsemble::from_json: tensor {} has {} values, expected {}",
                     k, v.size(), params[k].numel());
      params[k].copy_(::torch::tensor(v).view(params[k].sizes()));
    }
    net->eval();
    s->members.push_back(net);
  }
  e->s_ = std::move(s);
  return e;
}

void register_torch_predictors() {
  register_predictor(
      "mlp",
      [](const nlohmann::json& o) -> std::unique_ptr<Predictor> {
        for (const auto& [k, v] : o.items()) {
          static const std::vector<std::string> known{"members", "hidden", "layers", "epochs", "lr", "weight_decay", "seed"};
          if (std::find(known.begin(), known.end(), k) == known.end()) {
            throw InvalidArgument(fmt::format("predictor \"mlp\": unknown option \"{}\"", k));
          }
        }
        MlpEnsemble::Options m;
        m.members = o.value("members", m.members);
        m.hidden = o.value("hidden", m.hidden);
        m.layers = o.value("layers", m.layers);
        m.epochs = o.value("epochs", m.epochs);
        m.lr = o.value("lr", m.lr);
        m.weight_decay = o.value("weight_decay", m.weight_decay);
        m.seed = o.value("seed", m.seed);
        return std::make_unique<MlpEnsemble>(m);
      },
      [](const nlohmann::json& j) -> std::unique_ptr<Predictor> { return MlpEnsemble::from_json(j); });
}

}  // namespace nasforge
