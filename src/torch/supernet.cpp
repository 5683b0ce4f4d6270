#include "nasforge/torch/supernet.h"

#include <torch/torch.h>

#include <fmt/ranges.h>

#include "nasforge/error.h"
#include "torch/layer_modules.h"

namespace nasforge {
namespace {
std::string key_of(const ConcreteLayer& l) { return l.name + '\x1f' + l.choice; }
}  // namespace

SupernetImpl::SupernetImpl(SearchSpace space, std::uint64_t seed)
    : SupernetImpl(std::move(space), [seed] {
        SupernetOptions o;
        o.seed = seed;
        return o;
      }()) {}

SupernetImpl::SupernetImpl(SearchSpace space, const SupernetOptions& options)
    : space_(std::move(space)), options_(options), net_(space_.supernet()), kernel_transform_(options.kernel_transform) {
  const std::uint64_t seed = options.seed;
  const auto& ds = space_.decisions();
  NASFORGE_CHECK(options.partial_channels >= 0, "Supernet: partial_channels must be >= 0 (0: off), got {}", options.partial_channels);
  arch_ = Architecture(std::vector<std::uint32_t>(ds.size(), 0));
  masks_.resize(ds.size());
  alpha_.resize(ds.size());
  beta_of_.assign(ds.size(), {-1, -1});
  Rng rng(seed);
  auto small_normal = [&](std::size_t count) {  // 1e-3 * N(0,1), Box-Muller on the portable generator
    std::vector<float> v(count);
    for (auto& e : v) {
      double u1 = 1.0 - rng.uniform01(), u2 = rng.uniform01();
      e = static_cast<float>(1e-3 * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    return v;
  };
  for (std::size_t d = 0; d < ds.size(); ++d) {
    masks_[d].assign(ds[d].options.size(), true);
    if (ds[d].kind != DecisionKind::kOp) continue;
    alpha_[d] = register_buffer(fmt::format("alpha_{}", d),
                                ::torch::tensor(small_normal(ds[d].options.size())).set_requires_grad(true));
  }
  const auto n = net_.layers.size();
  layers_.resize(n);
  candidate_is_zero_.assign(n, false);
  edge_live_.resize(n);
  pc_candidate_.assign(n, 0);
  pc_mixed_.assign(n, 0);
  const std::int64_t K = options.partial_channels;
  std::vector<int> mixed_of(n, -1);  // candidate layer -> its mixed slot
  for (std::size_t m = 0; m < n; ++m) {
    const auto& l = net_.layers[m];
    if (l.op != "mixed") continue;
    for (int c : l.inputs) mixed_of[static_cast<std::size_t>(c)] = static_cast<int>(m);
    const bool cell_edge = l.attrs.i("source") >= 0;
    if (K >= 1 && cell_edge) {
      const Shape& in = net_.layers[static_cast<std::size_t>(l.inputs[0])].input_shapes.at(0);
      const Shape& out = l.output_shape;
      NASFORGE_CHECK(in.size() == 3 && out.size() == 3 && in[0] == out[0] && in[0] % K == 0,
                     "Supernet: partial channels (K = {}) need cell edges whose input and output channels are equal and "
                     "divisible by K; edge {} maps {} to {}",
                     K, l.name, shape_to_string(in), shape_to_string(out));
      pc_mixed_[m] = 1;
      for (int c : l.inputs) pc_candidate_[static_cast<std::size_t>(c)] = 1;
    }
  }
  if (options.edge_normalization) {
    // One beta vector per distinct set of edge decisions entering a node (shared cells share it).
    std::map<std::vector<std::size_t>, int> groups;
    for (const auto& l : net_.layers) {
      if (l.op != "sum") continue;
      std::vector<std::size_t> dec;
      for (int in : l.inputs) {
        if (in < 0) continue;
        const auto& src = net_.layers[static_cast<std::size_t>(in)];
        if (src.op == "mixed" && src.attrs.i("source") >= 0) dec.push_back(static_cast<std::size_t>(src.attrs.i("decision")));
      }
      if (dec.size() < 2) continue;
      auto [it, added] = groups.emplace(dec, static_cast<int>(beta_.size()));
      if (!added) continue;
      beta_.push_back(register_buffer(fmt::format("beta_{}", beta_.size()),
                                      ::torch::tensor(small_normal(dec.size())).set_requires_grad(true)));
      for (std::size_t k = 0; k < dec.size(); ++k) {
        NASFORGE_CHECK(beta_of_[dec[k]].first < 0,
                       "Supernet: edge normalisation needs each edge decision to enter one kind of node; \"{}\" "
                       "enters two different nodes", ds[dec[k]].name);
        beta_of_[dec[k]] = {it->second, static_cast<int>(k)};
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& l = net_.layers[i];
    candidate_is_zero_[i] = l.op == "zero";
    if (l.op == "mixed" && l.attrs.i("input_decision") >= 0) {
      // For each option of the node's input decision ("0+2", ...): does it keep this edge?
      const auto& opts = ds[static_cast<std::size_t>(l.attrs.i("input_decision"))].options;
      const std::string src = std::to_string(l.attrs.i("source"));
      for (const auto& o : opts) {
        const std::string& kept = o.as_string();
        bool live = false;
        std::size_t start = 0;
        while (start <= kept.size()) {
          std::size_t end = std::min(kept.find('+', start), kept.size());
          live |= kept.compare(start, end - start, src) == 0 && end - start == src.size();
          start = end + 1;
        }
        edge_live_[i].push_back(live);
      }
    }
    ConcreteLayer built = l;  // the module's own view of the layer: narrower or without affine
    if (mixed_of[i] >= 0 && !options.candidate_affine && built.attrs.has("affine")) built.attrs.set("affine", false);
    if (pc_candidate_[i]) {
      built.input_shapes.at(0)[0] /= K;  // K >= 1 here
      built.output_shape[0] /= K;
      if (built.attrs.has("out")) built.attrs.set("out", built.attrs.i("out") / K);
    }
    auto m = detail::make_layer_module(built);
    if (!m.is_empty()) {
      register_module(fmt::format("l{}", i), m.ptr());
      layers_[i] = std::move(m);
    }
    if (!layers_[i].is_empty()) by_key_.emplace(key_of(l), i);
  }
  for (const auto& d : ds) elastic_ |= d.kind == DecisionKind::kValue;
  if (!elastic_) return;
  NASFORGE_CHECK(K == 0 && !options.edge_normalization && options.candidate_affine,
                 "Supernet: space \"{}\" is elastic (value decisions): partial channels, edge normalisation and "
                 "candidate_affine = false are for cell spaces searched in mixed mode", space_.name());
  tensors_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (layers_[i].is_empty()) continue;
    for (const auto& p : layers_[i].ptr()->named_parameters()) tensors_[i].emplace(p.key(), p.value());
    for (const auto& b : layers_[i].ptr()->named_buffers()) tensors_[i].emplace(b.key(), b.value());
    const auto& l = net_.layers[i];
    if (kernel_transform_ && l.op == "mbconv") {
      for (std::int64_t k = l.attrs.i("kernel") - 2; k >= 1; k -= 2) {
        kernel_matrices_.emplace(fmt::format("{}:{}", i, k),
                                 register_parameter(fmt::format("kernel_transform_l{}_k{}", i, k), ::torch::eye(k * k)));
      }
    }
  }
  set_architecture(arch_);  // the first options, so that forward works before any choice
}

::torch::Tensor SupernetImpl::forward_layer(std::size_t i, const ::torch::Tensor& x) {
  NASFORGE_CHECK(i < layers_.size(), "Supernet::forward_layer: layer {} outside [0, {})", i, layers_.size());
  NASFORGE_CHECK(!layers_[i].is_empty(), "Supernet::forward_layer: layer {} ({}) is structural and has no module",
                 net_.layers[i].name, net_.layers[i].op);
  return layers_[i].forward(x);
}

namespace {
template <typename F>
void for_each_bn(::torch::nn::Module& root, F&& f) {
  for (auto& m : root.modules(/*include_self=*/true)) {
    if (auto* b2 = dynamic_cast<::torch::nn::BatchNorm2dImpl*>(m.get())) f(*b2);
    else if (auto* b1 = dynamic_cast<::torch::nn::BatchNorm1dImpl*>(m.get())) f(*b1);
  }
}
}  // namespace

std::optional<double> SupernetImpl::set_bn_momentum(std::optional<double> momentum) {
  // c10::optional is its own type in LibTorch 1.13 (an alias of std::optional in 2.x).
  bool first = true;
  std::optional<double> old = 0.1;
  auto set = [&](auto& bn) {
    if (first) {
      const auto m = bn.options.momentum();
      old = m.has_value() ? std::optional<double>(*m) : std::nullopt;
      first = false;
    }
    if (momentum) bn.options.momentum(*momentum);
    else bn.options.momentum(c10::nullopt);
  };
  for_each_bn(*this, set);
  for (auto& [key, m] : elastic_cache_) for_each_bn(*m.ptr(), set);
  return old;
}

void SupernetImpl::reset_bn_statistics() {
  ::torch::NoGradGuard no_grad;
  for_each_bn(*this, [](auto& bn) {
    if (bn.options.track_running_stats()) bn.reset_running_stats();
  });
}

const Shape& SupernetImpl::input_shape() const {
  return elastic_ ? elastic_net_->concrete().input_shape : net_.input_shape;
}

::torch::Tensor SupernetImpl::slice_for(std::size_t li, const ConcreteLayer& actual, const detail::TensorSlot& slot,
                                        ::torch::IntArrayRef shape) const {
  using ::torch::Tensor;
  auto it = tensors_[li].find(slot.path);
  NASFORGE_CHECK(it != tensors_[li].end(), "Supernet: layer {} ({}) has no tensor \"{}\" in the supernet", actual.name,
                 actual.op, slot.path);
  const Tensor& big = it->second;
  const auto bs = big.sizes();
  if (bs == shape) return big;
  auto fail = [&](const std::string& why) {
    throw InvalidArgument(fmt::format("Supernet: layer {} ({}) needs {} of shape {} but the supernet holds {}: {}",
                                      actual.name, actual.op, slot.path, fmt::join(shape, "x"), fmt::join(bs, "x"), why));
  };
  if (bs.size() != shape.size()) fail("the ranks differ");
  for (std::size_t d = 0; d < bs.size(); ++d) {
    if (shape[d] > bs[d]) fail("a choice larger than the option the supernet was built with");
  }
  if (slot.grouped) fail("a grouped convolution's channels cannot be sliced without mixing its groups");
  if (actual.op == "transformer_block" && slot.path.rfind("qkv.", 0) == 0) {
    // q, k and v are stacked along dim 0: the first heads of each.
    if (bs[0] % 3 != 0 || shape[0] % 3 != 0) fail("q, k and v must be stacked thirds");
    std::vector<Tensor> parts;
    for (std::int64_t j = 0; j < 3; ++j) {
      Tensor part = big.narrow(0, j * (bs[0] / 3), shape[0] / 3);
      if (shape.size() == 2) part = part.narrow(1, 0, shape[1]);
      parts.push_back(part);
    }
    return ::torch::cat(parts, 0);
  }
  if (actual.op == "patch_embed" && slot.path == "pos_embed" && shape[1] != bs[1]) {
    fail("a positional embedding cannot follow another resolution by slicing");
  }
  Tensor v = big;
  for (std::size_t d = 0; d < bs.size(); ++d) {
    if (shape[d] == bs[d]) continue;
    if (slot.conv_weight && d >= 2) {
      if ((bs[d] - shape[d]) % 2 != 0) fail("a kernel's centre needs sizes of equal parity");
      continue;  // spatial dims below
    }
    v = v.narrow(static_cast<std::int64_t>(d), 0, shape[d]);
  }
  if (!slot.conv_weight || bs.size() != 4 || (shape[2] == bs[2] && shape[3] == bs[3])) return v;
  const bool transform = kernel_transform_ && actual.op == "mbconv" && slot.path == "dw.conv.weight" && shape[2] == shape[3];
  if (!transform) return v.narrow(2, (bs[2] - shape[2]) / 2, shape[2]).narrow(3, (bs[3] - shape[3]) / 2, shape[3]);
  // Once-for-All: each smaller kernel is the next larger one's centre times a learned matrix.
  for (std::int64_t k = bs[2] - 2; k >= shape[2]; k -= 2) {
    const std::int64_t c = v.size(0), g = v.size(1);
    v = v.narrow(2, 1, k).narrow(3, 1, k);
    v = ::torch::matmul(v.reshape({c * g, k * k}), kernel_matrices_.at(fmt::format("{}:{}", li, k)).t()).reshape({c, g, k, k});
  }
  return v;
}

::torch::nn::AnyModule SupernetImpl::elastic_module(const ConcreteLayer& l, std::size_t li) {
  std::string key = key_of(l);
  for (const auto& [name, v] : l.attrs.values()) key += fmt::format("|{}={}", name, v.repr());
  for (const auto& s : l.input_shapes) key += fmt::format("|{}", shape_to_string(s));
  auto it = elastic_cache_.find(key);
  if (it != elastic_cache_.end()) return it->second;
  auto m = detail::make_layer_module(l);
  // Point the module at views of the supernet's tensors, then free its own storage: from now
  // on forward() rebinds the views (in the grad mode of the forward) before every use.
  {
    ::torch::NoGradGuard no_grad;
    detail::visit_layer_tensors(*m.ptr(), [&](const detail::TensorSlot& slot, ::torch::Tensor& member) {
      member = slice_for(li, l, slot, member.sizes());
    });
    for (auto& p : m.ptr()->parameters()) p.set_data(::torch::empty({0}, p.options()));
    for (auto& b : m.ptr()->buffers()) b.set_data(::torch::empty({0}, b.options()));
  }
  elastic_cache_.emplace(std::move(key), m);
  return m;
}

void SupernetImpl::bind_elastic() {
  const auto& layers = elastic_net_->concrete().layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto mod = elastic_net_->layer_module(i);
    if (!mod) continue;
    detail::visit_layer_tensors(*mod, [&](const detail::TensorSlot& slot, ::torch::Tensor& member) {
      member = slice_for(elastic_source_[i], layers[i], slot, member.sizes());
    });
  }
}

void SupernetImpl::set_architecture(const Architecture& arch) {
  space_.validate(arch);
  const auto active = space_.active(arch);  // an inactive decision's option does not matter
  for (std::size_t d = 0; d < arch.size(); ++d) {
    NASFORGE_CHECK(!active[d] || masks_[d][arch[d]], "Supernet::set_architecture: decision \"{}\" option {} is masked out",
                   space_.decisions()[d].name, arch[d]);
  }
  if (!elastic_) {
    arch_ = arch;
    return;
  }
  // Build everything first and commit only on success: a choice the supernet cannot slice
  // throws here and leaves the previous architecture running.
  ConcreteNetwork concrete = space_.resolve(arch);
  std::vector<std::size_t> source(concrete.layers.size(), 0);
  Network net(std::move(concrete), [&](const ConcreteLayer& l, std::size_t i) {
    auto it = by_key_.find(key_of(l));
    NASFORGE_CHECK(it != by_key_.end(), "Supernet: layer {} ({}) has no counterpart in the supernet", l.name, l.choice);
    source[i] = it->second;
    return elastic_module(l, it->second);
  });
  arch_ = arch;
  elastic_source_ = std::move(source);
  elastic_net_ = std::move(net);
}

std::vector<::torch::Tensor> SupernetImpl::arch_parameters() const {
  std::vector<::torch::Tensor> out;
  for (const auto& a : alpha_) {
    if (a.defined()) out.push_back(a);
  }
  out.insert(out.end(), beta_.begin(), beta_.end());
  return out;
}

const ::torch::Tensor& SupernetImpl::alpha(std::size_t d) const {
  NASFORGE_CHECK(d < alpha_.size(), "Supernet::alpha: decision {} outside [0, {})", d, alpha_.size());
  return alpha_[d];
}

::torch::Tensor SupernetImpl::weights(std::size_t d) const {
  const auto& a = alpha(d);
  NASFORGE_CHECK(a.defined(), "Supernet::weights: decision \"{}\" is not an op decision", space_.decisions()[d].name);
  std::vector<float> m;
  for (bool b : masks_[d]) m.push_back(b ? 0.0F : -INFINITY);
  return ::torch::softmax(a + ::torch::tensor(m, a.options().requires_grad(false)), 0);
}

std::pair<int, int> SupernetImpl::beta_of(std::size_t d) const {
  NASFORGE_CHECK(d < beta_of_.size(), "Supernet::beta_of: decision {} outside [0, {})", d, beta_of_.size());
  return beta_of_[d];
}

std::vector<::torch::Tensor> SupernetImpl::mixing_weights() const {
  std::vector<::torch::Tensor> edge(beta_.size());
  for (std::size_t g = 0; g < beta_.size(); ++g) edge[g] = ::torch::softmax(beta_[g], 0);
  std::vector<::torch::Tensor> w(alpha_.size());
  for (std::size_t d = 0; d < alpha_.size(); ++d) {
    if (!alpha_[d].defined()) continue;
    w[d] = weights(d);
    if (beta_of_[d].first >= 0) w[d] = w[d] * edge[static_cast<std::size_t>(beta_of_[d].first)][beta_of_[d].second];
  }
  return w;
}

::torch::Tensor SupernetImpl::forward_mixed(const ::torch::Tensor& x, const std::vector<::torch::Tensor>& weights) {
  NASFORGE_CHECK(!elastic_, "Supernet::forward_mixed: space \"{}\" is elastic and runs single-path only", space_.name());
  NASFORGE_CHECK(weights.size() == alpha_.size(), "Supernet::forward_mixed: expected {} weight tensors (one per decision), got {}",
                 alpha_.size(), weights.size());
  for (std::size_t d = 0; d < alpha_.size(); ++d) {
    if (!alpha_[d].defined()) continue;
    NASFORGE_CHECK(weights[d].defined() && weights[d].dim() == 1 && weights[d].size(0) == alpha_[d].size(0),
                   "Supernet::forward_mixed: decision \"{}\" needs a weight vector of {} options, got {}",
                   space_.decisions()[d].name, alpha_[d].size(0),
                   weights[d].defined() ? fmt::format("shape [{}]", fmt::join(weights[d].sizes(), ", ")) : "none");
  }
  NASFORGE_CHECK(x.dim() == static_cast<std::int64_t>(net_.input_shape.size()) + 1,
                 "Supernet: expected an input [batch, {}], got {} dimensions", shape_to_string(net_.input_shape), x.dim());
  return run(x, &weights).back();
}

::torch::Tensor SupernetImpl::pc_combine(std::size_t m, const ::torch::Tensor& source, ::torch::Tensor y1,
                                         const ::torch::Tensor& bypass_scale) const {
  // PC-DARTS: mixed output on the first C/K channels, the rest bypassed (scaled by the edge's
  // normalisation weight, which the ops' weights already carry), then a channel shuffle.
  const std::int64_t K = options_.partial_channels, C = source.size(1), c1 = C / K;
  const Shape& out = net_.layers[m].output_shape;
  if (!y1.defined()) y1 = ::torch::zeros({source.size(0), c1, out[1], out[2]}, source.options());
  if (K == 1) return y1;  // every channel went through the ops: plain DARTS
  ::torch::Tensor x2 = source.narrow(1, c1, C - c1);
  if (out[1] != source.size(2)) x2 = ::torch::max_pool2d(x2, {2, 2}, {2, 2}, {0, 0}, {1, 1}, /*ceil_mode=*/true);
  if (bypass_scale.defined()) x2 = x2 * bypass_scale;
  auto y = ::torch::cat({y1, x2}, 1);
  return y.view({y.size(0), K, C / K, out[1], out[2]}).transpose(1, 2).reshape({y.size(0), C, out[1], out[2]});
}

void SupernetImpl::set_mask(std::size_t d, const std::vector<bool>& allowed) {
  NASFORGE_CHECK(d < masks_.size(), "Supernet::set_mask: decision {} outside [0, {})", d, masks_.size());
  NASFORGE_CHECK(allowed.size() == masks_[d].size(), "Supernet::set_mask: decision \"{}\" has {} options, got a mask of {}",
                 space_.decisions()[d].name, masks_[d].size(), allowed.size());
  NASFORGE_CHECK(std::find(allowed.begin(), allowed.end(), true) != allowed.end(),
                 "Supernet::set_mask: decision \"{}\" needs at least one allowed option", space_.decisions()[d].name);
  masks_[d] = allowed;
}

const std::vector<bool>& SupernetImpl::mask(std::size_t d) const {
  NASFORGE_CHECK(d < masks_.size(), "Supernet::mask: decision {} outside [0, {})", d, masks_.size());
  return masks_[d];
}

Architecture SupernetImpl::sample(Rng& rng) const {
  std::vector<std::uint32_t> c(masks_.size());
  for (std::size_t d = 0; d < masks_.size(); ++d) {
    std::vector<std::uint32_t> ok;
    for (std::uint32_t o = 0; o < masks_[d].size(); ++o) {
      if (masks_[d][o]) ok.push_back(o);
    }
    c[d] = ok[rng.uniform(ok.size())];
  }
  return space_.canonical(Architecture(std::move(c)));
}

std::vector<::torch::Tensor> SupernetImpl::run(const ::torch::Tensor& x, const std::vector<::torch::Tensor>* given) {
  using ::torch::Tensor;
  const auto n = net_.layers.size();
  const bool mixed = given != nullptr || mode_ == SupernetMode::kMixed;
  std::vector<Tensor> w;  // mixed-mode weights, computed once per forward
  std::vector<std::vector<float>> wv(alpha_.size());  // the same, as numbers, to skip zeros
  if (mixed) {
    w = given ? *given : mixing_weights();
    for (std::size_t d = 0; d < alpha_.size(); ++d) {
      if (!alpha_[d].defined()) continue;
      auto c = w[d].detach().to(::torch::kCPU, ::torch::kFloat).contiguous();
      wv[d].assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
  }
  // PC-DARTS with edge normalisation: an edge's bypass channels carry its softmax(beta) too.
  std::vector<Tensor> edge_soft(beta_.size());
  auto bypass_scale = [&](std::size_t d) -> Tensor {
    const auto [g, pos] = beta_of_[d];
    if (g < 0) return {};
    auto& e = edge_soft[static_cast<std::size_t>(g)];
    if (!e.defined()) e = ::torch::softmax(beta_[static_cast<std::size_t>(g)], 0);
    return e[pos];
  };
  // Which layers this forward needs, walking back from the output.
  std::vector<char> need(n, 0), dead(n, 0);
  need[n - 1] = 1;
  for (std::size_t i = n; i-- > 0;) {
    if (!need[i]) continue;
    const auto& l = net_.layers[i];
    if (l.op == "mixed") {
      auto d = static_cast<std::size_t>(l.attrs.i("decision"));
      bool live = true;
      if (mixed) {
        live = false;  // an edge whose weights are all 0 is removed, bypass and all
        for (std::size_t o = 0; o < l.inputs.size(); ++o) {
          if (!masks_[d][o] || wv[d][o] == 0.0F) continue;
          live = true;
          if (!candidate_is_zero_[l.inputs[o]]) need[l.inputs[o]] = 1;
        }
        dead[i] = !live;
      } else {
        auto idec = l.attrs.i("input_decision");
        live = idec < 0 || edge_live_[i][arch_[static_cast<std::size_t>(idec)]];
        if (live) need[l.inputs[arch_[d]]] = 1;
      }
      // A partial-channel edge always passes its bypass channels on.
      const int src = net_.layers[static_cast<std::size_t>(l.inputs[0])].inputs[0];
      if (live && pc_mixed_[i] && src >= 0) need[src] = 1;
    } else if (l.op == "select") {
      need[l.inputs[arch_[static_cast<std::size_t>(l.attrs.i("decision"))]]] = 1;
    } else {
      for (int in : l.inputs) {
        if (in >= 0) need[in] = 1;
      }
    }
  }
  // The last layer that reads each output: outputs are released right after it, so a forward
  // holds only what autograd saved plus the live frontier (less peak memory, for PC-DARTS most).
  std::vector<std::size_t> last(n, 0), pc_last(n, 0);
  auto reads = [&](std::size_t i, auto&& f) {  // calls f(j) for every output layer i reads
    const auto& l = net_.layers[i];
    if (l.op == "mixed") {
      for (int c : l.inputs) {
        if (need[c]) f(c);
      }
      if (pc_mixed_[i] && !dead[i]) f(net_.layers[static_cast<std::size_t>(l.inputs[0])].inputs[0]);
    } else if (l.op == "select") {
      f(l.inputs[arch_[static_cast<std::size_t>(l.attrs.i("decision"))]]);
    } else {
      for (int in : l.inputs) f(in);
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (!need[i]) continue;
    reads(i, [&](int j) {
      if (j >= 0) last[static_cast<std::size_t>(j)] = i;
    });
    if (pc_candidate_[i] && net_.layers[i].inputs[0] >= 0) pc_last[static_cast<std::size_t>(net_.layers[i].inputs[0])] = i;
  }
  std::vector<Tensor> outs(n);
  const Tensor xin = options_.channels_last && x.dim() == 4 ? x.contiguous(::torch::MemoryFormat::ChannelsLast) : x;
  auto zeros_for = [&](int idx) {
    const Shape& s = idx < 0 ? net_.input_shape : net_.layers[idx].output_shape;
    std::vector<std::int64_t> shape{x.size(0)};
    shape.insert(shape.end(), s.begin(), s.end());
    return ::torch::zeros(shape, x.options());
  };
  auto input = [&](int idx) -> Tensor { return idx < 0 ? xin : (outs[idx].defined() ? outs[idx] : zeros_for(idx)); };
  std::map<int, Tensor> pc_in;  // source layer -> its first C/K channels, made contiguous once
  for (std::size_t i = 0; i < n; ++i) {
    if (!need[i]) continue;
    const auto& l = net_.layers[i];
    if (l.op == "mixed") {
      auto d = static_cast<std::size_t>(l.attrs.i("decision"));
      const int src = net_.layers[static_cast<std::size_t>(l.inputs[0])].inputs[0];
      if (mixed) {
        Tensor acc;
        for (std::size_t o = 0; o < l.inputs.size(); ++o) {
          if (!need[l.inputs[o]] || candidate_is_zero_[l.inputs[o]]) continue;
          Tensor wo = w[d][static_cast<std::int64_t>(o)];
          // One fused multiply-add per candidate into the edge's own sum: in place is safe for
          // autograd (no op saved the sum's value) and saves an allocation per candidate.
          if (acc.defined()) acc.addcmul_(outs[l.inputs[o]], wo);
          else acc = wo * outs[l.inputs[o]];
        }
        if (pc_mixed_[i] && !dead[i]) acc = pc_combine(i, input(src), acc, bypass_scale(d));
        outs[i] = acc;  // undefined: no candidate ran
      } else {
        int c = l.inputs[arch_[d]];
        outs[i] = need[c] && !candidate_is_zero_[c] ? outs[c] : Tensor();
        auto idec = l.attrs.i("input_decision");
        if (pc_mixed_[i] && (idec < 0 || edge_live_[i][arch_[static_cast<std::size_t>(idec)]])) {
          outs[i] = pc_combine(i, input(src), outs[i], Tensor());
        }
      }
    } else if (l.op == "select") {
      outs[i] = input(l.inputs[arch_[static_cast<std::size_t>(l.attrs.i("decision"))]]);
    } else if (l.op == "sum") {
      Tensor acc;
      for (int in : l.inputs) {
        if (in >= 0 && !outs[in].defined()) continue;  // a none or dead edge adds nothing
        acc = acc.defined() ? acc + input(in) : input(in);
      }
      outs[i] = acc;
    } else if (l.op == "concat") {
      std::vector<Tensor> parts;
      for (int in : l.inputs) parts.push_back(input(in));
      outs[i] = ::torch::cat(parts, 1);
    } else if (l.op == "zero") {
      outs[i] = Tensor();
    } else if (pc_candidate_[i]) {
      auto it = pc_in.find(l.inputs[0]);
      if (it == pc_in.end()) {
        Tensor full = input(l.inputs[0]);
        it = pc_in.emplace(l.inputs[0], full.narrow(1, 0, full.size(1) / options_.partial_channels)
                                            .contiguous(full.suggest_memory_format())).first;
      }
      outs[i] = layers_[i].forward(it->second);
    } else {
      outs[i] = layers_[i].forward(input(l.inputs[0]));
    }
    reads(i, [&](int j) {
      if (j >= 0 && last[static_cast<std::size_t>(j)] == i && static_cast<std::size_t>(j) != n - 1) outs[j].reset();
    });
    if (pc_candidate_[i] && l.inputs[0] >= 0 && pc_last[static_cast<std::size_t>(l.inputs[0])] == i) pc_in.erase(l.inputs[0]);
  }
  if (!outs[n - 1].defined()) outs[n - 1] = zeros_for(static_cast<int>(n - 1));
  return outs;
}

::torch::Tensor SupernetImpl::forward(const ::torch::Tensor& x) {
  if (elastic_) {
    if (mode_ != SupernetMode::kSinglePath) {
      std::string value;
      for (const auto& d : space_.decisions()) {
        if (d.kind == DecisionKind::kValue && value.empty()) value = d.name;
      }
      throw InvalidArgument(fmt::format("Supernet: mixed mode needs a space whose decisions are ops, inputs and depths; "
                                        "\"{}\" of space \"{}\" is a value decision (elastic spaces run single-path)",
                                        value, space_.name()));
    }
    const Shape& want = elastic_net_->concrete().input_shape;
    NASFORGE_CHECK(x.dim() == static_cast<std::int64_t>(want.size()) + 1 &&
                       std::equal(want.begin(), want.end(), x.sizes().begin() + 1),
                   "Supernet: the architecture expects an input [batch, {}], got [{}]", fmt::join(want, ", "),
                   fmt::join(x.sizes(), ", "));
    bind_elastic();
    elastic_net_->train(is_training());
    return elastic_net_->forward(x);
  }
  NASFORGE_CHECK(x.dim() == static_cast<std::int64_t>(net_.input_shape.size()) + 1,
                 "Supernet: expected an input [batch, {}], got {} dimensions", shape_to_string(net_.input_shape), x.dim());
  return run(x, nullptr).back();
}

void SupernetImpl::save_checkpoint(const std::string& path, const ::torch::optim::Optimizer* weight_optimizer,
                                   const ::torch::optim::Optimizer* arch_optimizer, const std::string& state) const {
  ::torch::serialize::OutputArchive archive;
  save(archive);  // parameters and buffers (weights, BN statistics, logits)
  archive.write("nasforge.fingerprint", c10::IValue(space_.fingerprint()));
  archive.write("nasforge.kernel_transform", c10::IValue(kernel_transform_));
  archive.write("nasforge.partial_channels", c10::IValue(options_.partial_channels));
  if (!state.empty()) archive.write("nasforge.state", c10::IValue(state));
  archive.write("nasforge.edge_normalization", c10::IValue(options_.edge_normalization));
  for (std::size_t d = 0; d < masks_.size(); ++d) {
    std::vector<std::int64_t> m(masks_[d].begin(), masks_[d].end());
    archive.write(fmt::format("nasforge.mask_{}", d), ::torch::tensor(m), /*is_buffer=*/true);
  }
  auto put = [&](const char* key, const ::torch::optim::Optimizer* opt) {
    if (!opt) return;
    // In the parent's compilation unit, as LibTorch's own nested archives are: one of its own
    // dies with `sub`, before save_to() walks the types (suspected of the segfault on 2.11).
    ::torch::serialize::OutputArchive sub(archive.compilation_unit());
    opt->save(sub);
    archive.write(key, sub);
  };
  put("nasforge.weight_optimizer", weight_optimizer);
  put("nasforge.arch_optimizer", arch_optimizer);
  const std::string tmp = path + ".tmp";
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    throw InvalidArgument(fmt::format("{}: cannot write the supernet checkpoint: {}", tmp, e.what_without_backtrace()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw InvalidArgument(fmt::format("{}: cannot rename {} into place", path, tmp));
  }
}

void SupernetImpl::load_checkpoint(const std::string& path, ::torch::optim::Optimizer* weight_optimizer,
                                   ::torch::optim::Optimizer* arch_optimizer, std::string* state) {
  ::torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw NotFound(fmt::format("{}: cannot read a supernet checkpoint: {}", path, e.what_without_backtrace()));
  }
  c10::IValue fp;
  if (!archive.try_read("nasforge.fingerprint", fp) || !fp.isString()) {
    throw InvalidArgument(fmt::format("{}: not a nasforge supernet checkpoint (no space fingerprint)", path));
  }
  if (fp.toStringRef() != space_.fingerprint()) {
    throw InvalidArgument(fmt::format("{}: the checkpoint is for a space with fingerprint {}, this supernet's space "
                                      "\"{}\" has fingerprint {} (another space, or other parameters)",
                                      path, fp.toStringRef(), space_.name(), space_.fingerprint()));
  }
  c10::IValue kt;
  const bool saved_kt = archive.try_read("nasforge.kernel_transform", kt) && kt.isBool() && kt.toBool();
  if (saved_kt != kernel_transform_) {
    throw InvalidArgument(fmt::format("{}: the checkpoint was saved {} the kernel transformation; build the Supernet with "
                                      "SupernetOptions::kernel_transform = {} (CLI: {}--kernel-transform)",
                                      path, saved_kt ? "with" : "without", saved_kt, saved_kt ? "" : "no "));
  }
  c10::IValue pc, en;
  const std::int64_t saved_pc = archive.try_read("nasforge.partial_channels", pc) && pc.isInt() ? pc.toInt() : 0;
  const bool saved_en = archive.try_read("nasforge.edge_normalization", en) && en.isBool() && en.toBool();
  if (saved_pc != options_.partial_channels || saved_en != options_.edge_normalization) {
    throw InvalidArgument(fmt::format("{}: the checkpoint was saved with partial_channels = {} and edge_normalization = {}, "
                                      "this supernet has {} and {}; build it with the checkpoint's SupernetOptions",
                                      path, saved_pc, saved_en, options_.partial_channels, options_.edge_normalization));
  }
  try {
    load(archive);
  } catch (const c10::Error& e) {
    throw InvalidArgument(fmt::format("{}: cannot restore the supernet: {}", path, e.what_without_backtrace()));
  }
  for (std::size_t d = 0; d < masks_.size(); ++d) {
    ::torch::Tensor m;
    archive.read(fmt::format("nasforge.mask_{}", d), m, /*is_buffer=*/true);
    for (std::size_t o = 0; o < masks_[d].size(); ++o) masks_[d][o] = m[static_cast<std::int64_t>(o)].item<std::int64_t>() != 0;
  }
  auto get = [&](const char* key, const char* what, ::torch::optim::Optimizer* opt) {
    if (!opt) return;
    ::torch::serialize::InputArchive sub;
    if (!archive.try_read(key, sub)) {
      throw InvalidArgument(fmt::format("{}: the checkpoint holds no {} optimiser state (saved without one)", path, what));
    }
    try {
      opt->load(sub);
    } catch (const c10::Error& e) {
      throw InvalidArgument(fmt::format("{}: cannot restore the {} optimiser (another optimiser type or parameter "
                                        "set?): {}", path, what, e.what_without_backtrace()));
    }
  };
  get("nasforge.weight_optimizer", "weight", weight_optimizer);
  get("nasforge.arch_optimizer", "architecture", arch_optimizer);
  if (state) {
    c10::IValue st;
    *state = archive.try_read("nasforge.state", st) && st.isString() ? st.toStringRef() : std::string();
  }
}

Network SupernetImpl::extract(const Architecture& arch) const {
  NASFORGE_CHECK(options_.partial_channels <= 1,
                 "Supernet::extract: this supernet's candidates have 1/{} of the channels (partial channels), so their "
                 "weights do not fit the real network; train the derived architecture from scratch",
                 options_.partial_channels);
  Network out(space_.resolve(space_.canonical(arch)));
  ::torch::NoGradGuard no_grad;
  const auto& layers = out->concrete().layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto dst = out->layer_module(i);
    if (!dst) continue;
    auto it = by_key_.find(key_of(layers[i]));
    NASFORGE_CHECK(it != by_key_.end() && !layers_[it->second].is_empty(),
                   "Supernet::extract: layer {} ({}) has no counterpart in the supernet", layers[i].name, layers[i].choice);
    if (elastic_) {  // the same slices the elastic forward computes with, copied
      detail::visit_layer_tensors(*dst, [&](const detail::TensorSlot& slot, ::torch::Tensor& member) {
        member.copy_(slice_for(it->second, layers[i], slot, member.sizes()));
      });
      continue;
    }
    auto src = layers_[it->second].ptr();
    auto sp = src->named_parameters(), dp = dst->named_parameters();
    for (auto& p : dp) {
      // A supernet built with candidate_affine = false lacks its candidates' BN scale and shift:
      // the fresh network's (1, 0) computes the same.
      if (const auto* v = sp.find(p.key())) p.value().copy_(*v);
      else NASFORGE_CHECK(!options_.candidate_affine, "Supernet::extract: layer {} has no tensor \"{}\" in the supernet",
                          layers[i].name, p.key());
    }
    auto sb = src->named_buffers(), db = dst->named_buffers();
    for (auto& b : db) b.value().copy_(sb[b.key()]);
  }
  out->train(is_training());
  const auto params = parameters();
  if (!params.empty() && !params.front().device().is_cpu()) out->to(params.front().device());  // where the supernet lives
  return out;
}

}  // namespace nasforge
