// Bad input gets one clear error naming the file, the JSON path and what was expected: the
// corpus in tests/data/bad_spaces (first line `// expect: <part of the message>`), the inputs
// the fuzzer once crashed on (tests/data/fuzz_regressions), and a few cases spelled out here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "nasforge/error.h"
#include "nasforge/search_space.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::filesystem::path> files_in(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string error_of(const std::string& text, const std::string& origin) {
  try {
    (void)SearchSpace::from_string(text, {}, origin);
  } catch (const SearchSpaceError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SearchSpaceErrors, EveryBadSpaceInTheCorpusGetsItsExpectedMessage) {
  auto files = files_in(testing::source_path("tests/data/bad_spaces"));
  ASSERT_GE(files.size(), 20u) << "the bad-space corpus is missing";
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    std::string text = read(f);
    const std::string tag = "// expect: ";
    ASSERT_EQ(text.rfind(tag, 0), 0u) << "first line must be `// expect: ...`";
    std::string expect = text.substr(tag.size(), text.find('\n') - tag.size());
    while (!expect.empty() && (expect.back() == '\r' || expect.back() == ' ')) expect.pop_back();
    try {
      (void)SearchSpace::from_file(f.string());
      ADD_FAILURE() << "parsed without error";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(expect), std::string::npos) << "message: " << msg;
      EXPECT_EQ(msg.rfind(f.string(), 0), 0u) << "the message starts with the file: " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    }
  }
}

TEST(SearchSpaceErrors, FuzzRegressionsFailCleanlyOrParse) {
  for (const auto& f : files_in(testing::source_path("tests/data/fuzz_regressions"))) {
    SCOPED_TRACE(f.filename().string());
    try {
      auto s = SearchSpace::from_file(f.string());
      Rng rng(0);
      for (int i = 0; i < 4; ++i) (void)s.resolve(s.sample(rng));
    } catch (const Error&) {
      // A clean, typed error is the contract.
    }
  }
}

TEST(SearchSpaceErrors, SyntaxErrorNamesLineAndColumn) {
  std::string msg = error_of("{\n  \"params\": {\n    \"C\": 16,,\n  }\n}", "bad.json");
  EXPECT_NE(msg.find("bad.json: JSON syntax error at line 3, column 13"), std::string::npos) << msg;
}

TEST(SearchSpaceErrors, TypeErrorNamesPathExpectedAndFound) {
  std::string msg = error_of(R"({"params": {"input": [3, 8, 8]},
      "network": [{"type": "conv", "out": 4, "kernel": "3"}]})", "x.json");
  EXPECT_EQ(msg, "x.json: network[0].kernel: expected integer for conv.kernel, found string \"3\"");
}

TEST(SearchSpaceErrors, ChoiceOptionOfTheWrongTypeIsCaughtAtParse) {
  std::string msg = error_of(R"({"params": {"input": [3, 8, 8]},
      "network": [{"type": "conv", "out": 4, "kernel": {"choice": [3, "five"]}}]})", "x.json");
  EXPECT_NE(msg.find("network[0].kernel.choice[1]: options of one choice must be of one kind"), std::string::npos) << msg;
}

TEST(SearchSpaceErrors, ShapeMismatchNamesTheLayer) {
  std::string msg = error_of(R"({"params": {"input": [3, 8, 8]},
      "network": [{"type": "conv", "out": 4, "kernel": 3}, {"type": "linear", "out": 2}]})", "x.json");
  EXPECT_NE(msg.find("x.json: network[1]: layer network[1] (linear): linear expects [F] or [T,D], found [4,8,8]"),
            std::string::npos) << msg;
}

TEST(SearchSpaceErrors, MissingFileIsNotFound) {
  EXPECT_THROW((void)SearchSpace::from_file("/nonexistent/space.json"), NotFound);
}

}  // namespace nasforge
