// One-shot NAS with the C++ API, end to end: compile NAS-Bench-201 (sized for Fashion-MNIST)
// to a weight-sharing supernet, train it single-path with uniformly sampled architectures
// (SPOS), rank random candidates by validation accuracy with inherited weights, extract the
// best as a standalone network, save it, and fine-tune it.
//
//   nasforge_one_shot_nas [STEPS] [CANDIDATES] [TRAIN_IMAGES] [THREADS] [OUT_DIR]
#include <string>

#include <fmt/core.h>
#include <torch/torch.h>

#include "nasforge/error.h"
#include "nasforge/search_space.h"
#include "nasforge/torch/serialize.h"
#include "nasforge/torch/supernet.h"
#include "nasforge/torch/trainer.h"

int main(int argc, char** argv) {
  const long steps = argc > 1 ? std::stol(argv[1]) : 300;
  const long candidates = argc > 2 ? std::stol(argv[2]) : 20;
  const long images = argc > 3 ? std::stol(argv[3]) : 12000;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 2;
  const std::string out = argc > 5 ? argv[5] : "runs/one_shot";
  try {
    torch::set_num_threads(threads);
    auto space = nasforge::SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json",
                                                  {{"N", "1"}, {"C", "8"}, {"input", "[1,28,28]"}});
    // Real data: a seeded subset of the training images, split into train / validation.
    auto train_set = nasforge::load_fashion_mnist(true), test_set = nasforge::load_fashion_mnist(false);
    auto subset = nasforge::train_valid_split(train_set.size(), static_cast<double>(images) / 60000.0, 1).valid;
    auto norm = nasforge::compute_normalization(train_set, subset);
    auto all = nasforge::to_tensors(train_set, norm, subset);
    const auto n_train = all.size() * 5 / 6;
    nasforge::TensorData train{all.images.slice(0, 0, n_train), all.labels.slice(0, 0, n_train)};
    nasforge::TensorData valid{all.images.slice(0, n_train), all.labels.slice(0, n_train)};
    auto test = nasforge::to_tensors(test_set, norm);

    // 1. The supernet, trained one sampled path per batch.
    torch::manual_seed(0);
    nasforge::Supernet super(space, /*seed=*/0);
    torch::optim::SGD opt(super->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(3e-4));
    nasforge::BatchLoader loader(train, 64, /*shuffle=*/true, /*seed=*/0);
    nasforge::Rng rng(0);
    super->train();
    for (long s = 0; s < steps; ++s) {
      if (s % loader.num_batches() == 0 && s > 0) loader.next_epoch();
      auto [x, y] = loader.batch(s % loader.num_batches());
      super->set_architecture(super->sample(rng));
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(super->forward(x), y);
      loss.backward();
      opt.step();
      if ((s + 1) % 100 == 0) fmt::print("supernet step {}: loss {:.3f}\n", s + 1, loss.item<double>());
    }

    // 2. Rank candidates with inherited weights (BN statistics recalibrated per path first).
    auto valid_accuracy = [&](const nasforge::Architecture& a) {
      torch::NoGradGuard no_grad;
      super->set_architecture(a);
      super->train();
      for (std::int64_t b = 0; b < std::min<std::int64_t>(10, loader.num_batches()); ++b) super->forward(loader.batch(b).first);
      super->eval();
      auto pred = super->forward(valid.images).argmax(1);
      return pred.eq(valid.labels).to(torch::kDouble).mean().item<double>();
    };
    nasforge::Architecture best;
    double best_acc = -1;
    for (long c = 0; c < candidates; ++c) {
      auto a = super->sample(rng);
      double acc = valid_accuracy(a);
      fmt::print("candidate {:>2} {}  valid {:.2f}%\n", c, space.to_native(a), 100 * acc);
      if (acc > best_acc) best_acc = acc, best = a;
    }
    fmt::print("best: {} (valid {:.2f}% with inherited weights)\n", space.to_native(best), 100 * best_acc);

    // 3. Extract it (weights and BN statistics inherited), save it, fine-tune it.
    valid_accuracy(best);  // leaves the supernet's BN statistics calibrated for `best`
    nasforge::Network net = super->extract(best);
    fmt::print("extracted: test {:.2f}% before fine-tuning\n", 100 * nasforge::evaluate_accuracy(net, test));
    nasforge::save_subnetwork(out + "/extracted", space, best, net);
    nasforge::TrainOptions o;
    o.epochs = 1;
    o.lr = 0.02;
    o.threads = threads;
    auto history = nasforge::train(net, train, test, o);
    fmt::print("fine-tuned 1 epoch: test {:.2f}%; extracted network saved in {}/extracted\n",
               100 * history.back().test_accuracy, out);
    return 0;
  } catch (const nasforge::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
