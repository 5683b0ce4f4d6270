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
/// - **elastic** (automatic for spaces with value decisions: kernel, width, expansion, heads,
///   MLP ratio, resolution; depth decisions work in every mode): the supernet holds each layer
///   at its largest configuration (`SearchSpace::supernet()`), and a smaller choice computes
///   with slices of those weights, as in Once-for-All: a kernel takes the centre of the
///   largest kernel (or, with `SupernetOptions::kernel_transform`, OFA's learned transformation
///   of it), a width or expansion the first channels, attention the first heads (of q, k and v
///   alike), a stage the first blocks. The slices are views, so gradients and batch-norm
///   statistics land in the shared tensors. Elastic spaces run single-path only. Grouped
///   (non-depthwise) convolutions cannot change width, and a choice that would need a tensor
///   larger than the supernet's is an error.
///
/// `save_checkpoint` / `load_checkpoint` keep weights, logits and masks with the space's
/// fingerprint; loading a checkpoint of another space is an error.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "nasforge/search_space.h"
#include "nasforge/torch/network.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace nasforge {

namespace detail {
struct TensorSlot;
}  // namespace detail

/// How a Supernet's forward treats op decisions.
enum class SupernetMode {
  kSinglePath,  ///< run the architecture given to set_architecture
  kMixed,       ///< softmax(alpha)-weighted sum of every allowed candidate
};

/// Construction options of a Supernet.
struct SupernetOptions {
  /// Seeds the architecture logits (1e-3 * N(0, 1) from nasforge::Rng(seed)).
  std::uint64_t seed = 0;
  /// Once-for-All's kernel transformation: an MBConv's depthwise kernel of size k < K is the
  /// centre of its size k+2 kernel multiplied by a learned (k*k)x(k*k) matrix (one per block
  /// and odd size below the block's largest kernel, initialised to the identity, trained with
  /// the weights; parameters named `kernel_transform_l<layer>_k<size>`). Off: the plain centre.
  bool kernel_transform = false;
  /// PC-DARTS partial channel connections (Xu et al., ICLR 2020), K = partial_channels: 0 is
  /// off; K >= 1 builds every cell edge's candidates with C/K channels, and an edge runs them
  /// on the first C/K channels of its input, passes the other channels through (max-pooled 2x2
  /// on a stride-2 edge), concatenates and shuffles the channels in K groups. K = 1 runs every
  /// channel through the ops and equals plain DARTS (tested). Applies in mixed and single-path
  /// mode; with K > 1 the supernet cannot `extract` (its candidates are narrower than the real
  /// network's). Channels of every cell edge must be divisible by K.
  std::int64_t partial_channels = 0;
  /// PC-DARTS edge normalisation: a logit per incoming edge of each cell node (the `beta`),
  /// softmax over the node's incoming edges, scaling the whole edge in mixed mode (folded into
  /// the op weights; with partial channels the bypass channels too). Edges of shared cells
  /// share their beta, as they share alpha.
  bool edge_normalization = false;
  /// Run on channels-last (NHWC) activations: the input is converted once and LibTorch's
  /// convolutions, batch norms and pools keep the layout. About 1.3x faster for a DARTS step
  /// on this CPU (docs/performance.md); the numbers agree with NCHW to float rounding.
  bool channels_last = false;
  /// Learnable scale and shift in the batch norms of the candidate ops (of op decisions).
  /// DARTS searches with false; the default keeps the ops as the space declares them.
  bool candidate_affine = true;
};

/// A weight-sharing supernet. Architecture parameters (one vector of logits per op decision)
/// are buffers that require grad, so `parameters()` holds the weights only and an optimiser
/// built from it never touches them; use `arch_parameters()` for the architecture optimiser.
class SupernetImpl : public ::torch::nn::Module {
 public:
  /// Compiles `space`. Weights use LibTorch's default initialisation (the global generator);
  /// architecture logits are 1e-3 * N(0, 1) drawn from nasforge::Rng(seed).
  explicit SupernetImpl(SearchSpace space, std::uint64_t seed = 0);
  /// Compiles `space` with options.
  SupernetImpl(SearchSpace space, const SupernetOptions& options);

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

  /// Architecture logits of every op decision, in decision order (the DARTS alpha), then the
  /// edge-normalisation logits (betas()) when there are any.
  std::vector<::torch::Tensor> arch_parameters() const;
  /// Logits of decision `d` (an undefined tensor for non-op decisions).
  const ::torch::Tensor& alpha(std::size_t d) const;
  /// softmax(alpha) of decision `d` with masked options at exactly 0.
  ::torch::Tensor weights(std::size_t d) const;
  /// Edge-normalisation logits, one tensor per group of edges that enter one cell node (empty
  /// unless SupernetOptions::edge_normalization). arch_parameters() includes them.
  const std::vector<::torch::Tensor>& betas() const noexcept { return beta_; }
  /// For each op decision: the edge group and position of its beta (-1: none).
  std::pair<int, int> beta_of(std::size_t d) const;
  /// The weights mixed mode uses, one tensor per decision (undefined for non-op decisions):
  /// weights(d), times softmax(beta) of its node's edges with edge normalisation.
  /// Differentiable in alpha and beta; detach them to run a weights-only step.
  std::vector<::torch::Tensor> mixing_weights() const;
  /// Mixed-mode forward with explicit mixing weights (one per decision, as mixing_weights()
  /// returns; undefined for non-op decisions). A candidate whose weight is exactly 0 does not
  /// run: DARTS-PT removes an op by zeroing its weight, a decided edge is one-hot; an edge whose
  /// weights are all 0 is removed altogether (a partial-channel edge's bypass too).
  ::torch::Tensor forward_mixed(const ::torch::Tensor& x, const std::vector<::torch::Tensor>& weights);
  /// The options this supernet was built with (its seed included).
  const SupernetOptions& options() const noexcept { return options_; }

