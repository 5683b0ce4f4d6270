// The conformance suite every search strategy passes, and each strategy's own behaviour.
#include "nasforge/strategy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "nasforge/error.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

// A deterministic two-metric evaluator over any space: "acc" rewards high option indices of
// the first half of the decisions, "lat" grows with all indices; an optional poison makes
// every architecture whose hash is divisible by 7 fail.
class SyntheticEvaluator final : public Evaluator {
 public:
  explicit SyntheticEvaluator(bool poison = false) : poison_(poison) {}
  Metrics evaluate(const Architecture& a) const override {
    if (poison_ && a.hash() % 7 == 0) throw EvaluationError("poisoned architecture");
    double acc = 0, lat = 1;
    for (std::size_t d = 0; d < a.size(); ++d) {
      acc += (d < a.size() / 2 ? 1.0 : 0.3) * a[d] + 0.01 * static_cast<double>((a.hash() >> d) & 3U);
      lat += (d % 2 ? 2.0 : 0.5) * a[d];
    }
    return {{"acc", acc}, {"lat", lat}};
  }
  std::vector<std::string> metric_names() const override { return {"acc", "lat"}; }

 private:
  bool poison_;
};

// Drives a strategy by hand: ask a batch, evaluate, tell (optionally in reverse order).
std::vector<Trial> drive(Strategy& s, const Evaluator& e, std::size_t evaluations, std::size_t batch, bool reverse,
                         bool two_objectives, std::uint64_t first_id = 0) {
  std::vector<Trial> history;
  std::uint64_t id = first_id;
  while (history.size() < evaluations) {
    auto archs = s.ask(std::min(batch, evaluations - history.size()));
    if (archs.empty()) break;
    std::vector<Trial> told;
    for (auto& a : archs) {
      Trial t;
      t.id = id++;
      t.arch = a;
      try {
        t.metrics = e.evaluate(a);
        t.objectives = {-t.metrics["acc"]};
        if (two_objectives) t.objectives.push_back(t.metrics["lat"]);
        if (two_objectives) t.violation = std::max(0.0, t.metrics["lat"] - 12.0);  // a latency budget
      } catch (const EvaluationError& err) {
        t.failed = true;
        t.error = err.what();
      }
      told.push_back(t);
    }
    history.insert(history.end(), told.begin(), told.end());
    if (reverse) std::reverse(told.begin(), told.end());
    s.tell(told);
  }
  return history;
}

std::vector<Architecture> archs_of(const std::vector<Trial>& h) {
  std::vector<Architecture> out;
  for (const auto& t : h) out.push_back(t.arch);
  return out;
}

struct Conformance : ::testing::TestWithParam<std::string> {
  SearchSpace space = SearchSpace::from_file(testing::space_path("nb201"));
  SyntheticEvaluator eval;
  bool multi() const { return GetParam() == "nsga2" || GetParam() == "linas"; }
  std::unique_ptr<Strategy> make(std::uint64_t seed) {
    nlohmann::json o = nlohmann::json::object();
    if (GetParam() == "nsga2" || GetParam() == "linas") o["population"] = 16;
    if (GetParam() == "linas") o["generations"] = 20;
    return make_strategy(GetParam(), space, o, seed);
  }
};

}  // namespace

TEST_P(Conformance, AsksForValidCanonicalArchitectures) {
  auto s = make(1);
  EXPECT_EQ(s->name(), GetParam());
  auto h = drive(*s, eval, 120, 8, false, multi());
  ASSERT_EQ(h.size(), 120U);
  for (const auto& t : h) {
    EXPECT_NO_THROW(space.validate(t.arch));
    EXPECT_EQ(space.canonical(t.arch), t.arch);
  }
}

TEST_P(Conformance, SameSeedAndHistoryGiveTheSameProposals) {
  auto a = make(7), b = make(7), c = make(8);
  auto ha = drive(*a, eval, 100, 5, false, multi());
  auto hb = drive(*b, eval, 100, 5, false, multi());
  auto hc = drive(*c, eval, 100, 5, false, multi());
  EXPECT_EQ(archs_of(ha), archs_of(hb));
  EXPECT_NE(archs_of(ha), archs_of(hc));
}

