// Contract for bilinear resize (TFLite's RESIZE_BILINEAR reference semantics), float32.
//
// Layouts: input (batch, in_h, in_w, channels) NHWC; output (batch, out_h, out_w, channels).
// Scale per axis (float32): align_corners && out > 1 ? (in - 1) / (out - 1) : in / out.
// Source coordinate of output index o: half_pixel_centers ? (o + 0.5) * scale - 0.5
// : o * scale; lower = max(floor(src), 0), upper = min(ceil(src), in - 1), frac = src - lower
// (may be negative near the top/left edge with half_pixel_centers, where lower == upper, so
// the value is that edge pixel). Output = the usual 4-tap blend
//   v(y0,x0)(1-fy)(1-fx) + v(y1,x0) fy (1-fx) + v(y0,x1)(1-fy) fx + v(y1,x1) fy fx.
// TFLite rejects align_corners together with half_pixel_centers; prepare must too.
#pragma once

namespace pcv::kernels {

struct ResizeBilinearParams {
  int batch = 1;
  int in_h = 0, in_w = 0, channels = 0;
  int out_h = 0, out_w = 0;
  bool align_corners = false;
  bool half_pixel_centers = false;
};

void f32_resize_bilinear__ref(const ResizeBilinearParams& p, const float* input, float* output);

}  // namespace pcv::kernels
