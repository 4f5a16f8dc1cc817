#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/activation/activation.h"
#include "kernels/kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::ideal_q8;

std::vector<int8_t> all_int8() {
  std::vector<int8_t> v;
  for (int i = -128; i <= 127; ++i) v.push_back(static_cast<int8_t>(i));
  return v;
}

TEST(Activation, F32Hand) {
  const std::vector<float> x = {-4, -3, -1.5f, 0, 1.5f, 3, 7};
  std::vector<float> y(x.size());
  f32_relu__ref(x.size(), x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 0, 1.5f, 3, 7}));
  f32_relu6__ref(x.size(), x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0, 0, 0, 1.5f, 3, 6}));
  f32_leaky_relu__ref(x.size(), 0.25f, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{-1, -0.75f, -0.375f, 0, 1.5f, 3, 7}));
  f32_hard_swish__ref(x.size(), x.data(), y.data());
  // x * relu6(x + 3) / 6: -4 -> 0, -3 -> 0, -1.5 -> -0.375, 0, 1.5 -> 1.125, 3 -> 3, 7 -> 7
  EXPECT_EQ(y, (std::vector<float>{-0.0f, -0.0f, -0.375f, 0, 1.125f, 3, 7}));
  f32_sigmoid__ref(x.size(), x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(y[i], 1.0 / (1.0 + std::exp(-double{x[i]})), 1e-7);
  }
  EXPECT_EQ(y[3], 0.5f);
}

TEST(Activation, Qs8ReluSameScale) {
  QuantUnaryParams q{0.1f, -5, 0.1f, -5};
  const std::vector<int8_t> x = {-128, -6, -5, -4, 127};
  std::vector<int8_t> y(x.size());
  qs8_relu__ref(x.size(), q, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-5, -5, -5, -4, 127}));
}

TEST(Activation, Qs8Relu6SameScale) {
  QuantUnaryParams q{0.1f, -5, 0.1f, -5};  // 6.0 is -5 + 60 = 55
  const std::vector<int8_t> x = {-128, 50, 55, 56, 127};
  std::vector<int8_t> y(x.size());
  qs8_relu6__ref(x.size(), q, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-5, 50, 55, 55, 55}));
}

TEST(Activation, Qs8ReluRescales) {
  QuantUnaryParams q{0.2f, 0, 0.1f, 0};  // M = 2
  const std::vector<int8_t> x = {-3, 3, 100};
  std::vector<int8_t> y(x.size());
  qs8_relu__ref(x.size(), q, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{0, 6, 127}));
  q = {0.1f, 0, 0.2f, 0};  // M = 0.5: 3 -> 1.5 -> 2, 5 -> 2.5 -> 3
  const std::vector<int8_t> x2 = {3, 5, 4};
  qs8_relu6__ref(x2.size(), q, x2.data(), y.data());
  EXPECT_EQ(y[0], 2);
  EXPECT_EQ(y[1], 3);
  EXPECT_EQ(y[2], 2);
}

TEST(Activation, Qs8LeakyReluHand) {
  QuantUnaryParams q{1.0f, 0, 1.0f, 0};
  const std::vector<int8_t> x = {-3, -4, -5, 0, 4, 127, -128};
  std::vector<int8_t> y(x.size());
  qs8_leaky_relu__ref(x.size(), q, 0.5f, x.data(), y.data());
  // Negative halves round toward +inf in SaturatingRoundingDoublingHighMul: -1.5 -> -1.
  EXPECT_EQ(y, (std::vector<int8_t>{-1, -2, -2, 0, 4, 127, -64}));
}

TEST(Activation, Qs8LeakyReluWithinOneStep) {
  QuantUnaryParams q{0.05f, 10, 0.04f, -20};
  const auto x = all_int8();
  std::vector<int8_t> y(x.size());
  qs8_leaky_relu__ref(x.size(), q, 0.2f, x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double r = q.input_scale * (x[i] - q.input_zero_point);
    const int32_t want = ideal_q8(r > 0 ? r : 0.2 * r, q.output_scale, q.output_zero_point);
    EXPECT_LE(std::abs(y[i] - want), 1) << int{x[i]};
  }
}

TEST(Activation, Qs8HardSwishWithinOneStep) {
  for (const QuantUnaryParams& q : {QuantUnaryParams{0.05f, 0, 0.04f, -10},
                                    QuantUnaryParams{6.0f / 128, -20, 6.5f / 255, -100},
                                    QuantUnaryParams{0.1f, 30, 0.2f, -50}}) {
    const auto x = all_int8();
    std::vector<int8_t> y(x.size());
    qs8_hard_swish__ref(x.size(), q, x.data(), y.data());
    int exact = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double r = q.input_scale * (x[i] - q.input_zero_point);
      const double hs = r * std::fmin(std::fmax(r + 3, 0.0), 6.0) / 6;
      const int32_t want = ideal_q8(hs, q.output_scale, q.output_zero_point);
      EXPECT_LE(std::abs(y[i] - want), 1) << int{x[i]};
      exact += y[i] == want;
    }
    EXPECT_GE(exact, 200);
    // hard_swish(0) = 0 exactly: the input zero point maps to the output zero point.
    const int8_t zero_in = static_cast<int8_t>(q.input_zero_point);
    int8_t zero_out;
    qs8_hard_swish__ref(1, q, &zero_in, &zero_out);
    EXPECT_EQ(zero_out, q.output_zero_point);
  }
}

TEST(Activation, Qs8SigmoidHandAndTable) {
  QuantUnaryParams q{0.1f, 0, 1.0f / 256, -128};
  const std::vector<int8_t> x = {0, -128, 127};
  std::vector<int8_t> y(x.size());
  qs8_sigmoid__ref(x.size(), q, x.data(), y.data());
  EXPECT_EQ(y[0], 0);     // 0.5 * 256 - 128
  EXPECT_EQ(y[1], -128);  // sigmoid(-12.8) * 256 = 0.0007 -> 0
  EXPECT_EQ(y[2], 127);   // sigmoid(12.7) * 256 = 255.999 -> 256 - 128, clamped
  const auto all = all_int8();
  std::vector<int8_t> ya(all.size());
  qs8_sigmoid__ref(all.size(), q, all.data(), ya.data());
  int8_t lut[256];
  make_qs8_sigmoid_lut(q, lut);
  std::vector<int8_t> yl(all.size());
  qs8_lut__ref(all.size(), lut, all.data(), yl.data());
  EXPECT_EQ(ya, yl);
  for (size_t i = 0; i < all.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-0.1 * all[i]));
    EXPECT_LE(std::abs(ya[i] - ideal_q8(s, 1.0 / 256, -128)), 1);
    if (i > 0) {
      EXPECT_GE(ya[i], ya[i - 1]);  // monotonic
    }
  }
}

}  // namespace
}  // namespace pcv::kernels
