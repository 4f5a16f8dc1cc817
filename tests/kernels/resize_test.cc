#include <gtest/gtest.h>

#include <vector>

#include "kernels/resize/resize.h"

namespace pcv::kernels {
namespace {

// Input 2x2 [[0, 1], [2, 3]] = 2y + x: bilinear output is 2 * ey + ex where ey, ex are the
// effective (clamped) source coordinates, which makes every case hand-checkable.
std::vector<float> run(int out_h, int out_w, bool align, bool half) {
  ResizeBilinearParams p;
  p.in_h = p.in_w = 2;
  p.channels = 1;
  p.out_h = out_h;
  p.out_w = out_w;
  p.align_corners = align;
  p.half_pixel_centers = half;
  const std::vector<float> x = {0, 1, 2, 3};
  std::vector<float> y(static_cast<size_t>(out_h) * out_w);
  f32_resize_bilinear__ref(p, x.data(), y.data());
  return y;
}

std::vector<float> expected(const std::vector<float>& ey, const std::vector<float>& ex) {
  std::vector<float> r;
  for (float a : ey)
    for (float b : ex) r.push_back(2 * a + b);
  return r;
}

TEST(ResizeBilinear, DefaultUpscale) {
  // scale 0.5: src 0, 0.5, 1, 1.5 -> last clamps to the edge (1)
  EXPECT_EQ(run(4, 4, false, false), expected({0, 0.5f, 1, 1}, {0, 0.5f, 1, 1}));
}

TEST(ResizeBilinear, AlignCorners) {
  // scale (2-1)/(3-1) = 0.5: src 0, 0.5, 1
  EXPECT_EQ(run(3, 3, true, false), expected({0, 0.5f, 1}, {0, 0.5f, 1}));
}

TEST(ResizeBilinear, HalfPixelCenters) {
  // src = (o + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> effective 0, 0.25, 0.75, 1
  EXPECT_EQ(run(4, 4, false, true), expected({0, 0.25f, 0.75f, 1}, {0, 0.25f, 0.75f, 1}));
}

TEST(ResizeBilinear, DownscaleAndChannels) {
  ResizeBilinearParams p;
  p.in_h = 1;
  p.in_w = 4;
  p.channels = 2;
  p.out_h = 1;
  p.out_w = 2;  // scale 2: src 0, 2
  const std::vector<float> x = {0, 10, 1, 11, 2, 12, 3, 13};
  std::vector<float> y(4);
  f32_resize_bilinear__ref(p, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 10, 2, 12}));
}

}  // namespace
}  // namespace pcv::kernels
