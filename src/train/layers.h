// Training layers: each op's forward and backward side by side, on raw float pointers.
//
// Conventions (as in llm.c):
//  - Activations are NHWC; shapes are written in comments: // (N, H, W, C).
//  - Every *_backward ACCUMULATES (+=) into the gradients it produces (dx, dweight, ...): a
//    value read by several ops gets the sum of their contributions. Callers zero gradient
//    buffers once per step.
//  - Reductions over the batch (batch-norm statistics, bias and scale gradients) are cut into
//    a fixed number of row slices (kReduceSlices, never a function of the thread count) and
//    the slice partials are combined in slice order: results are bitwise identical for any
//    ThreadPool size.
//  - pool may be nullptr (caller's thread).
// The conv2d and fully_connected pairs live in kernels/conv/conv_backward.h and
// kernels/fully_connected/fully_connected_backward.h (GEMM-based); the graph-level wiring is
// in program.cc, the loss in loss.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/eltwise/eltwise.h"
#include "kernels/pool/pool.h"
#include "kernels/train/train_rows.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::train {

inline constexpr int kReduceSlices = 8;
// Below this many elements an op runs on the caller's thread: waking the pool's workers costs
// more than the work (and on a loaded machine a descheduled worker stalls every parallel_for).
inline constexpr size_t kParallelMinElems = size_t{1} << 18;
inline constexpr float kInfinity = std::numeric_limits<float>::infinity();

// ---- elementwise activations: y = f(x); dx += dy * f'(x) ----
void relu_forward(size_t n, const float* x, float* y, ThreadPool* pool);
void relu_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool);
void relu6_forward(size_t n, const float* x, float* y, ThreadPool* pool);
void relu6_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool);
void leaky_relu_forward(size_t n, float alpha, const float* x, float* y, ThreadPool* pool);
void leaky_relu_backward(size_t n, float alpha, const float* x, const float* dy, float* dx,
                         ThreadPool* pool);
// hard_swish(x) = x * relu6(x + 3) / 6; derivative 0 below -3, 1 above 3, (2x + 3) / 6 between.
void hard_swish_forward(size_t n, const float* x, float* y, ThreadPool* pool);
void hard_swish_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool);
// sigmoid: the backward uses the output y: dx += dy * y * (1 - y).
void sigmoid_forward(size_t n, const float* x, float* y, ThreadPool* pool);
void sigmoid_backward(size_t n, const float* y, const float* dy, float* dx, ThreadPool* pool);
// A fused output clamp [lo, hi] (conv/fc/add "activation"): zeroes dy IN PLACE where the clamp
// was active (y <= lo or y >= hi; the ops' own formula for relu/relu6 at the kinks).
void clamp_backward_inplace(size_t n, const float* y, float lo, float hi, float* dy,
                            ThreadPool* pool);
// y = min(max(y, lo), hi), in place (a fused output clamp's forward).
void clamp_forward_inplace(size_t n, float lo, float hi, float* y, ThreadPool* pool);
// dst += src.
void add_inplace(size_t n, const float* src, float* dst, ThreadPool* pool);

// ---- batch norm over rows = N*H*W of C channels: x, y (rows, C) ----
// Train mode: batch statistics mean, var (biased) per channel; y = (x - mean) * invstd * gamma
// + beta with invstd = 1 / sqrt(var + eps), clamped to [lo, hi] (a fused relu/relu6; the
// defaults: none). Writes mean and invstd (C) for the backward and the biased batch variance
// (C) for the running-statistics update. The statistics take one pass (moments about the
// first row, combined in double), the output a second; y == nullptr: the statistics only (a
// caller that applies them later: batch_norm_scale_shift, kernels::f32_rows_scale_shift).
// moments (optional): the statistics pass's partials, taken by the producer of x as it wrote
// it (kernels::f32_conv1x1_moments): per slice s of kReduceSlices (rows [rows * s / S,
// rows * (s + 1) / S)), the sums about x's first row at moments + s * 2 * C and the sums of
// squares at + C; the pass is then skipped, the same bits.
void batch_norm_forward_train(size_t rows, int c, const float* x, const float* gamma,
                              const float* beta, float eps, float* y, float* mean, float* invstd,
                              float* var, ThreadPool* pool, float lo = -kInfinity, float hi = kInfinity,
                              const float* moments = nullptr);
