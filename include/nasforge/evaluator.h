#pragma once
/// \file evaluator.h
/// Evaluators turn an architecture into named metrics (`{"valid_acc": 91.2, "pixel3": 7.9}`).
/// A search asks its evaluator from several threads at once: `evaluate` must be thread-safe.
/// A candidate that cannot be evaluated throws EvaluationError; the search records it as a
/// failed trial and goes on.
///
/// `TableEvaluator` looks architectures up in measured tables (CSV files keyed by the space's
/// native architecture string), such as NAS-Bench-201's accuracies and the measured latencies
/// of ../shared/data:
///
/// ```cpp
/// auto space = nasforge::SearchSpace::from_file("search_spaces/nb201.json");
/// nasforge::TableEvaluator table(space);
/// table.add_csv("../shared/data/nb201/nb201_cifar10_200ep.csv");   // valid_acc, test_acc, train_time_s, ...
/// table.add_csv("../shared/data/nb201/nb201_latency_ms.csv");      // pixel3, gold_6240, ... (ms)
/// nasforge::Metrics m = table.evaluate(arch);
/// ```

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "nasforge/architecture.h"
#include "nasforge/search_space.h"

namespace nasforge {

/// Named metric values of one architecture.
using Metrics = std::map<std::string, double>;

/// Computes metrics of architectures. Implementations must be safe to call from several
/// threads at once.
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  /// The metrics of `arch`. Throws EvaluationError when this candidate cannot be evaluated.
  virtual Metrics evaluate(const Architecture& arch) const = 0;
  /// The names of the metrics `evaluate` returns.
  virtual std::vector<std::string> metric_names() const = 0;
  /// Every architecture the evaluator knows with its metrics, when it can list them (tables);
  /// empty otherwise. Used to draw the true Pareto front next to the one found.
  virtual std::vector<std::pair<Architecture, Metrics>> known() const { return {}; }
  /// True when `known()` covers the whole space.
  virtual bool complete() const { return false; }
};

/// Metrics read from CSV tables keyed by the space's native architecture string.
class TableEvaluator final : public Evaluator {
 public:
  /// An empty table for `space`; add columns with add_csv.
  explicit TableEvaluator(SearchSpace space);

  /// Reads `path`: a header line, then one row per architecture. The key column
  /// (`key_column`, or when empty the first column whose first value parses as an
  /// architecture of the space) is parsed with the space's native format; every other column
  /// whose values are all numbers becomes a metric (or only those in `columns`). Tables are
  /// joined on the architecture: a column another table already gave (an index column, say)
  /// must hold the same values and is not added twice; asking for it in `columns` is an error. Throws NotFound for an unreadable file and InvalidArgument naming the file,
  /// line and column for a malformed row.
  void add_csv(const std::string& path, const std::vector<std::string>& columns = {},
               const std::string& key_column = "");

  Metrics evaluate(const Architecture& arch) const override;
  std::vector<std::string> metric_names() const override { return names_; }
  std::vector<std::pair<Architecture, Metrics>> known() const override;
  bool complete() const override;

  /// Number of architectures with at least one metric.
  std::size_t size() const noexcept { return rows_.size(); }

 private:
  SearchSpace space_;
  std::vector<std::string> names_;
  std::vector<std::string> sources_;
  std::unordered_map<Architecture, std::vector<double>> rows_;  // metric values in names_ order (NaN: absent)
};

/// Several evaluators as one: their metrics merged (a name given by two is an error at
/// construction). E.g. accuracy from a table and latency from a cost model (cost_model.h).
class CompositeEvaluator final : public Evaluator {
 public:
  /// Takes shared ownership of `parts` (at least one).
  explicit CompositeEvaluator(std::vector<std::shared_ptr<const Evaluator>> parts);
  Metrics evaluate(const Architecture& arch) const override;
  std::vector<std::string> metric_names() const override { return names_; }
  std::vector<std::pair<Architecture, Metrics>> known() const override;
  bool complete() const override;

 private:
  std::vector<std::shared_ptr<const Evaluator>> parts_;
  std::vector<std::string> names_;
};

/// Parses an evaluator description of the CLI: `table:PATH[,PATH...]`.
std::unique_ptr<Evaluator> make_evaluator(const std::string& spec, const SearchSpace& space);

}  // namespace nasforge
