#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernels/resize/resize.h"

namespace pcv::kernels {

namespace {

float axis_scale(int in, int out, bool align_corners) {
  return align_corners && out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                                  : static_cast<float>(in) / static_cast<float>(out);
}

void source_coord(int o, float scale, bool half_pixel_centers, int in, float* src, int* lower,
                  int* upper) {
  *src = half_pixel_centers ? (static_cast<float>(o) + 0.5f) * scale - 0.5f
                            : static_cast<float>(o) * scale;
  *lower = std::max(static_cast<int>(std::floor(*src)), 0);
  *upper = std::min(static_cast<int>(std::ceil(*src)), in - 1);
}

}  // namespace

void f32_resize_bilinear__ref(const ResizeBilinearParams& p, const float* input, float* output) {
  const float sy = axis_scale(p.in_h, p.out_h, p.align_corners);
  const float sx = axis_scale(p.in_w, p.out_w, p.align_corners);
  const size_t C = static_cast<size_t>(p.channels);
  for (int n = 0; n < p.batch; ++n) {
    const float* img = input + static_cast<size_t>(n) * p.in_h * p.in_w * C;
    for (int oy = 0; oy < p.out_h; ++oy) {
      float fy;
      int y0, y1;
      source_coord(oy, sy, p.half_pixel_centers, p.in_h, &fy, &y0, &y1);
      const float wy = fy - static_cast<float>(y0);
      for (int ox = 0; ox < p.out_w; ++ox) {
        float fx;
        int x0, x1;
        source_coord(ox, sx, p.half_pixel_centers, p.in_w, &fx, &x0, &x1);
        const float wx = fx - static_cast<float>(x0);
        const float* v00 = img + (static_cast<size_t>(y0) * p.in_w + x0) * C;
        const float* v01 = img + (static_cast<size_t>(y0) * p.in_w + x1) * C;
        const float* v10 = img + (static_cast<size_t>(y1) * p.in_w + x0) * C;
        const float* v11 = img + (static_cast<size_t>(y1) * p.in_w + x1) * C;
        float* out = output + ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * C;
        for (size_t c = 0; c < C; ++c) {
          out[c] = v00[c] * (1 - wy) * (1 - wx) + v10[c] * wy * (1 - wx) +
                   v01[c] * (1 - wy) * wx + v11[c] * wy * wx;
        }
      }
    }
  }
}

}  // namespace pcv::kernels
