#include "nasforge/pareto.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nasforge/error.h"
#include "nasforge/random.h"

namespace nasforge {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Expects `f` to throw InvalidArgument whose message contains `part`.
void expect_invalid(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument containing \"" << part << "\", nothing thrown";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "message \"" << e.what() << "\" lacks \"" << part << "\"";
  }
}

std::vector<ObjectivePoint> uniform_points(std::size_t n, std::size_t m, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<ObjectivePoint> pts(n, ObjectivePoint(m));
  for (auto& p : pts) {
    for (auto& v : p) v = rng.uniform01();
  }
  return pts;
}

// Values from {0, ..., levels - 1}: many ties and duplicated points.
std::vector<ObjectivePoint> integer_points(std::size_t n, std::size_t m, std::uint64_t levels,
                                           std::uint64_t seed) {
  Rng rng(seed);
  std::vector<ObjectivePoint> pts(n, ObjectivePoint(m));
  for (auto& p : pts) {
    for (auto& v : p) v = static_cast<double>(rng.uniform(levels));
  }
  return pts;
}

// Deb's O(M N^2) fast non-dominated sort, written for clarity: the reference for the ENS code.
std::vector<std::vector<std::size_t>> brute_force_fronts(const std::vector<ObjectivePoint>& pts) {
  const std::size_t n = pts.size();
  std::vector<std::vector<std::size_t>> dominated(n);
  std::vector<std::size_t> dominators(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (i != j && dominates(pts[i], pts[j])) {
        dominated[i].push_back(j);
        ++dominators[j];
      }
    }
  }
  std::vector<std::vector<std::size_t>> fronts;
  std::vector<std::size_t> current;
  for (std::size_t i = 0; i < n; ++i) {
    if (dominators[i] == 0) current.push_back(i);
  }
  while (!current.empty()) {
    std::sort(current.begin(), current.end());
    fronts.push_back(current);
    std::vector<std::size_t> next;
    for (std::size_t i : current) {
      for (std::size_t j : dominated[i]) {
        if (--dominators[j] == 0) next.push_back(j);
      }
    }
    current = std::move(next);
  }
  return fronts;
}

// The volume of the union of boxes [p, ref] by brute force over the grid the coordinates
// define: each cell is dominated or not as a whole. Any number of objectives.
double brute_force_hypervolume(const std::vector<ObjectivePoint>& pts, const ObjectivePoint& ref) {
  const std::size_t m = ref.size();
  std::vector<ObjectivePoint> inside;
  for (const auto& p : pts) {
    bool in = true;
    for (std::size_t j = 0; j < m; ++j) in = in && p[j] < ref[j];
    if (in) inside.push_back(p);
  }
  std::vector<std::vector<double>> axes(m);
  for (std::size_t j = 0; j < m; ++j) {
    for (const auto& p : inside) axes[j].push_back(p[j]);
    axes[j].push_back(ref[j]);
    std::sort(axes[j].begin(), axes[j].end());
    axes[j].erase(std::unique(axes[j].begin(), axes[j].end()), axes[j].end());
  }
  std::vector<std::size_t> cell(m, 0);
  double volume = 0.0;
  while (true) {
    bool all_valid = true;
    for (std::size_t j = 0; j < m; ++j) all_valid = all_valid && cell[j] + 1 < axes[j].size();
    if (all_valid) {
      bool covered = false;
      for (const auto& p : inside) {
        bool dom = true;
        for (std::size_t j = 0; j < m; ++j) dom = dom && p[j] <= axes[j][cell[j]];
        if (dom) {
          covered = true;
          break;
        }
      }
      if (covered) {
        double v = 1.0;
        for (std::size_t j = 0; j < m; ++j) v *= axes[j][cell[j] + 1] - axes[j][cell[j]];
        volume += v;
      }
    }
    std::size_t j = 0;
    while (j < m && ++cell[j] >= axes[j].size()) cell[j++] = 0;
    if (j == m) break;
  }
  return volume;
}

