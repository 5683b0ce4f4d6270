// SearchSpace operations and resolution (Architecture -> ConcreteNetwork). The parser that
// builds the SpaceImpl lives in search_space_parse.cpp.
#include "nasforge/search_space.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "detail/space_impl.h"
#include "nasforge/error.h"

namespace nasforge {

using detail::Item;
using detail::OpTemplate;
using detail::Owner;

const char* decision_kind_name(DecisionKind k) noexcept {
  switch (k) {
    case DecisionKind::kOp: return "op";
    case DecisionKind::kInputs: return "inputs";
    case DecisionKind::kValue: return "value";
    default: return "depth";
  }
}

SearchSpace SearchSpace::from_file(const std::string& path, const ParamOverrides& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFound(fmt::format("{}: cannot open the search-space file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw NotFound(fmt::format("{}: cannot read the search-space file", path));
  return from_string(ss.str(), overrides, path);
}

SearchSpace SearchSpace::from_string(std::string_view text, const ParamOverrides& overrides,
                                     const std::string& origin) {
  SearchSpace space(detail::parse_space(text, overrides, origin));
  // Shapes are checked by resolving the extreme architectures (all first options, all last
  // options): most channel and shape mismatches show up there, with the layer's path.
  const auto n = space.decisions().size();
  std::vector<std::uint32_t> lo(n, 0), hi(n, 0);
  for (std::size_t d = 0; d < n; ++d) {
    hi[d] = static_cast<std::uint32_t>(space.decisions()[d].options.size() - 1);
  }
  (void)space.resolve(space.canonical(Architecture(lo)));
  (void)space.resolve(space.canonical(Architecture(hi)));
  return space;
}

const std::string& SearchSpace::name() const { return impl_->name; }
const std::string& SearchSpace::description() const { return impl_->description; }
const std::string& SearchSpace::origin() const { return impl_->origin; }
const std::vector<std::pair<std::string, std::string>>& SearchSpace::params() const {
  return impl_->params;
}
const std::string& SearchSpace::fingerprint() const { return impl_->fingerprint; }
const std::vector<Decision>& SearchSpace::decisions() const { return impl_->decisions; }
SpaceSize SearchSpace::size() const { return impl_->size; }
bool SearchSpace::has_conditional_decisions() const { return impl_->conditional; }
std::size_t SearchSpace::onehot_size() const { return impl_->onehot_size; }

std::optional<std::size_t> SearchSpace::find_decision(std::string_view name) const {
  const auto& ds = impl_->decisions;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    if (ds[i].name == name) return i;
  }
  return std::nullopt;
}

void SearchSpace::validate(const Architecture& arch) const {
  const auto& ds = impl_->decisions;
  if (arch.size() != ds.size()) {
    throw SearchSpaceError(impl_->origin, "architecture",
                           fmt::format("expected {} choices (one per decision), found {}",
                                       ds.size(), arch.size()));
  }
  for (std::size_t i = 0; i < ds.size(); ++i) {
    if (arch[i] >= ds[i].options.size()) {
      throw SearchSpaceError(impl_->origin, fmt::format("architecture[{}]", i),
                             fmt::format("decision \"{}\" has {} options, found option index {}",
                                         ds[i].name, ds[i].options.size(), arch[i]));
    }
  }
}

namespace {
const std::string kReluConvBn = "relu_conv_bn";
bool is_active(const detail::SpaceImpl& sp, const Architecture& a, std::size_t d) {
  const Owner& ow = sp.owners[d];
  switch (ow.kind) {
    case Owner::Kind::kGlobal: return true;
    case Owner::Kind::kStageBlock:
      return sp.decisions[ow.by].options[a[ow.by]].as_int() > ow.index;
    case Owner::Kind::kCellEdge: return (sp.input_masks[ow.by][a[ow.by]] >> ow.index) & 1U;
  }
  return true;
}
}  // namespace

std::vector<bool> SearchSpace::active(const Architecture& arch) const {
  validate(arch);
  std::vector<bool> out(arch.size());
  for (std::size_t d = 0; d < arch.size(); ++d) out[d] = is_active(*impl_, arch, d);
  return out;
}

Architecture SearchSpace::canonical(const Architecture& arch) const {
  validate(arch);
  if (!impl_->conditional) return arch;
  Architecture out = arch;
  for (std::size_t d = 0; d < arch.size(); ++d) {
    if (!is_active(*impl_, arch, d)) out.set(d, 0);
  }
  return out;
}

Architecture SearchSpace::sample(Rng& rng) const {
  const auto& ds = impl_->decisions;
  std::vector<std::uint32_t> c(ds.size());
  for (std::size_t d = 0; d < ds.size(); ++d) {
    c[d] = static_cast<std::uint32_t>(rng.uniform(ds[d].options.size()));
  }
  Architecture a(std::move(c));
  return impl_->conditional ? canonical(a) : a;
}

Architecture SearchSpace::mutate(const Architecture& arch, Rng& rng, int num_changes) const {
  validate(arch);
  NASFORGE_CHECK(num_changes >= 1, "mutate: expected num_changes >= 1, got {}", num_changes);
  const auto& ds = impl_->decisions;
  std::vector<std::size_t> candidates;
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (ds[d].options.size() > 1 && is_active(*impl_, arch, d)) candidates.push_back(d);
  }
  Architecture out = arch;
  for (int k = 0; k < num_changes && !candidates.empty(); ++k) {
    std::size_t pick = rng.uniform(candidates.size());
    std::size_t d = candidates[pick];
    candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(pick));
    auto n = ds[d].options.size();
    auto o = static_cast<std::uint32_t>(rng.uniform(n - 1));
    if (o >= arch[d]) ++o;  // any option but the current one
    out.set(d, o);
  }
  return impl_->conditional ? canonical(out) : out;
}

