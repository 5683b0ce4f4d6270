// The main demo: a hardware-aware differentiable search on real data, on this CPU.
//
// 1. profile: time every layer of the NAS-Bench-201 space (reduced for CPU: one cell per
//    stage, 28x28x1 Fashion-MNIST input) on this machine into a latency table, calibrated
//    against whole networks; the latency budget is the median table latency of 1,000 random
//    architectures, so about half the space is over it.
// 2. search: PC-DARTS (K = 2) on Fashion-MNIST, the architecture loss penalising the
//    supernet's expected latency above the budget (ProxylessNAS-style, target mode).
// 3. train: the derived cell's network from scratch for a few epochs (a PC-DARTS supernet holds
//    narrower candidates than the real network, so nothing is inherited).
// 4. measure: the trained network's latency on this CPU, next to the table's prediction.
// Writes OUT_DIR/profile.json (the table and budget, reused by a rerun), OUT_DIR/search
// (result.json, weights.svg: the op weights per epoch, checkpoint.pt),
// OUT_DIR/model (arch.json + weights.pt) and OUT_DIR/demo.json (the summary below).
//
//   nasforge_hardware_aware_darts [OUT_DIR] [SEARCH_EPOCHS] [TRAIN_EPOCHS] [SEARCH_IMAGES]
//                                 [TRAIN_IMAGES] [THREADS] [LATENCY_WEIGHT]
// Defaults: runs/demo 8 3 10000 20000 (all cores) 2.0: 200 s on 2 idle cores.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/darts.h"
#include "nasforge/torch/latency.h"
#include "nasforge/torch/serialize.h"
#include "nasforge/torch/trainer.h"

