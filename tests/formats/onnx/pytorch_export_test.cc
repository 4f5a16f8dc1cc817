// Real PyTorch exports: CNNs written by torch.onnx.export (tools/pytorch/export_cnns.py:
// torchvision mobilenet_v2 and resnet18, a tutorial CNN at opsets 13 and 17) with PyTorch's
// own output for a fixed input. Each one must
//   - import (formats::load_model) and reproduce PyTorch's output (the independent truth) and
//     ONNX Runtime's output on the original file;
//   - convert to .tflite that runs in LiteRT like pocketcv, without TRANSPOSE operators;
//   - convert to .mlmodel (float weights) and .mlpackage (fp16 weights) that read back and run
//     like the imported model.
// The fixtures come from `scripts/test` (into build/ci/pytorch-fixtures) or from the directory
// in PCV_PYTORCH_FIXTURES; without them (no python3-torch) the tests skip and say why.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/file.h"
#include "formats/onnx/onnx.h"
#include "formats/onnx/onnx_test_util.h"
#include "support/oracle.h"
#include "support/paths.h"
#if PCV_HAVE_FORMATS
#include "formats/model_io.h"
#endif
#if PCV_HAVE_TFLITE
#include "formats/tflite/op_map.h"
#include "formats/tflite/tflite_schema_generated.h"
#endif

