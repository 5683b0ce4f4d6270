// Benchmarks of the torch-free core. Every tracked benchmark is compared against
// BM_Reference (fixed integer work measured in the same run) by the regression gate, so the
// gate's ratios survive a slower or busier machine. See docs/performance.md.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "nasforge/costs.h"
#include "nasforge/search_space.h"

namespace {

std::string read_space(const std::string& name) {
  std::ifstream in(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + name + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const nasforge::SearchSpace& space(const std::string& name) {
  static std::map<std::string, nasforge::SearchSpace> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, nasforge::SearchSpace::from_string(read_space(name), {}, name)).first;
  return it->second;
}

// Fixed CPU work (a xorshift chain with data-dependent branches): the yardstick the gate
// divides by, so that a uniformly slower machine does not look like a regression.
void BM_Reference(benchmark::State& state) {
  for (auto _ : state) {
    std::uint64_t x = 88172645463325252ULL, acc = 0;
    for (int i = 0; i < 20000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      acc += (x & 1) ? x >> 3 : x << 1;
    }
    benchmark::DoNotOptimize(acc);
  }
}
BENCHMARK(BM_Reference);

// Parsing + validating a shipped space from text (the file read is outside the loop).
void BM_ParseSpace(benchmark::State& state, const char* name) {
  const std::string text = read_space(name);
  for (auto _ : state) {
    auto s = nasforge::SearchSpace::from_string(text, {}, name);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK_CAPTURE(BM_ParseSpace, nb201, "nb201")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseSpace, darts, "darts")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseSpace, fbnet, "fbnet")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseSpace, mobilenetv3, "mobilenetv3")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseSpace, vit, "vit")->Unit(benchmark::kMicrosecond);

// Sampling one architecture and writing its one-hot encoding (the inner loop of random
// search and of predictor training-set generation). Target: >= 100k per second on one core.
void BM_SampleEncode(benchmark::State& state, const char* name) {
  const auto& s = space(name);
  nasforge::Rng rng(1);
  std::vector<float> buf(s.onehot_size());
  for (auto _ : state) {
    auto a = s.sample(rng);
    s.encode_onehot(a, buf.data());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_SampleEncode, nb201, "nb201");
BENCHMARK_CAPTURE(BM_SampleEncode, mobilenetv3, "mobilenetv3");

void BM_Mutate(benchmark::State& state, const char* name) {
  const auto& s = space(name);
  nasforge::Rng rng(2);
  auto a = s.sample(rng);
  for (auto _ : state) {
    a = s.mutate(a, rng);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_Mutate, nb201, "nb201");
BENCHMARK_CAPTURE(BM_Mutate, mobilenetv3, "mobilenetv3");

// Resolving an architecture to its ConcreteNetwork and counting params, MACs and memory.
void BM_ResolveCosts(benchmark::State& state, const char* name) {
  const auto& s = space(name);
  nasforge::Rng rng(3);
  std::vector<nasforge::Architecture> archs;
  for (int i = 0; i < 64; ++i) archs.push_back(s.sample(rng));
  std::size_t i = 0;
  for (auto _ : state) {
    auto c = nasforge::analytic_costs(s.resolve(archs[i++ % archs.size()]));
    benchmark::DoNotOptimize(c.macs);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_ResolveCosts, nb201, "nb201")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ResolveCosts, darts, "darts")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ResolveCosts, mobilenetv3, "mobilenetv3")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ResolveCosts, vit, "vit")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
