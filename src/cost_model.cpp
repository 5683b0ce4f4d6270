#include "nasforge/cost_model.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "detail/stats.h"
#include "nasforge/costs.h"
#include "nasforge/error.h"

namespace nasforge {
namespace {

class AnalyticModel final : public CostModel {
 public:
  AnalyticModel(SearchSpace space, std::string metric, std::int64_t batch)
      : space_(std::move(space)), metric_(std::move(metric)), batch_(batch) {
    NASFORGE_CHECK(metric_ == "params" || metric_ == "macs" || metric_ == "flops" || metric_ == "peak_activation_bytes",
                   "analytic cost model: expected params, macs, flops or peak_activation_bytes, found \"{}\"", metric_);
    NASFORGE_CHECK(batch_ >= 1, "analytic cost model: expected batch >= 1, found {}", batch_);
  }
  std::string kind() const override { return "analytic"; }
  std::string metric() const override { return metric_; }
  std::string unit() const override {
    return metric_ == "params" ? "parameters" : metric_ == "peak_activation_bytes" ? "bytes" : metric_ == "macs" ? "MACs" : "FLOPs";
  }
  double predict(const Architecture& arch) const override {
    auto c = analytic_costs(space_.resolve(arch), CostOptions{batch_, 4});
    if (metric_ == "params") return static_cast<double>(c.params);
    if (metric_ == "macs") return static_cast<double>(c.macs);
    if (metric_ == "flops") return static_cast<double>(c.flops());
    return static_cast<double>(c.peak_activation_bytes);
  }
  nlohmann::json to_json() const override { return {{"kind", "analytic"}, {"metric", metric_}, {"batch", batch_}}; }

 private:
  SearchSpace space_;
  std::string metric_;
  std::int64_t batch_;
};

class PredictorModel final : public CostModel {
 public:
  PredictorModel(SearchSpace space, std::string metric, std::shared_ptr<const Predictor> p, FeatureOptions f, bool log)
      : space_(std::move(space)), metric_(std::move(metric)), p_(std::move(p)), f_(f), log_(log) {
    NASFORGE_CHECK(p_ && p_->fitted(), "predictor cost model: expected a fitted predictor");
  }
  std::string kind() const override { return "predictor"; }
  std::string metric() const override { return metric_; }
  std::string unit() const override { return metric_.find("ms") != std::string::npos ? "ms" : ""; }
  double predict(const Architecture& arch) const override {
    double v = p_->predict(architecture_features(space_, arch, f_));
    return log_ ? std::exp(v) : v;
  }
  nlohmann::json to_json() const override {
    return {{"kind", "predictor"}, {"metric", metric_}, {"log_target", log_},
            {"features", features_to_json(f_, space_)}, {"predictor", p_->to_json()}};
  }

 private:
  SearchSpace space_;
  std::string metric_;
  std::shared_ptr<const Predictor> p_;
  FeatureOptions f_;
  bool log_;
};

class EnergyModel final : public CostModel {
 public:
  EnergyModel(SearchSpace space, EnergyConstants c, std::int64_t batch) : space_(std::move(space)), c_(c), batch_(batch) {
    NASFORGE_CHECK(c_.mac_pj >= 0 && c_.dram_byte_pj >= 0 && c_.sram_byte_pj >= 0 && c_.activation_dram_share >= 0 &&
                       c_.activation_dram_share <= 1,
                   "energy model: expected non-negative constants and a DRAM share in [0, 1]");
    NASFORGE_CHECK(batch_ >= 1, "energy model: expected batch >= 1, found {}", batch_);
  }
  std::string kind() const override { return "energy"; }
  std::string metric() const override { return "energy_mj"; }
  std::string unit() const override { return "mJ"; }
  double predict(const Architecture& arch) const override {
    const ConcreteNetwork net = space_.resolve(arch);
    const auto costs = analytic_costs(net, CostOptions{batch_, 4});
    double act_bytes = 0;  // every layer reads its inputs and writes its output
    auto bytes = [&](const Shape& s) {
      double n = static_cast<double>(batch_) * 4.0;
      for (auto d : s) n *= static_cast<double>(d);
      return n;
    };
    for (const auto& l : net.layers) {
      if (l.op == "zero") continue;
      for (const auto& in : l.input_shapes) act_bytes += bytes(in);
      act_bytes += bytes(l.output_shape);
    }
    const double pj = static_cast<double>(costs.macs) * c_.mac_pj + static_cast<double>(costs.params) * 4.0 * c_.dram_byte_pj +
                      act_bytes * (c_.activation_dram_share * c_.dram_byte_pj + (1 - c_.activation_dram_share) * c_.sram_byte_pj);
    return pj * 1e-9;  // pJ -> mJ
  }
  nlohmann::json to_json() const override {
    return {{"kind", "energy"}, {"batch", batch_}, {"mac_pj", c_.mac_pj}, {"dram_byte_pj", c_.dram_byte_pj},
            {"sram_byte_pj", c_.sram_byte_pj}, {"activation_dram_share", c_.activation_dram_share}};
  }