namespace pcv::onnx_test {
namespace {

namespace fs = std::filesystem;

#if PCV_HAVE_FORMATS
std::string fixtures_dir() {
  if (const char* e = std::getenv("PCV_PYTORCH_FIXTURES"); e && *e) return e;
  return testing::binary_dir() + "/pytorch-fixtures";
}

struct Fixture {
  std::string onnx_path;
  ir::Shape input_nchw;
  std::vector<float> input_nchw_data;
  std::vector<float> torch_out;
  nlohmann::json meta;
};

// Loads <dir>/<name>.{onnx,input.bin,torch_out.bin,json}; sets *skip when they are absent.
bool load_fixture(const std::string& name, Fixture* f, std::string* skip) {
  const std::string base = fixtures_dir() + "/" + name;
  for (const char* ext : {".onnx", ".input.bin", ".torch_out.bin", ".json"}) {
    if (!fs::exists(base + ext)) {
      *skip = fmt::format("needs the PyTorch fixture {}{} (made by tools/pytorch/export_cnns.py: run scripts/test, "
                          "or set PCV_PYTORCH_FIXTURES)", base, ext);
      return false;
    }
  }
  f->onnx_path = base + ".onnx";
  auto text = read_text_file(base + ".json");
  auto in = read_file(base + ".input.bin");
  auto out = read_file(base + ".torch_out.bin");
  if (!text || !in || !out) {
    ADD_FAILURE() << "cannot read the fixture files of " << base;
    return false;
  }
  f->meta = nlohmann::json::parse(*text);
  f->input_nchw = f->meta["input_shape"].get<ir::Shape>();
  f->input_nchw_data = floats_from_bytes(*in);
  f->torch_out = floats_from_bytes(*out);
  EXPECT_EQ(static_cast<int64_t>(f->input_nchw_data.size()), ir::num_elements(f->input_nchw));
  EXPECT_EQ(static_cast<int64_t>(f->torch_out.size()), ir::num_elements(f->meta["output_shape"].get<ir::Shape>()));
  return true;
}

float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0.f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

int count_ir_ops(const ir::Model& m, ir::OpType op) {
  int n = 0;
  for (const auto& node : m.graph.nodes) n += node.op == op;
  return n;
}

#if PCV_HAVE_TFLITE
// TFLite builtin name -> operator count, read from the file itself.
std::map<std::string, int> tflite_op_counts(const std::string& path) {
  std::map<std::string, int> counts;
  auto bytes = read_file(path);
  if (!bytes) return counts;
  flatbuffers::Verifier v(bytes->data(), bytes->size());
  if (!tflite::fb::VerifyModelBuffer(v)) return counts;
  const auto* m = tflite::fb::GetModel(bytes->data());
  const auto* codes = m->operator_codes();
  for (const auto* sg : *m->subgraphs()) {
    if (!sg->operators()) continue;
    for (const auto* op : *sg->operators()) {
      const auto* c = codes->Get(op->opcode_index());
      const int32_t code = std::max<int32_t>(c->deprecated_builtin_code(), static_cast<int32_t>(c->builtin_code()));
      counts[tflite::builtin_name(code)]++;
    }
  }
  return counts;
}
#endif

// Removes the converted files (up to ~100 MB for resnet18) however the test ends.
struct RemoveOnExit {
  std::vector<std::string> paths;
  ~RemoveOnExit() {
    std::error_code ec;
    for (const auto& p : paths) fs::remove_all(p, ec);
  }
};

struct Case {
  const char* name;
  int batch_norms_left;  // IR batch_norm ops after import: BN not after a conv / dense stays
};

class PyTorchExport : public ::testing::TestWithParam<Case> {};

TEST_P(PyTorchExport, ImportsRunsLikeTorchAndOrtAndConverts) {
  const Case& c = GetParam();
  Fixture f;
  std::string skip;
  if (!load_fixture(c.name, &f, &skip)) {
    if (!skip.empty()) GTEST_SKIP() << skip;
    return;
  }
  // Tolerances scale with the logits (0.3 to 5 here). Float32 with other summation orders over
  // up to ~20 layers of dot products of k <= 3*3*512: measured <= 5e-7 relative (x86 AVX2), so
  // 5e-5 leaves room for other ISAs and still catches any layout or folding error.
  const float scale = std::max(1e-2f, max_abs(f.torch_out));
  const float tol = 5e-5f * scale;

  // Import.
  onnx::ReadInfo info;
  auto m = onnx::load_onnx(f.onnx_path, &info);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_EQ(info.opset, f.meta["opset"].get<int64_t>());
  EXPECT_NE(info.producer.find("pytorch"), std::string::npos) << info.producer;
  EXPECT_EQ(count_ir_ops(*m, ir::OpType::kBatchNorm), c.batch_norms_left) << ir::to_text(*m);
  RemoveOnExit cleanup;
  const ir::Value& in = m->graph.value(m->graph.inputs[0]);
  const ir::Shape& s = f.input_nchw;
  EXPECT_EQ(in.shape, (ir::Shape{s[0], s[2], s[3], s[1]})) << "NCHW input becomes NHWC";
  const std::vector<float> x_nhwc = to_nhwc(f.input_nchw_data, f.input_nchw);

  // Ours vs PyTorch: the optimized kernels, and for the small models the reference kernels too.
  auto ours = run_ours(*m, x_nhwc, /*fast_kernels=*/true);
  ASSERT_TRUE(ours.has_value()) << ours.status().to_string();
  const float d_torch = max_abs_diff(*ours, f.torch_out);
  EXPECT_TRUE(all_close(*ours, f.torch_out, 0.f, tol)) << "vs PyTorch";
  if (ir::num_elements(f.input_nchw) <= 3 * 64 * 64) {
    auto ref = run_ours(*m, x_nhwc, /*fast_kernels=*/false);
    ASSERT_TRUE(ref.has_value()) << ref.status().to_string();
    EXPECT_TRUE(all_close(*ref, f.torch_out, 0.f, tol)) << "reference kernels vs PyTorch";
  }
  // The same model through model_io (what the CLI does).
  auto via_io = formats::load_model(f.onnx_path);
  ASSERT_TRUE(via_io.has_value()) << via_io.status().to_string();
  EXPECT_EQ(ir::to_text(*via_io), ir::to_text(*m));

  std::cout << fmt::format("  {}: opset {}, {} IR nodes; max |diff| vs PyTorch {:.3g} (|out| max {:.3g})", c.name,
                           info.opset, m->graph.nodes.size(), d_torch, max_abs(f.torch_out));

  // Core ML: .mlmodel keeps float32 weights; .mlpackage stores fp16 weights by default.
  const std::string mlmodel = temp_path(std::string(c.name) + ".mlmodel");
  cleanup.paths.push_back(mlmodel);
  Status st = formats::save_model(*m, mlmodel);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto ml_back = formats::load_model(mlmodel);
  ASSERT_TRUE(ml_back.has_value()) << ml_back.status().to_string();
  auto ml_run = run_ours(*ml_back, x_nhwc, true);
  ASSERT_TRUE(ml_run.has_value()) << ml_run.status().to_string();
  EXPECT_TRUE(all_close(*ml_run, *ours, 0.f, 1e-5f * scale)) << ".mlmodel read back";

  const std::string mlpackage = temp_path(std::string(c.name) + ".mlpackage");
  cleanup.paths.push_back(mlpackage);
  st = formats::save_model(*m, mlpackage);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto pkg_back = formats::load_model(mlpackage);
  ASSERT_TRUE(pkg_back.has_value()) << pkg_back.status().to_string();
  auto pkg_run = run_ours(*pkg_back, x_nhwc, true);
  ASSERT_TRUE(pkg_run.has_value()) << pkg_run.status().to_string();
  // fp16 weights: each rounded by up to 2^-11 relative; the errors add up over the layers
  // (measured 5e-4 of the largest logit for resnet18).
  EXPECT_TRUE(all_close(*pkg_run, *ours, 0.f, 1e-2f * scale)) << ".mlpackage (fp16 weights) read back";
  std::cout << fmt::format(", .mlmodel {:.3g}, .mlpackage fp16 {:.3g}", max_abs_diff(*ml_run, *ours),
                           max_abs_diff(*pkg_run, *ours));

#if PCV_HAVE_TFLITE
  // .tflite: no TRANSPOSE, reads back; below, runs in LiteRT like ours.
  const std::string tfl = temp_path(std::string(c.name) + ".tflite");
  cleanup.paths.push_back(tfl);
  st = formats::save_model(*m, tfl);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  const auto ops = tflite_op_counts(tfl);
  ASSERT_FALSE(ops.empty());
  EXPECT_EQ(ops.count("TRANSPOSE"), 0u) << "the NCHW graph must not cost transposes in TFLite";
  EXPECT_GT(ops.count("CONV_2D"), 0u);
  auto tfl_back = formats::load_model(tfl);
  ASSERT_TRUE(tfl_back.has_value()) << tfl_back.status().to_string();
  auto tfl_run = run_ours(*tfl_back, x_nhwc, true);
  ASSERT_TRUE(tfl_run.has_value()) << tfl_run.status().to_string();
  EXPECT_TRUE(all_close(*tfl_run, *ours, 0.f, 1e-5f * scale)) << ".tflite read back";
#endif

  if (auto why = testing::oracle_unavailable_reason(); !why.empty()) {
    std::cout << "\n";
    GTEST_SKIP() << "imported, matched PyTorch and converted; official runtimes: " << why;
  }
  // Ours vs ONNX Runtime on the original file.
  std::vector<float> ort;
  std::string err;
  ASSERT_TRUE(run_ort(f.onnx_path, f.input_nchw_data, &ort, nullptr, &err)) << err;
  EXPECT_TRUE(all_close(*ours, ort, 0.f, tol)) << "vs ONNX Runtime";
  std::cout << fmt::format(", vs ORT {:.3g}", max_abs_diff(*ours, ort));
#if PCV_HAVE_TFLITE
  std::vector<testing::OracleTensor> lite;
  ASSERT_TRUE(testing::run_tflite_oracle(tfl, "litert", {float_bytes(x_nhwc)}, &lite, &err)) << err;
  ASSERT_EQ(lite.size(), 1u);
  ASSERT_EQ(lite[0].dtype, "float32");
  const auto lite_out = floats_from_bytes(lite[0].bytes);
  EXPECT_TRUE(all_close(lite_out, *ours, 0.f, tol)) << "LiteRT vs ours";
  EXPECT_TRUE(all_close(lite_out, f.torch_out, 0.f, tol)) << "LiteRT vs PyTorch";
  std::cout << fmt::format(", LiteRT vs ours {:.3g}", max_abs_diff(lite_out, *ours));
#endif
  std::cout << "\n";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PyTorchExport,
                         ::testing::Values(Case{"mobilenet_v2", 0}, Case{"resnet18", 0}, Case{"small_cnn", 1},
                                           Case{"small_cnn_opset17", 1}),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });
#endif  // PCV_HAVE_FORMATS

}  // namespace
}  // namespace pcv::onnx_test
