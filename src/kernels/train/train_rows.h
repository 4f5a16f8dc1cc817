// Row kernels of the training layers (train/layers.h): elementwise gradients and the per-channel
// batch-norm passes over (rows, C) NHWC blocks, written once with Highway and compiled per
// target (run-time dispatch, PCV_FORCE_ISA as gemm.h).
//
// They run on the caller's thread over the rows they are given: train/layers.cc cuts the
// work into chunks and fixed row slices (its determinism contract) and calls them per piece.
// Column sums add their rows in row order into acc (one running sum per channel, as a scalar
// loop would), so a slice's partial does not depend on how it is vectorized. Products use
// fused multiply-add where the target has it.
//
// All pointers are float arrays of the stated shapes; rows (rows, C) have stride C. None of the
// outputs may alias an input, except where "in place" is stated.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/pool/pool.h"

namespace pcv::kernels {

// dy[i] = (lo < y[i] < hi) ? dy[i] : 0, in place: the gradient through a fused clamp.
void f32_clamp_grad_mask(size_t n, const float* y, float lo, float hi, float* dy);
// dx[i] += (lo < x[i] < hi) ? dy[i] : 0 (relu: lo 0, hi +inf; relu6: lo 0, hi 6).
void f32_window_grad_acc(size_t n, const float* x, float lo, float hi, const float* dy, float* dx);
// dst[i] += src[i].
void f32_add_inplace(size_t n, const float* src, float* dst);

// acc[k] += sum over rows of x[r][k].
void f32_column_sums(size_t rows, size_t c, const float* x, float* acc);
// y[i] = min(max(y[i], lo), hi), in place.
void f32_clamp_inplace(size_t n, float lo, float hi, float* y);
// One-pass moments about a pivot (batch-norm statistics: a pivot near the mean, e.g. a row of
// x, keeps the variance s2/n - (s1/n)^2 free of cancellation): s1[k] += sum (x - pivot[k]),
// s2[k] += sum (x - pivot[k])^2, each added in row order. cached: x is in L1 (a few KB to a
// few tens of KB just written): the sums stay in registers over the rows, a pair of vectors at
// a time (the same floats; slower over rows that come from memory).
void f32_column_shifted_moments(size_t rows, size_t c, const float* x, const float* pivot, float* s1,
                                float* s2, bool cached = false);
// y[r][k] = clamp(x[r][k] * scale[k] + shift[k], lo, hi) (lo, hi = -inf, +inf: no clamp).
// stream: non-temporal stores where y's vectors are aligned (c a multiple of the lanes): for
// an output far larger than the caches, written without being read for ownership; the same
// values either way.
void f32_rows_scale_shift(size_t rows, size_t c, const float* x, const float* scale,
                          const float* shift, float lo, float hi, float* y, bool stream = false);
// dx[r][k] += dy[r][k] * scale[k].
void f32_rows_scale_acc(size_t rows, size_t c, const float* dy, const float* scale, float* dx);

// A clamp fused into a train-mode batch norm's output: its backward recomputes the pre-clamp
// value x * scale + shift with f32_rows_scale_shift's own arithmetic (the same floats) and
// passes the gradient only where lo < value < hi, instead of reading the output and masking
// dy in a pass of its own. scale == nullptr: no clamp.
struct BnFusedClamp {
  const float* scale = nullptr;
  const float* shift = nullptr;
  float lo = 0, hi = 0;
};
// Batch-norm gradient sums with g = dy (masked by the clamp): sdy[k] += sum g;
// sdyx[k] += sum g * xhat with xhat = (x - mean[k]) * invstd[k].
void f32_bn_grad_sums(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                      const float* invstd, const BnFusedClamp& clamp, float* sdy, float* sdyx);
// Batch-norm input gradient: dx[r][k] += coef[k] * (g - mdy[k] - xhat * mdyx[k]) (with
// accumulate; without it dx = ..., dx is not read; stream as in f32_rows_scale_shift, only
// without accumulate).
void f32_bn_grad_input(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                       const float* invstd, const BnFusedClamp& clamp, const float* coef, const float* mdy,
                       const float* mdyx, float* dx, bool accumulate = true, bool stream = false);

// Max pooling with the argmax the backward scatters through, for output row oy of one image
// (x: that image, (in_h, in_w, C); y, argmax: the row, (out_w, C)). argmax = offset of the
// chosen input in the image, (iy * in_w + ix) * C + c; the first maximum in window order
// wins ties; a window entirely in the padding (or holding only -inf / NaN) gives y = 0,
// argmax = -1.
void f32_max_pool_argmax_row(const Pool2dParams& p, const float* x, int oy, float* y, int32_t* argmax);

// Backward of a max pool whose windows tile the input (stride == kernel, no padding), for
// output row oy of one image: ASSIGNS the input gradient of the rows the windows cover
// (oy * kh ... + kh - 1, columns 0 ... out_w * kw - 1; dx: the image, (in_h, in_w, C)): dy
// at each window's argmax (argmax, dy: the row, (out_w, C)), zero elsewhere. With
// mask_y != nullptr (the row of pooled outputs: the producer's outputs at the argmax), the
// gradient also passes a clamp fused into the producer: only where lo < y < hi.
void f32_max_pool_backward_row(const Pool2dParams& p, const int32_t* argmax, const float* dy, const float* mask_y,
                               float lo, float hi, int oy, float* dx);

}  // namespace pcv::kernels
