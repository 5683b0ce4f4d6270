// The CLI's LibTorch commands: `nasforge train` trains one architecture's network on
// Fashion-MNIST (or the synthetic set) and reports test accuracy; `nasforge supernet init`
// writes a supernet checkpoint; `nasforge extract` cuts a sub-network out of one.
#include <algorithm>
#include <filesystem>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli/args.h"
#include "detail/files.h"
#include "nasforge/costs.h"
#include "nasforge/evaluator.h"
#include "nasforge/search.h"
#include "nasforge/strategy.h"
#include "nasforge/torch/darts.h"
#include "nasforge/torch/few_shot.h"
#include "nasforge/torch/latency.h"
#include "nasforge/torch/mlp_predictor.h"
#include "nasforge/torch/serialize.h"
#include "nasforge/torch/supernet.h"
#include "nasforge/torch/trainer.h"

namespace nasforge::cli {

namespace {
// --data fashion-mnist|synthetic for a network of `net`'s input and output: (train, test).
// --subset N keeps a seeded random N of the training images.
std::pair<TensorData, TensorData> load_data(const Args& a, const char* cmd, const ConcreteNetwork& net) {
  TensorData train_data, test_data;
  Shape data_shape = a.data == "fashion-mnist" ? Shape{1, 28, 28} : net.input_shape;
  if (data_shape != net.input_shape) {  // before loading anything
    throw UsageError(fmt::format("{}: the space's input is {} but {} images are {}; add --set input={}", cmd,
                                 shape_to_string(net.input_shape), a.data, shape_to_string(data_shape),
                                 shape_to_string(data_shape)));
  }
  if (net.output_shape() != Shape{10} && a.data == "fashion-mnist") {
    throw UsageError(fmt::format("{}: the network outputs {} but fashion-mnist has 10 classes", cmd,
                                 shape_to_string(net.output_shape())));
  }
  if (a.data == "fashion-mnist") {
    auto train_set = load_fashion_mnist(true), test_set = load_fashion_mnist(false);
    auto norm = compute_normalization(train_set);
    std::vector<std::int64_t> idx;
    if (a.subset > 0 && a.subset < train_set.size()) {  // a seeded random subset
      idx = train_valid_split(train_set.size(), static_cast<double>(a.subset) / static_cast<double>(train_set.size()), a.seed).valid;
    }
    train_data = to_tensors(train_set, norm, idx);
    test_data = to_tensors(test_set, norm);
  } else if (a.data == "synthetic") {
    auto all = synthetic_data(a.subset > 0 ? a.subset + 1000 : 6000, net.input_shape, net.output_shape().back(), a.seed);
    std::int64_t n = all.size() - 1000;
    train_data = {all.images.slice(0, 0, n), all.labels.slice(0, 0, n)};
    test_data = {all.images.slice(0, n), all.labels.slice(0, n)};
  } else {
    throw UsageError(fmt::format("--data: expected fashion-mnist or synthetic, found \"{}\"", a.data));
  }
  return {std::move(train_data), std::move(test_data)};
}
}  // namespace

int cmd_train(const Args& a) {
  if (a.space.empty()) throw UsageError("train: expected --space FILE");
  if (a.arch.empty()) throw UsageError("train: expected --arch ARCH");
  if (a.out.empty()) throw UsageError("train: expected --out DIR");
  if (!a.positional.empty()) throw UsageError(fmt::format("train: unexpected argument \"{}\"", a.positional[0]));
  auto space = SearchSpace::from_file(a.space, a.overrides);
  auto arch = space.parse_architecture(a.arch);
  auto net = space.resolve(arch);
  auto [train_data, test_data] = load_data(a, "train", net);

  TrainOptions o;
  o.epochs = a.epochs;
  o.batch = a.batch_set ? a.batch : 256;
  o.lr = a.lr;
  o.seed = a.seed;
  o.threads = static_cast<int>(a.threads);
  o.pad_crop = a.augment ? 2 : 0;
  o.flip = a.augment;
  o.checkpoint_dir = (std::filesystem::path(a.out) / "checkpoint").string();
  o.progress = true;
  ::torch::manual_seed(a.seed);  // initialisation; documented: train touches torch's global RNG
  Network module(net);
  if (!a.init.empty()) {  // e.g. a sub-network extracted from a supernet: fine-tune it
    auto start = load_subnetwork(a.init, space);
    if (start.arch != arch) {
      throw UsageError(fmt::format("train: --init {} holds architecture {}, not the --arch given ({})", a.init,
                                   space.to_json(start.arch).dump(), space.to_json(arch).dump()));
    }
    load_weights(*module, (std::filesystem::path(a.init) / "weights.pt").string());
  }
  auto costs = analytic_costs(net);
  const int threads = o.threads > 0 ? o.threads : ::torch::get_num_threads();
  fmt::print("training {} ({} params, {} MACs) on {} ({} train / {} test images), {} epochs, {} threads\n",
             space.native_format() ? space.to_native(arch) : arch.to_string(), costs.params, costs.macs, a.data,
             train_data.size(), test_data.size(), o.epochs, threads);
  auto hist = train(module, train_data, test_data, o);

  nlohmann::json r;
  r["space"] = {{"file", space.origin()}, {"fingerprint", space.fingerprint()}};
  r["arch"] = {{"choices", arch}, {"named", space.to_json(arch)}};
  if (space.native_format()) r["arch"]["native"] = space.to_native(arch);
  r["params"] = costs.params;
  r["threads"] = threads;
  r["history"] = nlohmann::json::array();
  for (const auto& h : hist) {
    r["history"].push_back({{"epoch", h.epoch}, {"lr", h.lr}, {"train_loss", h.train_loss},
                            {"train_accuracy", h.train_accuracy}, {"test_accuracy", h.test_accuracy},
                            {"seconds", h.seconds}});
  }
  r["test_accuracy"] = hist.empty() ? 0.0 : hist.back().test_accuracy;
  std::filesystem::create_directories(a.out);
  if (!a.init.empty()) r["init"] = a.init;
  r["model"] = "model";
  save_subnetwork((std::filesystem::path(a.out) / "model").string(), space, arch, module);
  std::ofstream(std::filesystem::path(a.out) / "result.json") << r.dump(2) << "\n";
  fmt::print("test accuracy {:.2f}% after {} epochs; {}/result.json\n", 100 * r["test_accuracy"].get<double>(),
             hist.empty() ? 0 : hist.back().epoch, a.out);
  return 0;
}

int cmd_supernet_init(const Args& a) {
  if (a.space.empty()) throw UsageError("supernet init: expected --space FILE");
  if (a.out.empty()) throw UsageError("supernet init: expected --out CKPT");
  if (!a.positional.empty()) throw UsageError(fmt::format("supernet init: unexpected argument \"{}\"", a.positional[0]));
  auto space = SearchSpace::from_file(a.space, a.overrides);
  ::torch::manual_seed(a.seed);
  Supernet super(space, SupernetOptions{a.seed, a.kernel_transform});
  auto parent = std::filesystem::path(a.out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  super->save_checkpoint(a.out);
  std::int64_t params = 0;
  for (const auto& p : super->parameters()) params += p.numel();
  fmt::print("supernet of {} ({} weights{}) written to {}\n", space.name(), params,
             super->elastic() ? ", elastic" : "", a.out);
  return 0;
}

int cmd_extract(const Args& a) {
  if (a.space.empty()) throw UsageError("extract: expected --space FILE");
  if (a.supernet.empty()) throw UsageError("extract: expected --supernet CKPT");
  if (a.arch.empty()) throw UsageError("extract: expected --arch ARCH");
  if (a.out.empty()) throw UsageError("extract: expected --out DIR");
  if (!a.positional.empty()) throw UsageError(fmt::format("extract: unexpected argument \"{}\"", a.positional[0]));
  auto space = SearchSpace::from_file(a.space, a.overrides);
  auto arch = space.parse_architecture(a.arch);
  Supernet super(space, SupernetOptions{0, a.kernel_transform});
  super->load_checkpoint(a.supernet);
  super->eval();
  auto net = super->extract(arch);
  save_subnetwork(a.out, space, arch, net);
  auto costs = analytic_costs(net->concrete());
  fmt::print("extracted {} ({} params, {} MACs) from {} into {}\n",
             space.native_format() ? space.to_native(arch) : arch.to_string(), costs.params, costs.macs,
             a.supernet, a.out);
  return 0;
}

void register_torch_extensions() { register_torch_predictors(); }

namespace {
// --batch, --threads (default 1), --fastest, --in-network, --device, --calibration-fit.
ProfileOptions profile_options(const Args& a) {
  ProfileOptions po;
  po.batch = a.batch;
  po.threads = a.threads > 0 ? static_cast<int>(a.threads) : 1;
  po.fastest = a.fastest;
  po.in_network = a.in_network;
  po.device = parse_device(a.device);
  po.calibration_fit = a.calibration_fit == "affine" ? CalibrationFit::kAffine : CalibrationFit::kScale;
  if (po.device.is_cuda()) po.device_name = a.device;
  return po;
}

// `net` timed per `po`: beside its reference network where it has one (measure --reference).
RelativeLatency measure_once(const ConcreteNetwork& net, const ProfileOptions& po) {
  if (po.reference) return measure_relative_latency(net, po);
  RelativeLatency r;
  r.ms = measure_latency_ms(net, po);
  return r;
}

// measure --samples N --out CSV: N distinct random architectures (seeded), one row each, keyed by
// the space's native string (what `predictor fit` reads), written and flushed as measured;
// --resume keeps the complete rows already in CSV and measures the rest.
int measure_table(const Args& a, const SearchSpace& space, const ProfileOptions& po) {
  namespace fs = std::filesystem;
  if (!space.native_format()) {
    throw UsageError(fmt::format("measure --samples: space \"{}\" has no native architecture string to key a table by "
                                 "(predictor fit reads tables keyed by one)", space.name()));
  }
  const auto n = static_cast<std::size_t>(a.samples);
  if (const auto size = space.size().value; size && *size < n) {
    throw UsageError(fmt::format("measure: --samples {} exceeds the {} architectures of {}", n, *size, space.name()));
  }
  Rng rng(a.seed);
  std::vector<Architecture> archs;
  std::set<std::string> wanted;
  while (archs.size() < n) {
    auto arch = space.sample(rng);
    if (wanted.insert(space.to_native(arch)).second) archs.push_back(std::move(arch));
  }
  const std::string header = std::string("arch,latency_ms") + (a.energy ? ",energy_mj,watts" : "") +
                             (po.reference ? ",reference_ms,relative_latency" : "");
  const auto columns = static_cast<std::size_t>(std::count(header.begin(), header.end(), ',')) + 1;
  std::set<std::string> done;
  std::size_t others = 0;  // rows of architectures this run would not measure (another seed)
  const bool resuming = fs::exists(a.out);
  if (resuming && !a.resume) {
    throw UsageError(fmt::format("measure: {} exists; --resume continues it (or remove it to start again)", a.out));
  }
  if (resuming) {
    std::ifstream in(a.out, std::ios::binary);
    std::string line;
    std::uintmax_t complete = 0, offset = 0;  // bytes up to the last complete line
    for (std::size_t number = 1; std::getline(in, line); ++number) {
      const bool terminated = !in.eof();
      offset += line.size() + (terminated ? 1 : 0);
      if (!terminated) break;  // an interrupted last row: dropped below
      complete = offset;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (number == 1) {
        if (line != header) {
          throw InvalidArgument(fmt::format("{}: cannot resume: expected the header \"{}\", found \"{}\"", a.out, header, line));
        }
        continue;
      }
      if (line.empty()) continue;
      if (static_cast<std::size_t>(std::count(line.begin(), line.end(), ',')) + 1 != columns) {
        throw InvalidArgument(fmt::format("{}:{}: cannot resume: expected {} columns as in the header, found \"{}\"", a.out,
                                          number, columns, line));
      }
      const std::string key = line.substr(0, line.find(','));
      done.insert(key);
      others += wanted.count(key) == 0;
    }
    if (complete == 0) throw InvalidArgument(fmt::format("{}: cannot resume: no complete header line", a.out));
    if (complete < fs::file_size(a.out)) fs::resize_file(a.out, complete);
  }
  std::ofstream out(a.out, resuming ? std::ios::app : std::ios::trunc);
  if (!out) throw InvalidArgument(fmt::format("{}: cannot write", a.out));
  if (!resuming) out << header << "\n" << std::flush;
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t measured = 0;
  for (const auto& arch : archs) {
    const std::string cell = space.to_native(arch);
    if (done.count(cell)) continue;
    const auto net = space.resolve(arch);
    const RelativeLatency r = measure_once(net, po);
    std::string row = cell + fmt::format(",{:.5f}", r.ms);
    if (a.energy) {
      const auto e = measure_energy(net, po, a.energy_ms);
      row += fmt::format(",{:.4f},{:.2f}", e.mj_per_call, e.watts);
    }
    if (po.reference) row += fmt::format(",{:.5f},{:.6f}", r.reference_ms, r.relative());
    out << row << "\n" << std::flush;  // whole rows only: an interrupted run resumes cleanly
    if (!out) throw InvalidArgument(fmt::format("{}: cannot write", a.out));
    ++measured;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("measured {} architecture(s) of {} ({} already in the table{}) at batch {} on {} ({} thread(s)) in {:.1f} s; "
             "written to {}\n", measured, space.name(), done.size() - others,
             others ? fmt::format(", and {} rows of other architectures kept", others) : std::string(), po.batch, a.device,
             po.threads, s, a.out);
  return 0;
}

// A latency table as `nasforge profile` writes it: the space's name and fingerprint, the timing
// statistic, the reference network's architecture string where it was profiled beside one, and
// the table.
void write_lut(const std::string& path, const SearchSpace& space, const LatencyTable& table, const std::string& reference,
               bool fastest) {
  nlohmann::json out{{"kind", "lut"}, {"space", space.name()}, {"fingerprint", space.fingerprint()},
                     {"statistic", fastest ? "fastest" : "median"}, {"cost_model", make_lut_cost_model(space, table)->to_json()}};
  if (!reference.empty()) out["reference"] = reference;
  detail::write_file_atomic(path, out.dump(1) + "\n");
}

// A table `nasforge profile` wrote, with what the file says beside it.
struct LutFile {
  LatencyTable table;
  std::string reference;        // the reference network's architecture, if any
  std::string fingerprint;      // of the space it was profiled for
  bool fastest = false;         // its timing statistic
};

LutFile read_lut(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw NotFound(fmt::format("{}: cannot open the latency table", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("cost_model")) {
    throw InvalidArgument(fmt::format("{}: not a latency table written by nasforge profile", path));
  }
  LutFile f;
  f.table = LatencyTable::from_json(j["cost_model"]);
  f.reference = j.contains("reference") && j["reference"].is_string() ? j["reference"].get<std::string>() : "";
  f.fingerprint = j.contains("fingerprint") && j["fingerprint"].is_string() ? j["fingerprint"].get<std::string>() : "";
  f.fastest = j.value("statistic", "median") == "fastest";
  if (f.table.reference_ms > 0 && f.reference.empty()) {
    throw InvalidArgument(fmt::format("{}: the table was profiled beside a reference network ({}) but the file does not "
                                      "name its architecture (\"reference\")", path, f.table.reference_fingerprint));
  }
  return f;
}
}  // namespace

int cmd_profile(const Args& a) {
  if (a.space.empty()) throw UsageError("profile: expected --space FILE");
  auto space = SearchSpace::from_file(a.space, a.overrides);
  ProfileOptions po = profile_options(a);
  if (!a.reanchor.empty()) {  // --reanchor LUT.json [--out NEW.json]: today's speed, by the reference's timing
    LutFile f = read_lut(a.reanchor);
    if (f.reference.empty()) {
      throw UsageError(fmt::format("profile --reanchor: {} was profiled without --reference; profile it again", a.reanchor));
    }
    if (!f.fingerprint.empty() && f.fingerprint != space.fingerprint()) {
      throw UsageError(fmt::format("profile --reanchor: {} was profiled for a space with fingerprint {}; --space and --set "
                                   "give {} (fingerprint {})", a.reanchor, f.fingerprint, space.name(), space.fingerprint()));
    }
    const auto reference = space.resolve(space.parse_architecture(f.reference));
    if (!a.reference.empty() && space.resolve(space.parse_architecture(a.reference)).to_string() != reference.to_string()) {
      throw UsageError(fmt::format("profile --reanchor: {} was profiled beside {}, not {}", a.reanchor, f.reference, a.reference));
    }
    // The reference is timed as the table was profiled: its batch, threads, statistic, device.
    po.batch = f.table.batch;
    po.threads = f.table.threads;
    po.fastest = f.fastest;
    if (f.table.device.rfind("cuda", 0) == 0) po.device = parse_device(f.table.device), po.device_name = f.table.device;
    po.reference = reference;
    const double then = f.table.reference_ms;
    const double k = reanchor(f.table, po);
    const std::string out = a.out.empty() ? a.reanchor : a.out;
    write_lut(out, space, f.table, f.reference, f.fastest);
    fmt::print("the reference network took {:.3f} ms when profiled, {:.3f} ms now (batch {}, {} thread(s), {}): the "
               "table scaled by {:.4f}; written to {}\n", then, f.table.reference_ms, po.batch, po.threads,
               po.fastest ? "fastest" : "median", k, out);
    return 0;
  }
  if (a.out.empty()) throw UsageError("profile: expected --space FILE --out LUT.json");
  if (!a.reference.empty()) po.reference = space.resolve(space.parse_architecture(a.reference));
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t samples = a.samples > 0 ? static_cast<std::size_t>(a.samples) : po.in_network ? 30 : 300;
  auto table = profile_space(space, po, samples, static_cast<std::size_t>(a.calibration), a.seed);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_lut(a.out, space, table, a.reference, po.fastest);
  fmt::print("profiled {} layer configurations of {} at batch {} on {} ({} thread(s), {}) in {:.1f} s; calibration "
             "{:.3f} ms + {:.3f} x sum{}; written to {}\n",
             table.ms.size(), space.name(), po.batch, a.device, po.threads, po.in_network ? "inside networks" : "alone", s,
             table.fixed_ms, table.scale,
             table.reference_ms > 0 ? fmt::format(", at the speed the reference ran {:.3f} ms", table.reference_ms) : "",
             a.out);
  return 0;
}

int cmd_measure(const Args& a) {
  if (a.space.empty()) throw UsageError("measure: expected --space FILE");
  if (a.arch.empty() == (a.samples == 0)) {
    throw UsageError("measure: expected either --arch ARCH (one network) or --samples N --out CSV (a table)");
  }
  auto space = SearchSpace::from_file(a.space, a.overrides);
  ProfileOptions po = profile_options(a);
  if (!a.reference.empty()) po.reference = space.resolve(space.parse_architecture(a.reference));
  if (a.energy) (void)energy_counter(po.device);  // fail before measuring anything where there is none
  if (a.samples > 0) {
    if (a.out.empty()) throw UsageError("measure --samples: expected --out CSV");
    return measure_table(a, space, po);
  }
  const auto net = space.resolve(space.parse_architecture(a.arch));
  const RelativeLatency r = measure_once(net, po);
  fmt::print("latency_ms {:.4f} (batch {}, {} thread(s), {} of >= {} calls, on {})\n", r.ms, po.batch, po.threads,
             po.fastest ? "fastest" : "median", po.min_reps, a.device);
  if (po.reference) {
    fmt::print("relative_latency {:.5f} (the reference network took {:.4f} ms, the mean of its timings just before and "
               "after)\n", r.relative(), r.reference_ms);
  }
  if (a.energy) {
    const auto e = measure_energy(net, po, a.energy_ms);
    fmt::print("energy_mj {:.4f} per forward ({:.1f} W over {} forwards of {:.3f} ms; {})\n", e.mj_per_call, e.watts,
               e.calls, e.ms_per_call, e.counter);
  }
  return 0;
}

int cmd_search_darts(const Args& a) {
  const std::string cmd = "search --strategy " + a.strategy;
  if (a.space.empty()) throw UsageError(cmd + ": expected --space FILE");
  if (a.out.empty()) throw UsageError(cmd + ": expected --out DIR");
  if (!a.positional.empty()) throw UsageError(fmt::format("{}: unexpected argument \"{}\"", cmd, a.positional[0]));
  if (!a.objectives.empty() || !a.constraints.empty()) {
    throw UsageError(cmd + ": --objective and --constraint belong to population strategies; a differentiable search "
                           "minimises the validation loss (plus --latency-weight x expected latency)");
  }
  if (a.evaluators.size() > 1) throw UsageError(cmd + ": expected at most one --evaluator");
  auto space = SearchSpace::from_file(a.space, a.overrides);
  DartsOptions o = darts_preset(a.strategy);
  nlohmann::json extra = nlohmann::json::parse(a.strategy_options, nullptr, false);
  if (extra.is_discarded()) throw UsageError(fmt::format("--strategy-options: expected a JSON object, found \"{}\"", a.strategy_options));
  darts_options_from_json(o, extra);
  if (a.epochs_set && !extra.contains("warmup_epochs") && o.warmup_epochs > 0) {
    // The preset's warm-up belongs to its 50 epochs (PC-DARTS: 15): keep the same share.
    const auto preset_epochs = darts_preset(a.strategy).epochs;
    o.warmup_epochs = o.warmup_epochs * a.epochs / preset_epochs;
  }
  if (a.epochs_set) o.epochs = a.epochs;
  if (a.batch_set) o.batch = a.batch;
  if (a.lr_set) o.lr = a.lr;
  o.seed = a.seed;
  o.threads = a.threads > 0 ? static_cast<int>(a.threads) : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  o.out_dir = a.out;
  o.resume = a.resume;
  o.progress = true;
  std::unique_ptr<CostModel> lut_model;
  if (a.latency_weight > 0 || a.latency_budget > 0 || !a.cost.empty()) {  // --cost alone: report E[LAT]
    LatencyTable table;
    ProfileOptions po;  // the table's batch, threads, statistic and reference, or batch 1 on one thread
    if (!a.cost.empty()) {
      LutFile f = read_lut(a.cost);
      table = std::move(f.table);
      po.fastest = f.fastest;
      if (!f.reference.empty()) po.reference = space.resolve(space.parse_architecture(f.reference));
    }
    po.batch = table.ms.empty() ? 1 : table.batch;
    po.threads = table.ms.empty() ? 1 : table.threads;
    const auto before = table.ms.size();
    const auto t0 = std::chrono::steady_clock::now();
    profile_layers(table, {space.supernet()}, po);  // what the table lacks, timed here
    if (table.ms.size() != before) {
      fmt::print("profiled {} layer configurations of the supernet at batch {} in {:.1f} s\n", table.ms.size() - before,
                 po.batch, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    o.latency_weight = a.latency_weight > 0 ? a.latency_weight : a.latency_budget > 0 ? 1.0 : 0.0;
    o.latency_budget_ms = a.latency_budget;
    lut_model = make_lut_cost_model(space, table);
    o.latency = std::move(table);
  }
  auto net = space.supernet();
  auto data = load_data(a, cmd.c_str(), net).first;
  fmt::print("{} on {} ({} images: {:.0f}% weights, the rest architecture), {} epochs, batch {}, {} threads{}\n", a.strategy,
             space.name(), data.size(), 100 * o.train_portion, o.epochs, o.batch, o.threads,
             o.latency ? fmt::format(", latency weight {} {}", o.latency_weight,
                                     o.latency_budget_ms > 0 ? fmt::format("above {} ms", o.latency_budget_ms) : "per ms")
                       : "");
  std::fflush(stdout);  // before the search's progress lines on stderr
  DartsResult r = run_darts(space, data, o);
  const auto costs = analytic_costs(space.resolve(r.derived));
  const std::string native = space.native_format() ? space.to_native(r.derived) : space.to_json(r.derived).dump();
  nlohmann::json summary{{"arch", native}, {"params", costs.params}, {"macs", costs.macs}};
  fmt::print("derived {}\n  params {}  MACs {}\n", native, costs.params, costs.macs);
  if (lut_model) {
    const double ms = lut_model->predict(r.derived);
    summary["lut_latency_ms"] = ms;
    fmt::print("  LUT latency {:.3f} ms{}\n", ms,
               o.latency_budget_ms > 0 ? fmt::format(" (budget {} ms)", o.latency_budget_ms) : std::string());
  }
  if (!a.evaluators.empty()) {
    auto ev = make_evaluator(a.evaluators[0], space);
    Metrics m = ev->evaluate(r.derived);
    for (const auto& [k, v] : m) {
      summary["metrics"][k] = v;
      fmt::print("  {} {}\n", k, v);
    }
  }
  const auto path = std::filesystem::path(a.out) / "result.json";
  std::ifstream in(path);
  nlohmann::json res = nlohmann::json::parse(in);
  in.close();
  res["derived_summary"] = summary;
  detail::write_file_atomic(path, res.dump(2) + "\n");
  fmt::print("{}/result.json, {}/weights.svg\n", a.out, a.out);
  return 0;
}

namespace {
template <typename T>
std::vector<T> number_list(const std::string& flag, const std::string& text) {
  std::vector<T> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    out.push_back(static_cast<T>(to_number(flag, text.substr(start, end - start), 1, 1'000'000)));
    start = end + 1;
  }
  return out;
}
}  // namespace

int cmd_search_few_shot(const Args& a) {
  const std::string cmd = "search --strategy few-shot-gm";
  if (a.space.empty()) throw UsageError(cmd + ": expected --space FILE");
  if (a.out.empty()) throw UsageError(cmd + ": expected --out DIR");
  if (!a.positional.empty()) throw UsageError(fmt::format("{}: unexpected argument \"{}\"", cmd, a.positional[0]));
  const bool population = a.inner == "rea" || a.inner == "random";
  if (!population && a.inner != "darts" && a.inner != "darts2" && a.inner != "pc-darts" && a.inner != "darts-pt") {
    throw UsageError(fmt::format("--inner: expected darts, darts2, pc-darts, darts-pt, rea or random, found \"{}\"", a.inner));
  }
  if (a.evaluators.size() > 1) throw UsageError(cmd + ": expected at most one --evaluator");
  if (a.latency_weight > 0 || a.latency_budget > 0 || !a.cost.empty() || !a.objectives.empty() || !a.constraints.empty()) {
    throw UsageError(cmd + ": the latency options, --objective and --constraint are not supported by the few-shot search "
                           "yet (the inner search maximises accuracy)");
  }
  if (a.budget_seconds > 0 || a.budget_simulated > 0) {
    throw UsageError(cmd + ": the inner population search stops after --budget N evaluations; --budget-seconds and "
                           "--budget-simulated are not supported here");
  }
  if (a.budget_set && !population) {
    throw UsageError(fmt::format("{}: --budget counts evaluations of --inner rea|random; --inner {} runs --epochs per "
                                 "sub-supernet", cmd, a.inner));
  }
  auto space = SearchSpace::from_file(a.space, a.overrides);
  FewShotOptions o;
  o.search = darts_preset(population ? "darts" : a.inner);
  nlohmann::json extra = nlohmann::json::parse(a.strategy_options, nullptr, false);
  if (extra.is_discarded() || !extra.is_object()) {
    throw UsageError(fmt::format("--strategy-options: expected a JSON object, found \"{}\"", a.strategy_options));
  }
  if (extra.contains("epochs") || extra.contains("warmup_epochs")) {
    throw UsageError(cmd + ": set the epochs with --splits and --epochs (the splitting phase is the warm-up)");
  }
  nlohmann::json inner_options = nlohmann::json::object();  // the population strategy's own settings
  if (extra.contains("inner")) {
    if (!population) throw UsageError(cmd + ": \"inner\" options belong to --inner rea|random");
    inner_options = extra["inner"];
    extra.erase("inner");
  }
  darts_options_from_json(o.search, extra);
  if (a.batch_set) o.search.batch = a.batch;
  if (a.lr_set) o.search.lr = a.lr;
  o.search.seed = a.seed;
  o.search.threads = a.threads > 0 ? static_cast<int>(a.threads) : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  o.training = population ? "single-path" : "mixed";
  o.split = a.split;
  o.restart = a.split != "exhaustive" && !a.no_restart;  // Few-shot NAS keeps the transferred weights
  o.gm.repeats = static_cast<std::size_t>(a.gm_repeats);
  o.split_epochs = number_list<std::int64_t>("--splits", a.splits);
  o.branch = number_list<std::size_t>("--branch", a.branch);
  if (a.epochs_set) o.final_epochs = a.epochs;
  o.parallel = a.parallel;
  o.out_dir = a.out;
  o.resume = a.resume;
  o.on_epoch = [&](const FewShotProgress& p) {
    if (p.phase == "split") {
      fmt::print(stderr, "few-shot: splitting phase, epoch {}/{}, {} supernet(s), {:.0f} s\n", p.epoch, o.split_epochs.back(),
                 p.supernets, p.seconds);
    } else if (o.parallel && population) {
      fmt::print(stderr, "few-shot: all {} sub-supernets, epoch {}/{}, {:.0f} s\n", p.supernets, p.epoch, o.final_epochs,
                 p.seconds);
    } else {  // DARTS-PT's tuning epochs come after the search epochs
      fmt::print(stderr, "few-shot: sub-supernet {}/{}, epoch {}{}, {:.0f} s\n", p.leaf + 1, p.supernets, p.epoch,
                 a.inner == "darts-pt" ? std::string() : fmt::format("/{}", o.final_epochs), p.seconds);
    }
    return false;
  };
  std::filesystem::create_directories(a.out);  // before the search: a bad --out fails now
  if (!a.resume) std::filesystem::remove(std::filesystem::path(a.out) / "checkpoint.json");  // an earlier inner search's
  auto data = load_data(a, cmd.c_str(), space.supernet()).first;
  fmt::print("few-shot ({} split at epochs {}, branch {}{}) + {} for {} epochs on {} ({} images), {} threads\n", o.split,
             a.splits, a.branch, o.restart ? ", restart after the last" : "", population ? "single-path training" : a.inner,
             o.final_epochs, space.name(), data.size(), o.search.threads);
  std::fflush(stdout);
  std::unique_ptr<Evaluator> ev = a.evaluators.empty() ? nullptr : make_evaluator(a.evaluators[0], space);
  auto text = [&](const Architecture& x) { return space.native_format() ? space.to_native(x) : space.to_json(x).dump(); };
  auto split_text = [&](const std::vector<EdgeSplit>& splits, nlohmann::json* out) {
    std::string path;
    for (const auto& s : splits) {
      if (out) out->push_back({{"decision", space.decisions()[s.decision].name}, {"group", s.groups.at(0)}, {"cut", s.cut}});
      std::vector<std::string> ops;
      for (auto op : s.groups.at(0)) ops.push_back(space.decisions()[s.decision].options.at(op).as_string());
      path += fmt::format("{}{}={{{}}}", path.empty() ? "" : " ", space.decisions()[s.decision].name, fmt::join(ops, ","));
    }
    return path;
  };
  auto lookup = [&](const Architecture& x, nlohmann::json& j) {
    std::string line;
    if (!ev) return line;
    for (const auto& [k, v] : ev->evaluate(x)) {
      j["metrics"][k] = v;
      if (k == "test_acc") line = fmt::format("  test_acc {}", v);
    }
    return line;
  };

  if (population) {
    SubSupernets tree = train_sub_supernets(space, data, o);
    fmt::print("{}{} sub-supernet(s) trained in {:.0f} s\n", tree.resumed ? "resumed; " : "", tree.leaves.size(), tree.seconds);
    nlohmann::json leaves = nlohmann::json::array();
    for (std::size_t i = 0; i < tree.leaves.size(); ++i) {
      nlohmann::json j{{"splits", nlohmann::json::array()}};
      fmt::print("  sub-supernet {} [{}]\n", i, split_text(tree.leaves[i].splits, &j["splits"]));
      leaves.push_back(std::move(j));
    }
    std::vector<::torch::Tensor> calibration;  // BN recalibration batches of every evaluation
    for (std::int64_t b = 0; b < 10 && (b + 1) * o.search.batch <= tree.train.size(); ++b) {
      calibration.push_back(tree.train.images.narrow(0, b * o.search.batch, o.search.batch));
    }
    FewShotEvaluator evaluator(std::move(tree.leaves), calibration, tree.valid);
    auto strategy = make_strategy(a.inner, space, inner_options, a.seed);
    SearchOptions so;
    so.objectives = {{"supernet_acc", true}};
    so.budget.evaluations = static_cast<std::uint64_t>(a.budget);
    so.threads = 1;  // the evaluator runs one path at a time
    so.out_dir = a.out;
    so.resume = a.resume;
    so.seed = a.seed;
    so.checkpoint_every = static_cast<std::uint64_t>(a.checkpoint_every);
    SearchResult r = run_search(space, *strategy, evaluator, so);
    const Trial& best = r.history.at(r.best.at(0));
    nlohmann::json summary{{"arch", text(best.arch)}, {"supernet_acc", best.metrics.at("supernet_acc")},
                           {"sub_supernet", best.metrics.at("sub_supernet")}};
    const std::string metrics = lookup(best.arch, summary);
    fmt::print("{} {} evaluations of sub-supernet accuracy in {:.1f} s\nbest {}  supernet_acc {:.2f} (sub-supernet {}){}\n",
               a.inner, r.history.size(), r.wall_seconds, text(best.arch), best.metrics.at("supernet_acc"),
               best.metrics.at("sub_supernet"), metrics);
    const auto path = std::filesystem::path(a.out) / "result.json";
    std::ifstream in(path);
    nlohmann::json res = nlohmann::json::parse(in);
    in.close();
    res["few_shot"] = {{"split", o.split}, {"inner", a.inner}, {"sub_supernets", leaves}, {"best", summary}};
    detail::write_file_atomic(path, res.dump(2) + "\n");
    fmt::print("derived {}\n{}/result.json\n", text(best.arch), a.out);
    return 0;
  }

  FewShotResult r = run_few_shot(space, data, o);
  nlohmann::json res{{"space", {{"name", space.name()}, {"fingerprint", space.fingerprint()}}}, {"strategy", "few-shot-gm"},
                     {"split", o.split}, {"inner", a.inner}, {"seed", a.seed}, {"best", r.best},
                     {"derived", text(r.derived)}, {"resumed", r.resumed}, {"leaves", nlohmann::json::array()}};
  for (std::size_t i = 0; i < r.leaves.size(); ++i) {
    const auto& leaf = r.leaves[i];
    nlohmann::json j{{"derived", text(leaf.derived)}, {"valid_accuracy", leaf.valid_accuracy}, {"splits", nlohmann::json::array()}};
    const std::string path = split_text(leaf.splits, &j["splits"]);
    const std::string metrics = lookup(leaf.derived, j);
    fmt::print("{} leaf {} [{}]: {}  valid {:.4f}{}\n", i == r.best ? "*" : " ", i, path, text(leaf.derived),
               leaf.valid_accuracy, metrics);
    res["leaves"].push_back(std::move(j));
  }
  detail::write_file_atomic(std::filesystem::path(a.out) / "result.json", res.dump(2) + "\n");
  fmt::print("{}derived {}\n{}/result.json\n", r.resumed ? "resumed; " : "", text(r.derived), a.out);
  return 0;
}

}  // namespace nasforge::cli
