// The Done-when figures at CI size: simple_cnn trained here on a Fashion-MNIST subset
// (pcv_train's Program through make_finetuner: there is no trainer entry point yet), then
// optimize_model end to end into .tflite / .mlmodel files:
//   fp16: accuracy within 0.1 point, file ~0.5x;  int8: within 1 point, file <= 0.27x;
//   50% magnitude pruning with fine-tuning: within 1 point, gzip <= 0.6x;
//   palettized Core ML: reads back and runs.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/file.h"
#include "data/idx.h"
#include "optimize/optimize.h"
#include "optimize/optimize_test_util.h"
#include "support/paths.h"

namespace pcv::optimize {
namespace {

class DoneWhen : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!finetune_available()) return;
    auto train = data::IdxDataset::fashion_mnist(true);
    if (!train) return;
    // 6000 training images (stratified slice), 3 epochs.
    model_ = new ir::Model(testing::zoo_model("simple_cnn", 28, 1, 10, 1.f, /*prepared=*/false, 3));
    auto ds = std::make_shared<data::IdxDataset>(std::move(*train));
    FinetuneOptions fo;
    fo.epochs = 3;
    fo.max_samples = 6000;
    fo.learning_rate = 0.02f;
    auto ft = make_finetuner(ds, *model_, fo);
    ASSERT_TRUE(ft.has_value()) << ft.status().to_string();
    ASSERT_TRUE((*ft)->run(*model_, {}).is_ok());
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!finetune_available()) GTEST_SKIP() << "this build has no trainer (pcv_train)";
    if (!model_) GTEST_SKIP() << "needs Fashion-MNIST in " << data::kFashionMnistDir;
    dir_ = pcv::testing::make_temp_dir("pcv_done_when");
  }
  void TearDown() override {
    if (!dir_.empty()) remove_tree(dir_);
  }

  Report run(const std::string& name, OptimizeOptions o) {
    o.eval_data = "fashion-mnist:test";
    o.eval_size = 2000;
    o.latency_runs = 5;
    auto r = optimize_model(*model_, "simple_cnn_fmnist", dir_ + "/" + name, o);
    EXPECT_TRUE(r.has_value()) << r.status().to_string();
    if (!r) return {};
    std::printf("%s", report_table(*r).c_str());
    return *r;
  }

  static ir::Model* model_;
  std::string dir_;
};
ir::Model* DoneWhen::model_ = nullptr;

double ratio(int64_t a, int64_t b) { return static_cast<double>(a) / static_cast<double>(b); }

TEST_F(DoneWhen, Fp16HalfSizeSameAccuracy) {
  OptimizeOptions o;
  o.quantize = QuantizeMode::kFp16;
  const Report r = run("fp16.tflite", o);
  ASSERT_EQ(r.variants.size(), 2u);
  const auto& f = r.variants[0];
  const auto& q = r.variants[1];
  ASSERT_TRUE(f.accuracy && q.accuracy);
  EXPECT_GT(*f.accuracy, 0.75) << "the trained model";
  EXPECT_GE(*q.accuracy, *f.accuracy - 0.001);
  EXPECT_NEAR(ratio(q.file_bytes, f.file_bytes), 0.5, 0.03);
}

TEST_F(DoneWhen, Int8QuarterSizeWithinOnePoint) {
  for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
    OptimizeOptions o;
    o.quantize = QuantizeMode::kInt8;
    o.calibration_data = "fashion-mnist:train";
    o.calibration_size = 200;
    o.calibration.method = m;
    const Report r = run(std::string("int8_") + calibration_method_name(m) + ".tflite", o);
    ASSERT_EQ(r.variants.size(), 2u);
    const auto& f = r.variants[0];
    const auto& q = r.variants[1];
    ASSERT_TRUE(f.accuracy && q.accuracy);
    EXPECT_GE(*q.accuracy, *f.accuracy - 0.01) << calibration_method_name(m);
    EXPECT_LE(ratio(q.file_bytes, f.file_bytes), 0.27);
    EXPECT_GE(q.top1_agreement, 0.97);
    EXPECT_FALSE(r.worst_layer.empty());
    EXPECT_TRUE(r.warnings.empty()) << r.warnings[0];
  }
}

TEST_F(DoneWhen, Prune50WithFinetuningWithinOnePoint) {
  OptimizeOptions o;
  o.prune = 0.5f;
  o.finetune_data = "fashion-mnist:train";
  o.finetune.epochs = 1;
  o.finetune.max_samples = 6000;
  o.finetune.learning_rate = 0.005f;
  const Report r = run("pruned.tflite", o);
  ASSERT_EQ(r.variants.size(), 2u);
  const auto& f = r.variants[0];
  const auto& p = r.variants[1];
  ASSERT_TRUE(f.accuracy && p.accuracy && r.sparsity);
  EXPECT_NEAR(*r.sparsity, 0.5, 1e-4);  // per output channel: each row rounds on its own
  EXPECT_GE(*p.accuracy, *f.accuracy - 0.01);
  EXPECT_LE(ratio(p.gzip_bytes, f.gzip_bytes), 0.6);
}

TEST_F(DoneWhen, PalettizedCoreMlReadsBackAndRuns) {
  OptimizeOptions o;
  o.palettize_bits = 4;
  const Report r = run("palette4.mlmodel", o);
  ASSERT_EQ(r.variants.size(), 2u);
  const auto& f = r.variants[0];
  const auto& p = r.variants[1];
  ASSERT_TRUE(f.accuracy && p.accuracy);
  EXPECT_GE(*p.accuracy, *f.accuracy - 0.02);
  EXPECT_LT(ratio(p.file_bytes, f.file_bytes), 0.17) << "4-bit indices + tables";
  for (const std::string& w : r.warnings) EXPECT_EQ(w.find("read back"), std::string::npos) << w;
}

}  // namespace
}  // namespace pcv::optimize
