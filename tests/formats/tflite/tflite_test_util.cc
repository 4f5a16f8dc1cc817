#include "formats/tflite/tflite_test_util.h"

#include <gtest/gtest.h>

namespace pcv::tflite::testing {

std::vector<uint8_t> build_tiny_model(const std::vector<TinyTensor>& tensors, const std::vector<TinyOp>& ops,
                                      std::vector<int32_t> inputs, std::vector<int32_t> outputs) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers{fb::CreateBuffer(fbb)};
  std::vector<flatbuffers::Offset<fb::Tensor>> ts;
  for (const TinyTensor& t : tensors) {
    uint32_t buffer = 0;
    if (!t.data.empty()) {
      fbb.ForceVectorAlignment(t.data.size(), 1, 16);
      buffers.push_back(fb::CreateBuffer(fbb, fbb.CreateVector(t.data)));
      buffer = static_cast<uint32_t>(buffers.size() - 1);
    }
    flatbuffers::Offset<fb::QuantizationParameters> q = 0;
    if (!t.scale.empty()) {
      q = fb::CreateQuantizationParametersDirect(fbb, nullptr, nullptr, &t.scale, &t.zero_point,
                                                 fb::QuantizationDetails::NONE, 0, t.axis);
    }
    ts.push_back(fb::CreateTensorDirect(fbb, &t.shape, t.type, buffer, t.name.c_str(), q));
  }
  std::vector<fb::BuiltinOperator> codes;
  std::vector<flatbuffers::Offset<fb::Operator>> operators;
  for (const TinyOp& op : ops) {
    uint32_t idx = 0;
    while (idx < codes.size() && codes[idx] != op.code) ++idx;
    if (idx == codes.size()) codes.push_back(op.code);
    std::pair<fb::BuiltinOptions, flatbuffers::Offset<void>> o{fb::BuiltinOptions::NONE, 0};
    if (op.options) o = op.options(fbb);
    operators.push_back(fb::CreateOperatorDirect(fbb, idx, &op.inputs, &op.outputs, o.first, o.second));
  }
  std::vector<flatbuffers::Offset<fb::OperatorCode>> opcodes;
  for (fb::BuiltinOperator c : codes) {
    opcodes.push_back(fb::CreateOperatorCode(fbb, static_cast<int8_t>(std::min(static_cast<int>(c), 127)), 0, 1, c));
  }
  std::vector<flatbuffers::Offset<fb::SubGraph>> sgs{
      fb::CreateSubGraphDirect(fbb, &ts, &inputs, &outputs, &operators, "main")};
  fbb.Finish(fb::CreateModelDirect(fbb, 3, &opcodes, &sgs, "tiny", &buffers), fb::ModelIdentifier());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

ir::Tensor random_input(const ir::Value& input, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  ir::Tensor t(input.dtype, input.shape);
  const int64_t n = t.num_elements();
  if (input.dtype == ir::DType::kF32) {
    std::uniform_real_distribution<float> d(lo, hi);
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = d(rng);
  } else if (input.dtype == ir::DType::kU8) {
    std::uniform_int_distribution<int> d(0, 255);
    for (int64_t i = 0; i < n; ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(d(rng));
  } else if (input.dtype == ir::DType::kI8) {
    std::uniform_int_distribution<int> d(-128, 127);
    for (int64_t i = 0; i < n; ++i) t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  }
  return t;
}

// A tiny int8 IR model: quantize -> conv (per-channel) -> fc -> softmax -> dequantize.
ir::Model tiny_int8_model() {
  using ir::DType;
  using ir::OpType;
  ir::Model m;
  ir::Graph& g = m.graph;
  auto x = g.add_input("input", DType::kF32, {1, 4, 4, 2});
  auto q = g.add_node(OpType::kQuantize, "quant", {x}, ir::NoAttrs{}, DType::kI8);
  g.value(q).quant = ir::QuantParams::per_tensor(0.02f, 3);
  std::vector<int8_t> w(3 * 3 * 3 * 2);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
  auto wv = g.add_constant("conv/w", ir::Tensor::from_vector<int8_t>({3, 3, 3, 2}, w), {{0.01f, 0.02f, 0.03f}, {0, 0, 0}, 0});
  auto bv = g.add_constant("conv/b", ir::Tensor::from_vector<int32_t>({3}, {10, -20, 30}));
  ir::Conv2dAttrs ca;
  ca.activation = ir::Activation::kRelu;
  auto c = g.add_node(OpType::kConv2d, "conv", {q, wv, bv}, ca, DType::kI8);
  g.value(c).quant = ir::QuantParams::per_tensor(0.05f, -128);
  auto f = g.add_node(OpType::kFlatten, "flatten", {c}, ir::NoAttrs{}, DType::kI8);
  g.value(f).quant = g.value(c).quant;
  std::vector<int8_t> fw(4 * 48);
  for (size_t i = 0; i < fw.size(); ++i) fw[i] = static_cast<int8_t>(static_cast<int>(i * 53 % 255) - 127);
  auto fwv = g.add_constant("fc/w", ir::Tensor::from_vector<int8_t>({4, 48}, fw), {{0.004f, 0.005f, 0.006f, 0.007f}, {0, 0, 0, 0}, 0});
  auto fc = g.add_node(OpType::kFullyConnected, "fc", {f, fwv}, ir::FullyConnectedAttrs{}, DType::kI8);
  g.value(fc).quant = ir::QuantParams::per_tensor(0.1f, 5);
  auto sm = g.add_node(OpType::kSoftmax, "softmax", {fc}, ir::SoftmaxAttrs{}, DType::kI8);
  g.value(sm).quant = ir::QuantParams::per_tensor(1.f / 256.f, -128);
  auto out = g.add_node(OpType::kDequantize, "probabilities", {sm}, ir::NoAttrs{}, DType::kF32);
  g.mark_output(out);
  EXPECT_TRUE(ir::infer_shapes(g).is_ok());
  m.input_spec.height = m.input_spec.width = 4;
  m.input_spec.channels = 2;
  return m;
}

}  // namespace pcv::tflite::testing
