#pragma once
/// \file ops.h
/// The op registry: every layer type the DSL can name, with its attributes, shape rule and
/// analytic cost. Torch-free; the LibTorch supernet compiler builds modules for the same names.
///
/// Conventions (NAS-Bench-201's): convolutions have no bias unless `bias: true`; batch norm has
/// affine parameters unless `affine: false`; linear layers have a bias. MACs count the
/// multiply-accumulates of convolutions, linear layers and attention matrix products; batch
/// norm, activations, pooling and additions count 0 MACs. FLOPs = 2 x MACs.
///
/// To add an op: write an `OpDef` and call `register_op` (before parsing a space that uses it).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nasforge/concrete_network.h"
#include "nasforge/value.h"

namespace nasforge {

/// Type of an op attribute.
enum class AttrType { kInt, kNumber, kBool, kString };

/// "integer", "number", "boolean", "string".
const char* attr_type_name(AttrType t) noexcept;

/// One attribute an op accepts.
struct AttrDef {
  std::string name;               ///< key in the DSL
  AttrType type = AttrType::kInt; ///< expected kind (an integral real is accepted as kInt)
  std::optional<Value> fallback;  ///< default; nullopt = required
  std::string doc;                ///< one line: meaning, unit, range
};

/// Analytic cost of one layer at batch 1.
struct LayerCost {
  std::int64_t params = 0;     ///< trainable parameters (BN running stats not counted)
  std::int64_t macs = 0;       ///< multiply-accumulates
  std::int64_t workspace = 0;  ///< elements of intermediate tensors alive inside the op at its peak
};

/// Definition of an op.
struct OpDef {
  std::string name;            ///< registry key, e.g. "conv"
  std::string doc;             ///< one paragraph: what the op computes
  std::vector<AttrDef> attrs;  ///< accepted attributes
  /// Number of inputs; -1 means one or more (sum, concat).
  int arity = 1;
  /// False for ops whose output is never materialised (the `zero` op): costs no memory.
  bool materialized = true;
  /// Output shape from input shapes and resolved attributes; throws InvalidArgument with an
  /// "expected ..., found ..." message when the inputs do not fit.
  std::function<Shape(const std::vector<Shape>&, const LayerAttrs&)> infer;
  /// Analytic cost from input shapes, output shape and attributes.
  std::function<LayerCost(const std::vector<Shape>&, const Shape&, const LayerAttrs&)> cost;
  /// True for structural ops that only SearchSpace::supernet() creates (`mixed`, `select`);
  /// a DSL file cannot name them.
  bool internal = false;

  /// The attribute definition, or nullptr.
  const AttrDef* find_attr(const std::string& attr) const;
};

/// The op named `name`; throws NotFound listing the known ops.
const OpDef& find_op(const std::string& name);
/// True if an op of that name is registered.
bool has_op(const std::string& name);
/// Names of all registered ops, sorted.
std::vector<std::string> op_names();
/// Registers a new op; throws InvalidArgument if the name is taken. Thread-safe.
void register_op(OpDef def);

/// OFA/MobileNet channel rounding: the nearest multiple of `divisor` not below 90% of `v`.
std::int64_t make_divisible(double v, std::int64_t divisor);

}  // namespace nasforge
