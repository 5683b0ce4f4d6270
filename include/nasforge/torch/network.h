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
#include <memory>
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

namespace detail {
struct LayerEvents;
}  // namespace detail

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

  /// Runs the network like forward() and writes each layer's time in milliseconds into
  /// `layer_ms` (index i = layer i). The latency profiler times layers this way, inside whole
  /// networks, where their caches and allocator state are those of a real inference.
  /// On the CPU: each layer's wall time. For a CUDA input: by default the device is
  /// synchronised before the first and after every layer and wall times are taken (each layer
  /// then also pays a launch from an empty queue). With `cuda_events` and a LibTorch whose
  /// events time (cuda_event_timing_supported()): CUDA events on the current stream around
  /// every layer (created once per network), read after the forward, so kernels queue as in an
  /// untimed forward and a layer's time is the stream's time from the previous layer's end to
  /// its own (launch gaps included: the layers add up to the forward). Not for concurrent
  /// calls on one network (the events are the network's).
  ::torch::Tensor forward_timed(const ::torch::Tensor& x, std::vector<double>& layer_ms, bool cuda_events = false);

  /// The concrete network this module implements.
  const ConcreteNetwork& concrete() const noexcept { return net_; }

  /// The module of layer `i`, or nullptr for structural layers (sum, concat, zero).
  std::shared_ptr<::torch::nn::Module> layer_module(std::size_t i) const;

  /// Number of trainable parameter elements.
  std::int64_t num_parameters() const;

 private:
  std::vector<::torch::Tensor> run(const ::torch::Tensor& x, bool keep_all, std::vector<double>* layer_ms,
                                   bool cuda_events);
  ConcreteNetwork net_;
  std::vector<::torch::nn::AnyModule> layers_;  // empty AnyModule for sum, concat, zero
  std::vector<int> last_use_;                   // free intermediate tensors after their last reader
  std::shared_ptr<detail::LayerEvents> layer_events_;  // forward_timed's CUDA events, reused
};
TORCH_MODULE(Network);

/// Whether this LibTorch times CUDA events (c10::Event::elapsedTime: in 2.11, not in 1.13; the
/// 2.x release that added it is not pinned down here), which Network::forward_timed uses for
/// CUDA inputs when asked to.
bool cuda_event_timing_supported();

}  // namespace nasforge
