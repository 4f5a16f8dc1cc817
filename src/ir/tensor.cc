#include "ir/tensor.h"

#include <fmt/core.h>

#include <sstream>
#include <string>

namespace pcv::ir {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kI8: return 1;
    case DType::kU8: return 1;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    auto t = static_cast<DType>(i);
    if (name == dtype_name(t)) return t;
  }
  return std::nullopt;
}

std::optional<int64_t> checked_num_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) return int64_t{0};
    if (n > kMaxElements / d) return std::nullopt;
    n *= d;
  }
  return n;
}

int64_t num_elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  const size_t n = size_bytes();
  owned_ = std::make_shared<AlignedBuffer>();
  if (n > 0 && !owned_->resize(n)) throw std::bad_alloc();
  data_ = owned_->data();
}

Tensor Tensor::view(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::from_bytes(DType dtype, Shape shape, std::span<const uint8_t> bytes) {
  Tensor t(dtype, std::move(shape));
  if (bytes.size() == t.size_bytes() && !bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (size_bytes()) std::memcpy(t.raw(), data_, size_bytes());
  return t;
}

bool Tensor::equals(const Tensor& o) const {
  if (dtype_ != o.dtype_ || shape_ != o.shape_) return false;
  if (size_bytes() == 0) return true;
  return std::memcmp(data_, o.data_, size_bytes()) == 0;
}

}  // namespace pcv::ir
