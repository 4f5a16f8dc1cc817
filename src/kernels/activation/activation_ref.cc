#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/activation/activation.h"
#include "kernels/common/requant.h"

namespace pcv::kernels {

void f32_relu__ref(size_t n, const float* input, float* output) {
  for (size_t i = 0; i < n; ++i) output[i] = std::max(input[i], 0.0f);
}

void f32_relu6__ref(size_t n, const float* input, float* output) {
  for (size_t i = 0; i < n; ++i) output[i] = std::min(std::max(input[i], 0.0f), 6.0f);
}

void f32_leaky_relu__ref(size_t n, float alpha, const float* input, float* output) {
  for (size_t i = 0; i < n; ++i) output[i] = input[i] > 0.0f ? input[i] : input[i] * alpha;
}

void f32_hard_swish__ref(size_t n, const float* input, float* output) {
  for (size_t i = 0; i < n; ++i) {
    const float x = input[i];
    output[i] = x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
  }
}

namespace {

float sigmoid_f32(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void qs8_relu_x(size_t n, const QuantUnaryParams& q, FusedActivation act, const int8_t* input,
                int8_t* output) {
  const QuantizedMultiplier m = quantize_multiplier(q.input_scale / q.output_scale);
  const QuantActivationRange r = quant_activation_range(act, q.output_scale, q.output_zero_point);
  for (size_t i = 0; i < n; ++i) {
    const int32_t v = q.output_zero_point +
                      multiply_by_quantized_multiplier(input[i] - q.input_zero_point, m);
    output[i] = clamp_to_int8(v, r.min, r.max);
  }
}

// 16-bit gemmlowp primitives used by TFLite's quantized HardSwish.
int16_t srdhm16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<int16_t>((ab + nudge) / (1 << 15));
}

// Doubling high multiply that truncates toward zero (like ARM SQDMULH).
int16_t sdhm16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  return static_cast<int16_t>(ab / (1 << 15));
}

int16_t rounding_divide_by_pot16(int16_t x, int exponent) {
  const int32_t mask = (1 << exponent) - 1;
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<int16_t>((x >> exponent) + (remainder > threshold ? 1 : 0));
}

int16_t saturating_left_shift16(int16_t x, int amount) {
  const int64_t r = static_cast<int64_t>(x) * (int64_t{1} << amount);
  return static_cast<int16_t>(std::min<int64_t>(std::max<int64_t>(r, INT16_MIN), INT16_MAX));
}

// TFLite's DownScaleInt32ToInt16Multiplier: Q31 -> Q15 with rounding, saturating.
int16_t q31_to_q15(int32_t m) {
  constexpr int32_t kRound = 1 << 15;
  if (m >= std::numeric_limits<int32_t>::max() - kRound) return INT16_MAX;
  return static_cast<int16_t>((m + kRound) >> 16);
}

}  // namespace

void f32_sigmoid__ref(size_t n, const float* input, float* output) {
  for (size_t i = 0; i < n; ++i) output[i] = sigmoid_f32(input[i]);
}

void qs8_relu__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output) {
  qs8_relu_x(n, q, FusedActivation::kRelu, input, output);
}

void qs8_relu6__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output) {
  qs8_relu_x(n, q, FusedActivation::kRelu6, input, output);
}

void qs8_leaky_relu_xnn__ref(size_t n, const QuantUnaryParams& q, float alpha,
                             const int8_t* input, int8_t* output) {
  const float positive_scale = q.input_scale / q.output_scale;
  const float negative_scale = positive_scale * alpha;
  const auto mp = static_cast<int32_t>(std::nearbyint(256.0f * positive_scale));
  const auto mn = static_cast<int32_t>(std::nearbyint(256.0f * negative_scale));
  const int32_t bias = q.output_zero_point * 256 + 0x80;
  for (size_t i = 0; i < n; ++i) {
    const int32_t d = input[i] - q.input_zero_point;
    const int32_t v = (bias + d * (d >= 0 ? mp : mn)) >> 8;  // arithmetic shift: floor
    output[i] = clamp_to_int8(v, -128, 127);
  }
}

