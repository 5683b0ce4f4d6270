#pragma once
/// \file cost_model.h
/// One interface for every way nasforge predicts a hardware cost of an architecture:
///
/// | name | how | header |
/// |---|---|---|
/// | `analytic` | parameters, MACs, FLOPs, peak activation memory counted from the ConcreteNetwork | costs.h |
/// | `lut` | a latency lookup table profiled on the device: the sum over the network's layers plus a calibrated overhead | torch/latency.h builds it |
/// | `predictor` | a learned model (ridge, GBDT) of a measured metric | predictor.h |
/// | `measured` | time the network itself | torch/latency.h |
///
/// A CostModel is also an Evaluator (its metric under its name), so any of them can be an
/// objective or a constraint of a search.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nasforge/concrete_network.h"
#include "nasforge/evaluator.h"
#include "nasforge/predictor.h"
#include "nasforge/search_space.h"

namespace nasforge {

/// Predicts one metric of architectures of one space. Thread-safe.
class CostModel : public Evaluator {
 public:
  /// The kind: `analytic`, `lut`, `predictor`, `measured`.
  virtual std::string kind() const = 0;
  /// The metric's name (e.g. `latency_ms`, `macs`) and unit (`ms`, `MACs`, `bytes`).
  virtual std::string metric() const = 0;
  virtual std::string unit() const = 0;
  /// The predicted value for `arch`.
  virtual double predict(const Architecture& arch) const = 0;
  /// Predictions for many architectures (in parallel where the model allows).
  virtual std::vector<double> predict_batch(const std::vector<Architecture>& archs) const;
  /// The model as JSON (`{"kind": ..., ...}`); load_cost_model restores it.
  virtual nlohmann::json to_json() const = 0;

  Metrics evaluate(const Architecture& arch) const override { return {{metric(), predict(arch)}}; }
  std::vector<std::string> metric_names() const override { return {metric()}; }
};

/// Analytic costs: `params`, `macs`, `flops` or `peak_activation_bytes` (at `batch`).
std::unique_ptr<CostModel> make_analytic_cost_model(const SearchSpace& space, const std::string& metric,
                                                    std::int64_t batch = 1);

/// A learned predictor of `metric` over `features` (log target when `log_target`).
std::unique_ptr<CostModel> make_predictor_cost_model(const SearchSpace& space, std::string metric,
                                                     std::shared_ptr<const Predictor> predictor,
                                                     FeatureOptions features, bool log_target);

/// Constants of the analytic energy model, in picojoules. Defaults: Horowitz, "Computing's
/// energy problem" (ISSCC 2014), 45 nm: a 32-bit float multiply 3.7 pJ + add 0.9 pJ per MAC;
/// 32-bit DRAM access 640 pJ (160 pJ per byte); 32-bit read from an 8 KB SRAM 5 pJ (1.25 pJ per
/// byte).
struct EnergyConstants {
  double mac_pj = 4.6;          ///< one multiply-accumulate
  double dram_byte_pj = 160.0;  ///< one byte to or from DRAM
  double sram_byte_pj = 1.25;   ///< one byte to or from on-chip SRAM
  /// Share of activation traffic that reaches DRAM (the rest stays on chip); weights are read
  /// from DRAM once per inference.
  double activation_dram_share = 1.0;
};

/// The analytic energy model (metric `energy_mj`, millijoules per inference at `batch`):
/// MACs x mac_pj + weight bytes x dram_byte_pj + activation bytes (each layer's inputs read
/// and output written) x (share x dram + (1 - share) x sram). An estimate of where energy goes
/// on a 45 nm accelerator, not a measurement; the constants are configurable.
std::unique_ptr<CostModel> make_energy_cost_model(const SearchSpace& space, EnergyConstants constants = {},
                                                  std::int64_t batch = 1);

/// A cumulative energy counter of this machine, read in millijoules from an arbitrary origin:
/// the CPU packages' Linux powercap / RAPL counters (`/sys/class/powercap/intel-rapl:*`,
/// wrap-around handled, all packages summed) or one NVIDIA GPU's NVML total-energy counter
/// (`nvmlDeviceGetTotalEnergyConsumption`, Volta and newer; the driver's `libnvidia-ml.so.1`
/// is loaded at run time, so nasforge needs no CUDA at build time). Hardware updates these
/// counters in steps (RAPL about every 1 ms, NVML every few to 100 ms): read across a window
/// much longer than a step, or align the window to steps (measure_energy in
/// nasforge/torch/latency.h does). Opening one throws NotFound, saying "not available here"
/// and why, where the platform does not expose it (virtual machines, no NVIDIA driver, no
/// such device, no read permission). Not thread-safe; movable, not copyable.
class EnergyCounter {
 public:
  /// The CPU packages' RAPL counters (the `package-*` domains; `psys` and the like, which
  /// contain a package, are left out).
  static EnergyCounter cpu();
  /// NVIDIA GPU `device`'s NVML counter. NVML numbers GPUs in PCI bus order and ignores
  /// CUDA_VISIBLE_DEVICES: for a CUDA device index use for_cuda_device.
  static EnergyCounter gpu(unsigned device = 0);
  /// The NVML counter of the GPU that CUDA calls device `cuda_index`: the index-th entry of
  /// CUDA_VISIBLE_DEVICES where it is set (a number or a `GPU-...` UUID), else the index
  /// itself (CUDA's default order matches NVML's on machines of identical GPUs; set
  /// CUDA_DEVICE_ORDER=PCI_BUS_ID where they differ).
  static EnergyCounter for_cuda_device(int cuda_index);
  /// Any other meter (an external power meter, a test's fake): `read_mj` returns cumulative
  /// millijoules, non-decreasing.
  static EnergyCounter from_function(std::function<double()> read_mj, std::string name);
  EnergyCounter(EnergyCounter&&) noexcept;
  EnergyCounter& operator=(EnergyCounter&&) noexcept;
  ~EnergyCounter();
  /// Millijoules since an origin fixed when the counter was opened (non-decreasing).
  double read_mj();
  /// "cpu (RAPL, 2 packages)", "gpu 0 (NVML)", or a from_function counter's name.
  const std::string& name() const;
  class Impl;

