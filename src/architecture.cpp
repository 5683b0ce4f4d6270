#include "nasforge/architecture.h"

#include <nlohmann/json.hpp>

#include "nasforge/error.h"

namespace nasforge {

std::uint64_t Architecture::hash() const noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::uint32_t c : choices_) {
    for (int b = 0; b < 4; ++b) {
      h ^= (c >> (8 * b)) & 0xFFu;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

std::string Architecture::to_string() const {
  std::string s = "[";
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(choices_[i]);
  }
  s += ']';
  return s;
}

void to_json(nlohmann::json& j, const Architecture& a) { j = a.choices(); }

void from_json(const nlohmann::json& j, Architecture& a) {
  if (!j.is_array()) {
    throw InvalidArgument(
        fmt::format("expected an architecture as an array of option indices, found {}",
                    j.type_name()));
  }
  std::vector<std::uint32_t> c;
  c.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 ||
        e.get<std::int64_t>() > 0xFFFFFFFFLL) {
      throw InvalidArgument(fmt::format(
          "architecture[{}]: expected a non-negative option index, found {}", i, e.dump()));
    }
    c.push_back(e.get<std::uint32_t>());
  }
  a = Architecture(std::move(c));
}

}  // namespace nasforge