namespace {
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "runs/demo";
  const long search_epochs = argc > 2 ? std::stol(argv[2]) : 8;
  const long train_epochs = argc > 3 ? std::stol(argv[3]) : 3;
  const long images = argc > 4 ? std::stol(argv[4]) : 10000;
  const long train_images = argc > 5 ? std::stol(argv[5]) : 20000;
  const int threads = argc > 6 ? std::stoi(argv[6]) : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  const double latency_weight = argc > 7 ? std::stod(argv[7]) : 2.0;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    torch::set_num_threads(threads);
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json",
                                                  {{"N", "1"}, {"C", "16"}, {"input", "[1,28,28]"}});
    std::filesystem::create_directories(out);

    nasforge::ProfileOptions po;  // batch 1, one thread, median of >= 15 calls and >= 40 ms
    nasforge::LatencyTable table;
    double budget = 0;
    const std::string profile_path = out + "/profile.json";
    if (std::ifstream in(profile_path); in) {  // a rerun: the same table and budget, so the search resumes
      auto j = nlohmann::json::parse(in);
      table = nasforge::LatencyTable::from_json(j.at("table"));
      budget = j.at("budget_ms");
      fmt::print("[1/4 profile] reusing {} (budget {:.3f} ms)\n", profile_path, budget);
    } else {
      fmt::print("[1/4 profile] timing the space's layers on this CPU (batch 1, 1 thread)\n");
      table = nasforge::profile_space(space, po, /*samples=*/200, /*calibration=*/10, /*seed=*/0);
      nasforge::profile_layers(table, {space.supernet()}, po);  // the supernet's node sums too
      auto model = nasforge::make_lut_cost_model(space, table);
      nasforge::Rng rng(1);
      std::vector<double> lat;
      for (int i = 0; i < 1000; ++i) lat.push_back(model->predict(space.sample(rng)));
      std::nth_element(lat.begin(), lat.begin() + 500, lat.end());
      budget = lat[500];
      std::ofstream(profile_path) << nlohmann::json{{"table", table.to_json()}, {"budget_ms", budget}}.dump() << "\n";
      fmt::print("  {} layer configurations in {:.0f} s; budget = median of 1,000 random networks = {:.3f} ms\n",
                 table.ms.size(), since(t0), budget);
    }
    auto lut = nasforge::make_lut_cost_model(space, table);

    fmt::print("[2/4 search] PC-DARTS on {} Fashion-MNIST images under the {:.3f} ms budget\n", images, budget);
    auto train_set = nasforge::load_fashion_mnist(true), test_set = nasforge::load_fashion_mnist(false);
    auto norm = nasforge::compute_normalization(train_set);
    auto subset = nasforge::train_valid_split(train_set.size(), static_cast<double>(images) / 60000.0, 0).valid;
    nasforge::DartsOptions o = nasforge::darts_preset("pc-darts");
    o.epochs = search_epochs;
    o.supernet.partial_channels = 2;  // 8 of the 16 channels through the ops (K = 4 leaves 4: the search drifted to skip)
    o.warmup_epochs = std::max(1L, search_epochs / 4);  // the paper's 15 of 50 epochs, scaled
    o.batch = 64;
    o.lr = 0.025;  // the paper's 0.1 goes with batch 256
    o.latency = table;
    o.latency_weight = latency_weight;
    o.latency_budget_ms = budget;
    o.threads = threads;
    o.out_dir = out + "/search";
    o.resume = true;  // rerunning the demo continues an interrupted search
    o.progress = true;
    auto r = nasforge::run_darts(space, nasforge::to_tensors(train_set, norm, subset), o);
    const std::string cell = space.to_native(r.derived);
    fmt::print("  derived {} (expected latency of the supernet {:.3f} ms)\n", cell, r.epochs.back().expected_latency_ms);

    fmt::print("[3/4 train] the derived network from scratch, {} epochs on {} images\n", train_epochs, train_images);
    const auto concrete = space.resolve(r.derived);
    torch::manual_seed(0);
    nasforge::Network net(concrete);
    nasforge::TrainOptions to;
    to.epochs = train_epochs;
    to.batch = 128;
    to.lr = 0.05;
    to.threads = threads;
    to.progress = true;
    to.checkpoint_dir = out + "/train";
    auto train_subset = nasforge::train_valid_split(train_set.size(), static_cast<double>(train_images) / 60000.0, 1).valid;
    auto hist = nasforge::train(net, nasforge::to_tensors(train_set, norm, train_subset),
                                nasforge::to_tensors(test_set, norm), to);
    nasforge::save_subnetwork(out + "/model", space, r.derived, net);

    fmt::print("[4/4 measure] the trained network on this CPU (batch 1, 1 thread)\n");
    const double measured = nasforge::measure_latency_ms(concrete, po);
    const double predicted = lut->predict(r.derived);
    const auto costs = nasforge::analytic_costs(concrete);
    nlohmann::json summary{{"arch", cell},
                           {"test_accuracy", hist.back().test_accuracy},
                           {"lut_latency_ms", predicted},
                           {"measured_latency_ms", measured},
                           {"budget_ms", budget},
                           {"params", costs.params},
                           {"macs", costs.macs},
                           {"search_seconds", r.search.wall_seconds},
                           {"total_seconds", since(t0)},
                           {"threads", threads}};
    std::ofstream(out + "/demo.json") << summary.dump(2) << "\n";
    fmt::print("\narchitecture     {}\n", cell);
    fmt::print("test accuracy    {:.2f}% after {} epochs\n", 100 * hist.back().test_accuracy, train_epochs);
    fmt::print("latency (CPU)    {:.3f} ms predicted by the table, {:.3f} ms measured, budget {:.3f} ms\n", predicted,
               measured, budget);
    fmt::print("size             {} params, {} MACs\n", costs.params, costs.macs);
    fmt::print("written          {}/demo.json, {}/search/result.json, {}/search/weights.svg, {}/model ({:.0f} s)\n", out,
               out, out, out, since(t0));
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "nasforge_hardware_aware_darts: {}\n", e.what());
    return 2;
  }
}
