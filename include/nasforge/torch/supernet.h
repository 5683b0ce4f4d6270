#pragma once
/// \file supernet.h
/// `Supernet`: a weight-sharing supernet compiled from a SearchSpace. Every candidate op of
/// every op decision holds its weights once; the structure is `SearchSpace::supernet()`.
///
/// Modes:
/// - **single-path**: `set_architecture(a)`; only that path runs (SPOS, evolutionary search
///   with shared weights). Edges a node does not keep contribute nothing.
/// - **mixed**: every allowed candidate runs, weighted by softmax of the decision's
///   architecture parameters (DARTS). A candidate whose weight is exactly zero, or that is the
///   `zero` (none) op, costs no compute. Every cell edge is live in mixed mode.
/// Masks restrict the candidates a decision may still take (few-shot sub-supernets,
/// progressive selection); masked candidates never run and get weight 0.
///
/// `extract(a)` returns a standalone Network holding copies of the chosen candidates' weights;
/// in eval mode its outputs equal the supernet's single-path outputs.
///
/// `save_checkpoint` / `load_checkpoint` keep weights, logits and masks with the space's
/// fingerprint; loading a checkpoint of another space is an error.
///
/// Not yet: elastic mode (weight slicing for kernel, width, depth, heads); spaces whose values
/// are decisions (mobilenetv3, vit) are rejected with a SearchSpaceError naming the value.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "nasforge/search_space.h"
#include "nasforge/torch/network.h"

namespace nasforge {

/// How a Supernet's forward treats op decisions.
enum class SupernetMode {
  kSinglePath,  ///< run the architecture given to set_architecture
  kMixed,       ///< softmax(alpha)-weighted sum of every allowed candidate
};

/// A weight-sharing supernet. Architecture parameters (one vector of logits per op decision)
/// are buffers that require grad, so `parameters()` holds the weights only and an optimiser
/// built from it never touches them; use `arch_parameters()` for the architecture optimiser.
class SupernetImpl : public ::torch::nn::Module {
 public:
  /// Compiles `space`. Weights use LibTorch's default initialisation (the global generator);
  /// architecture logits are 1e-3 * N(0, 1) drawn from nasforge::Rng(seed).
  explicit SupernetImpl(SearchSpace space, std::uint64_t seed = 0);

  /// Runs `x` [batch, ...input_shape] through the supernet in the current mode.
  ::torch::Tensor forward(const ::torch::Tensor& x);

  /// Switches between single-path and mixed execution (default single-path).
  void set_mode(SupernetMode mode) { mode_ = mode; }
  /// The current execution mode.
  SupernetMode mode() const noexcept { return mode_; }
  /// The architecture single-path mode runs (validated; must respect the masks).
  void set_architecture(const Architecture& arch);
  /// The architecture single-path mode runs (all first options until set).
  const Architecture& architecture() const noexcept { return arch_; }

  /// Architecture logits of every op decision, in decision order (the DARTS alpha).
  std::vector<::torch::Tensor> arch_parameters() const;
  /// Logits of decision `d` (an undefined tensor for non-op decisions).
  const ::torch::Tensor& alpha(std::size_t d) const;
  /// softmax(alpha) of decision `d` with masked options at exactly 0.
  ::torch::Tensor weights(std::size_t d) const;

  /// Restricts decision `d` to the options where `allowed` is true (at least one).
  void set_mask(std::size_t d, const std::vector<bool>& allowed);
  /// The allowed options of decision `d` (all true until set_mask).
  const std::vector<bool>& mask(std::size_t d) const;
  /// A random architecture that respects the masks (uniform over allowed options).
  Architecture sample(Rng& rng) const;

  /// The standalone network of `arch` with the supernet's weights and BN statistics copied in.
  Network extract(const Architecture& arch) const;

  /// Writes a checkpoint: weights, BN statistics, architecture logits, masks and the space's
  /// fingerprint (LibTorch archive format).
  void save_checkpoint(const std::string& path) const;
  /// Restores a checkpoint written by save_checkpoint. Throws InvalidArgument, naming both
  /// fingerprints, when it was written for a different space (or other parameters), and
  /// NotFound when the file cannot be read.
  void load_checkpoint(const std::string& path);

  /// The space the supernet was compiled from.
  const SearchSpace& space() const noexcept { return space_; }
  /// The supernet's structure (SearchSpace::supernet()).
  const ConcreteNetwork& structure() const noexcept { return net_; }

 private:
  std::vector<::torch::Tensor> run(const ::torch::Tensor& x);
  SearchSpace space_;
  ConcreteNetwork net_;
  std::vector<::torch::nn::AnyModule> layers_;
  std::vector<::torch::Tensor> alpha_;              // per decision; undefined when not an op decision
  std::vector<std::vector<bool>> masks_;             // per decision
  std::vector<bool> candidate_is_zero_;              // per layer
  std::vector<std::vector<char>> edge_live_;         // per layer: mixed cell edge live per input option
  std::map<std::string, std::size_t> by_key_;        // name + choice -> layer index
  SupernetMode mode_ = SupernetMode::kSinglePath;
  Architecture arch_;
};
TORCH_MODULE(Supernet);

}  // namespace nasforge
