#pragma once
// The torch module of one concrete layer, shared by Network and Supernet.
#include <torch/nn/modules/container/any.h>

#include "nasforge/concrete_network.h"

namespace nasforge::detail {

// The module for `l` (a user op's registered factory first, else the built-in one); an empty
// AnyModule for structural ops (sum, concat, zero, mixed, select). Throws InvalidArgument for
// an op without a torch implementation.
::torch::nn::AnyModule make_layer_module(const ConcreteLayer& l);

}  // namespace nasforge::detail
