// The spaces that ship in search_spaces/: they parse, their sizes are right, their native
// strings round-trip against the real tables in ../shared/data, and every sampled architecture
// resolves to a network with sane costs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>

#include "detail/big_uint.h"
#include "nasforge/costs.h"
#include "nasforge/search_space.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

std::string pow_str(std::uint64_t base, int exp, std::uint64_t times = 1) {
  detail::BigUint v(times);
  for (int i = 0; i < exp; ++i) v.mul(base);
  return v.to_string();
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(cell);
  return out;
}

class ShippedSpace : public ::testing::TestWithParam<const char*> {};

}  // namespace

TEST(ShippedSpaces, Nb201Has15625Architectures) {
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  EXPECT_EQ(s.decisions().size(), 6u);
  EXPECT_EQ(s.size().value, 15625u);
  std::size_t n = 0;
  s.for_each([&](const Architecture&) { ++n; });
  EXPECT_EQ(n, 15625u);
}

TEST(ShippedSpaces, DartsCountsTopologiesTimesOpsPerCell) {
  auto s = SearchSpace::from_file(testing::space_path("darts"));
  // Per cell: nodes keep 2 of 2, 3, 4, 5 inputs (1*3*6*10 = 180 topologies), 8 ops on each of
  // the 8 kept edges; normal and reduction cells are independent.
  detail::BigUint per_cell(180);
  for (int i = 0; i < 8; ++i) per_cell.mul(8);
  detail::BigUint total(1);
  total.mul(per_cell);
  total.mul(per_cell);
  EXPECT_EQ(s.size().exact, total.to_string());
  EXPECT_EQ(s.decisions().size(), 2u * (14 + 3));
}

TEST(ShippedSpaces, FbnetIs9ToThe22) {
  auto s = SearchSpace::from_file(testing::space_path("fbnet"));
  EXPECT_EQ(s.decisions().size(), 22u);
  EXPECT_EQ(s.size().exact, pow_str(9, 22));
  EXPECT_FALSE(s.size().value.has_value());
  EXPECT_NEAR(s.size().log10, 22 * std::log10(9.0), 1e-9);
}

TEST(ShippedSpaces, MobileNetV3CountsOnlyActiveBlocks) {
  auto s = SearchSpace::from_file(testing::space_path("mobilenetv3"));
  // 3 resolutions x (9^2 + 9^3 + 9^4)^5 stages.
  EXPECT_EQ(s.size().exact, pow_str(7371, 5, 3));
}

TEST(ShippedSpaces, VitCountsOnlyActiveBlocks) {
  auto s = SearchSpace::from_file(testing::space_path("vit"));
  // 3 embedding widths x sum over depth 12..14 of (2 heads x 2 ratios)^depth.
  detail::BigUint total(0);
  for (int d : {12, 13, 14}) total.add(detail::BigUint(static_cast<std::uint64_t>(std::pow(4.0, d))));
  total.mul(3);
  EXPECT_EQ(s.size().exact, total.to_string());
}

TEST_P(ShippedSpace, RandomArchitecturesResolveWithSaneCosts) {
  auto s = SearchSpace::from_file(testing::space_path(GetParam()));
  Rng rng(11);
  for (int i = 0; i < 40; ++i) {
    auto a = s.sample(rng);
    auto net = s.resolve(a);
    ASSERT_FALSE(net.layers.empty());
    auto c = analytic_costs(net);
    EXPECT_GT(c.params, 0);
    EXPECT_GT(c.macs, 0);
    EXPECT_GE(c.peak_activation_bytes, 4 * std::accumulate(net.input_shape.begin(), net.input_shape.end(),
                                                           std::int64_t{1}, std::multiplies<>()));
    // Batch scales MACs and memory, not parameters.
    auto c8 = analytic_costs(net, {.batch = 8});
    EXPECT_EQ(c8.params, c.params);
    EXPECT_EQ(c8.macs, 8 * c.macs);
    EXPECT_EQ(c8.peak_activation_bytes, 8 * c.peak_activation_bytes);
    // Every layer reads earlier layers only, and its recorded input shapes are theirs.
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
      const auto& layer = net.layers[l];
      for (std::size_t k = 0; k < layer.inputs.size(); ++k) {
        int in = layer.inputs[k];
        ASSERT_LT(in, static_cast<int>(l));
        EXPECT_EQ(layer.input_shapes[k], in < 0 ? net.input_shape : net.layers[in].output_shape);
      }
    }
    // Named JSON round-trips.
    EXPECT_EQ(s.parse_architecture(s.to_json(a).dump()), a);
  }
}

TEST_P(ShippedSpace, SameSeedSameSamples) {
  auto s = SearchSpace::from_file(testing::space_path(GetParam()));
  Rng a(5), b(5);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(a), s.sample(b));
}

INSTANTIATE_TEST_SUITE_P(All, ShippedSpace,
                         ::testing::Values("nb201", "darts", "fbnet", "mobilenetv3", "vit"));

TEST(ShippedSpaces, Nb201StringsOfTheBenchmarkRoundTrip) {
  std::string path = testing::shared_data("nb201/nb201_cifar10_200ep.csv");
  if (path.empty()) GTEST_SKIP() << "../shared/data not present";
  auto s = SearchSpace::from_file(testing::space_path("nb201"));
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::set<Architecture> seen;
  while (std::getline(in, line)) {
    auto cells = split_csv(line);
    ASSERT_GE(cells.size(), 2u);
    auto a = s.from_native(cells[1]);
    ASSERT_EQ(s.to_native(a), cells[1]);
    seen.insert(a);
  }
  EXPECT_EQ(seen.size(), 15625u);  // the table is the whole space, each architecture once
}

TEST(ShippedSpaces, FbnetOpIndexListsOfTheLatencyTableRoundTrip) {
  std::string path = testing::shared_data("fbnet/fbnet_latency_ms.csv");
  if (path.empty()) GTEST_SKIP() << "../shared/data not present";
  auto s = SearchSpace::from_file(testing::space_path("fbnet"));
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  int rows = 0;
  while (std::getline(in, line)) {
    auto cells = split_csv(line);
    ASSERT_GE(cells.size(), 3u);
    auto a = s.from_native(cells[1]);
    ASSERT_EQ(s.to_native(a), cells[1]);
    ASSERT_EQ(s.from_native(cells[2]), a) << "the names form names the same blocks";
    ++rows;
  }
  EXPECT_EQ(rows, 5000);
}

}  // namespace nasforge
