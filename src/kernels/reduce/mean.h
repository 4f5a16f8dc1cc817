// Contract for mean over a set of axes (global average pooling = mean over H and W of NHWC).
//
// Shapes: input dims (rank <= 5, dense row-major); reduce_axis[d] marks the reduced axes.
// The output holds the input dims with every reduced axis set to 1 (keep_dims; dropping
// those axes changes only the shape, not the data order).
//
// float32: per output, sum in float32 over the reduced elements in increasing input order,
// divided by the element count. No allocation.
//
// int8 (qs8), TFLite's reference_integer_ops::Mean arithmetic (the kernel TFLite's reference
// Mean uses for 4-D inputs reduced over H, W), applied to any axis set:
//   acc = sum (x - input_zp)                            (int32)
//   acc = MBQM(acc, M),  M = double(si) / double(so)   (requant; see make_qs8_mean_params)
//   acc = acc > 0 ? (acc + n/2) / n : (acc - n/2) / n   (n = reduced count; half away from 0)
//   y = clamp(acc + output_zp, -128, 127)
// NOTE: TFLite's builtin int8 MEAN has several code paths by version, axes and keep_dims
// (an optimized float path with round(x*scale + bias) for 4-D keep_dims H,W; a float
// QuantizedMeanOrSum otherwise). They agree with this definition within 1 step, which is the
// tolerance DESIGN.md sets for quantized results against LiteRT.
// Accumulator bound: |acc| <= 255 * n, so n < 8.4M elements per output.
#pragma once

#include <cstdint>

#include "kernels/common/requant.h"

namespace pcv::kernels {

constexpr int kMaxReduceRank = 5;

struct MeanParams {
  int rank = 0;
  int in_dims[kMaxReduceRank] = {};
  bool reduce_axis[kMaxReduceRank] = {};
};

// RequantMode::kFp32 (LiteRT: the XNNPACK delegate's quantized MEAN over H, W):
//   acc = sum (x - input_zp) (int32, exact);
//   y = clamp(lrintf(float(acc) * scale) + output_zp, -128, 127),
//   scale = float(input_scale / output_scale) * (1.0f / float(n))  (float arithmetic).
struct QuantMeanParams {
  int32_t input_zero_point = 0;
  int32_t output_zero_point = 0;
  QuantizedMultiplier requant;  // kFixedPoint: input_scale / output_scale
  RequantMode mode = RequantMode::kFixedPoint;
  float scale_in_out = 1.0f;  // kFp32: float(input_scale / output_scale); 1/n applied per call
};

QuantMeanParams make_qs8_mean_params(float input_scale, int32_t input_zero_point,
                                     float output_scale, int32_t output_zero_point);

// One int8 output from its int32 sum acc = sum (x - input_zero_point) over n elements (the
// arithmetic above, for either requant mode); shared by the reference and the fast kernel.
int8_t qs8_mean_output(int32_t acc, int32_t n, const QuantMeanParams& q);

void f32_mean__ref(const MeanParams& p, const float* input, float* output);
// The same results bit for bit, vectorized over the innermost kept axis when the reduced axes
// are one contiguous run (f32_mean_hwy.cc); the reference otherwise.
void f32_mean__hwy(const MeanParams& p, const float* input, float* output);
void qs8_mean__ref(const MeanParams& p, const QuantMeanParams& q, const int8_t* input,
                   int8_t* output);
// The same results, int32 sums vectorized over the innermost kept axis when the reduced axes
// are one contiguous run (f32_mean_hwy.cc); the reference otherwise.
void qs8_mean__hwy(const MeanParams& p, const QuantMeanParams& q, const int8_t* input, int8_t* output);

}  // namespace pcv::kernels
