// From a search space to a trained network with the C++ API: parse NAS-Bench-201 sized for
// Fashion-MNIST, pick an architecture, build its LibTorch network, train it, report accuracy.
//
//   nasforge_train_fashion_mnist [ARCH] [EPOCHS] [TRAIN_IMAGES] [THREADS]
//
// (The supernet issue will add: compile the space to a supernet, train it, extract the
// architecture with inherited weights, then fine-tune it here.)
#include <cstdio>
#include <string>

#include <fmt/core.h>
#include <torch/torch.h>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/trainer.h"

int main(int argc, char** argv) {
  const std::string arch_text =
      argc > 1 ? argv[1] : "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|";
  const long epochs = argc > 2 ? std::stol(argv[2]) : 2;
  const long images = argc > 3 ? std::stol(argv[3]) : 10000;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 2;
  try {
    // One cell per stage, 1-channel 28x28 input: the space's parameters, not new C++.
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json",
                                                  {{"N", "1"}, {"input", "[1,28,28]"}});
    auto arch = space.parse_architecture(arch_text);
    nasforge::ConcreteNetwork net = space.resolve(arch);
    auto costs = nasforge::analytic_costs(net);
    fmt::print("{}: {} params, {:.1f} MFLOPs\n", space.to_native(arch), costs.params, costs.flops() / 1e6);

    // Real images: a seeded subset of the 60k training images, the full 10k test set.
    auto train_set = nasforge::load_fashion_mnist(true), test_set = nasforge::load_fashion_mnist(false);
    auto subset = nasforge::train_valid_split(train_set.size(), static_cast<double>(images) / 60000.0, 1).valid;
    auto norm = nasforge::compute_normalization(train_set, subset);
    auto train_data = nasforge::to_tensors(train_set, norm, subset);
    auto test_data = nasforge::to_tensors(test_set, norm);

    torch::manual_seed(0);
    nasforge::Network model(net);
    nasforge::TrainOptions options;
    options.epochs = epochs;
    options.threads = threads;
    options.progress = true;
    auto history = nasforge::train(model, train_data, test_data, options);
    for (const auto& e : history) {
      fmt::print("epoch {}  lr {:.4f}  loss {:.4f}  train {:.2f}%  test {:.2f}%  {:.1f} s\n", e.epoch, e.lr,
                 e.train_loss, 100 * e.train_accuracy, 100 * e.test_accuracy, e.seconds);
    }
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
}
