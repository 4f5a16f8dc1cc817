// Backward of fully_connected (contract of fully_connected.h: input (batch, in), weights
// (out, in) row-major, bias (out)). The fused activation is not part of it: callers apply its
// backward to the output gradient first.
//   input_grad   (batch, in)  += dY (batch, out) * W (out, in)
//   weights_grad (out, in)    += dY^T (out, batch) * X (batch, in)
//   bias_grad    (out)        += column sums of dY
// All ACCUMULATE (+=); each may be nullptr. Results do not depend on the pool's thread count.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/fully_connected/fully_connected.h"
#include "kernels/gemm/gemm_backward.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

void f32_fully_connected_backward__ref(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad);

// Reused buffers of the fast forward and backward (grow once, then no allocation).
struct F32FullyConnectedBackwardScratch {
  AlignedBuffer dy_transposed;  // (out, batch)
  AlignedBuffer x_transposed;   // (in, batch)
  AlignedBuffer y_transposed;   // (out, batch)
  std::vector<size_t> w_rows;   // o * in: where each row of W starts
  size_t w_rows_stride = 0;     // the `in` of w_rows
};
// Training's forward, for weights that change every call: y (batch, out) = x W^T + bias
// (no activation: callers clamp), with W read in place instead of packed (a pack would read
// and write all of W once more per step): Y^T = W X^T through f32_gemm_atb_acc_cols over X^T,
// split over output features. Results do not depend on the pool's thread count.
void f32_fully_connected_forward_unpacked(const FullyConnectedParams& p, const float* input, const float* weights,
                                          const float* bias, float* output, F32FullyConnectedBackwardScratch* scratch,
                                          ThreadPool* pool);
void f32_fully_connected_backward_fast(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad,
                                       F32FullyConnectedBackwardScratch* scratch,
                                       ThreadPool* pool);

}  // namespace pcv::kernels
