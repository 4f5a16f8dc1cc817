#include <algorithm>
#include <cstddef>

#include "kernels/fully_connected/fully_connected.h"

namespace pcv::kernels {

void f32_fully_connected__ref(const FullyConnectedParams& p, const float* input,
                              const float* weights, const float* bias, float act_min,
                              float act_max, float* output) {
  for (int b = 0; b < p.batch; ++b) {
    const float* x = input + static_cast<size_t>(b) * p.in_features;
    for (int o = 0; o < p.out_features; ++o) {
      const float* w = weights + static_cast<size_t>(o) * p.in_features;
      float acc = bias != nullptr ? bias[o] : 0.0f;
      for (int i = 0; i < p.in_features; ++i) acc += x[i] * w[i];
      output[static_cast<size_t>(b) * p.out_features + o] =
          std::min(std::max(acc, act_min), act_max);
    }
  }
}

void qs8_fully_connected__ref(const FullyConnectedParams& p, const QuantFullyConnectedParams& q,
                              const int8_t* input, const int8_t* weights, const int32_t* bias,
                              int8_t* output) {
  for (int b = 0; b < p.batch; ++b) {
    const int8_t* x = input + static_cast<size_t>(b) * p.in_features;
    for (int o = 0; o < p.out_features; ++o) {
      const int8_t* w = weights + static_cast<size_t>(o) * p.in_features;
      int32_t acc = 0;
      for (int i = 0; i < p.in_features; ++i) {
        acc = wrap_add(acc, (static_cast<int32_t>(x[i]) - q.input_zero_point) *
                                (static_cast<int32_t>(w[i]) - q.weights_zero_point));
      }
      if (bias != nullptr) acc = wrap_add(acc, bias[o]);
      int8_t& y = output[static_cast<size_t>(b) * p.out_features + o];
      if (q.mode == RequantMode::kFp32) {
        y = static_cast<int8_t>(
            requantize_fp32(acc, q.requant_scale[o], q.output_zero_point, q.act_min, q.act_max));
      } else {
        const int32_t out =
            multiply_by_quantized_multiplier(acc, q.requant[o]) + q.output_zero_point;
        y = clamp_to_int8(out, q.act_min, q.act_max);
      }
    }
  }
}

}  // namespace pcv::kernels
