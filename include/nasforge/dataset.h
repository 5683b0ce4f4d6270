#pragma once
/// \file dataset.h
/// Image data sets in memory, torch-free: the IDX format (MNIST, Fashion-MNIST; gzip or raw),
/// Fashion-MNIST from Debian's `dataset-fashion-mnist` package, and seeded train/validation
/// splits. `nasforge/torch/data.h` turns them into normalised tensors and batches.

#include <cstdint>
#include <string>
#include <vector>

namespace nasforge {

/// Images stored as bytes, N x C x H x W, with one label per image.
struct ImageSet {
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::int64_t num_classes = 0;       ///< 1 + the largest label
  std::vector<std::uint8_t> pixels;   ///< size() * channels * height * width bytes
  std::vector<std::uint8_t> labels;   ///< one per image

  /// Number of images.
  std::int64_t size() const noexcept { return static_cast<std::int64_t>(labels.size()); }
  /// Bytes per image.
  std::int64_t image_bytes() const noexcept { return channels * height * width; }
};

/// Reads an IDX image file (magic 0x00000803, N x H x W unsigned bytes) and its IDX label file
/// (magic 0x00000801). Either may be gzip-compressed (detected from the content). Throws
/// NotFound when a file cannot be opened and InvalidArgument, naming the file, when it is
/// corrupt (bad magic, truncated, counts that disagree).
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);

/// Directory Debian's dataset-fashion-mnist installs into.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST (60,000 training or 10,000 test images, 1 x 28 x 28, 10 classes) from `dir`.
ImageSet load_fashion_mnist(bool train, const std::string& dir = kFashionMnistDir);

/// Indices of a seeded random split of `n` items: `valid_fraction` of them (rounded down) go
/// to `valid`, the rest to `train`; both sorted. The same seed gives the same split.
struct Split {
  std::vector<std::int64_t> train;
  std::vector<std::int64_t> valid;
};
Split train_valid_split(std::int64_t n, double valid_fraction, std::uint64_t seed);

}  // namespace nasforge
