#include "nasforge/torch/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "nasforge/error.h"
#include "torch/schedule.h"
#include "torch/thread_scope.h"
#include "nasforge/random.h"

namespace nasforge {
namespace {

using Clock = std::chrono::steady_clock;

// Random shifts (zero padding) and horizontal flips, one draw per sample from `rng`.
::torch::Tensor augment(const ::torch::Tensor& x, std::int64_t pad, bool flip, Rng& rng) {
  if (pad == 0 && !flip) return x;
  const std::int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  ::torch::Tensor padded = pad > 0 ? ::torch::constant_pad_nd(x, {pad, pad, pad, pad}, 0) : x;
  std::vector<::torch::Tensor> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    auto dy = static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(2 * pad + 1)));
    auto dx = static_cast<std::int64_t>(rng.uniform(static_cast<std::uint64_t>(2 * pad + 1)));
    ::torch::Tensor s = padded[i].narrow(1, dy, h).narrow(2, dx, w);
    if (flip && (rng() & 1U)) s = s.flip({2});
    out.push_back(s);
  }
  return ::torch::stack(out);
}

using detail::eta_text;

}  // namespace

double evaluate_accuracy(Network& net, const TensorData& data, std::int64_t batch) {
  NASFORGE_CHECK(batch >= 1, "evaluate_accuracy: expected batch >= 1, got {}", batch);
  ::torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  std::int64_t right = 0;
  for (std::int64_t s = 0; s < data.size(); s += batch) {
    auto x = data.images.slice(0, s, s + batch), y = data.labels.slice(0, s, s + batch);
    right += net->forward(x).argmax(1).eq(y).sum().item<std::int64_t>();
  }
  net->train(was_training);
  return data.size() ? static_cast<double>(right) / static_cast<double>(data.size()) : 0.0;
}

