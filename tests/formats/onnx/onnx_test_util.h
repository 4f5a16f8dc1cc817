// Helpers for the ONNX tests: a small builder for hand-written ONNX graphs (onnx protobuf
// classes), layout conversions, and running a model in ONNX Runtime and in pocketcv.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "formats/onnx/common.h"
#include "ir/graph.h"

namespace pcv::onnx_test {

namespace pb = ::onnx;

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset = 13, const std::string& producer = "pocketcv-test");

  void input(const std::string& name, const ir::Shape& dims);
  void output(const std::string& name);  // float, shape left to the runtime
  void init(const std::string& name, const ir::Shape& dims, const std::vector<float>& v);
  void init_i64(const std::string& name, const ir::Shape& dims, const std::vector<int64_t>& v);
  void init_i8(const std::string& name, const ir::Shape& dims, const std::vector<int8_t>& v);
  void init_u8(const std::string& name, const ir::Shape& dims, const std::vector<uint8_t>& v);
  void init_i32(const std::string& name, const ir::Shape& dims, const std::vector<int32_t>& v);
  // Random float initializer in [lo, hi).
  void init_random(const std::string& name, const ir::Shape& dims, uint32_t seed, float lo = -0.5f, float hi = 0.5f);
  pb::NodeProto* node(const std::string& op, const std::vector<std::string>& ins,
                      const std::vector<std::string>& outs, const std::string& name = "");

  static void attr(pb::NodeProto* n, const std::string& name, int64_t v);
  static void attr(pb::NodeProto* n, const std::string& name, float v);
  static void attr(pb::NodeProto* n, const std::string& name, const std::vector<int64_t>& v);
  static void attr(pb::NodeProto* n, const std::string& name, const std::string& v);

  std::vector<uint8_t> bytes() const;
  pb::ModelProto& model() { return model_; }

 private:
  pb::ModelProto model_;
  pb::GraphProto* g_;
};

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);
std::vector<uint8_t> float_bytes(const std::vector<float>& v);
std::vector<float> floats_from_bytes(const std::vector<uint8_t>& b);

// Runs `path` in ONNX Runtime with one float input; false + *error on failure.
bool run_ort(const std::string& path, const std::vector<float>& input, std::vector<float>* out,
             std::vector<int64_t>* out_shape, std::string* error);
// Runs an IR model (reference kernels) on one float input of its input shape.
Expected<std::vector<float>> run_ours(const ir::Model& model, const std::vector<float>& input,
                                      bool fast_kernels = false);

// Elementwise |a - b| <= abs + rel * |b|.
::testing::AssertionResult all_close(const std::vector<float>& a, const std::vector<float>& b,
                                     float rel = 1e-5f, float abs = 1e-4f);

// NCHW <-> NHWC on flat float buffers of rank-4 shape.
std::vector<float> to_nhwc(const std::vector<float>& nchw, const ir::Shape& nchw_shape);
std::vector<float> to_nchw(const std::vector<float>& nhwc, const ir::Shape& nhwc_shape);

std::string temp_path(const std::string& file);

}  // namespace pcv::onnx_test
