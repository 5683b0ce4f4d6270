#pragma once
// The torch module of one concrete layer, shared by Network and Supernet.
#include <functional>
#include <string>

#include <torch/nn/modules/container/any.h>

#include "nasforge/concrete_network.h"

namespace nasforge::detail {

// The module for `l` (a user op's registered factory first, else the built-in one); an empty
// AnyModule for structural ops (sum, concat, zero, mixed, select). Throws InvalidArgument for
// an op without a torch implementation.
::torch::nn::AnyModule make_layer_module(const ConcreteLayer& l);

// Where a tensor sits in a layer module, for sharing and slicing weights.
struct TensorSlot {
  std::string path;          // as in named_parameters()/named_buffers(): "dw.conv.weight"
  bool conv_weight = false;  // [out, in/groups, kh, kw]: dims 2 and 3 are spatial
  bool grouped = false;      // a grouped, non-depthwise conv: channel slices would mix groups
};
using TensorVisitor = std::function<void(const TensorSlot&, ::torch::Tensor& member)>;

// Calls `visit` with every tensor the module's forward reads (Conv2d, BatchNorm1d/2d, Linear,
// LayerNorm leaves and the patch embedding's tokens), passing the member the forward uses:
// reassign it to make the module compute with another tensor (a slice of a supernet weight),
// or copy into it. Returns how many it visited; throws InvalidArgument when some parameter or
// buffer of `m` lives elsewhere (a user op with raw tensors), since it could not be shared.
std::size_t visit_layer_tensors(::torch::nn::Module& m, const TensorVisitor& visit);

}  // namespace nasforge::detail
