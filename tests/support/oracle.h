// Official-runtime oracles for tests: runs a model in LiteRT.js / tfjs-tflite (TFLite) or
// onnxruntime-node (ONNX) through tools/oracle/run_*.mjs and returns the raw outputs, so a test
// can compare them with pocketcv's own results. Needs `node` on PATH and
// `scripts/setup --with-oracles` (npm ci in tools/oracle); tests skip visibly otherwise:
//
//   if (auto why = pcv::testing::oracle_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
//
// Each call starts one node process (~0.3-0.6 s for a MobileNet) in a fresh temp directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pcv::testing {

// One output tensor as the runtime produced it: raw little-endian bytes of `dtype`
// ("float32", "uint8", "int8", "int32", "int64", "bool", ... : lower-case TFLite/ONNX names).
struct OracleTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Empty when the oracles can run; otherwise why not (node missing, or tools/oracle/node_modules
// not installed) - tests then GTEST_SKIP() with this text.
std::string oracle_unavailable_reason();

// Runs `model_path` (.tflite) once in `runtime` ("litert" or "tfjs"). `inputs` are raw
// little-endian tensors in the model's input dtypes and order. On failure returns false and sets
// *error (model did not load, input size mismatch, runtime printed "ERROR:", crash, timeout),
// including the runtime's stderr.
bool run_tflite_oracle(const std::string& model_path, const std::string& runtime,
                       const std::vector<std::vector<uint8_t>>& inputs,
                       std::vector<OracleTensor>* outputs, std::string* error);

// Same for an .onnx model in onnxruntime-node (CPU). A single dynamic input dimension is
// solved from the input's byte size.
bool run_onnx_oracle(const std::string& model_path, const std::vector<std::vector<uint8_t>>& inputs,
                     std::vector<OracleTensor>* outputs, std::string* error);

}  // namespace pcv::testing