Architecture SearchSpace::crossover(const Architecture& a, const Architecture& b, Rng& rng) const {
  validate(a);
  validate(b);
  Architecture out = a;
  std::uint64_t bits = 0;
  for (std::size_t d = 0; d < a.size(); ++d) {
    if (d % 64 == 0) bits = rng();
    if ((bits >> (d % 64)) & 1U) out.set(d, b[d]);
  }
  return impl_->conditional ? canonical(out) : out;
}

std::vector<Architecture> SearchSpace::neighbours(const Architecture& arch) const {
  validate(arch);
  std::vector<Architecture> out;
  const auto& ds = impl_->decisions;
  for (std::size_t d = 0; d < ds.size(); ++d) {
    if (!is_active(*impl_, arch, d)) continue;
    for (std::uint32_t o = 0; o < ds[d].options.size(); ++o) {
      if (o == arch[d]) continue;
      Architecture n = arch;
      n.set(d, o);
      out.push_back(impl_->conditional ? canonical(n) : n);
    }
  }
  return out;
}

void SearchSpace::encode_onehot(const Architecture& arch, float* out) const {
  validate(arch);
  std::fill(out, out + impl_->onehot_size, 0.0F);
  for (std::size_t d = 0; d < arch.size(); ++d) {
    if (impl_->conditional && !is_active(*impl_, arch, d)) continue;
    out[impl_->onehot_offset[d] + arch[d]] = 1.0F;
  }
}

std::vector<float> SearchSpace::encode_onehot(const Architecture& arch) const {
  std::vector<float> out(impl_->onehot_size);
  encode_onehot(arch, out.data());
  return out;
}

std::vector<float> SearchSpace::encode_ordinal(const Architecture& arch) const {
  validate(arch);
  std::vector<float> out(arch.size());
  for (std::size_t d = 0; d < arch.size(); ++d) {
    out[d] = is_active(*impl_, arch, d) ? static_cast<float>(arch[d]) : -1.0F;
  }
  return out;
}

bool SearchSpace::is_enumerable() const {
  long double raw = 1;
  for (const auto& d : impl_->decisions) raw *= static_cast<long double>(d.options.size());
  return raw <= 4294967296.0L;
}

std::uint64_t SearchSpace::index_of(const Architecture& arch) const {
  NASFORGE_CHECK(is_enumerable(), "index_of: space \"{}\" is too large to index", impl_->name);
  validate(arch);
  std::uint64_t idx = 0;
  for (std::size_t d = 0; d < arch.size(); ++d) {
    idx = idx * impl_->decisions[d].options.size() + arch[d];
  }
  return idx;
}

