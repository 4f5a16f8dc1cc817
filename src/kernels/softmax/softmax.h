// Contract for softmax over the last axis.
//
// Layouts: input, output (outer_size, channels), row-major; softmax over each row.
// float32 (TFLite reference): m = max_j x_j; e_j = expf((x_j - m) * beta);
//   y_j = e_j / sum_j e_j (sum in float32, in index order).
//
// int8 (qs8): matches LiteRT's builtin int8 SOFTMAX kernel (kGenericOptimized, the one the
// interpreter registers by default; see kernels/activations.cc SoftmaxPrepare and
// optimized_ops::Softmax), which uses a float table, not the fixed-point exp of
// reference_ops::Softmax (that path is only built for kReference):
//   table[255 - k] = expf((-input_scale * beta) * k), k = 0..255        (float32)
//   per row: m = max_j x_j; e_j = table[255 - m + x_j] (= exp(-input_scale*beta*(m - x_j)));
//   s = sum_j e_j (float32, index order); inv = 1.0f / (s * output_scale);
//   y_j = clamp((int)roundf(e_j * inv) + output_zp, -128, 127)
// TFLite requires output_scale = 1/256 and output_zp = -128 for int8 softmax; the kernel
// computes the formula for any values. On aarch64 LiteRT may be built with
// TFLITE_SOFTMAX_USE_UINT16_LUT (a 16-bit integer table); results can then differ by 1 step.
// Thread safety: pure; input and output may alias exactly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pcv::kernels {

struct SoftmaxParams {
  size_t outer_size = 1;  // number of rows
  int channels = 0;       // row length (last axis)
  float beta = 1.0f;
};

struct QuantSoftmaxParams {
  float input_scale = 1.0f;  // the input zero point cancels out (max subtraction)
  float output_scale = 1.0f / 256.0f;
  int32_t output_zero_point = -128;
  // The 256-entry exp table above, built once at prepare (make_qs8_softmax_table); nullptr:
  // the kernel builds it on every call.
  const float* table = nullptr;
};

void f32_softmax__ref(const SoftmaxParams& p, const float* input, float* output);
void qs8_softmax__ref(const SoftmaxParams& p, const QuantSoftmaxParams& q, const int8_t* input,
                      int8_t* output);
// table[255 - k] = expf((-input_scale * beta) * k), k = 0..255.
void make_qs8_softmax_table(float input_scale, float beta, float table[256]);

}  // namespace pcv::kernels
