// Latency lookup table vs reality on this machine: profiles a space's layers, calibrates the
// overhead, then for N random networks compares the table's prediction with the measured
// end-to-end latency (Spearman, share within ±10%).
//   nasforge_lut_figures [SPACE=nb201] [N=100] [BATCH=1] [THREADS=1] [SET=K=V;...] [median|fastest]
//                        [alone|in-network] [SAMPLES] [REPS]
// `alone` times each layer by itself (300 profiling networks' layers by default); `in-network`
// times the layers inside whole networks (30 profiling networks by default). A test network
// holding a layer the samples missed is profiled lazily, and counted: in-network, its own
// timing then feeds its prediction. NASFORGE_LUT_DEVICE=cuda runs it on a GPU. It also reports
// the other calibration fit (affine or scale only) on the same measurements;
// NASFORGE_LUT_RETEST=1 measures every test network twice (test-retest agreement);
// NASFORGE_LUT_REFERENCE=1 profiles and measures beside a reference network (ProfileOptions::reference)
// and also reports the figures at the reference's speed;
// NASFORGE_LUT_EVENTS=1 times in-network GPU layers with CUDA events instead of a sync after each.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <fmt/core.h>
#include <torch/torch.h>

#include "nasforge/cost_model.h"
#include "nasforge/error.h"
#include "nasforge/predictor.h"
#include "nasforge/random.h"
#include "nasforge/torch/latency.h"
#include "nasforge/torch/network.h"

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "nb201";
  const std::size_t n = argc > 2 ? std::stoul(argv[2]) : 100;
  const long batch = argc > 3 ? std::stol(argv[3]) : 1;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 1;
  nasforge::ParamOverrides set;
  if (argc > 5) {
    std::string all = argv[5];
    for (std::size_t start = 0; start < all.size();) {
      std::size_t end = all.find(';', start);
      std::string kv = all.substr(start, end == std::string::npos ? std::string::npos : end - start);
      set[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  try {
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + name + ".json", set);
    nasforge::ProfileOptions po;
    po.batch = batch;
    po.threads = threads;
    po.fastest = argc > 6 && std::string(argv[6]) == "fastest";
    po.in_network = argc > 7 && std::string(argv[7]) == "in-network";
    const std::size_t samples = argc > 8 ? std::stoul(argv[8]) : po.in_network ? 30 : 300;
    if (argc > 9) po.min_reps = std::stoi(argv[9]);  // fewer for networks that take a second a call
    // NASFORGE_LUT_DEFAULT_MALLOC=1: leave glibc's malloc as it is (to compare).
    if (std::getenv("NASFORGE_LUT_DEFAULT_MALLOC")) po.reuse_freed_memory = false;
    // NASFORGE_LUT_AFFINE=1: calibrate fixed_ms + scale (Theil-Sen) instead of the scale alone.
    if (std::getenv("NASFORGE_LUT_AFFINE")) po.calibration_fit = nasforge::CalibrationFit::kAffine;
    // NASFORGE_LUT_DEVICE=cuda (or cuda:N): profile and measure on a GPU.
    if (const char* d = std::getenv("NASFORGE_LUT_DEVICE")) po.device = nasforge::parse_device(d), po.device_name = d;
    // NASFORGE_LUT_EVENTS=1: on a GPU, time in-network layers with CUDA events (to compare with a sync after each).
    if (std::getenv("NASFORGE_LUT_EVENTS")) po.cuda_events = true;
    if (po.device.is_cuda()) {
      fmt::print("in-network layers on the GPU timed by {}\n", po.cuda_events && nasforge::cuda_event_timing_supported()
                                                                 ? "CUDA events" : "a sync after each layer");
    }
    // NASFORGE_LUT_REFERENCE=1: profile and measure beside a reference network
    // (ProfileOptions::reference): the table's entries and calibration and each test network's
    // latency are brought to the reference's speed when the table was begun, dividing out the
    // machine's drift; reported beside the absolute figures.
    if (std::getenv("NASFORGE_LUT_REFERENCE")) {
      nasforge::Rng pick(777);
      po.reference = space.resolve(space.sample(pick));
    }
    auto t0 = std::chrono::steady_clock::now();
    auto lut = nasforge::profile_space(space, po, samples, 20, /*seed=*/1);
    double profile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    constexpr std::uint64_t kTestSeed = 12345;  // test networks: another seed than the profiling samples
    nasforge::Rng rng(kTestSeed);
    std::vector<double> predicted, measured, layers;
    std::vector<double> at_reference_speed, refs;  // with NASFORGE_LUT_REFERENCE
    std::size_t lazy = 0;
    std::vector<double> covered_predicted, covered_measured;  // networks whose layers the samples covered
    for (std::size_t i = 0; i < n; ++i) {
      auto net = space.resolve(space.sample(rng));
      const std::size_t entries = lut.ms.size();
      nasforge::profile_layers(lut, {net}, po);  // lazily: layers the samples did not cover
      const bool new_layers = lut.ms.size() > entries;
      lazy += new_layers;
      predicted.push_back(lut.predict(net));
      layers.push_back(lut.layers_ms(net));
      if (po.reference) {
        const auto r = nasforge::measure_relative_latency(net, po);
        measured.push_back(r.ms);
        at_reference_speed.push_back(r.relative() * lut.reference_ms);
        refs.push_back(r.reference_ms);
      } else {
        measured.push_back(nasforge::measure_latency_ms(net, po));
      }
      if (!new_layers) covered_predicted.push_back(predicted.back()), covered_measured.push_back(measured.back());
    }
    // NASFORGE_LUT_RETEST=1: measure every test network a second time after the first pass
    // (test-retest agreement says how much of the spread is the machine), and report the
    // figures against the faster of the two measurements too.
    if (std::getenv("NASFORGE_LUT_RETEST")) {
      nasforge::Rng again(kTestSeed);  // the same networks, in the same order
      std::vector<double> second, faster;
      std::size_t within5 = 0, within10 = 0;
      for (std::size_t i = 0; i < n; ++i) {
        second.push_back(nasforge::measure_latency_ms(space.resolve(space.sample(again)), po));
        faster.push_back(std::min(measured[i], second.back()));
        within5 += std::abs(second.back() / measured[i] - 1) <= 0.05;
        within10 += std::abs(second.back() / measured[i] - 1) <= 0.10;
      }
      auto f = nasforge::prediction_quality(predicted, faster);
      fmt::print("retest: the two measurements agree within ±5% on {} and ±10% on {} of {} networks; against the faster "
                 "of the two: spearman {:.4f}  within ±10% {:.1f}%  MAPE {:.2f}%\n", within5, within10, n, f.spearman,
                 100 * f.within_10pct, 100 * f.mape);
      if (std::getenv("NASFORGE_LUT_DUMP")) {
        for (std::size_t i = 0; i < n; ++i) fmt::print("retest {:.3f} {:.3f}\n", measured[i], second[i]);
      }
    }
    if (po.reference) {
      auto r = nasforge::prediction_quality(predicted, at_reference_speed);
      fmt::print("at the reference's speed (the test networks measured beside it: {:.3f}-{:.3f} ms, {:.3f} ms when the "
                 "table was begun): spearman {:.4f}  within ±10% {:.1f}%  MAPE {:.2f}%\n",
                 *std::min_element(refs.begin(), refs.end()), *std::max_element(refs.begin(), refs.end()),
                 lut.reference_ms, r.spearman, 100 * r.within_10pct, 100 * r.mape);
    }
    auto q = nasforge::prediction_quality(predicted, measured);
    if (std::getenv("NASFORGE_LUT_DUMP")) {  // calibration, then test: layers sum, predicted, measured
      for (const auto& p : lut.calibration) fmt::print("calibration {:.3f} {:.3f}\n", p.layers_ms, p.measured_ms);
      for (std::size_t i = 0; i < n; ++i) fmt::print("test {:.3f} {:.3f} {:.3f}\n", layers[i], predicted[i], measured[i]);
    }
    double lo = *std::min_element(measured.begin(), measured.end()), hi = *std::max_element(measured.begin(), measured.end());
    fmt::print("{} batch {} threads {} ({}, {}): {} layer entries from {} networks, profiled in {:.0f} s, calibration "
               "{:.3f} ms + {:.3f} x sum; {} test networks measured {:.2f}-{:.2f} ms, {} of them with layers profiled lazily\n",
               name, batch, threads, po.in_network ? "in-network" : "alone", po.fastest ? "fastest" : "median",
               lut.ms.size(), samples, profile_s, lut.fixed_ms, lut.scale, n, lo, hi, lazy);
    fmt::print("spearman {:.4f}  kendall {:.4f}  within ±10% {:.1f}%  MAPE {:.2f}%\n", q.spearman, q.kendall,
               100 * q.within_10pct, 100 * q.mape);
    // The other calibration fit on the same calibration points and test measurements.
    nasforge::LatencyTable other = lut;
    const auto wanted = po.calibration_fit == nasforge::CalibrationFit::kScale ? nasforge::CalibrationFit::kAffine
                                                                               : nasforge::CalibrationFit::kScale;
    const auto fit = other.fit_calibration(wanted);
    std::vector<double> refit;
    for (double l : layers) refit.push_back(other.fixed_ms + other.scale * l);
    auto r = nasforge::prediction_quality(refit, measured);
    fmt::print("refitted {} ({:.3f} ms + {:.3f} x sum): spearman {:.4f}  within ±10% {:.1f}%  MAPE {:.2f}%\n",
               wanted == fit ? (fit == nasforge::CalibrationFit::kAffine ? "affine" : "scale only")
                             : "affine (fell back to scale only)", other.fixed_ms, other.scale, r.spearman,
               100 * r.within_10pct, 100 * r.mape);
    if (lazy > 0 && covered_measured.size() >= 2) {
      auto c = nasforge::prediction_quality(covered_predicted, covered_measured);
      fmt::print("the {} networks the samples covered: spearman {:.4f}  within ±10% {:.1f}%  MAPE {:.2f}%\n",
                 covered_measured.size(), c.spearman, 100 * c.within_10pct, 100 * c.mape);
    }
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
