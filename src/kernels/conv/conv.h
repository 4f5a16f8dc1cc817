// Contract for the conv2d kernel family (regular, grouped and depthwise convolution).
//
// Layouts: input  (N, in_h, in_w, in_c)                 NHWC
//          filter (out_c, kernel_h, kernel_w, in_c/groups) OHWI
//          bias   (out_c) or nullptr
//          output (N, out_h, out_w, out_c)              NHWC
// groups divides in_c and out_c; depthwise is groups == in_c (out_c = in_c * multiplier).
// Padding is explicit: the caller resolves SAME/VALID into pad_top/pad_left and the output
// size; input pixels outside [0, in_h) x [0, in_w) read as zero (int8: as the input zero
// point, i.e. they contribute nothing after the zero-point subtraction).
// Activation is fused as a clamp: float [act_min, act_max] (no activation: -inf, +inf).
//
// int8 (qs8): input and output are int8 with per-tensor zero points; the filter is symmetric
// int8 (zero point 0), per output channel scale; bias int32 with scale input_scale *
// filter_scale[oc]. Per output channel: acc = bias + sum((x - input_zp) * w);
// then, by QuantConv2dParams::mode (see requant.h):
//  kFp32 (LiteRT / XNNPACK, the runtime default):
//   out = requantize_fp32(acc, requant_scale[oc], output_zp, act_min, act_max)
//   with requant_scale[oc] = float(input_scale * filter_scale[oc]) / output_scale in float;
//  kFixedPoint (TFLite reference kernels):
//   out = clamp(multiply_by_quantized_multiplier(acc, requant[oc]) + output_zp, act_min, act_max)
//   with requant[oc] = input_scale * filter_scale[oc] / output_scale in double.
// Accumulators are int32: at most 2^31 / (255 * 127) ~ 66k taps per output, far above any
// vision kernel (kernel_h * kernel_w * in_c/groups).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/common/requant.h"

namespace pcv::kernels {

struct Conv2dParams {
  int batch = 1;
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0;  // bottom/right follow from out_h/out_w
  int groups = 1;
};

struct QuantConv2dParams {
  int32_t input_zero_point = 0;
  // Per-tensor filter zero point: 0 for TFLite int8 (symmetric weights); nonzero for uint8
  // models read as int8 (q - 128), where taps are (x - input_zp) * (w - filter_zp) exactly
  // as TFLite's uint8 kernels compute them. |w - filter_zp| <= 255, same accumulator bound.
  int32_t filter_zero_point = 0;
  int32_t output_zero_point = 0;
  RequantMode mode = RequantMode::kFixedPoint;
  const QuantizedMultiplier* requant = nullptr;  // kFixedPoint: out_c entries
  const float* requant_scale = nullptr;          // kFp32: out_c entries
  int32_t act_min = -128;
  int32_t act_max = 127;
};

// Reference kernels: the specification and the test oracle. Plain loops, no threads.
void f32_conv2d__ref(const Conv2dParams& p, const float* input, const float* filter,
                     const float* bias, float act_min, float act_max, float* output);
void qs8_conv2d__ref(const Conv2dParams& p, const QuantConv2dParams& q, const int8_t* input,
                     const int8_t* filter, const int32_t* bias, int8_t* output);

}  // namespace pcv::kernels
