#include "nasforge/torch/data.h"

#include <cmath>

#include <torch/torch.h>

#include "nasforge/error.h"
#include "nasforge/random.h"

namespace nasforge {

TensorData subset(const TensorData& data, const std::vector<std::int64_t>& indices) {
  auto i = ::torch::tensor(indices, ::torch::kLong).to(data.images.device());
  return {data.images.index_select(0, i), data.labels.index_select(0, i)};
}

Normalization compute_normalization(const ImageSet& set, const std::vector<std::int64_t>& indices) {
  NASFORGE_CHECK(set.size() > 0, "compute_normalization: expected a non-empty image set");
  const std::int64_t c = set.channels, hw = set.height * set.width;
  std::vector<double> sum(c, 0), sq(c, 0);
  std::int64_t count = 0;
  auto add = [&](std::int64_t i) {
    NASFORGE_CHECK(i >= 0 && i < set.size(), "compute_normalization: index {} outside [0, {})", i, set.size());
    const std::uint8_t* p = set.pixels.data() + i * set.image_bytes();
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t k = 0; k < hw; ++k) {
        double v = p[ch * hw + k] / 255.0;
        sum[ch] += v;
        sq[ch] += v * v;
      }
    }
    ++count;
  };
  if (indices.empty()) {
    for (std::int64_t i = 0; i < set.size(); ++i) add(i);
  } else {
    for (auto i : indices) add(i);
  }
  Normalization n;
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double m = sum[ch] / static_cast<double>(count * hw);
    double var = sq[ch] / static_cast<double>(count * hw) - m * m;
    n.mean.push_back(m);
    n.std.push_back(std::sqrt(std::max(var, 1e-12)));
  }
  return n;
}

TensorData to_tensors(const ImageSet& set, const Normalization& norm,
                      const std::vector<std::int64_t>& indices, ::torch::Device device) {
  NASFORGE_CHECK(static_cast<std::int64_t>(norm.mean.size()) == set.channels &&
                     static_cast<std::int64_t>(norm.std.size()) == set.channels,
                 "to_tensors: expected a normalisation with {} channels, got {}", set.channels, norm.mean.size());
  const std::int64_t n = indices.empty() ? set.size() : static_cast<std::int64_t>(indices.size());
  auto images = ::torch::empty({n, set.channels, set.height, set.width}, ::torch::kUInt8);
  auto labels = ::torch::empty({n}, ::torch::kInt64);
  auto* dst = images.data_ptr<std::uint8_t>();
  auto* lab = labels.data_ptr<std::int64_t>();
  for (std::int64_t j = 0; j < n; ++j) {
    std::int64_t i = indices.empty() ? j : indices[j];
    NASFORGE_CHECK(i >= 0 && i < set.size(), "to_tensors: index {} outside [0, {})", i, set.size());
    std::memcpy(dst + j * set.image_bytes(), set.pixels.data() + i * set.image_bytes(),
                static_cast<std::size_t>(set.image_bytes()));
    lab[j] = set.labels[i];
  }
  auto mean = ::torch::tensor(norm.mean, ::torch::kFloat32).view({1, set.channels, 1, 1});
  auto sd = ::torch::tensor(norm.std, ::torch::kFloat32).view({1, set.channels, 1, 1});
  auto x = (images.to(::torch::kFloat32) / 255.0 - mean) / sd;
  return {x.to(device), labels.to(device)};
}

TensorData synthetic_data(std::int64_t n, const Shape& shape, std::int64_t classes,
                          std::uint64_t seed, double signal, ::torch::Device device) {
  NASFORGE_CHECK(n >= 1 && classes >= 1 && !shape.empty(),
                 "synthetic_data: expected n >= 1, classes >= 1 and a shape, got n={} classes={} shape={}",
                 n, classes, shape_to_string(shape));
  Rng rng(seed);
  auto normal = [&rng] {  // Box-Muller from the portable generator
    double u1 = 1.0 - rng.uniform01(), u2 = rng.uniform01();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  };
  std::int64_t per = 1;
  for (auto d : shape) per *= d;
  std::vector<float> patterns(static_cast<std::size_t>(classes * per));
  for (auto& v : patterns) v = static_cast<float>(signal) * normal();
  std::vector<std::int64_t> full{n};
  full.insert(full.end(), shape.begin(), shape.end());
  auto x = ::torch::empty(full, ::torch::kFloat32);
  auto y = ::torch::empty({n}, ::torch::kInt64);
  float* px = x.data_ptr<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    auto c = static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(classes)));
    y[i] = c;
    for (std::int64_t k = 0; k < per; ++k) px[i * per + k] = patterns[c * per + k] + normal();
  }
  return {x.to(device), y.to(device)};
}

BatchLoader::BatchLoader(TensorData data, std::int64_t batch, bool shuffle, std::uint64_t seed, bool drop_last)
    : data_(std::move(data)), batch_(batch), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  NASFORGE_CHECK(batch >= 1, "BatchLoader: expected batch >= 1, got {}", batch);
  NASFORGE_CHECK(data_.size() >= 1, "BatchLoader: expected a non-empty data set");
  reorder();
}

void BatchLoader::reorder() {
  const std::int64_t n = data_.size();
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[i] = i;
  if (shuffle_) {
    Rng rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(epoch_));
    for (std::int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[rng.uniform(static_cast<std::uint64_t>(i) + 1)]);
  }
  order_ = ::torch::tensor(idx, ::torch::kInt64).to(data_.labels.device());
}

std::int64_t BatchLoader::num_batches() const {
  const std::int64_t n = data_.size();
  return drop_last_ ? n / batch_ : (n + batch_ - 1) / batch_;
}

std::pair<::torch::Tensor, ::torch::Tensor> BatchLoader::batch(std::int64_t i) const {
  NASFORGE_CHECK(i >= 0 && i < num_batches(), "BatchLoader::batch: expected 0 <= i < {}, got {}", num_batches(), i);
  const std::int64_t start = i * batch_, end = std::min(start + batch_, data_.size());
  auto idx = order_.slice(0, start, end);
  return {data_.images.index_select(0, idx), data_.labels.index_select(0, idx)};
}

void BatchLoader::next_epoch() {
  ++epoch_;
  reorder();
}

}  // namespace nasforge
