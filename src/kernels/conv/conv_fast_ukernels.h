// Internal to the fast conv2d: the depthwise microkernels (f32_dwconv_hwy.cc), one list per
// Highway target, chosen in prepare_f32_conv2d_fast() and stored as function pointers.
#pragma once

#include <cstddef>

namespace pcv::kernels {

// One output row of a depthwise conv (channel multiplier 1), all out_w pixels x c channels.
struct F32DwconvRowArgs {
  const float* input;    // image rows [in_row0, in_h) of one batch element, (in_w, c) each:
                         // the whole (in_h, in_w, c) NHWC image when in_row0 is 0
  float* output;         // (out_w, c) the output row oy
  const float* weights;  // (1 + kernel_h * kernel_w, c_stride): bias row, then taps (ky, kx)
  size_t c, c_stride;    // channels; weight row stride (c rounded up to 16, zero padded)
  int in_h, in_w, out_w, oy;
  int kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  float min, max;
  int in_row0 = 0;  // first image row held at `input` (only rows the taps reach are read)
  // The input comes from memory (a batch past kStreamOutputBytes): the rows the next output
  // row reads are prefetched while this one computes.
  bool prefetch_rows = false;
  // Bytes to bring into L2 meanwhile, a share per channel block (a caller's next rows: the
  // input of the band after this one); instead of prefetch_rows's. May lie past any tensor (a
  // prefetch never faults).
  uintptr_t prefetch = 0;
  size_t prefetch_bytes = 0;
};
using F32DwconvRowFn = void (*)(const F32DwconvRowArgs& args);

struct F32DwconvUkernels {
  const char* isa = nullptr;
  F32DwconvRowFn k3x3 = nullptr;  // f32_dwconv_minmax_3x3__hwy (any stride and dilation)
  F32DwconvRowFn k5x5 = nullptr;  // f32_dwconv_minmax_5x5__hwy
  F32DwconvRowFn any = nullptr;   // f32_dwconv_minmax_kxk__hwy (run-time kernel size)
};
const F32DwconvUkernels& f32_dwconv_ukernels();

}  // namespace pcv::kernels