 private:
  explicit EnergyCounter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Measured energy of the CPU package while running `work`, in millijoules, from Linux
/// powercap / RAPL (`/sys/class/powercap/intel-rapl:*/energy_uj`). Throws NotFound, saying
/// "not available here" and why, where the platform does not expose it (virtual machines,
/// non-Intel/AMD CPUs, no read permission).
double measure_cpu_energy_mj(const std::function<void()>& work);

/// Measured energy of NVIDIA GPU `device` while running `work`, in millijoules, from NVML's
/// total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, Volta and newer; the driver's
/// `libnvidia-ml.so.1` is loaded at run time, so nasforge needs no CUDA at build time).
/// `work` must wait for its GPU work to finish (e.g. torch::cuda::synchronize()) before it
/// returns. The counter updates about every 10-100 ms, so time work of a second or more
/// (repeat the inference) and divide. Throws NotFound, saying "not available here" and why,
/// without an NVIDIA driver, without the device, or where the GPU has no energy counter.
double measure_gpu_energy_mj(const std::function<void()>& work, unsigned device = 0);

/// The key of layer `i` of `net` in a latency table: op, attributes and input shapes (names
/// excluded, so identical layers anywhere share an entry); a `sum` also records how many of
/// its inputs are live (a `zero` input costs no addition at run time).
std::string layer_key(const ConcreteNetwork& net, std::size_t i);

/// One end-to-end measurement of a network against a latency table: the sum of its layers'
/// entries (uncalibrated) and what the whole network measured.
struct CalibrationPoint {
  double layers_ms = 0;
  double measured_ms = 0;
};

/// How a latency table's calibration is fitted to its calibration points.
enum class CalibrationFit {
  /// scale = the median of measured / layers, fixed_ms = 0: one number, robust to the odd
  /// disturbed measurement.
  kScale,
  /// measured = fixed_ms + scale x layers by Theil-Sen (the median of the pairwise slopes, then
  /// the median intercept; robust to ~29% outliers): for tables whose error grows or shrinks
  /// with the network's size. Falls back to kScale where the layer sums span less than 1.5x
  /// (the slope is then noise), there are fewer than 4 points, or the slope is not positive or
  /// the intercept negative.
  kAffine,
};

/// A latency lookup table: milliseconds per layer key, for one batch size and thread count,
/// and the calibration of running a whole network: predicted = `fixed_ms` + `scale` x (sum of
/// the layers' entries), calibrated on end-to-end measurements.
struct LatencyTable {
  std::map<std::string, double> ms;  ///< layer_key -> median milliseconds
  std::int64_t batch = 1;
  int threads = 1;
  double fixed_ms = 0, scale = 1;
  std::string device;                 ///< where it was profiled (free text)
  /// How its layers were timed: inside whole networks (ProfileOptions::in_network) or alone.
  /// profile_layers completes a table the way it was profiled, so its one `scale` fits.
  bool in_network = false;
  /// The measurements the calibration was fitted to (kept, so it can be refitted).
  std::vector<CalibrationPoint> calibration;
  /// For a table profiled beside a reference network (ProfileOptions::reference in
  /// torch/latency.h): the reference's milliseconds when the table was begun — every entry and
  /// calibration point is expressed at the speed the machine had then, so the table predicts
  /// at that speed (reanchor() moves it to today's) — and which network it was (a fingerprint
  /// of its ConcreteNetwork::to_string()). 0 and empty for a table of absolute timings.
  double reference_ms = 0;
  std::string reference_fingerprint;
  /// Sum over the layers of `net` plus the overhead; NotFound names a missing layer key.
  double predict(const ConcreteNetwork& net) const;
  /// Sum over the layers of `net`, uncalibrated (NotFound as predict).
  double layers_ms(const ConcreteNetwork& net) const;
  /// Refits fixed_ms and scale to `calibration`; returns the fit used, which is kScale where
  /// kAffine falls back. Without a usable point (positive and finite) nothing changes and the
  /// requested fit is returned.
  CalibrationFit fit_calibration(CalibrationFit fit);
  nlohmann::json to_json() const;
  static LatencyTable from_json(const nlohmann::json& j);
};

/// The `lut` cost model (metric `latency_ms`).
std::unique_ptr<CostModel> make_lut_cost_model(const SearchSpace& space, LatencyTable table);

/// Restores any cost model written by to_json() (the `measured` kind cannot be restored: it
/// needs LibTorch; see torch/latency.h).
std::unique_ptr<CostModel> load_cost_model(const SearchSpace& space, const nlohmann::json& j);

}  // namespace nasforge
