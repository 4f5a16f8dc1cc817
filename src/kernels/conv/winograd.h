// Winograd F(2x2, 3x3) pieces of the fast conv2d (conv_fast.h, path kWinograd): 3x3, stride 1,
// no dilation, groups 1. Each 2x2 block of outputs (a tile) comes from the 4x4 input window
// under it through three transforms (Lavin & Gray's matrices, cross-correlation as conv.h):
//   V = B^T d B   (input window d, per channel)          f32_winograd_input_transform
//   U = G g G^T   (3x3 filter g, per input x output ch)   f32_winograd_filter_transform
//   M[xi] = V[xi] * U[xi] for the 16 positions xi = 4 * row + col of the 4x4 domain: 16 GEMMs
//           (tiles x in_c) * (in_c x out_c), the multiply-adds, 16 per 2x2 outputs instead of 36
//   Y = A^T M A + bias, clamped                           f32_winograd_output_transform
// with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
// A^T = [1 1 1 0; 0 1 -1 -1].
// Numerics: the transforms add and subtract inputs (and halve filter taps), so each output is
// the direct conv's sum up to a few more roundings: |error| within a small multiple of
// eps * sum |x| * |w| over the window, not bit-identical to the direct conv.
//
// Tiles of one image are numbered t = ty * tiles_w + tx (tiles_h = ceil(out_h / 2), tiles_w =
// ceil(out_w / 2)); tile t's window starts at input (2 ty - pad_top, 2 tx - pad_left), with
// zeros outside the image, and its outputs past out_h / out_w are not stored. The transforms
// are Highway kernels (vectors over channels), dispatched per target (PCV_FORCE_ISA as gemm.h).
#pragma once

#include <cstddef>

namespace pcv::kernels {

struct WinogradInputArgs {
  const float* image = nullptr;  // (in_h, in_w, c) NHWC, one image
  int in_h = 0, in_w = 0;
  size_t c = 0;
  int pad_top = 0, pad_left = 0;
  size_t tiles_w = 0;
};
// Tiles [t0, t0 + count) of the image: v[xi * v_stride + (t - t0) * c + ch] = V[xi] of the tile,
// channel ch.
void f32_winograd_input_transform(const WinogradInputArgs& a, size_t t0, size_t count, float* v,
                                  size_t v_stride);

struct WinogradOutputArgs {
  float* image = nullptr;  // (out_h, out_w, c) NHWC, one image
  int out_h = 0, out_w = 0;
  size_t c = 0;
  size_t tiles_w = 0;
  const float* bias = nullptr;  // (c), may be nullptr
  float min = 0, max = 0;
  // A 2x2 stride-2 max pool follows: `image` is the pooled (out_h / 2, out_w / 2, c) tensor and
  // tile (ty, tx) stores only the max of its four outputs there (its pooling window).
  bool max_pool_2x2 = false;
};
// Tiles [t0, t0 + count): from m[xi * m_stride + (t - t0) * c + ch], stores the tile's 2x2
// outputs (those inside out_h x out_w) = clamp(A^T M A + bias, min, max), or their max.
void f32_winograd_output_transform(const WinogradOutputArgs& a, size_t t0, size_t count, const float* m,
                                   size_t m_stride);

// filter (out_c, 3, 3, in_c) OHWI -> u (16, in_c, out_c): u[(xi * in_c + ci) * out_c + co].
void f32_winograd_filter_transform(size_t in_c, size_t out_c, const float* filter, float* u);

}  // namespace pcv::kernels
