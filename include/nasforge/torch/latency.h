#pragma once
/// \file latency.h
/// Latency on this machine, measured with LibTorch: end-to-end timing of a network, and
/// profiling of every distinct layer of a space into a LatencyTable (cost_model.h), with the
/// table's fixed overhead calibrated against end-to-end measurements.
///
/// ```cpp
/// nasforge::ProfileOptions po;                  // batch 1, 1 thread, warm-up, median of repetitions
/// nasforge::LatencyTable lut = nasforge::profile_space(space, po, /*samples=*/200, /*calibration=*/10, /*seed=*/0);
/// auto model = nasforge::make_lut_cost_model(space, lut);
/// double predicted = model->predict(arch);
/// double measured = nasforge::measure_latency_ms(space.resolve(arch), po);
/// ```
/// Timing method: the thread count is set for the duration and restored; each measurement
/// runs `warmup` untimed calls, then timed calls until both `min_reps` calls and `min_ms` of
/// time have passed, and reports the median (steady_clock; its resolution is far below the
/// microseconds a layer takes, and the min_ms floor keeps short ops from being timed alone).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "nasforge/cost_model.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/supernet.h"

namespace nasforge {

/// How to time.
struct ProfileOptions {
  std::int64_t batch = 1;
  int threads = 1;         ///< LibTorch intra-op threads while timing
  int warmup = 3;          ///< untimed calls first
  int min_reps = 15;       ///< at least this many timed calls...
  double min_ms = 40;      ///< ...and at least this much timed time
  /// Report the fastest timed call instead of the median: interference on a shared host only
  /// ever adds time, so the minimum is the more repeatable statistic there.
  bool fastest = false;
  /// Time each layer inside whole networks (Network::forward_timed over the repetitions; a
  /// layer's entry is the median, over its occurrences in the profiling networks, of its
  /// statistic there) instead of alone, where its input and weights are hot in cache and the
  /// time between layers (the DAG walk, freeing tensors) is missed. Measured here with memory
  /// reused: whole networks are 0.99-1.07x the sum of in-network layer times, 1.16-1.42x the
  /// sum of layers timed alone, and at batch 32 and for MobileNetV3 the in-network table
  /// predicts far better (docs/performance.md). Costs whole forwards: profile a few tens of
  /// networks. A supernet structure (mixed/select layers) cannot run whole; its layers are
  /// timed alone. The table records the method, and later completions follow it.
  bool in_network = false;
  /// On a CUDA device, time in-network layers with CUDA events (Network::forward_timed) where
  /// this LibTorch can (cuda_event_timing_supported(): 2.11 can, 1.13 cannot) instead of a
  /// sync after every layer. Events let kernels queue as in an untimed forward, so layers sum closer to the forward
  /// (NB201 at batch 64 on an H200: 1.08x the forward against 1.16x with syncs), but a layer's
  /// share then depends on its neighbours (whether the queue was ahead or behind), and the
  /// tables ranked networks worse in both runs measured (Spearman 0.735-0.753 against
  /// 0.845-0.869 with syncs; docs/performance.md): off by default.
  bool cuda_events = false;
  /// Call nasforge::reuse_freed_memory() (allocator.h) before timing: without it glibc faults
  /// in fresh pages for every large tensor of every call, timings depend on the allocator's
  /// history, and layers do not add up to networks. Process-wide and permanent, so what runs
  /// later in the process runs as it was timed.
  bool reuse_freed_memory = true;
  /// How profile_space and calibrate fit the table's fixed_ms and scale (cost_model.h).
  CalibrationFit calibration_fit = CalibrationFit::kScale;
  /// A reference network, for a host whose speed drifts (a shared VM here ran one network at
  /// 4.2 ms and 6.5 ms within a minute). With it, the profiler times the reference just
  /// before and just after each profiling network and scales that network's layer timings
  /// by the reference's speed when the table was begun (LatencyTable::reference_ms), and
  /// calibrate() measures each network beside it (measure_relative_latency): the table's
  /// entries and calibration all describe one speed of the machine. Reference timings triple
  /// the cost of end-to-end measurements. Only a table's first profiling can set it: a table
  /// begun beside a reference is completed beside the same network at the same batch and
  /// threads, one begun without, without (InvalidArgument otherwise).
  std::optional<ConcreteNetwork> reference;
  std::string device_name = "this machine (CPU)";  ///< recorded in tables
  ::torch::Device device = ::torch::kCPU;
};

/// Median milliseconds of one eval-mode, no-grad forward of `net` at `options.batch`.
double measure_latency_ms(const ConcreteNetwork& net, const ProfileOptions& options);

/// A network's latency measured beside the reference network (measure_relative_latency).
struct RelativeLatency {
  double ms = 0;            ///< the network's milliseconds (measure_latency_ms)
  double reference_ms = 0;  ///< the reference's: the mean of its timings just before and just after
  /// The network's latency in units of the reference's: what is left when the machine's
  /// changing speed is divided out.
  double relative() const { return ms / reference_ms; }
};

/// Times `options.reference`, then `net`, then the reference again (each as measure_latency_ms
/// does). InvalidArgument if `options.reference` is not set.
RelativeLatency measure_relative_latency(const ConcreteNetwork& net, const ProfileOptions& options);

/// Times a referenced table's reference network now (`options.reference`, which must be the
/// network the table was profiled beside, at its batch and threads) and rescales the table to
/// today's speed: its entries, fixed_ms, the calibration points and reference_ms are multiplied
/// by now / then, which it returns (so layers profiled later add up with the old ones). One
/// network's timing instead of a fresh calibration. InvalidArgument for a table without a
/// reference, another reference network, or other batch or threads.
double reanchor(LatencyTable& table, const ProfileOptions& options);

/// Energy of one forward, measured (measure_energy).
struct EnergyMeasurement {
  double mj_per_call = 0;  ///< millijoules per forward: the whole device's draw, idle power included
  double ms_per_call = 0;  ///< wall milliseconds per forward over the same window
  double watts = 0;        ///< mean power over the window
  std::int64_t calls = 0;  ///< forwards in the window
  std::string counter;     ///< which counter (EnergyCounter::name)
};

/// The energy counter of a device: a CUDA device's NVML counter
/// (EnergyCounter::for_cuda_device), else the CPU packages' RAPL counters. NotFound where none.
EnergyCounter energy_counter(const ::torch::Device& device);

/// Measured energy of one eval-mode, no-grad forward of `net` at `options.batch` on
/// `options.device`, read from energy_counter(options.device). After the warm-up, forwards
/// run back to back for at least `window_ms` (and one forward); the window opens and closes
/// where the counter steps (NVML stepped every 100 ms on an H200), so quantisation costs at
/// most one forward at each end. Throws NotFound ("not available here", and why) where the
/// device exposes no counter or it does not step within max(window_ms, 2 s).
EnergyMeasurement measure_energy(const ConcreteNetwork& net, const ProfileOptions& options, double window_ms = 500);
/// The same, read from `counter` (e.g. an external meter: EnergyCounter::from_function).
EnergyMeasurement measure_energy(const ConcreteNetwork& net, const ProfileOptions& options, EnergyCounter& counter,
                                 double window_ms = 500);

/// `cpu`, `cuda` or `cuda:N` as a device, checked: InvalidArgument naming what was expected and
/// what arrived, NotFound where LibTorch sees no such CUDA device here.
::torch::Device parse_device(const std::string& name);

/// Profiles the layers of `nets` that `table` lacks (their keys: layer_key): alone, or — with
/// `in_network`, or when `table` was profiled that way (LatencyTable::in_network) — inside the
/// networks holding them.
void profile_layers(LatencyTable& table, const std::vector<ConcreteNetwork>& nets, const ProfileOptions& options);

/// Measures `nets` end to end (profiling any layers `table` lacks first), appends them to
/// `table.calibration` and refits its fixed_ms and scale by `options.calibration_fit`. Call it
/// again with fresh networks, after clearing `table.calibration`, to recalibrate a table
/// on a machine whose speed has drifted.
void calibrate(LatencyTable& table, const std::vector<ConcreteNetwork>& nets, const ProfileOptions& options);

/// A latency table for `space`: the layers of every architecture when the space has at most
/// `samples` of them, else of `samples` random ones (seeded); then `calibration` random
/// networks are measured end to end and the table calibrated to them (calibrate; by default
/// scale = the median of measured / sum of layers, fixed_ms 0: a robust fit on a noisy host).
LatencyTable profile_space(const SearchSpace& space, const ProfileOptions& options, std::size_t samples,
                           std::size_t calibration, std::uint64_t seed);

/// The expected latency of a mixed-mode supernet (ProxylessNAS, latency-aware DARTS):
/// sum over its fixed layers of their table entries plus, for every op decision's slot,
/// sum_o softmax(alpha)_o x latency(candidate o) (`none` and masked candidates count 0), all
/// scaled by the table's calibration. A scalar tensor differentiable in the architecture
/// logits. The table must hold the supernet's layers: `profile_layers(table, {net.structure()})`.
::torch::Tensor expected_latency_ms(const SupernetImpl& net, const LatencyTable& table);
/// The same under explicit op probabilities, one tensor per decision (undefined for non-op
/// decisions): a differentiable search passes its own (a removed edge all zeros).
::torch::Tensor expected_latency_ms(const SupernetImpl& net, const LatencyTable& table,
                                    const std::vector<::torch::Tensor>& probabilities);

/// The `measured` cost model: builds and times each architecture's network (metric
/// `latency_ms`). Slow by nature; not thread-safe across concurrent calls on one device, so
/// calls are serialised.
std::unique_ptr<CostModel> make_measured_cost_model(const SearchSpace& space, const ProfileOptions& options);

}  // namespace nasforge
