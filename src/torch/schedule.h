#pragma once
// Learning-rate schedule and progress text shared by the trainer and the differentiable search.
#include <cmath>
#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace nasforge::detail {

// Cosine annealing from `lr` (epoch 0) towards `lr_min` (epoch `epochs`).
inline double cosine_lr(double lr, double lr_min, std::int64_t epoch, std::int64_t epochs) {
  if (epochs <= 0) return lr;
  return lr_min + 0.5 * (lr - lr_min) * (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs)));
}

// "h:mm:ss" for a progress line's ETA.
inline std::string eta_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<long long>(seconds);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, static_cast<int>(s / 60 % 60), static_cast<int>(s % 60));
}

}  // namespace nasforge::detail
