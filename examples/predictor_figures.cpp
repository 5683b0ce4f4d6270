// Learned latency predictors on the measured tables of ../shared/data: for every device
// column, train on N random architectures and test on all the others (Spearman, Kendall tau,
// ±10% share, MAPE), for ridge and gradient-boosted trees, medians over seeds.
//   nasforge_predictor_figures [SHARED_DATA_DIR] [TRAIN] [SEEDS] [nb201|fbnet] [transfer]
// With `transfer`: for each device, only TRAIN (10-20) measured samples of it plus the
// complete tables of the other devices: a ridge model on log MACs and the other devices' log
// latencies (the architecture's "hardware embedding" on reference devices, as HELP uses)
// against the FLOPs-only baseline (ranking by analytic FLOPs).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/core.h>

#include "nasforge/error.h"
#include "nasforge/evaluator.h"
#include "nasforge/predictor.h"
#include "nasforge/random.h"

using namespace nasforge;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
}  // namespace

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : std::string(NASFORGE_SOURCE_DIR) + "/../shared/data";
  const std::size_t train = argc > 2 ? std::stoul(argv[2]) : 100;
  const int seeds = argc > 3 ? std::stoi(argv[3]) : 5;
  const std::string which = argc > 4 ? argv[4] : "nb201";
  try {
    auto space = SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + which + ".json");
    const std::string csv = which == "nb201" ? data + "/nb201/nb201_latency_ms.csv" : data + "/fbnet/fbnet_latency_ms.csv";
    TableEvaluator table(space);
    table.add_csv(csv);
    auto rows = table.known();
    std::vector<std::string> devices;
    for (const auto& name : table.metric_names()) {
      if (name != "nb201_index" && name != "arch_id") devices.push_back(name);
    }
    // Features once per architecture.
    std::vector<std::vector<float>> onehot, rich;
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& [a, m] : rows) {
      onehot.push_back(architecture_features(space, a, FeatureOptions{false, false}));
      rich.push_back(architecture_features(space, a, FeatureOptions{false, true}));
    }
    double feat_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (argc > 5 && std::string(argv[5]) == "transfer") {
      std::vector<double> flops;
      for (const auto& [a, m] : rows) flops.push_back(static_cast<double>(architecture_features(space, a, FeatureOptions{false, true}).back()));
      fmt::print("{}: transfer with {} samples of the target device, {} seeds (medians)\n\n", which, train, seeds);
      fmt::print("| device | FLOPs-only Spearman | transfer Spearman | transfer ±10% | beats FLOPs |\n|---|---|---|---|---|\n");
      for (const auto& dev : devices) {
        std::vector<double> ts, tw, fs;
        for (int s = 0; s < seeds; ++s) {
          Rng rng(static_cast<std::uint64_t>(s) + 100);
          std::vector<std::size_t> idx(rows.size());
          for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
          for (std::size_t i = 0; i < train; ++i) std::swap(idx[i], idx[i + rng.uniform(idx.size() - i)]);
          auto embed = [&](std::size_t r) {
            std::vector<float> f{static_cast<float>(flops[r])};  // log MACs: the FLOPs baseline's signal, kept
            for (const auto& other : devices) {
              if (other != dev) f.push_back(static_cast<float>(std::log(std::max(1e-6, rows[r].second.at(other)))));
            }
            return f;
          };
          std::vector<std::vector<float>> xt, xv;
          std::vector<double> yt, yv, fv;
          for (std::size_t i = 0; i < idx.size(); ++i) {
            const double y = rows[idx[i]].second.at(dev);
            if (i < train) xt.push_back(embed(idx[i])), yt.push_back(std::log(std::max(1e-6, y)));
            else xv.push_back(embed(idx[i])), yv.push_back(y), fv.push_back(flops[idx[i]]);
          }
          RidgeRegression ridge(1.0);
          ridge.fit(xt, yt);
          auto pred = ridge.predict_batch(xv);
          for (auto& v : pred) v = std::exp(v);
          auto q = prediction_quality(pred, yv);
          ts.push_back(q.spearman), tw.push_back(q.within_10pct), fs.push_back(prediction_quality(fv, yv).spearman);
        }
        fmt::print("| {} | {:.3f} | {:.3f} | {:.1f}% | {} |\n", dev, median(fs), median(ts), 100 * median(tw),
                   median(ts) > median(fs) ? "yes" : "NO");
      }
      return 0;
    }
    fmt::print("{}: {} architectures, {} devices; features in {:.2f} s; train {} / test {}, {} seeds (medians)\n\n",
               which, rows.size(), devices.size(), feat_s, train, rows.size() - train, seeds);
    fmt::print("| device | ridge Spearman | ridge ±10% | GBDT Spearman | GBDT Kendall | GBDT ±10% | GBDT MAPE |\n");
    fmt::print("|---|---|---|---|---|---|---|\n");
    for (const auto& dev : devices) {
      std::vector<double> rs, rw, gs, gk, gw, gm;
      for (int s = 0; s < seeds; ++s) {
        Rng rng(static_cast<std::uint64_t>(s));
        std::vector<std::size_t> idx(rows.size());
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        for (std::size_t i = 0; i < train; ++i) std::swap(idx[i], idx[i + rng.uniform(idx.size() - i)]);
        auto fit_eval = [&](Predictor& p, const std::vector<std::vector<float>>& f) {
          std::vector<std::vector<float>> xt, xv;
          std::vector<double> yt, yv;
          for (std::size_t i = 0; i < idx.size(); ++i) {
            double y = rows[idx[i]].second.at(dev);
            (i < train ? xt : xv).push_back(f[idx[i]]);
            (i < train ? yt : yv).push_back(y);
          }
          for (auto& y : yt) y = std::log(y);  // multiplicative errors: fit log latency
          p.fit(xt, yt);
          auto pred = p.predict_batch(xv);
          for (auto& v : pred) v = std::exp(v);
          return prediction_quality(pred, yv);
        };
        RidgeRegression ridge(1.0);
        auto qr = fit_eval(ridge, onehot);
        rs.push_back(qr.spearman), rw.push_back(qr.within_10pct);
        GbdtRegressor gbdt(GbdtRegressor::Options{300, 4, 0.1, 0.8, 1, static_cast<std::uint64_t>(s)});
        auto qg = fit_eval(gbdt, rich);
        gs.push_back(qg.spearman), gk.push_back(qg.kendall), gw.push_back(qg.within_10pct), gm.push_back(qg.mape);
      }
      fmt::print("| {} | {:.3f} | {:.1f}% | {:.3f} | {:.3f} | {:.1f}% | {:.1f}% |\n", dev, median(rs), 100 * median(rw),
                 median(gs), median(gk), 100 * median(gw), 100 * median(gm));
    }
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
