#pragma once
/// \file darts.h
/// Differentiable architecture search on a mixed-mode Supernet: DARTS (first and second
/// order), PC-DARTS, perturbation-based selection (DARTS-PT) and a latency-aware objective
/// from a latency table. `../shared/reference/ALGORITHMS.md` sections 1-3 and 8.1 are the
/// specification; the decisions it leaves open are documented at the options below.
///
/// ```cpp
/// nasforge::DartsOptions o = nasforge::darts_preset("pc-darts");
/// o.epochs = 10;
/// o.out_dir = "runs/pc";                 // checkpoint every epoch; o.resume continues one
/// nasforge::DartsResult r = nasforge::run_darts(space, train_data, o);
/// fmt::print("{}\n", space.to_native(r.derived));
/// ```
///
/// The loop (per step, one training batch and one validation batch, the architecture step
/// first): architecture step on the validation batch (Adam on alpha and, with edge
/// normalisation, beta), then a weight step on the training batch (SGD, cosine schedule,
/// gradient clipping on the weights only). The architecture parameters are never in the weight
/// optimiser, its weight decay or its clipping. The training data is split (seeded) into
/// D_train and D_val; validation batches come from D_val reshuffled every epoch.
///
/// Discretisation (`derive`): a space whose cell nodes choose their inputs (the DARTS space)
/// keeps, per node, the edges with the largest `max_{o != none} W[e][o]` and takes each kept
/// edge's best op other than `none`; every other op decision (NB201's edges, chain spaces)
/// takes the argmax over all its options, `none` included. W is mixing_weights(): softmax(alpha)
/// times softmax(beta) of the node's edges when there are betas (they change which edges are
/// kept, never the op of an edge).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "nasforge/cost_model.h"
#include "nasforge/search.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/data.h"
#include "nasforge/torch/supernet.h"

namespace nasforge {

struct DartsEpoch;
class DartsSearch;

/// Settings of a differentiable search. `darts_preset` gives each algorithm's published defaults.
struct DartsOptions {
  /// `darts` (first order), `darts2` (second order, unrolled), `pc-darts`, `darts-pt`
  /// (first-order DARTS, then perturbation-based selection).
  std::string algorithm = "darts";
  std::int64_t epochs = 50;           ///< supernet training epochs (DARTS-PT's tuning comes after)
  std::int64_t batch = 64;            ///< training and validation batch size
  double train_portion = 0.5;         ///< share of the data in D_train; the rest is D_val
  std::int64_t steps_per_epoch = 0;   ///< cap on steps per epoch (0: one pass over D_train)
  // Weights: SGD with momentum and weight decay, cosine from lr to lr_min over `epochs`.
  double lr = 0.025, lr_min = 0.001, momentum = 0.9, weight_decay = 3e-4;
  bool nesterov = false;
  double grad_clip = 5.0;             ///< global norm on the weights (0: off)
  // Architecture: Adam with its own weight decay.
  double arch_lr = 3e-4, arch_beta1 = 0.5, arch_beta2 = 0.999, arch_weight_decay = 1e-3;
  /// Second order: the finite-difference Hessian-vector product perturbs the weights by
  /// +-hvp_radius * v / ||v|| (DARTS: 0.01). On a small cell of smooth ops in double precision
  /// the resulting gradient matches a brute-force derivative of the unrolled objective to 1e-5
  /// at 0.01 and 1e-8 at 1e-4 (tested); with ReLU ops a perturbation that crosses a kink makes
  /// any finite difference, this one included, unreliable.
  double hvp_radius = 0.01;
  /// Epochs of weight training before the first architecture step (PC-DARTS: 15).
  std::int64_t warmup_epochs = 0;
  /// The supernet's construction (partial channels and edge normalisation for PC-DARTS,
  /// candidate_affine = false as DARTS searches); its seed is replaced by `seed`.
  SupernetOptions supernet;

