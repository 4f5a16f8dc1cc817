#include <algorithm>
#include <cmath>

#include "kernels/common/requant.h"
#include "kernels/softmax/softmax.h"

namespace pcv::kernels {

void f32_softmax__ref(const SoftmaxParams& p, const float* input, float* output) {
  for (size_t r = 0; r < p.outer_size; ++r) {
    const float* x = input + r * p.channels;
    float* y = output + r * p.channels;
    float m = x[0];
    for (int j = 1; j < p.channels; ++j) m = std::max(m, x[j]);
    float sum = 0.0f;
    for (int j = 0; j < p.channels; ++j) {
      y[j] = std::exp((x[j] - m) * p.beta);
      sum += y[j];
    }
    for (int j = 0; j < p.channels; ++j) y[j] /= sum;
  }
}

void make_qs8_softmax_table(float input_scale, float beta, float table[256]) {
  const float scale = -input_scale * beta;
  for (int k = 0; k <= 255; ++k) table[255 - k] = std::exp(scale * static_cast<float>(k));
}

void qs8_softmax__ref(const SoftmaxParams& p, const QuantSoftmaxParams& q, const int8_t* input,
                      int8_t* output) {
  float own[256];
  const float* table = q.table;
  if (table == nullptr) {
    make_qs8_softmax_table(q.input_scale, p.beta, own);
    table = own;
  }
  for (size_t r = 0; r < p.outer_size; ++r) {
    const int8_t* x = input + r * p.channels;
    int8_t* y = output + r * p.channels;
    int32_t m = -128;
    for (int j = 0; j < p.channels; ++j) m = std::max<int32_t>(m, x[j]);
    const float* t = table + (255 - m);  // t[x] = exp(-input_scale * beta * (m - x))
    float sum = 0.0f;
    for (int j = 0; j < p.channels; ++j) sum += t[x[j]];
    const float inv = 1.0f / (sum * q.output_scale);
    for (int j = 0; j < p.channels; ++j) {
      const int32_t v = static_cast<int32_t>(std::round(t[x[j]] * inv)) + q.output_zero_point;
      y[j] = clamp_to_int8(v, -128, 127);
    }
  }
}

}  // namespace pcv::kernels
