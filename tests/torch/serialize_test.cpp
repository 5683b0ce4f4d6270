// Sub-networks saved as architecture JSON + weights reload to identical outputs, in this
// process and in a fresh one; the weights file is what Python's torch.load reads.
#include "nasforge/torch/serialize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "detail/files.h"
#include "nasforge/error.h"
#include "nasforge/torch/supernet.h"
#include "testing/spaces.h"

namespace nasforge {
namespace {
namespace fs = std::filesystem;

const char* kArch = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|";

SearchSpace small_nb201() {
  return SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "8"}, {"input", "[1,16,16]"}});
}

// A trained-looking sub-network: extracted from a supernet after some BN traffic.
Network make_subnetwork(const SearchSpace& space, const Architecture& arch) {
  ::torch::manual_seed(11);
  Supernet super(space);
  super->set_architecture(arch);
  {
    ::torch::NoGradGuard ng;
    for (int i = 0; i < 2; ++i) super->forward(::torch::randn({8, 1, 16, 16}));
  }
  auto net = super->extract(arch);
  net->eval();
  return net;
}

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nasforge_" + name + "_" + std::to_string(::getpid()));
  detail::remove_tree(d);
  return d;
}

// stdout of `cmd`, or empty when it fails.
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  return ::pclose(p) == 0 ? out : std::string();
}

// Debian's interpreter first: python3-torch installs into /usr/lib/python3/dist-packages,
// which a python3 from pyenv or a virtualenv earlier on PATH does not see.
std::string python_with_torch() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    if (run(fmt::format("{} -c 'import torch' 2>/dev/null && echo yes", py)).find("yes") != std::string::npos) return py;
  }
  return {};
}

}  // namespace

TEST(Serialize, SubnetworkRoundTripGivesIdenticalOutputs) {
  auto space = small_nb201();
  auto arch = space.parse_architecture(kArch);
  auto net = make_subnetwork(space, arch);
  auto dir = fresh_dir("roundtrip");
  save_subnetwork(dir.string(), space, arch, net);
  EXPECT_TRUE(fs::exists(dir / "arch.json"));
  EXPECT_TRUE(fs::exists(dir / "weights.pt"));
  auto loaded = load_subnetwork(dir.string(), space);
  EXPECT_EQ(loaded.arch, arch);
  EXPECT_FALSE(loaded.network->is_training());
  ::torch::NoGradGuard ng;
  auto x = ::torch::randn({4, 1, 16, 16});
  EXPECT_EQ((net->forward(x) - loaded.network->forward(x)).abs().max().item<double>(), 0.0);
  detail::remove_tree(dir);
}

// Run by the next test in a child process: reloads the directory and writes its output.
TEST(Serialize, FreshProcessHelper) {
  const char* dir = std::getenv("NASFORGE_RELOAD_DIR");
  if (!dir) GTEST_SKIP() << "helper of FreshProcessReloadsIdenticalOutputs";
  auto space = small_nb201();
  auto loaded = load_subnetwork(dir, space);
  ::torch::NoGradGuard ng;
  ::torch::manual_seed(99);
  auto y = loaded.network->forward(::torch::randn({4, 1, 16, 16}));
  std::vector<char> bytes = ::torch::pickle_save(y);
  std::ofstream(fs::path(dir) / "child_output.pt", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(Serialize, FreshProcessReloadsIdenticalOutputs) {
  auto space = small_nb201();
  auto arch = space.parse_architecture(kArch);
  auto net = make_subnetwork(space, arch);
  auto dir = fresh_dir("fresh");
  save_subnetwork(dir.string(), space, arch, net);
  std::string self = fs::read_symlink("/proc/self/exe").string();
  int rc = std::system(fmt::format("NASFORGE_RELOAD_DIR='{}' '{}' --gtest_filter=Serialize.FreshProcessHelper > /dev/null",
                                   dir.string(), self).c_str());
  ASSERT_EQ(rc, 0);
  std::ifstream in(dir / "child_output.pt", std::ios::binary);
  ASSERT_TRUE(in);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto child = ::torch::pickle_load(bytes).toTensor();
  ::torch::NoGradGuard ng;
  ::torch::manual_seed(99);
  auto y = net->forward(::torch::randn({4, 1, 16, 16}));
  EXPECT_EQ((y - child).abs().max().item<double>(), 0.0);
  detail::remove_tree(dir);
}

TEST(Serialize, PythonTorchLoadReadsTheWeights) {
  const std::string py = python_with_torch();
  if (py.empty()) GTEST_SKIP() << "python3-torch is not installed";
  auto space = small_nb201();
  auto arch = space.parse_architecture(kArch);
  auto net = make_subnetwork(space, arch);
  auto dir = fresh_dir("python");
  save_subnetwork(dir.string(), space, arch, net);
  // Python prints: number of tensors, total elements, sum of all values, one named value.
  std::string out = run(fmt::format(
      "{} -c \"import torch,sys; d=torch.load(sys.argv[1]); "
      "print(len(d), sum(t.numel() for t in d.values()), repr(sum(float(t.double().sum()) for t in d.values())), "
      "repr(float(d['l0.conv.weight'].double().flatten()[3])))\" '{}'",
      py, (dir / "weights.pt").string()));
  ASSERT_FALSE(out.empty()) << "python3 failed to load the weights";
  std::size_t count = 0;
  std::int64_t elements = 0;
  double sum = 0;
  auto add = [&](const ::torch::Tensor& t) {
    ++count;
    elements += t.numel();
    sum += t.to(::torch::kDouble).sum().item<double>();
  };
  for (const auto& p : net->named_parameters()) add(p.value());
  for (const auto& b : net->named_buffers()) add(b.value());
  std::size_t py_count = 0;
  long long py_elements = 0;
  double py_sum = 0, py_value = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "%zu %lld %lf %lf", &py_count, &py_elements, &py_sum, &py_value), 4) << out;
  EXPECT_EQ(py_count, count);
  EXPECT_EQ(py_elements, elements);
  EXPECT_NEAR(py_sum, sum, 1e-9 * (1 + std::abs(sum)));
  EXPECT_EQ(py_value, static_cast<double>(net->named_parameters()["l0.conv.weight"].flatten()[3].item<float>()));
  detail::remove_tree(dir);
}

TEST(Serialize, ErrorsNameTheFileAndTheProblem) {
  auto space = small_nb201();
  auto arch = space.parse_architecture(kArch);
  auto net = make_subnetwork(space, arch);
  auto dir = fresh_dir("errors");
  save_subnetwork(dir.string(), space, arch, net);
  // Another space (other parameters): refused, naming both fingerprints.
  auto other = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}, {"C", "16"}, {"input", "[1,16,16]"}});
  try {
    load_subnetwork(dir.string(), other);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(other.fingerprint()), std::string::npos) << e.what();
  }
  // Weights of another architecture: the first missing or mis-shaped tensor is named.
  Network wrong(space.resolve(space.parse_architecture(
      "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")));
  try {
    load_weights(*wrong, (dir / "weights.pt").string());
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [8, 8, 3, 3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_weights(*wrong, (dir / "nope.pt").string()), NotFound);
  std::ofstream(dir / "garbage.pt") << "not a pickle";
  EXPECT_THROW(load_weights(*wrong, (dir / "garbage.pt").string()), InvalidArgument);
  EXPECT_THROW(load_subnetwork((dir / "missing").string(), space), NotFound);
  detail::remove_tree(dir);
}

}  // namespace nasforge
