#pragma once
// Small statistics shared by the cost models and the latency profiler (not installed).
#include <algorithm>
#include <cstddef>
#include <vector>

namespace nasforge::detail {

// The median of `v` (the upper one of an even count); `v` must not be empty.
inline double upper_median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// The median of `v` (the mean of the two middle values of an even count); `v` must not be empty.
inline double median(std::vector<double> v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2) return *mid;
  return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

}  // namespace nasforge::detail
