#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/eltwise/eltwise.h"

namespace pcv::kernels {

bool make_broadcast_shape(const int* a_dims, int a_rank, const int* b_dims, int b_rank,
                          BroadcastShape* out) {
  if (a_rank < 0 || b_rank < 0 || a_rank > kMaxBroadcastRank || b_rank > kMaxBroadcastRank) {
    return false;
  }
  BroadcastShape s;
  s.rank = std::max(std::max(a_rank, b_rank), 1);
  for (int i = 0; i < s.rank; ++i) {
    const int ai = i - (s.rank - a_rank);
    const int bi = i - (s.rank - b_rank);
    const int a = ai >= 0 ? a_dims[ai] : 1;
    const int b = bi >= 0 ? b_dims[bi] : 1;
    if (a < 0 || b < 0) return false;
    if (a != b && a != 1 && b != 1) return false;
    s.a_dims[i] = a;
    s.b_dims[i] = b;
    s.out_dims[i] = a == 1 ? b : a;
  }
  *out = s;
  return true;
}

namespace {

// Calls fn(out_index, a_index, b_index) for every output element in row-major order.
template <typename Fn>
void for_each_broadcast(const BroadcastShape& s, Fn fn) {
  size_t a_stride[kMaxBroadcastRank], b_stride[kMaxBroadcastRank];
  size_t sa = 1, sb = 1, total = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    a_stride[i] = s.a_dims[i] == 1 ? 0 : sa;
    b_stride[i] = s.b_dims[i] == 1 ? 0 : sb;
    sa *= static_cast<size_t>(s.a_dims[i]);
    sb *= static_cast<size_t>(s.b_dims[i]);
    total *= static_cast<size_t>(s.out_dims[i]);
  }
  int idx[kMaxBroadcastRank] = {};
  size_t ia = 0, ib = 0;
  for (size_t o = 0; o < total; ++o) {
    fn(o, ia, ib);
    for (int d = s.rank - 1; d >= 0; --d) {  // odometer increment
      ++idx[d];
      ia += a_stride[d];
      ib += b_stride[d];
      if (idx[d] < s.out_dims[d]) break;
      ia -= a_stride[d] * static_cast<size_t>(idx[d]);
      ib -= b_stride[d] * static_cast<size_t>(idx[d]);
      idx[d] = 0;
    }
  }
}

}  // namespace

void f32_add__ref(const BroadcastShape& s, const float* a, const float* b, float act_min,
                  float act_max, float* output) {
  for_each_broadcast(s, [&](size_t o, size_t ia, size_t ib) {
    output[o] = std::min(std::max(a[ia] + b[ib], act_min), act_max);
  });
}

void f32_mul__ref(const BroadcastShape& s, const float* a, const float* b, float act_min,
                  float act_max, float* output) {
  for_each_broadcast(s, [&](size_t o, size_t ia, size_t ib) {
    output[o] = std::min(std::max(a[ia] * b[ib], act_min), act_max);
  });
}

QuantAddParams make_qs8_add_params(float scale1, int32_t zero_point1, float scale2,
                                   int32_t zero_point2, float output_scale,
                                   int32_t output_zero_point, int32_t act_min,
                                   int32_t act_max) {
  QuantAddParams q;
  q.input1_zero_point = zero_point1;
  q.input2_zero_point = zero_point2;
  q.output_zero_point = output_zero_point;
  q.left_shift = 20;
  const double twice_max = 2.0 * static_cast<double>(std::max(scale1, scale2));
  q.input1_multiplier = quantize_multiplier(static_cast<double>(scale1) / twice_max);
  q.input2_multiplier = quantize_multiplier(static_cast<double>(scale2) / twice_max);
  q.output_multiplier = quantize_multiplier(
      twice_max / (static_cast<double>(1 << q.left_shift) * static_cast<double>(output_scale)));
  q.act_min = act_min;
  q.act_max = act_max;
  return q;
}

