#pragma once
/// \file search_space.h
/// `SearchSpace`: a search-space DSL file (docs/search_space_dsl.md), parsed and validated
/// once. It lists the *decisions* (an op on an edge, a node's inputs, a value such as a kernel
/// size, a stage depth) and does everything that depends on the space: sampling, mutation,
/// crossover, neighbours, encodings, enumeration, native strings, and resolving an
/// Architecture into the ConcreteNetwork it means.
///
/// A SearchSpace is immutable after construction and cheap to copy (shared state); every
/// method is const and safe to call from several threads.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nasforge/architecture.h"
#include "nasforge/concrete_network.h"
#include "nasforge/random.h"
#include "nasforge/value.h"

namespace nasforge {

namespace detail {
struct SpaceImpl;
}  // namespace detail

/// What a decision chooses.
enum class DecisionKind {
  kOp,      ///< an op for a cell edge or a layer slot (options: op names)
  kInputs,  ///< which inputs a cell node keeps (options: e.g. "0+2")
  kValue,   ///< a value: kernel, width, expansion, heads, resolution, ...
  kDepth,   ///< how many blocks of a stage run
};

/// "op", "inputs", "value", "depth".
const char* decision_kind_name(DecisionKind k) noexcept;

/// One decision of a space.
struct Decision {
  std::string name;            ///< unique; shared choices use their `name`, others their path
  DecisionKind kind = DecisionKind::kValue;
  std::vector<Value> options;  ///< at least one
  std::string path;            ///< JSON path of its first use, e.g. `network[3].block.kernel`
  /// True when the decision can be inactive (inside a stage block beyond the chosen depth, or
  /// an edge of a node that may not take that input).
  bool conditional = false;
};

/// Exact size of a space (number of distinct architectures).
struct SpaceSize {
  std::string exact;                  ///< decimal digits, exact at any size
  double log10 = 0;                   ///< log10 of the size
  std::optional<std::uint64_t> value; ///< the size when it fits in 64 bits
};

/// Parameter overrides: name -> JSON text (`"1"`, `"[1,28,28]"`); text that is not valid JSON
/// is taken as a string.
using ParamOverrides = std::map<std::string, std::string>;

/// A parsed, validated search space.
class SearchSpace {
 public:
  /// Parses a DSL file. Throws SearchSpaceError naming the file, the JSON path and what was
  /// expected versus found; NotFound if the file cannot be read.
  static SearchSpace from_file(const std::string& path, const ParamOverrides& overrides = {});
  /// Parses DSL text; `origin` names it in error messages.
  static SearchSpace from_string(std::string_view text, const ParamOverrides& overrides = {},
                                 const std::string& origin = "<string>");

  /// The space's `name` field (or, without one, the origin: the file path as given).
  const std::string& name() const;
  /// The space's `description` field (may be empty).
  const std::string& description() const;
  /// The file it was parsed from (or the origin given to from_string).
  const std::string& origin() const;
  /// Parameters after overrides, name -> compact JSON text, in declaration order.
  const std::vector<std::pair<std::string, std::string>>& params() const;
  /// A hex digest of the parsed space (after overrides). Two spaces with the same fingerprint
  /// have the same decisions and resolve architectures to the same networks.
  const std::string& fingerprint() const;

  /// The decisions, in the order an Architecture stores its choices.
  const std::vector<Decision>& decisions() const;
  /// Index of the decision with this name, if any.
  std::optional<std::size_t> find_decision(std::string_view name) const;
  /// Number of distinct architectures (inactive decisions do not multiply the count).
  SpaceSize size() const;
  /// True when some decisions can be inactive (stage depths, node input choices).
  bool has_conditional_decisions() const;

  /// Throws SearchSpaceError if `arch` has the wrong length or an option index out of range.
  void validate(const Architecture& arch) const;
  /// Which decisions `arch` actually uses (an inactive one changes nothing).
  std::vector<bool> active(const Architecture& arch) const;
  /// `arch` with inactive decisions set to option 0, so equal networks compare equal.
  Architecture canonical(const Architecture& arch) const;

