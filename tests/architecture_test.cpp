#include "nasforge/architecture.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <unordered_set>

#include "nasforge/error.h"

namespace nasforge {

TEST(Architecture, EqualityHashAndOrder) {
  Architecture a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4};
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.hash(), c.hash());
  EXPECT_LT(a, c);
  std::unordered_set<Architecture> set{a, b, c};
  EXPECT_EQ(set.size(), 2u);
}

TEST(Architecture, FormatsWithFmt) {
  EXPECT_EQ(fmt::format("best {}", Architecture{3, 1, 0}), "best [3,1,0]");
}

TEST(Architecture, JsonRoundTrip) {
  Architecture a{4, 0, 2};
  nlohmann::json j = a;
  EXPECT_EQ(j.dump(), "[4,0,2]");
  EXPECT_EQ(j.get<Architecture>(), a);
}

TEST(Architecture, RejectsNonIndexJson) {
  EXPECT_THROW((void)nlohmann::json::parse("[1,-2]").get<Architecture>(), InvalidArgument);
  EXPECT_THROW((void)nlohmann::json::parse("{\"a\":1}").get<Architecture>(), InvalidArgument);
  EXPECT_THROW((void)nlohmann::json::parse("[1,\"x\"]").get<Architecture>(), InvalidArgument);
}

}  // namespace nasforge
