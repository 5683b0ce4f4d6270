#pragma once
/// \file random.h
/// `Rng`: the seeded generator every nasforge plugin uses (there is no global RNG). It is
/// xoshiro256** seeded through splitmix64, with its own bounded-integer and real draws, so the
/// same seed gives the same sequence on every platform and standard library.

#include <array>
#include <cstdint>

namespace nasforge {

/// A small, fast, portable pseudo-random generator (xoshiro256**). Satisfies
/// UniformRandomBitGenerator, so it also works with `<random>` distributions.
class Rng {
 public:
  using result_type = std::uint64_t;

  /// Seeds the four state words from `seed` with splitmix64.
  explicit Rng(std::uint64_t seed = 0) noexcept { reseed(seed); }

  /// Restarts the sequence from `seed`.
  void reseed(std::uint64_t seed) noexcept {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31);
    }
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }

  /// The next 64 random bits.
  result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// A uniform integer in [0, n); n must be > 0. Unbiased (Lemire's method with rejection).
  std::uint64_t uniform(std::uint64_t n) noexcept {
    __extension__ using u128 = unsigned __int128;  // GCC and Clang; exact 64x64->128 product
    u128 m = static_cast<u128>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<u128>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  /// A uniform double in [0, 1) with 53 random bits.
  double uniform01() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// The full state, for checkpoints.
  std::array<std::uint64_t, 4> state() const noexcept { return s_; }
  /// Restores a state returned by `state()`.
  void set_state(const std::array<std::uint64_t, 4>& s) noexcept { s_ = s; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace nasforge
