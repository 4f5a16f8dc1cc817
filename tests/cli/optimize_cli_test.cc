// `pocketcv optimize` as a user runs it: report table / JSON, output files, usage errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "cli_util.h"
#include "formats/model_io.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {

class OptimizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("pcv_opt_cli");
    model_ = dir_ + "/m.pcv";
    auto r = run_cli({"create", "--arch", "mobilenet_v2", "--width", "0.35", "--size", "64", "--classes", "3", "-o", model_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override { remove_tree(dir_); }
  std::string dir_, model_;
};

TEST_F(OptimizeCli, Int8JsonReport) {
  const std::string out = dir_ + "/m_int8.tflite";
  auto r = run_cli({"optimize", model_, "--quantize", "int8", "--calibration-size", "20", "--json", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out));
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["variants"].size(), 2u);
  EXPECT_EQ(j["variants"][1]["name"], "int8");
  // A 0.4M-parameter model: per-channel scales, int32 biases and the flatbuffer tables weigh more
  // than in a full-size one (simple_cnn on Fashion-MNIST: 0.256x, done_when_test).
  EXPECT_LT(j["variants"][1]["size_ratio"].get<double>(), 0.45);
  EXPECT_GT(j["variants"][1]["gzip_bytes"].get<int64_t>(), 0);
  EXPECT_GT(j["layers"].size(), 10u);
  EXPECT_FALSE(j["worst_layer"].get<std::string>().empty());
  // No labelled data here: random calibration is called out.
  bool warned = false;
  for (const auto& w : j["warnings"]) warned = warned || w.get<std::string>().find("random inputs") != std::string::npos;
  EXPECT_TRUE(warned) << r.out;
  auto back = formats::load_model(out);
  ASSERT_TRUE(back.has_value()) << back.status().to_string();
}

TEST_F(OptimizeCli, Fp16TableAndPalettizedCoreMl) {
  auto r = run_cli({"optimize", model_, "--quantize", "fp16", "-o", dir_ + "/m16.tflite"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fp16"), std::string::npos);
  EXPECT_NE(r.out.find("per-layer error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the layer that hurts most"), std::string::npos) << r.out;
  r = run_cli({"optimize", model_, "--palettize", "4", "-o", dir_ + "/m.mlmodel"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("palette4"), std::string::npos) << r.out;
}

TEST_F(OptimizeCli, PruneStructuredAndUsageErrors) {
  auto r = run_cli({"optimize", model_, "--prune", "0.5", "--prune-structured", "-o", dir_ + "/small.pcv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("structured pruning"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli({"optimize", model_, "-o", dir_ + "/x.tflite"}).exit_code, 1) << "nothing to do";
  EXPECT_EQ(run_cli({"optimize", model_, "--quantize", "int4", "-o", dir_ + "/x.tflite"}).exit_code, 1);
  EXPECT_EQ(run_cli({"optimize", model_, "--quantize", "fp16", "--io", "int8", "-o", dir_ + "/x.tflite"}).exit_code, 1);
  EXPECT_EQ(run_cli({"optimize", model_, "--quantize", "int8"}).exit_code, 2) << "-o is required";
  EXPECT_EQ(run_cli({"optimize", dir_ + "/missing.pcv", "--quantize", "int8", "-o", dir_ + "/x.tflite"}).exit_code, 1);
}

}  // namespace
}  // namespace pcv::testing
