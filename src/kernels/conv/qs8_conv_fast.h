// Fast int8 conv2d with LiteRT's fp32 requantization (RequantMode::kFp32), prepared once
// (weights packed, per-channel constants folded), then run with caller-provided scratch and
// no allocation. Outputs are bit-identical to qs8_conv2d__ref in kFp32 mode: every path
// computes the same exact int32 accumulator and the same float requantization.
//   kGemm1x1:    1x1, stride 1, no padding, groups 1: the input is A (M = N*H*W, K = in_c).
//   kIm2colGemm: any other groups == 1 conv: conv patches gathered per row block into
//                scratch (padded taps = input zero point, i.e. contribute 0), then the GEMM.
//   kDepthwise:  groups == in_c == out_c (multiplier 1), any kernel/stride/dilation/padding:
//                qs8_dwconv_fp32__<isa>, channels in int32 lanes, taps outside the input
//                skipped; with VNNI (and weights less zero point within int8, kernel at most
//                kQs8DwVnniMaxKernel square) qs8_dwconv_vnni_fp32__avx3_dl, layout kVnniQuads.
// Other shapes (grouped, depthwise multiplier > 1) are unsupported here: callers keep the
// reference kernel. Thread safety: the packed struct is read-only after prepare.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/aligned.h"
#include "base/status.h"
#include "kernels/conv/conv.h"
#include "kernels/gemm/qs8_gemm.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

struct Qs8Conv2dPacked;

// Output rows [row_begin, row_end) of the flattened (batch * out_h) rows.
using Qs8DwconvFn = void (*)(const Qs8Conv2dPacked& k, const int8_t* input, int8_t* output,
                             size_t row_begin, size_t row_end);

inline constexpr int kQs8DwVnniMaxKernel = 8;
inline constexpr size_t kQs8DwVnniMaxTaps = 64;
inline constexpr size_t qs8_dwconv_vnni_units(size_t taps) { return taps / 4 + taps % 4; }

struct Qs8Conv2dPacked {
  enum class Path : uint8_t { kGemm1x1, kIm2colGemm, kDepthwise };
  enum class DwLayout : uint8_t { kInt32Lanes, kVnniQuads };
  Path path = Path::kGemm1x1;
  Conv2dParams params;
  int32_t input_zero_point = 0;
  Qs8GemmPackedW gemm;  // kGemm1x1, kIm2colGemm
  // kDepthwise: (w - filter_zp) as int32 [kernel_h * kernel_w][c_padded], bias int32 and
  // requant scale float [c_padded] (zero padded).
  // dw_bias_full = bias - input_zp * sum over all taps of (w - filter_zp): windows entirely
  // inside the input then need no zero-point subtraction per tap.
  // kVnniQuads instead, per block b of 64 channels (c_padded a multiple of 64) and unit u of
  // taps (qs8_dwconv_vnni_units: taps 4u..4u+3 for each whole group of 4, then one unit per
  // leftover tap), with lane 4L + i of vector r for channel 64b + 16L + 4r + i:
  //   dw_weights int8 [b][u][r = 0..3][16 lanes][4]: a group's byte k is tap 4u + k; a
  //     leftover tap's weight sits in byte r, the other 3 bytes 0 (all less filter_zp);
  //   dw_bias_full int32 and dw_scale float [b][r][16 lanes], with dw_bias_full = bias -
  //     (input_zp + 128) * sum over all taps of the weights (the input enters as x + 128);
  //   dw_pad: c_padded bytes of input_zp, read for taps outside the input (they cancel).
  DwLayout dw_layout = DwLayout::kInt32Lanes;
  size_t c_padded = 0;
  AlignedBuffer dw_weights, dw_bias, dw_bias_full, dw_scale, dw_pad;
  Qs8GemmEpilogue epilogue;
  Qs8DwconvFn dw_fn = nullptr;
  const char* ukernel_name = nullptr;
  const char* isa = nullptr;

  size_t scratch_bytes(int threads) const;
};

// q.mode must be kFp32 with q.requant_scale set (out_c entries); filter OHWI as in conv.h.
// Errors: unsupported (a shape listed above as unsupported, fixed-point mode),
// invalid_argument, out_of_memory.
Expected<Qs8Conv2dPacked> prepare_qs8_conv2d_fast(const Conv2dParams& p,
                                                  const QuantConv2dParams& q,
                                                  const int8_t* filter, const int32_t* bias);

// scratch: packed.scratch_bytes(pool ? pool->threads() : 1) bytes, 64-byte aligned (nullptr
// when 0). Output must not alias input or scratch.
void qs8_conv2d_fast(const Qs8Conv2dPacked& packed, const int8_t* input, int8_t* output,
                     void* scratch, ThreadPool* pool);

// The depthwise microkernel of the current target (tests call it through prepare).
struct Qs8DwconvUkernel {
  const char* name = nullptr;  // "qs8_dwconv_fp32__avx3_dl"
  const char* isa = nullptr;
  Qs8DwconvFn fn = nullptr;
  size_t lanes = 1;  // channels per vector (c_padded is a multiple)
  const char* vnni_name = nullptr;  // the kVnniQuads kernel, on VNNI targets only
  Qs8DwconvFn vnni_fn = nullptr;
};
const Qs8DwconvUkernel& qs8_dwconv_ukernel();

}  // namespace pcv::kernels