  // ---- hardware-aware objective (ProxylessNAS expected latency, ALGORITHMS.md 8.1) -------
  /// Latency table holding the supernet's layers (profile_layers(table, {structure})); when
  /// set, the architecture loss adds `latency_weight * E[LAT]` (ms), or with a budget,
  /// `latency_weight * max(0, E[LAT] - budget) / budget`. The weight step never sees it.
  std::optional<LatencyTable> latency;
  double latency_weight = 0;          ///< lambda, >= 0 (per ms without a budget)
  double latency_budget_ms = 0;       ///< > 0: target mode, penalise only above the budget

  // ---- DARTS-PT (Wang et al., ICLR 2021; ALGORITHMS.md 3) ---------------------------------
  std::int64_t pt_interval = 5;       ///< fine-tuning epochs between two projections
  /// Selection criterion: `acc` (the op whose removal lowers validation accuracy most) or
  /// `loss` (whose removal raises validation loss most).
  std::string pt_criterion = "acc";
  /// Validation samples each perturbed supernet is evaluated on (0: all of D_val).
  std::int64_t pt_eval_samples = 0;
  double pt_lr = 0;                   ///< constant fine-tuning learning rate (0: lr / 10)

  // ---- running ------------------------------------------------------------------------------
  std::uint64_t seed = 0;             ///< data split, batch order, initialisation, logits, edge order
  int threads = 0;                    ///< LibTorch intra-op threads (0: leave as is)
  std::string out_dir;                ///< checkpoint.pt after every epoch, result.json at the end
  bool resume = false;                ///< continue out_dir/checkpoint.pt when present
  bool progress = false;              ///< a line per epoch (and on a terminal, per step) on stderr
  /// Called after every epoch (after its checkpoint); return true to stop the search there.
  std::function<bool(const DartsEpoch&)> on_epoch;
  /// Start from this DartsSearch checkpoint (DartsSearch::save: weights, alpha, BN statistics,
  /// masks, optimiser state) instead of a fresh initialisation, e.g. a few-shot sub-supernet.
  /// A resume from out_dir's own checkpoint takes precedence. Not part of the resume check.
  std::string initial_checkpoint;
  /// Called once at the end of a run_darts that ran to its last epoch (not when on_epoch
  /// stopped it), with the search after the discretisation.
  std::function<void(DartsSearch&)> on_finish;
};

/// The published defaults of `algorithm` (DARTS, Liu et al.; PC-DARTS, Xu et al. with K = 4;
/// DARTS-PT's tuning settings). Throws InvalidArgument for an unknown name.
DartsOptions darts_preset(const std::string& algorithm);

/// Sets the fields of `o` named by the keys of `j` (a JSON object of numbers, booleans and
/// strings: "epochs", "arch_lr", "warmup_epochs", "partial_channels", "edge_normalization",
/// "channels_last", "candidate_affine", "pt_interval", "pt_eval_samples", "pt_criterion", ...).
/// Throws InvalidArgument naming an unknown key or a value of the wrong type.
void darts_options_from_json(DartsOptions& o, const nlohmann::json& j);
/// The same fields of `o` as a JSON object (darts_options_from_json reads it back).
nlohmann::json darts_options_to_json(const DartsOptions& o);

/// What one epoch of a differentiable search saw.
struct DartsEpoch {
  std::int64_t epoch = 0;             ///< from 1, tuning epochs continue the count
  std::string phase;                  ///< `warmup`, `search` or `tune` (DARTS-PT fine-tuning)
  double lr = 0;
  double train_loss = 0, train_accuracy = 0;   ///< weight steps, train mode
  double valid_loss = 0, valid_accuracy = 0;   ///< architecture-step batches, train mode
  double expected_latency_ms = 0;     ///< E[LAT] after the epoch (0 without a table)
  Architecture derived;               ///< the discretisation after the epoch
  std::vector<std::vector<double>> weights;    ///< mixing weights per op decision (others empty)
  double seconds = 0;
};

/// An epoch record as result.json stores it (NaN losses as null), and back.
nlohmann::json darts_epoch_to_json(const DartsEpoch& e);
DartsEpoch darts_epoch_from_json(const nlohmann::json& j);

/// One DARTS-PT projection: the edge decided and what removing each of its ops did. For a
/// topology projection (DARTS space), `decision` is the node's inputs decision, `chosen` the
/// option keeping the surviving inputs, and `score` is empty.
struct Projection {
  std::size_t decision = 0;           ///< the op decision (edge) decided
  std::uint32_t chosen = 0;           ///< the op kept
  std::vector<double> score;          ///< per option: accuracy (or loss) without it; NaN if masked
  std::int64_t after_epoch = 0;
};

/// What a differentiable search found.
struct DartsResult {
  Architecture derived;               ///< the final architecture (canonical)
  std::vector<DartsEpoch> epochs;
  std::vector<Projection> projections;  ///< DARTS-PT only
  /// The same shape as a population search: one trial per epoch (its derived architecture,
  /// metrics epoch/train_loss/train_accuracy/valid_loss/valid_accuracy[/expected_latency_ms]),
  /// `best` and `front` = the final architecture.
  SearchResult search;
  bool resumed = false;
};

/// One differentiable search, step by step. `run_darts` drives it; tests and research code
/// can call the steps themselves.
class DartsSearch {
 public:
  /// Builds the supernet (mixed mode) and both optimisers. Seeds LibTorch's global generator
  /// with `options.seed` for the weight initialisation.
  DartsSearch(const SearchSpace& space, const DartsOptions& options);
  ~DartsSearch();
  DartsSearch(const DartsSearch&) = delete;
  DartsSearch& operator=(const DartsSearch&) = delete;

