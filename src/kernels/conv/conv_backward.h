// Backward of conv2d (the contract of conv.h: NHWC input/output, OHWI filter, explicit
// padding, groups incl. depthwise, stride, dilation). The fused activation is not part of it:
// callers apply the activation's backward to the output gradient first.
//
// With dY = dL/d(output) (N, out_h, out_w, out_c):
//   input_grad  (N, in_h, in_w, in_c)           += sum over taps of dY * W  (backward-data)
//   filter_grad (out_c, kh, kw, in_c/groups)    += sum over N, out_h, out_w of dY * X
//   bias_grad   (out_c)                         += sum over N, out_h, out_w of dY
// All three ACCUMULATE (+=): callers zero them (or pass buffers holding other contributions).
// Any of the three may be nullptr when that gradient is not needed.
//
// f32_conv2d_backward__ref: plain loops, the specification and the oracle.
// f32_conv2d_backward_fast: prepared once per shape (F32Conv2dBackwardPlan), run with caller
//   scratch. Paths:
//   kGemm        per group, per chunk of `rows` output pixels (1x1 stride 1 unpadded: chunks
//                of the slice's images as one row matrix, which may span images):
//                  backward-data:   dXcol(rows, K) = dY(rows, og) * W_g(og, K), then col2im
//                                   (1x1 stride 1 unpadded: accumulated straight into dX);
//                  backward-filter: dW_g^T(K, og) += im2col(X)(rows, K)^T * dY_g(rows, og)
//                                   (f32_gemm_atb_acc: both read in place, no transpose;
//                                   1x1 stride 1 unpadded: X's rows themselves, and as
//                                   dY_g^T X when dw_direct), transposed into dW at the end
//                                   (not when dw_direct); both per chunk, while its rows of
//                                   dY are in cache;
//                K = kh*kw*in_c/groups, og = out_c/groups, GEMMs of kernels/gemm.
//   kDepthwise   groups == in_c: direct NHWC loops over output pixels and taps, vectorized
//                over channels (f32_dwconv_backward_image; multiplier > 1: plain loops).
// Determinism: the batch is cut into `slices` (a function of the batch only, never of the
// thread count); slices run in parallel, each adds its images' filter/bias gradients into its
// own partial buffer in a fixed order, and the partials are summed in slice order. Input
// gradients of different images never overlap. So results are bitwise identical for any
// thread count.
#pragma once

#include <cstddef>
#include <vector>

#include "base/status.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/gemm/gemm.h"
#include "kernels/train/train_rows.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

void f32_conv2d_backward__ref(const Conv2dParams& p, const float* input, const float* filter,
                              const float* output_grad, float* input_grad, float* filter_grad,
                              float* bias_grad);

struct F32Conv2dBackwardPlan {
  enum class Path : uint8_t { kGemm, kDepthwise };
  Conv2dParams params;
  Path path = Path::kGemm;
  int slices = 1;         // batch slices (see Determinism above)
  size_t rows = 0;        // kGemm: output pixels per chunk
  size_t k = 0;           // kGemm: kh * kw * in_c / groups
  bool direct_1x1 = false;  // kGemm: 1x1, stride 1, no padding: no im2col/col2im needed
  // direct_1x1 with fewer output than input channels per group, or with K a multiple of 32:
  // the filter gradient is computed as dW_g(og, K) += dY_g^T X (the same products and sums,
  // bit for bit), so that the GEMM's vector dimension is the wider K (a projection's 24 output
  // channels waste a third of 16-lane vectors), or one that fills whole panels anyway; the
  // slice partials are then (og, K), the filter's layout, not (K, og).
  bool dw_direct = false;
  // direct_1x1 with room for the output gradient of a chunk, computed from a batch norm's
  // backward (F32BnOutputGrad) instead of read from memory.
  bool bn_output_grad = false;
  // Room for the input of a conv that reads a batch norm's output, recomputed from the batch
  // norm's input (bn_input of f32_conv2d_backward_fast): a band of rows (kDepthwise) or a
  // chunk (direct_1x1) at a time, and the batch norm's sums.
  bool bn_input = false;
  // Scratch floats the run needs (computed by prepare, for the plan's batch).
  size_t scratch_elems = 0;
};

// The conv's output gradient as the input gradient of the train-mode batch norm that reads the
// conv's output: dY = f32_bn_grad_input(x, dy, mean, invstd, clamp, coef, mdy, mdyx), assigned
// (x: the conv's output, dy: the batch norm's output gradient; both (N, out_h, out_w, out_c)).
// A 1x1 conv's backward computes it a chunk of rows at a time into scratch, where its GEMMs
// read it: the batch norm's input gradient is never written to memory and read back (two
// passes over a tensor that is 154 MB in MobileNetV2's block 1 at batch 32). The values are
// f32_bn_grad_input's, bit for bit (it has no cross-row state).
struct F32BnOutputGrad {
  const float* x = nullptr;
  const float* dy = nullptr;
  const float* mean = nullptr;
  const float* invstd = nullptr;
  BnFusedClamp clamp;
  const float* coef = nullptr;
  const float* mdy = nullptr;
  const float* mdyx = nullptr;
};

