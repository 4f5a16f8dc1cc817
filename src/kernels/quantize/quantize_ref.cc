#include <algorithm>
#include <cmath>

#include "base/fp16.h"
#include "kernels/quantize/quantize.h"

namespace pcv::kernels {

void qs8_quantize__ref(size_t n, const float* input, float scale, int32_t zero_point,
                       int8_t* output) {
  for (size_t i = 0; i < n; ++i) {
    float r = std::round(input[i] / scale);
    if (std::isnan(r)) r = 0.0f;
    // Clamp in float before the int cast (huge values would overflow int32); exact for the
    // in-range results.
    r = std::min(std::max(r + static_cast<float>(zero_point), -128.0f), 127.0f);
    output[i] = static_cast<int8_t>(r);
  }
}

void qs8_dequantize__ref(size_t n, const int8_t* input, float scale, int32_t zero_point,
                         float* output) {
  for (size_t i = 0; i < n; ++i) {
    output[i] = static_cast<float>(static_cast<double>(scale) * (input[i] - zero_point));
  }
}

void qu8_dequantize__ref(size_t n, const uint8_t* input, float scale, int32_t zero_point,
                         float* output) {
  for (size_t i = 0; i < n; ++i) {
    output[i] = static_cast<float>(static_cast<double>(scale) * (input[i] - zero_point));
  }
}

void f16_dequantize__ref(size_t n, const uint16_t* input, float* output) {
  for (size_t i = 0; i < n; ++i) output[i] = f32_from_fp16(input[i]);
}

QuantRequantParams make_qs8_requantize_params(float input_scale, int32_t input_zero_point,
                                              float output_scale, int32_t output_zero_point) {
  QuantRequantParams q;
  q.input_zero_point = input_zero_point;
  q.output_zero_point = output_zero_point;
  q.requant =
      quantize_multiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale));
  return q;
}

void qs8_requantize__ref(size_t n, const QuantRequantParams& q, const int8_t* input,
                         int8_t* output) {
  for (size_t i = 0; i < n; ++i) {
    const int32_t v = multiply_by_quantized_multiplier(input[i] - q.input_zero_point, q.requant) +
                      q.output_zero_point;
    output[i] = clamp_to_int8(v, -128, 127);
  }
}

}  // namespace pcv::kernels