 private:
  SearchSpace space_;
  EnergyConstants c_;
  std::int64_t batch_;
};

class LutModel final : public CostModel {
 public:
  LutModel(SearchSpace space, LatencyTable t) : space_(std::move(space)), t_(std::move(t)) {}
  std::string kind() const override { return "lut"; }
  std::string metric() const override { return "latency_ms"; }
  std::string unit() const override { return "ms"; }
  double predict(const Architecture& arch) const override { return t_.predict(space_.resolve(arch)); }
  nlohmann::json to_json() const override {
    auto j = t_.to_json();
    j["kind"] = "lut";
    return j;
  }

 private:
  SearchSpace space_;
  LatencyTable t_;
};

}  // namespace

std::vector<double> CostModel::predict_batch(const std::vector<Architecture>& archs) const {
  std::vector<double> out;
  out.reserve(archs.size());
  for (const auto& a : archs) out.push_back(predict(a));
  return out;
}

std::unique_ptr<CostModel> make_analytic_cost_model(const SearchSpace& space, const std::string& metric, std::int64_t batch) {
  return std::make_unique<AnalyticModel>(space, metric, batch);
}

std::unique_ptr<CostModel> make_predictor_cost_model(const SearchSpace& space, std::string metric,
                                                     std::shared_ptr<const Predictor> predictor, FeatureOptions features,
                                                     bool log_target) {
  return std::make_unique<PredictorModel>(space, std::move(metric), std::move(predictor), features, log_target);
}

std::string layer_key(const ConcreteNetwork& net, std::size_t i) {
  const ConcreteLayer& l = net.layers.at(i);
  std::string k = l.op;
  if (l.op == "sum") {
    std::size_t live = 0;
    for (int in : l.inputs) live += in < 0 || net.layers[static_cast<std::size_t>(in)].op != "zero";
    k += fmt::format(" live={}", live);
  }
  for (const auto& [name, v] : l.attrs.values()) k += fmt::format(" {}={}", name, v.repr());
  for (const auto& s : l.input_shapes) k += fmt::format(" in={}", shape_to_string(s));
  return k;
}

double LatencyTable::predict(const ConcreteNetwork& net) const { return fixed_ms + scale * layers_ms(net); }

CalibrationFit LatencyTable::fit_calibration(CalibrationFit fit) {
  std::vector<CalibrationPoint> pts;
  for (const auto& p : calibration) {
    if (p.layers_ms > 0 && p.measured_ms > 0 && std::isfinite(p.layers_ms) && std::isfinite(p.measured_ms)) pts.push_back(p);
  }
  if (pts.empty()) return fit;
  if (fit == CalibrationFit::kAffine && pts.size() >= 4) {
    double lo = pts[0].layers_ms, hi = lo;
    for (const auto& p : pts) lo = std::min(lo, p.layers_ms), hi = std::max(hi, p.layers_ms);
    if (hi >= 1.5 * lo) {
      std::vector<double> slopes;
      for (std::size_t i = 0; i < pts.size(); ++i) {
        for (std::size_t j = i + 1; j < pts.size(); ++j) {
          const double dx = pts[j].layers_ms - pts[i].layers_ms;
          if (std::abs(dx) > 1e-12 * hi) slopes.push_back((pts[j].measured_ms - pts[i].measured_ms) / dx);
        }
      }
      if (!slopes.empty()) {
        const double slope = detail::upper_median(slopes);
        std::vector<double> intercepts;
        for (const auto& p : pts) intercepts.push_back(p.measured_ms - slope * p.layers_ms);
        const double intercept = detail::upper_median(intercepts);
        if (slope > 0 && intercept >= 0) {
          scale = slope;
          fixed_ms = intercept;
          return CalibrationFit::kAffine;
        }
      }
    }
  }
  std::vector<double> ratio;
  for (const auto& p : pts) ratio.push_back(p.measured_ms / p.layers_ms);
  scale = detail::upper_median(ratio);
  fixed_ms = 0;
  return CalibrationFit::kScale;
}

double LatencyTable::layers_ms(const ConcreteNetwork& net) const {
  double total = 0;
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const std::string key = layer_key(net, i);
    auto it = ms.find(key);
    if (it == ms.end()) {
      throw NotFound(fmt::format("latency table ({}): no entry for layer {} ({}); profile this space first", device,
                                 net.layers[i].name, key));
    }
    total += it->second;
  }
  return total;
}

