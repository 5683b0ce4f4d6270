// Learned latency predictors on the measured tables of ../shared/data: for every device
// column, train on N random architectures and test on all the others (Spearman, Kendall tau,
// ±10% share, MAPE), for ridge (squared error and Huber loss) and gradient-boosted trees,
// medians over seeds.
//   nasforge_predictor_figures [SHARED_DATA_DIR] [TRAIN] [SEEDS] [nb201|fbnet] [direct|log|transfer]
// `direct` (the default) fits latency itself: a network's latency is a sum of its layers'
// times, so it is linear in the one-hot encoding. `log` fits log latency (the first version).
// Beside the linear costs, one more view of the network, and the better of the two chosen per
// fit by ridge's leave-one-out error on the training rows (`choose_features`): on NB201 the
// graph a compiling runtime keeps (`pruned_graph`), on FBNet the network-wide counts
// (`network_counts`).
// On NB201 the table's own noise is printed beside: "twins" are the 3,125 pairs of networks
// that differ only in edge 0->3 being `none` or `skip_connect` (the same layers but for one
// zero or identity tensor per cell), so their measured latencies should agree; how often they
// do within ±10%, and their rank correlation, are a reference for what a predictor can reach on
// that column (twins differ in cost a little, so it overstates the noise slightly). The
// "ceiling" is what a perfect predictor could reach against one measurement if each reading
// were independently close to the truth with probability c and far off (beyond ±10%)
// otherwise: twins then agree about c² of the time, so c ≈ √(twins share). An estimate, not a
// bound: the noisy CPU columns' twin ratios do cluster at 0 and ±15-20% (gold_6240) or
// spread wide (silver_4114), but no model of the noise is exact.
// The last two columns are the additive ceiling: ridge (lambda 0.001) on the one-hot encoding
// of every decision, fitted to every row of the table and scored on those same rows. A latency
// that adds up over (decision, option) pairs — a layer's time set by its position and op — is
// fitted exactly by it, and every ridge above but the pruned graph's is such a sum (counts and
// linear costs are sums over layers), so no amount of samples takes them far past it; an
// in-sample least-squares fit flatters itself, so it is an estimate of that limit, not a bound
// (held-out fits from 80% of a table edge past it by up to 0.016). On FBNet, which has no
// twins, it is the noise reference: what a column holds beyond it is not additive. In `log`
// mode it is fitted to log latency, as every ridge of that mode is.
// With `transfer`: for each device, only TRAIN (10-20) measured samples of it plus the
// complete tables of the other devices (the architecture's "hardware embedding" on reference
// devices, as HELP uses), against the FLOPs-only baseline (ranking by analytic MACs): ridge
// (lambda 10) on the architecture's MACs and its latencies on the other devices, each scaled
// by its standard deviation over the table, MACs then weighted 10x: the fit leans on MACs and
// lets the reference devices correct it only as far as the few samples support.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
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

