// The built-in search strategies (strategy.h): random, regularized evolution, NSGA-II.
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <type_traits>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nasforge/error.h"
#include "nasforge/pareto.h"
#include "nasforge/predictor.h"
#include "nasforge/random.h"
#include "nasforge/strategy.h"

namespace nasforge {
namespace {

using nlohmann::json;

json rng_json(const Rng& r) { return r.state(); }
void rng_from(Rng& r, const json& j) { r.set_state(j.get<std::array<std::uint64_t, 4>>()); }

// Reads option `key` (with a default), and remembers it was known.
class Options {
 public:
  Options(const json& j, std::string strategy) : j_(j.is_null() ? json::object() : j), strategy_(std::move(strategy)) {
    NASFORGE_CHECK(j_.is_object(), "strategy \"{}\": expected options as a JSON object, found {}", strategy_, j_.dump());
  }
  template <typename T>
  T get(const std::string& key, T fallback, T lo, T hi) {
    known_.push_back(key);
    if (!j_.contains(key)) return fallback;
    const json& raw = j_.at(key);
    if (!raw.is_number()) {
      throw InvalidArgument(fmt::format("strategy \"{}\": option \"{}\" expected a number, found {}", strategy_, key, raw.dump()));
    }
    const double d = raw.get<double>();
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) ||
        (std::is_integral_v<T> && std::floor(d) != d)) {
      throw InvalidArgument(fmt::format("strategy \"{}\": option \"{}\" expected {} in [{}, {}], found {}", strategy_, key,
                                        std::is_integral_v<T> ? "an integer" : "a number", lo, hi, raw.dump()));
    }
    return static_cast<T>(d);
  }
  bool flag(const std::string& key, bool fallback) {
    known_.push_back(key);
    if (!j_.contains(key)) return fallback;
    NASFORGE_CHECK(j_.at(key).is_boolean(), "strategy \"{}\": option \"{}\" expected true or false, found {}", strategy_, key,
                   j_.at(key).dump());
    return j_.at(key).get<bool>();
  }
  std::string text(const std::string& key, const std::string& fallback, std::initializer_list<const char*> allowed) {
    known_.push_back(key);
    if (!j_.contains(key)) return fallback;
    const json& v = j_.at(key);
    for (const char* a : allowed) {
      if (v.is_string() && v.get<std::string>() == a) return a;
    }
    throw InvalidArgument(fmt::format("strategy \"{}\": option \"{}\" expected one of {}, found {}", strategy_, key,
                                      fmt::join(allowed, ", "), v.dump()));
  }
  void done() const {
    for (const auto& [k, v] : j_.items()) {
      if (std::find(known_.begin(), known_.end(), k) == known_.end()) {
        throw InvalidArgument(fmt::format("strategy \"{}\": unknown option \"{}\" (known: {})", strategy_, k, fmt::join(known_, ", ")));
      }
    }
  }

 private:
  json j_;
  std::string strategy_;
  std::vector<std::string> known_;
};

// Feasible before infeasible, then smaller violation, then the first objective.
bool better_single(const Trial& a, const Trial& b) {
  if ((a.violation > 0) != (b.violation > 0)) return a.violation == 0;
  if (a.violation != b.violation) return a.violation < b.violation;
  return a.objectives.at(0) < b.objectives.at(0);
}

struct Member {  // a trial as the population strategies keep it
  std::uint64_t id = 0;
  Architecture arch;
  std::vector<double> objectives;
  double violation = 0;
  Trial as_trial() const {
    Trial t;
    t.id = id;
    t.arch = arch;
    t.objectives = objectives;
    t.violation = violation;
    return t;
  }
};
void to_json(json& j, const Member& m) { j = {{"id", m.id}, {"arch", m.arch}, {"objectives", m.objectives}, {"violation", m.violation}}; }
void from_json(const json& j, Member& m) {
  m.id = j.at("id");
  m.arch = j.at("arch").get<Architecture>();
  m.objectives = j.at("objectives").get<std::vector<double>>();
  m.violation = j.at("violation");
}
Member member_of(const Trial& t) { return {t.id, t.arch, t.objectives, t.violation}; }

