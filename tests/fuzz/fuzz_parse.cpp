// libFuzzer target for the search-space DSL: SearchSpace::from_string must never crash, hang or
// throw anything but nasforge::Error on any input. When the input parses, a few sampled
// architectures go through everything that depends on the space (resolve, analytic costs,
// native and JSON round trips), and the invariants the API documents are checked: a failure
// of one of those is a bug too, reported with abort() so libFuzzer keeps the input.
//
// Build: cmake -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
//          -DNASFORGE_BUILD_FUZZERS=ON -DNASFORGE_WITH_TORCH=OFF -DNASFORGE_BUILD_TESTS=OFF
//          -DNASFORGE_BUILD_BENCHMARKS=OFF -DNASFORGE_BUILD_EXAMPLES=OFF
//        ninja -C build-fuzz -j1 nasforge_fuzz_parse
// Run:   build-fuzz/bin/nasforge_fuzz_parse -dict=tests/fuzz/dsl.dict -max_len=4096 -timeout=5
//          -rss_limit_mb=2048 CORPUS_DIR search_spaces tests/data/bad_spaces
//          tests/data/fuzz_regressions
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nasforge/architecture.h"
#include "nasforge/concrete_network.h"
#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/random.h"
#include "nasforge/search_space.h"

namespace {

[[noreturn]] void invariant_failed(const char* what, const std::string& detail) {
  std::fprintf(stderr, "nasforge_fuzz_parse: invariant violated: %s\n  %s\n", what, detail.c_str());
  std::abort();
}

// Everything below may throw nasforge::Error only where the API says it may.
void exercise(const nasforge::SearchSpace& space, std::uint64_t seed) {
  nasforge::Rng rng(seed);
  const auto native = space.native_format();
  for (int i = 0; i < 3; ++i) {
    const nasforge::Architecture arch = space.sample(rng);

    // Resolving a sampled architecture may fail with a shape error (only the extreme
    // architectures are checked at load); that is a clean SearchSpaceError.
    std::optional<nasforge::ConcreteNetwork> net;
    try {
      net = space.resolve(arch);
    } catch (const nasforge::SearchSpaceError&) {
    }
    if (net) {
      // costs.h: cannot throw for networks built by SearchSpace::resolve.
      try {
        const nasforge::AnalyticCosts costs = nasforge::analytic_costs(*net);
        (void)costs.flops();
      } catch (const nasforge::Error& e) {
        invariant_failed("analytic_costs threw on a resolved network", e.what());
      }
    }

    // Named JSON form: parse_architecture(to_json(a)) gives `a` back (a is canonical).
    const std::string named = space.to_json(arch).dump();
    try {
      if (space.parse_architecture(named) != arch) {
        invariant_failed("parse_architecture(to_json(a)) != a", named);
      }
    } catch (const nasforge::Error& e) {
      invariant_failed("parse_architecture(to_json(a)) threw", named + ": " + e.what());
    }
    // Index form.
    try {
      if (space.parse_architecture(arch.to_string()) != arch) {
        invariant_failed("parse_architecture(a.to_string()) != a", arch.to_string());
      }
    } catch (const nasforge::Error& e) {
      invariant_failed("parse_architecture(a.to_string()) threw", arch.to_string() + ": " + e.what());
    }

    // Native strings encode a subset of the decisions (op decisions), so compare the strings.
    if (native) {
      const std::string text = space.to_native(arch);
      try {
        const nasforge::Architecture back = space.from_native(text);
        if (space.to_native(back) != text) invariant_failed("to_native(from_native(s)) != s", text);
      } catch (const nasforge::Error& e) {
        invariant_failed("from_native(to_native(a)) threw", text + ": " + e.what());
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<nasforge::SearchSpace> space;
  try {
    space = nasforge::SearchSpace::from_string(text, {}, "fuzz.json");
  } catch (const nasforge::Error&) {
    return 0;  // a clean, typed error is the contract; anything else escapes and crashes
  }
  (void)space->size();
  (void)space->summary();
  exercise(*space, size);
  return 0;
}