Architecture SearchSpace::at(std::uint64_t index) const {
  NASFORGE_CHECK(is_enumerable(), "at: space \"{}\" is too large to index", impl_->name);
  const auto& ds = impl_->decisions;
  std::vector<std::uint32_t> c(ds.size());
  for (std::size_t d = ds.size(); d-- > 0;) {
    auto n = ds[d].options.size();
    c[d] = static_cast<std::uint32_t>(index % n);
    index /= n;
  }
  NASFORGE_CHECK(index == 0, "at: index out of range for space \"{}\"", impl_->name);
  return Architecture(std::move(c));
}

void SearchSpace::for_each(const std::function<void(const Architecture&)>& visit) const {
  NASFORGE_CHECK(is_enumerable(), "for_each: space \"{}\" is too large to enumerate ({} architectures)",
                 impl_->name, impl_->size.exact);
  const auto& ds = impl_->decisions;
  Architecture a(std::vector<std::uint32_t>(ds.size(), 0));
  for (;;) {
    if (!impl_->conditional || canonical(a) == a) visit(a);
    // Increment the mixed-radix counter, last decision fastest.
    std::size_t d = ds.size();
    while (d > 0) {
      --d;
      if (a[d] + 1 < ds[d].options.size()) {
        a.set(d, a[d] + 1);
        break;
      }
      a.set(d, 0);
      if (d == 0) return;
    }
    if (ds.empty()) return;
  }
}

// ---- resolution ---------------------------------------------------------------------------

namespace {

constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;

class Resolver {
 public:
  Resolver(const detail::SpaceImpl& sp, const Architecture& a, bool super = false)
      : sp_(sp), a_(a), super_(super) {}

  ConcreteNetwork run() {
    for (std::size_t i = 0; i < sp_.input_shape.size(); ++i) {
      std::string path = fmt::format("params.input[{}]", i);
      Value v = eval(sp_.input_shape[i], path);
      std::int64_t dim = to_int(v, path);
      if (dim < 1 || dim > 65536) fail(path, fmt::format("expected an input dimension in [1, 65536], found {}", dim));
      net_.input_shape.push_back(dim);
    }
    std::int64_t n = 1;  // the input is a tensor like any other: at most 2^40 elements
    for (auto d : net_.input_shape) {
      if (n > kMaxElements / d) {
        fail("params.input", fmt::format("expected an input of at most 2^40 elements, found {}",
                                         shape_to_string(net_.input_shape)));
      }
      n *= d;
    }
    outs_.push_back(-1);
    for (const auto& item : sp_.network) process(item);
    return std::move(net_);
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw SearchSpaceError(sp_.origin, path, what);
  }

  Value eval(const detail::Expr& e, const std::string& path) const {
    try {
      return detail::eval_expr(e, sp_.decisions, &a_);
    } catch (const InvalidArgument& err) {
      fail(path, err.what());
    }
  }

  std::int64_t to_int(const Value& v, const std::string& path) const {
    if (v.is_int()) return v.as_int();
    if (v.is_double() && std::floor(v.as_double()) == v.as_double() && std::abs(v.as_double()) < 9e15) {
      return static_cast<std::int64_t>(v.as_double());
    }
    fail(path, fmt::format("expected an integer, found {} {}", v.kind_name(), v.repr()));
  }

  const Shape& shape_of(int idx) const { return idx < 0 ? net_.input_shape : net_.layers[idx].output_shape; }

  Value coerce(const AttrDef& ad, Value v, const std::string& path, const std::string& op) const {
    switch (ad.type) {
      case AttrType::kInt: {
        // Constants are range-checked at parse time; values that depend on a choice here.
        const std::int64_t i = to_int(v, path);
        if (i < -1 || i > (std::int64_t{1} << 24)) {
          fail(path, fmt::format("expected {}.{} in [-1, {}], found {}", op, ad.name, 1 << 24, i));
        }
        return i;
      }
      case AttrType::kNumber:
        if (v.is_number()) return v;
        break;
      case AttrType::kBool:
        if (v.is_bool()) return v;
        break;
      case AttrType::kString:
        if (v.is_string()) return v;
        break;
    }
    fail(path, fmt::format("expected {} for {}.{}, found {} {}", attr_type_name(ad.type), op,
                           ad.name, v.kind_name(), v.repr()));
  }