// The affine form of the normalization: y = x * scale + shift, scale = invstd * gamma,
// shift = beta - mean * scale (C each); the floats every batch-norm pass uses.
void batch_norm_scale_shift(size_t c, const float* gamma, const float* beta, const float* mean, const float* invstd,
                            float* scale, float* shift);
// With g = dy where the forward's clamp passed (lo < pre-clamp output < hi, recomputed from x:
// dy itself is not masked) and xhat = (x - mean) * invstd: dgamma += sum g * xhat;
// dbeta += sum g; dx += gamma * invstd * (g - mean(g) - xhat * mean(g * xhat)).
// lo, hi, gamma, beta, mean, invstd: the forward's. assign_dx: dx = instead of dx += (the
// caller knows dx holds nothing yet: saves zeroing it and reading it back). sum_dy, sum_dyx
// (C each, or nullptr): sum g and sum g * xhat taken by the caller (kernels::F32BnGradSums:
// the same values as the pass they replace), so that the backward skips its sums pass.
void batch_norm_backward_train(size_t rows, int c, const float* x, const float* gamma, const float* beta,
                               const float* mean, const float* invstd, const float* dy, float* dx,
                               float* dgamma, float* dbeta, ThreadPool* pool, bool assign_dx = false,
                               float lo = -kInfinity, float hi = kInfinity, const double* sum_dy = nullptr,
                               const double* sum_dyx = nullptr);
// The per-channel factors of that input gradient, for a caller that computes it later a chunk
// at a time with kernels::f32_bn_grad_input (kernels::F32BnOutputGrad: the backward of the 1x1
// conv whose output the batch norm reads). clamp() points into scale and shift.
struct BnInputGradFactors {
  std::vector<float> coef, mdy, mdyx, scale, shift;
  float lo = -kInfinity, hi = kInfinity;
  kernels::BnFusedClamp clamp() const {
    return scale.empty() ? kernels::BnFusedClamp{} : kernels::BnFusedClamp{scale.data(), shift.data(), lo, hi};
  }
};
// batch_norm_backward_train without dx: dgamma and dbeta accumulated, dx's factors in *f.
void batch_norm_backward_train_factors(size_t rows, int c, const float* x, const float* gamma, const float* beta,
                                       const float* mean, const float* invstd, const float* dy, float* dgamma,
                                       float* dbeta, ThreadPool* pool, float lo, float hi, BnInputGradFactors* f,
                                       const double* sum_dy = nullptr, const double* sum_dyx = nullptr);
// Eval mode (running statistics): y = clamp((x - mean) * invstd * gamma + beta, lo, hi),
// invstd from the running variance; backward (of the unclamped part: the caller masks dy
// first): dx += dy * gamma * invstd, dgamma += sum dy * xhat, dbeta += sum dy. `invstd` (C)
// is computed by the caller: 1 / sqrt(running_var + eps).
void batch_norm_forward_eval(size_t rows, int c, const float* x, const float* gamma,
                             const float* beta, const float* mean, const float* invstd, float* y,
                             ThreadPool* pool, float lo = -kInfinity, float hi = kInfinity);
void batch_norm_backward_eval(size_t rows, int c, const float* x, const float* gamma,
                              const float* mean, const float* invstd, const float* dy, float* dx,
                              float* dgamma, float* dbeta, ThreadPool* pool);
// Running statistics: running = momentum * running + (1 - momentum) * batch, with the batch
// variance made unbiased (x rows / (rows - 1)) as PyTorch and TensorFlow do.
void batch_norm_update_running(int c, size_t rows, float momentum, const float* batch_mean,
                               const float* batch_var, float* running_mean, float* running_var);

// Column sums: out(C) += sum over rows of x(rows, C) (sliced, ordered).
void column_sums_accumulate(size_t rows, int c, const float* x, float* out, ThreadPool* pool);

