#pragma once
/// \file costs.h
/// Analytic costs of a ConcreteNetwork: parameters, MACs (FLOPs = 2 x MACs) and peak
/// activation memory. Computed from the ConcreteNetwork alone, with the op registry's
/// per-layer formulas (`ops.h`); derivations in docs/analytic_costs.md.

#include <cstdint>
#include <string>
#include <vector>

#include "nasforge/concrete_network.h"

namespace nasforge {

/// Options for analytic cost counting.
struct CostOptions {
  std::int64_t batch = 1;             ///< batch size for MACs and memory (params do not scale)
  std::int64_t bytes_per_element = 4; ///< 4 = float32
};

/// Cost of one layer (already scaled by the batch).
struct LayerCosts {
  std::string name;             ///< ConcreteLayer::name
  std::string op;               ///< ConcreteLayer::op
  std::int64_t params = 0;      ///< trainable parameters
  std::int64_t macs = 0;        ///< multiply-accumulates
  std::int64_t output_bytes = 0;///< bytes of the output tensor (0 when never materialised)
  /// Bytes of the op's internal intermediates (an mbconv's expanded tensor), which count
  /// toward the peak while the layer runs.
  std::int64_t workspace_bytes = 0;
};

/// Whole-network analytic costs.
struct AnalyticCosts {
  std::int64_t params = 0;  ///< trainable parameters (BN running statistics excluded)
  std::int64_t macs = 0;    ///< multiply-accumulates of convs, linears and attention products
  /// Peak bytes of activations alive at once during an inference that frees each tensor after
  /// its last reader (network input included, op-internal intermediates included).
  std::int64_t peak_activation_bytes = 0;
  std::vector<LayerCosts> layers;  ///< per layer, in network order

  /// 2 x MACs.
  std::int64_t flops() const noexcept { return 2 * macs; }
};

/// Counts the costs of `net`. Throws InvalidArgument if a layer's op is unknown or its
/// attributes do not fit its shapes (cannot happen for networks built by SearchSpace::resolve),
/// or if a count does not fit 64 bits (with batch 1 and 4 bytes per element, cannot happen for
/// networks built by SearchSpace::resolve, which checks each layer's costs).
AnalyticCosts analytic_costs(const ConcreteNetwork& net, const CostOptions& options = {});

/// Which layers of `net` a graph runtime still runs once it removes dead code, as deployment
/// runtimes that compile the whole graph do (TFLite's converter, for one): `live[i]` for
/// layer i. Two rules, both about the `zero` op (a cell edge's `none`), whose output does not
/// depend on its input's values:
/// - if no path from the network input to its output avoids every `zero` layer (a cell whose
///   output node takes only `none` edges, or is fed only by nodes that do), the output is a
///   constant and nothing is live: the runtime folds the whole network away;
/// - otherwise a layer is live if the output reads it, directly or through live layers; a
///   `zero` layer is live when read, but it keeps nothing before it alive (a branch that only
///   feeds `none` edges is dead).
/// Layers fed only by constants are not folded (measured: NAS-Bench-201 networks on Pixel 3,
/// where a conv on a `none` node's zeros costs as much as one on live data, a conv on a dead
/// branch about a sixth of that, and a network with a constant output ~0 ms). PyTorch's eager
/// runtime, and so nasforge's own latency tables, run every layer.
std::vector<bool> live_layers(const ConcreteNetwork& net);

}  // namespace nasforge
