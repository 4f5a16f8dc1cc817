// Helpers for the TFLite tests: hand-built tiny .tflite files (for reader edge cases) and
// random inputs.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "formats/tflite/tflite_schema_generated.h"
#include "ir/graph.h"

namespace pcv::tflite::testing {

// A tensor of a hand-built model.
struct TinyTensor {
  std::string name;
  fb::TensorType type = fb::TensorType::FLOAT32;
  std::vector<int32_t> shape;
  std::vector<uint8_t> data;  // constant when non-empty
  std::vector<float> scale;
  std::vector<int64_t> zero_point;
  int axis = 0;
};
struct TinyOp {
  fb::BuiltinOperator code;
  std::vector<int32_t> inputs, outputs;
  // Builds the options (may be null): returns type + offset.
  std::function<std::pair<fb::BuiltinOptions, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)> options;
};
std::vector<uint8_t> build_tiny_model(const std::vector<TinyTensor>& tensors, const std::vector<TinyOp>& ops,
                                      std::vector<int32_t> inputs, std::vector<int32_t> outputs);

template <class T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Uniform random f32 tensor in [lo, hi) for the graph's input `index`, or matching bytes of
// its dtype (u8/i8: uniform over the type's range).
ir::Tensor random_input(const ir::Value& input, uint64_t seed, float lo = -1.f, float hi = 1.f);

// A tiny int8 IR model: f32 -> quantize -> conv (per-channel, relu) -> flatten -> fc ->
// softmax (1/256, -128) -> dequantize -> f32.
ir::Model tiny_int8_model();

}  // namespace pcv::tflite::testing
