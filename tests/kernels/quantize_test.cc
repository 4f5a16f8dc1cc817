#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/quantize/quantize.h"

namespace pcv::kernels {
namespace {

TEST(Quantize, RoundsHalfAwayFromZeroThenClamps) {
  const std::vector<float> x = {0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49f, 200, -200};
  std::vector<int8_t> y(x.size());
  qs8_quantize__ref(x.size(), x.data(), 1.0f, 0, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{1, -1, 2, 3, -3, 0, 127, -128}));
}

TEST(Quantize, ScaleAndZeroPoint) {
  const std::vector<float> x = {0.25f, -0.25f, 0.0f, 63.0f, 1e30f,
                                std::numeric_limits<float>::infinity()};
  std::vector<int8_t> y(x.size());
  qs8_quantize__ref(x.size(), x.data(), 0.5f, 3, y.data());
  // 0.25 / 0.5 = 0.5 -> 1, + 3 = 4; -0.5 -> -1 -> 2; 0 -> 3; 126 + 3 -> 127; huge -> 127
  EXPECT_EQ(y, (std::vector<int8_t>{4, 2, 3, 127, 127, 127}));
}

TEST(Dequantize, Int8Uint8Half) {
  const std::vector<int8_t> q = {-128, 0, 127};
  std::vector<float> y(3);
  qs8_dequantize__ref(q.size(), q.data(), 0.5f, -1, y.data());
  EXPECT_EQ(y, (std::vector<float>{-63.5f, 0.5f, 64}));
  const std::vector<uint8_t> u = {0, 128, 255};
  qu8_dequantize__ref(u.size(), u.data(), 0.25f, 128, y.data());
  EXPECT_EQ(y, (std::vector<float>{-32, 0, 31.75f}));
  const std::vector<uint16_t> h = {0x3C00, 0xC000, 0x3555, 0x7C00, 0x0001};
  std::vector<float> f(h.size());
  f16_dequantize__ref(h.size(), h.data(), f.data());
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(f[2], 0.333251953125f);
  EXPECT_TRUE(std::isinf(f[3]));
  EXPECT_EQ(f[4], std::ldexp(1.0f, -24));
}

TEST(Requantize, Int8ToInt8) {
  QuantRequantParams q = make_qs8_requantize_params(0.5f, 0, 0.25f, 1);  // M = 2
  const std::vector<int8_t> x = {3, -3, 100, -100};
  std::vector<int8_t> y(4);
  qs8_requantize__ref(x.size(), q, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{7, -5, 127, -128}));
  q = make_qs8_requantize_params(0.25f, 2, 0.5f, -1);  // M = 0.5
  const std::vector<int8_t> x2 = {5, -1, 6, 2};        // 3, -3, 4, 0 -> 1.5, -1.5, 2, 0
  qs8_requantize__ref(x2.size(), q, x2.data(), y.data());
  // 1.5 -> 2; -1.5 -> -1 (exact halves round toward +inf in the doubling high mul)
  EXPECT_EQ(y, (std::vector<int8_t>{1, -2, 1, -1}));
}

}  // namespace
}  // namespace pcv::kernels