QuantMulParams make_qs8_mul_params(float scale1, int32_t zero_point1, float scale2,
                                   int32_t zero_point2, float output_scale,
                                   int32_t output_zero_point, int32_t act_min,
                                   int32_t act_max) {
  QuantMulParams q;
  q.input1_zero_point = zero_point1;
  q.input2_zero_point = zero_point2;
  q.output_zero_point = output_zero_point;
  const float m = scale1 * scale2 / output_scale;  // float, as TFLite's Prepare
  q.output_multiplier = quantize_multiplier(static_cast<double>(m));
  q.act_min = act_min;
  q.act_max = act_max;
  return q;
}

void qs8_add__ref(const BroadcastShape& s, const QuantAddParams& q, const int8_t* a,
                  const int8_t* b, int8_t* output) {
  for_each_broadcast(s, [&](size_t o, size_t ia, size_t ib) {
    const int32_t a_shifted = (a[ia] - q.input1_zero_point) * (1 << q.left_shift);
    const int32_t b_shifted = (b[ib] - q.input2_zero_point) * (1 << q.left_shift);
    const int32_t a_scaled = multiply_by_quantized_multiplier(a_shifted, q.input1_multiplier);
    const int32_t b_scaled = multiply_by_quantized_multiplier(b_shifted, q.input2_multiplier);
    const int32_t y = multiply_by_quantized_multiplier(a_scaled + b_scaled, q.output_multiplier) +
                      q.output_zero_point;
    output[o] = clamp_to_int8(y, q.act_min, q.act_max);
  });
}

QuantAddXnnParams make_qs8_add_xnn_params(float scale1, int32_t zero_point1, float scale2,
                                          int32_t zero_point2, float output_scale,
                                          int32_t output_zero_point, int32_t act_min,
                                          int32_t act_max) {
  const float r1 = scale1 / output_scale;
  const float r2 = scale2 / output_scale;
  int e = 0;
  std::frexp(std::max(std::fabs(r1), std::fabs(r2)), &e);  // max = m * 2^e, m in [0.5, 1)
  const int shift = 20 - (e - 1);                             // 20 - floor(log2(max))
  QuantAddXnnParams q;
  q.input1_zero_point = zero_point1;
  q.input2_zero_point = zero_point2;
  q.output_zero_point = output_zero_point;
  q.shift = shift;
  q.multiplier1 = static_cast<int32_t>(std::nearbyint(std::ldexp(r1, shift)));
  q.multiplier2 = static_cast<int32_t>(std::nearbyint(std::ldexp(r2, shift)));
  q.act_min = act_min;
  q.act_max = act_max;
  return q;
}

void qs8_add_xnn__ref(const BroadcastShape& s, const QuantAddXnnParams& q, const int8_t* a,
                      const int8_t* b, int8_t* output) {
  const int32_t rounding = int32_t{1} << (q.shift - 1);
  for_each_broadcast(s, [&](size_t o, size_t ia, size_t ib) {
    const int32_t acc = rounding + q.multiplier1 * (a[ia] - q.input1_zero_point) +
                        q.multiplier2 * (b[ib] - q.input2_zero_point);
    const int32_t y = (acc >> q.shift) + q.output_zero_point;  // arithmetic shift: floor
    output[o] = clamp_to_int8(y, q.act_min, q.act_max);
  });
}

void qs8_mul__ref(const BroadcastShape& s, const QuantMulParams& q, const int8_t* a,
                  const int8_t* b, int8_t* output) {
  for_each_broadcast(s, [&](size_t o, size_t ia, size_t ib) {
    const int32_t prod = (a[ia] - q.input1_zero_point) * (b[ib] - q.input2_zero_point);
    const int32_t y =
        multiply_by_quantized_multiplier(prod, q.output_multiplier) + q.output_zero_point;
    output[o] = clamp_to_int8(y, q.act_min, q.act_max);
  });
}

}  // namespace pcv::kernels
