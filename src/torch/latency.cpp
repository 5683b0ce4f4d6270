#include "nasforge/torch/latency.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>
#include <mutex>

#include <torch/torch.h>

#include <fmt/format.h>

#include "detail/stats.h"
#include "nasforge/allocator.h"
#include "nasforge/error.h"
#include "nasforge/random.h"
#include "nasforge/torch/network.h"
#include "torch/layer_modules.h"
#include "torch/thread_scope.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

void sync(const ::torch::Device& d) {
  if (d.is_cuda()) ::torch::cuda::synchronize(d.has_index() ? d.index() : -1);
}

// The fastest or the median (the upper one of an even count) of `ms` (not empty).
double statistic(std::vector<double> ms, bool fastest) {
  return fastest ? *std::min_element(ms.begin(), ms.end()) : detail::upper_median(std::move(ms));
}

// Runs `call` per the options' warm-up and repetition rules (warm-up calls, then timed calls
// until both min_reps calls and min_ms of time have passed); the milliseconds of each timed call.
template <typename F>
std::vector<double> time_calls(F&& call, const ProfileOptions& o) {
  for (int i = 0; i < o.warmup; ++i) call();
  sync(o.device);
  std::vector<double> ms;
  double total = 0;
  while (static_cast<int>(ms.size()) < o.min_reps || total < o.min_ms) {
    auto t0 = Clock::now();
    call();
    sync(o.device);
    double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ms.push_back(t);
    total += t;
    if (ms.size() > 100000) break;
  }
  return ms;
}

// The median (or fastest) milliseconds of `call`.
template <typename F>
double time_median(F&& call, const ProfileOptions& o) {
  return statistic(time_calls(std::forward<F>(call), o), o.fastest);
}

std::vector<std::int64_t> batched(std::int64_t b, const Shape& s) {
  std::vector<std::int64_t> v{b};
  v.insert(v.end(), s.begin(), s.end());
  return v;
}

// `net` built on the options' device in eval mode, and a random input batch for it.
std::pair<Network, ::torch::Tensor> ready(const ConcreteNetwork& net, const ProfileOptions& o) {
  Network module(net);
  module->to(o.device);
  module->eval();
  return {module, ::torch::randn(batched(o.batch, net.input_shape), ::torch::TensorOptions().device(o.device))};
}

// A stable name for a reference network: FNV-1a (64 bits) of its printed form.
std::string fingerprint(const ConcreteNetwork& net) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : net.to_string()) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("{:016x}", h);
}

}  // namespace

double measure_latency_ms(const ConcreteNetwork& net, const ProfileOptions& o) {
  if (o.reuse_freed_memory) reuse_freed_memory();
  detail::ThreadScope threads(o.threads, /*blas=*/true);
  ::torch::NoGradGuard no_grad;
  auto [module, x] = ready(net, o);
  return time_median([&] { module->forward(x); }, o);
}

namespace {
// Runs `work` between two timings of the reference network; their mean.
template <typename F>
double beside_reference(const ProfileOptions& o, F&& work) {
  const double before = measure_latency_ms(*o.reference, o);
  work();
  return 0.5 * (before + measure_latency_ms(*o.reference, o));
}

// Checks that a referenced `table` is used with its own reference network and settings
// (InvalidArgument naming what differs, `where` first).
void check_reference(const LatencyTable& table, const ProfileOptions& o, const char* where) {
  NASFORGE_CHECK(o.reference.has_value(),
                 "{}: the latency table was profiled beside reference network {}; set ProfileOptions::reference to "
                 "that network", where, table.reference_fingerprint);
  const std::string fp = fingerprint(*o.reference);
  NASFORGE_CHECK(table.reference_fingerprint == fp,
                 "{}: the latency table was profiled beside reference network {}, ProfileOptions::reference is {} "
                 "(another network, or another space or --set)", where, table.reference_fingerprint, fp);
  NASFORGE_CHECK(o.batch == table.batch && o.threads == table.threads,
                 "{}: the latency table was profiled at batch {} on {} thread(s), the options give batch {} on {}",
                 where, table.batch, table.threads, o.batch, o.threads);
}

// Makes `table` and `o` agree on the reference: a table begun with one records the
// reference's latency now and its fingerprint; one that has a reference must be completed
// beside the same network at the same batch and threads, one without, without. Returns
// whether the table is referenced.
bool anchor(LatencyTable& table, const ProfileOptions& o) {
  if (table.reference_ms > 0) {
    check_reference(table, o, "latency table");
    return true;
  }
  if (!o.reference) return false;
  NASFORGE_CHECK(table.ms.empty() && table.calibration.empty(),
                 "latency table: it holds {} entries timed without a reference; a reference network "
                 "(ProfileOptions::reference) can only begin a table", table.ms.size());
  table.reference_ms = measure_latency_ms(*o.reference, o);
  table.reference_fingerprint = fingerprint(*o.reference);
  return true;
}

// Runs `time_them` and returns the factor that takes the timings it made to the table's
// reference speed: reference_ms / the reference's mean just before and after (1 without one).
template <typename F>
double at_reference_speed(const LatencyTable& table, const ProfileOptions& o, F&& time_them) {
  if (!o.reference || table.reference_ms <= 0) {
    time_them();
    return 1.0;
  }
  return table.reference_ms / beside_reference(o, std::forward<F>(time_them));
}
}  // namespace

