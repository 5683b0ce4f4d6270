#pragma once
/// \file search.h
/// The search driver: runs a Strategy against an Evaluator under a budget, evaluates each
/// batch of proposals in parallel (oneTBB), records every trial (a failing candidate is a
/// failed trial, never the end of the search), checkpoints atomically and resumes to exactly
/// the result an uninterrupted run gives, and writes the results:
///
/// - `result.json`: `{"space", "strategy", "seed", "objectives", "constraints", "evaluations",
///   "simulated_seconds", "wall_seconds", "best": [T], "front": [T], "history": [T + "id",
///   "failed", "error"]}` where T = `{"arch": native string (or named JSON), "metrics": {...}}`.
///   `best` is the best feasible trial for one objective and the feasible Pareto front for
///   several; `front` is always the feasible Pareto front of everything evaluated.
/// - `history.csv`: one row per trial: id, arch, failed, then every metric.
/// - `front.svg` (two objectives): every trial, the front found and, when the evaluator knows
///   the whole space (a complete table), the true front.
///
/// ```cpp
/// nasforge::SearchOptions o;
/// o.objectives = {nasforge::parse_objective("valid_acc:max"), nasforge::parse_objective("pixel3:min")};
/// o.constraints = {nasforge::parse_constraint("pixel3<=10")};
/// o.budget.evaluations = 500;
/// o.out_dir = "runs/nsga2";
/// auto strategy = nasforge::make_strategy("nsga2", space, {}, /*seed=*/1);
/// nasforge::SearchResult r = nasforge::run_search(space, *strategy, table, o);
/// ```

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nasforge/evaluator.h"
#include "nasforge/search_space.h"
#include "nasforge/strategy.h"

namespace nasforge {

/// A metric to optimise.
struct Objective {
  std::string metric;
  bool maximize = false;
};
/// Parses `metric:max` or `metric:min`.
Objective parse_objective(const std::string& text);

/// A bound on a metric: `metric <= bound` (or `>=`).
struct Constraint {
  std::string metric;
  bool at_most = true;  ///< `<=` (else `>=`)
  double bound = 0;
  /// By how much `m` exceeds the bound (0 when satisfied).
  double violation(const Metrics& m) const;
};
/// Parses `metric<=bound` or `metric>=bound`.
Constraint parse_constraint(const std::string& text);

/// When a search stops: whichever limit is reached first (0 = no limit).
struct Budget {
  std::uint64_t evaluations = 100;  ///< trials, failed ones included
  double wall_seconds = 0;          ///< real time (makes the result depend on the machine)
  double simulated_seconds = 0;     ///< sum of the `cost_metric` of the trials (e.g. train_time_s)
  std::string cost_metric;          ///< the metric that simulates an evaluation's cost
};

/// Progress reported after every batch.
struct SearchProgress {
  std::uint64_t evaluations = 0, failed = 0;
  double wall_seconds = 0, simulated_seconds = 0;
  const Trial* best = nullptr;  ///< best feasible trial so far on the first objective (or null)
};

/// Settings of run_search.
struct SearchOptions {
  std::vector<Objective> objectives;   ///< at least one
  std::vector<Constraint> constraints;
  Budget budget;
  std::size_t batch = 0;               ///< proposals evaluated together; 0: the strategy's preference
  int threads = 0;                     ///< evaluation threads; 0: oneTBB's default
  std::string out_dir;                 ///< results and checkpoint; empty: nothing written
  std::uint64_t checkpoint_every = 50; ///< write a checkpoint after every this many trials (0: never)
  bool resume = false;                 ///< continue from out_dir/checkpoint.json when present
  std::uint64_t seed = 0;              ///< recorded in results and checkpoints (the strategy holds its own)
  /// Called after every batch; return true to stop the search early.
  std::function<bool(const SearchProgress&)> on_progress;
};

/// What a search found.
struct SearchResult {
  std::vector<Trial> history;          ///< every trial, in id order
  std::vector<std::size_t> best;       ///< indices into history (see result.json above)
  std::vector<std::size_t> front;      ///< indices into history: the feasible Pareto front, best first on the first objective
  double wall_seconds = 0, simulated_seconds = 0;
  bool resumed = false;                ///< true when it continued a checkpoint
};

/// Runs the search. Throws InvalidArgument for objectives or constraints naming metrics the
/// evaluator does not produce, and when a checkpoint to resume belongs to another space or
/// strategy.
SearchResult run_search(const SearchSpace& space, Strategy& strategy, const Evaluator& evaluator,
                        const SearchOptions& options);

/// Indices of the feasible Pareto front of `trials` under `objectives` (maximised ones
/// negated), ascending.
std::vector<std::size_t> feasible_front(const std::vector<Trial>& trials);

}  // namespace nasforge
