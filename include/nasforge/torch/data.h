#pragma once
/// \file data.h
/// Tensors and batches from an ImageSet (`nasforge/dataset.h`), and a synthetic data set for
/// fast tests. Shuffling uses nasforge::Rng, so the same seed gives the same batches on every
/// platform; LibTorch's global generator is not touched.

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "nasforge/concrete_network.h"
#include "nasforge/dataset.h"

namespace nasforge {

/// Per-channel normalisation: x' = (x / 255 - mean) / std.
struct Normalization {
  std::vector<double> mean;  ///< one per channel
  std::vector<double> std;   ///< one per channel, > 0
};

/// Mean and standard deviation of the pixels (scaled to [0, 1]) of the images at `indices`
/// (all images when empty), per channel. Compute it on the training split only.
Normalization compute_normalization(const ImageSet& set, const std::vector<std::int64_t>& indices = {});

/// Images and labels as tensors on one device.
struct TensorData {
  ::torch::Tensor images;  ///< float32 [N, C, H, W]
  ::torch::Tensor labels;  ///< int64 [N]
  /// Number of samples.
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

/// The images at `indices` (all when empty), normalised, as float32 tensors on `device`.
TensorData to_tensors(const ImageSet& set, const Normalization& norm,
                      const std::vector<std::int64_t>& indices = {},
                      ::torch::Device device = ::torch::kCPU);

/// The samples of `data` at `indices` (in that order), on the data's device.
TensorData subset(const TensorData& data, const std::vector<std::int64_t>& indices);

/// A learnable synthetic classification set: class c's images are Gaussian noise (sd 1) plus a
/// fixed random pattern of that class (sd `signal`). Deterministic in `seed`.
TensorData synthetic_data(std::int64_t n, const Shape& shape, std::int64_t classes,
                          std::uint64_t seed, double signal = 1.0,
                          ::torch::Device device = ::torch::kCPU);

/// Mini-batches over a TensorData, reshuffled every epoch from (seed, epoch).
class BatchLoader {
 public:
  /// \param batch      batch size, >= 1
  /// \param shuffle    reshuffle each epoch (else in order)
  /// \param drop_last  skip the last, smaller batch
  BatchLoader(TensorData data, std::int64_t batch, bool shuffle, std::uint64_t seed,
              bool drop_last = false);

  /// Batches in the current epoch.
  std::int64_t num_batches() const;
  /// Batch `i` of the current epoch: (images, labels).
  std::pair<::torch::Tensor, ::torch::Tensor> batch(std::int64_t i) const;
  /// Starts the next epoch (a new order when shuffling).
  void next_epoch();
  /// The current epoch, from 0.
  std::int64_t epoch() const noexcept { return epoch_; }
  /// The data.
  const TensorData& data() const noexcept { return data_; }

 private:
  void reorder();
  TensorData data_;
  std::int64_t batch_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  std::int64_t epoch_ = 0;
  ::torch::Tensor order_;  // int64 permutation for this epoch
};

}  // namespace nasforge
