// Benchmarks of nasforge::torch, on one thread (see docs/performance.md):
// - the supernet's single-path step against the extracted network's (the overhead of weight
//   sharing), on NB201 (op decisions) and MobileNetV3 (elastic: sliced weights);
// - the mixed-mode forward against the sum of its candidate ops run alone (the overhead of
//   mixing).
// - a first-order DARTS step (architecture step + weight step) on the full NB201 search network
//   (C = 16, N = 5, batch 64, 3x32x32) against its op modules run alone (the framework's
//   overhead), and PC-DARTS's step (K = 4) with the peak tensor memory of both as counters.
// scripts/bench_gate.sh checks the ratios against benchmarks/baseline_torch.json.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "memory_tracker.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/darts.h"
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

// MobileNetV3 (Once-for-All) at 96x96 and 10 classes, so that a step takes ~1 s on one thread.
nasforge::SearchSpace mbv3() {
  std::string path = NASFORGE_SOURCE_DIR;
  path += "/search_spaces/mobilenetv3.json";
  return nasforge::SearchSpace::from_file(path, {{"resolution", "96"}, {"classes", "10"}});
}

// A mid-sized sub-network: depth 3 everywhere, kernel 5, expansion 4 (every option sliced).
nasforge::Architecture mbv3_arch(const nasforge::SearchSpace& space) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& d : space.decisions()) {
    if (d.kind == nasforge::DecisionKind::kDepth) j[d.name] = 3;
    else if (d.path.find("kernel") != std::string::npos) j[d.name] = 5;
    else if (d.path.find("expansion") != std::string::npos) j[d.name] = 4;
  }
  return space.parse_architecture(j.dump());
}

void BM_SinglePathStep_mbv3(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = mbv3();
  torch::manual_seed(0);
  nasforge::Supernet net(space);
  net->set_architecture(mbv3_arch(space));
  auto x = torch::randn({64, 3, 96, 96});
  auto y = torch::randint(0, 10, {64});
  for (auto _ : state) step(net, x, y);
}
BENCHMARK(BM_SinglePathStep_mbv3)->Unit(benchmark::kMillisecond);

void BM_ExtractedStep_mbv3(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = mbv3();
  torch::manual_seed(0);
  nasforge::Supernet super(space);
  auto net = super->extract(mbv3_arch(space));
  net->train();
  auto x = torch::randn({64, 3, 96, 96});
  auto y = torch::randint(0, 10, {64});
  for (auto _ : state) step(net, x, y);
}
BENCHMARK(BM_ExtractedStep_mbv3)->Unit(benchmark::kMillisecond);

// The mixed-mode forward of the NB201 supernet (train mode, no autograd), batch 64.
void BM_MixedForward_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201();
  torch::manual_seed(0);
  nasforge::Supernet net(space);
  net->set_mode(nasforge::SupernetMode::kMixed);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({64, 3, 32, 32});
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x).data_ptr());
}
BENCHMARK(BM_MixedForward_nb201)->Unit(benchmark::kMillisecond);

// Every op module of `net` (not the structural layers) with a random batch-64 input of its
// shape, channels-last for images when asked.
std::vector<std::pair<std::size_t, torch::Tensor>> op_inputs(nasforge::SupernetImpl& net, bool channels_last) {
  std::vector<std::pair<std::size_t, torch::Tensor>> work;
  const auto& layers = net.structure().layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto& op = layers[i].op;
    if (op == "mixed" || op == "select" || op == "sum" || op == "concat" || op == "zero") continue;
    std::vector<std::int64_t> shape{64};
    shape.insert(shape.end(), layers[i].input_shapes[0].begin(), layers[i].input_shapes[0].end());
    auto x = torch::randn(shape);
    if (channels_last && x.dim() == 4) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
    work.emplace_back(i, x);
  }
  return work;
}

// Every op module of the same supernet (all candidates, stem, blocks, head) run alone on an
// input of its shape: what the mixed forward would cost with free mixing.
void BM_CandidatesAlone_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201();
  torch::manual_seed(0);
  nasforge::Supernet net(space);
  torch::NoGradGuard no_grad;
  auto work = op_inputs(*net, /*channels_last=*/false);
  for (auto _ : state) {
    for (auto& [i, x] : work) benchmark::DoNotOptimize(net->forward_layer(i, x).data_ptr());
  }
}
BENCHMARK(BM_CandidatesAlone_nb201)->Unit(benchmark::kMillisecond);

// ---- differentiable search: the full NB201 search network ---------------------------------

nasforge::SearchSpace nb201_full() {
  std::string path = NASFORGE_SOURCE_DIR;
  path += "/search_spaces/nb201.json";
  return nasforge::SearchSpace::from_file(path);  // C = 16, N = 5, 3x32x32
}

// One first-order step: architecture step on a validation batch, then a weight step.
void darts_step(benchmark::State& state, const std::string& algorithm) {
  torch::set_num_threads(1);
  auto space = nb201_full();
  nasforge::DartsOptions o = nasforge::darts_preset(algorithm);
  nasforge::DartsSearch s(space, o);
  torch::manual_seed(1);
  auto xt = torch::randn({64, 3, 32, 32}), xv = torch::randn({64, 3, 32, 32});
  auto yt = torch::randint(0, 10, {64}), yv = torch::randint(0, 10, {64});
  s.arch_step(xt, yt, xv, yv, 0.025);  // optimiser state exists before timing
  s.weight_step(xt, yt, 0.025);
  std::int64_t peak = 0;
  for (auto _ : state) {
    nasforge::bench::PeakMemory mem;
    s.arch_step(xt, yt, xv, yv, 0.025);
    s.weight_step(xt, yt, 0.025);
    peak = std::max(peak, mem.peak_bytes());
  }
  state.counters["peak_bytes"] = static_cast<double>(peak);
}
void BM_DartsStep_nb201(benchmark::State& state) { darts_step(state, "darts"); }
BENCHMARK(BM_DartsStep_nb201)->Unit(benchmark::kMillisecond);
void BM_PcDartsStep_nb201(benchmark::State& state) { darts_step(state, "pc-darts"); }
BENCHMARK(BM_PcDartsStep_nb201)->Unit(benchmark::kMillisecond);

// The ops of that step alone: every op module of the search network (all candidates but
// `none`, stem, blocks, head) run forward and backward on a channels-last input of its shape,
// twice: the architecture pass (gradients of the activations) and the weight pass (and of the
// weights). What the step would cost if mixing, the graph walk,
// autograd bookkeeping between ops and the optimisers were free.
void BM_DartsOpsAlone_nb201(benchmark::State& state) {
  torch::set_num_threads(1);
  auto space = nb201_full();
  nasforge::DartsOptions o = nasforge::darts_preset("darts");
  nasforge::DartsSearch s(space, o);
  auto& net = s.supernet();
  auto work = op_inputs(*net, /*channels_last=*/true);  // as the search runs
  for (auto& w : work) w.second.requires_grad_(true);
  for (auto _ : state) {
    for (auto& [i, x] : work) {  // the architecture pass: gradients of the activations only
      auto y = net->forward_layer(i, x);
      benchmark::DoNotOptimize(torch::autograd::grad({y}, {x}, {torch::ones_like(y)})[0].data_ptr());
    }
    for (auto& [i, x] : work) {  // the weight pass: activations and weights
      auto y = net->forward_layer(i, x);
      y.backward(torch::ones_like(y));
    }
  }
}
BENCHMARK(BM_DartsOpsAlone_nb201)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