nlohmann::json LatencyTable::to_json() const {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : calibration) {
    if (std::isfinite(p.layers_ms) && std::isfinite(p.measured_ms)) points.push_back({p.layers_ms, p.measured_ms});
  }
  nlohmann::json j = {{"batch", batch}, {"threads", threads}, {"fixed_ms", fixed_ms}, {"scale", scale},
                      {"device", device}, {"timing", in_network ? "in-network" : "alone"}, {"layers", ms},
                      {"calibration", points}};
  if (reference_ms > 0) j["reference"] = {{"ms", reference_ms}, {"fingerprint", reference_fingerprint}};
  return j;
}

LatencyTable LatencyTable::from_json(const nlohmann::json& j) {
  LatencyTable t;
  try {
    t.batch = j.at("batch");
    t.threads = j.at("threads");
    t.fixed_ms = j.at("fixed_ms");
    t.scale = j.at("scale");
    t.device = j.value("device", "");
    const std::string timing = j.value("timing", "alone");  // tables from before the option: alone
    if (timing != "alone" && timing != "in-network") {
      throw InvalidArgument(fmt::format("latency table: \"timing\" must be \"alone\" or \"in-network\", found \"{}\"", timing));
    }
    t.in_network = timing == "in-network";
    t.ms = j.at("layers").get<std::map<std::string, double>>();
    if (j.contains("calibration")) {  // [[layers_ms, measured_ms], ...]; absent in older tables
      const auto& points = j.at("calibration");
      if (!points.is_array()) {
        throw InvalidArgument(fmt::format("latency table: \"calibration\": expected an array of [layers_ms, measured_ms], "
                                          "found {}", points.dump()));
      }
      for (std::size_t i = 0; i < points.size(); ++i) {
        const auto& p = points[i];
        if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number()) {
          throw InvalidArgument(fmt::format("latency table: calibration[{}]: expected [layers_ms, measured_ms], found {}",
                                            i, p.dump()));
        }
        t.calibration.push_back({p[0].get<double>(), p[1].get<double>()});
      }
    }
    if (j.contains("reference")) {  // {"ms": positive, "fingerprint": text}; absent in absolute tables
      const auto& r = j.at("reference");
      const double ms = r.is_object() && r.contains("ms") && r.at("ms").is_number() ? r.at("ms").get<double>() : 0.0;
      if (!(ms > 0) || !std::isfinite(ms) || !r.contains("fingerprint") || !r.at("fingerprint").is_string()) {
        throw InvalidArgument(fmt::format("latency table: \"reference\": expected {{\"ms\": a positive number, "
                                          "\"fingerprint\": text}}, found {}", r.dump()));
      }
      t.reference_ms = ms;
      t.reference_fingerprint = r.at("fingerprint").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(fmt::format("latency table: expected batch, threads, fixed_ms, scale and layers (and optionally calibration: [[layers_ms, measured_ms], ...]): {}", e.what()));
  }
  return t;
}

std::unique_ptr<CostModel> make_energy_cost_model(const SearchSpace& space, EnergyConstants constants, std::int64_t batch) {
  return std::make_unique<EnergyModel>(space, constants, batch);
}

class EnergyCounter::Impl {
 public:
  virtual ~Impl() = default;
  virtual double read_mj() = 0;
  std::string name;
};

namespace {
// RAPL: the package domains intel-rapl:0, intel-rapl:1, ... (AMD exposes its packages there
// too), each a microjoule counter that wraps at max_energy_range_uj.
class RaplCounter final : public EnergyCounter::Impl {
 public:
  RaplCounter() {
    namespace fs = std::filesystem;
    const fs::path root = "/sys/class/powercap";
    std::error_code ec;
    if (fs::exists(root, ec)) {
      for (const auto& e : fs::directory_iterator(root, ec)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("intel-rapl:", 0) != 0 || n.find(':', 11) != std::string::npos) continue;  // a top-level zone
        std::ifstream kind(e.path() / "name");
        std::string zone;
        kind >> zone;
        if (zone.rfind("package", 0) == 0) domains_.push_back(e.path());  // not psys: it holds a package
      }
    }
    std::sort(domains_.begin(), domains_.end());
    if (domains_.empty()) {
      throw NotFound("measured CPU energy is not available here: no RAPL package domain under /sys/class/powercap "
                     "(a virtual machine, a CPU without RAPL, or powercap not enabled)");
    }
    for (const auto& d : domains_) {
      range_.push_back(read(d, "max_energy_range_uj"));
      last_.push_back(read(d, "energy_uj"));
    }
    name = fmt::format("cpu (RAPL, {} package{})", domains_.size(), domains_.size() == 1 ? "" : "s");
  }
  double read_mj() override {
    for (std::size_t i = 0; i < domains_.size(); ++i) {
      const double now = read(domains_[i], "energy_uj");
      total_uj_ += now >= last_[i] ? now - last_[i] : now + range_[i] - last_[i];  // the counter wrapped
      last_[i] = now;
    }
    return total_uj_ * 1e-3;
  }

