#include "formats/onnx/common.h"

#include <fmt/core.h>

#include <cstring>

#include "base/fp16.h"

namespace pcv::onnx::detail {

bool is_float_type(int32_t t) {
  return t == pb::TensorProto::FLOAT || t == pb::TensorProto::FLOAT16 || t == pb::TensorProto::DOUBLE;
}

bool Const::is_float() const { return is_float_type(type); }

std::string onnx_type_name(int32_t t) {
  if (pb::TensorProto_DataType_IsValid(t)) {
    return pb::TensorProto_DataType_Name(static_cast<pb::TensorProto_DataType>(t));
  }
  return fmt::format("type {}", t);
}

namespace {

// Bytes per element in raw_data; 0 for types we do not read.
size_t raw_element_bytes(int32_t t) {
  switch (t) {
    case pb::TensorProto::FLOAT: case pb::TensorProto::INT32: case pb::TensorProto::UINT32: return 4;
    case pb::TensorProto::DOUBLE: case pb::TensorProto::INT64: case pb::TensorProto::UINT64: return 8;
    case pb::TensorProto::FLOAT16: case pb::TensorProto::INT16: case pb::TensorProto::UINT16: return 2;
    case pb::TensorProto::INT8: case pb::TensorProto::UINT8: case pb::TensorProto::BOOL: return 1;
    default: return 0;
  }
}

template <class T>
T load_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // little-endian host (x86-64, aarch64)
  return v;
}

}  // namespace

Expected<Const> const_from_proto(const pb::TensorProto& t, const std::string& what) {
  Const c;
  c.type = t.data_type();
  if (t.data_location() == pb::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    return unsupported(fmt::format(
        "tensor '{}' keeps its data in an external file; pocketcv reads only self-contained .onnx "
        "files (re-save with onnx.save_model(m, path, save_as_external_data=False))", what));
  }
  if (t.has_segment()) return unsupported(fmt::format("tensor '{}' is segmented", what));
  const size_t esize = raw_element_bytes(c.type);
  if (esize == 0) {
    return unsupported(fmt::format("tensor '{}' has element type {}", what, onnx_type_name(c.type)));
  }
  for (int64_t d : t.dims()) {
    if (d < 0) return invalid_model(fmt::format("tensor '{}' has a negative dimension", what));
    c.dims.push_back(d);
  }
  const auto count = ir::checked_num_elements(c.dims);
  if (!count) return invalid_model(fmt::format("tensor '{}': shape {} is too large", what, ir::shape_to_string(c.dims)));
  const size_t n = static_cast<size_t>(*count);
  if (c.is_float()) c.f.resize(n); else c.i.resize(n);

  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    if (raw.size() / esize != n || raw.size() % esize != 0) {
      return invalid_model(fmt::format("tensor '{}': raw_data has {} bytes, shape {} of {} needs {}", what,
                                       raw.size(), ir::shape_to_string(c.dims), onnx_type_name(c.type), n * esize));
    }
    const char* p = raw.data();
    for (size_t k = 0; k < n; ++k, p += esize) {
      switch (c.type) {
        case pb::TensorProto::FLOAT: c.f[k] = load_le<float>(p); break;
        case pb::TensorProto::DOUBLE: c.f[k] = static_cast<float>(load_le<double>(p)); break;
        case pb::TensorProto::FLOAT16: c.f[k] = f32_from_fp16(load_le<uint16_t>(p)); break;
        case pb::TensorProto::INT8: c.i[k] = load_le<int8_t>(p); break;
        case pb::TensorProto::UINT8: case pb::TensorProto::BOOL: c.i[k] = load_le<uint8_t>(p); break;
        case pb::TensorProto::INT16: c.i[k] = load_le<int16_t>(p); break;
        case pb::TensorProto::UINT16: c.i[k] = load_le<uint16_t>(p); break;
        case pb::TensorProto::INT32: c.i[k] = load_le<int32_t>(p); break;
        case pb::TensorProto::UINT32: c.i[k] = load_le<uint32_t>(p); break;
        case pb::TensorProto::INT64: c.i[k] = load_le<int64_t>(p); break;
        case pb::TensorProto::UINT64: c.i[k] = static_cast<int64_t>(load_le<uint64_t>(p)); break;
        default: break;
      }
    }
    return c;
  }
  // Typed fields: which one holds the data depends on the element type.
  auto check_count = [&](int have) -> Status {
    if (static_cast<size_t>(have) != n) {
      return invalid_model(fmt::format("tensor '{}': {} values stored, shape {} needs {}", what, have,
                                       ir::shape_to_string(c.dims), n));
    }
    return Status::ok();
  };
  switch (c.type) {
    case pb::TensorProto::FLOAT:
      PCV_RETURN_IF_ERROR(check_count(t.float_data_size()));
      for (size_t k = 0; k < n; ++k) c.f[k] = t.float_data(static_cast<int>(k));
      break;
    case pb::TensorProto::DOUBLE:
      PCV_RETURN_IF_ERROR(check_count(t.double_data_size()));
      for (size_t k = 0; k < n; ++k) c.f[k] = static_cast<float>(t.double_data(static_cast<int>(k)));
      break;
    case pb::TensorProto::FLOAT16:
      PCV_RETURN_IF_ERROR(check_count(t.int32_data_size()));
      for (size_t k = 0; k < n; ++k) c.f[k] = f32_from_fp16(static_cast<uint16_t>(t.int32_data(static_cast<int>(k))));
      break;
    case pb::TensorProto::INT64:
      PCV_RETURN_IF_ERROR(check_count(t.int64_data_size()));
      for (size_t k = 0; k < n; ++k) c.i[k] = t.int64_data(static_cast<int>(k));
      break;
    case pb::TensorProto::UINT32: case pb::TensorProto::UINT64:
      PCV_RETURN_IF_ERROR(check_count(t.uint64_data_size()));
      for (size_t k = 0; k < n; ++k) c.i[k] = static_cast<int64_t>(t.uint64_data(static_cast<int>(k)));
      break;
    default:  // INT8, UINT8, INT16, UINT16, INT32, BOOL live in int32_data
      PCV_RETURN_IF_ERROR(check_count(t.int32_data_size()));
      for (size_t k = 0; k < n; ++k) c.i[k] = t.int32_data(static_cast<int>(k));
      break;
  }
  return c;
}

int32_t onnx_type_of(ir::DType t) {
  switch (t) {
    case ir::DType::kF32: return pb::TensorProto::FLOAT;
    case ir::DType::kF16: return pb::TensorProto::FLOAT16;
    case ir::DType::kI8: return pb::TensorProto::INT8;
    case ir::DType::kU8: return pb::TensorProto::UINT8;
    case ir::DType::kI32: return pb::TensorProto::INT32;
    case ir::DType::kI64: return pb::TensorProto::INT64;
  }
  return pb::TensorProto::UNDEFINED;
}

void tensor_to_proto(const ir::Tensor& t, const ir::Shape& dims, const std::string& name,
                     pb::TensorProto* out) {
  out->set_name(name);
  out->set_data_type(onnx_type_of(t.dtype()));
  for (int64_t d : dims) out->add_dims(d);
  auto bytes = t.bytes();
  out->set_raw_data(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace pcv::onnx::detail