  // Attribute precedence: forced (stride 1 after a stage's first block) > the op's own >
  // shared (a choose's) > injected (a cell's out and stride) > the op's default.
  LayerAttrs make_attrs(const OpTemplate& t, const std::vector<detail::Attr>* shared,
                        const std::vector<std::pair<std::string, Value>>& injected,
                        bool force_stride_one) const {
    LayerAttrs attrs;
    for (const auto& ad : t.def->attrs) {
      const detail::Attr* src = nullptr;
      for (const auto& a : t.attrs) {
        if (a.key == ad.name) src = &a;
      }
      if (!src && shared) {
        for (const auto& a : *shared) {
          if (a.key == ad.name) src = &a;
        }
      }
      if (force_stride_one && ad.name == "stride") {
        attrs.set(ad.name, std::int64_t{1});
      } else if (src) {
        attrs.set(ad.name, coerce(ad, eval(src->value, src->path), src->path, t.type));
      } else if (auto it = std::find_if(injected.begin(), injected.end(),
                                        [&](const auto& p) { return p.first == ad.name; });
                 it != injected.end()) {
        attrs.set(ad.name, it->second);
      } else if (ad.fallback) {
        attrs.set(ad.name, *ad.fallback);
      } else {
        fail(t.path, fmt::format("op \"{}\" needs attribute \"{}\" ({})", t.type, ad.name, ad.doc));
      }
    }
    return attrs;
  }

  int add(std::string name, const std::string& path, const OpDef& def, std::string choice,
          LayerAttrs attrs, std::vector<int> inputs) {
    ConcreteLayer l;
    l.name = std::move(name);
    l.op = def.name;
    l.choice = std::move(choice);
    for (int i : inputs) l.input_shapes.push_back(shape_of(i));
    l.inputs = std::move(inputs);
    try {
      l.output_shape = def.infer(l.input_shapes, attrs);
    } catch (const InvalidArgument& e) {
      fail(path, fmt::format("layer {} ({}): {}", l.name, def.name, e.what()));
    }
    std::int64_t n = 1;
    for (auto d : l.output_shape) {
      if (d < 1 || n > kMaxElements / d) {
        fail(path, fmt::format("layer {} ({}) would output {}, expected every dimension >= 1 "
                               "and at most 2^40 elements",
                               l.name, def.name, shape_to_string(l.output_shape)));
      }
      n *= d;
    }
    // The analytic cost must be computable too: shapes that fit can still describe a layer whose
    // parameter or MAC count overflows, and analytic_costs cannot fail on a resolved network.
    try {
      const LayerCost c = def.cost(l.input_shapes, l.output_shape, attrs);
      if (c.workspace > kMaxElements) {
        throw InvalidArgument(fmt::format(
            "expected op-internal tensors of at most 2^40 elements, found {}", c.workspace));
      }
      // Below 2^62, so that AnalyticCosts::flops() = 2 x MACs fits as well.
      constexpr std::int64_t kMaxCount = std::int64_t{1} << 62;
      if (__builtin_add_overflow(params_, c.params, &params_) ||
          __builtin_add_overflow(macs_, c.macs, &macs_) || params_ >= kMaxCount || macs_ >= kMaxCount) {
        throw InvalidArgument("expected the network's parameter and MAC counts below 2^62, found larger");
      }
    } catch (const InvalidArgument& e) {
      fail(path, fmt::format("layer {} ({}): {}", l.name, def.name, e.what()));
    }
    l.attrs = std::move(attrs);
    net_.layers.push_back(std::move(l));
    return static_cast<int>(net_.layers.size()) - 1;
  }

  int add_op(const OpTemplate& t, const std::string& name, const std::vector<detail::Attr>* shared,
             const std::vector<std::pair<std::string, Value>>& injected, bool force_stride_one,
             int input) {
    return add(name, t.path, *t.def, t.label, make_attrs(t, shared, injected, force_stride_one), {input});
  }

  // Supernet structure: the candidates of op decision `d` reading `input`, then their mixed slot.
  int super_slot(const std::vector<OpTemplate>& options, const std::string& name, const std::string& path,
                 const std::vector<detail::Attr>* shared,
                 const std::vector<std::pair<std::string, Value>>& injected, bool force_stride_one, int input,
                 int d, int input_decision, int source) {
    std::vector<int> cands;
    for (const auto& t : options) cands.push_back(add_op(t, name, shared, injected, force_stride_one, input));
    LayerAttrs a;
    a.set("decision", std::int64_t{d});
    a.set("input_decision", std::int64_t{input_decision});
    a.set("source", std::int64_t{source});
    return add(name + ".mixed", path, find_op("mixed"), "", a, cands);
  }

