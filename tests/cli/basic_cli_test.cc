// The CLI as a user sees it: outputs, exit codes, error messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "cli_util.h"
#include "ir/pcv_format.h"
#include "runtime/session.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {

TEST(Cli, HelpAndVersion) {
  auto r = run_cli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"create", "train", "convert", "optimize", "predict", "run", "bench", "inspect", "compare",
                          "pipeline", "camera", "eval"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  }
  r = run_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("pocketcv 0.1.0"), std::string::npos);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run_cli({}).exit_code, 2);
  EXPECT_EQ(run_cli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_cli({"create", "--size"}).exit_code, 2);
  EXPECT_EQ(run_cli({"bench", "x.pcv", "--threads", "1000"}).exit_code, 2);
}

TEST(Cli, CreateInspectRunRoundTrip) {
  const std::string dir = make_temp_dir("pcv_cli");
  const std::string model = dir + "/m.pcv";
  auto r = run_cli({"create", "--arch", "mobilenet_v2", "--width", "0.35", "--size", "64", "--labels", "cat,dog,bird",
                    "-o", model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("created mobilenet_v2_0.35_64"), std::string::npos) << r.out;

  r = run_cli({"inspect", model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("input      input: f32 (1, 64, 64, 3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("labels     cat, dog, bird"), std::string::npos) << r.out;

  r = run_cli({"inspect", model, "--json", "--layers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  auto loaded = ir::load_pcv(model);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(j["parameters"].get<int64_t>(), loaded->graph.parameter_count());
  EXPECT_EQ(j["outputs"][0]["shape"], nlohmann::json({1, 3}));
  EXPECT_EQ(j["layers"].size(), loaded->graph.nodes.size());

  // run: raw input in, raw output equal to the library's own run.
  ir::Tensor x(ir::DType::kF32, {1, 64, 64, 3});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = static_cast<float>(i % 17) / 8.f - 1.f;
  ASSERT_TRUE(write_file_atomic(dir + "/x.bin", x.bytes()).is_ok());
  r = run_cli({"run", model, "--input", dir + "/x.bin", "--output-dir", dir + "/out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto bytes = read_file(dir + "/out/output_0.bin");
  ASSERT_TRUE(bytes.has_value());
  ASSERT_EQ(bytes->size(), 3 * sizeof(float));
  auto expect = runtime::run_model(*loaded, {x});
  ASSERT_TRUE(expect.has_value());
  for (int i = 0; i < 3; ++i) {
    float got;
    std::memcpy(&got, bytes->data() + 4 * i, 4);
    EXPECT_NEAR(got, (*expect)[0].data<float>()[i], 1e-5);
  }

  r = run_cli({"bench", model, "--runs", "3", "--warmup", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["latency_ms"]["median"].get<double>(), 0.0);
  EXPECT_FALSE(j["ops"].empty());
}

TEST(Cli, BadInputsGiveClearErrorsAndExitOne) {
  const std::string dir = make_temp_dir("pcv_cli_bad");
  auto r = run_cli({"inspect", dir + "/missing.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.pcv: no such file"), std::string::npos) << r.err;

  ASSERT_TRUE(write_file_atomic(dir + "/empty.pcv", std::string_view("")).is_ok());
  r = run_cli({"inspect", dir + "/empty.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty.pcv: empty file"), std::string::npos) << r.err;

  ASSERT_TRUE(write_file_atomic(dir + "/model.xyz", std::string_view("hello")).is_ok());
  r = run_cli({"inspect", dir + "/model.xyz"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a model file"), std::string::npos) << r.err;

  // A truncated model, and a run with a wrong-sized input.
  const std::string model = dir + "/m.pcv";
  ASSERT_EQ(run_cli({"create", "--size", "32", "-o", model}).exit_code, 0);
  auto bytes = *read_file(model);
  ASSERT_TRUE(write_file_atomic(dir + "/cut.pcv", std::span<const uint8_t>(bytes.data(), bytes.size() / 2)).is_ok());
  r = run_cli({"inspect", dir + "/cut.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cut.pcv"), std::string::npos) << r.err;
  ASSERT_TRUE(write_file_atomic(dir + "/small.bin", std::string_view("abcd")).is_ok());
  r = run_cli({"run", model, "--input", dir + "/small.bin", "--output-dir", dir + "/o"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("small.bin: 4 bytes, but input 0 'input' is f32(1, 32, 32, 3) = 12288 bytes"), std::string::npos)
      << r.err;

  // Absurd options.
  r = run_cli({"create", "--size", "0", "-o", dir + "/z.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--size 0"), std::string::npos) << r.err;
  r = run_cli({"create", "--classes", "1", "-o", dir + "/z.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(file_exists(dir + "/z.pcv"));
  // Unwritable output: a directory that does not exist.
  r = run_cli({"create", "--size", "32", "-o", dir + "/no/such/dir/m.pcv"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pcv::testing
