// Element types of IR tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pcv::ir {

enum class DType : uint8_t { kF32 = 0, kF16, kI8, kU8, kI32, kI64 };
inline constexpr int kNumDTypes = 6;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "f16", "i8", "u8", "i32", "i64"
std::optional<DType> dtype_from_name(std::string_view name);
inline bool is_quantized_dtype(DType t) { return t == DType::kI8 || t == DType::kU8; }

template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kF16; };  // fp16 bits

}  // namespace pcv::ir
