#pragma once
/// \file network.h
/// `Network`: a standalone LibTorch module built from a ConcreteNetwork — one torch module per
/// concrete layer, executed as the layer DAG says. Its parameters are exactly the ones the
/// analytic counter (`costs.h`) counts, and every layer's output has the shape the
/// ConcreteNetwork records; tests check both for every shipped space.
///
/// This is the building block of sub-network extraction: the supernet issue builds the
/// weight-sharing supernet from the same op modules and copies inherited weights into a
/// Network.

#include <functional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "nasforge/concrete_network.h"

namespace nasforge {

/// Builds the torch module of one concrete layer. The module's `forward` takes the layer's
/// input tensor (with a leading batch dimension) and returns its output.
using TorchOpFactory = std::function<::torch::nn::AnyModule(const ConcreteLayer&)>;

/// Registers the torch implementation of a user op (one registered with `register_op`).
/// Throws InvalidArgument if the op already has one.
void register_torch_op(const std::string& op, TorchOpFactory factory);

/// A network built from a ConcreteNetwork.
class NetworkImpl : public ::torch::nn::Module {
 public:
  /// Builds every layer (modules are registered as `l<index>`) with LibTorch's default
  /// initialisation. Throws InvalidArgument for an op without a torch implementation.
  explicit NetworkImpl(ConcreteNetwork net);

  /// Builds layer `i` with `make(layer, i)` instead of the op registry (an empty AnyModule for
  /// the structural ops sum, concat and zero). The supernet uses this to run a sub-network
  /// whose modules share their weights with it.
  using LayerFactory = std::function<::torch::nn::AnyModule(const ConcreteLayer&, std::size_t)>;
  NetworkImpl(ConcreteNetwork net, const LayerFactory& make);

  /// Runs the network on `x` of shape [batch, ...input_shape].
  ::torch::Tensor forward(const ::torch::Tensor& x);

  /// Runs the network and returns every layer's output (index i = layer i); zero layers
  /// return an all-zero tensor of their shape.
  std::vector<::torch::Tensor> forward_all(const ::torch::Tensor& x);

  /// Runs the network like forward() and writes each layer's wall time in milliseconds into
  /// `layer_ms` (index i = layer i; a CUDA input is synchronised after every layer). The
  /// latency profiler times layers this way, inside whole networks, where their caches and
  /// allocator state are those of a real inference.
  ::torch::Tensor forward_timed(const ::torch::Tensor& x, std::vector<double>& layer_ms);

  /// The concrete network this module implements.
  const ConcreteNetwork& concrete() const noexcept { return net_; }

  /// The module of layer `i`, or nullptr for structural layers (sum, concat, zero).
  std::shared_ptr<::torch::nn::Module> layer_module(std::size_t i) const;

  /// Number of trainable parameter elements.
  std::int64_t num_parameters() const;

 private:
  std::vector<::torch::Tensor> run(const ::torch::Tensor& x, bool keep_all, std::vector<double>* layer_ms);
  ConcreteNetwork net_;
  std::vector<::torch::nn::AnyModule> layers_;  // empty AnyModule for sum, concat, zero
  std::vector<int> last_use_;                   // free intermediate tensors after their last reader
};
TORCH_MODULE(Network);

}  // namespace nasforge
