// The torch-free cost models: analytic, predictor and LUT behind one interface.
#include "nasforge/cost_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "nasforge/costs.h"
#include "nasforge/error.h"
#include "nasforge/predictor.h"
#include "testing/spaces.h"

namespace nasforge {

TEST(CostModel, AnalyticIsTheAnalyticCounterAndAnEvaluator) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  auto arch = space.from_native("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|");
  auto params = make_analytic_cost_model(space, "params");
  auto macs = make_analytic_cost_model(space, "macs", 8);
  EXPECT_EQ(params->predict(arch), 615386.0);
  EXPECT_EQ(macs->predict(arch), 8 * 86426240.0);
  EXPECT_EQ(params->kind(), "analytic");
  EXPECT_EQ(params->evaluate(arch).at("params"), 615386.0);
  auto restored = load_cost_model(space, nlohmann::json::parse(macs->to_json().dump()));
  EXPECT_EQ(restored->predict(arch), macs->predict(arch));
  EXPECT_THROW(make_analytic_cost_model(space, "latency"), InvalidArgument);
}

TEST(CostModel, LutSumsItsEntriesWithTheCalibration) {
  auto space = SearchSpace::from_string(testing::kToyStageSpace);
  auto arch = space.at(5);
  auto net = space.resolve(arch);
  LatencyTable t;
  for (std::size_t i = 0; i < net.layers.size(); ++i) t.ms[layer_key(net, i)] = 1.0 + static_cast<double>(i);
  t.fixed_ms = 0.5;
  t.scale = 2.0;
  double sum = 0;
  for (std::size_t i = 0; i < net.layers.size(); ++i) sum += 1.0 + static_cast<double>(i);
  auto model = make_lut_cost_model(space, t);
  EXPECT_DOUBLE_EQ(model->predict(arch), 0.5 + 2.0 * sum);
  auto back = load_cost_model(space, nlohmann::json::parse(model->to_json().dump()));
  EXPECT_DOUBLE_EQ(back->predict(arch), model->predict(arch));
  // A layer the table lacks is named.
  LatencyTable empty;
  try {
    empty.predict(net);
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("no entry for layer"), std::string::npos);
  }
}

TEST(CostModel, LayerKeysIgnoreNamesAndCountLiveSumInputs) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"), {{"N", "1"}});
  auto a = space.resolve(space.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"));
  std::set<std::string> keys;
  std::size_t sums_with_zero = 0;
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    keys.insert(layer_key(a, i));
    if (a.layers[i].op == "sum" && layer_key(a, i).find("live=1") != std::string::npos) ++sums_with_zero;
  }
  EXPECT_LT(keys.size(), a.layers.size());  // identical convs share an entry
  EXPECT_GT(sums_with_zero, 0U);            // node 2 = conv(node 0) + none(node 1)
}

TEST(CostModel, PredictorModelWrapsAFittedPredictor) {
  auto space = SearchSpace::from_file(testing::space_path("nb201"));
  std::vector<std::vector<float>> x;
  std::vector<double> y;
  space.for_each([&](const Architecture& a) {
    if (x.size() >= 300) return;
    x.push_back(architecture_features(space, a, FeatureOptions{}));
    double lat = 1;
    for (std::size_t d = 0; d < a.size(); ++d) lat += 0.5 * a[d];
    y.push_back(std::log(lat));
  });
  std::shared_ptr<Predictor> ridge = make_predictor("ridge", {{"lambda", 0.0}});
  ridge->fit(x, y);
  auto model = make_predictor_cost_model(space, "latency_ms", ridge, FeatureOptions{}, /*log_target=*/true);
  auto arch = space.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|");
  EXPECT_EQ(model->kind(), "predictor");
  EXPECT_GT(model->predict(arch), 0.0);
  auto back = load_cost_model(space, nlohmann::json::parse(model->to_json().dump()));
  EXPECT_DOUBLE_EQ(back->predict(arch), model->predict(arch));
  EXPECT_THROW(load_cost_model(space, {{"kind", "oracle"}}), InvalidArgument);
}