RelativeLatency measure_relative_latency(const ConcreteNetwork& net, const ProfileOptions& o) {
  NASFORGE_CHECK(o.reference.has_value(), "measure_relative_latency: ProfileOptions::reference is not set");
  RelativeLatency r;
  r.reference_ms = beside_reference(o, [&] { r.ms = measure_latency_ms(net, o); });
  return r;
}

double reanchor(LatencyTable& table, const ProfileOptions& o) {
  NASFORGE_CHECK(table.reference_ms > 0, "reanchor: the latency table was profiled without a reference network");
  check_reference(table, o, "reanchor");
  // Every timing in the table is at the reference's old speed: all move to the new one (the
  // entries too, so that layers profiled later, at the new reference_ms, add up with them).
  const double k = measure_latency_ms(*o.reference, o) / table.reference_ms;
  for (auto& [key, ms] : table.ms) ms *= k;
  table.fixed_ms *= k;
  table.reference_ms *= k;
  for (auto& p : table.calibration) p.layers_ms *= k, p.measured_ms *= k;
  return k;
}

::torch::Device parse_device(const std::string& name) {
  if (name != "cpu" && name != "cuda" && name.rfind("cuda:", 0) != 0) {
    throw InvalidArgument(fmt::format("device: expected cpu, cuda or cuda:N, found \"{}\"", name));
  }
  if (name == "cpu") return ::torch::kCPU;
  int index = 0;
  if (name.size() >= 5) {  // "cuda:" and a number
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) {
      throw InvalidArgument(fmt::format("device: expected cuda:N with N a device index, found \"{}\"", name));
    }
    index = std::stoi(digits);
  }
  const auto count = static_cast<int>(::torch::cuda::device_count());
  if (index >= count) {
    throw NotFound(count == 0 ? fmt::format("device {}: LibTorch sees no CUDA device here (a CPU-only LibTorch, no "
                                            "NVIDIA driver, or CUDA_VISIBLE_DEVICES empty)", name)
                              : fmt::format("device {}: LibTorch sees {} CUDA device(s) here, numbered from 0", name, count));
  }
  return {::torch::kCUDA, static_cast<::torch::DeviceIndex>(index)};
}

EnergyCounter energy_counter(const ::torch::Device& device) {
  return device.is_cuda() ? EnergyCounter::for_cuda_device(device.has_index() ? device.index() : 0) : EnergyCounter::cpu();
}

EnergyMeasurement measure_energy(const ConcreteNetwork& net, const ProfileOptions& o, double window_ms) {
  NASFORGE_CHECK(window_ms > 0, "measure_energy: expected window_ms > 0, found {}", window_ms);
  EnergyCounter counter = energy_counter(o.device);
  return measure_energy(net, o, counter, window_ms);
}

