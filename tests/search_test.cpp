// The search driver: budgets, failures, results on disk, exact resume; the table evaluator on
// the shared NAS-Bench-201 tables.
#include "nasforge/search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "detail/files.h"
#include "nasforge/cost_model.h"
#include "nasforge/error.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {
namespace fs = std::filesystem;

class CountingEvaluator final : public Evaluator {
 public:
  Metrics evaluate(const Architecture& a) const override {
    if (a[0] == 1 && a[1] == 1) throw EvaluationError("edge 0 and 1 both skip: refused");
    double acc = 0, lat = 1;
    for (std::size_t d = 0; d < a.size(); ++d) acc += a[d] * (d + 1.0), lat += a[d] * (6.0 - d);
    return {{"acc", acc}, {"lat", lat}, {"cost", 2.0}};
  }
  std::vector<std::string> metric_names() const override { return {"acc", "cost", "lat"}; }
};

fs::path fresh(const std::string& name) {
  auto d = fs::temp_directory_path() / ("nasforge_search_" + name + "_" + std::to_string(::getpid()));
  detail::remove_tree(d);
  return d;
}

}  // namespace

// The driver's folders are cleared with detail::remove_tree (not std::filesystem::remove_all,
// which pip LibTorch shadows): it removes a tree, leaves what a link inside points to, and
// accepts a path that is not there.
TEST(Files, RemoveTreeRemovesATreeButNotWhatItsLinksPointTo) {
  const auto root = fresh("remove_tree"), outside = fresh("remove_tree_outside");
  fs::create_directories(root / "a" / "b");
  fs::create_directories(outside);
  std::ofstream(root / "a" / "b" / "f.txt") << "x";
  std::ofstream(root / "g.txt") << "y";
  std::ofstream(outside / "keep.txt") << "z";
  fs::create_directory_symlink(outside, root / "a" / "link");
  detail::remove_tree(root);
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  EXPECT_NO_THROW(detail::remove_tree(root));  // gone already: nothing to do
  std::ofstream(root.string() + ".file") << "w";  // a plain file is removed too
  detail::remove_tree(root.string() + ".file");
  EXPECT_FALSE(fs::exists(root.string() + ".file"));
  detail::remove_tree(outside);
}

namespace {

SearchOptions two_objectives(std::uint64_t evaluations) {
  SearchOptions o;
  o.objectives = {parse_objective("acc:max"), parse_objective("lat:min")};
  o.constraints = {parse_constraint("lat<=40")};
  o.budget.evaluations = evaluations;
  return o;
}

}  // namespace

TEST(Search, ParsesObjectivesAndConstraints) {
  EXPECT_EQ(parse_objective("valid_acc:max").metric, "valid_acc");
  EXPECT_TRUE(parse_objective("valid_acc:max").maximize);
  EXPECT_FALSE(parse_objective("pixel3:min").maximize);
  EXPECT_THROW(parse_objective("pixel3"), InvalidArgument);
  EXPECT_THROW(parse_objective("pixel3:low"), InvalidArgument);
  auto c = parse_constraint("pixel3<=10.5");
  EXPECT_EQ(c.metric, "pixel3");
  EXPECT_TRUE(c.at_most);
  EXPECT_EQ(c.bound, 10.5);
  EXPECT_EQ(c.violation({{"pixel3", 12.0}}), 1.5);
  EXPECT_EQ(c.violation({{"pixel3", 9.0}}), 0.0);
  EXPECT_FALSE(parse_constraint("acc>=90").at_most);
  EXPECT_THROW(parse_constraint("pixel3<10"), InvalidArgument);
  EXPECT_THROW(parse_constraint("pixel3<=ten"), InvalidArgument);
}