// A seen-set as a sorted JSON array (hash order is no part of a checkpoint), and back.
json seen_json(const std::unordered_set<Architecture>& seen) {
  std::vector<Architecture> v(seen.begin(), seen.end());
  std::sort(v.begin(), v.end());
  return v;
}
void seen_from(std::unordered_set<Architecture>& seen, const json& j) {
  seen.clear();
  for (const auto& a : j) seen.insert(a.get<Architecture>());
}

// ---- random ---------------------------------------------------------------------------------

class RandomSearch final : public Strategy {
 public:
  RandomSearch(SearchSpace space, const json& options, std::uint64_t seed) : space_(std::move(space)), rng_(seed) {
    Options o(options, "random");
    repeats_ = o.flag("repeats", false);
    o.done();
  }
  std::string name() const override { return "random"; }
  std::size_t preferred_batch() const override { return 16; }
  std::vector<Architecture> ask(std::size_t n) override {
    std::vector<Architecture> out;
    const auto size = space_.size().value;
    for (std::size_t i = 0; i < n; ++i) {
      if (!repeats_ && size && seen_.size() >= *size) break;  // the space is exhausted
      Architecture a = space_.canonical(space_.sample(rng_));
      for (int tries = 0; !repeats_ && seen_.count(a) && tries < 100000; ++tries) a = space_.canonical(space_.sample(rng_));
      if (!repeats_ && !seen_.insert(a).second) break;
      out.push_back(std::move(a));
    }
    return out;
  }
  void tell(const std::vector<Trial>&) override {}
  json state() const override { return {{"rng", rng_json(rng_)}, {"seen", seen_json(seen_)}}; }
  void restore(const json& s) override {
    rng_from(rng_, s.at("rng"));
    seen_from(seen_, s.at("seen"));
  }

 private:
  SearchSpace space_;
  Rng rng_;
  bool repeats_ = false;
  std::unordered_set<Architecture> seen_;
};

// ---- regularized evolution ------------------------------------------------------------------

class RegularizedEvolution final : public Strategy {
 public:
  RegularizedEvolution(SearchSpace space, const json& options, std::uint64_t seed) : space_(std::move(space)), rng_(seed) {
    Options o(options, "rea");
    population_ = o.get<std::size_t>("population", 10, 2, 1 << 20);
    sample_ = o.get<std::size_t>("sample", 3, 1, 1 << 20);
    mutations_ = o.get<int>("mutations", 1, 1, 1000);
    o.done();
    NASFORGE_CHECK(sample_ <= population_, "strategy \"rea\": sample ({}) must not exceed population ({})", sample_, population_);
  }
  std::string name() const override { return "rea"; }
  std::vector<Architecture> ask(std::size_t n) override {
    std::vector<Architecture> out;
    for (std::size_t i = 0; i < n; ++i) {
      if (asked_ < population_ || pop_.empty()) {
        out.push_back(space_.canonical(space_.sample(rng_)));  // the initial population
      } else {
        // Tournament: `sample_` distinct random members, the best one is the parent.
        std::vector<std::size_t> idx(pop_.size());
        for (std::size_t k = 0; k < idx.size(); ++k) idx[k] = k;
        const std::size_t s = std::min(sample_, idx.size());
        for (std::size_t k = 0; k < s; ++k) std::swap(idx[k], idx[k + rng_.uniform(idx.size() - k)]);
        std::size_t best = idx[0];
        for (std::size_t k = 1; k < s; ++k) {
          if (better_single(pop_[idx[k]].as_trial(), pop_[best].as_trial())) best = idx[k];
        }
        out.push_back(space_.canonical(space_.mutate(pop_[best].arch, rng_, mutations_)));
      }
      ++asked_;
    }
    return out;
  }
  void tell(const std::vector<Trial>& trials) override {
    std::vector<const Trial*> sorted;
    for (const auto& t : trials) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
    for (const Trial* t : sorted) {
      if (t->failed) continue;
      pop_.push_back(member_of(*t));
      while (pop_.size() > population_) pop_.pop_front();  // aging: the oldest dies
    }
  }
  json state() const override {
    return {{"rng", rng_json(rng_)}, {"asked", asked_}, {"population", std::vector<Member>(pop_.begin(), pop_.end())}};
  }
  void restore(const json& s) override {
    rng_from(rng_, s.at("rng"));
    asked_ = s.at("asked");
    auto members = s.at("population").get<std::vector<Member>>();
    pop_.assign(members.begin(), members.end());
  }