// The sums of the backward of the train-mode batch norm whose output a conv reads (bn_input),
// taken where the conv's backward computes that output's gradient (its input gradient,
// assigned; the depthwise conv per pixel as it stores it, the 1x1 conv per chunk of rows while
// they are in cache) instead of in a pass of the batch norm's own: with g = the input
// gradient where the batch norm's clamp passed (recomputed from its input) and xhat =
// (x - mean) * invstd, sum_dy[k] = sum g and sum_dyx[k] = sum g * xhat, per slice over its
// pixels in order in float (f32_bn_grad_sums's operations), the slices' partials added in
// double in slice order. That is the batch norm's own sums pass, bit for bit, when the batch
// cuts into kBnSumsSlices slices of whole images (batch a multiple of it), as the batch norm
// cuts its rows.
constexpr int kBnSumsSlices = 8;
struct F32BnGradSums {
  const float* mean = nullptr;
  const float* invstd = nullptr;
  double* sum_dy = nullptr;   // (C), assigned
  double* sum_dyx = nullptr;  // (C), assigned
};

// Validates the params (as prepare_f32_conv2d_fast does). Errors: invalid_argument.
// bn_output_grad: reserve the chunk of F32BnOutputGrad (1x1 stride 1 unpadded convs only;
// ignored for others: plan.bn_output_grad says whether it applies). bn_input: reserve the
// buffers of a conv whose input is given as a batch norm's: depthwise 3x3, dilation 1, stride 1
// or 2 (f32_dwconv_backward_affine_rows() > 0), or 1x1 stride 1 unpadded (direct_1x1); ignored
// for others (plan.bn_input says).
Expected<F32Conv2dBackwardPlan> prepare_f32_conv2d_backward_fast(const Conv2dParams& params,
                                                                  bool bn_output_grad = false,
                                                                  bool bn_input = false);

// Runs the backward for `batch` <= plan.params.batch images. scratch: plan.scratch_elems floats
// (any alignment; contents are overwritten). ACCUMULATES into input_grad, filter_grad and
// bias_grad (each may be nullptr); with assign_input_grad, input_grad is assigned instead (its
// contents are never read: a 1x1 conv's GEMM starts from zeros, other paths zero each image
// before adding into it).
// bn: the output gradient comes from a batch norm's backward (output_grad is then ignored);
// requires plan.bn_output_grad (its scratch holds the chunk).
// bn_input: the conv's input is clamp(input * scale + shift, lo, hi) per channel, a train-mode
// batch norm's output recomputed from its input `input` (f32_rows_scale_shift's floats, as the
// batch norm's forward writes them), for the filter gradient; requires plan.bn_input. The
// input gradient is the same either way (it does not read the input).
// bn_sums (with bn_input, input_grad assigned): that batch norm's backward sums, see
// F32BnGradSums.
void f32_conv2d_backward_fast(const F32Conv2dBackwardPlan& plan, int batch, const float* input,
                              const float* filter, const float* output_grad, float* input_grad,
                              float* filter_grad, float* bias_grad, float* scratch,
                              ThreadPool* pool, bool assign_input_grad = false,
                              const F32BnOutputGrad* bn = nullptr, const BnFusedClamp* bn_input = nullptr,
                              const F32BnGradSums* bn_sums = nullptr);

// Backward-data as a forward conv, for stride-1, undilated, ungrouped KxK convs (K > 1, each
// side padded by at most K - 1): dX = conv(dY, W') where W'[ci][ky][kx][co] =
// W[co][kh-1-ky][kw-1-kx][ci] (space flipped, in/out channels swapped), padded by kh-1-pad_top
// on top and kw-1-pad_left on the left, output in_h x in_w. It runs on the forward conv's
// kernels (f32_conv2d_fast, clamp -inf..inf; 3x3: Winograd) and ASSIGNS dX: no dX column
// buffer, no col2im. Returns false (out untouched) for convs of other kinds.
bool conv2d_backward_data_as_conv(const Conv2dParams& p, Conv2dParams* out);
// Packs W' for conv2d_backward_data_as_conv's params. Errors: invalid_argument (not such a
// conv), out_of_memory.
Expected<F32Conv2dPacked> prepare_f32_conv2d_backward_data_as_conv(const Conv2dParams& p, const float* filter);

// The depthwise path's per-image step (channel multiplier 1: out_c == in_c == groups), one
// Highway kernel per target: x the image's input (in_h, in_w, C), dy its output gradient
// (out_h, out_w, C), wt the filter as (kh * kw, C). ACCUMULATES dx (the image's input
// gradient; assign_dx: assigns it, never reading it), dwt ((kh * kw, C)) and db (C); each may
// be nullptr. It may prefetch (never read) the rows after the image's x and dy: the next
// image's when the caller walks a batch.
// x_affine (f32_dwconv_backward_affine_rows(p) > 0 only): the conv's input is
// clamp(x * scale + shift, lo, hi) per channel, computed (f32_rows_scale_shift) a band of rows
// at a time into x_buf, f32_dwconv_backward_affine_rows(p) * in_w * C floats; the same bits as
// the backward of that input written out. bn_sums (with x_affine and dx assigned): the batch
// norm's backward sums over this image's pixels (F32BnGradSums) added to the float partials
// sdy and sdyx (C each).
struct F32BnSumsPartial {
  const float* mean = nullptr;
  const float* invstd = nullptr;
  float* sdy = nullptr;
  float* sdyx = nullptr;
};
void f32_dwconv_backward_image(const Conv2dParams& p, const float* x, const float* dy, const float* wt,
                               float* dx, float* dwt, float* db, bool assign_dx = false,
                               const BnFusedClamp* x_affine = nullptr, float* x_buf = nullptr,
                               const F32BnSumsPartial* bn_sums = nullptr);
// The 3x3 depthwise backward's band: output rows per band of its filter gradient, and the input
// rows one band reads (its x_buf rows), 0 for shapes without the band path (not 3x3, dilated,
// other strides).
constexpr int kDwBackwardBandRows = 3;
int f32_dwconv_backward_affine_rows(const Conv2dParams& p);

}  // namespace pcv::kernels