  void process(const Item& item) {
    if (super_) {
      if (item.kind == Item::Kind::kChoose) {
        outs_.push_back(super_slot(item.options, item.name, item.path, &item.shared, {}, item.force_stride_one,
                                   outs_.back(), item.decision, -1, -1));
        return;
      }
      if (item.kind == Item::Kind::kStage && item.decision >= 0) {
        std::vector<int> after{outs_.back()};  // after[k]: the output with k blocks
        for (const auto& b : item.blocks) {
          process(b);
          after.push_back(outs_.back());
        }
        std::vector<int> by_option;
        for (const auto& v : sp_.decisions[item.decision].options) by_option.push_back(after[v.as_int()]);
        LayerAttrs a;
        a.set("decision", std::int64_t{item.decision});
        outs_.push_back(add(item.name + ".select", item.path, find_op("select"), "", a, by_option));
        return;
      }
    }
    switch (item.kind) {
      case Item::Kind::kOp:
        outs_.push_back(add_op(item.op, item.name, nullptr, {}, item.force_stride_one, outs_.back()));
        break;
      case Item::Kind::kChoose: {
        const OpTemplate& t = item.options[a_[item.decision]];
        outs_.push_back(add_op(t, item.name, &item.shared, {}, item.force_stride_one, outs_.back()));
        break;
      }
      case Item::Kind::kStage: {
        std::size_t depth = item.blocks.size();
        if (item.decision >= 0) {
          depth = static_cast<std::size_t>(sp_.decisions[item.decision].options[a_[item.decision]].as_int());
        }
        for (std::size_t b = 0; b < depth; ++b) process(item.blocks[b]);
        break;
      }
      case Item::Kind::kCell: cell(item); break;
    }
  }

  void cell(const Item& item) {
    const detail::CellStruct& c = *item.cell;
    int s1 = outs_.back();
    // outs_[0] is the network input; a first cell takes the previous output twice (DARTS).
    int s0 = outs_.size() >= 3 ? outs_[outs_.size() - 2] : s1;
    const Shape sh1 = shape_of(s1);  // a copy: adding layers reallocates
    if (sh1.size() != 3) fail(item.path, fmt::format("a cell expects an image input [C,H,W], found {}", shape_to_string(sh1)));
    std::int64_t ch = sh1[0];
    if (!item.channels.empty()) {
      std::string p = item.path + ".channels";
      ch = to_int(eval(item.channels, p), p);
      if (ch < 1 || ch > (1 << 20)) fail(p, fmt::format("expected channels in [1, 2^20], found {}", ch));
    }
    std::vector<int> state;
    const OpDef& rcb = find_op(kReluConvBn);  // a named string: gcc 13 warns of a reference bound through a temporary
    auto preprocess = [&](int src, const std::string& nm) {
      const Shape s = shape_of(src);
      if (s.size() != 3) fail(item.path, fmt::format("a cell input must be an image [C,H,W], found {}", shape_to_string(s)));
      if (c.inputs == 2 && s[1] != sh1[1]) {
        if (s[1] != 2 * sh1[1]) {
          fail(item.path, fmt::format("cell inputs have spatial sizes {} and {}; expected equal "
                                      "or the first twice the second",
                                      s[1], sh1[1]));
        }
        LayerAttrs a;
        a.set("out", ch);
        a.set("affine", true);
        return add(item.name + "." + nm, item.path, find_op("factorized_reduce"), "", a, {src});
      }
      if (!c.preprocess) {
        if (s[0] != ch) {
          fail(item.path, fmt::format("cell \"{}\" expects {} channels at its input, found {} "
                                      "(set \"preprocess\": true or change \"channels\")",
                                      c.name, ch, s[0]));
        }
        return src;
      }
      LayerAttrs a;
      a.set("out", ch);
      a.set("kernel", std::int64_t{1});
      a.set("stride", std::int64_t{1});
      a.set("padding", std::int64_t{0});
      a.set("dilation", std::int64_t{1});
      a.set("affine", true);
      return add(item.name + "." + nm, item.path, rcb, "", a, {src});
    };
    if (c.inputs == 2) state.push_back(preprocess(s0, "pre0"));
    state.push_back(preprocess(s1, c.inputs == 2 ? "pre1" : "pre"));
    std::size_t e = 0;
    for (int i = 0; i < c.nodes; ++i) {
      std::uint64_t mask = ~std::uint64_t{0};
      if (c.input_decision[i] >= 0) mask = sp_.input_masks[c.input_decision[i]][a_[c.input_decision[i]]];
      std::vector<int> terms;
      for (; e < c.edges.size() && c.edges[e].dst == i; ++e) {
        const auto& edge = c.edges[e];
        std::int64_t stride = (c.reduction && edge.src < c.inputs) ? 2 : 1;
        const std::vector<std::pair<std::string, Value>> injected{{"out", Value(ch)}, {"stride", Value(stride)}};
        const std::string ename = fmt::format("{}.edge[{}]", item.name, e);
        if (super_) {  // every edge, every candidate; liveness is decided at run time
          terms.push_back(super_slot(c.ops, ename, item.path, nullptr, injected, false, state[edge.src],
                                     edge.decision, c.input_decision[i], edge.src));
          continue;
        }
        if (!((mask >> edge.src) & 1U)) continue;
        terms.push_back(add_op(c.ops[a_[edge.decision]], ename, nullptr, injected, false, state[edge.src]));
      }
      if (terms.size() == 1) {
        state.push_back(terms[0]);
      } else {
        state.push_back(add(fmt::format("{}.node[{}]", item.name, i), item.path, find_op("sum"), "", {}, terms));
      }
    }
    if (c.concat_output) {
      std::vector<int> nodes(state.begin() + c.inputs, state.end());
      outs_.push_back(nodes.size() == 1 ? nodes[0]
                                        : add(item.name + ".concat", item.path, find_op("concat"), "", {}, nodes));
    } else {
      outs_.push_back(state.back());
    }
  }

