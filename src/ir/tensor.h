// Tensor: dtype + shape + storage, owning (64-byte aligned, zeroed) or a view of memory that
// someone else owns.
//
// Copies share storage (a Tensor is a handle, like a shared_ptr): graphs can be copied cheaply.
// A pass that changes weights makes a new tensor (or calls clone()) rather than writing
// through a shared one.
#pragma once

#include <cstring>
#include <memory>
#include <span>

#include "base/aligned.h"
#include "ir/dtype.h"
#include "ir/shape.h"

namespace pcv::ir {

class Tensor {
 public:
  Tensor() = default;
  // Owning and zero-filled. The shape must have passed checked_num_elements.
  Tensor(DType dtype, Shape shape);
  // A view over `data` (not owned; must outlive every copy of this Tensor).
  static Tensor view(DType dtype, Shape shape, void* data);
  // Owning copy of `bytes` (size must equal the tensor's byte size).
  static Tensor from_bytes(DType dtype, Shape shape, std::span<const uint8_t> bytes);
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    Tensor t(DTypeOf<T>::value, std::move(shape));
    std::memcpy(t.raw(), values.data(), t.size_bytes());
    return t;
  }

  bool empty() const { return data_ == nullptr && shape_.empty(); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t num_elements() const { return ir::num_elements(shape_); }
  size_t size_bytes() const { return static_cast<size_t>(num_elements()) * dtype_size(dtype_); }
  bool is_view() const { return owned_ == nullptr && data_ != nullptr; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <class T> T* data() { return static_cast<T*>(data_); }
  template <class T> const T* data() const { return static_cast<const T*>(data_); }
  std::span<const uint8_t> bytes() const { return {static_cast<const uint8_t*>(data_), size_bytes()}; }

  Tensor clone() const;
  // Same bytes, dtype and shape.
  bool equals(const Tensor& other) const;

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<AlignedBuffer> owned_;
  void* data_ = nullptr;
};

}  // namespace pcv::ir
