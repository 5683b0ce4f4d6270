#include "nasforge/torch/serialize.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nasforge/error.h"

namespace nasforge {
namespace fs = std::filesystem;

void save_weights(const ::torch::nn::Module& net, const std::string& path) {
  c10::Dict<std::string, ::torch::Tensor> dict;
  // Contiguous CPU copies: what Python expects of a state_dict, whatever device trains.
  for (const auto& p : net.named_parameters()) dict.insert(p.key(), p.value().detach().to(::torch::kCPU).contiguous());
  for (const auto& b : net.named_buffers()) dict.insert(b.key(), b.value().detach().to(::torch::kCPU).contiguous());
  std::vector<char> bytes = ::torch::pickle_save(dict);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw InvalidArgument(fmt::format("{}: cannot write the weights", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw InvalidArgument(fmt::format("{}: cannot rename {} into place: {}", path, tmp, ec.message()));
}

void load_weights(::torch::nn::Module& net, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFound(fmt::format("{}: cannot open the weights file", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = ::torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw InvalidArgument(fmt::format("{}: not a weights file (pickle): {}", path, e.what_without_backtrace()));
  }
  if (!v.isGenericDict()) throw InvalidArgument(fmt::format("{}: expected a dictionary of tensors, found {}", path, v.tagKind()));
  std::map<std::string, ::torch::Tensor> file;
  for (const auto& e : v.toGenericDict()) {
    if (!e.key().isString() || !e.value().isTensor()) {
      throw InvalidArgument(fmt::format("{}: expected a dictionary of name -> tensor", path));
    }
    file.emplace(e.key().toStringRef(), e.value().toTensor());
  }
  ::torch::NoGradGuard no_grad;
  std::size_t used = 0;
  auto take = [&](const std::string& name, ::torch::Tensor& t) {
    auto it = file.find(name);
    if (it == file.end()) throw InvalidArgument(fmt::format("{}: has no tensor \"{}\" the network needs", path, name));
    if (it->second.sizes() != t.sizes()) {
      throw InvalidArgument(fmt::format("{}: tensor \"{}\" has shape [{}], the network's is [{}]", path, name,
                                        fmt::join(it->second.sizes(), ", "), fmt::join(t.sizes(), ", ")));
    }
    t.copy_(it->second);
    ++used;
  };
  for (auto& p : net.named_parameters()) take(p.key(), p.value());
  for (auto& b : net.named_buffers()) take(b.key(), b.value());
  if (used != file.size()) {
    for (const auto& [name, t] : file) {
      if (!net.named_parameters().contains(name) && !net.named_buffers().contains(name)) {
        throw InvalidArgument(fmt::format("{}: tensor \"{}\" belongs to no parameter or buffer of the network", path, name));
      }
    }
  }
}

void save_subnetwork(const std::string& dir, const SearchSpace& space, const Architecture& arch, const Network& net) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InvalidArgument(fmt::format("{}: cannot create the directory: {}", dir, ec.message()));
  nlohmann::json j;
  j["space"] = {{"name", space.name()}, {"fingerprint", space.fingerprint()}};
  j["arch"] = {{"choices", arch}, {"named", space.to_json(arch)}};
  if (space.native_format()) j["arch"]["native"] = space.to_native(arch);
  j["weights"] = "weights.pt";
  save_weights(*net, (fs::path(dir) / "weights.pt").string());
  const fs::path meta = fs::path(dir) / "arch.json";
  {
    std::ofstream out(meta.string() + ".tmp");
    out << j.dump(2) << "\n";
    if (!out) throw InvalidArgument(fmt::format("{}: cannot write", meta.string()));
  }
  fs::rename(meta.string() + ".tmp", meta, ec);
  if (ec) throw InvalidArgument(fmt::format("{}: cannot rename into place: {}", meta.string(), ec.message()));
}

Subnetwork load_subnetwork(const std::string& dir, const SearchSpace& space) {
  const fs::path meta = fs::path(dir) / "arch.json";
  std::ifstream in(meta);
  if (!in) throw NotFound(fmt::format("{}: cannot open (not a sub-network directory?)", meta.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(fmt::format("{}: not valid JSON: {}", meta.string(), e.what()));
  }
  const std::string fp = j.value("/space/fingerprint"_json_pointer, std::string());
  if (fp != space.fingerprint()) {
    throw InvalidArgument(fmt::format("{}: written for space \"{}\" with fingerprint {}, but space \"{}\" has "
                                      "fingerprint {} (another space, or other parameters)",
                                      meta.string(), j.value("/space/name"_json_pointer, std::string("?")), fp,
                                      space.name(), space.fingerprint()));
  }
  if (!j.contains("arch") || !j["arch"].contains("choices")) {
    throw InvalidArgument(fmt::format("{}: expected \"arch\": {{\"choices\": [...]}}", meta.string()));
  }
  Subnetwork s;
  s.arch = space.parse_architecture(j["arch"]["choices"].dump());
  s.network = Network(space.resolve(s.arch));
  load_weights(*s.network, (fs::path(dir) / j.value("weights", std::string("weights.pt"))).string());
  s.network->eval();
  return s;
}

}  // namespace nasforge
