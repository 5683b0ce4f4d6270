#pragma once
/// \file architecture.h
/// `Architecture`: one chosen option per decision of a SearchSpace. A small value type:
/// hashable, comparable, printable with fmt, JSON round-trip. It does not know its space; use
/// `SearchSpace::to_json / to_native / parse_architecture` for named or native forms.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json_fwd.hpp>

namespace nasforge {

/// One option index per decision, in the space's decision order.
class Architecture {
 public:
  Architecture() = default;
  /// From option indices, one per decision (validate against a space with
  /// `SearchSpace::validate`).
  explicit Architecture(std::vector<std::uint32_t> choices) : choices_(std::move(choices)) {}
  Architecture(std::initializer_list<std::uint32_t> choices) : choices_(choices) {}

  /// The option chosen for decision `i` (unchecked).
  std::uint32_t operator[](std::size_t i) const noexcept { return choices_[i]; }
  /// Sets the option for decision `i` (unchecked).
  void set(std::size_t i, std::uint32_t option) noexcept { choices_[i] = option; }
  /// Number of decisions.
  std::size_t size() const noexcept { return choices_.size(); }
  const std::vector<std::uint32_t>& choices() const noexcept { return choices_; }

  /// A 64-bit hash of the choices (FNV-1a), stable across runs and platforms.
  std::uint64_t hash() const noexcept;

  /// `[3,1,0,...]`.
  std::string to_string() const;

  friend bool operator==(const Architecture&, const Architecture&) = default;
  friend auto operator<=>(const Architecture&, const Architecture&) = default;

 private:
  std::vector<std::uint32_t> choices_;
};

/// JSON form: an array of option indices.
void to_json(nlohmann::json& j, const Architecture& a);
/// Reads an array of non-negative integers; throws InvalidArgument otherwise.
void from_json(const nlohmann::json& j, Architecture& a);

}  // namespace nasforge

template <>
struct std::hash<nasforge::Architecture> {
  std::size_t operator()(const nasforge::Architecture& a) const noexcept {
    return static_cast<std::size_t>(a.hash());
  }
};

/// `fmt::format("{}", arch)` prints `[3,1,0,...]`.
template <>
struct fmt::formatter<nasforge::Architecture> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename Ctx>
  auto format(const nasforge::Architecture& a, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "{}", a.to_string());
  }
};
