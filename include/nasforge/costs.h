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

}  // namespace nasforge