 private:
  SearchSpace space_;
  Rng rng_;
  std::size_t population_ = 10, sample_ = 3;
  int mutations_ = 1;
  std::size_t asked_ = 0;
  std::deque<Member> pop_;
};

// ---- NSGA-II --------------------------------------------------------------------------------

class Nsga2 final : public Strategy {
 public:
  Nsga2(SearchSpace space, const json& options, std::uint64_t seed) : space_(std::move(space)), rng_(seed) {
    Options o(options, "nsga2");
    population_ = o.get<std::size_t>("population", 50, 2, 1 << 20);
    crossover_ = o.get<double>("crossover", 0.9, 0.0, 1.0);
    mutations_ = o.get<int>("mutations", 1, 1, 1000);
    o.done();
  }
  std::string name() const override { return "nsga2"; }
  // Starts from `members` as the parents (LINAS: the architectures evaluated so far, scored by
  // its predictors) instead of a random first generation.
  void seed_parents(std::vector<Member> members) {
    for (const auto& m : members) seen_.insert(m.arch);
    std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
    select(std::move(members));
  }
  // The current parents, best first: by rank, then by crowding distance (LINAS reads them).
  std::vector<Architecture> ranked_parents() const {
    std::vector<std::size_t> order(parents_.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return rank_[a] != rank_[b] ? rank_[a] < rank_[b] : crowding_[a] > crowding_[b];
    });
    std::vector<Architecture> out;
    for (std::size_t k : order) out.push_back(parents_[k].arch);
    return out;
  }
  std::size_t preferred_batch() const override { return population_; }

  std::vector<Architecture> ask(std::size_t n) override {
    std::vector<Architecture> out;
    while (out.size() < n && asked_in_gen_ < population_) {
      Architecture child;
      for (int tries = 0; tries < 100; ++tries) {
        child = parents_.empty() ? space_.canonical(space_.sample(rng_)) : offspring();
        if (!seen_.count(child)) break;
      }
      seen_.insert(child);
      out.push_back(std::move(child));
      ++asked_in_gen_;
    }
    return out;
  }

  void tell(const std::vector<Trial>& trials) override {
    for (const auto& t : trials) {
      ++told_in_gen_;
      if (!t.failed) generation_.push_back(member_of(t));
    }
    if (asked_in_gen_ < population_ || told_in_gen_ < asked_in_gen_) return;
    // The generation is complete: parents + offspring -> the next parents.
    std::vector<Member> all = parents_;
    all.insert(all.end(), generation_.begin(), generation_.end());
    std::sort(all.begin(), all.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
    select(std::move(all));
    generation_.clear();
    asked_in_gen_ = told_in_gen_ = 0;
    ++gen_;
  }

  json state() const override {
    return {{"rng", rng_json(rng_)}, {"generation", gen_}, {"parents", parents_}, {"rank", rank_}, {"crowding", crowd_json()},
            {"current", generation_}, {"asked_in_generation", asked_in_gen_}, {"told_in_generation", told_in_gen_},
            {"seen", seen_json(seen_)}};
  }
  void restore(const json& s) override {
    rng_from(rng_, s.at("rng"));
    gen_ = s.at("generation");
    parents_ = s.at("parents").get<std::vector<Member>>();
    rank_ = s.at("rank").get<std::vector<std::size_t>>();
    crowding_.clear();
    for (const auto& c : s.at("crowding")) crowding_.push_back(c.is_null() ? std::numeric_limits<double>::infinity() : c.get<double>());
    generation_ = s.at("current").get<std::vector<Member>>();
    asked_in_gen_ = s.at("asked_in_generation");
    told_in_gen_ = s.at("told_in_generation");
    seen_from(seen_, s.at("seen"));
  }

 private:
  json crowd_json() const {
    json j = json::array();
    for (double c : crowding_) j.push_back(std::isinf(c) ? json(nullptr) : json(c));
    return j;
  }

  // Binary tournament: lower rank, then larger crowding distance.
  const Member& tournament() {
    std::size_t a = rng_.uniform(parents_.size()), b = rng_.uniform(parents_.size());
    if (parents_.size() > 1) {
      while (b == a) b = rng_.uniform(parents_.size());  // two distinct contestants
    }
    if (rank_[b] < rank_[a] || (rank_[b] == rank_[a] && crowding_[b] > crowding_[a])) return parents_[b];
    return parents_[a];
  }

  Architecture offspring() {
    const Member& p1 = tournament();
    const Member& p2 = tournament();
    Architecture child = rng_.uniform01() < crossover_ ? space_.crossover(p1.arch, p2.arch, rng_) : p1.arch;
    return space_.canonical(space_.mutate(child, rng_, mutations_));
  }

  // Constraint-domination fronts: feasible members by non-dominated sorting, then infeasible
  // ones by increasing violation (equal violations share a front).
  static std::vector<std::vector<std::size_t>> fronts_of(const std::vector<Member>& all) {
    std::vector<std::size_t> feasible, infeasible;
    for (std::size_t i = 0; i < all.size(); ++i) (all[i].violation > 0 ? infeasible : feasible).push_back(i);
    std::vector<ObjectivePoint> pts;
    for (std::size_t i : feasible) pts.push_back(all[i].objectives);
    std::vector<std::vector<std::size_t>> fronts;
    for (const auto& f : non_dominated_sort(pts)) {
      std::vector<std::size_t> front;
      for (std::size_t k : f) front.push_back(feasible[k]);
      fronts.push_back(std::move(front));
    }
    std::stable_sort(infeasible.begin(), infeasible.end(),
                     [&](std::size_t a, std::size_t b) { return all[a].violation < all[b].violation; });
    for (std::size_t k = 0; k < infeasible.size(); ++k) {
      if (k == 0 || all[infeasible[k]].violation != all[infeasible[k - 1]].violation) fronts.emplace_back();
      fronts.back().push_back(infeasible[k]);
    }
    return fronts;
  }

  std::vector<double> crowding_of(const std::vector<Member>& all, const std::vector<std::size_t>& front) const {
    std::vector<ObjectivePoint> pts;
    for (std::size_t i : front) pts.push_back(all[i].objectives);
    std::vector<std::size_t> local(front.size());
    for (std::size_t k = 0; k < local.size(); ++k) local[k] = k;
    return crowding_distance(pts, local);
  }

  void select(std::vector<Member> all) {
    std::vector<Member> next;
    std::vector<std::size_t> rank;
    std::vector<double> crowd;
    const auto fronts = fronts_of(all);
    for (std::size_t r = 0; r < fronts.size() && next.size() < population_; ++r) {
      const auto& f = fronts[r];
      auto cd = crowding_of(all, f);
      std::vector<std::size_t> order(f.size());
      for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
      if (next.size() + f.size() > population_) {  // the last front: the least crowded first
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cd[a] > cd[b]; });
        order.resize(population_ - next.size());
      }
      for (std::size_t k : order) {
        next.push_back(all[f[k]]);
        rank.push_back(r);
        crowd.push_back(cd[k]);
      }
    }
    parents_ = std::move(next);
    rank_ = std::move(rank);
    crowding_ = std::move(crowd);
  }

  SearchSpace space_;
  Rng rng_;
  std::size_t population_ = 50;
  double crossover_ = 0.9;
  int mutations_ = 1;
  std::size_t gen_ = 0, asked_in_gen_ = 0, told_in_gen_ = 0;
  std::vector<Member> parents_, generation_;
  std::vector<std::size_t> rank_;
  std::vector<double> crowding_;
  std::unordered_set<Architecture> seen_;
};