  /// The mixed-mode supernet being searched.
  Supernet& supernet() noexcept { return net_; }
  /// The options it was built with. `threads` is applied by run_darts, not by the steps.
  const DartsOptions& options() const noexcept { return o_; }

  /// Architecture step on a validation batch (first order, or second order through the
  /// training batch with the virtual step at learning rate `lr`). Returns the validation loss
  /// (cross-entropy, without the latency term) and accuracy of the forward it took (second
  /// order: at the virtually stepped weights).
  std::pair<double, double> arch_step(const ::torch::Tensor& xt, const ::torch::Tensor& yt, const ::torch::Tensor& xv,
                                      const ::torch::Tensor& yv, double lr);
  /// The gradient arch_step would apply (to arch_parameters()), without stepping.
  std::vector<::torch::Tensor> arch_gradient(const ::torch::Tensor& xt, const ::torch::Tensor& yt,
                                             const ::torch::Tensor& xv, const ::torch::Tensor& yv, double lr);
  /// The unrolled objective of second-order DARTS, L_val(w - lr * update(w, alpha), alpha),
  /// where update is the weight optimiser's exact step direction (momentum and weight decay
  /// included); the weights are left untouched. For checking gradients.
  double unrolled_validation_loss(const ::torch::Tensor& xt, const ::torch::Tensor& yt, const ::torch::Tensor& xv,
                                  const ::torch::Tensor& yv, double lr);
  /// Weight step (SGD at learning rate `lr`, clipping) on a training batch, with the
  /// architecture weights held fixed. Returns the loss and accuracy.
  std::pair<double, double> weight_step(const ::torch::Tensor& x, const ::torch::Tensor& y, double lr);
  /// Weight step on a training batch through one path only (single-path / SPOS training, as
  /// RSPS in few-shot NAS): the same optimiser, learning rate and clipping as weight_step, the
  /// supernet back in mixed mode afterwards. `path` must respect the masks. Candidates off
  /// the path are left untouched (their gradients are none: no weight decay, no momentum).
  /// Returns the loss and accuracy.
  std::pair<double, double> path_step(const ::torch::Tensor& x, const ::torch::Tensor& y, double lr, const Architecture& path);
  /// One epoch: for each training batch (at most steps_per_epoch), an architecture step on the
  /// next validation batch when `arch_updates`, then a weight step, at learning rate `lr`;
  /// both loaders then start their next epoch. Returns the epoch's means, E[LAT], the derived
  /// architecture and the mixing weights (epoch, phase and seconds are the caller's).
  /// `on_step(step, steps, loss)` is called after every step.
  DartsEpoch run_epoch(BatchLoader& train, BatchLoader& valid, double lr, bool arch_updates,
                       const std::function<void(std::int64_t, std::int64_t, double)>& on_step = {});
  /// The latency term of the architecture loss (an undefined tensor without a table).
  ::torch::Tensor latency_penalty() const;
  /// Expected latency in ms under the current weights (0 without a table).
  double expected_latency_ms() const;
  /// The discretised architecture (see the file comment), decided DARTS-PT edges kept.
  Architecture derive() const;
  /// The mixing weights the search uses now: mixing_weights() with decided edges one-hot.
  std::vector<::torch::Tensor> current_weights() const;

