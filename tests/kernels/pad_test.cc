#include <gtest/gtest.h>

#include <vector>

#include "kernels/pad/pad.h"

namespace pcv::kernels {
namespace {

TEST(Pad, F32TwoDims) {
  PadParams p;
  p.rank = 2;
  p.in_dims[0] = p.in_dims[1] = 2;
  p.pad_before[0] = 1;
  p.pad_after[1] = 1;
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(9);
  f32_pad__ref(p, x.data(), -1.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{-1, -1, -1, 1, 2, -1, 3, 4, -1}));
}

TEST(Pad, F32NhwcSpatial) {
  // (1, 1, 2, 2) padded H by (1, 0), W by (0, 1), C by (0, 1) -> (1, 2, 3, 3)
  PadParams p;
  p.rank = 4;
  p.in_dims[0] = 1;
  p.in_dims[1] = 1;
  p.in_dims[2] = 2;
  p.in_dims[3] = 2;
  p.pad_before[1] = 1;
  p.pad_after[2] = 1;
  p.pad_after[3] = 1;
  const std::vector<float> x = {1, 2, 3, 4};
  std::vector<float> y(18);
  f32_pad__ref(p, x.data(), 0.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 0,    // row 0 (padding)
                                   1, 2, 0, 3, 4, 0, 0, 0, 0}));  // row 1
}

TEST(Pad, Qs8UsesZeroPoint) {
  PadParams p;
  p.rank = 1;
  p.in_dims[0] = 3;
  p.pad_before[0] = 2;
  p.pad_after[0] = 1;
  const std::vector<int8_t> x = {-128, 0, 127};
  std::vector<int8_t> y(6);
  qs8_pad__ref(p, x.data(), -7, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-7, -7, -128, 0, 127, -7}));
}

}  // namespace
}  // namespace pcv::kernels
