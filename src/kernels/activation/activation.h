// Contract for elementwise unary activations (any shape: a flat array of n elements).
//
// float32:
//   relu(x)        = max(x, 0)
//   relu6(x)       = min(max(x, 0), 6)
//   leaky_relu(x)  = x > 0 ? x : alpha * x
//   hard_swish(x)  = x * min(max(x + 3, 0), 6) / 6   (evaluated in that order)
//   sigmoid(x)     = 1 / (1 + expf(-x))
//
// int8 (qs8), with TFLite's arithmetic (tensorflow/lite/kernels/activations.cc, builtin
// kernels), input and output each with their own scale and zero point (QuantUnaryParams):
//   relu, relu6: y = clamp(output_zp + MBQM(x - input_zp, M), lo, hi) with M = float(si / so)
//     (float division, then QuantizeMultiplier) and lo/hi from quant_activation_range
//     (relu: [max(-128, output_zp), 127]; relu6: upper bound output_zp + roundf(6 / so)).
//   leaky_relu: d = x - input_zp; y = output_zp + MBQM(d, d >= 0 ? M_id : M_alpha), clamped to
//     int8, with M_id = float(si / so), M_alpha = float(si * alpha / so).
//   hard_swish: TFLite's int16 fixed-point reference_ops::HardSwish (the builtin kernel, not a
//     table): input on a 2^-7 finer "hires" scale, a relu-ish multiplier in [0, 1] built with
//     a 16-bit SaturatingRoundingDoublingHighMul, a final non-rounding SQDMULH-like multiply and
//     a RoundingDivideByPOT to the output scale. Requires si / (128 * so) < 1.
//   sigmoid: a 256-entry table, exactly TFLite's LUTPopulate<int8_t> (what the builtin
//     kGenericOptimized/kReference kernels use since TF 2.x): for each int8 v,
//     table[v] = clamp((int)(roundf(sigmoid_f32(si * (v - input_zp)) * (1 / so)) + output_zp)).
//     TFLite requires so = 1/256 and output_zp = -128; the table form works for any.
// MBQM = multiply_by_quantized_multiplier (requant.h). Helpers take float scales and derive
// the multipliers on each call; a runtime that calls these per inference should precompute
// (the qs8_lut__ref path: make_qs8_sigmoid_lut once, then qs8_lut__ref).
// Thread safety: pure functions; input and output may alias exactly (in place).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pcv::kernels {

void f32_relu__ref(size_t n, const float* input, float* output);
void f32_relu6__ref(size_t n, const float* input, float* output);
void f32_leaky_relu__ref(size_t n, float alpha, const float* input, float* output);
void f32_hard_swish__ref(size_t n, const float* input, float* output);
void f32_sigmoid__ref(size_t n, const float* input, float* output);

struct QuantUnaryParams {
  float input_scale = 1.0f;
  int32_t input_zero_point = 0;
  float output_scale = 1.0f;
  int32_t output_zero_point = 0;
};

void qs8_relu__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output);
void qs8_relu6__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output);
void qs8_leaky_relu__ref(size_t n, const QuantUnaryParams& q, float alpha, const int8_t* input,
                         int8_t* output);
// LEAKY_RELU as LiteRT runs it (XNNPACK's qs8/qu8 vlrelu, 8-bit fractional multipliers):
//   mp = lrintf(256 * float(si / so)), mn = lrintf(256 * (float(si / so) * alpha));
//   d = x - input_zp; y = clamp(((output_zp << 8) + 128 + d * (d >= 0 ? mp : mn)) >> 8).
void qs8_leaky_relu_xnn__ref(size_t n, const QuantUnaryParams& q, float alpha,
                             const int8_t* input, int8_t* output);
void qs8_hard_swish__ref(size_t n, const QuantUnaryParams& q, const int8_t* input,
                         int8_t* output);
void qs8_sigmoid__ref(size_t n, const QuantUnaryParams& q, const int8_t* input, int8_t* output);

// The int8 -> int8 table of a float function, TFLite's LUTPopulate<int8_t>: indexed by
// (uint8_t)x, i.e. lut[x & 0xFF].
void make_qs8_lut(const QuantUnaryParams& q, float (*fn)(float), int8_t lut[256]);
void make_qs8_sigmoid_lut(const QuantUnaryParams& q, int8_t lut[256]);
// y[i] = lut[(uint8_t)x[i]].
void qs8_lut__ref(size_t n, const int8_t lut[256], const int8_t* input, int8_t* output);

}  // namespace pcv::kernels