  /// Evaluates the supernet under `weights` on `data` in train-mode BN without gradients
  /// (DARTS-PT's protocol): (accuracy, mean loss). Leaves the supernet in train mode; the
  /// forwards update BN running statistics, as the reference's do.
  std::pair<double, double> evaluate(const TensorData& data, const std::vector<::torch::Tensor>& weights);
  /// Decides one edge (op decision `d`) by perturbation: each allowed op is removed in turn.
  Projection project_edge(std::size_t d, const TensorData& valid);
  /// Topology selection for a node whose inputs are decision `input_decision` (DARTS space):
  /// drops the edge whose removal hurts least until the node's input count is left. Returns
  /// the chosen option of `input_decision`.
  std::uint32_t project_topology(std::size_t input_decision, const TensorData& valid);
  /// Decided edges (DARTS-PT), -1 where undecided; one entry per decision.
  const std::vector<std::int64_t>& decided() const noexcept { return decided_; }

  /// Writes the supernet, both optimisers and `state` (a JSON object's text, else
  /// InvalidArgument) with the decided edges added, to `path` atomically.
  void save(const std::string& path, const std::string& state) const;
  /// Restores what save wrote; returns the state text.
  std::string load(const std::string& path);

  /// The weights' SGD (its state holds the momentum buffers the virtual step reads).
  ::torch::optim::Optimizer& weight_optimizer();
  /// The architecture parameters' Adam.
  ::torch::optim::Optimizer& arch_optimizer();

 private:
  std::vector<::torch::Tensor> latency_weights() const;
  ::torch::Tensor loss_of(const ::torch::Tensor& x, const ::torch::Tensor& y, const std::vector<::torch::Tensor>& w,
                          double* accuracy);
  std::vector<::torch::Tensor> step_direction(const std::vector<::torch::Tensor>& grads);
  // Sets the weights to the virtual step w - lr * direction and returns the saved w.
  std::vector<::torch::Tensor> virtual_step(const ::torch::Tensor& xt, const ::torch::Tensor& yt, double lr);
  std::vector<::torch::Tensor> gradient(const ::torch::Tensor& xt, const ::torch::Tensor& yt, const ::torch::Tensor& xv,
                                        const ::torch::Tensor& yv, double lr, double* loss, double* accuracy);
  SearchSpace space_;
  DartsOptions o_;
  Supernet net_{nullptr};
  std::vector<::torch::Tensor> weights_;  // the weight parameters (no architecture parameters)
  std::unique_ptr<::torch::optim::Optimizer> wopt_, aopt_;
  std::vector<std::int64_t> decided_;
  std::vector<std::uint32_t> topology_;  // DARTS-PT: decided input options (UINT32_MAX: undecided)
};

/// D_train and D_val of a differentiable search: `data` split by `options.seed` at
/// `options.train_portion`. Throws InvalidArgument, prefixed with `who`, when the images do not
/// fit the space's input or either part is smaller than a batch.
std::pair<TensorData, TensorData> split_search_data(const SearchSpace& space, const TensorData& data,
                                                    const DartsOptions& options, const std::string& who);

/// Runs a whole search on `data` (split into D_train and D_val by `options.seed`):
/// warm-up, search, and for DARTS-PT the projections with fine-tuning; checkpoints every epoch
/// and resumes exactly (the same result as an uninterrupted run). Writes out_dir/result.json
/// (the population search's keys plus `arch_weights` per epoch and `projections`) and
/// out_dir/weights.svg (the trajectory of every edge's op weights).
DartsResult run_darts(const SearchSpace& space, const TensorData& data, const DartsOptions& options);

/// SVG line charts of the op weights per epoch, one panel per op decision.
std::string weights_trajectory_svg(const SearchSpace& space, const std::vector<DartsEpoch>& epochs);

}  // namespace nasforge