// ---- LINAS: predictor-guided NSGA-II -------------------------------------------------------

class Linas final : public Strategy {
 public:
  Linas(SearchSpace space, const json& options, std::uint64_t seed) : space_(std::move(space)), rng_(seed) {
    Options o(options, "linas");
    population_ = o.get<std::size_t>("population", 10, 2, 1 << 20);
    batch_ = o.get<std::size_t>("batch", 10, 1, 1 << 20);
    initial_ = o.get<std::size_t>("initial", 50, 1, 1 << 20);
    generations_ = o.get<std::size_t>("generations", 100, 1, 1 << 20);
    lambda_ = o.get<double>("lambda", 1.0, 0.0, 1e9);
    ranks_ = o.flag("rank_targets", true);
    warm_start_ = o.flag("warm_start", false);
    model_ = o.text("model", "ridge", {"ridge", "gbdt"});
    neighbourhood_ = o.flag("neighbourhood", true);
    pairwise_ = o.flag("pairwise", true);
    o.done();
  }
  std::string name() const override { return "linas"; }
  std::size_t preferred_batch() const override { return batch_; }

  std::vector<Architecture> ask(std::size_t n) override {
    std::vector<Architecture> out;
    const auto size = space_.size().value;
    while (out.size() < n) {
      if (queue_.empty() && size && seen_.size() >= *size) break;  // exhausted, nothing queued
      if (seen_.size() < initial_ && queue_.empty()) {  // the initial random sample
        out.push_back(fresh_random());
        continue;
      }
      if (queue_.empty()) {
        if (pending_ + out.size() > 0) break;  // a round needs every result of the last one
        round();
        if (queue_.empty()) break;
      }
      out.push_back(queue_.front());
      queue_.erase(queue_.begin());
    }
    pending_ += out.size();
    return out;
  }

