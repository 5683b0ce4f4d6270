#include "nasforge/value.h"

#include <gtest/gtest.h>

#include "nasforge/error.h"

namespace nasforge {

TEST(Value, KeepsItsKindAndConvertsNumbers) {
  Value i(3), d(0.25), b(true), s("relu");
  EXPECT_TRUE(i.is_int());
  EXPECT_EQ(i.as_int(), 3);
  EXPECT_DOUBLE_EQ(i.as_double(), 3.0);
  EXPECT_TRUE(d.is_double());
  EXPECT_DOUBLE_EQ(d.as_double(), 0.25);
  EXPECT_TRUE(b.as_bool());
  EXPECT_EQ(s.as_string(), "relu");
  EXPECT_EQ(s.repr(), "\"relu\"");
  EXPECT_EQ(s.str(), "relu");
  EXPECT_EQ(d.str(), "0.25");
}

TEST(Value, WrongKindThrowsWithWhatWasFound) {
  try {
    (void)Value("3").as_int();
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expected an integer, found string \"3\""), std::string::npos);
  }
  EXPECT_THROW((void)Value(1).as_string(), InvalidArgument);
  EXPECT_THROW((void)Value(1.5).as_bool(), InvalidArgument);
}

TEST(Value, ComparesByKindThenValue) {
  EXPECT_EQ(Value(3), Value(std::int64_t{3}));
  EXPECT_NE(Value(3), Value(3.0));
  EXPECT_LT(Value(2), Value(3));
}

TEST(Check, ThrowsInvalidArgumentWithConditionAndLocation) {
  try {
    int n = -1;
    NASFORGE_CHECK(n > 0, "expected n > 0, got {}", n);
    FAIL();
  } catch (const InvalidArgument& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("expected n > 0, got -1"), std::string::npos);
    EXPECT_NE(m.find("n > 0"), std::string::npos);
    EXPECT_NE(m.find("value_test.cpp"), std::string::npos);
  }
}

}  // namespace nasforge
