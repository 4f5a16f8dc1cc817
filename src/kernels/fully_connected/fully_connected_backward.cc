// fully_connected backward: reference loops and the GEMM version (contract in
// fully_connected_backward.h).
#include "kernels/fully_connected/fully_connected_backward.h"

#include <vector>

namespace pcv::kernels {

void f32_fully_connected_backward__ref(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad) {
  for (int b = 0; b < p.batch; ++b) {
    const float* x = input + static_cast<size_t>(b) * p.in_features;     // (batch, in)
    const float* dy = output_grad + static_cast<size_t>(b) * p.out_features;  // (batch, out)
    for (int o = 0; o < p.out_features; ++o) {
      const float g = dy[o];
      const float* w = weights + static_cast<size_t>(o) * p.in_features;  // (out, in)
      if (bias_grad != nullptr) bias_grad[o] += g;
      for (int i = 0; i < p.in_features; ++i) {
        if (weights_grad != nullptr) weights_grad[static_cast<size_t>(o) * p.in_features + i] += g * x[i];
        if (input_grad != nullptr) input_grad[static_cast<size_t>(b) * p.in_features + i] += g * w[i];
      }
    }
  }
}

void f32_fully_connected_backward_fast(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad,
                                       F32FullyConnectedBackwardScratch* s, ThreadPool* pool) {
  const size_t batch = static_cast<size_t>(p.batch);
  const size_t in = static_cast<size_t>(p.in_features), out = static_cast<size_t>(p.out_features);
  if (bias_grad != nullptr) {
    // Column sums in batch order (fixed).
    for (size_t b = 0; b < batch; ++b) {
      for (size_t o = 0; o < out; ++o) bias_grad[o] += output_grad[b * out + o];
    }
  }
  if (input_grad != nullptr) {
    // dX (batch, in) += dY (batch, out) * W (out, in): B = W, k = out, n = in.
    pack_f32_gemm_acc_b(out, in, weights, in, F32GemmBLayout::kKN, &s->packed);
    f32_gemm_acc(batch, output_grad, out, s->packed, input_grad, in, pool);
  }
  if (weights_grad != nullptr) {
    // dW (out, in) += dY^T (out, batch) * X (batch, in): B = X, k = batch, n = in.
    if (s->dy_transposed.size() < out * batch * sizeof(float)) s->dy_transposed.resize(out * batch * sizeof(float));
    float* dyt = reinterpret_cast<float*>(s->dy_transposed.data());
    f32_transpose(batch, out, output_grad, out, dyt, batch);
    pack_f32_gemm_acc_b(batch, in, input, in, F32GemmBLayout::kKN, &s->packed);
    f32_gemm_acc(out, dyt, batch, s->packed, weights_grad, in, pool);
  }
}

}  // namespace pcv::kernels