TEST_P(Conformance, StateRestoreRoundTrips) {
  auto a = make(3);
  auto first = drive(*a, eval, 48, 6, false, multi());
  const nlohmann::json st = a->state();
  auto b = make(99);  // another seed: everything must come from the state
  b->restore(nlohmann::json::parse(st.dump()));  // through text, as a checkpoint does
  EXPECT_EQ(b->state(), st);
  auto ra = drive(*a, eval, 60, 6, false, multi(), 48);
  auto rb = drive(*b, eval, 60, 6, false, multi(), 48);
  EXPECT_EQ(archs_of(ra), archs_of(rb));
}

TEST_P(Conformance, TellAcceptsAnyOrder) {
  auto a = make(5), b = make(5);
  auto ha = drive(*a, eval, 96, 8, false, multi());
  auto hb = drive(*b, eval, 96, 8, true, multi());
  EXPECT_EQ(archs_of(ha), archs_of(hb));
}

TEST_P(Conformance, FailedTrialsDoNotStopIt) {
  SyntheticEvaluator poisoned(true);
  auto s = make(2);
  auto h = drive(*s, poisoned, 150, 10, false, multi());
  EXPECT_EQ(h.size(), 150U);
  EXPECT_GT(std::count_if(h.begin(), h.end(), [](const Trial& t) { return t.failed; }), 0);
}

INSTANTIATE_TEST_SUITE_P(Builtin, Conformance, ::testing::Values("random", "rea", "nsga2", "linas"),
                         [](const auto& p) { return p.param; });

TEST(Strategies, RegistryListsAndRejectsClearly) {
  auto names = strategy_names();
  for (const char* n : {"linas", "nsga2", "random", "rea"}) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end());
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  try {
    make_strategy("annealing", space);
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("known: linas, nsga2, random, rea"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_strategy("rea", space, {{"populaton", 10}}), InvalidArgument);
  EXPECT_THROW(make_strategy("rea", space, {{"population", 10}, {"sample", 20}}), InvalidArgument);
  EXPECT_THROW(make_strategy("nsga2", space, {{"crossover", 1.5}}), InvalidArgument);
}

TEST(Strategies, LinasProposesWhatItsPredictorsFavour) {
  // On a landscape a ridge model captures exactly (acc and lat linear in the choices), the
  // rounds after the random start find better trade-offs than the random start itself.
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  SyntheticEvaluator e;
  auto s = make_strategy("linas", space, {{"population", 20}, {"generations", 30}}, 3);
  auto h = drive(*s, e, 100, 20, false, true);
  ASSERT_EQ(h.size(), 100U);
  auto best_acc = [&](std::size_t from, std::size_t to) {
    double b = -1e9;
    for (std::size_t i = from; i < to; ++i) {
      if (h[i].violation == 0) b = std::max(b, h[i].metrics.at("acc"));
    }
    return b;
  };
  EXPECT_GT(best_acc(20, 100), best_acc(0, 20));
}

TEST(Strategies, RandomWithoutRepeatsExhaustsASmallSpace) {
  auto space = SearchSpace::from_string(testing::kToyStageSpace);  // 28 architectures
  auto s = make_strategy("random", space, {}, 1);
  SyntheticEvaluator e;
  auto h = drive(*s, e, 100, 4, false, false);
  EXPECT_EQ(h.size(), 28U);
  std::set<Architecture> unique;
  for (const auto& t : h) unique.insert(t.arch);
  EXPECT_EQ(unique.size(), 28U);
}

TEST(Strategies, RegularizedEvolutionImprovesOnRandom) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  SyntheticEvaluator e;
  double rea_best = 0, random_best = 0;
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    auto rea = make_strategy("rea", space, {}, seed);
    auto rnd = make_strategy("random", space, {}, seed);
    auto best = [](const std::vector<Trial>& h) {
      double b = -1e9;
      for (const auto& t : h) b = std::max(b, t.metrics.at("acc"));
      return b;
    };
    rea_best += best(drive(*rea, e, 60, 1, false, false));
    random_best += best(drive(*rnd, e, 60, 1, false, false));
  }
  EXPECT_GT(rea_best, random_best);
}

}  // namespace nasforge
