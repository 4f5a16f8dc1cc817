#include "formats/tflite/op_map.h"

#include <fmt/core.h>

#include "formats/tflite/tflite_schema_generated.h"

namespace pcv::tflite {

std::string builtin_name(int32_t code) {
  const auto op = static_cast<fb::BuiltinOperator>(code);
  if (code >= static_cast<int32_t>(fb::BuiltinOperator::MIN) &&
      code <= static_cast<int32_t>(fb::BuiltinOperator::MAX)) {
    const char* name = fb::EnumNameBuiltinOperator(op);
    if (name != nullptr && *name != '\0') return name;
  }
  return fmt::format("BUILTIN_{}", code);
}

int tensor_type_of(ir::DType t) {
  switch (t) {
    case ir::DType::kF32: return static_cast<int>(fb::TensorType::FLOAT32);
    case ir::DType::kF16: return static_cast<int>(fb::TensorType::FLOAT16);
    case ir::DType::kI8: return static_cast<int>(fb::TensorType::INT8);
    case ir::DType::kU8: return static_cast<int>(fb::TensorType::UINT8);
    case ir::DType::kI32: return static_cast<int>(fb::TensorType::INT32);
    case ir::DType::kI64: return static_cast<int>(fb::TensorType::INT64);
  }
  return -1;
}

bool dtype_from_tensor_type(int type, ir::DType* out) {
  switch (static_cast<fb::TensorType>(type)) {
    case fb::TensorType::FLOAT32: *out = ir::DType::kF32; return true;
    case fb::TensorType::FLOAT16: *out = ir::DType::kF16; return true;
    case fb::TensorType::INT8: *out = ir::DType::kI8; return true;
    case fb::TensorType::UINT8: *out = ir::DType::kU8; return true;
    case fb::TensorType::INT32: *out = ir::DType::kI32; return true;
    case fb::TensorType::INT64: *out = ir::DType::kI64; return true;
    default: return false;
  }
}

const char* tensor_type_name(int type) {
  if (type < static_cast<int>(fb::TensorType::MIN) || type > static_cast<int>(fb::TensorType::MAX)) {
    return "UNKNOWN";
  }
  return fb::EnumNameTensorType(static_cast<fb::TensorType>(type));
}

}  // namespace pcv::tflite