// For integer points: the number of unit cells [c, c + 1) of {0..g-1}^m (reference g) that some
// point dominates.
double count_dominated_unit_cells(const std::vector<ObjectivePoint>& pts, std::size_t m, int g) {
  std::vector<int> c(m, 0);
  double count = 0;
  while (true) {
    for (const auto& p : pts) {
      bool dom = true;
      for (std::size_t j = 0; j < m; ++j) dom = dom && p[j] <= c[j];
      if (dom) {
        ++count;
        break;
      }
    }
    std::size_t j = 0;
    while (j < m && ++c[j] >= g) c[j++] = 0;
    if (j == m) break;
  }
  return count;
}

// Points near the simplex x + y + z = 1 (mostly mutually non-dominated), pushed outwards a little.
std::vector<ObjectivePoint> front_ish_3d(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<ObjectivePoint> pts;
  for (std::size_t i = 0; i < n; ++i) {
    double a = -std::log(1.0 - rng.uniform01());
    double b = -std::log(1.0 - rng.uniform01());
    double c = -std::log(1.0 - rng.uniform01());
    const double scale = (1.0 + 0.1 * rng.uniform01()) / (a + b + c);
    pts.push_back({a * scale, b * scale, c * scale});
  }
  return pts;
}

}  // namespace

TEST(ParetoDominance, StrictlyBetterSomewhereAndNoWorseElsewhere) {
  EXPECT_TRUE(dominates({1, 2}, {2, 3}));
  EXPECT_TRUE(dominates({1, 2}, {1, 3}));
  EXPECT_FALSE(dominates({2, 3}, {1, 2}));
  EXPECT_FALSE(dominates({1, 3}, {2, 2}));  // a trade-off
  EXPECT_FALSE(dominates({2, 2}, {1, 3}));
  EXPECT_TRUE(dominates({0, 0, -1}, {0, 0, 0}));
  EXPECT_TRUE(dominates({5}, {6}));
  EXPECT_TRUE(dominates({-kInf, 0}, {0, 0}));
}

TEST(ParetoDominance, EqualPointsDoNotDominateEachOther) {
  EXPECT_FALSE(dominates({1, 2, 3}, {1, 2, 3}));
  EXPECT_FALSE(dominates({0.0, 1}, {-0.0, 1}));
  EXPECT_FALSE(dominates({}, {}));
}

TEST(ParetoDominance, NaNNeverDominatesNorIsDominated) {
  EXPECT_FALSE(dominates({kNaN, 0}, {1, 1}));
  EXPECT_FALSE(dominates({0, 0}, {kNaN, 1}));
}

TEST(ParetoSort, HandExampleWithDuplicatesInTheSameFront) {
  const std::vector<ObjectivePoint> pts = {{1, 5}, {2, 2}, {5, 1}, {3, 3}, {2, 2},
                                           {4, 4}, {6, 6}, {3, 3}, {1, 6}};
  const auto fronts = non_dominated_sort(pts);
  const std::vector<std::vector<std::size_t>> expected = {{0, 1, 2, 4}, {3, 7, 8}, {5}, {6}};
  EXPECT_EQ(fronts, expected);
  EXPECT_EQ(pareto_front(pts), expected[0]);
}

TEST(ParetoSort, EmptyInputAndSinglePoint) {
  EXPECT_TRUE(non_dominated_sort({}).empty());
  EXPECT_TRUE(pareto_front({}).empty());
  const std::vector<std::vector<std::size_t>> one = {{0}};
  EXPECT_EQ(non_dominated_sort({{1, 2, 3}}), one);
}

TEST(ParetoSort, AllEqualPointsFormOneFront) {
  const std::vector<ObjectivePoint> pts(7, ObjectivePoint{1, 2, 3, 4});
  const auto fronts = non_dominated_sort(pts);
  ASSERT_EQ(fronts.size(), 1u);
  EXPECT_EQ(fronts[0].size(), 7u);
}

TEST(ParetoSort, OneObjectiveRanksDistinctValues) {
  const std::vector<ObjectivePoint> pts = {{3}, {1}, {2}, {1}, {3}};
  const std::vector<std::vector<std::size_t>> expected = {{1, 3}, {2}, {0, 4}};
  EXPECT_EQ(non_dominated_sort(pts), expected);
}

