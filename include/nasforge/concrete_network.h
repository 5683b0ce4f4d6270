#pragma once
/// \file concrete_network.h
/// `ConcreteNetwork`: a search space with one architecture applied — a plain DAG of concrete
/// layers with their attributes and shapes. Cost counting, latency tables, the supernet's
/// sub-network extraction and export all read this one structure, so they cannot disagree.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nasforge/value.h"

namespace nasforge {

/// A tensor shape without the batch dimension: `[C, H, W]` for images, `[T, D]` for token
/// sequences, `[F]` for feature vectors.
using Shape = std::vector<std::int64_t>;

/// `[3, 32, 32]`.
std::string shape_to_string(const Shape& s);

/// Resolved attributes of one layer (every attribute its op declares, defaults filled in).
class LayerAttrs {
 public:
  LayerAttrs() = default;
  explicit LayerAttrs(std::map<std::string, Value> values) : values_(std::move(values)) {}

  /// True if the attribute is set.
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  /// The attribute; throws InvalidArgument naming it when absent.
  const Value& at(const std::string& name) const;
  /// Integer attribute (throws if absent or not an integer).
  std::int64_t i(const std::string& name) const { return at(name).as_int(); }
  /// Numeric attribute as double (throws if absent or not a number).
  double d(const std::string& name) const { return at(name).as_double(); }
  /// Boolean attribute (throws if absent or not a boolean).
  bool b(const std::string& name) const { return at(name).as_bool(); }
  /// String attribute (throws if absent or not a string).
  const std::string& s(const std::string& name) const { return at(name).as_string(); }
  /// Sets or replaces an attribute.
  void set(const std::string& name, Value v) { values_[name] = std::move(v); }

  const std::map<std::string, Value>& values() const noexcept { return values_; }
  friend bool operator==(const LayerAttrs&, const LayerAttrs&) = default;

 private:
  std::map<std::string, Value> values_;
};

/// One layer of a concrete network.
struct ConcreteLayer {
  /// Unique, stable name derived from where the layer comes from in the DSL, e.g.
  /// `network[2].block[1]` or `network[1].r3[0].edge[4]` (repetition 3 of a repeat's body).
  std::string name;
  /// Op type, a name in the op registry (`ops.h`), e.g. `conv`, `mbconv`, `sum`.
  std::string op;
  /// The option name when the layer was chosen from a named op list (e.g. `nor_conv_3x3`,
  /// `k5_e6`), else empty.
  std::string choice;
  /// Indices of the layers this one reads, in order; `-1` is the network input.
  std::vector<int> inputs;
  /// Shapes of those inputs.
  std::vector<Shape> input_shapes;
  /// Shape this layer produces.
  Shape output_shape;
  /// Every attribute of the op, defaults filled in.
  LayerAttrs attrs;
};

/// A network as a topologically ordered list of layers; the last layer is the output.
struct ConcreteNetwork {
  /// Shape of the network input (without batch).
  Shape input_shape;
  /// Layers in execution order; every input index refers to an earlier layer or -1.
  std::vector<ConcreteLayer> layers;

  /// Shape of the network output.
  const Shape& output_shape() const { return layers.empty() ? input_shape : layers.back().output_shape; }
  /// A human-readable table: index, name, op, inputs, output shape, attributes.
  std::string to_string() const;
};

}  // namespace nasforge