  /// A random architecture: every decision uniform and independent, then canonical.
  Architecture sample(Rng& rng) const;
  /// Changes `num_changes` randomly chosen active decisions to a different option (decisions
  /// with one option are never chosen). The result differs from `arch` unless no decision has
  /// two options.
  Architecture mutate(const Architecture& arch, Rng& rng, int num_changes = 1) const;
  /// Uniform crossover: each decision from `a` or `b` with probability 1/2; canonical.
  Architecture crossover(const Architecture& a, const Architecture& b, Rng& rng) const;
  /// Every architecture that differs from `arch` in exactly one active decision.
  std::vector<Architecture> neighbours(const Architecture& arch) const;

  /// Length of the one-hot encoding: the sum of the decisions' option counts.
  std::size_t onehot_size() const;
  /// One-hot encoding, decision by decision; an inactive decision is all zeros.
  std::vector<float> encode_onehot(const Architecture& arch) const;
  /// Writes the one-hot encoding into `out` (onehot_size() floats), allocation-free.
  void encode_onehot(const Architecture& arch, float* out) const;
  /// Ordinal encoding: the option index per decision, -1 for an inactive decision.
  std::vector<float> encode_ordinal(const Architecture& arch) const;

  /// True when the raw product of option counts (inactive choices included) is at most 2^32.
  /// for_each steps through that raw product, so a conditional space takes longer than its
  /// size suggests (ViT: 2.4e9 steps for 1.06e9 architectures).
  bool is_enumerable() const;
  /// Visits every distinct (canonical) architecture once, in index order. Throws
  /// InvalidArgument if the space is not enumerable.
  void for_each(const std::function<void(const Architecture&)>& visit) const;
  /// Mixed-radix index of `arch` (decision 0 most significant). Enumerable spaces only.
  std::uint64_t index_of(const Architecture& arch) const;
  /// The architecture with that mixed-radix index. Enumerable spaces only.
  Architecture at(std::uint64_t index) const;

  /// The network `arch` means. Throws SearchSpaceError (naming the layer's path) when the
  /// architecture produces a network whose shapes do not fit.
  ConcreteNetwork resolve(const Architecture& arch) const;

  /// The supernet's structure: every candidate of every op decision as its own layer (named
  /// and labelled exactly as `resolve` names the chosen one), each decision's candidates
  /// followed by a `mixed` layer, each cell node summing all its edges' `mixed` layers, and a
  /// `select` layer after each stage with a depth decision. `nasforge::Supernet` runs it.
  /// A value decision (kernel, width, expansion, heads, resolution, ...) takes its largest
  /// option here (numbers and booleans by value; a string decision its first option): the
  /// supernet holds the largest weights and `Supernet` slices them for smaller choices
  /// (elastic mode).
  ConcreteNetwork supernet() const;

  /// Named JSON form: `{"decision name": option value, ...}`.
  nlohmann::json to_json(const Architecture& arch) const;
  /// Parses an architecture given as: the space's native string (if it has one), a JSON array
  /// of option indices, or a JSON object mapping decision names to option values (decisions
  /// left out take option 0). Throws SearchSpaceError with what was expected and found.
  Architecture parse_architecture(std::string_view text) const;

  /// The space's native string format (`"nb201"`, `"op_list"`), if it declares one.
  std::optional<std::string> native_format() const;
  /// The native string, e.g. NAS-Bench-201's `|nor_conv_3x3~0|+|...|` or FBNet's op index list
  /// `7-8-1-...`. Throws InvalidArgument if the space has no native format.
  std::string to_native(const Architecture& arch) const;
  /// Parses a native string (for op_list also the names form `k5_e6-skip-...`).
  Architecture from_native(std::string_view text) const;

  /// Human-readable summary: name, params, decisions with options, size.
  std::string summary() const;

 private:
  explicit SearchSpace(std::shared_ptr<const detail::SpaceImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const detail::SpaceImpl> impl_;
};

}  // namespace nasforge
