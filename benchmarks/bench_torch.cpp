// Benchmarks of nasforge::torch: the supernet's single-path step against the extracted
// network's (the overhead of weight sharing), on one thread. See docs/performance.md.
#include <benchmark/benchmark.h>

#include <torch/torch.h>

#include "nasforge/search_space.h"
#include "nasforge/torch/supernet.h"

namespace {

const char* kArch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

nasforge::SearchSpace nb201() {
  std::string path = NASFORGE_SOURCE_DIR;
  path += "/search_spaces/nb201.json";
  return nasforge::SearchSpace::from_file(path, {{"N", "1"}});
}

template <typename Net>
void step(Net& net, const torch::Tensor& x, const torch::Tensor& y) {
  net->zero_grad();
  auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
  loss.backward();
  benchmark::DoNotOptimize(loss.data_ptr());
}

// Forward + backward of one architecture through the supernet (single-path), batch 64.
void BM_SinglePathStep_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201();
  torch::manual_seed(0);
  nasforge::Supernet net(space);
  net->set_architecture(space.parse_architecture(kArch));
  auto x = torch::randn({64, 3, 32, 32});
  auto y = torch::randint(0, 10, {64});
  for (auto _ : state) step(net, x, y);
}
BENCHMARK(BM_SinglePathStep_nb201)->Unit(benchmark::kMillisecond);

// The same architecture extracted into a standalone network.
void BM_ExtractedStep_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201();
  torch::manual_seed(0);
  nasforge::Supernet super(space);
  auto net = super->extract(space.parse_architecture(kArch));
  net->train();
  auto x = torch::randn({64, 3, 32, 32});
  auto y = torch::randint(0, 10, {64});
  for (auto _ : state) step(net, x, y);
}
BENCHMARK(BM_ExtractedStep_nb201)->Unit(benchmark::kMillisecond);

// A mixed-mode (DARTS) forward + backward of the whole supernet, batch 64.
void BM_MixedStep_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201();
  torch::manual_seed(0);
  nasforge::Supernet net(space);
  net->set_mode(nasforge::SupernetMode::kMixed);
  auto x = torch::randn({64, 3, 32, 32});
  auto y = torch::randint(0, 10, {64});
  for (auto _ : state) step(net, x, y);
}
BENCHMARK(BM_MixedStep_nb201)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
