// Contract for concatenation along one axis.
//
// Shapes: every input has the same dims except along the axis. View each input i as
// (outer_size, axis_dims[i] * inner_size) with outer_size = product of dims before the axis
// and inner_size = product of dims after it; the output is (outer_size,
// sum_i axis_dims[i] * inner_size): for each outer row, the inputs' rows in input order.
//
// int8 (qs8): inputs whose scale and zero point equal the output's are copied; the others
// are requantized like TFLite's ConcatenationWithScaling, in float:
//   scale = s_i * (1 / so); bias = -zp_i * scale;
//   y = clamp((int)roundf(x * scale + bias) + zpo, -128, 127)   (roundf: half away from 0)
// (TFLite's int8 CONCATENATION itself requires equal quantization; its uint8 kernel uses this
// formula.)
#pragma once

#include <cstdint>

namespace pcv::kernels {

struct ConcatParams {
  int num_inputs = 0;
  const int* axis_dims = nullptr;  // num_inputs entries: each input's size along the axis
  int outer_size = 1;
  int inner_size = 1;
};

struct QuantConcatParams {
  const float* input_scales = nullptr;         // num_inputs entries
  const int32_t* input_zero_points = nullptr;  // num_inputs entries
  float output_scale = 1.0f;
  int32_t output_zero_point = 0;
};

void f32_concat__ref(const ConcatParams& p, const float* const* inputs, float* output);
void qs8_concat__ref(const ConcatParams& p, const QuantConcatParams& q,
                     const int8_t* const* inputs, int8_t* output);

}  // namespace pcv::kernels
