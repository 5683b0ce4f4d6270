#pragma once
/// \file trainer.h
/// Trains a Network from scratch (or fine-tunes it): SGD with momentum (Nesterov by default),
/// cosine learning-rate schedule, weight decay, gradient-norm clipping, optional pad-crop and
/// horizontal-flip augmentation, test accuracy after every epoch, a progress line with ETA,
/// and a checkpoint per epoch that a rerun resumes from.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nasforge/torch/data.h"
#include "nasforge/torch/network.h"

namespace nasforge {

/// Options of `train`. Defaults follow NAS-Bench-201's training recipe, scaled down.
struct TrainOptions {
  std::int64_t epochs = 10;          ///< full passes over the training data, >= 1
  std::int64_t batch = 256;          ///< mini-batch size, >= 1
  double lr = 0.1;                   ///< initial learning rate, annealed by cosine to `lr_min`
  double lr_min = 0.0;               ///< final learning rate
  double momentum = 0.9;             ///< SGD momentum in [0, 1)
  bool nesterov = true;              ///< Nesterov momentum
  double weight_decay = 5e-4;        ///< L2 on all weights
  double grad_clip = 5.0;            ///< max global gradient norm; 0 disables clipping
  std::int64_t pad_crop = 2;         ///< random shift by up to this many pixels (0: off)
  bool flip = true;                  ///< random horizontal flips
  std::uint64_t seed = 0;            ///< batch order, augmentation and initialisation
  int threads = 0;                   ///< torch intra-op threads while training; 0: leave as is
  std::string checkpoint_dir;        ///< save after every epoch and resume from here (empty: off)
  bool progress = false;             ///< print a line per epoch to stderr, and on a terminal
                                     ///< a live per-batch line with ETA
};

/// What one epoch achieved.
struct EpochStats {
  std::int64_t epoch = 0;      ///< from 1
  double lr = 0;               ///< learning rate used in this epoch
  double train_loss = 0;       ///< mean cross-entropy over the epoch
  double train_accuracy = 0;   ///< fraction of training samples classified right (in train mode)
  double test_accuracy = 0;    ///< fraction of the test set classified right (eval mode)
  double seconds = 0;          ///< wall time of the epoch's training (not evaluation)
};

/// Fraction of `data` that `net` classifies right, in eval mode, in batches of `batch`.
double evaluate_accuracy(Network& net, const TensorData& data, std::int64_t batch = 1000);

/// Trains `net` on `train_data`, evaluating on `test_data` after every epoch. With a
/// checkpoint directory, an interrupted run resumes at the epoch after the last one saved and
/// reaches the same weights as an uninterrupted run. `on_epoch` may return true to stop early.
std::vector<EpochStats> train(Network& net, const TensorData& train_data, const TensorData& test_data,
                              const TrainOptions& options,
                              const std::function<bool(const EpochStats&)>& on_epoch = {});

}  // namespace nasforge
