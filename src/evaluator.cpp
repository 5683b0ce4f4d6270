#include "nasforge/evaluator.h"

#include <cmath>
#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nasforge/error.h"

namespace nasforge {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(std::move(cur));
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

}  // namespace

TableEvaluator::TableEvaluator(SearchSpace space) : space_(std::move(space)) {
  NASFORGE_CHECK(space_.native_format().has_value(),
                 "TableEvaluator: space \"{}\" has no native architecture format to key a table by", space_.name());
}

void TableEvaluator::add_csv(const std::string& path, const std::vector<std::string>& columns,
                             const std::string& key_column) {
  std::ifstream in(path);
  if (!in) throw NotFound(fmt::format("{}: cannot open the table", path));
  std::string line;
  if (!std::getline(in, line)) throw InvalidArgument(fmt::format("{}: expected a header line, found an empty file", path));
  const auto header = split_csv(line);
  std::vector<std::vector<std::string>> cells;
  while (std::getline(in, line)) {
    if (line.empty() || line == "\r") continue;
    cells.push_back(split_csv(line));
    if (cells.back().size() != header.size()) {
      throw InvalidArgument(fmt::format("{}:{}: expected {} columns as in the header, found {}", path, cells.size() + 1,
                                        header.size(), cells.back().size()));
    }
  }
  if (cells.empty()) throw InvalidArgument(fmt::format("{}: expected rows after the header, found none", path));
  // The key column.
  std::size_t key = header.size();
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (!key_column.empty()) {
      if (header[c] == key_column) key = c;
      continue;
    }
    try {
      space_.from_native(cells[0][c]);
      key = c;
      break;
    } catch (const Error&) {
    }
  }
  if (key == header.size()) {
    throw InvalidArgument(key_column.empty()
                              ? fmt::format("{}: no column holds {} architecture strings of space \"{}\"", path,
                                            *space_.native_format(), space_.name())
                              : fmt::format("{}: no column named \"{}\"", path, key_column));
  }
  // Metric columns: the requested ones, or every all-numeric column.
  std::vector<std::size_t> metric_cols;
  std::vector<std::pair<std::size_t, std::size_t>> shared;  // (column, metric index) present already
  for (std::size_t c = 0; c < header.size(); ++c) {
    if (c == key) continue;
    bool wanted = columns.empty() || std::find(columns.begin(), columns.end(), header[c]) != columns.end();
    if (!wanted) continue;
    bool numeric = true;
    double v = 0;
    for (const auto& row : cells) numeric = numeric && parse_double(row[c], v);
    if (!numeric) {
      if (!columns.empty()) throw InvalidArgument(fmt::format("{}: column \"{}\" is not numeric in every row", path, header[c]));
      continue;
    }
    auto have = std::find(names_.begin(), names_.end(), header[c]);
    if (have != names_.end()) {
      if (!columns.empty()) {
        throw InvalidArgument(fmt::format("{}: metric \"{}\" is already given by {}", path, header[c], fmt::join(sources_, ", ")));
      }
      shared.emplace_back(c, static_cast<std::size_t>(have - names_.begin()));  // a join column: must agree
      continue;
    }
    metric_cols.push_back(c);
  }
  for (const auto& want : columns) {
    if (std::find(header.begin(), header.end(), want) == header.end()) {
      throw InvalidArgument(fmt::format("{}: no column named \"{}\"", path, want));
    }
  }
  const std::size_t first = names_.size();
  for (std::size_t c : metric_cols) names_.push_back(header[c]);
  for (auto& [arch, values] : rows_) values.resize(names_.size(), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t r = 0; r < cells.size(); ++r) {
    Architecture a;
    try {
      a = space_.canonical(space_.from_native(cells[r][key]));
    } catch (const Error& e) {
      throw InvalidArgument(fmt::format("{}:{}: column \"{}\": {}", path, r + 2, header[key], e.what()));
    }
    auto& values = rows_[a];
    values.resize(names_.size(), std::numeric_limits<double>::quiet_NaN());
    for (auto [c, m] : shared) {
      double v = 0;
      parse_double(cells[r][c], v);
      if (!std::isnan(values[m]) && values[m] != v) {
        throw InvalidArgument(fmt::format("{}:{}: \"{}\" is {} here but {} in {} for architecture {}", path, r + 2, header[c],
                                          cells[r][c], values[m], fmt::join(sources_, ", "), cells[r][key]));
      }
    }
    for (std::size_t j = 0; j < metric_cols.size(); ++j) {
      if (!std::isnan(values[first + j])) {
        throw InvalidArgument(fmt::format("{}:{}: architecture {} appears twice", path, r + 2, cells[r][key]));
      }
      parse_double(cells[r][metric_cols[j]], values[first + j]);
    }
  }
  sources_.push_back(path);
}

