// `pocketcv convert` of a real PyTorch export (torchvision mobilenet_v2 written by
// torch.onnx.export, from tools/pytorch/export_cnns.py) to TFLite and Core ML, and
// `pocketcv inspect` reporting the converted files' operators: the NCHW graph must not cost
// any TRANSPOSE in the .tflite. That test skips when the fixtures are absent (no
// python3-torch): set PCV_PYTORCH_FIXTURES or run scripts/test, which writes
// build/ci/pytorch-fixtures. The transposes count itself is also checked on zoo models.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "cli_util.h"
#include "support/paths.h"

namespace pcv::testing {
namespace {

std::string pytorch_fixture(const std::string& file) {
  const char* e = std::getenv("PCV_PYTORCH_FIXTURES");
  const std::string dir = e && *e ? std::string(e) : binary_dir() + "/pytorch-fixtures";
  return dir + "/" + file;
}

TEST(PyTorchConvertCli, MobileNetV2OnnxToTfliteAndCoreMl) {
  const std::string onnx = pytorch_fixture("mobilenet_v2.onnx");
  if (!std::filesystem::exists(onnx)) {
    GTEST_SKIP() << "needs " << onnx
                 << " (tools/pytorch/export_cnns.py: run scripts/test, or set PCV_PYTORCH_FIXTURES)";
  }
  const std::string dir = make_temp_dir("pcv_pytorch_cli");

  // The ONNX file itself, as torch wrote it.
  auto r = run_cli({"inspect", onnx});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("file ops   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Conv x52"), std::string::npos) << r.out;  // 17 blocks (2-3 convs) + stem + head
  EXPECT_NE(r.out.find("transposes 0\n"), std::string::npos) << r.out;

  const std::string tfl = dir + "/mnv2.tflite";
  r = run_cli({"convert", onnx, "--to", "tflite", "-o", tfl});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"inspect", tfl});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("input      input: f32 (1, 224, 224, 3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("output     logits: f32 (1, 10)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CONV_2D x35"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("DEPTHWISE_CONV_2D x17"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("TRANSPOSE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("transposes 0\n"), std::string::npos) << r.out;
  r = run_cli({"inspect", tfl, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["transposes"], 0);
  EXPECT_EQ(j["file_ops"]["CONV_2D"], 35);
  EXPECT_EQ(j["file_ops"]["DEPTHWISE_CONV_2D"], 17);
  EXPECT_FALSE(j["file_ops"].contains("TRANSPOSE"));

  for (const auto& [to, file] : {std::pair{"coreml", "mnv2.mlmodel"}, std::pair{"mlpackage", "mnv2.mlpackage"}}) {
    SCOPED_TRACE(to);
    const std::string out = dir + "/" + file;
    r = run_cli({"convert", onnx, "--to", to, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(std::filesystem::exists(out));
    r = run_cli({"inspect", out, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto jc = nlohmann::json::parse(r.out);
    EXPECT_EQ(jc["outputs"][0]["shape"], nlohmann::json({1, 10})) << r.out;
    EXPECT_EQ(jc["transposes"], 0) << r.out;  // global pooling leaves nothing to reorder
    EXPECT_FALSE(jc["file_ops"].empty());
  }
  remove_tree(dir);
}

// `inspect` counts the operators that only reorder data in each file's own terms: none where
// the NHWC IR maps straight to the format, one where an NCHW format must flatten a spatial map
// in NHWC order (simple_cnn's flatten of its 7x7 feature map), none after global pooling.
TEST(PyTorchConvertCli, InspectReportsTheTransposesAFileNeeds) {
  const std::string dir = make_temp_dir("pcv_transposes_cli");
  struct Want {
    const char* ext;
    int simple_cnn, mobilenet;
  };
  const std::string simple = dir + "/simple.pcv", mnv2 = dir + "/mnv2.pcv";
  auto r = run_cli({"create", "--arch", "simple_cnn", "--size", "28", "--classes", "3", "-o", simple});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"create", "--arch", "mobilenet_v2", "--width", "0.35", "--size", "64", "--classes", "3", "-o", mnv2});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const Want& w : {Want{".pcv", 0, 0}, Want{".tflite", 0, 0}, Want{".mlmodel", 0, 0}, Want{".mlpackage", 1, 0},
                        Want{".onnx", 1, 0}}) {
    for (const auto& [src, want] : {std::pair{simple, w.simple_cnn}, std::pair{mnv2, w.mobilenet}}) {
      SCOPED_TRACE(src + " -> " + w.ext);
      std::string file = src;
      if (std::string(w.ext) != ".pcv") {
        file = src.substr(0, src.size() - 4) + w.ext;
        r = run_cli({"convert", src, "-o", file});
        ASSERT_EQ(r.exit_code, 0) << r.err;
      }
      r = run_cli({"inspect", file});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.out.find(fmt::format("transposes {}\n", want)), std::string::npos) << r.out;
      r = run_cli({"inspect", file, "--json"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["transposes"], want) << r.out;
      EXPECT_FALSE(j["file_ops"].empty()) << r.out;
    }
  }
  remove_tree(dir);
}

}  // namespace
}  // namespace pcv::testing
