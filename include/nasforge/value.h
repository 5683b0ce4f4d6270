#pragma once
/// \file value.h
/// `Value`: a scalar from a search-space file (an integer, a real, a flag or a string). Options
/// of a decision and attributes of a concrete layer are Values.

#include <cstdint>
#include <string>
#include <variant>

#include <fmt/core.h>

namespace nasforge {

/// A scalar: integer, real, bool or string. Comparison is by kind, then value.
class Value {
 public:
  using Storage = std::variant<std::int64_t, double, bool, std::string>;

  /// The integer 0.
  Value() : v_(std::int64_t{0}) {}
  Value(std::int64_t v) : v_(v) {}            // NOLINT(google-explicit-constructor)
  Value(int v) : v_(std::int64_t{v}) {}       // NOLINT(google-explicit-constructor)
  Value(double v) : v_(v) {}                  // NOLINT(google-explicit-constructor)
  Value(bool v) : v_(v) {}                    // NOLINT(google-explicit-constructor)
  Value(std::string v) : v_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  Value(const char* v) : v_(std::string(v)) {}  // NOLINT(google-explicit-constructor)

  /// Kind tests.
  bool is_int() const noexcept { return std::holds_alternative<std::int64_t>(v_); }
  bool is_double() const noexcept { return std::holds_alternative<double>(v_); }
  /// True for integers and reals.
  bool is_number() const noexcept { return is_int() || is_double(); }
  bool is_bool() const noexcept { return std::holds_alternative<bool>(v_); }
  bool is_string() const noexcept { return std::holds_alternative<std::string>(v_); }

  /// The integer; throws InvalidArgument for any other kind.
  std::int64_t as_int() const;
  /// The number as a double (integers convert); throws InvalidArgument otherwise.
  double as_double() const;
  /// The flag; throws InvalidArgument for any other kind.
  bool as_bool() const;
  /// The string; throws InvalidArgument for any other kind.
  const std::string& as_string() const;

  /// "integer", "number", "boolean" or "string", for error messages.
  const char* kind_name() const noexcept;
  /// JSON-like text: `3`, `0.25`, `true`, `"relu"`.
  std::string repr() const;
  /// Like repr() but strings are unquoted (for display and native strings).
  std::string str() const;

  /// The underlying variant.
  const Storage& storage() const noexcept { return v_; }
  friend bool operator==(const Value&, const Value&) = default;
  friend auto operator<=>(const Value&, const Value&) = default;

 private:
  Storage v_;
};

}  // namespace nasforge

/// `fmt::format("{}", value)` prints `Value::str()`.
template <>
struct fmt::formatter<nasforge::Value> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename Ctx>
  auto format(const nasforge::Value& v, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "{}", v.str());
  }
};
