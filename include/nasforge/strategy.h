#pragma once
/// \file strategy.h
/// Search strategies speak ask/tell: `ask(n)` proposes up to n architectures, the caller
/// evaluates them (in parallel, in any order) and `tell`s the results back. A strategy is
/// seeded, deterministic (same seed and same history → same proposals, whatever the order of
/// tell within a batch: trials are processed in id order) and checkpointable (`state()` /
/// `restore()` round-trip exactly). All objectives are minimised: the search driver negates
/// maximised ones (see search.h).
///
/// Built in (`make_strategy(name, ...)`):
/// - `random`: uniform sampling, without repeats by default (`{"repeats": true}` allows them);
/// - `rea`: regularized (aging) evolution, Real et al. 2019 (`population` 10, `sample` 3,
///   `mutations` 1): a tournament of `sample` random members of the population, the best one
///   mutated, the oldest removed. Single objective (the first); constraints rank infeasible
///   trials behind feasible ones;
/// - `nsga2`: NSGA-II, Deb et al. 2002 (`population` 50, `crossover` 0.9, `mutations` 1):
///   fast non-dominated sorting, crowding distance, binary tournaments, uniform crossover and
///   mutation on the categorical genome, constraint domination (a feasible trial beats an
///   infeasible one; between infeasible ones the smaller violation wins), any number of
///   objectives. Offspring already evaluated are redrawn (up to 100 times).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nasforge/architecture.h"
#include "nasforge/evaluator.h"
#include "nasforge/search_space.h"

namespace nasforge {

/// One evaluated architecture, as strategies see it.
struct Trial {
  std::uint64_t id = 0;             ///< 0, 1, 2, ... in the order of ask
  Architecture arch;
  Metrics metrics;                  ///< empty when failed
  std::vector<double> objectives;   ///< minimised (maximised metrics negated); empty when failed
  double violation = 0;             ///< total amount by which constraints are exceeded (0: feasible)
  bool failed = false;              ///< the evaluator threw
  std::string error;                ///< its message
  double seconds = 0;               ///< wall time of the evaluation
};

/// The ask/tell interface of every search strategy.
class Strategy {
 public:
  virtual ~Strategy() = default;
  /// The registry name (`random`, `rea`, `nsga2`, ...).
  virtual std::string name() const = 0;
  /// Up to `n` architectures to evaluate next (valid, canonical). Fewer, or none, when the
  /// strategy has nothing to propose until results come back or has exhausted the space.
  virtual std::vector<Architecture> ask(std::size_t n) = 0;
  /// Results of architectures returned by ask, in any order.
  virtual void tell(const std::vector<Trial>& trials) = 0;
  /// How many proposals the strategy wants evaluated together (a generation, say).
  virtual std::size_t preferred_batch() const { return 1; }
  /// Everything needed to continue exactly where it is (random state included).
  virtual nlohmann::json state() const = 0;
  /// Restores a state() of a strategy of the same name and options, for the same space.
  virtual void restore(const nlohmann::json& state) = 0;
};

/// Builds strategy `name` for `space`. `options` are the strategy's settings (see above);
/// unknown keys are an error. Throws NotFound for an unknown name (listing the known ones).
std::unique_ptr<Strategy> make_strategy(const std::string& name, const SearchSpace& space,
                                        const nlohmann::json& options = nlohmann::json::object(),
                                        std::uint64_t seed = 0);

/// Registers a user strategy under `name`; make_strategy then builds it.
using StrategyFactory =
    std::function<std::unique_ptr<Strategy>(const SearchSpace&, const nlohmann::json& options, std::uint64_t seed)>;
void register_strategy(const std::string& name, StrategyFactory factory);

/// Names of every registered strategy, sorted.
std::vector<std::string> strategy_names();

}  // namespace nasforge