void qs8_leaky_relu__ref(size_t n, const QuantUnaryParams& q, float alpha, const int8_t* input,
                         int8_t* output) {
  const QuantizedMultiplier m_id = quantize_multiplier(q.input_scale / q.output_scale);
  const QuantizedMultiplier m_alpha =
      quantize_multiplier(q.input_scale * alpha / q.output_scale);
  for (size_t i = 0; i < n; ++i) {
    const int32_t d = input[i] - q.input_zero_point;
    const int32_t v =
        q.output_zero_point + multiply_by_quantized_multiplier(d, d >= 0 ? m_id : m_alpha);
    output[i] = clamp_to_int8(v, -128, 127);
  }
}

void qs8_hard_swish__ref(size_t n, const QuantUnaryParams& q, const int8_t* input,
                         int8_t* output) {
  const float hires_input_scale = (1.0f / 128.0f) * q.input_scale;
  const float reluish_scale = 3.0f / 32768.0f;
  const QuantizedMultiplier out_m = quantize_multiplier(hires_input_scale / q.output_scale);
  const QuantizedMultiplier relu_m = quantize_multiplier(hires_input_scale / reluish_scale);
  const int16_t out_m16 = q31_to_q15(out_m.multiplier);
  const int16_t relu_m16 = q31_to_q15(relu_m.multiplier);
  for (size_t i = 0; i < n; ++i) {
    const int16_t x = static_cast<int16_t>(input[i] - q.input_zero_point);
    const int16_t x_hires = static_cast<int16_t>(x * (1 << 7));
    const int16_t x_preshift_out = srdhm16(x_hires, out_m16);
    int16_t reluish = x_hires;
    if (relu_m.shift > 0) reluish = saturating_left_shift16(reluish, relu_m.shift - 1);
    reluish = srdhm16(reluish, relu_m16);
    if (relu_m.shift > 0) reluish = saturating_left_shift16(reluish, 1);
    if (relu_m.shift < 0) reluish = rounding_divide_by_pot16(reluish, -relu_m.shift);
    reluish = static_cast<int16_t>((reluish + (1 << 15)) >> 1);  // [-1, 1] -> [0, 1]
    const int16_t preshift_out = sdhm16(reluish, x_preshift_out);
    int16_t y = rounding_divide_by_pot16(preshift_out, -out_m.shift);
    y = static_cast<int16_t>(y + q.output_zero_point);
    output[i] = clamp_to_int8(y, -128, 127);
  }
}

void make_qs8_lut(const QuantUnaryParams& q, float (*fn)(float), int8_t lut[256]) {
  const float inverse_scale = 1.0f / q.output_scale;
  for (int32_t v = -128; v <= 127; ++v) {
    const float x = q.input_scale * static_cast<float>(v - q.input_zero_point);
    const float r = std::round(fn(x) * inverse_scale) + static_cast<float>(q.output_zero_point);
    const float c = std::min(std::max(r, -128.0f), 127.0f);  // clamp before the int cast
    lut[static_cast<uint8_t>(static_cast<int8_t>(v))] = static_cast<int8_t>(c);
  }
}

void make_qs8_sigmoid_lut(const QuantUnaryParams& q, int8_t lut[256]) {
  make_qs8_lut(q, sigmoid_f32, lut);
}

void qs8_lut__ref(size_t n, const int8_t lut[256], const int8_t* input, int8_t* output) {
  for (size_t i = 0; i < n; ++i) output[i] = lut[static_cast<uint8_t>(input[i])];
}

void qs8_sigmoid__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output) {
  int8_t lut[256];
  make_qs8_sigmoid_lut(q, lut);
  qs8_lut__ref(n, lut, input, output);
}

}  // namespace pcv::kernels
