// Torch modules for every built-in op, and the Network that runs a ConcreteNetwork's DAG.
// Each module mirrors the op's definition in src/ops.cpp; the parameter counts must agree
// with the analytic formulas there (tests/torch/network_test.cpp checks every shipped space).
#include "nasforge/torch/network.h"

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>

#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>
#include <torch/nn/functional.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "nasforge/error.h"
#include "nasforge/ops.h"
#include "torch/layer_modules.h"

namespace nasforge {
namespace {

namespace F = ::torch::nn::functional;
using ::torch::Tensor;
using I = std::int64_t;

}  // namespace

namespace detail {
// A network's CUDA timing events, kept between forward_timed calls.
struct LayerEvents {
  explicit LayerEvents(::torch::Device d) : device(d) {}
  ::torch::Device device;
  std::vector<c10::Event> events;
};
}  // namespace detail

namespace {

// Whether this LibTorch's c10::Event can time (elapsedTime: 2.11 has it, 1.13 has not).
template <typename E, typename = void>
struct EventsTime : std::false_type {};
template <typename E>
struct EventsTime<E, std::void_t<decltype(std::declval<const E&>().elapsedTime(std::declval<const E&>()))>>
    : std::true_type {};

// Times the layers of one forward (Network::forward_timed). On the CPU and for a CUDA input
// with `events` off or unsupported: the wall time of each layer, a CUDA device synchronised
// before the first and after every layer. With CUDA events: an event recorded on the current
// stream before the first layer and after each, read once the last has completed, so the
// launch queue runs as it does in an untimed forward and a layer's time is the stream's time
// from the end of the layer before to its own end (launch gaps included).
class LayerClock {
 public:
  // `cache` keeps the events between forwards (creating one costs launch-path time).
  LayerClock(const Tensor& x, std::size_t layers, bool events, std::vector<double>& ms,
             std::shared_ptr<detail::LayerEvents>& cache)
      : cuda_(x.is_cuda()), device_(x.device()), ms_(ms) {
    ms_.assign(layers, 0.0);
    events_on_ = cuda_ && events && EventsTime<c10::Event>::value;
    if (events_on_) {
      stream_ = c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStream(device_);
      if (!cache || cache->device != device_ || cache->events.size() != layers + 1) {
        cache = std::make_shared<detail::LayerEvents>(device_);
        cache->events.reserve(layers + 1);
        for (std::size_t i = 0; i <= layers; ++i) {
          cache->events.emplace_back(c10::DeviceType::CUDA, c10::EventFlag::BACKEND_DEFAULT);
        }
      }
      events_ = &cache->events;
      events_->front().record(*stream_);
    } else {
      sync();  // earlier queued work is no layer's
    }
  }
  void start() {
    if (!events_on_) t0_ = std::chrono::steady_clock::now();
  }
  void stop(std::size_t i) {
    if (events_on_) {
      (*events_)[i + 1].record(*stream_);
      return;
    }
    sync();
    ms_[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
  }
  void finish() {
    if (!events_on_) return;
    sync();  // every event has completed
    for (std::size_t i = 0; i + 1 < events_->size(); ++i) ms_[i] = elapsed((*events_)[i], (*events_)[i + 1]);
  }

 private:
  void sync() const {
    if (cuda_) ::torch::cuda::synchronize(device_.index());
  }
  template <typename E>
  static double elapsed(const E& from, const E& to) {
    if constexpr (EventsTime<E>::value) {
      return from.elapsedTime(to);
    } else {
      throw Error("CUDA event timing needs a LibTorch whose c10::Event has elapsedTime (2.11 has, 1.13 has not)");
    }
  }
  bool cuda_;
  ::torch::Device device_;
  std::vector<double>& ms_;
  bool events_on_ = false;
  std::optional<c10::Stream> stream_;
  std::vector<c10::Event>* events_ = nullptr;
  std::chrono::steady_clock::time_point t0_;
};

Tensor activate(const Tensor& x, const std::string& fn) {
  if (fn == "none") return x;
  if (fn == "relu") return ::torch::relu(x);
  if (fn == "relu6") return ::torch::clamp(x, 0, 6);
  if (fn == "hswish") return x * ::torch::clamp(x + 3, 0, 6) / 6;
  if (fn == "hsigmoid") return ::torch::clamp(x + 3, 0, 6) / 6;
  if (fn == "sigmoid") return ::torch::sigmoid(x);
  if (fn == "swish") return x * ::torch::sigmoid(x);
  if (fn == "gelu") return ::torch::gelu(x);
  if (fn == "tanh") return ::torch::tanh(x);
  throw InvalidArgument(fmt::format("unknown activation \"{}\"", fn));
}

I pad_of(const LayerAttrs& a) {
  I p = a.has("padding") ? a.i("padding") : -1;
  I d = a.has("dilation") ? a.i("dilation") : 1;
  return p >= 0 ? p : d * (a.i("kernel") - 1) / 2;
}

::torch::nn::Conv2d conv2d(I in, I out, I k, I stride, I pad, I dil, I groups, bool bias) {
  return ::torch::nn::Conv2d(::torch::nn::Conv2dOptions(in, out, k)
                                 .stride(stride)
                                 .padding(pad)
                                 .dilation(dil)
                                 .groups(groups)
                                 .bias(bias));
}

::torch::nn::BatchNorm2d bn2d(I c, bool affine) {
  return ::torch::nn::BatchNorm2d(::torch::nn::BatchNorm2dOptions(c).affine(affine));
}

// [ReLU] -> conv -> [BN] -> act: conv, conv_bn_act, relu_conv_bn and the pieces of composites.
struct ConvUnitImpl : ::torch::nn::Module {
  ConvUnitImpl(bool pre_relu, I in, I out, I k, I stride, I pad, I dil, I groups, bool bias,
               bool bn, bool affine, std::string act)
      : pre_relu(pre_relu), act(std::move(act)) {
    conv = register_module("conv", conv2d(in, out, k, stride, pad, dil, groups, bias));
    if (bn) norm = register_module("bn", bn2d(out, affine));
  }
  Tensor forward(Tensor x) {
    if (pre_relu) x = ::torch::relu(x);
    x = conv->forward(x);
    if (norm) x = norm->forward(x);
    return activate(x, act);
  }
  bool pre_relu;
  std::string act;
  ::torch::nn::Conv2d conv{nullptr};
  ::torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(ConvUnit);

struct BatchNormImpl : ::torch::nn::Module {
  BatchNormImpl(const Shape& s, bool affine) {
    if (s.size() == 3) bn2 = register_module("bn", bn2d(s[0], affine));
    else bn1 = register_module("bn", ::torch::nn::BatchNorm1d(::torch::nn::BatchNorm1dOptions(s[0]).affine(affine)));
  }
  Tensor forward(const Tensor& x) { return bn2 ? bn2->forward(x) : bn1->forward(x); }
  ::torch::nn::BatchNorm2d bn2{nullptr};
  ::torch::nn::BatchNorm1d bn1{nullptr};
};
TORCH_MODULE(BatchNorm);

struct ActImpl : ::torch::nn::Module {
  explicit ActImpl(std::string fn) : fn(std::move(fn)) {}
  Tensor forward(const Tensor& x) { return activate(x, fn); }
  std::string fn;
};
TORCH_MODULE(Act);

struct PoolImpl : ::torch::nn::Module {
  PoolImpl(bool avg, I k, I stride, I pad, I c, bool bn, bool affine) : avg(avg), k(k), stride(stride), pad(pad) {
    if (bn) norm = register_module("bn", bn2d(c, affine));
  }
  Tensor forward(Tensor x) {
    x = avg ? average(x) : F::max_pool2d(x, F::MaxPool2dFuncOptions(k).stride(stride).padding(pad));
    return norm ? norm->forward(x) : x;
  }
  // Average pooling without counting the padding (count_include_pad = false), computed as a
  // depthwise convolution with a kernel of ones divided by each window's count of real pixels:
  // the same numbers as avg_pool2d, but 3-10x faster forward and backward on LibTorch 1.13's
  // CPU (avg_pool2d's NCHW backward is slow; docs/performance.md).
  Tensor average(const Tensor& x) const {
    const I c = x.size(1);
    auto opts = x.options().requires_grad(false);
    auto conv = F::Conv2dFuncOptions().stride(stride).padding(pad);
    Tensor sum = F::conv2d(x, ::torch::ones({c, 1, k, k}, opts), conv.groups(c));
    Tensor count = F::conv2d(::torch::ones({1, 1, x.size(2), x.size(3)}, opts), ::torch::ones({1, 1, k, k}, opts),
                             F::Conv2dFuncOptions().stride(stride).padding(pad));
    return sum * count.reciprocal_();
  }
  bool avg;
  I k, stride, pad;
  ::torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(Pool);

struct LambdaImpl : ::torch::nn::Module {
  explicit LambdaImpl(std::function<Tensor(const Tensor&)> f) : f(std::move(f)) {}
  Tensor forward(const Tensor& x) { return f(x); }
  std::function<Tensor(const Tensor&)> f;
};
TORCH_MODULE(Lambda);

struct LinearImpl : ::torch::nn::Module {
  LinearImpl(I in, I out, bool bias) {
    fc = register_module("fc", ::torch::nn::Linear(::torch::nn::LinearOptions(in, out).bias(bias)));
  }
  Tensor forward(const Tensor& x) { return fc->forward(x); }
  ::torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Linear);

// DARTS FactorizedReduce: ReLU, two 1x1 stride-2 convs (the second shifted by one pixel),
// concatenated, BN.
struct FactorizedReduceImpl : ::torch::nn::Module {
  FactorizedReduceImpl(I in, I out, bool affine) {
    c1 = register_module("conv1", conv2d(in, out / 2, 1, 2, 0, 1, 1, false));
    c2 = register_module("conv2", conv2d(in, out - out / 2, 1, 2, 0, 1, 1, false));
    norm = register_module("bn", bn2d(out, affine));
  }
  Tensor forward(const Tensor& x) {
    Tensor r = ::torch::relu(x);
    using ::torch::indexing::Slice;
    Tensor shifted = r.index({Slice(), Slice(), Slice(1, ::torch::indexing::None), Slice(1, ::torch::indexing::None)});
    return norm->forward(::torch::cat({c1->forward(r), c2->forward(shifted)}, 1));
  }
  ::torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  ::torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(FactorizedReduce);

// NAS-Bench-201's ResNet basic block.
struct ResNetBasicImpl : ::torch::nn::Module {
  ResNetBasicImpl(I in, I out, I stride, bool affine) : stride(stride) {
    a = register_module("conv_a", ConvUnit(true, in, out, 3, stride, 1, 1, 1, false, true, affine, "none"));
    b = register_module("conv_b", ConvUnit(true, out, out, 3, 1, 1, 1, 1, false, true, affine, "none"));
    if (stride == 2) {
      down = register_module("down", conv2d(in, out, 1, 1, 0, 1, 1, false));
    } else if (in != out) {
      proj = register_module("proj", ConvUnit(true, in, out, 1, 1, 0, 1, 1, false, true, affine, "none"));
    }
  }
  Tensor forward(const Tensor& x) {
    Tensor residual = x;
    if (down) residual = down->forward(F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2)));
    else if (proj) residual = proj->forward(x);
    return residual + b->forward(a->forward(x));
  }
  I stride;
  ConvUnit a{nullptr}, b{nullptr}, proj{nullptr};
  ::torch::nn::Conv2d down{nullptr};
};
TORCH_MODULE(ResNetBasic);

// DARTS SepConv (the separable block applied twice) and DilConv.
struct SepConvImpl : ::torch::nn::Module {
  SepConvImpl(I in, I out, I k, I stride, I dil, bool twice, bool affine) {
    I pad = dil * (k - 1) / 2;
    dw1 = register_module("dw1", conv2d(in, in, k, stride, pad, dil, in, false));
    if (twice) {
      pw1 = register_module("pw1", conv2d(in, in, 1, 1, 0, 1, 1, false));
      bn1 = register_module("bn1", bn2d(in, affine));
      dw2 = register_module("dw2", conv2d(in, in, k, 1, pad, dil, in, false));
      pw2 = register_module("pw2", conv2d(in, out, 1, 1, 0, 1, 1, false));
    } else {
      pw2 = register_module("pw2", conv2d(in, out, 1, 1, 0, 1, 1, false));
    }
    bn2 = register_module("bn2", bn2d(out, affine));
  }
  Tensor forward(const Tensor& x) {
    Tensor y = dw1->forward(::torch::relu(x));
    if (pw1) y = dw2->forward(::torch::relu(bn1->forward(pw1->forward(y))));
    return bn2->forward(pw2->forward(y));
  }
  ::torch::nn::Conv2d dw1{nullptr}, pw1{nullptr}, dw2{nullptr}, pw2{nullptr};
  ::torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(SepConv);

Tensor shuffle_channels(const Tensor& x, I groups) {
  auto s = x.sizes();
  return x.view({s[0], groups, s[1] / groups, s[2], s[3]}).transpose(1, 2).contiguous().view(s);
}

struct MBConvImpl : ::torch::nn::Module {
  MBConvImpl(I in, I out, const LayerAttrs& a, bool residual)
      : groups(a.i("groups")), act(a.s("act")), residual(residual) {
    double e = a.d("expansion");
    I mid = a.i("divisor") > 1 ? make_divisible(std::round(static_cast<double>(in) * e), a.i("divisor"))
                               : static_cast<I>(std::llround(static_cast<double>(in) * e));
    bool affine = a.b("affine");
    if (e != 1.0) {
      expand = register_module("expand", ConvUnit(false, in, mid, 1, 1, 0, 1, groups, false, true, affine, act));
    }
    I k = a.i("kernel");
    dw = register_module("dw", ConvUnit(false, mid, mid, k, a.i("stride"), (k - 1) / 2, 1, mid, false, true, affine, act));
    if (a.b("se")) {
      I r = make_divisible(static_cast<double>(mid) * a.d("se_ratio"), 8);
      se_reduce = register_module("se_reduce", conv2d(mid, r, 1, 1, 0, 1, 1, true));
      se_expand = register_module("se_expand", conv2d(r, mid, 1, 1, 0, 1, 1, true));
    }
    project = register_module("project", ConvUnit(false, mid, out, 1, 1, 0, 1, groups, false, true, affine, "none"));
  }
  Tensor forward(const Tensor& x) {
    Tensor y = x;
    if (expand) {
      y = expand->forward(y);
      if (groups > 1) y = shuffle_channels(y, groups);
    }
    y = dw->forward(y);
    if (se_reduce) {
      Tensor s = F::adaptive_avg_pool2d(y, F::AdaptiveAvgPool2dFuncOptions(1));
      s = activate(se_expand->forward(::torch::relu(se_reduce->forward(s))), "hsigmoid");
      y = y * s;
    }
    y = project->forward(y);
    return residual ? y + x : y;
  }
  I groups;
  std::string act;
  bool residual;
  ConvUnit expand{nullptr}, dw{nullptr}, project{nullptr};
  ::torch::nn::Conv2d se_reduce{nullptr}, se_expand{nullptr};
};
TORCH_MODULE(MBConv);

struct PatchEmbedImpl : ::torch::nn::Module {
  PatchEmbedImpl(I in, I d, I patch, I tokens, bool cls, bool pos) {
    proj = register_module("proj", conv2d(in, d, patch, patch, 0, 1, 1, true));
    if (cls) cls_token = register_parameter("cls_token", ::torch::zeros({1, 1, d}));
    if (pos) pos_embed = register_parameter("pos_embed", ::torch::randn({1, tokens, d}) * 0.02);
  }
  Tensor forward(const Tensor& x) {
    Tensor t = proj->forward(x).flatten(2).transpose(1, 2);  // [B, N, D]
    if (cls_token.defined()) t = ::torch::cat({cls_token.expand({t.size(0), 1, t.size(2)}), t}, 1);
    if (pos_embed.defined()) t = t + pos_embed;
    return t;
  }
  ::torch::nn::Conv2d proj{nullptr};
  Tensor cls_token, pos_embed;
};
TORCH_MODULE(PatchEmbed);

struct TransformerBlockImpl : ::torch::nn::Module {
  TransformerBlockImpl(I d, const LayerAttrs& a) : heads(a.i("heads")), head_dim(a.i("head_dim")) {
    I q = heads * head_dim;
    I hid = static_cast<I>(std::llround(a.d("mlp_ratio") * static_cast<double>(d)));
    ln1 = register_module("ln1", ::torch::nn::LayerNorm(::torch::nn::LayerNormOptions({d})));
    qkv = register_module("qkv", ::torch::nn::Linear(::torch::nn::LinearOptions(d, 3 * q).bias(a.b("qkv_bias"))));
    proj = register_module("proj", ::torch::nn::Linear(q, d));
    ln2 = register_module("ln2", ::torch::nn::LayerNorm(::torch::nn::LayerNormOptions({d})));
    fc1 = register_module("fc1", ::torch::nn::Linear(d, hid));
    fc2 = register_module("fc2", ::torch::nn::Linear(hid, d));
  }
  Tensor forward(const Tensor& x) {
    const I b = x.size(0), t = x.size(1);
    Tensor h = qkv->forward(ln1->forward(x)).view({b, t, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
    Tensor att = ::torch::softmax(::torch::matmul(h[0], h[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim)), -1);
    Tensor y = ::torch::matmul(att, h[2]).transpose(1, 2).reshape({b, t, heads * head_dim});
    Tensor z = x + proj->forward(y);
    return z + fc2->forward(::torch::gelu(fc1->forward(ln2->forward(z))));
  }
  I heads, head_dim;
  ::torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  ::torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TransformerBlock);

struct LayerNormImpl : ::torch::nn::Module {
  LayerNormImpl(I d, bool affine) {
    ln = register_module("ln", ::torch::nn::LayerNorm(::torch::nn::LayerNormOptions({d}).elementwise_affine(affine)));
  }
  Tensor forward(const Tensor& x) { return ln->forward(x); }
  ::torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(LayerNorm);

// ---- the factory for built-in ops -----------------------------------------------------------

::torch::nn::AnyModule build_builtin(const ConcreteLayer& l) {
  const auto& a = l.attrs;
  const Shape& in = l.input_shapes.at(0);
  const Shape& out = l.output_shape;
  const std::string& op = l.op;
  if (op == "conv" || op == "conv_bn_act" || op == "relu_conv_bn") {
    bool bn = op != "conv" && (op == "relu_conv_bn" || a.b("bn"));
    return ::torch::nn::AnyModule(ConvUnit(op == "relu_conv_bn", in[0], a.i("out"), a.i("kernel"), a.i("stride"),
                                           pad_of(a), a.i("dilation"), a.has("groups") ? a.i("groups") : 1,
                                           a.has("bias") && a.b("bias"), bn, a.has("affine") && a.b("affine"),
                                           a.has("act") ? a.s("act") : "none"));
  }
  if (op == "bn") return ::torch::nn::AnyModule(BatchNorm(in, a.b("affine")));
  if (op == "act") return ::torch::nn::AnyModule(Act(a.s("fn")));
  if (op == "avg_pool" || op == "max_pool") {
    I pad = a.i("padding") >= 0 ? a.i("padding") : (a.i("kernel") - 1) / 2;
    return ::torch::nn::AnyModule(Pool(op == "avg_pool", a.i("kernel"), a.i("stride"), pad, in[0], a.b("bn"), a.b("affine")));
  }
  if (op == "global_avg_pool") {
    return ::torch::nn::AnyModule(Lambda([](const Tensor& x) { return x.mean({2, 3}); }));
  }
  if (op == "flatten") return ::torch::nn::AnyModule(Lambda([](const Tensor& x) { return x.flatten(1); }));
  if (op == "linear") return ::torch::nn::AnyModule(Linear(in.back(), a.i("out"), a.b("bias")));
  if (op == "identity") {
    if (in == out) return ::torch::nn::AnyModule(Lambda([](const Tensor& x) { return x; }));
    if (a.s("reduce") == "factorized") return ::torch::nn::AnyModule(FactorizedReduce(in[0], out[0], a.b("affine")));
    return ::torch::nn::AnyModule(ConvUnit(false, in[0], out[0], 1, a.i("stride"), 0, 1, 1, false, true, a.b("affine"), "none"));
  }
  if (op == "factorized_reduce") return ::torch::nn::AnyModule(FactorizedReduce(in[0], a.i("out"), a.b("affine")));
  if (op == "resnet_basic") return ::torch::nn::AnyModule(ResNetBasic(in[0], a.i("out"), a.i("stride"), a.b("affine")));
  if (op == "sep_conv") {
    return ::torch::nn::AnyModule(SepConv(in[0], a.i("out"), a.i("kernel"), a.i("stride"), 1, true, a.b("affine")));
  }
  if (op == "dil_conv") {
    return ::torch::nn::AnyModule(SepConv(in[0], a.i("out"), a.i("kernel"), a.i("stride"), a.i("dilation"), false, a.b("affine")));
  }
  if (op == "mbconv") {
    bool residual = a.b("residual") && a.i("stride") == 1 && in[0] == out[0];
    return ::torch::nn::AnyModule(MBConv(in[0], out[0], a, residual));
  }
  if (op == "layer_norm") return ::torch::nn::AnyModule(LayerNorm(in.back(), a.b("affine")));
  if (op == "patch_embed") {
    return ::torch::nn::AnyModule(PatchEmbed(in[0], out[1], a.i("patch"), out[0], a.b("cls_token"), a.b("pos_embed")));
  }
  if (op == "transformer_block") return ::torch::nn::AnyModule(TransformerBlock(in[1], a));
  if (op == "token_pool") {
    bool cls = a.s("mode") == "cls";
    return ::torch::nn::AnyModule(Lambda([cls](const Tensor& x) { return cls ? x.select(1, 0) : x.mean(1); }));
  }
  return {};
}

std::mutex g_mutex;
std::map<std::string, TorchOpFactory>& user_ops() {
  static std::map<std::string, TorchOpFactory> m;
  return m;
}

}  // namespace

namespace detail {
::torch::nn::AnyModule make_layer_module(const ConcreteLayer& l) {
  if (l.op == "sum" || l.op == "concat" || l.op == "zero" || l.op == "mixed" || l.op == "select") return {};
  ::torch::nn::AnyModule m;
  {
    std::lock_guard lock(g_mutex);
    auto it = user_ops().find(l.op);
    if (it != user_ops().end()) m = it->second(l);
  }
  if (m.is_empty()) m = build_builtin(l);
  if (m.is_empty()) {
    throw InvalidArgument(fmt::format("layer {}: op \"{}\" has no torch implementation (register one "
                                      "with register_torch_op)", l.name, l.op));
  }
  return m;
}
}  // namespace detail

namespace detail {
std::size_t visit_layer_tensors(::torch::nn::Module& m, const TensorVisitor& visit) {
  std::size_t visited = 0;
  for (const auto& item : m.named_modules("", /*include_self=*/true)) {
    ::torch::nn::Module* mod = item.value().get();
    auto slot = [&](const char* name, Tensor& t, bool conv_weight = false, bool grouped = false) {
      if (!t.defined()) return;
      visit(TensorSlot{item.key().empty() ? std::string(name) : item.key() + "." + name, conv_weight, grouped}, t);
      ++visited;
    };
    auto norm = [&](auto* n) {
      slot("weight", n->weight);
      slot("bias", n->bias);
      slot("running_mean", n->running_mean);
      slot("running_var", n->running_var);
      slot("num_batches_tracked", n->num_batches_tracked);
    };
    if (auto* c = dynamic_cast<::torch::nn::Conv2dImpl*>(mod)) {
      const I g = c->options.groups();
      slot("weight", c->weight, true, g > 1 && g != c->options.in_channels());
      slot("bias", c->bias);
    } else if (auto* b2 = dynamic_cast<::torch::nn::BatchNorm2dImpl*>(mod)) {
      norm(b2);
    } else if (auto* b1 = dynamic_cast<::torch::nn::BatchNorm1dImpl*>(mod)) {
      norm(b1);
    } else if (auto* fc = dynamic_cast<::torch::nn::LinearImpl*>(mod)) {
      slot("weight", fc->weight);
      slot("bias", fc->bias);
    } else if (auto* ln = dynamic_cast<::torch::nn::LayerNormImpl*>(mod)) {
      slot("weight", ln->weight);
      slot("bias", ln->bias);
    } else if (auto* pe = dynamic_cast<PatchEmbedImpl*>(mod)) {
      slot("cls_token", pe->cls_token);
      slot("pos_embed", pe->pos_embed);
    }
  }
  const std::size_t total = m.named_parameters().size() + m.named_buffers().size();
  if (visited != total) {
    throw InvalidArgument(fmt::format("module {}: {} of its {} tensors sit in modules other than Conv2d, "
                                      "BatchNorm, Linear and LayerNorm, so its weights cannot be shared or sliced",
                                      m.name(), total - visited, total));
  }
  return visited;
}
}  // namespace detail

void register_torch_op(const std::string& op, TorchOpFactory factory) {
  NASFORGE_CHECK(static_cast<bool>(factory), "register_torch_op({}): expected a factory", op);
  std::lock_guard lock(g_mutex);
  NASFORGE_CHECK(!user_ops().count(op), "register_torch_op: op \"{}\" already has a torch implementation", op);
  user_ops().emplace(op, std::move(factory));
}

NetworkImpl::NetworkImpl(ConcreteNetwork net)
    : NetworkImpl(std::move(net), [](const ConcreteLayer& l, std::size_t) { return detail::make_layer_module(l); }) {}

NetworkImpl::NetworkImpl(ConcreteNetwork net, const LayerFactory& make) : net_(std::move(net)) {
  const auto n = net_.layers.size();
  layers_.resize(n);
  last_use_.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& l = net_.layers[i];
    for (int in : l.inputs) {
      if (in >= 0) last_use_[in] = std::max(last_use_[in], static_cast<int>(i));
    }
    if (l.op == "sum" || l.op == "concat" || l.op == "zero") continue;
    ::torch::nn::AnyModule m = make(l, i);
    NASFORGE_CHECK(!m.is_empty(), "Network: the layer factory gave no module for layer {} ({})", l.name, l.op);
    register_module(fmt::format("l{}", i), m.ptr());
    layers_[i] = std::move(m);
  }
}

std::vector<Tensor> NetworkImpl::run(const Tensor& x, bool keep_all, std::vector<double>* layer_ms, bool cuda_events) {
  NASFORGE_CHECK(x.dim() == static_cast<I>(net_.input_shape.size()) + 1,
                 "Network: expected an input [batch, {}], got {} dimensions",
                 shape_to_string(net_.input_shape), x.dim());
  const auto n = net_.layers.size();
  std::vector<Tensor> outs(n);
  auto input = [&](int idx) -> const Tensor& { return idx < 0 ? x : outs[idx]; };
  std::optional<LayerClock> clock;
  if (layer_ms) clock.emplace(x, n, cuda_events, *layer_ms, layer_events_);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& l = net_.layers[i];
    if (clock) clock->start();
    if (l.op == "sum") {
      Tensor acc;
      for (int in : l.inputs) {
        if (in >= 0 && net_.layers[in].op == "zero") continue;  // adds nothing
        acc = acc.defined() ? acc + input(in) : input(in);
      }
      outs[i] = acc.defined() ? acc : ::torch::zeros_like(input(l.inputs[0]));
    } else if (l.op == "concat") {
      std::vector<Tensor> parts;
      for (int in : l.inputs) parts.push_back(input(in));
      outs[i] = ::torch::cat(parts, 1);
    } else if (l.op == "zero") {
      std::vector<I> shape{x.size(0)};
      shape.insert(shape.end(), l.output_shape.begin(), l.output_shape.end());
      outs[i] = ::torch::zeros(shape, x.options());
    } else {
      outs[i] = layers_[i].forward(input(l.inputs[0]));
    }
    if (clock) clock->stop(i);
    if (keep_all) continue;
    // Free inputs nobody reads any more (keeps peak memory near the analytic estimate).
    for (int in : l.inputs) {
      if (in >= 0 && last_use_[in] == static_cast<int>(i)) outs[in] = Tensor();
    }
  }
  if (clock) clock->finish();
  return outs;
}

std::vector<Tensor> NetworkImpl::forward_all(const Tensor& x) { return run(x, true, nullptr, false); }

Tensor NetworkImpl::forward(const Tensor& x) { return run(x, false, nullptr, false).back(); }

Tensor NetworkImpl::forward_timed(const Tensor& x, std::vector<double>& layer_ms, bool cuda_events) {
  return run(x, false, &layer_ms, cuda_events).back();
}

bool cuda_event_timing_supported() { return EventsTime<c10::Event>::value; }

std::shared_ptr<::torch::nn::Module> NetworkImpl::layer_module(std::size_t i) const {
  NASFORGE_CHECK(i < layers_.size(), "Network::layer_module: index {} outside [0, {})", i, layers_.size());
  return layers_[i].is_empty() ? nullptr : layers_[i].ptr();
}

std::int64_t NetworkImpl::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace nasforge
