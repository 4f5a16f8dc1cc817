// Contract for the fully connected (dense) kernel family.
//
// Layouts: input   (batch, in_features)          row-major
//          weights (out_features, in_features)   row-major (TFLite's layout)
//          bias    (out_features) or nullptr
//          output  (batch, out_features)
// y[b, o] = clamp(bias[o] + sum_i x[b, i] * w[o, i], act_min, act_max).
// float32 accumulates in float32 in index order i = 0, 1, ...
//
// int8 (qs8): input and output int8 with per-tensor zero points; weights symmetric int8
// (zero point 0) with per-output-channel (or per-tensor, repeated) scales; bias int32 with
// scale input_scale * weight_scale[o]. Same requantization as conv2d (see conv.h):
//   acc = bias[o] + sum_i (x[b, i] - input_zp) * w[o, i]
//   kFp32 (default at run time, LiteRT's arithmetic):
//     y = requantize_fp32(acc, requant_scale[o], output_zp, act_min, act_max)
//   kFixedPoint (TFLite reference):
//     y = clamp(multiply_by_quantized_multiplier(acc, requant[o]) + output_zp, act_min, act_max)
// Accumulators are int32: exact for in_features up to 2^31 / (255 * 127) ~ 66k.
// Thread safety: pure functions of their arguments; buffers must not alias.
#pragma once

#include <cstdint>

#include "kernels/common/requant.h"

namespace pcv::kernels {

struct FullyConnectedParams {
  int batch = 1;
  int in_features = 0;
  int out_features = 0;
};

struct QuantFullyConnectedParams {
  int32_t input_zero_point = 0;
  int32_t weights_zero_point = 0;  // per-tensor; nonzero only for uint8 models read as int8

  int32_t output_zero_point = 0;
  RequantMode mode = RequantMode::kFixedPoint;
  const QuantizedMultiplier* requant = nullptr;  // kFixedPoint: out_features entries
  const float* requant_scale = nullptr;          // kFp32: out_features entries
  int32_t act_min = -128;
  int32_t act_max = 127;
};

void f32_fully_connected__ref(const FullyConnectedParams& p, const float* input,
                              const float* weights, const float* bias, float act_min,
                              float act_max, float* output);
void qs8_fully_connected__ref(const FullyConnectedParams& p, const QuantFullyConnectedParams& q,
                              const int8_t* input, const int8_t* weights, const int32_t* bias,
                              int8_t* output);

}  // namespace pcv::kernels
