#include <algorithm>
#include <cstddef>
#include <limits>

#include "kernels/common/requant.h"
#include "kernels/pool/pool.h"

namespace pcv::kernels {

namespace {

// Calls fn(out_offset, in_base, y0, y1, x0, x1) per output pixel: the valid window is rows
// [y0, y1) and columns [x0, x1) of image n, whose pixel (y, x) starts at
// in_base + (y * in_w + x) * channels.
template <typename Fn>
void for_each_window(const Pool2dParams& p, Fn fn) {
  for (int n = 0; n < p.batch; ++n) {
    const size_t in_base = static_cast<size_t>(n) * p.in_h * p.in_w * p.channels;
    for (int oy = 0; oy < p.out_h; ++oy) {
      const int iy0 = oy * p.stride_h - p.pad_top;
      const int y0 = std::max(iy0, 0), y1 = std::min(iy0 + p.kernel_h, p.in_h);
      for (int ox = 0; ox < p.out_w; ++ox) {
        const int ix0 = ox * p.stride_w - p.pad_left;
        const int x0 = std::max(ix0, 0), x1 = std::min(ix0 + p.kernel_w, p.in_w);
        const size_t out_off =
            ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * p.channels;
        fn(out_off, in_base, y0, y1, x0, x1);
      }
    }
  }
}

}  // namespace

void f32_max_pool2d__ref(const Pool2dParams& p, const float* input, float act_min,
                         float act_max, float* output) {
  for_each_window(p, [&](size_t out_off, size_t in_base, int y0, int y1, int x0, int x1) {
    for (int c = 0; c < p.channels; ++c) {
      float m = -std::numeric_limits<float>::infinity();
      bool any = false;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          m = std::max(m, input[in_base + (static_cast<size_t>(y) * p.in_w + x) * p.channels + c]);
          any = true;
        }
      }
      output[out_off + c] = any ? std::min(std::max(m, act_min), act_max) : act_min;
    }
  });
}

void f32_average_pool2d__ref(const Pool2dParams& p, const float* input, float act_min,
                             float act_max, float* output) {
  for_each_window(p, [&](size_t out_off, size_t in_base, int y0, int y1, int x0, int x1) {
    const int count = std::max(y1 - y0, 0) * std::max(x1 - x0, 0);
    for (int c = 0; c < p.channels; ++c) {
      float sum = 0.0f;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          sum += input[in_base + (static_cast<size_t>(y) * p.in_w + x) * p.channels + c];
        }
      }
      output[out_off + c] =
          count > 0 ? std::min(std::max(sum / static_cast<float>(count), act_min), act_max)
                    : act_min;
    }
  });
}

void qs8_max_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                         int32_t act_max, int8_t* output) {
  for_each_window(p, [&](size_t out_off, size_t in_base, int y0, int y1, int x0, int x1) {
    for (int c = 0; c < p.channels; ++c) {
      int32_t m = -128;
      bool any = false;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          m = std::max<int32_t>(
              m, input[in_base + (static_cast<size_t>(y) * p.in_w + x) * p.channels + c]);
          any = true;
        }
      }
      output[out_off + c] = clamp_to_int8(any ? m : act_min, act_min, act_max);
    }
  });
}

void qs8_average_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                             int32_t act_max, int8_t* output) {
  qs8_average_pool2d__ref(p, input, act_min, act_max, AvgRounding::kHalfAwayFromZero, output);
}

void qs8_average_pool2d__ref(const Pool2dParams& p, const int8_t* input, int32_t act_min,
                             int32_t act_max, AvgRounding rounding, int8_t* output) {
  for_each_window(p, [&](size_t out_off, size_t in_base, int y0, int y1, int x0, int x1) {
    const int32_t count = std::max(y1 - y0, 0) * std::max(x1 - x0, 0);
    for (int c = 0; c < p.channels; ++c) {
      int32_t sum = 0;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          sum += input[in_base + (static_cast<size_t>(y) * p.in_w + x) * p.channels + c];
        }
      }
      int32_t avg = act_min;
      if (count > 0) avg = rounded_average(sum, count, rounding);
      output[out_off + c] = clamp_to_int8(avg, act_min, act_max);
    }
  });
}

}  // namespace pcv::kernels
