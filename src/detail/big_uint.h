#pragma once
// A minimal unsigned big integer for exact search-space sizes (FBNet has 9^22 > 2^64).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nasforge::detail {

class BigUint {
 public:
  explicit BigUint(std::uint64_t v = 0) {
    while (v) {
      limbs_.push_back(static_cast<std::uint32_t>(v));
      v >>= 32;
    }
  }
  void mul(std::uint64_t m) { mul(BigUint(m)); }
  void mul(const BigUint& o) {
    std::vector<std::uint32_t> r(limbs_.size() + o.limbs_.size(), 0);
    for (std::size_t i = 0; i < limbs_.size(); ++i) {
      std::uint64_t carry = 0;
      for (std::size_t j = 0; j < o.limbs_.size(); ++j) {
        std::uint64_t cur = r[i + j] + static_cast<std::uint64_t>(limbs_[i]) * o.limbs_[j] + carry;
        r[i + j] = static_cast<std::uint32_t>(cur);
        carry = cur >> 32;
      }
      std::size_t k = i + o.limbs_.size();
      while (carry) {
        std::uint64_t cur = r[k] + carry;
        r[k++] = static_cast<std::uint32_t>(cur);
        carry = cur >> 32;
      }
    }
    limbs_ = std::move(r);
    trim();
  }
  void add(const BigUint& o) {
    if (limbs_.size() < o.limbs_.size()) limbs_.resize(o.limbs_.size(), 0);
    std::uint64_t carry = 0;
    for (std::size_t i = 0; i < limbs_.size(); ++i) {
      std::uint64_t cur = carry + limbs_[i] + (i < o.limbs_.size() ? o.limbs_[i] : 0);
      limbs_[i] = static_cast<std::uint32_t>(cur);
      carry = cur >> 32;
    }
    if (carry) limbs_.push_back(static_cast<std::uint32_t>(carry));
  }
  std::string to_string() const {
    if (limbs_.empty()) return "0";
    std::vector<std::uint32_t> v = limbs_;
    std::string digits;
    while (!v.empty()) {  // nine decimal digits per pass over the limbs
      std::uint64_t rem = 0;
      for (std::size_t i = v.size(); i-- > 0;) {
        std::uint64_t cur = (rem << 32) | v[i];
        v[i] = static_cast<std::uint32_t>(cur / 1000000000);
        rem = cur % 1000000000;
      }
      while (!v.empty() && v.back() == 0) v.pop_back();
      const bool top = v.empty();
      for (int k = 0; k < 9; ++k) {
        digits.push_back(static_cast<char>('0' + rem % 10));
        rem /= 10;
        if (top && rem == 0) break;  // no leading zeros
      }
    }
    return {digits.rbegin(), digits.rend()};
  }
  double log10() const {
    if (limbs_.empty()) return -INFINITY;
    // Top two limbs give full double precision.
    double top = limbs_.back();
    std::size_t shift = limbs_.size() - 1;
    if (limbs_.size() >= 2) {
      top = top * 4294967296.0 + limbs_[limbs_.size() - 2];
      shift -= 1;
    }
    return std::log10(top) + static_cast<double>(shift) * 32.0 * std::log10(2.0);
  }
  std::optional<std::uint64_t> to_u64() const {
    if (limbs_.size() > 2) return std::nullopt;
    std::uint64_t v = 0;
    for (std::size_t i = limbs_.size(); i-- > 0;) v = (v << 32) | limbs_[i];
    return v;
  }

 private:
  void trim() {
    while (!limbs_.empty() && limbs_.back() == 0) limbs_.pop_back();
  }
  std::vector<std::uint32_t> limbs_;  // little-endian base 2^32
};

}  // namespace nasforge::detail
