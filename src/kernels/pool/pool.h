// Contract for 2-D max and average pooling (TFLite semantics).
//
// Layouts: input (batch, in_h, in_w, channels) NHWC; output (batch, out_h, out_w, channels).
// Window of output (oy, ox): rows oy * stride_h - pad_top + [0, kernel_h), columns likewise;
// padding is explicit (caller resolves SAME/VALID and out_h/out_w). Only taps inside the
// input count: padded taps are skipped, never read as zero, so
//   max_pool  = max over valid taps
//   avg_pool  = sum over valid taps / number of valid taps (TFLite's AveragePool)
// A window with no valid tap is a caller error (prepare must reject it); the reference then
// writes act_min (float) / act_min (int8) rather than dividing by zero.
// The fused activation is a clamp to [act_min, act_max].
//
// int8 (qs8): input and output share scale and zero point (as TFLite requires), so the
// kernels work on raw values: max is a plain max; avg computes an int32 sum of the raw int8
// values and divides with rounding half away from zero, exactly TFLite's
// reference_integer_ops::AveragePool: sum > 0 ? (sum + count/2) / count
//                                             : (sum - count/2) / count  (C++ truncation).
// LiteRT runs a uint8 model's AVERAGE_POOL_2D with TFLite's uint8 kernel (XNNPACK takes only
// float pooling), which rounds half up on the uint8 sum: (sum_u8 + count/2) / count. On the
// int8 IR of such a model (q - 128) that is floor((sum + count/2) / count) (AvgRounding::
// kHalfUp); the two rules differ only on exact halves of negative sums (even window sizes).
// Accumulator bound: |sum| <= 128 * kernel_h * kernel_w, far below 2^31.
#pragma once

#include <cstdint>

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

struct Pool2dParams {
  int batch = 1;
  int in_h = 0, in_w = 0, channels = 0;
  int out_h = 0, out_w = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0;  // bottom/right follow from out_h/out_w
};

void f32_max_pool2d__ref(const Pool2dParams& p, const float* input, float act_min,
                         float act_max, float* output);
void f32_average_pool2d__ref(const Pool2dParams& p, const float* input, float act_min,
                             float act_max, float* output);
// The same results (bit for bit, inputs without NaN), vectorized over channels and split by
// output rows over `pool` (may be nullptr): f32_pool_hwy.cc.
void f32_max_pool2d__hwy(const Pool2dParams& p, const float* input, float act_min, float act_max,
                         float* output, ThreadPool* pool);
void f32_average_pool2d__hwy(const Pool2dParams& p, const float* input, float act_min, float act_max,
                             float* output, ThreadPool* pool);
void qs8_max_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                         int32_t act_max, int8_t* output);
enum class AvgRounding {
  kHalfAwayFromZero,  // TFLite int8 kernels
  kHalfUp,            // TFLite uint8 kernels, seen through the int8 IR of a uint8 model
};
void qs8_average_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                             int32_t act_max, int8_t* output);
void qs8_average_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                             int32_t act_max, AvgRounding rounding, int8_t* output);

// Integer average with TFLite's rounding (count > 0).
inline int32_t rounded_average(int32_t sum, int32_t count, AvgRounding rounding) {
  if (rounding == AvgRounding::kHalfUp) {
    const int32_t t = sum + count / 2;  // floor division
    return t >= 0 ? t / count : -((-t + count - 1) / count);
  }
  return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

}  // namespace pcv::kernels
