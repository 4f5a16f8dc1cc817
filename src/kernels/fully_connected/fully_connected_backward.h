// Backward of fully_connected (contract of fully_connected.h: input (batch, in), weights
// (out, in) row-major, bias (out)). The fused activation is not part of it: callers apply its
// backward to the output gradient first.
//   input_grad   (batch, in)  += dY (batch, out) * W (out, in)
//   weights_grad (out, in)    += dY^T (out, batch) * X (batch, in)
//   bias_grad    (out)        += column sums of dY
// All ACCUMULATE (+=); each may be nullptr. Results do not depend on the pool's thread count.
#pragma once

#include <cstddef>

#include "kernels/fully_connected/fully_connected.h"
#include "kernels/gemm/gemm_backward.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

void f32_fully_connected_backward__ref(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad);

// Reused buffers of the fast backward (grow once, then no allocation).
struct F32FullyConnectedBackwardScratch {
  F32GemmAccB packed;           // W for the input gradient, X for the weight gradient
  AlignedBuffer dy_transposed;  // (out, batch)
};
void f32_fully_connected_backward_fast(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad,
                                       F32FullyConnectedBackwardScratch* scratch,
                                       ThreadPool* pool);

}  // namespace pcv::kernels
