#include "formats/tflite/tflite_test_util.h"

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

}  // namespace pcv::tflite::testing
