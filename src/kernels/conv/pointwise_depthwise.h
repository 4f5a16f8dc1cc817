// Convs that compute their input where they read it, so that it never goes to memory: a 1x1
// conv's output (inference), or a train-mode batch norm's output (training; after the first
// fusion below); and 1x1 and depthwise convs that take the statistics of the batch norm after
// them as they write their output (training; the last functions here).
//
// A 1x1 convolution followed by a depthwise convolution (MobileNetV2's expand + depthwise), run
// band by band so that the expanded tensor never goes to memory:
//
//   x (H, W, Cin) ─► conv 1x1 + clamp ─► t (H, W, Cexp) ─► depthwise KxK + clamp ─► y
//
// Each thread takes a contiguous range of output rows. For a band of `band_rows` output rows it
// computes the rows of t that the band's taps reach (one GEMM over those rows of x) into a
// buffer of its scratch, then runs the depthwise rows on that buffer. Rows of t that the next
// band also reaches are moved to the buffer's start instead of being computed again, so every
// row of t is computed once per thread. The buffer stays in cache; t (4.8 MB for MobileNetV2's
// block 1) is neither written nor read back.
//
// Results are bit-identical to f32_conv2d_fast() of the 1x1 conv, then of the depthwise conv:
// the GEMM's sums over K do not depend on which rows it is given, and the depthwise rows read
// the same values.
#pragma once

#include <cstddef>

#include "base/status.h"
#include "kernels/conv/conv_fast.h"
#include "kernels/train/train_rows.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

struct F32PointwiseDepthwise {
  F32Conv2dPacked pointwise;  // kGemm1x1
  F32Conv2dPacked depthwise;  // kDepthwise, reading the pointwise output
  int band_rows = 0;          // depthwise output rows per band

  // Rows of the pointwise output one band needs at most.
  int buffer_rows() const;
  size_t scratch_bytes(int threads) const;
};

// Band size when not given: the buffer stays near this many bytes.
constexpr size_t kPointwiseDepthwiseBufferBytes = 384 * 1024;

// Takes the two prepared convs. Errors (invalid_argument): `pointwise` is not the kGemm1x1 path,
// `depthwise` not the kDepthwise path, or the depthwise input is not the pointwise output
// (batch, height, width, channels); band_rows < 0. band_rows 0 picks it from
// kPointwiseDepthwiseBufferBytes.
Expected<F32PointwiseDepthwise> fuse_f32_pointwise_depthwise(F32Conv2dPacked pointwise, F32Conv2dPacked depthwise,
                                                             int band_rows = 0);

// input (batch, H, W, Cin) -> output (batch, out_h, out_w, Cexp). The pointwise output is
// clamped to [pw_min, pw_max], the depthwise output to [dw_min, dw_max]. scratch:
// scratch_bytes(pool ? pool->threads() : 1) bytes. Output must not alias input or scratch.
void f32_pointwise_depthwise(const F32PointwiseDepthwise& fused, const float* input, float pw_min, float pw_max,
                             float dw_min, float dw_max, float* output, float* scratch, ThreadPool* pool);

// A train-mode batch norm's output as a depthwise conv's input, band by band the same way:
//
//   x (N, H, W, C) ─► clamp(x * scale + shift, lo, hi) per channel ─► depthwise + clamp ─► y
//
// with affine's scale, shift, lo and hi (kernels::BnFusedClamp; scale must be set). The rows a
// band reaches are computed with f32_rows_scale_shift into the slot's buffer, so the batch
// norm's output is neither written to memory nor read back: in training it is two passes
// over a tensor of up to 154 MB (MobileNetV2's block 1 at batch 32) that the batch norm's
// forward no longer makes. Bit-identical to f32_rows_scale_shift over the batch, then
// f32_conv2d_fast (depthwise: the kDepthwise path). scratch:
// f32_affine_depthwise_scratch_bytes(depthwise, pool ? pool->threads() : 1) bytes. Output must
// not alias input or scratch.
size_t f32_affine_depthwise_scratch_bytes(const F32Conv2dPacked& depthwise, int threads);
void f32_affine_depthwise(const F32Conv2dPacked& depthwise, const float* input, const BnFusedClamp& affine,
                          float dw_min, float dw_max, float* output, float* scratch, ThreadPool* pool);

// The same for a 1x1 conv (the kGemm1x1 path): each thread computes a chunk of rows of the
// batch norm's output into its buffer (~256 KB, in L2) and runs the GEMM on it. Bit-identical
// to f32_rows_scale_shift over the batch, then f32_conv2d_fast (the GEMM's sums over K do not
// depend on which rows it is given). scratch: f32_affine_conv1x1_scratch_bytes(conv, pool ?
// pool->threads() : 1) bytes.
size_t f32_affine_conv1x1_scratch_bytes(const F32Conv2dPacked& conv, int threads);
void f32_affine_conv1x1(const F32Conv2dPacked& conv, const float* input, const BnFusedClamp& affine, float act_min,
                        float act_max, float* output, float* scratch, ThreadPool* pool);

// A 1x1 conv (the kGemm1x1 path) whose output a train-mode batch norm reads next: writes the
// output as f32_conv2d_fast does (as f32_affine_conv1x1 does with `affine`), and the batch
// norm's statistics over it as its own pass takes them: the output rows cut into S =
// kBnMomentsSlices slices [rows * s / S, rows * (s + 1) / S), each slice's
// f32_column_shifted_moments about the output's first row, from zeros, into moments + s * 2 *
// out_c (s1) and + out_c (s2). Each thread (up to S) takes whole slices, a chunk of rows per
// GEMM, whose microkernels add the rows to the sums from their registers as they store them
// (kF32GemmMoments; streamed as f32_conv2d_fast streams an output of kStreamOutputBytes or
// more), so that the batch norm makes no pass over the tensor. The same bits: the GEMM's sums
// do not depend on which rows it is given, and each slice's moments get its rows in order.
// scratch: f32_conv1x1_moments_scratch_bytes(conv, affine != nullptr, pool ? pool->threads() : 1).
inline constexpr int kBnMomentsSlices = 8;  // the batch norm's (train/layers.h kReduceSlices)
size_t f32_conv1x1_moments_scratch_bytes(const F32Conv2dPacked& conv, bool affine, int threads);
void f32_conv1x1_moments(const F32Conv2dPacked& conv, const float* input, const BnFusedClamp* affine, float act_min,
                         float act_max, float* output, float* moments, float* scratch, ThreadPool* pool);

// f32_affine_depthwise with the statistics of a batch norm that reads its output, as
// f32_conv1x1_moments gives them (the same layout, the same bits): each output row's pixels
// added to its slice's moments as the row is computed, while it is in cache, where the batch is
// a multiple of kBnMomentsSlices (the slices are then whole images, each thread takes whole
// slices); other batches get the output, then the moments in a pass over it. scratch:
// f32_affine_depthwise_moments_scratch_bytes(depthwise, threads) bytes.
size_t f32_affine_depthwise_moments_scratch_bytes(const F32Conv2dPacked& depthwise, int threads);
void f32_affine_depthwise_moments(const F32Conv2dPacked& depthwise, const float* input, const BnFusedClamp& affine,
                                  float dw_min, float dw_max, float* output, float* moments, float* scratch,
                                  ThreadPool* pool);

}  // namespace pcv::kernels