EnergyMeasurement measure_energy(const ConcreteNetwork& net, const ProfileOptions& o, EnergyCounter& counter,
                                 double window_ms) {
  NASFORGE_CHECK(window_ms > 0, "measure_energy: expected window_ms > 0, found {}", window_ms);
  if (o.reuse_freed_memory) reuse_freed_memory();
  detail::ThreadScope threads(o.threads, /*blas=*/true);
  ::torch::NoGradGuard no_grad;
  auto [module, x] = ready(net, o);
  auto call = [&] {
    module->forward(x);
    sync(o.device);
  };
  for (int i = 0; i < std::max(1, o.warmup); ++i) call();
  const auto elapsed_ms = [](Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
  };
  // Waits for a step of the counter, running forwards meanwhile; at most `align_ms`.
  const double align_ms = std::max(window_ms, 2000.0);
  std::int64_t calls = 0;
  auto until_step = [&](bool count, const char* where) {
    const double before = counter.read_mj();
    for (auto t = Clock::now(); elapsed_ms(t) < align_ms;) {
      call();
      calls += count;
      const double now = counter.read_mj();
      if (now != before) return now;
    }
    throw NotFound(fmt::format("measured energy is not available here: {} did not step in {:.0f} ms ({} the window)",
                               counter.name(), align_ms, where));
  };
  // The window opens on a step, runs at least `window_ms` and one forward (reading the counter
  // now and then: RAPL's wraps are caught between reads), and closes on the next step.
  const double e0 = until_step(false, "opening");
  const auto start = Clock::now();
  auto last_read = start;
  do {
    call();
    ++calls;
    if (elapsed_ms(last_read) > 250) counter.read_mj(), last_read = Clock::now();
  } while (elapsed_ms(start) < window_ms);
  const double e1 = until_step(true, "closing");
  const double ms = elapsed_ms(start);
  EnergyMeasurement m;
  m.calls = calls;
  m.mj_per_call = (e1 - e0) / static_cast<double>(calls);
  m.ms_per_call = ms / static_cast<double>(calls);
  m.watts = (e1 - e0) / ms;  // mJ / ms = W
  m.counter = counter.name();
  return m;
}

namespace {
// The in-network profiler: every network holding a layer the table lacks runs whole under
// Network::forward_timed for the usual repetitions; each such layer's statistic (median or
// fastest over the repetitions) is collected per occurrence, and its entry is the median over
// its occurrences in these networks. Returns the networks it cannot run whole (supernet
// structures: their `mixed` and `select` layers have no module), for timing alone.
std::vector<ConcreteNetwork> profile_in_network(LatencyTable& table, const std::vector<ConcreteNetwork>& nets,
                                                const ProfileOptions& o) {
  std::map<std::string, std::vector<double>> found;
  std::vector<ConcreteNetwork> alone;
  for (const auto& net : nets) {
    const bool supernet = std::any_of(net.layers.begin(), net.layers.end(),
                                      [](const ConcreteLayer& l) { return l.op == "mixed" || l.op == "select"; });
    if (supernet) {
      alone.push_back(net);
      continue;
    }
    std::vector<std::string> keys(net.layers.size());
    bool needed = false;
    for (std::size_t i = 0; i < net.layers.size(); ++i) {
      keys[i] = layer_key(net, i);
      needed = needed || !table.ms.count(keys[i]);
    }
    if (!needed) continue;
    auto [module, x] = ready(net, o);
    std::vector<double> layer_ms;
    std::vector<std::vector<double>> reps(net.layers.size());
    std::size_t calls = 0;  // the first o.warmup calls are warm-up: their layer times are not kept
    const double speed = at_reference_speed(table, o, [&] {
      time_calls([&] {
        module->forward_timed(x, layer_ms, o.cuda_events);
        if (calls++ < static_cast<std::size_t>(std::max(0, o.warmup))) return;
        for (std::size_t i = 0; i < layer_ms.size(); ++i) reps[i].push_back(layer_ms[i]);
      }, o);
    });
    for (std::size_t i = 0; i < net.layers.size(); ++i) {
      if (!table.ms.count(keys[i])) found[keys[i]].push_back(speed * statistic(reps[i], o.fastest));
    }
  }
  for (auto& [key, v] : found) table.ms.emplace(key, statistic(v, false));
  return alone;
}

// profile_layers once the table and the options agree on the reference (anchor).
void profile_layers_anchored(LatencyTable& table, const std::vector<ConcreteNetwork>& nets, const ProfileOptions& o,
                             bool in_network) {
  table.batch = o.batch;
  table.threads = o.threads;
  table.device = o.device_name;
  table.in_network = in_network;
  std::vector<ConcreteNetwork> supernets;
  if (in_network) {
    supernets = profile_in_network(table, nets, o);
    if (supernets.empty()) return;
  }
  const auto opts = ::torch::TensorOptions().device(o.device);
  // Layer i of `net` timed alone.
  auto time_alone = [&](const ConcreteNetwork& net, std::size_t i) {
    const auto& l = net.layers[i];
    double ms = 0;
    if (l.op == "zero") {  // Network materialises zeros of the output shape
      auto shape = batched(o.batch, l.output_shape);
      ms = time_median([&] { ::torch::zeros(shape, opts); }, o);
    } else if (l.op == "sum") {
      std::vector<::torch::Tensor> in;
      for (std::size_t k = 0; k < l.inputs.size(); ++k) {
        int src = l.inputs[k];
        if (src < 0 || net.layers[static_cast<std::size_t>(src)].op != "zero") {
          in.push_back(::torch::randn(batched(o.batch, l.input_shapes[k]), opts));
        }
      }
      ms = in.size() <= 1 ? 0.0 : time_median([&] {
        ::torch::Tensor acc = in[0];
        for (std::size_t k = 1; k < in.size(); ++k) acc = acc + in[k];
      }, o);
    } else if (l.op == "concat") {
      std::vector<::torch::Tensor> in;
      for (const auto& s : l.input_shapes) in.push_back(::torch::randn(batched(o.batch, s), opts));
      ms = time_median([&] { ::torch::cat(in, 1); }, o);
    } else {
      auto m = detail::make_layer_module(l);
      m.ptr()->to(o.device);
      m.ptr()->eval();
      auto x = ::torch::randn(batched(o.batch, l.input_shapes.at(0)), opts);
      ms = time_median([&] { m.forward(x); }, o);
    }
    return ms;
  };
  for (const auto& net : in_network ? supernets : nets) {
    std::vector<std::pair<std::string, std::size_t>> todo;  // layers the table lacks, in order, each key once
    std::map<std::string, double> fresh;
    for (std::size_t i = 0; i < net.layers.size(); ++i) {
      std::string key = layer_key(net, i);
      if (table.ms.count(key) || !fresh.emplace(key, 0.0).second) continue;
      const auto& op = net.layers[i].op;
      if (op == "mixed" || op == "select") {  // bookkeeping, costed by expected_latency_ms: nothing to time
        table.ms.emplace(key, 0.0);
        continue;
      }
      todo.emplace_back(std::move(key), i);
    }
    if (todo.empty()) continue;  // (no reference timings for a network with nothing to time)
    const double speed = at_reference_speed(table, o, [&] {
      for (const auto& [key, i] : todo) fresh[key] = time_alone(net, i);
    });
    for (const auto& [key, i] : todo) table.ms.emplace(key, speed * fresh[key]);
  }
}
}  // namespace

