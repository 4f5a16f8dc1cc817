// Fixed-point requantization with TFLite's arithmetic, bit for bit.
//
// A real multiplier M (e.g. input_scale * weight_scale / output_scale) is stored as a Q31
// mantissa q in [2^30, 2^31) and a shift s with M ~= q * 2^(s - 31). Applying it to an int32
// accumulator x follows TFLite's MultiplyByQuantizedMultiplier (the "double rounding"
// reference path, which LiteRT's reference and optimized int8 kernels match):
//   left  = max(s, 0), right = max(-s, 0)
//   y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, q), right)
// SaturatingRoundingDoublingHighMul(a, b) = round(a*b / 2^31) with gemmlowp's nudge
// (+2^30 for non-negative products, 1 - 2^30 for negative ones, then truncation toward zero):
// exact halves round toward +inf (50.5 -> 51, -50.5 -> -50); saturates INT32_MIN * INT32_MIN.
// RoundingDivideByPOT rounds half away from zero (1.5 -> 2, -1.5 -> -2).
// NOTE: the two roundings compound: 1535 * 2^-10 (= 1.4990) gives 2, as in TFLite.
#pragma once

#include <cmath>
#include <cstdint>

namespace pcv::kernels {

// int32 accumulator arithmetic modulo 2^32. The SIMD kernels' adds and dot products wrap;
// the scalar paths and the precomputed bias terms use these so that a model whose sums leave
// int32 (a corrupt or hostile bias near INT32_MAX, a huge K) has defined results, and the same
// ones in every kernel.
constexpr int32_t wrap_add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
constexpr int32_t wrap_sub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}
constexpr int32_t wrap_mul(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}

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

// Fused activations that kernels apply as a clamp (TFLite's fused_activation_function).
enum class FusedActivation { kNone, kRelu, kReluN1To1, kRelu6 };

// Clamp bounds for a fused activation on a quantized int8 output (TFLite's
// CalculateActivationRangeQuantized): q(f) = zero_point + (int32)roundf(f / scale) (float
// division, half away from zero); none -> [-128, 127], relu -> [max(-128, q(0)), 127],
// relu_n1_to_1 -> [max(-128, q(-1)), min(127, q(1))], relu6 -> [max(-128, q(0)), min(127, q(6))].
struct QuantActivationRange {
  int32_t min;
  int32_t max;
};
QuantActivationRange quant_activation_range(FusedActivation act, float output_scale,
                                            int32_t output_zero_point);

// Clamp bounds for a fused activation on a float output: none -> [-inf, +inf],
// relu -> [0, +inf], relu_n1_to_1 -> [-1, 1], relu6 -> [0, 6].
struct FloatActivationRange {
  float min;
  float max;
};
FloatActivationRange float_activation_range(FusedActivation act);

// Per-output-channel requantization multipliers for conv / fully connected, as TFLite's
// PopulateConvolutionQuantizationParams computes them: in double,
// M[c] = double(input_scale) * double(filter_scales[c]) / double(output_scale).
// filter_scales has num_channels entries (pass the same scale num_channels times for
// per-tensor weights); out receives num_channels multipliers.
void compute_channel_requant(float input_scale, const float* filter_scales, int num_channels,
                             float output_scale, QuantizedMultiplier* out);

// ---- XNNPACK's "fp32" requantization: what LiteRT computes by default ----
//
// LiteRT (and tfjs-tflite) run quantized conv / depthwise / fully_connected through the
// XNNPACK delegate, whose requantization is not TFLite's fixed-point one:
//   scale = input_scale * filter_scale / output_scale   in float (two float roundings)
//   y     = lrintf(clamp(float(acc) * scale, act_min - zp, act_max - zp)) + zp
// i.e. one float multiply, round half to even; float(acc) is exact up to |acc| <= 2^24 and
// rounds to nearest-even beyond. It differs from multiply_by_quantized_multiplier by one step
// on outputs whose exact value lies near a half (how often depends on the layer: ~0.1-15% of
// MobileNet outputs). Fused activations clamp to xnn_qs8_quantize(bound):
//   lrintf(clamp(bound / output_scale + float(zp), -128, 127))   (float division, half to even).
// NOTE: the quantized graph keeps both arithmetics; RequantMode picks one at prepare time.
enum class RequantMode {
  kFp32,        // XNNPACK / LiteRT default CPU path (the runtime's default)
  kFixedPoint,  // TFLite reference kernels (MultiplyByQuantizedMultiplier)
};

// Per-channel float scales as XNNPACK computes them (float arithmetic, left to right).
void compute_channel_requant_fp32(float input_scale, const float* filter_scales,
                                  int num_channels, float output_scale, float* out);

// Fused-activation clamp bounds as XNNPACK's subgraph quantizes them (see above).
QuantActivationRange quant_activation_range_fp32(FusedActivation act, float output_scale,
                                                 int32_t output_zero_point);

// lrintf(clamp(float(acc) * scale, lo - zp, hi - zp)) + zp, with lo/hi within int8. Rounds
// half to even under the default floating-point environment.
inline int32_t requantize_fp32(int32_t acc, float scale, int32_t zero_point, int32_t lo,
                               int32_t hi) {
  float v = static_cast<float>(acc) * scale;
  const float fmin = static_cast<float>(lo - zero_point);
  const float fmax = static_cast<float>(hi - zero_point);
  v = v < fmin ? fmin : (v > fmax ? fmax : v);
  return static_cast<int32_t>(std::nearbyint(v)) + zero_point;
}

// Saturating cast of an int32 to int8 after clamping to [lo, hi] (lo, hi within int8).
inline int8_t clamp_to_int8(int32_t v, int32_t lo, int32_t hi) {
  return static_cast<int8_t>(v < lo ? lo : (v > hi ? hi : v));
}

}  // namespace pcv::kernels
