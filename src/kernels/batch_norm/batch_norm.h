// Contract for inference-time batch normalization over the last (channel) axis.
//
// Layouts: input, output (outer_size, channels) — any NHWC tensor viewed as rows of C;
//          mean, variance, gamma, beta (channels).
// y[r, c] = (x[r, c] - mean[c]) / sqrt(variance[c] + epsilon) * gamma[c] + beta[c],
// evaluated in float32 in that order (subtract, divide by sqrtf, multiply, add), so it is
// not bit-identical to the folded form x * a + b that optimized kernels and the
// fold_batch_norm pass use; compare those within a few ulp. float32 only.
// input and output may alias exactly (in place).
#pragma once

#include <cstddef>

namespace pcv::kernels {

struct BatchNormParams {
  size_t outer_size = 1;  // product of all dims but the last (N * H * W)
  int channels = 0;
  float epsilon = 1e-3f;
};

void f32_batch_norm__ref(const BatchNormParams& p, const float* input, const float* mean,
                         const float* variance, const float* gamma, const float* beta,
                         float* output);

}  // namespace pcv::kernels