 private:
  static double read(const std::filesystem::path& d, const char* file) {
    std::ifstream in(d / file);
    double v = -1;
    if (!(in >> v)) {
      throw NotFound(fmt::format("measured CPU energy is not available here: cannot read {} (permission?)",
                                 (d / file).string()));
    }
    return v;
  }
  std::vector<std::filesystem::path> domains_;
  std::vector<double> range_, last_;
  double total_uj_ = 0;
};

// NVML: the few entry points used, resolved from the driver's library at run time.
class NvmlCounter final : public EnergyCounter::Impl {
 public:
  // The GPU with NVML index `index`, or with UUID `uuid` where that is not empty.
  NvmlCounter(unsigned index, const std::string& uuid) {
    try {
      lib_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
      if (!lib_) {
        throw NotFound("measured GPU energy is not available here: libnvidia-ml.so.1 (the NVIDIA driver's NVML) cannot "
                       "be loaded (no NVIDIA driver on this machine)");
      }
      init_ = sym<int (*)()>("nvmlInit_v2");
      shutdown_ = sym<int (*)()>("nvmlShutdown");
      energy_ = sym<int (*)(void*, unsigned long long*)>("nvmlDeviceGetTotalEnergyConsumption");
      error_ = sym<const char* (*)(int)>("nvmlErrorString");
      check(init_(), "nvmlInit_v2");
      initialised_ = true;
      if (uuid.empty()) {
        auto by_index = sym<int (*)(unsigned, void**)>("nvmlDeviceGetHandleByIndex_v2");
        check(by_index(index, &device_), fmt::format("nvmlDeviceGetHandleByIndex_v2({})", index));
        name = fmt::format("gpu {} (NVML)", index);
      } else {
        auto by_uuid = sym<int (*)(const char*, void**)>("nvmlDeviceGetHandleByUUID");
        check(by_uuid(uuid.c_str(), &device_), fmt::format("nvmlDeviceGetHandleByUUID({})", uuid));
        name = fmt::format("gpu {} (NVML)", uuid);
      }
      origin_ = raw();
    } catch (...) {
      release();  // no destructor runs for a constructor that threw
      throw;
    }
  }
  NvmlCounter(const NvmlCounter&) = delete;
  NvmlCounter& operator=(const NvmlCounter&) = delete;
  ~NvmlCounter() override { release(); }
  double read_mj() override { return static_cast<double>(raw() - origin_); }

 private:
  void release() noexcept {
    if (initialised_) shutdown_();
    initialised_ = false;
    if (lib_) dlclose(lib_);
    lib_ = nullptr;
  }
  unsigned long long raw() {  // a 64-bit millijoule counter since the driver loaded
    unsigned long long mj = 0;
    check(energy_(device_, &mj), "nvmlDeviceGetTotalEnergyConsumption (needs a Volta or newer GPU)");
    return mj;
  }
  template <typename F>
  F sym(const char* symbol) {
    void* f = dlsym(lib_, symbol);
    if (!f) {
      throw NotFound(fmt::format("measured GPU energy is not available here: the driver's NVML lacks {}", symbol));
    }
    return reinterpret_cast<F>(f);
  }
  void check(int rc, const std::string& call) {
    if (rc != 0) {  // NVML_SUCCESS
      throw NotFound(fmt::format("measured GPU energy is not available here: {} failed: {} (NVML error {})", call,
                                 error_ ? error_(rc) : "?", rc));
    }
  }
  void* lib_ = nullptr;
  bool initialised_ = false;
  void* device_ = nullptr;
  unsigned long long origin_ = 0;
  int (*init_)() = nullptr;
  int (*shutdown_)() = nullptr;
  int (*energy_)(void*, unsigned long long*) = nullptr;
  const char* (*error_)(int) = nullptr;
};
}  // namespace

