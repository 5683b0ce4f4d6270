#include "nasforge/torch/supernet.h"

#include <torch/torch.h>

#include "nasforge/error.h"
#include "torch/layer_modules.h"

namespace nasforge {
namespace {
std::string key_of(const ConcreteLayer& l) { return l.name + '\x1f' + l.choice; }
}  // namespace

SupernetImpl::SupernetImpl(SearchSpace space, std::uint64_t seed)
    : space_(std::move(space)), net_(space_.supernet()) {
  const auto& ds = space_.decisions();
  arch_ = Architecture(std::vector<std::uint32_t>(ds.size(), 0));
  masks_.resize(ds.size());
  alpha_.resize(ds.size());
  Rng rng(seed);
  for (std::size_t d = 0; d < ds.size(); ++d) {
    masks_[d].assign(ds[d].options.size(), true);
    if (ds[d].kind != DecisionKind::kOp) continue;
    std::vector<float> init(ds[d].options.size());
    for (auto& v : init) {  // 1e-3 * N(0,1), Box-Muller on the portable generator
      double u1 = 1.0 - rng.uniform01(), u2 = rng.uniform01();
      v = static_cast<float>(1e-3 * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    alpha_[d] = register_buffer(fmt::format("alpha_{}", d), ::torch::tensor(init).set_requires_grad(true));
  }
  const auto n = net_.layers.size();
  layers_.resize(n);
  candidate_is_zero_.assign(n, false);
  edge_live_.resize(n);
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
    auto m = detail::make_layer_module(l);
    if (!m.is_empty()) {
      register_module(fmt::format("l{}", i), m.ptr());
      layers_[i] = std::move(m);
    }
    if (!layers_[i].is_empty()) by_key_.emplace(key_of(l), i);
  }
}

void SupernetImpl::set_architecture(const Architecture& arch) {
  space_.validate(arch);
  for (std::size_t d = 0; d < arch.size(); ++d) {
    NASFORGE_CHECK(masks_[d][arch[d]], "Supernet::set_architecture: decision \"{}\" option {} is masked out",
                   space_.decisions()[d].name, arch[d]);
  }
  arch_ = arch;
}

std::vector<::torch::Tensor> SupernetImpl::arch_parameters() const {
  std::vector<::torch::Tensor> out;
  for (const auto& a : alpha_) {
    if (a.defined()) out.push_back(a);
  }
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

std::vector<::torch::Tensor> SupernetImpl::run(const ::torch::Tensor& x) {
  using ::torch::Tensor;
  const auto n = net_.layers.size();
  const bool mixed = mode_ == SupernetMode::kMixed;
  std::vector<Tensor> w(alpha_.size());  // mixed-mode weights, computed once per forward
  std::vector<std::vector<float>> wv(alpha_.size());  // the same, as numbers, to skip zeros
  if (mixed) {
    for (std::size_t d = 0; d < alpha_.size(); ++d) {
      if (!alpha_[d].defined()) continue;
      w[d] = weights(d);
      auto c = w[d].detach().to(::torch::kCPU).contiguous();
      wv[d].assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
  }
  // Which layers this forward needs, walking back from the output.
  std::vector<char> need(n, 0);
  need[n - 1] = 1;
  for (std::size_t i = n; i-- > 0;) {
    if (!need[i]) continue;
    const auto& l = net_.layers[i];
    if (l.op == "mixed") {
      auto d = static_cast<std::size_t>(l.attrs.i("decision"));
      if (mixed) {
        for (std::size_t o = 0; o < l.inputs.size(); ++o) {
          if (masks_[d][o] && !candidate_is_zero_[l.inputs[o]] && wv[d][o] != 0.0F) need[l.inputs[o]] = 1;
        }
      } else {
        auto idec = l.attrs.i("input_decision");
        bool live = idec < 0 || edge_live_[i][arch_[static_cast<std::size_t>(idec)]];
        if (live) need[l.inputs[arch_[d]]] = 1;
      }
    } else if (l.op == "select") {
      need[l.inputs[arch_[static_cast<std::size_t>(l.attrs.i("decision"))]]] = 1;
    } else {
      for (int in : l.inputs) {
        if (in >= 0) need[in] = 1;
      }
    }
  }
  std::vector<Tensor> outs(n);
  auto zeros_for = [&](int idx) {
    const Shape& s = idx < 0 ? net_.input_shape : net_.layers[idx].output_shape;
    std::vector<std::int64_t> shape{x.size(0)};
    shape.insert(shape.end(), s.begin(), s.end());
    return ::torch::zeros(shape, x.options());
  };
  auto input = [&](int idx) -> Tensor { return idx < 0 ? x : (outs[idx].defined() ? outs[idx] : zeros_for(idx)); };
  for (std::size_t i = 0; i < n; ++i) {
    if (!need[i]) continue;
    const auto& l = net_.layers[i];
    if (l.op == "mixed") {
      auto d = static_cast<std::size_t>(l.attrs.i("decision"));
      if (mixed) {
        Tensor acc;
        for (std::size_t o = 0; o < l.inputs.size(); ++o) {
          if (!need[l.inputs[o]] || candidate_is_zero_[l.inputs[o]]) continue;
          Tensor term = w[d][static_cast<std::int64_t>(o)] * outs[l.inputs[o]];
          acc = acc.defined() ? acc + term : term;
        }
        outs[i] = acc;  // undefined: every candidate was none or weightless
      } else {
        int c = l.inputs[arch_[d]];
        outs[i] = need[c] && !candidate_is_zero_[c] ? outs[c] : Tensor();
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
    } else {
      outs[i] = layers_[i].forward(input(l.inputs[0]));
    }
  }
  if (!outs[n - 1].defined()) outs[n - 1] = zeros_for(static_cast<int>(n - 1));
  return outs;
}

::torch::Tensor SupernetImpl::forward(const ::torch::Tensor& x) {
  NASFORGE_CHECK(x.dim() == static_cast<std::int64_t>(net_.input_shape.size()) + 1,
                 "Supernet: expected an input [batch, {}], got {} dimensions", shape_to_string(net_.input_shape), x.dim());
  return run(x).back();
}

void SupernetImpl::save_checkpoint(const std::string& path) const {
  ::torch::serialize::OutputArchive archive;
  save(archive);  // parameters and buffers (weights, BN statistics, logits)
  archive.write("nasforge.fingerprint", c10::IValue(space_.fingerprint()));
  for (std::size_t d = 0; d < masks_.size(); ++d) {
    std::vector<std::int64_t> m(masks_[d].begin(), masks_[d].end());
    archive.write(fmt::format("nasforge.mask_{}", d), ::torch::tensor(m), /*is_buffer=*/true);
  }
  try {
    archive.save_to(path);
  } catch (const c10::Error& e) {
    throw InvalidArgument(fmt::format("{}: cannot write the supernet checkpoint: {}", path, e.what_without_backtrace()));
  }
}

void SupernetImpl::load_checkpoint(const std::string& path) {
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
}

Network SupernetImpl::extract(const Architecture& arch) const {
  Network out(space_.resolve(space_.canonical(arch)));
  ::torch::NoGradGuard no_grad;
  const auto& layers = out->concrete().layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto dst = out->layer_module(i);
    if (!dst) continue;
    auto it = by_key_.find(key_of(layers[i]));
    NASFORGE_CHECK(it != by_key_.end() && !layers_[it->second].is_empty(),
                   "Supernet::extract: layer {} ({}) has no counterpart in the supernet", layers[i].name, layers[i].choice);
    auto src = layers_[it->second].ptr();
    auto sp = src->named_parameters(), dp = dst->named_parameters();
    for (auto& p : dp) p.value().copy_(sp[p.key()]);
    auto sb = src->named_buffers(), db = dst->named_buffers();
    for (auto& b : db) b.value().copy_(sb[b.key()]);
  }
  out->train(is_training());
  return out;
}

}  // namespace nasforge
