// Real PyTorch exports nobody here made: ONNX's own backend test data (Debian
// libonnx-testdata) holds single-layer models written by torch.onnx.export with reference
// inputs and outputs. Each one that pocketcv supports must import and reproduce the reference
// output; each one it does not support must fail with a clear unsupported error.
#include <gtest/gtest.h>

#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <sstream>

#include "base/file.h"
#include "formats/onnx/onnx.h"
#include "formats/onnx/onnx_test_util.h"

namespace pcv::onnx_test {
namespace {

namespace fs = std::filesystem;

Expected<onnx::detail::Const> read_tensor_pb(const std::string& path) {
  PCV_ASSIGN_OR_RETURN(auto bytes, read_file(path));
  pb::TensorProto t;
  if (!t.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return invalid_model(path + ": bad TensorProto");
  return onnx::detail::const_from_proto(t, path);
}

// Imports `dir`/model.onnx, runs test_data_set_0's input, compares with its output.
Status run_case(const std::string& dir, std::string* detail) {
  onnx::ReadInfo info;
  PCV_ASSIGN_OR_RETURN(auto m, onnx::load_onnx(dir + "/model.onnx", &info));
  PCV_ASSIGN_OR_RETURN(auto in, read_tensor_pb(dir + "/test_data_set_0/input_0.pb"));
  PCV_ASSIGN_OR_RETURN(auto want, read_tensor_pb(dir + "/test_data_set_0/output_0.pb"));
  if (m.graph.inputs.size() != 1) return unsupported("several inputs");
  std::vector<float> x = in.f;
  if (in.dims.size() == 4) x = to_nhwc(x, in.dims);
  PCV_ASSIGN_OR_RETURN(auto got, run_ours(m, x));
  const ir::Shape& os = m.graph.value(m.graph.outputs[0]).shape;
  if (os.size() == 4) got = to_nchw(got, os);
  auto close = all_close(got, want.f, 1e-4f, 1e-4f);
  if (!close) return internal_error(std::string("output differs: ") + close.message());
  *detail = fmt::format("opset {}, {}, {} IR nodes", info.opset, info.producer, m.graph.nodes.size());
  return Status::ok();
}

const char* kTestData = PCV_ONNX_TESTDATA;

TEST(OnnxTestData, PyTorchExportsImportAndMatchReferenceOutputs) {
  if (!fs::is_directory(kTestData)) GTEST_SKIP() << "needs Debian libonnx-testdata (" << kTestData << ")";
  // Supported: must match. Others: must be refused with `unsupported`.
  const std::vector<std::string> supported = {
      "pytorch-converted/test_Conv2d", "pytorch-converted/test_Conv2d_depthwise",
      "pytorch-converted/test_Conv2d_depthwise_padded", "pytorch-converted/test_Conv2d_depthwise_strided",
      "pytorch-converted/test_Conv2d_depthwise_with_multiplier", "pytorch-converted/test_Conv2d_dilated",
      "pytorch-converted/test_Conv2d_groups", "pytorch-converted/test_Conv2d_groups_thnn",
      "pytorch-converted/test_Conv2d_no_bias", "pytorch-converted/test_Conv2d_padding",
      "pytorch-converted/test_Conv2d_strided", "pytorch-converted/test_MaxPool2d",
      "pytorch-converted/test_AvgPool2d", "pytorch-converted/test_AvgPool2d_stride",
      "pytorch-converted/test_BatchNorm2d_eval", "pytorch-converted/test_BatchNorm2d_momentum_eval",
      "pytorch-converted/test_ReLU", "pytorch-converted/test_Sigmoid", "pytorch-converted/test_LeakyReLU",
      "pytorch-converted/test_LeakyReLU_with_negval", "pytorch-converted/test_Linear",
      "pytorch-converted/test_Linear_no_bias", "pytorch-converted/test_Softmax",
      "pytorch-converted/test_ZeroPad2d", "pytorch-converted/test_ConstantPad2d",
  };
  int passed = 0;
  for (const auto& c : supported) {
    SCOPED_TRACE(c);
    const std::string dir = std::string(kTestData) + "/" + c;
    if (!fs::is_directory(dir)) {
      ADD_FAILURE() << "missing " << dir;
      continue;
    }
    std::string detail;
    Status s = run_case(dir, &detail);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (s.is_ok()) {
      ++passed;
      std::cout << "  ok " << c << " (" << detail << ")\n";
    }
  }
  std::cout << passed << " of " << supported.size() << " PyTorch exports reproduce their reference outputs\n";
}

TEST(OnnxTestData, SurveyEveryTorchExport) {
  if (!fs::is_directory(kTestData)) GTEST_SKIP() << "needs Debian libonnx-testdata (" << kTestData << ")";
  // Every torch export: either imports and matches, or is refused as unsupported / invalid
  // with a message. Nothing may crash or silently differ.
  int ok = 0, refused = 0;
  for (const char* suite : {"pytorch-converted", "pytorch-operator"}) {
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(std::string(kTestData) + "/" + suite)) dirs.push_back(e.path().string());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& dir : dirs) {
      if (!fs::exists(dir + "/test_data_set_0/input_0.pb") || fs::exists(dir + "/test_data_set_0/input_1.pb")) continue;
      std::string detail;
      Status s = run_case(dir, &detail);
      if (s.is_ok()) {
        ++ok;
      } else {
        EXPECT_NE(s.code(), StatusCode::kInternal) << dir << ": " << s.to_string();
        ++refused;
        std::cout << "  refused " << fs::path(dir).filename().string() << ": " << s.to_string().substr(0, 160) << "\n";
      }
    }
  }
  std::cout << ok << " imported and matched, " << refused << " refused\n";
  EXPECT_GT(ok, 25);
}

}  // namespace
}  // namespace pcv::onnx_test
