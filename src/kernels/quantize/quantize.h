// Contract for quantize / dequantize / requantize (flat arrays of n elements).
//
// quantize f32 -> int8, TFLite's AffineQuantize: q = clamp(roundf(x / scale) + zero_point,
//   -128, 127), with float division and roundf (half away from zero: 0.5 -> 1, -0.5 -> -1,
//   2.5 -> 3). NaN maps to zero_point clamped (TFLite's result for NaN is undefined).
// dequantize int8 / uint8 -> f32: y = (float)(double(scale) * (q - zero_point)) — the product
//   is exact in double, so this equals the float32 product rounded once.
// dequantize f16 -> f32: IEEE binary16 bits (uint16_t), exact (base/fp16.h).
// requantize int8 -> int8, TFLite's Requantize (QUANTIZE op with int8 input):
//   y = clamp(MBQM(x - input_zp, M) + output_zp, -128, 127), M = double(si) / double(so).
// Thread safety: pure; quantize/requantize may run in place for equal element sizes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/common/requant.h"

namespace pcv::kernels {

void qs8_quantize__ref(size_t n, const float* input, float scale, int32_t zero_point,
                       int8_t* output);
// The same results bit for bit, vectorized (qs8_quantize_hwy.cc).
void qs8_quantize__hwy(size_t n, const float* input, float scale, int32_t zero_point, int8_t* output);
void qs8_dequantize__ref(size_t n, const int8_t* input, float scale, int32_t zero_point,
                         float* output);
void qu8_dequantize__ref(size_t n, const uint8_t* input, float scale, int32_t zero_point,
                         float* output);
void f16_dequantize__ref(size_t n, const uint16_t* input, float* output);

struct QuantRequantParams {
  int32_t input_zero_point = 0;
  int32_t output_zero_point = 0;
  QuantizedMultiplier requant;  // input_scale / output_scale
};
QuantRequantParams make_qs8_requantize_params(float input_scale, int32_t input_zero_point,
                                              float output_scale, int32_t output_zero_point);
void qs8_requantize__ref(size_t n, const QuantRequantParams& q, const int8_t* input,
                         int8_t* output);

}  // namespace pcv::kernels