TEST(Search, RecordsFailuresWritesResultsAndHonoursTheBudget) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  CountingEvaluator e;
  auto s = make_strategy("nsga2", space, {{"population", 20}}, 1);
  auto o = two_objectives(100);
  o.out_dir = fresh("results").string();
  o.threads = 2;
  auto r = run_search(space, *s, e, o);
  ASSERT_EQ(r.history.size(), 100U);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < r.history.size(); ++i) {
    EXPECT_EQ(r.history[i].id, i);
    failed += r.history[i].failed;
  }
  EXPECT_GT(failed, 0U);
  ASSERT_FALSE(r.front.empty());
  for (std::size_t i : r.front) EXPECT_LE(r.history[i].metrics.at("lat"), 40.0);
  EXPECT_EQ(r.best, r.front);
  for (const char* f : {"result.json", "history.csv", "front.svg", "checkpoint.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;
  }
  std::ifstream in(fs::path(o.out_dir) / "result.json");
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["evaluations"], 100);
  EXPECT_EQ(j["front"].size(), r.front.size());
  EXPECT_TRUE(j["front"][0]["arch"].is_string());  // NB201's native string
  EXPECT_TRUE(j["front"][0]["metrics"].contains("acc"));
  EXPECT_EQ(j["history"].size(), 100U);
  detail::remove_tree(o.out_dir);
}

TEST(Search, NonFiniteMetricsFailTheTrialNotTheSearch) {
  class Diverging final : public Evaluator {
   public:
    Metrics evaluate(const Architecture& a) const override {
      double acc = a[0] == 3 ? std::nan("") : static_cast<double>(a[0] + a[1]);
      return {{"acc", acc}, {"lat", a[2] == 4 ? INFINITY : 1.0 + a[2]}};
    }
    std::vector<std::string> metric_names() const override { return {"acc", "lat"}; }
  } e;
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  for (const char* name : {"random", "rea", "nsga2", "linas"}) {
    auto o = two_objectives(120);
    if (std::string(name) == "rea") o.objectives.resize(1);
    o.checkpoint_every = 20;
    o.out_dir = fresh(std::string("nan_") + name).string();
    auto r = run_search(space, *make_strategy(name, space, {}, 1), e, o);
    ASSERT_EQ(r.history.size(), 120U) << name;
    std::size_t failed = 0;
    for (const auto& t : r.history) {
      failed += t.failed;
      if (t.failed) {
        EXPECT_NE(t.error.find("not a finite number"), std::string::npos) << t.error;
      }
    }
    EXPECT_GT(failed, 0U) << name;
    o.resume = true;  // the checkpoint of such a run reads back
    EXPECT_EQ(run_search(space, *make_strategy(name, space, {}, 1), e, o).history.size(), 120U);
    detail::remove_tree(o.out_dir);
  }
}

TEST(Search, SimulatedTimeBudgetAndEarlyStop) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  CountingEvaluator e;
  auto s = make_strategy("random", space, {}, 1);
  SearchOptions o;
  o.objectives = {parse_objective("acc:max")};
  o.budget.evaluations = 0;
  o.budget.cost_metric = "cost";
  o.budget.simulated_seconds = 50;  // 2 s per successful evaluation
  o.batch = 1;
  auto r = run_search(space, *s, e, o);
  EXPECT_GE(r.simulated_seconds, 50.0);
  EXPECT_LT(r.simulated_seconds, 52.0);
  ASSERT_EQ(r.best.size(), 1U);
  auto s2 = make_strategy("random", space, {}, 1);
  o.budget.evaluations = 1000;
  o.budget.simulated_seconds = 0;
  o.on_progress = [](const SearchProgress& p) { return p.evaluations >= 10; };
  EXPECT_EQ(run_search(space, *s2, e, o).history.size(), 10U);
}

TEST(Search, ResumesToExactlyTheUninterruptedResult) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  CountingEvaluator e;
  for (const char* name : {"random", "rea", "nsga2"}) {
    nlohmann::json opts = std::string(name) == "nsga2" ? nlohmann::json{{"population", 12}} : nlohmann::json::object();
    auto o = two_objectives(90);
    if (std::string(name) == "rea") o.objectives.resize(1);
    o.checkpoint_every = 10;
    auto full = run_search(space, *make_strategy(name, space, opts, 4), e, o);
    // Interrupted after 40 trials (the checkpoint of the last batch is on disk), then resumed
    // by a fresh strategy object, as a new process would.
    o.out_dir = fresh(std::string("resume_") + name).string();
    auto o1 = o;
    o1.on_progress = [](const SearchProgress& p) { return p.evaluations >= 40; };
    run_search(space, *make_strategy(name, space, opts, 4), e, o1);
    o.resume = true;
    auto resumed = run_search(space, *make_strategy(name, space, opts, 12345), e, o);
    EXPECT_TRUE(resumed.resumed);
    ASSERT_EQ(resumed.history.size(), full.history.size()) << name;
    for (std::size_t i = 0; i < full.history.size(); ++i) {
      EXPECT_EQ(resumed.history[i].arch, full.history[i].arch) << name << " trial " << i;
      EXPECT_EQ(resumed.history[i].metrics, full.history[i].metrics);
    }
    EXPECT_EQ(resumed.front, full.front);
    detail::remove_tree(o.out_dir);
  }
}

