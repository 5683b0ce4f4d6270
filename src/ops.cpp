// Built-in ops: attributes, shape rules and analytic costs. The formulas are derived in
// docs/analytic_costs.md; keep the two in step.
#include "nasforge/ops.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nasforge/error.h"

namespace nasforge {
namespace {

using I = std::int64_t;

[[noreturn]] void bad(const std::string& msg) { throw InvalidArgument(msg); }

I numel(const Shape& s) {
  I n = 1;
  for (I d : s) n *= d;
  return n;
}

struct Img {
  I c, h, w;
};

Img image(const Shape& s, const char* op) {
  if (s.size() != 3) {
    bad(fmt::format("{} expects an image input [C,H,W], found {}", op, shape_to_string(s)));
  }
  return {s[0], s[1], s[2]};
}

I conv_out(I size, I k, I stride, I pad, I dil, const char* op) {
  I eff = dil * (k - 1) + 1;
  if (size + 2 * pad < eff) {
    bad(fmt::format("{}: a kernel of effective size {} does not fit a spatial size of {} "
                    "(padding {})",
                    op, eff, size, pad));
  }
  return (size + 2 * pad - eff) / stride + 1;
}

void positive(const LayerAttrs& a, const char* attr, const char* op, I max = I{1} << 24) {
  I v = a.i(attr);
  if (v < 1 || v > max) {
    bad(fmt::format("{}.{}: expected an integer in [1, {}], found {}", op, attr, max, v));
  }
}

I auto_pad(const LayerAttrs& a) {
  I p = a.has("padding") ? a.i("padding") : -1;
  I d = a.has("dilation") ? a.i("dilation") : 1;
  return p >= 0 ? p : d * (a.i("kernel") - 1) / 2;
}

const std::vector<std::string> kActs = {"none",  "relu", "relu6", "hswish", "hsigmoid",
                                        "sigmoid", "swish", "gelu", "tanh"};

void check_act(const std::string& act, const char* op) {
  if (std::find(kActs.begin(), kActs.end(), act) == kActs.end()) {
    bad(fmt::format("{}.act: expected one of {}, found \"{}\"", op, fmt::join(kActs, ", "), act));
  }
}

AttrDef req(std::string n, AttrType t, std::string doc) { return {std::move(n), t, std::nullopt, std::move(doc)}; }
AttrDef opt(std::string n, AttrType t, Value v, std::string doc) {
  return {std::move(n), t, std::move(v), std::move(doc)};
}

const AttrType kI = AttrType::kInt, kN = AttrType::kNumber, kB = AttrType::kBool,
               kS = AttrType::kString;

AttrDef a_out() { return req("out", kI, "output channels (or features)"); }
AttrDef a_kernel(I k) { return opt("kernel", kI, k, "square kernel size"); }
AttrDef a_stride() { return opt("stride", kI, 1, "stride of the spatial dims"); }
AttrDef a_pad() { return opt("padding", kI, -1, "zero padding; -1 = dilation*(kernel-1)/2"); }
AttrDef a_pool_pad() { return opt("padding", kI, -1, "zero padding; -1 = (kernel-1)/2"); }
AttrDef a_dil(I d) { return opt("dilation", kI, d, "kernel dilation"); }
AttrDef a_affine() { return opt("affine", kB, true, "batch norm with learnable scale and shift"); }

// Cost arithmetic is checked: attributes and shapes that pass the shape rules can still describe
// a layer whose parameter or MAC count does not fit 64 bits. SearchSpace::resolve computes each
// layer's cost once, so such a layer fails there, naming it, instead of overflowing later.
struct CI {
  I v = 0;
  CI(I x = 0) : v(x) {}  // NOLINT(google-explicit-constructor)
  [[noreturn]] static void too_large() {
    bad(fmt::format("expected a parameter, MAC and workspace count below 2^63, found a larger one"));
  }
  friend CI operator+(CI a, CI b) {
    I r = 0;
    if (__builtin_add_overflow(a.v, b.v, &r)) too_large();
    return CI(r);
  }
  friend CI operator*(CI a, CI b) {
    I r = 0;
    if (__builtin_mul_overflow(a.v, b.v, &r)) too_large();
    return CI(r);
  }
  friend CI operator/(CI a, CI b) { return CI(a.v / b.v); }  // divisors are positive
  CI& operator+=(CI b) { return *this = *this + b; }
};

// ---- shape and cost of a plain convolution, shared by the composite ops -------------------
struct ConvGeom {
  I ho, wo, params, macs;
};
ConvGeom conv_geom(const Img& x, I out, I k, I stride, I pad, I dil, I groups, bool bias,
                   const char* op) {
  if (x.c % groups != 0 || out % groups != 0) {
    bad(fmt::format("{}: groups={} must divide input channels {} and output channels {}", op,
                    groups, x.c, out));
  }
  I ho = conv_out(x.h, k, stride, pad, dil, op);
  I wo = conv_out(x.w, k, stride, pad, dil, op);
  CI per_out = CI(x.c / groups) * k * k;
  return {ho, wo, (CI(out) * per_out + (bias ? out : 0)).v, (CI(ho) * wo * out * per_out).v};
}

I bn_params(I c, const LayerAttrs& a) { return a.b("affine") ? 2 * c : 0; }

std::vector<OpDef> builtin_ops() {
  std::vector<OpDef> ops;

  // conv ---------------------------------------------------------------------------------
  ops.push_back(OpDef{
      "conv",
      "2-D convolution (no batch norm, no activation).",
      {a_out(), a_kernel(1), a_stride(), a_pad(), a_dil(1),
       opt("groups", kI, 1, "channel groups (1 = dense, C = depthwise)"),
       opt("bias", kB, false, "add a bias")},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "conv");
        positive(a, "out", "conv");
        positive(a, "kernel", "conv", 1024);
        positive(a, "stride", "conv", 1024);
        positive(a, "dilation", "conv", 1024);
        positive(a, "groups", "conv");
        auto g = conv_geom(x, a.i("out"), a.i("kernel"), a.i("stride"), auto_pad(a),
                           a.i("dilation"), a.i("groups"), a.b("bias"), "conv");
        return {a.i("out"), g.ho, g.wo};
      },
      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
        auto g = conv_geom(image(in[0], "conv"), a.i("out"), a.i("kernel"), a.i("stride"),
                           auto_pad(a), a.i("dilation"), a.i("groups"), a.b("bias"), "conv");
        return LayerCost{g.params, g.macs, 0};
      }});

  // conv_bn_act ----------------------------------------------------------------------------
  ops.push_back(OpDef{
      "conv_bn_act",
      "Convolution, batch norm, then an activation (a stem or head layer).",
      {a_out(), a_kernel(3), a_stride(), a_pad(), a_dil(1),
       opt("groups", kI, 1, "channel groups"), opt("bias", kB, false, "conv bias"),
       opt("bn", kB, true, "apply batch norm"), a_affine(),
       opt("act", kS, "none", "activation: none, relu, relu6, hswish, hsigmoid, sigmoid, swish, "
                               "gelu, tanh")},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "conv_bn_act");
        positive(a, "out", "conv_bn_act");
        positive(a, "kernel", "conv_bn_act", 1024);
        positive(a, "stride", "conv_bn_act", 1024);
        positive(a, "dilation", "conv_bn_act", 1024);
        positive(a, "groups", "conv_bn_act");
        check_act(a.s("act"), "conv_bn_act");
        auto g = conv_geom(x, a.i("out"), a.i("kernel"), a.i("stride"), auto_pad(a),
                           a.i("dilation"), a.i("groups"), a.b("bias"), "conv_bn_act");
        return {a.i("out"), g.ho, g.wo};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        auto g = conv_geom(image(in[0], "conv_bn_act"), a.i("out"), a.i("kernel"),
                           a.i("stride"), auto_pad(a), a.i("dilation"), a.i("groups"),
                           a.b("bias"), "conv_bn_act");
        I bn = a.b("bn") ? bn_params(a.i("out"), a) : 0;
        return LayerCost{(CI(g.params) + bn).v, g.macs, numel(out)};
      }});

  // relu_conv_bn (NAS-Bench-201 / DARTS ReLUConvBN) ---------------------------------------
  ops.push_back(OpDef{
      "relu_conv_bn",
      "ReLU, convolution, batch norm (NAS-Bench-201's nor_conv, DARTS's preprocessing).",
      {a_out(), a_kernel(1), a_stride(), a_pad(), a_dil(1), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "relu_conv_bn");
        positive(a, "out", "relu_conv_bn");
        positive(a, "kernel", "relu_conv_bn", 1024);
        positive(a, "stride", "relu_conv_bn", 1024);
        positive(a, "dilation", "relu_conv_bn", 1024);
        auto g = conv_geom(x, a.i("out"), a.i("kernel"), a.i("stride"), auto_pad(a),
                           a.i("dilation"), 1, false, "relu_conv_bn");
        return {a.i("out"), g.ho, g.wo};
      },
      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
        auto g = conv_geom(image(in[0], "relu_conv_bn"), a.i("out"), a.i("kernel"),
                           a.i("stride"), auto_pad(a), a.i("dilation"), 1, false,
                           "relu_conv_bn");
        return LayerCost{(CI(g.params) + bn_params(a.i("out"), a)).v, g.macs, numel(in[0])};
      }});

  // bn -------------------------------------------------------------------------------------
  ops.push_back(OpDef{"bn",
                      "Batch norm over the first dimension (channels or features).",
                      {a_affine()},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        if (in[0].size() != 3 && in[0].size() != 1) {
                          bad(fmt::format("bn expects an image [C,H,W] or features [F], found {} "
                                          "(use layer_norm for tokens)",
                                          shape_to_string(in[0])));
                        }
                        return in[0];
                      },
                      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
                        return LayerCost{bn_params(in[0][0], a), 0, 0};
                      }});

  // act ------------------------------------------------------------------------------------
  ops.push_back(OpDef{"act",
                      "Element-wise activation.",
                      {opt("fn", kS, "relu", "none, relu, relu6, hswish, hsigmoid, sigmoid, "
                                             "swish, gelu, tanh")},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
                        check_act(a.s("fn"), "act");
                        return in[0];
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});

  // pools ----------------------------------------------------------------------------------
  for (const char* name : {"avg_pool", "max_pool"}) {
    ops.push_back(OpDef{
        name,
        std::string(name) +
            " 2-D pooling (average pooling excludes padding from the count), optionally followed "
            "by batch norm as in the DARTS search cell. Channels never change.",
        {a_kernel(3), a_stride(), a_pool_pad(), opt("out", kI, 0, "0, or the input channels (checked)"),
         opt("bn", kB, false, "batch norm after pooling (DARTS search cell)"),
         opt("affine", kB, false, "affine parameters of that batch norm")},
        1, true,
        [name](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
          Img x = image(in[0], name);
          positive(a, "kernel", name, 1024);
          positive(a, "stride", name, 1024);
          if (a.i("out") != 0 && a.i("out") != x.c) {
            bad(fmt::format("{} cannot change channels: expected out = {} (the input channels), "
                            "found {}",
                            name, x.c, a.i("out")));
          }
          I p = a.i("padding") >= 0 ? a.i("padding") : (a.i("kernel") - 1) / 2;
          return {x.c, conv_out(x.h, a.i("kernel"), a.i("stride"), p, 1, name),
                  conv_out(x.w, a.i("kernel"), a.i("stride"), p, 1, name)};
        },
        [](const std::vector<Shape>&, const Shape& out, const LayerAttrs& a) {
          return LayerCost{a.b("bn") ? bn_params(out[0], a) : 0, 0, 0};
        }});
  }

  ops.push_back(OpDef{"global_avg_pool",
                      "Global average pooling: [C,H,W] -> [C].",
                      {},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        return {image(in[0], "global_avg_pool").c};
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});

  ops.push_back(OpDef{"flatten",
                      "Flattens all dimensions into one feature vector.",
                      {},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        return {numel(in[0])};
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});

  // linear ---------------------------------------------------------------------------------
  ops.push_back(OpDef{
      "linear",
      "Fully connected layer on the last dimension ([F] or per token of [T,D]).",
      {a_out(), opt("bias", kB, true, "add a bias")},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        if (in[0].empty() || in[0].size() > 2) {
          bad(fmt::format("linear expects [F] or [T,D], found {} (add global_avg_pool or "
                          "flatten before it)",
                          shape_to_string(in[0])));
        }
        positive(a, "out", "linear");
        Shape out = in[0];
        out.back() = a.i("out");
        return out;
      },
      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
        CI f = in[0].back(), o = a.i("out"), t = in[0].size() == 2 ? in[0][0] : 1;
        return LayerCost{(f * o + (a.b("bias") ? o : CI(0))).v, (t * f * o).v, 0};
      }});

  // identity / skip ------------------------------------------------------------------------
  ops.push_back(OpDef{
      "identity",
      "Skip connection. When the stride is 1 and the channels match it is the identity; "
      "otherwise it projects: `reduce: \"factorized\"` uses DARTS's FactorizedReduce (stride 2), "
      "`reduce: \"conv\"` a 1x1 convolution with stride followed by batch norm.",
      {opt("out", kI, 0, "output channels; 0 = input channels"), a_stride(),
       opt("reduce", kS, "conv", "projection when shapes change: conv or factorized"),
       a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        const std::string& r = a.s("reduce");
        if (r != "conv" && r != "factorized") {
          bad(fmt::format("identity.reduce: expected \"conv\" or \"factorized\", found \"{}\"", r));
        }
        positive(a, "stride", "identity", 1024);
        if (in[0].size() != 3) {
          if (a.i("stride") != 1 || (a.i("out") != 0 && a.i("out") != in[0][0])) {
            bad(fmt::format("identity with a projection expects an image input, found {}",
                            shape_to_string(in[0])));
          }
          return in[0];
        }
        Img x = image(in[0], "identity");
        I out = a.i("out") == 0 ? x.c : a.i("out");
        if (out < 0) bad(fmt::format("identity.out: expected >= 0, found {}", out));
        I s = a.i("stride");
        if (s == 1 && out == x.c) return in[0];
        if (r == "factorized") {
          if (s != 2) bad(fmt::format("identity with reduce \"factorized\" needs stride 2, found {}", s));
          if (out < 2) bad(fmt::format("identity with reduce \"factorized\" needs out >= 2, found {}", out));
          if (x.h % 2 || x.w % 2) {
            bad(fmt::format("factorized reduce expects even spatial dims, found {}",
                            shape_to_string(in[0])));
          }
          return {out, x.h / 2, x.w / 2};
        }
        return {out, conv_out(x.h, 1, s, 0, 1, "identity"), conv_out(x.w, 1, s, 0, 1, "identity")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        if (in[0] == out) return LayerCost{};
        CI c = in[0][0], o = out[0], hw = CI(out[1]) * out[2];
        return LayerCost{(c * o + bn_params(o.v, a)).v, (hw * c * o).v, 0};
      }});

  // zero / none ----------------------------------------------------------------------------
  ops.push_back(OpDef{
      "zero",
      "The `none` op: outputs zeros (subsampled by the stride). Never materialised: costs no "
      "compute and no memory.",
      {opt("out", kI, 0, "output channels; 0 = input channels"), a_stride()},
      1, false,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        positive(a, "stride", "zero", 1024);
        Shape s = in[0];
        if (a.i("out") < 0) bad(fmt::format("zero.out: expected >= 0, found {}", a.i("out")));
        if (a.i("out") != 0) s[0] = a.i("out");
        I st = a.i("stride");
        if (st != 1 && s.size() != 3) {
          bad(fmt::format("zero with stride {} expects an image input, found {}", st, shape_to_string(in[0])));
        }
        for (std::size_t d = 1; d < s.size(); ++d) s[d] = (s[d] + st - 1) / st;
        return s;
      },
      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) { return LayerCost{}; }});

  // factorized_reduce ----------------------------------------------------------------------
  ops.push_back(OpDef{
      "factorized_reduce",
      "DARTS FactorizedReduce: ReLU, two 1x1 stride-2 convolutions (the second on the input "
      "shifted by one pixel) producing out/2 and out - out/2 channels, concatenated, batch norm.",
      {a_out(), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "factorized_reduce");
        positive(a, "out", "factorized_reduce");
        if (a.i("out") < 2) bad("factorized_reduce.out: expected >= 2");
        if (x.h % 2 || x.w % 2) {
          bad(fmt::format("factorized_reduce expects even spatial dims, found {}",
                          shape_to_string(in[0])));
        }
        return {a.i("out"), x.h / 2, x.w / 2};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        CI c = in[0][0], o = out[0];
        return LayerCost{(c * o + bn_params(o.v, a)).v, (CI(out[1]) * out[2] * c * o).v, numel(in[0])};
      }});

  // resnet_basic (NAS-Bench-201 reduction block) --------------------------------------------
  ops.push_back(OpDef{
      "resnet_basic",
      "ResNet basic block as in NAS-Bench-201: ReLU-Conv3x3(stride)-BN, ReLU-Conv3x3-BN, plus a "
      "shortcut: AvgPool2x2 then Conv1x1 (no BN) when the stride is 2, ReLU-Conv1x1-BN when "
      "only the channels change, identity otherwise.",
      {a_out(), a_stride(), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "resnet_basic");
        positive(a, "out", "resnet_basic");
        I s = a.i("stride");
        if (s != 1 && s != 2) bad(fmt::format("resnet_basic.stride: expected 1 or 2, found {}", s));
        if (s == 2 && (x.h % 2 || x.w % 2)) {
          bad(fmt::format("resnet_basic with stride 2 expects even spatial dims (its AvgPool2x2 shortcut "
                          "rounds down), found {}",
                          shape_to_string(in[0])));
        }
        return {a.i("out"), conv_out(x.h, 3, s, 1, 1, "resnet_basic"),
                conv_out(x.w, 3, s, 1, 1, "resnet_basic")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        CI c = in[0][0], o = out[0], hw = CI(out[1]) * out[2];
        CI params = 9 * c * o + bn_params(o.v, a) + 9 * o * o + bn_params(o.v, a);
        CI macs = hw * 9 * c * o + hw * 9 * o * o;
        if (a.i("stride") == 2) {
          params += c * o;
          macs += hw * c * o;
        } else if (c.v != o.v) {
          params += c * o + bn_params(o.v, a);
          macs += hw * c * o;
        }
        LayerCost lc;
        lc.params = params.v;
        lc.macs = macs.v;
        lc.workspace = (2 * CI(numel(out)) + numel(in[0])).v;
        return lc;
      }});

  // sep_conv (DARTS) -----------------------------------------------------------------------
  ops.push_back(OpDef{
      "sep_conv",
      "DARTS separable convolution, applied twice: (ReLU, depthwise kxk stride s, pointwise "
      "C->C, BN) then (ReLU, depthwise kxk, pointwise C->out, BN).",
      {a_out(), a_kernel(3), a_stride(), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "sep_conv");
        positive(a, "out", "sep_conv");
        positive(a, "kernel", "sep_conv", 1024);
        positive(a, "stride", "sep_conv", 1024);
        I k = a.i("kernel"), p = (k - 1) / 2;
        I ho = conv_out(x.h, k, a.i("stride"), p, 1, "sep_conv");
        I wo = conv_out(x.w, k, a.i("stride"), p, 1, "sep_conv");
        return {a.i("out"), conv_out(ho, k, 1, p, 1, "sep_conv"), conv_out(wo, k, 1, p, 1, "sep_conv")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        CI c = in[0][0], o = out[0], k = a.i("kernel"), hw = CI(out[1]) * out[2];
        LayerCost lc;
        lc.params = (c * k * k + c * c + bn_params(c.v, a) + c * k * k + c * o + bn_params(o.v, a)).v;
        lc.macs = (hw * (c * k * k + c * c + c * k * k + c * o)).v;
        lc.workspace = (CI(numel(in[0])) + 2 * c * hw).v;
        return lc;
      }});

  // dil_conv (DARTS) -----------------------------------------------------------------------
  ops.push_back(OpDef{
      "dil_conv",
      "DARTS dilated separable convolution: ReLU, depthwise kxk with dilation d (padding "
      "d*(k-1)/2), pointwise C->out, BN.",
      {a_out(), a_kernel(3), a_stride(), a_dil(2), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "dil_conv");
        positive(a, "out", "dil_conv");
        positive(a, "kernel", "dil_conv", 1024);
        positive(a, "stride", "dil_conv", 1024);
        positive(a, "dilation", "dil_conv", 1024);
        I k = a.i("kernel"), d = a.i("dilation"), p = d * (k - 1) / 2;
        return {a.i("out"), conv_out(x.h, k, a.i("stride"), p, d, "dil_conv"),
                conv_out(x.w, k, a.i("stride"), p, d, "dil_conv")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        CI c = in[0][0], o = out[0], k = a.i("kernel"), hw = CI(out[1]) * out[2];
        return LayerCost{(c * k * k + c * o + bn_params(o.v, a)).v, (hw * (c * k * k + c * o)).v,
                         (CI(numel(in[0])) + c * hw).v};
      }});

  // mbconv (MobileNetV2/V3, Once-for-All, FBNet) --------------------------------------------
  ops.push_back(OpDef{
      "mbconv",
      "Inverted residual block: [1x1 expand conv (groups g, channel shuffle when g > 1), BN, "
      "act] when expansion != 1; depthwise kxk stride s, BN, act; [squeeze-excite: GAP, 1x1 "
      "conv+bias to make_divisible(mid*se_ratio, 8), ReLU, 1x1 conv+bias back, h-sigmoid]; 1x1 "
      "project conv (groups g), BN; residual add when stride 1 and in == out. mid = "
      "round(in * expansion), rounded with make_divisible when divisor > 1 (OFA uses 8).",
      {a_out(), a_kernel(3), opt("expansion", kN, 1, "expansion ratio (mid / in channels)"),
       a_stride(), opt("se", kB, false, "squeeze-and-excite"),
       opt("se_ratio", kN, 0.25, "squeeze-excite reduction"),
       opt("act", kS, "relu", "activation"), opt("groups", kI, 1, "groups of the 1x1 convs"),
       opt("divisor", kI, 1, "round mid channels to a multiple of this"),
       opt("residual", kB, true, "add the input when shapes allow"), a_affine()},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "mbconv");
        positive(a, "out", "mbconv");
        positive(a, "kernel", "mbconv", 1024);
        positive(a, "stride", "mbconv", 1024);
        positive(a, "groups", "mbconv");
        positive(a, "divisor", "mbconv", 1024);
        check_act(a.s("act"), "mbconv");
        double e = a.d("expansion");
        if (!(e > 0 && e <= 64)) bad(fmt::format("mbconv.expansion: expected (0, 64], found {}", e));
        double r = a.d("se_ratio");
        if (!(r > 0 && r <= 1)) bad(fmt::format("mbconv.se_ratio: expected (0, 1], found {}", r));
        I g = a.i("groups");
        I mid = a.i("divisor") > 1 ? make_divisible(std::round(x.c * e), a.i("divisor"))
                                   : static_cast<I>(std::llround(x.c * e));
        if (x.c % g || mid % g || a.i("out") % g) {
          bad(fmt::format("mbconv: groups={} must divide input ({}), mid ({}) and output ({}) "
                          "channels",
                          g, x.c, mid, a.i("out")));
        }
        I k = a.i("kernel"), s = a.i("stride");
        return {a.i("out"), conv_out(x.h, k, s, (k - 1) / 2, 1, "mbconv"),
                conv_out(x.w, k, s, (k - 1) / 2, 1, "mbconv")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        const I c0 = in[0][0];
        CI c = c0, h = in[0][1], w = in[0][2], o = out[0], k = a.i("kernel");
        CI g = a.i("groups"), hw = CI(out[1]) * out[2];
        double e = a.d("expansion");
        const I mid0 = a.i("divisor") > 1 ? make_divisible(std::round(c0 * e), a.i("divisor"))
                                          : static_cast<I>(std::llround(c0 * e));
        CI mid = mid0, params = 0, macs = 0;
        const bool expand = e != 1.0;
        if (expand) {
          params += c * mid / g + bn_params(mid0, a);
          macs += h * w * c * mid / g;
        }
        params += mid * k * k + bn_params(mid0, a);
        macs += hw * mid * k * k;
        if (a.b("se")) {
          CI r = make_divisible(mid0 * a.d("se_ratio"), 8);
          params += mid * r + r + r * mid + mid;
          macs += mid * r + r * mid;
        }
        params += mid * o / g + bn_params(o.v, a);
        macs += hw * mid * o / g;
        LayerCost lc;
        lc.params = params.v;
        lc.macs = macs.v;
        lc.workspace = ((expand ? mid * h * w : CI(0)) + mid * hw).v;
        return lc;
      }});

  // layer_norm -----------------------------------------------------------------------------
  ops.push_back(OpDef{"layer_norm",
                      "Layer norm over the last dimension.",
                      {opt("affine", kB, true, "learnable scale and shift")},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        if (in[0].empty()) bad("layer_norm expects a non-scalar input");
                        return in[0];
                      },
                      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
                        return LayerCost{a.b("affine") ? 2 * in[0].back() : 0, 0, 0};
                      }});

  // patch_embed (ViT) ----------------------------------------------------------------------
  ops.push_back(OpDef{
      "patch_embed",
      "ViT patch embedding: a patch x patch convolution with stride patch and bias to `out` "
      "channels, flattened to tokens, a class token prepended and a learned position embedding "
      "added: [C,H,W] -> [HW/patch^2 (+1), out].",
      {a_out(), req("patch", kI, "patch size (divides H and W)"),
       opt("cls_token", kB, true, "prepend a learned class token"),
       opt("pos_embed", kB, true, "add a learned position embedding")},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        Img x = image(in[0], "patch_embed");
        positive(a, "out", "patch_embed");
        positive(a, "patch", "patch_embed", 1024);
        I p = a.i("patch");
        if (x.h % p || x.w % p) {
          bad(fmt::format("patch_embed: patch {} must divide the input size {}x{}", p, x.h, x.w));
        }
        return {(x.h / p) * (x.w / p) + (a.b("cls_token") ? 1 : 0), a.i("out")};
      },
      [](const std::vector<Shape>& in, const Shape& out, const LayerAttrs& a) {
        CI c = in[0][0], p = a.i("patch"), d = out[1], t = out[0];
        CI patches = CI(in[0][1] / p.v) * (in[0][2] / p.v);
        LayerCost lc;
        lc.params = (c * p * p * d + d + (a.b("cls_token") ? d : CI(0)) + (a.b("pos_embed") ? t * d : CI(0))).v;
        lc.macs = (patches * c * p * p * d).v;
        lc.workspace = (patches * d).v;
        return lc;
      }});

  // transformer_block (ViT) ----------------------------------------------------------------
  ops.push_back(OpDef{
      "transformer_block",
      "Pre-norm transformer encoder block: x + Proj(MHSA(LN(x))), then x + FC2(GELU(FC1(LN(x)))). "
      "Attention has `heads` heads of `head_dim` each (qkv width heads*head_dim, as in "
      "AutoFormer); the MLP hidden width is round(mlp_ratio * D).",
      {req("heads", kI, "attention heads"), opt("head_dim", kI, 64, "width of one head"),
       opt("mlp_ratio", kN, 4.0, "MLP hidden width / embedding width"),
       opt("qkv_bias", kB, true, "bias on the qkv projection")},
      1, true,
      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
        if (in[0].size() != 2) {
          bad(fmt::format("transformer_block expects tokens [T,D], found {}", shape_to_string(in[0])));
        }
        positive(a, "heads", "transformer_block", 4096);
        positive(a, "head_dim", "transformer_block", 65536);
        double r = a.d("mlp_ratio");
        if (!(r > 0 && r <= 64)) bad(fmt::format("transformer_block.mlp_ratio: expected (0, 64], found {}", r));
        return in[0];
      },
      [](const std::vector<Shape>& in, const Shape&, const LayerAttrs& a) {
        CI t = in[0][0], d = in[0][1], heads = a.i("heads"), q = heads * a.i("head_dim");
        CI hid = static_cast<I>(std::llround(a.d("mlp_ratio") * static_cast<double>(d.v)));
        LayerCost lc;
        lc.params = (2 * d + d * 3 * q + (a.b("qkv_bias") ? 3 * q : CI(0)) + q * d + d  // attention
                     + 2 * d + d * hid + hid + hid * d + d).v;                     // MLP
        lc.macs = (t * d * 3 * q + 2 * t * t * q + t * q * d + 2 * t * d * hid).v;
        lc.workspace = std::max((3 * t * q + heads * t * t).v, (t * hid).v);
        return lc;
      }});

  // token_pool -----------------------------------------------------------------------------
  ops.push_back(OpDef{"token_pool",
                      "Tokens to one vector: the class token (`mode: \"cls\"`) or the mean.",
                      {opt("mode", kS, "cls", "cls or mean")},
                      1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs& a) -> Shape {
                        if (in[0].size() != 2) {
                          bad(fmt::format("token_pool expects tokens [T,D], found {}",
                                          shape_to_string(in[0])));
                        }
                        if (a.s("mode") != "cls" && a.s("mode") != "mean") {
                          bad(fmt::format("token_pool.mode: expected \"cls\" or \"mean\", found \"{}\"",
                                          a.s("mode")));
                        }
                        return {in[0][1]};
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});

  // sum / concat (cell nodes and outputs) ---------------------------------------------------
  ops.push_back(OpDef{"sum",
                      "Element-wise sum of its inputs (a cell node).",
                      {},
                      -1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        for (std::size_t i = 1; i < in.size(); ++i) {
                          if (in[i] != in[0]) {
                            bad(fmt::format("sum expects equal input shapes, found {} and {}",
                                            shape_to_string(in[0]), shape_to_string(in[i])));
                          }
                        }
                        return in[0];
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});
  ops.push_back(OpDef{"concat",
                      "Concatenation of its inputs along the first (channel) dimension.",
                      {},
                      -1, true,
                      [](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
                        Shape out = in[0];
                        for (std::size_t i = 1; i < in.size(); ++i) {
                          if (in[i].size() != in[0].size() ||
                              !std::equal(in[i].begin() + 1, in[i].end(), in[0].begin() + 1)) {
                            bad(fmt::format("concat expects inputs that differ only in channels, "
                                            "found {} and {}",
                                            shape_to_string(in[0]), shape_to_string(in[i])));
                          }
                          out[0] += in[i][0];
                        }
                        return out;
                      },
                      [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) {
                        return LayerCost{};
                      }});
  // mixed / select (supernet structure, see SearchSpace::supernet) -------------------------
  auto same_shapes = [](const char* name) {
    return [name](const std::vector<Shape>& in, const LayerAttrs&) -> Shape {
      for (std::size_t i = 1; i < in.size(); ++i) {
        if (in[i] != in[0]) {
          bad(fmt::format("{} expects candidates of one shape, found {} and {}", name,
                          shape_to_string(in[0]), shape_to_string(in[i])));
        }
      }
      return in[0];
    };
  };
  auto no_cost = [](const std::vector<Shape>&, const Shape&, const LayerAttrs&) { return LayerCost{}; };
  OpDef mixed{"mixed",
              "Supernet slot: its inputs are the candidates of one op decision (option order). Mixed "
              "mode sums them weighted by softmax(alpha); single-path mode passes the chosen one. "
              "`input_decision` >= 0 marks a cell edge that is live only when that node-input "
              "decision keeps `source`.",
              {req("decision", kI, "the op decision"), opt("input_decision", kI, -1, "node-input decision or -1"),
               opt("source", kI, -1, "the edge's source node")},
              -1, true, same_shapes("mixed"), no_cost};
  mixed.internal = true;
  ops.push_back(std::move(mixed));
  OpDef select{"select",
               "Supernet stage depth: input k is the stage's output after the depth of option k; "
               "passes the chosen one.",
               {req("decision", kI, "the depth decision")},
               -1, true, same_shapes("select"), no_cost};
  select.internal = true;
  ops.push_back(std::move(select));
  return ops;
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const OpDef>> ops;
  Registry() {
    for (auto& op : builtin_ops()) {
      auto name = op.name;
      ops.emplace(std::move(name), std::make_shared<const OpDef>(std::move(op)));
    }
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

const char* attr_type_name(AttrType t) noexcept {
  switch (t) {
    case AttrType::kInt: return "integer";
    case AttrType::kNumber: return "number";
    case AttrType::kBool: return "boolean";
    default: return "string";
  }
}

const AttrDef* OpDef::find_attr(const std::string& attr) const {
  for (const auto& a : attrs) {
    if (a.name == attr) return &a;
  }
  return nullptr;
}

const OpDef& find_op(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.ops.find(name);
  if (it == r.ops.end()) {
    std::vector<std::string> names;
    for (const auto& [n, _] : r.ops) names.push_back(n);
    throw NotFound(fmt::format("unknown op \"{}\"; known ops: {}", name, fmt::join(names, ", ")));
  }
  // Ops are never removed or replaced, so the reference stays valid for the program's life.
  return *it->second;
}

bool has_op(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.ops.count(name) != 0;
}

std::vector<std::string> op_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [n, _] : r.ops) names.push_back(n);
  return names;
}

void register_op(OpDef def) {
  NASFORGE_CHECK(!def.name.empty(), "register_op: expected a non-empty op name");
  NASFORGE_CHECK(def.infer && def.cost, "register_op({}): expected infer and cost functions",
                 def.name);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.ops.count(def.name)) {
    // Replacing would invalidate references handed out by find_op.
    throw InvalidArgument(fmt::format("register_op: an op named \"{}\" is already registered",
                                      def.name));
  }
  auto name = def.name;
  r.ops.emplace(std::move(name), std::make_shared<const OpDef>(std::move(def)));
}

std::int64_t make_divisible(double v, std::int64_t divisor) {
  auto d = static_cast<double>(divisor);
  auto nv = std::max<std::int64_t>(divisor, static_cast<std::int64_t>(v + d / 2) / divisor * divisor);
  if (static_cast<double>(nv) < 0.9 * v) nv += divisor;
  return nv;
}

}  // namespace nasforge
