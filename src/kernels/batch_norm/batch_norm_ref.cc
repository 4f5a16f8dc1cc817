#include <cmath>

#include "kernels/batch_norm/batch_norm.h"

namespace pcv::kernels {

void f32_batch_norm__ref(const BatchNormParams& p, const float* input, const float* mean,
                         const float* variance, const float* gamma, const float* beta,
                         float* output) {
  for (size_t r = 0; r < p.outer_size; ++r) {
    const float* x = input + r * p.channels;
    float* y = output + r * p.channels;
    for (int c = 0; c < p.channels; ++c) {
      y[c] = (x[c] - mean[c]) / std::sqrt(variance[c] + p.epsilon) * gamma[c] + beta[c];
    }
  }
}

}  // namespace pcv::kernels