TEST(CostModel, AnalyticEnergyByHand) {
  // One 3x3 conv, 1 -> 2 channels on 4x4 (padding 1): 18 weights, 2*16*9 = 288 MACs; input 64
  // bytes, output 128 bytes; then global pooling (reads 128, writes 8) and a linear 2 -> 1 (2
  // weights + 1 bias, 2 MACs; reads 8, writes 4).
  auto space = SearchSpace::from_string(R"({"params": {"input": [1, 4, 4]},
    "network": [{"type": "conv", "out": 2, "kernel": 3}, {"type": "global_avg_pool"}, {"type": "linear", "out": 1}]})");
  EnergyConstants c;
  c.mac_pj = 1;
  c.dram_byte_pj = 10;
  c.sram_byte_pj = 0;
  c.activation_dram_share = 1;
  auto e = make_energy_cost_model(space, c);
  const double pj = (288 + 2) * 1.0 + (18 + 3) * 4 * 10.0 + (64 + 128 + 128 + 8 + 8 + 4) * 10.0;
  EXPECT_NEAR(e->predict(space.at(0)), pj * 1e-9, 1e-15);
  EXPECT_EQ(e->metric(), "energy_mj");
  auto back = load_cost_model(space, nlohmann::json::parse(e->to_json().dump()));
  EXPECT_EQ(back->predict(space.at(0)), e->predict(space.at(0)));
  // Keeping activations on chip saves energy.
  c.activation_dram_share = 0;
  EXPECT_LT(make_energy_cost_model(space, c)->predict(space.at(0)), e->predict(space.at(0)));
}

TEST(CostModel, MeasuredEnergySaysClearlyWhenItIsNotAvailable) {
  try {
    double mj = measure_cpu_energy_mj([] {
      volatile double x = 0;
      for (int i = 0; i < 1000000; ++i) x = x + 1e-9 * i;
    });
    EXPECT_GE(mj, 0.0);  // a machine with RAPL
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("not available here"), std::string::npos) << e.what();
  }
}

TEST(CostModel, MeasuredGpuEnergySaysClearlyWhenItIsNotAvailable) {
  try {
    double mj = measure_gpu_energy_mj([] {}, 0);
    EXPECT_GE(mj, 0.0);  // a machine with an NVIDIA driver and a Volta or newer GPU
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("measured GPU energy is not available here"), std::string::npos) << e.what();
  }
  // A device index no machine has is an error too, never a crash.
  EXPECT_THROW(measure_gpu_energy_mj([] {}, 4096), NotFound);
}

}  // namespace nasforge

namespace nasforge {

// tests/data/measured/nb201_h200_b256_energy.csv: 332 random NAS-Bench-201 networks measured on
// an NVIDIA H200 (`nasforge measure --samples ... --device cuda --batch 256 --energy`, NVML;
// docs/performance.md). A ridge predictor fitted on 100 of them ranks the other 232 far better
// than the analytic 45 nm energy model does (0.943 vs 0.79 Spearman when measured).
TEST(CostModel, LearnedEnergyPredictorBeatsTheAnalyticModelOnMeasuredGpuEnergy) {
  const auto space = SearchSpace::from_file(std::string(NASFORGE_SOURCE_DIR) + "/search_spaces/nb201.json");
  std::ifstream in(std::string(NASFORGE_SOURCE_DIR) + "/tests/data/measured/nb201_h200_b256_energy.csv");
  ASSERT_TRUE(in);
  std::string line;
  std::getline(in, line);
  ASSERT_EQ(line, "arch,latency_ms,energy_mj,watts");
  std::vector<Architecture> archs;
  std::vector<double> energy;
  while (std::getline(in, line)) {
    const auto c1 = line.find(','), c2 = line.find(',', c1 + 1), c3 = line.find(',', c2 + 1);
    archs.push_back(space.from_native(line.substr(0, c1)));
    energy.push_back(std::stod(line.substr(c2 + 1, c3 - c2 - 1)));
  }
  ASSERT_GE(archs.size(), 300U);
  const std::size_t train = 100;  // the rows are in random order already
  const FeatureOptions fo;
  std::vector<std::vector<float>> x;
  for (const auto& a : archs) x.push_back(architecture_features(space, a, fo));
  auto ridge = make_predictor("ridge", {{"lambda", "auto"}});
  ridge->fit({x.begin(), x.begin() + train}, {energy.begin(), energy.begin() + train});
  const std::vector<std::vector<float>> test_x(x.begin() + train, x.end());
  const std::vector<double> test_y(energy.begin() + train, energy.end());
  const auto learned = prediction_quality(ridge->predict_batch(test_x), test_y);
  auto analytic = make_energy_cost_model(space, {}, 256);
  std::vector<double> by_model;
  for (std::size_t i = train; i < archs.size(); ++i) by_model.push_back(analytic->predict(archs[i]));
  const auto physics = prediction_quality(by_model, test_y);
  EXPECT_GT(learned.spearman, 0.9);
  EXPECT_GT(learned.spearman, physics.spearman + 0.1);
  EXPECT_LT(learned.mape, 0.12);
}

}  // namespace nasforge