  const detail::SpaceImpl& sp_;
  const Architecture& a_;
  bool super_ = false;
  std::int64_t params_ = 0, macs_ = 0;  // running totals, checked for overflow
  ConcreteNetwork net_;
  std::vector<int> outs_;
};

}  // namespace

ConcreteNetwork SearchSpace::resolve(const Architecture& arch) const {
  validate(arch);
  return Resolver(*impl_, arch).run();
}

ConcreteNetwork SearchSpace::supernet() const {
  // Op, input and depth decisions are expanded structurally; a value decision takes its
  // largest option (numbers and booleans compare as numbers; strings take the first), so that
  // every sub-network's weights are slices of the supernet's.
  std::vector<std::uint32_t> pick(impl_->decisions.size(), 0);
  for (std::size_t d = 0; d < pick.size(); ++d) {
    const auto& dec = impl_->decisions[d];
    if (dec.kind != DecisionKind::kValue) continue;
    auto num = [](const Value& v) {
      return v.is_int() ? static_cast<double>(v.as_int()) : v.is_double() ? v.as_double() : v.is_bool() ? double(v.as_bool()) : -1e300;
    };
    for (std::uint32_t o = 1; o < dec.options.size(); ++o) {
      if (num(dec.options[o]) > num(dec.options[pick[d]])) pick[d] = o;
    }
  }
  return Resolver(*impl_, Architecture(std::move(pick)), /*super=*/true).run();
}

// ---- named and native forms ---------------------------------------------------------------

namespace {
nlohmann::json value_json(const Value& v) {
  if (v.is_int()) return v.as_int();
  if (v.is_double()) return v.as_double();
  if (v.is_bool()) return v.as_bool();
  return v.as_string();
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}
}  // namespace

nlohmann::json SearchSpace::to_json(const Architecture& arch) const {
  validate(arch);
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t d = 0; d < arch.size(); ++d) {
    const auto& dec = impl_->decisions[d];
    j[dec.name] = value_json(dec.options[arch[d]]);
  }
  return j;
}