void profile_layers(LatencyTable& table, const std::vector<ConcreteNetwork>& nets, const ProfileOptions& o) {
  if (o.reuse_freed_memory) reuse_freed_memory();
  detail::ThreadScope threads(o.threads, /*blas=*/true);
  ::torch::NoGradGuard no_grad;
  // A table is completed the way it was profiled (its one scale fits one timing method).
  const bool in_network = table.ms.empty() ? o.in_network : table.in_network;
  const bool had_reference = table.reference_ms > 0;
  const bool begun_here = anchor(table, o) && !had_reference;  // anchor checks a table's own reference
  try {
    profile_layers_anchored(table, nets, o, in_network);
  } catch (...) {
    if (begun_here) table.reference_ms = 0, table.reference_fingerprint.clear();  // a retry may begin it otherwise
    throw;
  }
}

void calibrate(LatencyTable& table, const std::vector<ConcreteNetwork>& nets, const ProfileOptions& o) {
  for (const auto& net : nets) {
    profile_layers(table, {net}, o);
    // profile_layers anchored the table and checked the options: referenced or not, it says.
    const double measured = table.reference_ms > 0 ? measure_relative_latency(net, o).relative() * table.reference_ms
                                                   : measure_latency_ms(net, o);
    table.calibration.push_back({table.layers_ms(net), measured});
  }
  // The median ratio by default: robust to the odd measurement a shared host disturbs (a
  // least-squares line through 20 such points swung the scale from 0.96 to 0.79 between two runs).
  table.fit_calibration(o.calibration_fit);
}

