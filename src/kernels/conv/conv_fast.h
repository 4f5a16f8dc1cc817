// Fast f32 conv2d: the contract of conv.h (NHWC input/output, OHWI filter, explicit padding,
// fused clamp), prepared once, then run with caller-provided scratch and no allocation.
//
// Paths, chosen in prepare_f32_conv2d_fast():
//   kGemm1x1     1x1, stride 1, no padding, groups 1: one GEMM over the NHWC tensor,
//                M = batch*H*W, K = in_c, N = out_c (no scratch).
//   kIm2colGemm  any other conv (incl. grouped, depthwise with multiplier > 1): per group,
//                im2col of `im2col_rows` output pixels at a time into scratch, then GEMM
//                against that group's packed filter (M = rows, K = kh*kw*in_c/groups,
//                N = out_c/groups). Scratch is bounded: rows x K floats per thread.
//   kDirectRows  groups 1, no dilation, few input channels (3-channel first layers): no
//                im2col. The kernel_w * in_c inputs under one kernel row are contiguous in
//                NHWC, so each kernel row is one K block of the GEMM read straight from the
//                input (row stride stride_w * in_c); the blocks accumulate in C. Border pixels
//                (taps in the padding) get a zero-padded im2col row in scratch. The same sums
//                in the same order as kIm2colGemm: bit-identical results.
//   kDepthwise   groups == in_c == out_c: Highway rows with vectors over channels
//                (f32_dwconv_minmax_3x3/5x5/kxk__hwy); no scratch.
//   kWinograd    3x3, stride 1, no dilation, groups 1, in_c and out_c >= 8: Winograd F(2x2, 3x3)
//                (winograd.h): per block of `winograd_tiles` 2x2 output tiles, the input
//                transform into scratch, 16 GEMMs (tiles x in_c) * (in_c x out_c) against the
//                transformed filter, the output transform with bias and clamp. 16 multiply-adds
//                per 2x2 outputs and channel pair instead of 36; results differ from the direct
//                conv by a few roundings (winograd.h), so F32ConvAlgo::kDirect turns it off.
// Threads: work is split over the pool (may be nullptr); results do not depend on the thread
// count. F32Conv2dPacked is immutable after prepare: one may serve several sessions.
#pragma once

#include <cstddef>
#include <vector>

#include "base/aligned.h"
#include "base/status.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_fast_ukernels.h"
#include "kernels/gemm/gemm.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

struct F32Conv2dPacked {
  enum class Path : uint8_t { kGemm1x1, kIm2colGemm, kDepthwise, kDirectRows, kWinograd };

  Conv2dParams params;
  Path path = Path::kIm2colGemm;
  // GEMM paths: one packed filter per group, B = (kernel_h*kernel_w*in_c/groups, out_c/groups).
  std::vector<F32GemmPackedB> group_gemm;
  size_t im2col_rows = 0;  // output pixels per im2col tile
  // Depthwise: (1 + kernel_h*kernel_w, dw_c_stride) = bias row, then the taps (ky, kx).
  AlignedBuffer dw_weights;
  size_t dw_c_stride = 0;
  F32DwconvRowFn dw_row = nullptr;
  // Winograd: the transformed filter as 16 packed B (in_c, out_c), the bias (empty: none),
  // tiles per block.
  std::vector<F32GemmPackedB> winograd_u;
  AlignedBuffer winograd_bias;
  size_t winograd_tiles = 0;
  const char* ukernel_name = nullptr;  // the microkernel that does the work
  const char* isa = nullptr;           // the Highway target it was compiled for

  // Scratch f32_conv2d_fast() needs with a pool of `threads` threads (0 for kGemm1x1 and
  // kDepthwise), or f32_conv2d_fast_max_pool_2x2() with max_pool_2x2. 64-byte alignment is not
  // required.
  size_t scratch_bytes(int threads, bool max_pool_2x2 = false) const;
};

// kAuto: Winograd where it applies; kDirect: never (sums in the direct conv's order).
enum class F32ConvAlgo : uint8_t { kAuto, kDirect };

// Validates params (positive sizes, groups divide in_c and out_c, out_h/out_w consistent with
// the kernel, stride, dilation and padding) and packs the filter (OHWI) and bias (out_c, may
// be nullptr). Errors: invalid_argument, out_of_memory.
Expected<F32Conv2dPacked> prepare_f32_conv2d_fast(const Conv2dParams& params,
                                                  const float* filter, const float* bias,
                                                  F32ConvAlgo algo = F32ConvAlgo::kAuto);

// input (batch, in_h, in_w, in_c) -> output (batch, out_h, out_w, out_c), clamp to
// [act_min, act_max]. scratch: packed.scratch_bytes(pool ? pool->threads() : 1) bytes (may be
// nullptr when that is 0). Output must not alias input or scratch.
void f32_conv2d_fast(const F32Conv2dPacked& packed, const float* input, float act_min,
                     float act_max, float* output, float* scratch, ThreadPool* pool);

// The conv followed by an ADD of `residual` (the output's shape, not aliasing it), then the
// clamp: clamp((conv(input) + bias) + residual, act_min, act_max), with the rounding of the
// two ops run one after the other. Only the kGemm1x1 path fuses it (accepts_residual()).
inline bool accepts_residual(const F32Conv2dPacked& packed) {
  return packed.path == F32Conv2dPacked::Path::kGemm1x1;
}
void f32_conv2d_fast_add(const F32Conv2dPacked& packed, const float* input, const float* residual,
                         float act_min, float act_max, float* output, ThreadPool* pool);


// The conv followed by a 2x2 stride-2 max pool without padding: output (batch, out_h / 2,
// out_w / 2, out_c) = max over each window of clamp(conv(input) + bias, act_min, act_max),
// without storing the conv output. kWinograd: a 2x2 tile is one pooling window, pooled in the
// output transform. kDirectRows: each pair of output rows goes to a two-row buffer of the
// slot's scratch (scratch_bytes(threads, true)), then through the pool. Other paths refuse
// (accepts_max_pool_2x2()). Bit-identical to the conv, then the pool.
inline bool accepts_max_pool_2x2(const F32Conv2dPacked& packed) {
  return packed.path == F32Conv2dPacked::Path::kWinograd || packed.path == F32Conv2dPacked::Path::kDirectRows;
}
void f32_conv2d_fast_max_pool_2x2(const F32Conv2dPacked& packed, const float* input, float act_min, float act_max,
                                  float* output, float* scratch, ThreadPool* pool);

// Work split into per-thread slots (each with its own scratch slice): how many slots work of
// `items` pieces takes on `pool` (may be nullptr), one per thread when the pool is
// multi-threaded and has at least 2 pieces per thread, else 1; and fn(ctx, slot) for each
// slot, over the pool when there are several, else here.
size_t conv_slots(const ThreadPool* pool, size_t items);
void run_conv_slots(ThreadPool* pool, size_t slots, void (*fn)(void* ctx, size_t slot), void* ctx);

// The arguments of one depthwise output row `oy` (kDepthwise path) of one image whose rows
// [in_row0, in_h) are at `rows` (the whole image: in_row0 = 0), written to `output`.
F32DwconvRowArgs depthwise_row_args(const F32Conv2dPacked& packed, const float* rows, int in_row0, float* output,
                                    int oy, float min, float max);

}  // namespace pcv::kernels
