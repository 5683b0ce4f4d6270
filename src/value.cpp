#include "nasforge/value.h"

#include <cmath>

#include "nasforge/error.h"

namespace nasforge {

std::int64_t Value::as_int() const {
  if (auto* p = std::get_if<std::int64_t>(&v_)) return *p;
  throw InvalidArgument(fmt::format("expected an integer, found {} {}", kind_name(), repr()));
}

double Value::as_double() const {
  if (auto* p = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*p);
  if (auto* p = std::get_if<double>(&v_)) return *p;
  throw InvalidArgument(fmt::format("expected a number, found {} {}", kind_name(), repr()));
}

bool Value::as_bool() const {
  if (auto* p = std::get_if<bool>(&v_)) return *p;
  throw InvalidArgument(fmt::format("expected a boolean, found {} {}", kind_name(), repr()));
}

const std::string& Value::as_string() const {
  if (auto* p = std::get_if<std::string>(&v_)) return *p;
  throw InvalidArgument(fmt::format("expected a string, found {} {}", kind_name(), repr()));
}

const char* Value::kind_name() const noexcept {
  switch (v_.index()) {
    case 0: return "integer";
    case 1: return "number";
    case 2: return "boolean";
    default: return "string";
  }
}

std::string Value::repr() const {
  if (is_string()) return fmt::format("\"{}\"", as_string());
  return str();
}

std::string Value::str() const {
  switch (v_.index()) {
    case 0: return std::to_string(std::get<0>(v_));
    case 1: {
      double d = std::get<1>(v_);
      // Shortest text that reads back as the same double.
      std::string s = fmt::format("{}", d);
      return s;
    }
    case 2: return std::get<2>(v_) ? "true" : "false";
    default: return std::get<3>(v_);
  }
}

}  // namespace nasforge