Metrics TableEvaluator::evaluate(const Architecture& arch) const {
  auto it = rows_.find(space_.canonical(arch));
  if (it == rows_.end()) {
    throw EvaluationError(fmt::format("architecture {} is in none of the tables ({})", space_.to_native(arch),
                                      fmt::join(sources_, ", ")));
  }
  Metrics m;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (std::isnan(it->second[i])) {
      throw EvaluationError(fmt::format("architecture {} has no \"{}\" in the tables ({})", space_.to_native(arch),
                                        names_[i], fmt::join(sources_, ", ")));
    }
    m.emplace(names_[i], it->second[i]);
  }
  return m;
}

std::vector<std::pair<Architecture, Metrics>> TableEvaluator::known() const {
  std::vector<std::pair<Architecture, Metrics>> out;
  out.reserve(rows_.size());
  for (const auto& [arch, values] : rows_) {
    Metrics m;
    bool full = true;
    for (std::size_t i = 0; i < names_.size(); ++i) {
      full = full && !std::isnan(values[i]);
      m.emplace(names_[i], values[i]);
    }
    if (full) out.emplace_back(arch, std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  return out;
}

bool TableEvaluator::complete() const {
  auto size = space_.size().value;
  return size && known().size() == *size;
}

CompositeEvaluator::CompositeEvaluator(std::vector<std::shared_ptr<const Evaluator>> parts) : parts_(std::move(parts)) {
  NASFORGE_CHECK(!parts_.empty(), "CompositeEvaluator: expected at least one evaluator");
  for (const auto& p : parts_) {
    NASFORGE_CHECK(p != nullptr, "CompositeEvaluator: a null evaluator");
    for (const auto& n : p->metric_names()) {
      NASFORGE_CHECK(std::find(names_.begin(), names_.end(), n) == names_.end(),
                     "CompositeEvaluator: metric \"{}\" comes from two evaluators", n);
      names_.push_back(n);
    }
  }
}

Metrics CompositeEvaluator::evaluate(const Architecture& arch) const {
  Metrics all;
  for (const auto& p : parts_) all.merge(p->evaluate(arch));
  return all;
}

std::vector<std::pair<Architecture, Metrics>> CompositeEvaluator::known() const {
  // What every part knows (architectures known to all), merged.
  std::map<Architecture, Metrics> merged;
  std::map<Architecture, std::size_t> count;
  for (const auto& p : parts_) {
    for (auto& [a, m] : p->known()) {
      merged[a].merge(m);
      ++count[a];
    }
  }
  std::vector<std::pair<Architecture, Metrics>> out;
  for (auto& [a, m] : merged) {
    if (count[a] == parts_.size()) out.emplace_back(a, std::move(m));
  }
  return out;
}

bool CompositeEvaluator::complete() const {
  return std::all_of(parts_.begin(), parts_.end(), [](const auto& p) { return p->complete(); });
}

std::unique_ptr<Evaluator> make_evaluator(const std::string& spec, const SearchSpace& space) {
  if (spec.rfind("table:", 0) == 0) {
    auto t = std::make_unique<TableEvaluator>(space);
    std::stringstream paths(spec.substr(6));
    std::string p;
    while (std::getline(paths, p, ',')) t->add_csv(p);
    return t;
  }
  throw InvalidArgument(fmt::format("evaluator \"{}\": expected table:PATH[,PATH...]", spec));
}

}  // namespace nasforge
