#include "nasforge/concrete_network.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nasforge/error.h"

namespace nasforge {

std::string shape_to_string(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

const Value& LayerAttrs::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw InvalidArgument(fmt::format("layer has no attribute \"{}\"", name));
  return it->second;
}

std::string ConcreteNetwork::to_string() const {
  std::string out = fmt::format("input {}\n", shape_to_string(input_shape));
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& l = layers[i];
    std::vector<std::string> attrs;
    for (const auto& [k, v] : l.attrs.values()) attrs.push_back(fmt::format("{}={}", k, v.str()));
    out += fmt::format("{:>4} {:<34} {:<18} in={} out={} {}\n", i, l.name,
                       l.choice.empty() ? l.op : l.op + ":" + l.choice, fmt::join(l.inputs, ","),
                       shape_to_string(l.output_shape), fmt::join(attrs, " "));
  }
  return out;
}

}  // namespace nasforge