EnergyCounter::EnergyCounter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EnergyCounter::EnergyCounter(EnergyCounter&&) noexcept = default;
EnergyCounter& EnergyCounter::operator=(EnergyCounter&&) noexcept = default;
EnergyCounter::~EnergyCounter() = default;
EnergyCounter EnergyCounter::cpu() { return EnergyCounter(std::make_unique<RaplCounter>()); }
EnergyCounter EnergyCounter::gpu(unsigned device) { return EnergyCounter(std::make_unique<NvmlCounter>(device, "")); }

EnergyCounter EnergyCounter::for_cuda_device(int cuda_index) {
  if (cuda_index < 0) throw InvalidArgument(fmt::format("EnergyCounter::for_cuda_device: expected an index >= 0, found {}", cuda_index));
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!visible || !*visible) return gpu(static_cast<unsigned>(cuda_index));
  std::vector<std::string> entries;
  std::string entry;
  for (const char* c = visible;; ++c) {
    if (*c == ',' || *c == '\0') {
      entries.push_back(entry);
      entry.clear();
      if (*c == '\0') break;
    } else if (*c != ' ') {
      entry += *c;
    }
  }
  if (static_cast<std::size_t>(cuda_index) >= entries.size()) {
    throw NotFound(fmt::format("measured GPU energy is not available here: CUDA device {} is not among "
                               "CUDA_VISIBLE_DEVICES=\"{}\"", cuda_index, visible));
  }
  const std::string& e = entries[static_cast<std::size_t>(cuda_index)];
  if (e.rfind("GPU-", 0) == 0) return EnergyCounter(std::make_unique<NvmlCounter>(0, e));
  if (!e.empty() && e.size() <= 4 && e.find_first_not_of("0123456789") == std::string::npos) return gpu(static_cast<unsigned>(std::stoul(e)));
  throw NotFound(fmt::format("measured GPU energy is not available here: cannot map CUDA_VISIBLE_DEVICES entry \"{}\" "
                             "(expected a number or a GPU-... UUID) to an NVML device", e));
}

namespace {
class FunctionCounter final : public EnergyCounter::Impl {
 public:
  FunctionCounter(std::function<double()> f, std::string n) : f_(std::move(f)) {
    NASFORGE_CHECK(static_cast<bool>(f_), "EnergyCounter::from_function: expected a function, found none");
    name = std::move(n);
    origin_ = f_();
  }
  double read_mj() override { return f_() - origin_; }

 private:
  std::function<double()> f_;
  double origin_ = 0;
};
}  // namespace

EnergyCounter EnergyCounter::from_function(std::function<double()> read_mj, std::string name) {
  return EnergyCounter(std::make_unique<FunctionCounter>(std::move(read_mj), std::move(name)));
}
double EnergyCounter::read_mj() { return impl_->read_mj(); }
const std::string& EnergyCounter::name() const { return impl_->name; }

double measure_cpu_energy_mj(const std::function<void()>& work) {
  auto counter = EnergyCounter::cpu();
  const double before = counter.read_mj();
  work();
  return counter.read_mj() - before;
}

double measure_gpu_energy_mj(const std::function<void()>& work, unsigned device) {
  auto counter = EnergyCounter::gpu(device);
  const double before = counter.read_mj();
  work();
  return counter.read_mj() - before;
}

std::unique_ptr<CostModel> make_lut_cost_model(const SearchSpace& space, LatencyTable table) {
  return std::make_unique<LutModel>(space, std::move(table));
}

std::unique_ptr<CostModel> load_cost_model(const SearchSpace& space, const nlohmann::json& j) {
  const std::string kind = j.value("kind", "");
  if (kind == "analytic") return make_analytic_cost_model(space, j.at("metric"), j.value("batch", 1));
  if (kind == "lut") return make_lut_cost_model(space, LatencyTable::from_json(j));
  if (kind == "energy") {
    EnergyConstants c{j.value("mac_pj", 4.6), j.value("dram_byte_pj", 160.0), j.value("sram_byte_pj", 1.25),
                      j.value("activation_dram_share", 1.0)};
    return make_energy_cost_model(space, c, j.value("batch", 1));
  }
  if (kind == "predictor") {
    const FeatureOptions f = features_from_json(j.at("features"), space);
    return make_predictor_cost_model(space, j.at("metric"), make_predictor_from_json(j.at("predictor")), f,
                                     j.value("log_target", false));
  }
  throw InvalidArgument(fmt::format("cost model: expected \"kind\" analytic, energy, lut or predictor, found \"{}\"", kind));
}

}  // namespace nasforge
