#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/concat/concat.h"

namespace pcv::kernels {

void f32_concat__ref(const ConcatParams& p, const float* const* inputs, float* output) {
  size_t o = 0;
  for (int outer = 0; outer < p.outer_size; ++outer) {
    for (int i = 0; i < p.num_inputs; ++i) {
      const size_t row = static_cast<size_t>(p.axis_dims[i]) * p.inner_size;
      const float* src = inputs[i] + outer * row;
      for (size_t k = 0; k < row; ++k) output[o++] = src[k];
    }
  }
}

void qs8_concat__ref(const ConcatParams& p, const QuantConcatParams& q,
                     const int8_t* const* inputs, int8_t* output) {
  const float inverse_output_scale = 1.0f / q.output_scale;
  size_t o = 0;
  for (int outer = 0; outer < p.outer_size; ++outer) {
    for (int i = 0; i < p.num_inputs; ++i) {
      const size_t row = static_cast<size_t>(p.axis_dims[i]) * p.inner_size;
      const int8_t* src = inputs[i] + outer * row;
      if (q.input_scales[i] == q.output_scale &&
          q.input_zero_points[i] == q.output_zero_point) {
        for (size_t k = 0; k < row; ++k) output[o++] = src[k];
        continue;
      }
      const float scale = q.input_scales[i] * inverse_output_scale;
      const float bias = -static_cast<float>(q.input_zero_points[i]) * scale;
      for (size_t k = 0; k < row; ++k) {
        const float r = std::round(static_cast<float>(src[k]) * scale + bias) +
                        static_cast<float>(q.output_zero_point);
        output[o++] = static_cast<int8_t>(std::min(std::max(r, -128.0f), 127.0f));
      }
    }
  }
}

}  // namespace pcv::kernels