  void tell(const std::vector<Trial>& trials) override {
    for (const auto& t : trials) {
      pending_ -= std::min<std::size_t>(pending_, 1);
      if (!t.failed) evaluated_.push_back(member_of(t));
    }
    std::sort(evaluated_.begin(), evaluated_.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
  }

  json state() const override {
    return {{"rng", rng_json(rng_)}, {"evaluated", evaluated_}, {"seen", seen_json(seen_)}, {"pending", pending_}, {"queue", queue_}};
  }
  void restore(const json& s) override {
    rng_from(rng_, s.at("rng"));
    evaluated_ = s.at("evaluated").get<std::vector<Member>>();
    seen_from(seen_, s.at("seen"));
    pending_ = s.at("pending");
    queue_ = s.at("queue").get<std::vector<Architecture>>();
  }

 private:
  Architecture fresh_random() {
    Architecture a = space_.canonical(space_.sample(rng_));
    for (int tries = 0; seen_.count(a) && tries < 100000; ++tries) a = space_.canonical(space_.sample(rng_));
    seen_.insert(a);
    return a;
  }

  // Fits one ridge model per objective (and one for the constraint violation) on everything
  // evaluated, runs a full NSGA-II on the predictions, and queues its best unseen members.
  void round() {
    const auto space_size = space_.size().value;
    if (evaluated_.empty()) {
      for (std::size_t k = 0; k < batch_ && !(space_size && seen_.size() >= *space_size); ++k) queue_.push_back(fresh_random());
      return;
    }
    const std::size_t m = evaluated_.front().objectives.size();
    std::vector<std::vector<float>> x;
    for (const auto& e : evaluated_) x.push_back(architecture_features(space_, e.arch, pairwise_));
    auto make = [&] {
      return model_ == "gbdt" ? make_predictor("gbdt", {{"seed", rng_() >> 33}, {"rounds", 200}, {"depth", 4}})
                              : make_predictor("ridge", {{"lambda", lambda_}});
    };
    std::vector<std::unique_ptr<Predictor>> models;
    for (std::size_t k = 0; k < m; ++k) {
      std::vector<double> y;
      for (const auto& e : evaluated_) y.push_back(e.objectives[k]);
      models.push_back(make());
      models.back()->fit(x, ranks_ ? fractional_ranks(y) : y);
    }
    bool constrained = false;
    auto violation = make();
    {
      std::vector<double> y;
      for (const auto& e : evaluated_) y.push_back(e.violation), constrained |= e.violation > 0;
      if (constrained) violation->fit(x, y);
    }
    // An architecture scored by the models: predicted objectives and violation.
    auto predict = [&](std::uint64_t pid, const Architecture& a) {
      const auto f = architecture_features(space_, a, pairwise_);
      Member scored{pid, a, {}, constrained ? std::max(0.0, violation->predict(f)) : 0.0};
      for (const auto& model : models) scored.objectives.push_back(model->predict(f));
      return scored;
    };
    // The best of `ranked` not evaluated yet, up to a batch.
    auto enqueue = [&](const std::vector<Architecture>& ranked) {
      for (const auto& a : ranked) {
        if (queue_.size() >= batch_) break;
        if (seen_.insert(a).second) queue_.push_back(a);
      }
    };
    Nsga2 inner(space_, {{"population", population_}}, rng_());
    std::uint64_t id = 0;
    if (warm_start_) {  // start the inner search from what was evaluated, scored like the rest
      std::vector<Member> start;
      for (const auto& e : evaluated_) start.push_back(predict(id++, e.arch));
      inner.seed_parents(std::move(start));
    }
    for (std::size_t g = 0; g < generations_; ++g) {
      auto archs = inner.ask(population_);
      if (archs.empty()) break;
      std::vector<Trial> predicted;
      for (const auto& a : archs) predicted.push_back(predict(id++, a).as_trial());
      inner.tell(predicted);
    }
    if (!neighbourhood_) {
      enqueue(inner.ranked_parents());
    } else {
      // The candidate pool: the inner search's parents plus every unseen neighbour (one
      // decision changed) of the real front; ranked by predicted fronts and crowding.
      std::vector<Architecture> pool;
      std::unordered_set<Architecture> in_pool;
      auto add = [&](const Architecture& a) {
        if (!seen_.count(a) && in_pool.insert(a).second) pool.push_back(a);
      };
      for (const auto& a : inner.ranked_parents()) add(a);
      {
        std::vector<ObjectivePoint> real;
        std::vector<std::size_t> feasible;
        for (std::size_t i = 0; i < evaluated_.size(); ++i) {
          if (evaluated_[i].violation > 0) continue;
          feasible.push_back(i);
          real.push_back(evaluated_[i].objectives);
        }
        for (std::size_t k : pareto_front(real)) {
          for (const auto& nb : space_.neighbours(evaluated_[feasible[k]].arch)) add(space_.canonical(nb));
        }
      }
      std::vector<Member> scored;
      for (std::size_t i = 0; i < pool.size(); ++i) scored.push_back(predict(i, pool[i]));
      Nsga2 ranker(space_, {{"population", std::max<std::size_t>(2, std::min(std::max(population_, batch_), scored.size()))}}, 0);
      ranker.seed_parents(std::move(scored));
      enqueue(ranker.ranked_parents());
    }
    while (queue_.size() < batch_ && !(space_size && seen_.size() >= *space_size)) queue_.push_back(fresh_random());
  }

  SearchSpace space_;
  Rng rng_;
  std::size_t population_ = 10, batch_ = 10, initial_ = 50, generations_ = 100;
  double lambda_ = 1.0;
  bool pairwise_ = true, ranks_ = true, warm_start_ = false;
  std::string model_ = "ridge";
  bool neighbourhood_ = true;
  std::vector<Member> evaluated_;
  std::unordered_set<Architecture> seen_;
  std::size_t pending_ = 0;
  std::vector<Architecture> queue_;
};

// ---- registry -------------------------------------------------------------------------------

std::mutex g_mutex;
std::map<std::string, StrategyFactory>& registry() {
  static std::map<std::string, StrategyFactory> r = {
      {"random", [](const SearchSpace& s, const json& o, std::uint64_t seed) { return std::unique_ptr<Strategy>(new RandomSearch(s, o, seed)); }},
      {"rea", [](const SearchSpace& s, const json& o, std::uint64_t seed) { return std::unique_ptr<Strategy>(new RegularizedEvolution(s, o, seed)); }},
      {"nsga2", [](const SearchSpace& s, const json& o, std::uint64_t seed) { return std::unique_ptr<Strategy>(new Nsga2(s, o, seed)); }},
      {"linas", [](const SearchSpace& s, const json& o, std::uint64_t seed) { return std::unique_ptr<Strategy>(new Linas(s, o, seed)); }},
  };
  return r;
}

}  // namespace

std::unique_ptr<Strategy> make_strategy(const std::string& name, const SearchSpace& space, const json& options,
                                        std::uint64_t seed) {
  StrategyFactory f;
  {
    std::lock_guard lock(g_mutex);
    auto it = registry().find(name);
    if (it == registry().end()) {
      std::vector<std::string> names;
      for (const auto& [k, v] : registry()) names.push_back(k);
      throw NotFound(fmt::format("strategy \"{}\": no such strategy (known: {})", name, fmt::join(names, ", ")));
    }
    f = it->second;
  }
  return f(space, options, seed);
}

void register_strategy(const std::string& name, StrategyFactory factory) {
  NASFORGE_CHECK(static_cast<bool>(factory), "register_strategy({}): expected a factory", name);
  std::lock_guard lock(g_mutex);
  NASFORGE_CHECK(!registry().count(name), "register_strategy: a strategy \"{}\" exists already", name);
  registry().emplace(name, std::move(factory));
}

std::vector<std::string> strategy_names() {
  std::lock_guard lock(g_mutex);
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

}  // namespace nasforge
