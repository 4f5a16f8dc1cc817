// Helpers for the C API tests: a model file from the zoo, test pictures, RGB -> NV21.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pocketcv/pocketcv.h"

namespace pcv::capi_testing {

// A packed RGB picture with smooth structure (gradients and a soft blob whose position
// depends on `variant`), no hard edges: chroma subsampling changes it little.
inline std::vector<uint8_t> make_rgb(int w, int h, int variant = 0) {
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  const double cx = 0.3 + 0.1 * (variant % 5), cy = 0.35 + 0.08 * (variant % 4);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double fx = (x + 0.5) / w, fy = (y + 0.5) / h;
      const double blob = std::exp(-((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)) * 10);
      const double v[3] = {30 + 190 * fx * (variant % 2 ? 1 - fy : fy) + 20 * blob, 25 + 170 * fy,
                           50 + 180 * blob * (1 + 0.1 * variant)};
      for (int c = 0; c < 3; ++c) {
        rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround(v[c]), 0L, 255L));
      }
    }
  }
  return rgb;
}

// NV21 (Y plane, then interleaved V,U at half resolution) from packed RGB, BT.601 full range
// (JFIF), the forward transform of the one the frame path inverts:
//   Y =  0.299    R + 0.587    G + 0.114    B
//   U = -0.168736 R - 0.331264 G + 0.5      B + 128
//   V =  0.5      R - 0.418688 G - 0.081312 B + 128
// Chroma is the mean over each 2x2 block (edge blocks: the pixels that exist).
struct Nv21 {
  int width = 0, height = 0;
  std::vector<uint8_t> y, vu;
  pcv_frame frame() const {
    pcv_frame f{};
    f.format = PCV_FRAME_NV21;
    f.width = width;
    f.height = height;
    f.planes[0] = {y.data(), width, 1};
    f.planes[1] = {vu.data(), 2 * ((width + 1) / 2), 2};
    return f;
  }
};

inline uint8_t to_u8(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

inline Nv21 rgb_to_nv21(const std::vector<uint8_t>& rgb, int w, int h) {
  Nv21 out;
  out.width = w;
  out.height = h;
  out.y.resize(static_cast<size_t>(w) * h);
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  out.vu.resize(static_cast<size_t>(cw) * ch * 2);
  auto px = [&](int x, int yy, int c) { return static_cast<double>(rgb[(static_cast<size_t>(yy) * w + x) * 3 + c]); };
  for (int yy = 0; yy < h; ++yy) {
    for (int x = 0; x < w; ++x) {
      out.y[static_cast<size_t>(yy) * w + x] = to_u8(0.299 * px(x, yy, 0) + 0.587 * px(x, yy, 1) + 0.114 * px(x, yy, 2));
    }
  }
  for (int j = 0; j < ch; ++j) {
    for (int i = 0; i < cw; ++i) {
      double u = 0, v = 0;
      int n = 0;
      for (int dy = 0; dy < 2; ++dy) {
        for (int dx = 0; dx < 2; ++dx) {
          const int x = 2 * i + dx, yy = 2 * j + dy;
          if (x >= w || yy >= h) continue;
          const double r = px(x, yy, 0), g = px(x, yy, 1), b = px(x, yy, 2);
          u += -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
          v += 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
          ++n;
        }
      }
      out.vu[(static_cast<size_t>(j) * cw + i) * 2 + 0] = to_u8(v / n);
      out.vu[(static_cast<size_t>(j) * cw + i) * 2 + 1] = to_u8(u / n);
    }
  }
  return out;
}

// Float copy of output `index` of a session (f32 outputs only).
inline std::vector<float> output_floats(const pcv_session* s, int index = 0) {
  pcv_tensor_info info = PCV_TENSOR_INFO_INIT;
  if (pcv_session_output(s, index, &info) != PCV_OK || info.dtype != PCV_DTYPE_F32) return {};
  const float* p = static_cast<const float*>(info.data);
  return std::vector<float>(p, p + info.size_bytes / sizeof(float));
}

}  // namespace pcv::capi_testing