  /// Restricts decision `d` to the options where `allowed` is true (at least one).
  void set_mask(std::size_t d, const std::vector<bool>& allowed);
  /// The allowed options of decision `d` (all true until set_mask).
  const std::vector<bool>& mask(std::size_t d) const;
  /// A random architecture that respects the masks (uniform over allowed options).
  Architecture sample(Rng& rng) const;

  /// The standalone network of `arch` with the supernet's weights and BN statistics copied in.
  Network extract(const Architecture& arch) const;

  /// Writes a checkpoint: weights, BN statistics, architecture logits, masks, the space's
  /// fingerprint and, when given, the state of the weight and architecture optimisers
  /// (LibTorch archive format). Written to `path.tmp` and renamed into place.
  /// `state`: text a driver stores with it (a search's progress), returned by load_checkpoint.
  void save_checkpoint(const std::string& path, const ::torch::optim::Optimizer* weight_optimizer = nullptr,
                       const ::torch::optim::Optimizer* arch_optimizer = nullptr, const std::string& state = {}) const;
  /// Restores a checkpoint written by save_checkpoint, and the optimisers' state into the
  /// optimisers given (built over this supernet's parameters() / arch_parameters()). Throws
  /// InvalidArgument, naming both fingerprints, when it was written for a different space (or
  /// other parameters), or when an optimiser is given whose state the checkpoint lacks; NotFound
  /// when the file cannot be read.
  void load_checkpoint(const std::string& path, ::torch::optim::Optimizer* weight_optimizer = nullptr,
                       ::torch::optim::Optimizer* arch_optimizer = nullptr, std::string* state = nullptr);

  /// The space the supernet was compiled from.
  const SearchSpace& space() const noexcept { return space_; }
  /// The supernet's structure (SearchSpace::supernet()).
  const ConcreteNetwork& structure() const noexcept { return net_; }
  /// Runs structure layer `i`'s module alone on `x` (diagnostics and benchmarks: the cost of
  /// one candidate op). Throws InvalidArgument for a structural layer (sum, mixed, ...).
  ::torch::Tensor forward_layer(std::size_t i, const ::torch::Tensor& x);
  /// Sets the momentum of every batch norm the supernet runs (its own and, in elastic mode, the
  /// sub-network modules that compute with its slices); std::nullopt = cumulative average,
  /// for recalibrating statistics per path. Returns the previous momentum (of the first BN).
  std::optional<double> set_bn_momentum(std::optional<double> momentum);
  /// Zeroes every batch norm's running statistics (mean 0, variance 1, count 0).
  void reset_bn_statistics();
  /// True when the space has value decisions, so sub-networks run on sliced weights.
  bool elastic() const noexcept { return elastic_; }
  /// The input shape the current architecture expects ([C, H, W] of its resolution).
  const Shape& input_shape() const;

 private:
  std::vector<::torch::Tensor> run(const ::torch::Tensor& x, const std::vector<::torch::Tensor>* weights);
  ::torch::Tensor pc_combine(std::size_t mixed_layer, const ::torch::Tensor& source, ::torch::Tensor y1,
                             const ::torch::Tensor& bypass_scale) const;
  ::torch::Tensor slice_for(std::size_t layer, const ConcreteLayer& actual, const detail::TensorSlot& slot,
                            ::torch::IntArrayRef shape) const;
  ::torch::nn::AnyModule elastic_module(const ConcreteLayer& l, std::size_t layer);
  void bind_elastic();
  SearchSpace space_;
  SupernetOptions options_;
  ConcreteNetwork net_;
  std::vector<::torch::nn::AnyModule> layers_;
  std::vector<::torch::Tensor> alpha_;              // per decision; undefined when not an op decision
  std::vector<std::vector<bool>> masks_;             // per decision
  std::vector<::torch::Tensor> beta_;                // per edge group (edge normalisation)
  std::vector<std::pair<int, int>> beta_of_;         // per decision: (group, position) or (-1, -1)
  std::vector<char> pc_candidate_;                   // per layer: a partial-channel candidate
  std::vector<char> pc_mixed_;                       // per layer: a partial-channel mixed edge
  std::vector<bool> candidate_is_zero_;              // per layer
  std::vector<std::vector<char>> edge_live_;         // per layer: mixed cell edge live per input option
  std::map<std::string, std::size_t> by_key_;        // name + choice -> layer index
  SupernetMode mode_ = SupernetMode::kSinglePath;
  Architecture arch_;
  // Elastic mode.
  bool elastic_ = false;
  bool kernel_transform_ = false;
  std::vector<std::map<std::string, ::torch::Tensor>> tensors_;  // per layer: path -> tensor
  std::map<std::string, ::torch::Tensor> kernel_matrices_;       // "<layer>:<k>" -> (k*k)x(k*k)
  std::map<std::string, ::torch::nn::AnyModule> elastic_cache_;   // by layer and configuration
  Network elastic_net_{nullptr};                                  // the current architecture's
  std::vector<std::size_t> elastic_source_;                       // its layer -> supernet layer
};
TORCH_MODULE(Supernet);

}  // namespace nasforge
