// Calibration methods on known distributions, int8 parameter choice, and the guards.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "optimize/calibration.h"
#include "optimize/optimize_test_util.h"
#include "optimize/report.h"
#include "optimize/samples.h"

namespace pcv::optimize {
namespace {

TEST(Calibration, MinMaxOfAKnownSet) {
  const std::vector<float> v = {0.5f, -2.25f, 3.0f, 1.0f, NAN, 0.f};
  const Range r = range_minmax(v);
  EXPECT_EQ(r.min, -2.25f);
  EXPECT_EQ(r.max, 3.0f);
}

TEST(Calibration, PercentileClipsOutliers) {
  // 100000 values uniform in [-1, 1] and 5 outliers at 50: the 99.99th percentile ignores them.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(100000);
  for (float& x : v) x = u(rng);
  for (int i = 0; i < 5; ++i) v.push_back(50.f);
  const Range mm = range_minmax(v);
  Histogram h(mm.min, mm.max, 2048);
  h.add(v);
  const Range p = range_percentile(h, 99.99f);
  EXPECT_NEAR(p.min, -1.f, 0.03f);
  EXPECT_NEAR(p.max, 1.f, 51.f / 2048 + 1e-3f) << "clipped to within one bin of the bulk";
  EXPECT_EQ(mm.max, 50.f);
  // 100%: nothing clipped.
  const Range all = range_percentile(h, 100.f);
  EXPECT_EQ(all.max, 50.f);
}

TEST(Calibration, EntropyClipsLongTails) {
  // ReLU-like: half-normal values plus a long sparse tail; KL picks a threshold below the
  // maximum (clips part of the tail) and above the bulk (|x| < 3.3 for 99.9%). NOTE: over 2048
  // bins the smooth bulk costs little KL when merged, so KL keeps more tail than a percentile.
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v;
  for (int i = 0; i < 200000; ++i) v.push_back(std::fabs(nd(rng)));
  for (int i = 0; i < 20; ++i) v.push_back(20.f + static_cast<float>(i));
  Histogram h(0.f, range_minmax(v).max, 2048);
  h.add_abs(v);
  const float t = entropy_threshold(h, 256);
  EXPECT_GT(t, 2.5f);
  EXPECT_LT(t, 0.75f * h.hi);
  std::printf("entropy threshold %.3f (max %.3f)\n", t, h.hi);
}

TEST(Calibration, Int8ParamsRepresentZeroExactly) {
  auto q = int8_params({0.f, 2.55f});
  EXPECT_FLOAT_EQ(q.scale[0], 0.01f);
  EXPECT_EQ(q.zero_point[0], -128);
  q = int8_params({-1.f, 1.f});
  EXPECT_FLOAT_EQ(q.scale[0], 2.f / 255.f);
  EXPECT_GE(q.zero_point[0], -128);
  EXPECT_LE(q.zero_point[0], 127);
  q = int8_params({0.5f, 1.f});  // widened to contain 0
  EXPECT_EQ(q.zero_point[0], -128);
  EXPECT_FLOAT_EQ(q.scale[0], 1.f / 255.f);
  q = int8_params({-3.f, -1.f});
  EXPECT_EQ(q.zero_point[0], 127);
  q = int8_params({0.f, 0.f});
  EXPECT_GT(q.scale[0], 0.f);
}

TEST(Calibration, MethodsOnAModel) {
  const ir::Model m = testing::zoo_model("simple_cnn", 32, 3, 4);
  std::vector<ir::Tensor> xs;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int i = 0; i < 8; ++i) {
    ir::Tensor t(ir::DType::kF32, {1, 32, 32, 3});
    for (int64_t k = 0; k < t.num_elements(); ++k) t.data<float>()[k] = u(rng);
    xs.push_back(t);
  }
  std::map<CalibrationMethod, std::map<std::string, Range>> got;
  for (CalibrationMethod method : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
    CalibrationOptions o;
    o.method = method;
    auto r = calibrate(m, xs, o);
    ASSERT_TRUE(r.has_value()) << r.status().to_string();
    got[method] = *r;
    EXPECT_TRUE(r->count("input"));
    EXPECT_EQ(r->at("input"), got[CalibrationMethod::kMinMax].at("input")) << "inputs are never clipped";
  }
  for (const auto& [name, mm] : got[CalibrationMethod::kMinMax]) {
    for (CalibrationMethod method : {CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
      const Range r = got[method].at(name);
      EXPECT_GE(r.min, mm.min - 1e-6f) << name;
      EXPECT_LE(r.max, mm.max + 1e-6f) << name;
    }
  }
  EXPECT_FALSE(calibrate(m, {}).has_value());
}

TEST(Guards, TinyOrOneSidedCalibrationSet) {
  SampleSet s;
  s.dataset_classes = 3;
  s.class_names = {"cat", "dog", "bird"};
  for (int i = 0; i < 10; ++i) {
    s.inputs.emplace_back(ir::DType::kF32, ir::Shape{1, 2, 2, 1});
    s.labels.push_back(i % 2);
  }
  auto w = calibration_warnings(s, 3);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("tiny: 10 images"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("misses 1 of 3 classes (bird)"), std::string::npos) << w[1];
  for (int i = 0; i < 60; ++i) {
    s.inputs.emplace_back(ir::DType::kF32, ir::Shape{1, 2, 2, 1});
    s.labels.push_back(i % 3);
  }
  EXPECT_TRUE(calibration_warnings(s, 3).empty());
  EXPECT_EQ(calibration_warnings(s, 5).size(), 1u) << "model outputs vs dataset classes";
}

TEST(Guards, AlwaysTheSameClass) {
  SampleSet s;
  std::vector<std::vector<float>> ref, broken;
  for (int i = 0; i < 20; ++i) {
    s.inputs.emplace_back(ir::DType::kF32, ir::Shape{1});
    s.labels.push_back(i % 2);
    ref.push_back(i % 2 ? std::vector<float>{0.2f, 0.8f} : std::vector<float>{0.7f, 0.3f});
    broken.push_back({0.6f, 0.4f});
  }
  s.dataset_classes = 2;
  VariantReport fv, bv;
  score_variant(ref, ref, s, &fv);
  score_variant(broken, ref, s, &bv);
  EXPECT_FALSE(fv.constant_class.has_value());
  ASSERT_TRUE(bv.constant_class.has_value());
  EXPECT_EQ(*bv.constant_class, 0);
  EXPECT_DOUBLE_EQ(*fv.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(*bv.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(bv.top1_agreement, 0.5);
}

TEST(Report, GzipAndTableAndJson) {
  std::vector<uint8_t> zeros(100000, 0);
  const int64_t gz = gzip_size(zeros.data(), zeros.size());
  EXPECT_GT(gz, 0);
  EXPECT_LT(gz, 1000);
  Report r;
  r.model = "m.pcv";
  r.output = "m.tflite";
  r.variants.resize(2);
  r.variants[0].name = "float";
  r.variants[0].file_bytes = 1000;
  r.variants[0].gzip_bytes = 900;
  r.variants[0].accuracy = 0.9;
  r.variants[1].name = "int8";
  r.variants[1].file_bytes = 260;
  r.variants[1].gzip_bytes = 200;
  r.variants[1].accuracy = 0.895;
  r.layers.push_back({"conv1", "conv2d", 30.0, 0.999, 5.0, 0.001});
  r.worst_layer = "conv1";
  r.warnings.push_back("calibration set is tiny");
  const std::string t = report_table(r);
  EXPECT_NE(t.find("0.260x"), std::string::npos) << t;
  EXPECT_NE(t.find("89.50% (-0.50)"), std::string::npos) << t;
  EXPECT_NE(t.find("the layer that hurts most: conv1"), std::string::npos) << t;
  EXPECT_NE(t.find("warning: calibration set is tiny"), std::string::npos) << t;
  const std::string j = report_json(r);
  EXPECT_NE(j.find("\"size_ratio\": 0.26"), std::string::npos) << j;
  EXPECT_NE(j.find("\"worst_layer\": \"conv1\""), std::string::npos) << j;
}

}  // namespace
}  // namespace pcv::optimize