// The first `train` entries of a seeded permutation of 0..n-1 are the training rows.
std::vector<std::size_t> split(std::size_t n, std::size_t train, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  for (std::size_t i = 0; i < train; ++i) std::swap(idx[i], idx[i + rng.uniform(n - i)]);
  return idx;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : std::string(NASFORGE_SOURCE_DIR) + "/../shared/data";
  const std::size_t train = argc > 2 ? std::stoul(argv[2]) : 100;
  const int seeds = argc > 3 ? std::stoi(argv[3]) : 5;
  const std::string which = argc > 4 ? argv[4] : "nb201";
  const std::string mode = argc > 5 ? argv[5] : "direct";
  try {
    if (mode != "direct" && mode != "log" && mode != "transfer") {
      throw InvalidArgument(fmt::format("mode: expected direct, log or transfer, found \"{}\"", mode));
    }
    auto space = SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/" + which + ".json");
    const std::string csv = which == "nb201" ? data + "/nb201/nb201_latency_ms.csv" : data + "/fbnet/fbnet_latency_ms.csv";
    TableEvaluator table(space);
    table.add_csv(csv);
    auto rows = table.known();
    std::vector<std::string> devices;
    for (const auto& name : table.metric_names()) {
      if (name != "nb201_index" && name != "arch_id") devices.push_back(name);
    }
    // Features once per architecture: stage counts (per stage, how many blocks take each
    // option; NB201's edges are no stage, so there they are the one-hot encoding) for the first
    // ridge; the space's structure for the second ridge and GBDT: on NB201 a cell's edges
    // counted by op (`edge_counts`: every edge maps one shape to itself), on FBNet each stage's
    // first block as a shrunken deviation from the rest (`stage_first_delta`: its stride and
    // channels differ). GBDT adds log params and log MACs, on FBNet to the plain counts: the
    // deviations work through ridge's penalty, which trees do not have, and only added
    // features there (Spearman 0.720 against 0.770 on 1080ti_1). `log` mode keeps the first
    // version's one-hot features throughout.
    FeatureOptions linear;
    linear.onehot = mode == "log";
    linear.stage_counts = mode != "log";
    FeatureOptions structured = linear;
    if (mode != "log") (which == "nb201" ? structured.edge_counts : structured.stage_first_delta) = true;
    FeatureOptions priced = structured;  // plus the analytic costs, nearly unpenalised
    priced.linear_costs = mode != "log";
    // Plus, on NB201, the graph a compiling runtime keeps (`pruned_graph`: dead branches
    // dropped); on FBNet, which has no `none`, the network-wide counts (`network_counts`: an op's
    // cost shared by all stages, the stage counts its deviations).
    FeatureOptions pruned = priced;
    (which == "nb201" ? pruned.pruned_graph : pruned.network_counts) = mode != "log";
    FeatureOptions rich = which == "nb201" ? structured : linear;  // (trees ignore the deviations' shrinkage)
    rich.statistics = true;
    std::vector<std::vector<float>> encoded, encoded_structured, encoded_priced, encoded_pruned,
        stats, encoded_full;
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& [a, m] : rows) {
      encoded.push_back(architecture_features(space, a, linear));
      encoded_structured.push_back(architecture_features(space, a, structured));
      encoded_priced.push_back(architecture_features(space, a, priced));
      encoded_pruned.push_back(architecture_features(space, a, pruned));
      stats.push_back(architecture_features(space, a, rich));
      if (mode != "transfer") encoded_full.push_back(architecture_features(space, a, FeatureOptions{}));
    }
    double feat_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (mode == "transfer") {
      std::vector<double> macs;  // the analytic MACs (the last statistic is log(1 + MACs))
      for (const auto& f : stats) macs.push_back(std::expm1(static_cast<double>(f.back())));
      // Each reference column scaled by its standard deviation over the whole table (all of it
      // is known on the reference devices), so one lambda suits every column.
      auto stddev = [&](auto value) {
        double s = 0, s2 = 0;
        for (std::size_t r = 0; r < rows.size(); ++r) s += value(r), s2 += value(r) * value(r);
        const double n = static_cast<double>(rows.size()), mean = s / n;
        return std::sqrt(std::max(1e-12, s2 / n - mean * mean));
      };
      std::map<std::string, double> scale;
      for (const auto& d : devices) scale[d] = stddev([&](std::size_t r) { return rows[r].second.at(d); });
      const double macs_scale = stddev([&](std::size_t r) { return macs[r]; });
      fmt::print("{}: transfer with {} samples of the target device, {} seeds (medians)\n\n", which, train, seeds);
      fmt::print("| device | FLOPs-only Spearman | transfer Spearman | transfer ±10% | beats FLOPs |\n|---|---|---|---|---|\n");
      for (const auto& dev : devices) {
        std::vector<double> ts, tw, fs;
        for (int s = 0; s < seeds; ++s) {
          auto idx = split(rows.size(), train, static_cast<std::uint64_t>(s) + 100);
          auto embed = [&](std::size_t r) {
            std::vector<float> f{static_cast<float>(10 * macs[r] / macs_scale)};
            for (const auto& other : devices) {
              if (other != dev) f.push_back(static_cast<float>(rows[r].second.at(other) / scale[other]));
            }
            return f;
          };
          std::vector<double> yt;
          for (std::size_t i = 0; i < train; ++i) yt.push_back(rows[idx[i]].second.at(dev));
          std::vector<std::vector<float>> xt, xv;
          std::vector<double> yv, fv;
          for (std::size_t i = 0; i < idx.size(); ++i) {
            if (i < train) xt.push_back(embed(idx[i]));
            else xv.push_back(embed(idx[i])), yv.push_back(rows[idx[i]].second.at(dev)), fv.push_back(macs[idx[i]]);
          }
          RidgeRegression ridge(10.0);
          ridge.fit(xt, yt);
          auto q = prediction_quality(ridge.predict_batch(xv), yv);
          ts.push_back(q.spearman), tw.push_back(q.within_10pct), fs.push_back(prediction_quality(fv, yv).spearman);
        }
        fmt::print("| {} | {:.3f} | {:.3f} | {:.1f}% | {} |\n", dev, median(fs), median(ts), 100 * median(tw),
                   median(ts) > median(fs) ? "yes" : "NO");
      }
      return 0;
    }
    // NB201 twins: edge 0->3 (decision 3) `none` (option 0) vs `skip_connect` (option 1).
    std::vector<std::pair<std::size_t, std::size_t>> twins;
    if (which == "nb201") {
      std::map<Architecture, std::size_t> where;
      for (std::size_t r = 0; r < rows.size(); ++r) where[rows[r].first] = r;
      for (std::size_t r = 0; r < rows.size(); ++r) {
        if (rows[r].first[3] != 0) continue;
        Architecture twin = rows[r].first;
        twin.set(3, 1);
        if (auto it = where.find(twin); it != where.end()) twins.emplace_back(r, it->second);
      }
    }
    fmt::print("{}: {} architectures, {} devices; features in {:.2f} s; train {} / test {}, {} seeds (medians); "
               "target: {}\n\n", which, rows.size(), devices.size(), feat_s, train, rows.size() - train, seeds,
               mode == "log" ? "log latency" : "latency");
    fmt::print(
        "| device | ridge Spearman | ridge ±10% | ridge λ | ridge, {}: Spearman | ±10% "
        "| plus linear costs: Spearman | ±10% | plus {}: Spearman | ±10% "
        "| the better by leave-one-out: Spearman | ±10% | that picked "
        "| linear costs, Huber loss: Spearman | ±10% | the better, from 80% of rows: Spearman | ±10% "
        "| GBDT Spearman | GBDT Kendall | GBDT ±10% | GBDT MAPE |{}{}\n",
        mode == "log"      ? "the same"
        : which == "nb201" ? "edge counts"
                           : "first blocks as deviations",
        which == "nb201" ? "the pruned graph" : "network-wide counts",
        twins.empty() ? "" : " twins ±10% | twins Spearman | ceiling ±10% |",
        " additive fit to every row: Spearman | ±10% |");
    fmt::print(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|{}---|---|\n",
        twins.empty() ? "" : "---|---|---|");
    for (const auto& dev : devices) {
      std::vector<double> rs, rw, rl, fs, fw, ps, pw, xs, xw, hs, hw, cs, cw, gs, gk, gw, gm;
      int picked_pruned = 0;
      // Fits on the first `n_train` rows of the permutation `idx`, tests on the rest.
      auto fit_eval = [&](Predictor& p, const std::vector<std::vector<float>>& f, const std::vector<std::size_t>& idx,
                          std::size_t n_train) {
        std::vector<std::vector<float>> xt, xv;
        std::vector<double> yt, yv;
        for (std::size_t i = 0; i < idx.size(); ++i) {
          double y = rows[idx[i]].second.at(dev);
          (i < n_train ? xt : xv).push_back(f[idx[i]]);
          (i < n_train ? yt : yv).push_back(y);
        }
        if (mode == "log") {
          for (auto& y : yt) y = std::log(y);
        }
        p.fit(xt, yt);
        auto pred = p.predict_batch(xv);
        if (mode == "log") {
          for (auto& v : pred) v = std::exp(v);
        }
        return prediction_quality(pred, yv);
      };
      // What the features can reach at all: ridge on 80% of the rows, tested on
      // the other 20% (one seed). Far above the 100-sample figure: the samples are the limit;
      // near it: the features or the table's noise are.
      const std::size_t most = rows.size() * 4 / 5;
      // Of linear costs with and without the extra view, the one with the less leave-one-out
      // error on those rows (choose_features' rule; the features are already computed here).
      const auto ample_rows = split(rows.size(), most, 0);
      RidgeRegression ample = RidgeRegression::leave_one_out(),
                      ample_extra = RidgeRegression::leave_one_out();
      auto q_ample = fit_eval(ample, encoded_priced, ample_rows, most);
      const auto q_ample_extra = fit_eval(ample_extra, encoded_pruned, ample_rows, most);
      if (ample_extra.loo_mse() < ample.loo_mse()) q_ample = q_ample_extra;
      for (int s = 0; s < seeds; ++s) {
        auto idx = split(rows.size(), train, static_cast<std::uint64_t>(s));
        // The first version: lambda 1 on log latency; now lambda by leave-one-out on latency.
        auto ridge_for_mode = [&] { return mode == "log" ? RidgeRegression(1.0) : RidgeRegression::leave_one_out(); };
        RidgeRegression ridge = ridge_for_mode();
        auto qr = fit_eval(ridge, encoded, idx, train);
        rs.push_back(qr.spearman), rw.push_back(qr.within_10pct), rl.push_back(ridge.lambda());
        RidgeRegression ridge_structured = ridge_for_mode();
        auto qf = fit_eval(ridge_structured, encoded_structured, idx, train);
        fs.push_back(qf.spearman), fw.push_back(qf.within_10pct);
        RidgeRegression ridge_priced = ridge_for_mode();
        auto qc = fit_eval(ridge_priced, encoded_priced, idx, train);
        cs.push_back(qc.spearman), cw.push_back(qc.within_10pct);
        RidgeRegression ridge_pruned = ridge_for_mode();
        auto qp = fit_eval(ridge_pruned, encoded_pruned, idx, train);
        ps.push_back(qp.spearman), pw.push_back(qp.within_10pct);
        // The two, chosen between by ridge's leave-one-out error on the training rows alone.
        std::vector<Architecture> chosen_archs;
        std::vector<double> chosen_y;
        for (std::size_t i = 0; i < train; ++i) {
          chosen_archs.push_back(rows[idx[i]].first);
          const double y = rows[idx[i]].second.at(dev);
          chosen_y.push_back(mode == "log" ? std::log(y) : y);
        }
        const std::size_t pick =
            choose_features(space, {priced, pruned}, chosen_archs, chosen_y).best;
        xs.push_back(pick == 0 ? qc.spearman : qp.spearman);
        xw.push_back(pick == 0 ? qc.within_10pct : qp.within_10pct);
        picked_pruned += pick == 1;
        RidgeRegression robust = ridge_for_mode();
        robust.with_huber_loss();
        auto qh = fit_eval(robust, encoded_priced, idx, train);
        hs.push_back(qh.spearman), hw.push_back(qh.within_10pct);
        GbdtRegressor gbdt(GbdtRegressor::Options{300, 4, 0.1, 0.8, 1, static_cast<std::uint64_t>(s)});
        auto qg = fit_eval(gbdt, stats, idx, train);
        gs.push_back(qg.spearman), gk.push_back(qg.kendall), gw.push_back(qg.within_10pct), gm.push_back(qg.mape);
      }
      // The additive ceiling (see the top of the file): every row in, every row scored.
      std::vector<double> every_y, fitted_y;
      for (const auto& row : rows) every_y.push_back(row.second.at(dev));
      for (double y : every_y) fitted_y.push_back(mode == "log" ? std::log(y) : y);
      RidgeRegression additive(1e-3);
      additive.fit(encoded_full, fitted_y);
      std::vector<double> additive_y = additive.predict_batch(encoded_full);
      if (mode == "log") {
        for (auto& y : additive_y) y = std::exp(y);
      }
      const auto q_additive = prediction_quality(additive_y, every_y);
      std::string noise;
      if (!twins.empty()) {
        std::vector<double> a, b;
        std::size_t agree = 0;
        for (auto [i, j] : twins) {
          a.push_back(rows[i].second.at(dev)), b.push_back(rows[j].second.at(dev));
          agree += std::abs(b.back() / a.back() - 1) <= 0.1;
        }
        const double share = static_cast<double>(agree) / static_cast<double>(twins.size());
        noise = fmt::format(" {:.1f}% | {:.3f} | {:.1f}% |", 100 * share, prediction_quality(a, b).spearman,
                            100 * std::sqrt(share));
      }
      fmt::print(
          "| {} | {:.3f} | {:.1f}% | {:.3g} | {:.3f} | {:.1f}% | {:.3f} | {:.1f}% | {:.3f} | "
          "{:.1f}% | {:.3f} | {:.1f}% "
          "| {}/{} | {:.3f} | {:.1f}% | {:.3f} | {:.1f}% "
          "| {:.3f} | {:.3f} | {:.1f}% | {:.1f}% |{} {:.3f} | {:.1f}% |\n",
          dev, median(rs), 100 * median(rw), median(rl), median(fs), 100 * median(fw), median(cs),
          100 * median(cw), median(ps), 100 * median(pw), median(xs), 100 * median(xw),
          picked_pruned, seeds, median(hs), 100 * median(hw), q_ample.spearman,
          100 * q_ample.within_10pct, median(gs), median(gk), 100 * median(gw), 100 * median(gm),
          noise, q_additive.spearman, 100 * q_additive.within_10pct);
    }
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
