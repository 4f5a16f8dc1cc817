// Fixed-point requantization with TFLite's arithmetic, bit for bit.
//
// A real multiplier M (e.g. input_scale * weight_scale / output_scale) is stored as a Q31
// mantissa q in [2^30, 2^31) and a shift s with M ~= q * 2^(s - 31). Applying it to an int32
// accumulator x follows TFLite's MultiplyByQuantizedMultiplier (the "double rounding"
// reference path, which LiteRT's reference and optimized int8 kernels match):
//   left  = max(s, 0), right = max(-s, 0)
//   y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, q), right)
// SaturatingRoundingDoublingHighMul(a, b) = (a*b + 2^30) >> 31 rounded half away from zero
// (nudge -(2^30 - 1) for negative products), saturating INT32_MIN * INT32_MIN.
// RoundingDivideByPOT rounds half away from zero.
#pragma once

#include <cstdint>

namespace pcv::kernels {

struct QuantizedMultiplier {
  int32_t multiplier = 0;  // Q31 mantissa in [2^30, 2^31), or 0 for M == 0
  int shift = 0;           // power of two: positive = left shift
};

// Splits a real multiplier into a Q31 mantissa and shift, like TFLite's QuantizeMultiplier
// (frexp, then round(mantissa * 2^31), renormalizing when it rounds up to 2^31). Multipliers
// below 2^-31 become 0.
QuantizedMultiplier quantize_multiplier(double real_multiplier);

inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  const bool overflow = a == b && a == INT32_MIN;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  const int32_t high = static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
  return overflow ? INT32_MAX : high;
}

inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

inline int32_t multiply_by_quantized_multiplier(int32_t x, QuantizedMultiplier m) {
  const int left = m.shift > 0 ? m.shift : 0;
  const int right = m.shift > 0 ? 0 : -m.shift;
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(static_cast<int32_t>(static_cast<uint32_t>(x) << left),
                                            m.multiplier),
      right);
}

// Clamp bounds for a fused activation on a quantized output (TFLite's
// CalculateActivationRangeQuantized): relu -> [q(0), qmax], relu6 -> [q(0), q(6)].
struct QuantActivationRange {
  int32_t min;
  int32_t max;
};

}  // namespace pcv::kernels