TEST(Search, RejectsUnknownMetricsAndForeignCheckpoints) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  CountingEvaluator e;
  auto o = two_objectives(10);
  o.objectives[1].metric = "latency";
  try {
    run_search(space, *make_strategy("random", space), e, o);
    FAIL();
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("objective \"latency\": the evaluator has no such metric (it has: acc, cost, lat)"),
              std::string::npos) << err.what();
  }
  o = two_objectives(10);
  o.out_dir = fresh("foreign").string();
  run_search(space, *make_strategy("random", space), e, o);
  o.resume = true;
  EXPECT_THROW(run_search(space, *make_strategy("rea", space), e, o), InvalidArgument);
  detail::remove_tree(o.out_dir);
}

TEST(TableEvaluator, ReadsTheSharedNasBench201Tables) {
  auto acc = testing::shared_data("nb201/nb201_cifar10_200ep.csv");
  auto lat = testing::shared_data("nb201/nb201_latency_ms.csv");
  if (acc.empty() || lat.empty()) GTEST_SKIP() << "../shared/data is not here";
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  TableEvaluator t(space);
  t.add_csv(acc);
  t.add_csv(lat, {"pixel3", "gold_6240"});
  EXPECT_EQ(t.size(), 15625U);
  EXPECT_TRUE(t.complete());
  auto m = t.evaluate(space.from_native(
      "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"));
  EXPECT_NEAR(m.at("valid_acc"), 90.76933332, 1e-9);  // row 1 of the table
  EXPECT_NEAR(m.at("pixel3"), 17.2381, 1e-9);
  EXPECT_EQ(m.count("silver_4114"), 0U);
  EXPECT_THROW(t.add_csv(acc, {"valid_acc"}), InvalidArgument);  // valid_acc twice
  TableEvaluator both(space);  // every numeric column of both: nb201_index is joined, not doubled
  both.add_csv(acc);
  both.add_csv(lat);
  EXPECT_EQ(both.evaluate(space.from_native("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")).size(), 5U + 16U);
  EXPECT_THROW(t.add_csv(lat, {"no_such_device"}), InvalidArgument);
}

TEST(CompositeEvaluator, MergesTablesAndCostModels) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  auto counting = std::make_shared<CountingEvaluator>();
  std::shared_ptr<const Evaluator> params = make_analytic_cost_model(space, "params");
  CompositeEvaluator both({counting, params});
  EXPECT_EQ(both.metric_names(), (std::vector<std::string>{"acc", "cost", "lat", "params"}));
  auto arch = space.from_native("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|");
  auto m = both.evaluate(arch);
  EXPECT_EQ(m.at("params"), 615386.0);
  EXPECT_EQ(m.count("acc"), 1U);
  EXPECT_THROW(CompositeEvaluator({counting, counting}), InvalidArgument);  // "acc" twice
  auto o = two_objectives(30);
  o.constraints = {parse_constraint("params<=1000000")};
  auto r = run_search(space, *make_strategy("nsga2", space, {{"population", 10}}, 1), both, o);
  for (std::size_t i : r.front) EXPECT_LE(r.history[i].metrics.at("params"), 1e6);
}

TEST(TableEvaluator, ErrorsNameFileAndLine) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  auto dir = fresh("tables");
  fs::create_directories(dir);
  std::ofstream(dir / "bad.csv") << "arch_str,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n|foo~0|,2\n";
  TableEvaluator t(space);
  try {
    t.add_csv((dir / "bad.csv").string());
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:3"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "ok.csv") << "arch_str,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n";
  TableEvaluator u(space);
  u.add_csv((dir / "ok.csv").string());
  EXPECT_THROW(u.evaluate(space.from_native("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")), EvaluationError);
  EXPECT_THROW(u.add_csv((dir / "missing.csv").string()), NotFound);
  detail::remove_tree(dir);
}

}  // namespace nasforge