TEST(ParetoSort, MatchesBruteForceOnRandomData) {
  for (std::size_t m : {2u, 3u, 4u, 5u}) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
      const auto pts = uniform_points(300, m, seed * 10 + m);
      const auto expected = brute_force_fronts(pts);
      EXPECT_EQ(non_dominated_sort(pts), expected) << m << " objectives, seed " << seed;
      EXPECT_EQ(pareto_front(pts), expected[0]) << m << " objectives, seed " << seed;
    }
  }
}

TEST(ParetoSort, MatchesBruteForceWithManyTiesAndDuplicates) {
  for (std::size_t m : {1u, 2u, 3u, 5u}) {
    for (std::uint64_t levels : {2u, 3u, 5u}) {
      for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        const auto pts = integer_points(250, m, levels, seed * 100 + m * 10 + levels);
        const auto expected = brute_force_fronts(pts);
        EXPECT_EQ(non_dominated_sort(pts), expected)
            << m << " objectives, " << levels << " levels, seed " << seed;
        EXPECT_EQ(pareto_front(pts), expected[0])
            << m << " objectives, " << levels << " levels, seed " << seed;
      }
    }
  }
}

TEST(ParetoSort, MatchesBruteForceOnALargerThreeObjectiveSet) {
  const auto pts = uniform_points(2000, 3, 77);
  const auto fronts = non_dominated_sort(pts);
  EXPECT_EQ(fronts, brute_force_fronts(pts));
  EXPECT_GT(fronts.size(), 10u);  // a real multi-front case
}

TEST(ParetoCrowding, HandExample) {
  // Front members 1, 3, 0, 4 of `pts` (2 is not in the front); in sorted order of objective 0:
  // (0,5) (1,3) (2,2) (4,0). Objective 0 (range 4): (1,3) gets (2-0)/4, (2,2) gets (4-1)/4.
  // Objective 1 (range 5): (2,2) gets (3-0)/5, (1,3) gets (5-2)/5.
  const std::vector<ObjectivePoint> pts = {{2, 2}, {4, 0}, {9, 9}, {0, 5}, {1, 3}};
  const auto d = crowding_distance(pts, {1, 3, 0, 4});
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0], kInf);
  EXPECT_EQ(d[1], kInf);
  EXPECT_NEAR(d[2], 0.75 + 0.6, 1e-12);
  EXPECT_NEAR(d[3], 0.5 + 0.6, 1e-12);
}

TEST(ParetoCrowding, ZeroRangeObjectivesContributeNothing) {
  const std::vector<ObjectivePoint> line = {{0, 1}, {1, 1}, {2, 1}, {4, 1}};
  const auto d = crowding_distance(line, {0, 1, 2, 3});
  EXPECT_EQ(d[0], kInf);
  EXPECT_DOUBLE_EQ(d[1], 0.5);
  EXPECT_DOUBLE_EQ(d[2], 0.75);
  EXPECT_EQ(d[3], kInf);

  const std::vector<ObjectivePoint> same(4, ObjectivePoint{3, 3});
  EXPECT_EQ(crowding_distance(same, {0, 1, 2, 3}), std::vector<double>(4, 0.0));
}

TEST(ParetoCrowding, SmallFrontsAreAllBoundary) {
  const std::vector<ObjectivePoint> pts = {{0, 1}, {1, 0}};
  EXPECT_EQ(crowding_distance(pts, {1, 0}), std::vector<double>(2, kInf));
  EXPECT_EQ(crowding_distance(pts, {0}), std::vector<double>(1, kInf));
  EXPECT_TRUE(crowding_distance(pts, {}).empty());
}

