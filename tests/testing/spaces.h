#pragma once
// Helpers shared by the tests: where the shipped spaces and the shared data live, and small
// toy spaces with known properties.
#include <filesystem>
#include <string>

namespace nasforge::testing {

inline std::string space_path(const std::string& name) {
  return std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + name + ".json";
}

inline std::string source_path(const std::string& rel) {
  return std::string(NASFORGE_SOURCE_DIR) + "/" + rel;
}

/// Path of a file in ../shared/data, or empty when the data is not there.
inline std::string shared_data(const std::string& rel) {
  std::string p = std::string(NASFORGE_SHARED_DATA) + "/" + rel;
  return std::filesystem::exists(p) ? p : std::string();
}

/// A chain space with one conditional stage: depth {1,2,3}, every block chooses a kernel
/// {3,5}, and a shared width choice. Size = 2 (width) * (2 + 4 + 8) = 28.
inline const char* kToyStageSpace = R"({
  "params": {"input": [3, 8, 8], "w": {"choice": [8, 16]}},
  "network": [
    {"type": "conv", "out": "$w", "kernel": 3},
    {"type": "stage", "depth": {"choice": [1, 2, 3]},
     "block": {"type": "conv", "out": "$w", "kernel": {"choice": [3, 5]}}},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": 4}
  ]
})";

/// A DARTS-like cell with 2 inputs, 3 nodes keeping 2 inputs each, 2 ops.
/// Size = node0: 1 subset * 2^2; node1: 3 subsets * 2^2; node2: 6 subsets * 2^2 = 4*12*24.
inline const char* kToyCellSpace = R"({
  "params": {"input": [3, 8, 8]},
  "ops": {"skip": {"type": "identity", "reduce": "factorized"},
          "conv": {"type": "relu_conv_bn", "kernel": 3}},
  "network": [
    {"type": "conv_bn_act", "out": 8},
    {"type": "cell", "name": "c", "inputs": 2, "nodes": 3, "node_inputs": 2, "channels": 8,
     "ops": ["skip", "conv"]},
    {"type": "global_avg_pool"},
    {"type": "linear", "out": 2}
  ]
})";

}  // namespace nasforge::testing