Architecture SearchSpace::parse_architecture(std::string_view text_in) const {
  std::string text = trim(text_in);
  const std::string where = "architecture";
  if (text.empty()) throw SearchSpaceError(impl_->origin, where, "expected an architecture, found an empty string");
  if (text[0] != '[' && text[0] != '{') {
    if (!impl_->native.format.empty()) return from_native(text);
    throw SearchSpaceError(impl_->origin, where,
                           fmt::format("expected a JSON array of option indices or a JSON object "
                                       "of decision names (this space has no native string), found \"{}\"",
                                       text.size() > 60 ? text.substr(0, 57) + "..." : text));
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw SearchSpaceError(impl_->origin, where, fmt::format("not valid JSON: {}", text));
  Architecture a;
  if (j.is_array()) {
    try {
      a = j.get<Architecture>();
    } catch (const InvalidArgument& e) {
      throw SearchSpaceError(impl_->origin, where, e.what());
    }
    validate(a);
    return canonical(a);
  }
  const auto& ds = impl_->decisions;
  std::vector<std::uint32_t> c(ds.size(), 0);
  std::unordered_map<std::string_view, std::size_t> by_name;  // find_decision is linear
  by_name.reserve(ds.size());
  for (std::size_t i = 0; i < ds.size(); ++i) by_name.emplace(ds[i].name, i);
  for (const auto& [k, v] : j.items()) {
    auto found_name = by_name.find(k);
    std::optional<std::size_t> d;
    if (found_name != by_name.end()) d = found_name->second;
    if (!d) {
      throw SearchSpaceError(impl_->origin, fmt::format("{}.{}", where, k),
                             fmt::format("unknown decision \"{}\" (the space has {} decisions, "
                                         "e.g. \"{}\")",
                                         k, ds.size(), ds.empty() ? "" : ds[0].name));
    }
    const auto& opts = ds[*d].options;
    // The value as an option; numbers compare by exact value (4 matches 4.0, but 2^53 + 1 does
    // not match 2^53), the same equality that makes options of one choice distinct.
    std::optional<Value> val;
    if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))) {
      val = Value(v.get<std::int64_t>());
    } else if (v.is_number()) {
      val = Value(v.get<double>());
    } else if (v.is_boolean()) {
      val = Value(v.get<bool>());
    } else if (v.is_string()) {
      val = Value(v.get<std::string>());
    }
    bool found = false;
    for (std::uint32_t o = 0; o < opts.size() && val && !found; ++o) {
      if (detail::compare_options(opts[o], *val) == 0) {
        c[*d] = o;
        found = true;
      }
    }
    if (!found) {
      std::vector<std::string> names;
      for (const auto& o : opts) names.push_back(o.repr());
      throw SearchSpaceError(impl_->origin, fmt::format("{}.{}", where, k),
                             fmt::format("expected one of [{}], found {}", fmt::join(names, ", "), v.dump()));
    }
  }
  return canonical(Architecture(std::move(c)));
}

std::optional<std::string> SearchSpace::native_format() const {
  if (impl_->native.format.empty()) return std::nullopt;
  return impl_->native.format;
}

std::string SearchSpace::to_native(const Architecture& arch) const {
  validate(arch);
  const auto& nf = impl_->native;
  if (nf.format == "nb201") {
    const auto& c = *nf.cell;
    std::vector<std::string> nodes;
    std::size_t e = 0;
    for (int i = 0; i < c.nodes; ++i) {
      std::string node = "|";
      for (; e < c.edges.size() && c.edges[e].dst == i; ++e) {
        node += fmt::format("{}~{}|", c.ops[arch[c.edges[e].decision]].label, c.edges[e].src);
      }
      nodes.push_back(node);
    }
    return fmt::format("{}", fmt::join(nodes, "+"));
  }
  if (nf.format == "op_list") {
    std::vector<std::uint32_t> idx;
    for (int d : impl_->op_decisions) idx.push_back(arch[d]);
    return fmt::format("{}", fmt::join(idx, "-"));
  }
  throw InvalidArgument(fmt::format("space \"{}\" declares no native string format", impl_->name));
}