namespace nasforge {

TEST(LatencyTable, CalibrationFitsAScaleOrARobustLine) {
  LatencyTable t;
  // measured = 2 + 1.5 x layers, with two of ten points disturbed (a shared host).
  for (int i = 1; i <= 10; ++i) t.calibration.push_back({double(i), 2 + 1.5 * i});
  t.calibration[3].measured_ms *= 3;
  t.calibration[7].measured_ms *= 0.2;
  EXPECT_EQ(t.fit_calibration(CalibrationFit::kAffine), CalibrationFit::kAffine);
  EXPECT_NEAR(t.fixed_ms, 2.0, 1e-9);
  EXPECT_NEAR(t.scale, 1.5, 1e-9);
  // The scale alone: the median ratio (of 3.5, 2.5, ... the upper median of ten).
  EXPECT_EQ(t.fit_calibration(CalibrationFit::kScale), CalibrationFit::kScale);
  EXPECT_EQ(t.fixed_ms, 0.0);
  std::vector<double> ratios;
  for (const auto& p : t.calibration) ratios.push_back(p.measured_ms / p.layers_ms);
  std::sort(ratios.begin(), ratios.end());
  EXPECT_DOUBLE_EQ(t.scale, ratios[5]);
  // Falls back to the scale: sums spanning less than 1.5x, a negative intercept, too few points.
  LatencyTable narrow;
  for (int i = 0; i < 8; ++i) narrow.calibration.push_back({10.0 + 0.5 * i, 30.0 + 0.5 * i});
  EXPECT_EQ(narrow.fit_calibration(CalibrationFit::kAffine), CalibrationFit::kScale);
  EXPECT_EQ(narrow.fixed_ms, 0.0);
  LatencyTable negative;
  for (int i = 1; i <= 8; ++i) negative.calibration.push_back({double(i), 2.0 * i - 1});
  EXPECT_EQ(negative.fit_calibration(CalibrationFit::kAffine), CalibrationFit::kScale);
  LatencyTable few;
  few.calibration = {{1, 3}, {2, 5}, {4, 9}};
  EXPECT_EQ(few.fit_calibration(CalibrationFit::kAffine), CalibrationFit::kScale);
  EXPECT_DOUBLE_EQ(few.scale, 2.5);
  // No points: nothing changes.
  LatencyTable none;
  none.scale = 1.25;
  none.fit_calibration(CalibrationFit::kAffine);
  EXPECT_EQ(none.scale, 1.25);
}

TEST(LatencyTable, CalibrationPointsRoundTripThroughJson) {
  LatencyTable t;
  t.ms["k"] = 1.0;
  t.calibration = {{1.0, 1.25}, {2.0, 2.5}};
  t.fit_calibration(CalibrationFit::kScale);
  const auto back = LatencyTable::from_json(nlohmann::json::parse(t.to_json().dump()));
  ASSERT_EQ(back.calibration.size(), 2U);
  EXPECT_EQ(back.calibration[1].measured_ms, 2.5);
  EXPECT_EQ(back.scale, 1.25);
  auto old = t.to_json();
  old.erase("calibration");  // tables written before the points were kept
  EXPECT_TRUE(LatencyTable::from_json(old).calibration.empty());
  old["calibration"] = nlohmann::json::array({nlohmann::json::array({1.0})});
  EXPECT_THROW(LatencyTable::from_json(old), InvalidArgument);
  old["calibration"] = nullptr;
  EXPECT_THROW(LatencyTable::from_json(old), InvalidArgument);
}

TEST(LatencyTable, AReferenceRoundTripsThroughJsonAndIsChecked) {
  LatencyTable t;
  t.ms["k"] = 1.0;
  EXPECT_FALSE(t.to_json().contains("reference"));  // absolute tables say nothing
  EXPECT_EQ(LatencyTable::from_json(t.to_json()).reference_ms, 0.0);
  t.reference_ms = 4.25;
  t.reference_fingerprint = "00ff00ff00ff00ff";
  const auto back = LatencyTable::from_json(nlohmann::json::parse(t.to_json().dump()));
  EXPECT_EQ(back.reference_ms, 4.25);
  EXPECT_EQ(back.reference_fingerprint, "00ff00ff00ff00ff");
  for (const char* bad : {R"({"ms": 0, "fingerprint": "a"})", R"({"ms": -1, "fingerprint": "a"})",
                          R"({"ms": 2})", R"({"ms": "2", "fingerprint": "a"})", R"([2, "a"])"}) {
    auto j = t.to_json();
    j["reference"] = nlohmann::json::parse(bad);
    try {
      LatencyTable::from_json(j);
      ADD_FAILURE() << "accepted reference " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("\"reference\""), std::string::npos) << e.what();
    }
  }
}

}  // namespace nasforge
