// Contract for binary elementwise ops with numpy broadcasting: add, mul.
//
// Shapes: up to rank 5, right-aligned (numpy): a (…, C) against b (C) or (N, 1, 1, C).
// make_broadcast_shape pads both shapes with leading 1s to the output rank; on each axis the
// two dims must be equal or one of them 1. All tensors are dense, row-major.
// output (out_dims) never aliases a broadcast input; it may alias an input of its own shape.
//
// float32: y = clamp(a + b, act_min, act_max), y = clamp(a * b, act_min, act_max).
//
// int8 (qs8), TFLite's exact arithmetic (kernels/add.cc Prepare and
// internal/reference/integer_ops/add.h, mul.h); per-tensor scales and zero points:
//   add: left_shift = 20; twice_max = 2 * max(s1, s2);
//        M1 = s1 / twice_max, M2 = s2 / twice_max, Mo = twice_max / (2^20 * so) (doubles);
//        a' = MBQM((a - zp1) * 2^20, M1); b' = MBQM((b - zp2) * 2^20, M2);
//        y = clamp(MBQM(a' + b', Mo) + zpo, act_min, act_max).
//        (MBQM with shift <= 0 is TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp.)
//   mul: M = float(s1 * s2 / so) (TFLite computes it in float, then widens to double);
//        y = clamp(MBQM((a - zp1) * (b - zp2), M) + zpo, act_min, act_max).
// MBQM = multiply_by_quantized_multiplier (requant.h). Bounds: |a - zp| <= 255, so
// 255 * 2^20 < 2^28 and |(a - zp1)(b - zp2)| <= 65025: no int32 overflow.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/common/requant.h"

namespace pcv::kernels {

constexpr int kMaxBroadcastRank = 5;

struct BroadcastShape {
  int rank = 0;                        // output rank, 1..kMaxBroadcastRank
  int a_dims[kMaxBroadcastRank] = {};  // right-aligned, leading 1s
  int b_dims[kMaxBroadcastRank] = {};
  int out_dims[kMaxBroadcastRank] = {};
};

// Right-aligns a (a_rank dims) and b (b_rank dims); false if a rank exceeds 5, a dim is
// negative, or two dims differ and neither is 1.
bool make_broadcast_shape(const int* a_dims, int a_rank, const int* b_dims, int b_rank,
                          BroadcastShape* out);

void f32_add__ref(const BroadcastShape& s, const float* a, const float* b, float act_min,
                  float act_max, float* output);
void f32_mul__ref(const BroadcastShape& s, const float* a, const float* b, float act_min,
                  float act_max, float* output);

struct QuantAddParams {
  int32_t input1_zero_point = 0;
  int32_t input2_zero_point = 0;
  int32_t output_zero_point = 0;
  int left_shift = 20;
  QuantizedMultiplier input1_multiplier;
  QuantizedMultiplier input2_multiplier;
  QuantizedMultiplier output_multiplier;
  int32_t act_min = -128;
  int32_t act_max = 127;
};

struct QuantMulParams {
  int32_t input1_zero_point = 0;
  int32_t input2_zero_point = 0;
  int32_t output_zero_point = 0;
  QuantizedMultiplier output_multiplier;
  int32_t act_min = -128;
  int32_t act_max = 127;
};

// Derive the fixed-point constants from the tensors' quantization (TFLite's Prepare).
QuantAddParams make_qs8_add_params(float scale1, int32_t zero_point1, float scale2,
                                   int32_t zero_point2, float output_scale,
                                   int32_t output_zero_point, int32_t act_min = -128,
                                   int32_t act_max = 127);
QuantMulParams make_qs8_mul_params(float scale1, int32_t zero_point1, float scale2,
                                   int32_t zero_point2, float output_scale,
                                   int32_t output_zero_point, int32_t act_min = -128,
                                   int32_t act_max = 127);

void qs8_add__ref(const BroadcastShape& s, const QuantAddParams& q, const int8_t* a,
                  const int8_t* b, int8_t* output);

// ADD as LiteRT runs it (the XNNPACK delegate's qs8/qu8 add; same result in both domains):
//   ra = float(s1 / so), rb = float(s2 / so); e = exponent of max(|ra|, |rb|);
//   shift = 20 - e (in [12, 30]); ma = lrintf(ra * 2^shift), mb = lrintf(rb * 2^shift);
//   acc = 2^(shift-1) + ma * (a - zp1) + mb * (b - zp2);
//   y = clamp((acc >> shift) + zpo, act_min, act_max)  (arithmetic shift: floor).
// 21-bit multipliers instead of TFLite's Q31 ones: outputs differ from qs8_add__ref by one
// step near halves (~1 in 10^5 MobileNetV2 outputs). NOTE: requires ra, rb in [2^-10, 2^8).
struct QuantAddXnnParams {
  int32_t input1_zero_point = 0;
  int32_t input2_zero_point = 0;
  int32_t output_zero_point = 0;
  int32_t multiplier1 = 0;
  int32_t multiplier2 = 0;
  int shift = 20;
  int32_t act_min = -128;
  int32_t act_max = 127;
};
QuantAddXnnParams make_qs8_add_xnn_params(float scale1, int32_t zero_point1, float scale2,
                                          int32_t zero_point2, float output_scale,
                                          int32_t output_zero_point, int32_t act_min = -128,
                                          int32_t act_max = 127);
void qs8_add_xnn__ref(const BroadcastShape& s, const QuantAddXnnParams& q, const int8_t* a,
                      const int8_t* b, int8_t* output);
// The same for two inputs of one shape (n elements), vectorized (Highway, run-time dispatch):
// identical outputs.
void qs8_vadd_xnn(size_t n, const QuantAddXnnParams& q, const int8_t* a, const int8_t* b,
                  int8_t* output);
void qs8_mul__ref(const BroadcastShape& s, const QuantMulParams& q, const int8_t* a,
                  const int8_t* b, int8_t* output);

}  // namespace pcv::kernels