Architecture SearchSpace::from_native(std::string_view text_in) const {
  std::string text = trim(text_in);
  const auto& nf = impl_->native;
  const std::string where = "architecture";
  auto err = [&](const std::string& what) {
    throw SearchSpaceError(impl_->origin, where, fmt::format("{} in \"{}\"", what, text));
  };
  std::vector<std::uint32_t> c(impl_->decisions.size(), 0);
  if (nf.format == "nb201") {
    const auto& cell = *nf.cell;
    auto parts = split(text, '+');
    if (static_cast<int>(parts.size()) != cell.nodes) {
      err(fmt::format("expected {} nodes separated by '+', found {}", cell.nodes, parts.size()));
    }
    std::size_t e = 0;
    for (int i = 0; i < cell.nodes; ++i) {
      std::string p = parts[i];
      if (p.size() < 2 || p.front() != '|' || p.back() != '|') err(fmt::format("node {}: expected |op~j|...|", i + 1));
      auto toks = split(p.substr(1, p.size() - 2), '|');
      if (static_cast<int>(toks.size()) != cell.inputs + i) {
        err(fmt::format("node {}: expected {} edges, found {}", i + 1, cell.inputs + i, toks.size()));
      }
      for (std::size_t t = 0; t < toks.size(); ++t, ++e) {
        auto tilde = toks[t].rfind('~');
        if (tilde == std::string::npos) err(fmt::format("node {}: expected op~source, found \"{}\"", i + 1, toks[t]));
        std::string op = toks[t].substr(0, tilde), src = toks[t].substr(tilde + 1);
        if (src != std::to_string(t)) err(fmt::format("node {}: expected source {}, found \"{}\"", i + 1, t, src));
        const auto& opts = impl_->decisions[cell.edges[e].decision].options;
        auto it = std::find(opts.begin(), opts.end(), Value(op));
        if (it == opts.end()) {
          std::vector<std::string> names;
          for (const auto& o : opts) names.push_back(o.str());
          err(fmt::format("unknown op \"{}\"; expected one of {}", op, fmt::join(names, ", ")));
        }
        c[cell.edges[e].decision] = static_cast<std::uint32_t>(it - opts.begin());
      }
    }
    return canonical(Architecture(std::move(c)));
  }
  if (nf.format == "op_list") {
    // No op decisions: to_native writes "", which names the one architecture there is.
    auto toks = text.empty() ? std::vector<std::string>{} : split(text, '-');
    const auto& ods = impl_->op_decisions;
    if (toks.size() != ods.size()) err(fmt::format("expected {} ops separated by '-', found {}", ods.size(), toks.size()));
    for (std::size_t i = 0; i < toks.size(); ++i) {
      const auto& opts = impl_->decisions[ods[i]].options;
      const std::string& t = toks[i];
      if (!t.empty() && std::all_of(t.begin(), t.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
        if (t.size() > 6 || std::stoul(t) >= opts.size()) {
          err(fmt::format("position {}: expected an op index below {}, found {}", i, opts.size(), t));
        }
        c[ods[i]] = static_cast<std::uint32_t>(std::stoul(t));
      } else {
        auto it = std::find(opts.begin(), opts.end(), Value(t));
        if (it == opts.end()) err(fmt::format("position {}: unknown op \"{}\"", i, t));
        c[ods[i]] = static_cast<std::uint32_t>(it - opts.begin());
      }
    }
    return canonical(Architecture(std::move(c)));
  }
  throw SearchSpaceError(impl_->origin, where, fmt::format("space \"{}\" declares no native string format", impl_->name));
}

std::string SearchSpace::summary() const {
  const auto& sp = *impl_;
  std::string out = fmt::format("space      {}\n", sp.name);
  if (!sp.description.empty()) out += fmt::format("about      {}\n", sp.description);
  out += fmt::format("file       {}\n", sp.origin);
  for (const auto& [k, v] : sp.params) out += fmt::format("param      {} = {}\n", k, v);
  out += fmt::format("decisions  {}\n", sp.decisions.size());
  for (const auto& d : sp.decisions) {
    std::vector<std::string> opts;
    for (const auto& o : d.options) opts.push_back(o.str());
    out += fmt::format("  {:<36} {:<6} {}{}\n", d.name, decision_kind_name(d.kind),
                       fmt::join(opts, " | "), d.conditional ? "  (conditional)" : "");
  }
  out += fmt::format("size       {} (10^{:.2f})\n", sp.size.exact, sp.size.log10);
  if (!sp.native.format.empty()) out += fmt::format("native     {}\n", sp.native.format);
  out += fmt::format("fingerprint {}\n", sp.fingerprint);
  return out;
}

}  // namespace nasforge