LatencyTable profile_space(const SearchSpace& space, const ProfileOptions& o, std::size_t samples, std::size_t calibration,
                           std::uint64_t seed) {
  LatencyTable t;
  std::vector<ConcreteNetwork> nets;
  const auto size = space.size().value;
  if (size && *size <= samples) {
    space.for_each([&](const Architecture& a) { nets.push_back(space.resolve(a)); });
  } else {
    Rng rng(seed);
    for (std::size_t i = 0; i < samples; ++i) nets.push_back(space.resolve(space.sample(rng)));
  }
  profile_layers(t, nets, o);
  // Running a whole network differs from its layers run alone (the DAG walk, freeing, the
  // allocator, caches): calibrate on a few other networks.
  Rng rng(seed ^ 0xC0FFEEULL);
  std::vector<ConcreteNetwork> cal;
  for (std::size_t i = 0; i < calibration; ++i) cal.push_back(space.resolve(space.sample(rng)));
  calibrate(t, cal, o);
  return t;
}

::torch::Tensor expected_latency_ms(const SupernetImpl& net, const LatencyTable& table) {
  std::vector<::torch::Tensor> p(net.space().decisions().size());
  for (std::size_t d = 0; d < p.size(); ++d) {
    if (net.alpha(d).defined()) p[d] = net.weights(d);
  }
  return expected_latency_ms(net, table, p);
}

::torch::Tensor expected_latency_ms(const SupernetImpl& net, const LatencyTable& table,
                                    const std::vector<::torch::Tensor>& probabilities) {
  NASFORGE_CHECK(probabilities.size() == net.space().decisions().size(),
                 "expected_latency_ms: expected {} probability tensors (one per decision), got {}",
                 net.space().decisions().size(), probabilities.size());
  const ConcreteNetwork& s = net.structure();
  std::vector<char> candidate(s.layers.size(), 0);
  for (const auto& l : s.layers) {
    if (l.op != "mixed") continue;
    for (int in : l.inputs) candidate[static_cast<std::size_t>(in)] = 1;
  }
  auto entry = [&](std::size_t i) {
    if (s.layers[i].op == "mixed" || s.layers[i].op == "select") return 0.0;
    const std::string key = layer_key(s, i);
    auto it = table.ms.find(key);
    if (it == table.ms.end()) {
      throw NotFound(fmt::format("expected_latency_ms: the table has no entry for supernet layer {} ({}); run "
                                 "profile_layers(table, {{net.structure()}}) first",
                                 s.layers[i].name, key));
    }
    return it->second;
  };
  double fixed = 0;
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    if (!candidate[i]) fixed += entry(i);
  }
  ::torch::Tensor total;
  for (const auto& l : s.layers) {
    if (l.op != "mixed") continue;
    const auto d = static_cast<std::size_t>(l.attrs.i("decision"));
    std::vector<float> lat;
    for (int in : l.inputs) {
      const auto c = static_cast<std::size_t>(in);
      lat.push_back(s.layers[c].op == "zero" ? 0.0F : static_cast<float>(entry(c)));
    }
    const auto& w = probabilities[d];
    NASFORGE_CHECK(w.defined() && w.numel() == static_cast<std::int64_t>(lat.size()),
                   "expected_latency_ms: decision {} needs {} probabilities", d, lat.size());
    auto term = (w * ::torch::tensor(lat, w.options().requires_grad(false))).sum();
    total = total.defined() ? total + term : term;
  }
  auto base = ::torch::tensor(fixed, ::torch::TensorOptions().dtype(::torch::kFloat));
  if (total.defined()) base = base.to(total.device()) + total;
  return base * table.scale + table.fixed_ms;
}

namespace {
class MeasuredModel final : public CostModel {
 public:
  MeasuredModel(SearchSpace space, ProfileOptions o) : space_(std::move(space)), o_(std::move(o)) {}
  std::string kind() const override { return "measured"; }
  std::string metric() const override { return "latency_ms"; }
  std::string unit() const override { return "ms"; }
  double predict(const Architecture& arch) const override {
    std::lock_guard lock(mutex_);  // one timing at a time: concurrent runs would disturb each other
    return measure_latency_ms(space_.resolve(arch), o_);
  }
  nlohmann::json to_json() const override {
    return {{"kind", "measured"}, {"batch", o_.batch}, {"threads", o_.threads}, {"device", o_.device_name}};
  }

 private:
  SearchSpace space_;
  ProfileOptions o_;
  mutable std::mutex mutex_;
};
}  // namespace

std::unique_ptr<CostModel> make_measured_cost_model(const SearchSpace& space, const ProfileOptions& options) {
  return std::make_unique<MeasuredModel>(space, options);
}

}  // namespace nasforge