std::vector<EpochStats> train(Network& net, const TensorData& train_data, const TensorData& test_data,
                              const TrainOptions& o, const std::function<bool(const EpochStats&)>& on_epoch) {
  NASFORGE_CHECK(o.epochs >= 1, "train: expected epochs >= 1, got {}", o.epochs);
  NASFORGE_CHECK(o.batch >= 1, "train: expected batch >= 1, got {}", o.batch);
  NASFORGE_CHECK(o.lr > 0 && o.lr_min >= 0 && o.lr_min <= o.lr, "train: expected 0 <= lr_min <= lr, lr > 0, got {} and {}", o.lr_min, o.lr);
  NASFORGE_CHECK(o.momentum >= 0 && o.momentum < 1, "train: expected momentum in [0, 1), got {}", o.momentum);
  NASFORGE_CHECK(o.pad_crop >= 0 && o.pad_crop <= 64, "train: expected pad_crop in [0, 64], got {}", o.pad_crop);
  detail::ThreadScope threads(o.threads);

  auto sgd_options = ::torch::optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov && o.momentum > 0)
                         .weight_decay(o.weight_decay);
  ::torch::optim::SGD optimizer(net->parameters(), sgd_options);
  BatchLoader loader(train_data, o.batch, true, o.seed);

  std::vector<EpochStats> history;
  std::int64_t start_epoch = 0;
  namespace fs = std::filesystem;
  const fs::path dir = o.checkpoint_dir;
  if (!o.checkpoint_dir.empty()) {
    fs::create_directories(dir);
    if (fs::exists(dir / "state.json")) {
      std::ifstream in(dir / "state.json");
      auto st = nlohmann::json::parse(in, nullptr, false);
      if (st.is_discarded() || !st.contains("epoch") || !st.contains("model") || !st.contains("optimizer")) {
        throw InvalidArgument(fmt::format("{}: corrupt checkpoint state (expected epoch, model, optimizer)",
                                          (dir / "state.json").string()));
      }
      try {
        ::torch::load(net, (dir / st["model"].get<std::string>()).string());
        ::torch::load(optimizer, (dir / st["optimizer"].get<std::string>()).string());
      } catch (const c10::Error& err) {
        throw InvalidArgument(fmt::format("{}: cannot resume: {}", dir.string(), err.what_without_backtrace()));
      }
      start_epoch = st["epoch"].get<std::int64_t>();
      for (const auto& e : st["history"]) {
        history.push_back({e["epoch"], e["lr"], e["train_loss"], e["train_accuracy"], e["test_accuracy"], e["seconds"]});
      }
    }
  }
  for (std::int64_t e = 0; e < start_epoch; ++e) loader.next_epoch();  // same batch order as a fresh run

  const std::int64_t steps = loader.num_batches();
  const bool tty = isatty(fileno(stderr)) != 0;  // the per-batch line only on a terminal
  for (std::int64_t epoch = start_epoch; epoch < o.epochs; ++epoch) {
    const double lr = detail::cosine_lr(o.lr, o.lr_min, epoch, o.epochs);
    for (auto& g : optimizer.param_groups()) static_cast<::torch::optim::SGDOptions&>(g.options()).lr(lr);
    Rng aug(o.seed ^ (0xA5A5A5A5ULL + static_cast<std::uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL));
    net->train();
    double loss_sum = 0;
    std::int64_t right = 0, seen = 0;
    auto t0 = Clock::now();
    for (std::int64_t b = 0; b < steps; ++b) {
      auto [x, y] = loader.batch(b);
      x = augment(x, o.pad_crop, o.flip, aug);
      optimizer.zero_grad();
      auto logits = net->forward(x);
      auto loss = ::torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      if (o.grad_clip > 0) ::torch::nn::utils::clip_grad_norm_(net->parameters(), o.grad_clip);
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(y.size(0));
      right += logits.argmax(1).eq(y).sum().item<std::int64_t>();
      seen += y.size(0);
      if (o.progress && tty) {
        double el = std::chrono::duration<double>(Clock::now() - t0).count();
        double eta = el / static_cast<double>(b + 1) * static_cast<double>(steps - b - 1);
        std::fprintf(stderr, "\repoch %lld/%lld  batch %lld/%lld  loss %.4f  acc %.4f  ETA %s   ",
                     static_cast<long long>(epoch + 1), static_cast<long long>(o.epochs), static_cast<long long>(b + 1),
                     static_cast<long long>(steps), loss_sum / static_cast<double>(seen),
                     static_cast<double>(right) / static_cast<double>(seen), eta_text(eta).c_str());
      }
    }
    EpochStats st{epoch + 1, lr, loss_sum / static_cast<double>(seen), static_cast<double>(right) / static_cast<double>(seen), 0,
                  std::chrono::duration<double>(Clock::now() - t0).count()};
    st.test_accuracy = test_data.size() ? evaluate_accuracy(net, test_data) : 0.0;
    if (o.progress) {
      std::fprintf(stderr, "%sepoch %lld/%lld  loss %.4f  train acc %.4f  test acc %.4f  %.1f s%20s\n",
                   tty ? "\r" : "", static_cast<long long>(st.epoch), static_cast<long long>(o.epochs), st.train_loss, st.train_accuracy,
                   st.test_accuracy, st.seconds, "");
    }
    history.push_back(st);
    loader.next_epoch();
    if (!o.checkpoint_dir.empty()) {
      // The weights go to files named by epoch; state.json, replaced by an atomic rename, names
      // the current ones. A kill at any point leaves a consistent checkpoint behind.
      const std::string model = fmt::format("model-{}.pt", epoch + 1), opt = fmt::format("optimizer-{}.pt", epoch + 1);
      ::torch::save(net, (dir / model).string());
      ::torch::save(optimizer, (dir / opt).string());
      nlohmann::json j{{"epoch", epoch + 1}, {"model", model}, {"optimizer", opt}, {"history", nlohmann::json::array()}};
      for (const auto& h : history) {
        j["history"].push_back({{"epoch", h.epoch}, {"lr", h.lr}, {"train_loss", h.train_loss},
                                {"train_accuracy", h.train_accuracy}, {"test_accuracy", h.test_accuracy},
                                {"seconds", h.seconds}});
      }
      std::ofstream(dir / "state.json.tmp") << j.dump(2) << "\n";
      fs::rename(dir / "state.json.tmp", dir / "state.json");
      std::error_code ec;  // the previous epoch's files are no longer referenced
      fs::remove(dir / fmt::format("model-{}.pt", epoch), ec);
      fs::remove(dir / fmt::format("optimizer-{}.pt", epoch), ec);
    }
    if (on_epoch && on_epoch(st)) break;
  }
  return history;
}

}  // namespace nasforge
