#include <gtest/gtest.h>
#include <random>
#include <hwy/targets.h>

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

// The vectorized quantize equals the reference bit for bit: exact halves (away from zero), the
// float just below a half (where rounding v + 0.5 would go wrong), saturation, infinities,
// NaN, denormals, and random values over every tail length, on every compiled target.
TEST(Quantize, Qs8HwyEqualsReference) {
  std::vector<float> x = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 1e9f, -1e9f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), 1e-40f, -0.0f, 126.5f, -127.5f, 8388609.f};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-300.f, 300.f);
  for (int i = 0; i < 1000; ++i) x.push_back(u(rng));
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (float scale : {1.0f, 0.5f, 0.0392157f, 3.7f}) {
      for (int32_t zp : {0, -3, 17, -128}) {
        for (size_t n : {x.size(), size_t{1}, size_t{15}, size_t{17}, size_t{33}}) {
          std::vector<int8_t> want(n), got(n, 99);
          qs8_quantize__ref(n, x.data(), scale, zp, want.data());
          qs8_quantize__hwy(n, x.data(), scale, zp, got.data());
          ASSERT_EQ(want, got) << "scale " << scale << " zp " << zp << " n " << n;
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The vectorized quantize multiplies by 1 / scale unless a quotient is next to a half-integer:
// inputs at k + 0.5 quotients and a few ulps either side, over scales whose inverse is inexact,
// and scales too small or too large for a normal inverse.
TEST(Quantize, Qs8HwyEqualsReferenceNextToHalves) {
  std::vector<float> x;
  for (float scale : {0.0392157f, 0.1f, 3.7f, 0.007843138f, 1e-39f, 3e38f, 1.0f / 3}) {
    x.clear();
    for (int k = -300; k <= 300; ++k) {
      float v = (static_cast<float>(k) + 0.5f) * scale;
      for (int u = 0; u < 3; ++u) v = std::nextafter(v, -std::numeric_limits<float>::infinity());
      for (int u = 0; u < 7; ++u, v = std::nextafter(v, std::numeric_limits<float>::infinity())) x.push_back(v);
    }
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      SCOPED_TRACE(hwy::TargetName(target));
      for (int32_t zp : {0, -128, 100}) {
        std::vector<int8_t> want(x.size()), got(x.size(), 99);
        qs8_quantize__ref(x.size(), x.data(), scale, zp, want.data());
        qs8_quantize__hwy(x.size(), x.data(), scale, zp, got.data());
        ASSERT_EQ(want, got) << "scale " << scale << " zp " << zp;
      }
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

}  // namespace
}  // namespace pcv::kernels