// ---- pooling: kernels/pool/pool.h params (NHWC) ----
// max: argmax (N, out_h, out_w, C) = offset of the chosen input inside its image
// (iy * in_w + ix) * C + c; -1 when the window is all padding (output 0, no gradient).
void max_pool_forward(const kernels::Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                      ThreadPool* pool);
void max_pool_backward(const kernels::Pool2dParams& p, const int32_t* argmax, const float* dy,
                       float* dx, ThreadPool* pool);
// Windows that tile the input (stride == kernel, no padding): each input is in at most one
// window, so the backward can ASSIGN dx (dy at the argmax, zero elsewhere, incl. rows and
// columns no window covers) in one pass instead of zeroing then scattering.
bool max_pool_tiles_input(const kernels::Pool2dParams& p);
// That assigning backward (requires max_pool_tiles_input). mask_y != nullptr: y (N, out_h,
// out_w, C), the pooled outputs, also masks the gradient by a clamp fused into the producer
// of x (lo < y < hi): the pooled value is the producer's output at the argmax, the only
// input the gradient reaches, so the producer need not mask its whole output.
void max_pool_backward_assign(const kernels::Pool2dParams& p, const int32_t* argmax, const float* dy,
                              const float* mask_y, float lo, float hi, float* dx, ThreadPool* pool);
// average over the window's pixels inside the image (padding not counted, as TFLite).
void average_pool_forward(const kernels::Pool2dParams& p, const float* x, float* y,
                          ThreadPool* pool);
void average_pool_backward(const kernels::Pool2dParams& p, const float* dy, float* dx,
                           ThreadPool* pool);

// ---- shape-generic ops on dims of rank <= 5 ----
// mean over `reduce[axis]` axes: y has the kept axes (keep_dims does not change the layout).
void mean_forward(int rank, const int64_t* dims, const bool* reduce, const float* x, float* y);
void mean_backward(int rank, const int64_t* dims, const bool* reduce, const float* dy, float* dx);
// pad with `value`: out dims = dims + before + after.
void pad_forward(int rank, const int64_t* dims, const int64_t* before, const int64_t* after,
                 float value, const float* x, float* y);
void pad_backward(int rank, const int64_t* dims, const int64_t* before, const int64_t* after,
                  const float* dy, float* dx);
// concat along an axis: outer = product of dims before it, inner = product after it,
// sizes[i] = input i's extent on the axis.
void concat_forward(size_t outer, size_t inner, const std::vector<int64_t>& sizes,
                    const std::vector<const float*>& xs, float* y);
void concat_backward(size_t outer, size_t inner, const std::vector<int64_t>& sizes,
                     const float* dy, const std::vector<float*>& dxs);

// ---- broadcasting add / mul (kernels::BroadcastShape, rank <= 5) ----
void add_forward(const kernels::BroadcastShape& s, const float* a, const float* b, float* y,
                 ThreadPool* pool);
// da += reduce(dy) to a's shape; db likewise (either may be nullptr).
void add_backward(const kernels::BroadcastShape& s, const float* dy, float* da, float* db,
                  ThreadPool* pool);
void mul_forward(const kernels::BroadcastShape& s, const float* a, const float* b, float* y,
                 ThreadPool* pool);
// da += reduce(dy * b); db += reduce(dy * a).
void mul_backward(const kernels::BroadcastShape& s, const float* a, const float* b,
                  const float* dy, float* da, float* db, ThreadPool* pool);

// ---- softmax over the last axis (rows, C) ----
void softmax_forward(size_t rows, int c, float beta, const float* x, float* y);
// dx += beta * y * (dy - sum(dy * y)).
void softmax_backward(size_t rows, int c, float beta, const float* y, const float* dy, float* dx);

// ---- dropout: training keeps an element with probability 1 - rate and scales it by
// 1 / (1 - rate); mask (n) holds that scale or 0. Draws from data::Rng(seed, stream). ----
void dropout_forward_train(size_t n, float rate, uint64_t seed, uint64_t stream, const float* x,
                           float* y, float* mask);
void dropout_backward(size_t n, const float* mask, const float* dy, float* dx);

}  // namespace pcv::train