TEST(ParetoHypervolume, HandExamples) {
  EXPECT_DOUBLE_EQ(hypervolume({{3}, {1}, {5}}, {4}), 3.0);
  // 2-D: boxes 3 x 1 and 2 x 3 overlapping in 2 x 1; (3,3) is dominated, (0,4) touches the
  // reference.
  EXPECT_DOUBLE_EQ(hypervolume({{1, 3}, {2, 1}}, {4, 4}), 7.0);
  EXPECT_DOUBLE_EQ(hypervolume({{1, 3}, {3, 3}, {2, 1}, {0, 4}, {2, 1}}, {4, 4}), 7.0);
  // 3-D: boxes 3x3x1 = 9 and 2x2x3 = 12 overlapping in 2x2x1 = 4; (3,3,3) is dominated,
  // (5,0,0) lies beyond the reference.
  EXPECT_DOUBLE_EQ(hypervolume({{1, 1, 3}, {2, 2, 1}}, {4, 4, 4}), 17.0);
  EXPECT_DOUBLE_EQ(hypervolume({{1, 1, 3}, {3, 3, 3}, {2, 2, 1}, {5, 0, 0}}, {4, 4, 4}), 17.0);
  EXPECT_DOUBLE_EQ(hypervolume({}, {1, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(hypervolume({{2, 2, 2}}, {1, 1, 1}), 0.0);
  // A scaled front {(0,1), (1,0)} against the customary reference 1.1.
  EXPECT_NEAR(hypervolume({{0, 1}, {1, 0}}, {1.1, 1.1}), 0.21, 1e-12);
}

TEST(ParetoHypervolume, MatchesUnitCellCountOnIntegerPoints) {
  for (std::size_t m : {2u, 3u}) {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      const auto pts = integer_points(1 + seed % 12, m, 6, seed * 7 + m);
      const ObjectivePoint ref(m, 6.0);
      EXPECT_DOUBLE_EQ(hypervolume(pts, ref), count_dominated_unit_cells(pts, m, 6))
          << m << " objectives, seed " << seed;
    }
  }
}

TEST(ParetoHypervolume, MatchesGridBruteForceOnRandomRealPoints) {
  for (std::size_t m : {1u, 2u, 3u}) {
    for (std::uint64_t seed = 1; seed <= 15; ++seed) {
      // Some points lie beyond the reference (coordinates up to 1.2 against 1.0).
      auto pts = uniform_points(5 + seed, m, seed * 31 + m);
      for (auto& p : pts) {
        for (auto& v : p) v *= 1.2;
      }
      const ObjectivePoint ref(m, 1.0);
      EXPECT_NEAR(hypervolume(pts, ref), brute_force_hypervolume(pts, ref), 1e-12)
          << m << " objectives, seed " << seed;
    }
  }
}

TEST(ParetoHypervolume, ThreeObjectivesOnALargerFrontMatchesBruteForce) {
  const auto pts = front_ish_3d(60, 5);
  const ObjectivePoint ref = {1.1, 1.1, 1.1};
  EXPECT_NEAR(hypervolume(pts, ref), brute_force_hypervolume(pts, ref), 1e-10);
}

TEST(ParetoHypervolume, MoreThanThreeObjectivesPointsToTheApproximation) {
  expect_invalid([] { (void)hypervolume({{1, 1, 1, 1}}, {2, 2, 2, 2}); }, "hypervolume_approx");
}

TEST(ParetoHypervolumeApprox, WithinAFewPercentOfTheExactValueIn3D) {
  const auto pts = front_ish_3d(80, 9);
  const ObjectivePoint ref = {1.1, 1.1, 1.1};
  const double exact = hypervolume(pts, ref);
  const double approx = hypervolume_approx(pts, ref, 200000, 42);
  EXPECT_NEAR(approx, exact, 0.02 * exact);
}

TEST(ParetoHypervolumeApprox, WithinAFewPercentOfBruteForceIn5D) {
  const auto pts = integer_points(25, 5, 4, 3);
  const ObjectivePoint ref(5, 4.0);
  const double exact = count_dominated_unit_cells(pts, 5, 4);
  ASSERT_GT(exact, 0.0);
  EXPECT_NEAR(hypervolume_approx(pts, ref, 200000, 7), exact, 0.03 * exact);
}

TEST(ParetoHypervolumeApprox, SameSeedSameResult) {
  const auto pts = front_ish_3d(40, 2);
  const ObjectivePoint ref = {1.1, 1.1, 1.1};
  const double a = hypervolume_approx(pts, ref, 10000, 123);
  const double b = hypervolume_approx(pts, ref, 10000, 123);
  const double c = hypervolume_approx(pts, ref, 10000, 124);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(hypervolume_approx({{2, 2}}, {1, 1}, 100, 1), 0.0);
  expect_invalid([&] { (void)hypervolume_approx(pts, ref, 0, 1); }, "at least one sample");
}

TEST(ParetoIgd, HandExample) {
  const std::vector<ObjectivePoint> approx = {{0, 0}, {2, 2}};
  const std::vector<ObjectivePoint> ref = {{0, 1}, {3, 4}};
  // (0,1) -> (0,0): 1; (3,4) -> (2,2): sqrt(5).
  EXPECT_DOUBLE_EQ(igd(approx, ref), (1.0 + std::sqrt(5.0)) / 2.0);
  EXPECT_DOUBLE_EQ(igd(ref, ref), 0.0);
  EXPECT_EQ(igd({}, ref), kInf);
  expect_invalid([&] { (void)igd(approx, {}); }, "non-empty reference front");
  expect_invalid([&] { (void)igd({{0, 0, 0}}, ref); }, "found 3 in point 0");
}

TEST(ParetoScaling, MapsTheFrontOntoTheUnitBox) {
  const std::vector<ObjectivePoint> front = {{1, 10, 5}, {3, 10, 5}, {2, 20, 5}};
  const ObjectiveScaling s = scaling_of(front);
  EXPECT_EQ(s.lo, (std::vector<double>{1, 10, 5}));
  EXPECT_EQ(s.hi, (std::vector<double>{3, 20, 5}));
  EXPECT_EQ(s.apply({2, 15, 5}), (ObjectivePoint{0.5, 0.5, 0}));
  EXPECT_EQ(s.apply({1, 20, 7}), (ObjectivePoint{0, 1, 0}));  // zero range maps to 0
  EXPECT_EQ(s.apply({5, 0, 5}), (ObjectivePoint{2, -1, 0}));  // outside the front: outside [0,1]

  // The customary report: the scaled true front against reference 1.1 in every objective.
  const std::vector<ObjectivePoint> truth = {{10, 300}, {20, 200}, {30, 100}};
  const ObjectiveScaling t = scaling_of(truth);
  std::vector<ObjectivePoint> scaled;
  for (const auto& p : truth) scaled.push_back(t.apply(p));
  EXPECT_NEAR(hypervolume(scaled, {1.1, 1.1}), 1.1 * 0.1 + 0.6 * 0.5 + 0.1 * 0.5, 1e-12);

  expect_invalid([] { (void)scaling_of({}); }, "non-empty front");
  expect_invalid([&] { (void)s.apply({1, 2}); }, "expected a point with 3 objectives, found 2");
}

TEST(ParetoErrors, NaNIsRejectedNamingThePoint) {
  const std::vector<ObjectivePoint> pts = {{1, 2}, {3, 4}, {kNaN, 1}};
  expect_invalid([&] { (void)non_dominated_sort(pts); }, "objective 0 of point 2");
  expect_invalid([&] { (void)pareto_front(pts); }, "point 2");
  expect_invalid([&] { (void)crowding_distance(pts, {0, 2}); }, "point 2");
  expect_invalid([&] { (void)hypervolume(pts, {5, 5}); }, "point 2");
  expect_invalid([&] { (void)hypervolume({{1, 1}}, {5, kNaN}); }, "reference point");
  expect_invalid([&] { (void)hypervolume_approx(pts, {5, 5}, 10, 1); }, "point 2");
  expect_invalid([&] { (void)igd(pts, {{0, 0}}); }, "point 2");
  expect_invalid([&] { (void)scaling_of(pts); }, "point 2");
}

TEST(ParetoErrors, SizeMismatchesAreRejected) {
  expect_invalid([] { (void)dominates({1, 2}, {1}); }, "found 2 and 1");
  expect_invalid(
      [] {
        (void)non_dominated_sort({{1, 2}, {1, 2}, {1, 2, 3}});
      },
      "expected 2 objectives per point, found 3 in point 2 of the points");
  expect_invalid([] { (void)non_dominated_sort({{}, {}}); }, "at least one objective");
  expect_invalid([] { (void)hypervolume({{1, 2}}, {3, 3, 3}); }, "found 2 in point 0");
  expect_invalid([] { (void)hypervolume({{1, 2}}, {}); }, "at least one objective");
  expect_invalid([] { (void)crowding_distance({{1, 2}, {1}}, {0, 1}); }, "found 1 in point 1");
  expect_invalid([] { (void)crowding_distance({{1, 2}}, {0, 3}); }, "found 3 at position 1");
}

}  // namespace nasforge
