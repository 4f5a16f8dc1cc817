#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/eltwise/eltwise.h"
#include "kernels/kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::ideal_q8;

constexpr float kInf = std::numeric_limits<float>::infinity();

BroadcastShape shape(std::vector<int> a, std::vector<int> b) {
  BroadcastShape s;
  EXPECT_TRUE(make_broadcast_shape(a.data(), static_cast<int>(a.size()), b.data(),
                                   static_cast<int>(b.size()), &s));
  return s;
}

TEST(Broadcast, RightAlignedShapes) {
  BroadcastShape s = shape({2, 3, 4, 5}, {5});
  EXPECT_EQ(s.rank, 4);
  EXPECT_EQ(s.b_dims[0], 1);
  EXPECT_EQ(s.b_dims[3], 5);
  EXPECT_EQ(s.out_dims[2], 4);
  s = shape({3, 1}, {1, 4});
  EXPECT_EQ(s.out_dims[0], 3);
  EXPECT_EQ(s.out_dims[1], 4);
  const int a[2] = {3, 4}, b[1] = {3};
  EXPECT_FALSE(make_broadcast_shape(a, 2, b, 1, &s));
  const int big[6] = {1, 1, 1, 1, 1, 1};
  EXPECT_FALSE(make_broadcast_shape(big, 6, b, 1, &s));
}

TEST(Add, F32SameShapeAndClamp) {
  const BroadcastShape s = shape({4}, {4});
  const std::vector<float> a = {1, -2, 3, 5}, b = {0.5f, 1, -4, 2};
  std::vector<float> y(4);
  f32_add__ref(s, a.data(), b.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{1.5f, -1, -1, 7}));
  f32_add__ref(s, a.data(), b.data(), 0.0f, 6.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{1.5f, 0, 0, 6}));
}

TEST(Add, F32BroadcastNhwcPlusC) {
  // (1, 2, 2, 3) + (3)
  const BroadcastShape s = shape({1, 2, 2, 3}, {3});
  std::vector<float> a(12);
  for (int i = 0; i < 12; ++i) a[i] = static_cast<float>(i);
  const std::vector<float> b = {100, 200, 300};
  std::vector<float> y(12);
  f32_add__ref(s, a.data(), b.data(), -kInf, kInf, y.data());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(y[i], i + b[i % 3]);
}

TEST(Add, F32BroadcastN11C) {
  // (2, 2, 2, 2) + (2, 1, 1, 2): per batch and channel.
  const BroadcastShape s = shape({2, 2, 2, 2}, {2, 1, 1, 2});
  std::vector<float> a(16, 1.0f);
  const std::vector<float> b = {10, 20, 30, 40};
  std::vector<float> y(16);
  f32_add__ref(s, a.data(), b.data(), -kInf, kInf, y.data());
  for (int n = 0; n < 2; ++n)
    for (int hw = 0; hw < 4; ++hw)
      for (int c = 0; c < 2; ++c) EXPECT_EQ(y[(n * 4 + hw) * 2 + c], 1 + b[n * 2 + c]);
}

TEST(Add, F32BroadcastBothSidesRank5) {
  // (2, 1, 3, 1, 2) + (4, 1, 2) -> (2, 4, 3, 1, 2)... right-aligned: b = (1, 1, 4, 1, 2)
  const BroadcastShape s = shape({2, 1, 3, 1, 2}, {3, 1, 2});
  EXPECT_EQ(s.rank, 5);
  const BroadcastShape s2 = shape({2, 1, 1, 2}, {3, 1});  // (2,1,1,2) + (1,1,3,1) -> (2,1,3,2)
  const std::vector<float> a = {1, 2, 3, 4}, b = {10, 20, 30};
  std::vector<float> y(12);
  f32_add__ref(s2, a.data(), b.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34}));
}

TEST(Mul, F32Broadcast) {
  const BroadcastShape s = shape({2, 3}, {2, 1});
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {2, -1};
  std::vector<float> y(6);
  f32_mul__ref(s, a.data(), b.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{2, 4, 6, -4, -5, -6}));
  f32_mul__ref(s, a.data(), b.data(), -5.0f, 5.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{2, 4, 5, -4, -5, -5}));
}

TEST(Add, Qs8ParamsFollowTflite) {
  const QuantAddParams q = make_qs8_add_params(0.5f, 1, 0.25f, -1, 0.5f, 2);
  EXPECT_EQ(q.left_shift, 20);
  // twice_max = 1: M1 = 0.5, M2 = 0.25, Mo = 1 / (2^20 * 0.5) = 2^-19
  EXPECT_EQ(q.input1_multiplier.multiplier, 1 << 30);
  EXPECT_EQ(q.input1_multiplier.shift, 0);
  EXPECT_EQ(q.input2_multiplier.multiplier, 1 << 30);
  EXPECT_EQ(q.input2_multiplier.shift, -1);
  EXPECT_EQ(q.output_multiplier.multiplier, 1 << 30);
  EXPECT_EQ(q.output_multiplier.shift, -18);
}

TEST(Add, Qs8ExactSmallCases) {
  const BroadcastShape s = shape({3}, {3});
  // Same scale 0.5 everywhere: y = (a - 1) + (b + 1) + 2.
  QuantAddParams q = make_qs8_add_params(0.5f, 1, 0.5f, -1, 0.5f, 2);
  const std::vector<int8_t> a = {3, 1, 127}, b = {5, -1, 127};
  std::vector<int8_t> y(3);
  qs8_add__ref(s, q, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{10, 2, 127}));  // 2 + 6 + 2; 0 + 0 + 2; saturates
  // Output scale 1.0: (a - 1) * 0.5 + (b + 1) * 0.5 = 4 -> 4 + 2 = 6 for (3, 5);
  // (2, -1): 1 * 0.5 = 0.5 -> 1 -> 3.
  q = make_qs8_add_params(0.5f, 1, 0.5f, -1, 1.0f, 2);
  const std::vector<int8_t> a2 = {3, 2, 0}, b2 = {5, -1, -1};
  qs8_add__ref(s, q, a2.data(), b2.data(), y.data());
  // last: (0 - 1) * 0.5 = -0.5; the rescale is exact until the final RoundingDivideByPOT by
  // 2^19, which rounds half away from zero: -1, + 2 = 1.
  EXPECT_EQ(y, (std::vector<int8_t>{6, 3, 1}));
  // Fused clamp.
  q = make_qs8_add_params(0.5f, 1, 0.5f, -1, 0.5f, 2, -128, 5);
  qs8_add__ref(s, q, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{5, 2, 5}));
}

TEST(Add, Qs8BroadcastN11C) {
  // (1, 2, 2, 2) + (1, 1, 1, 2), all scales 1, zero points 0.
  const BroadcastShape s = shape({1, 2, 2, 2}, {1, 1, 1, 2});
  const QuantAddParams q = make_qs8_add_params(1.0f, 0, 1.0f, 0, 1.0f, 0);
  const std::vector<int8_t> a = {1, 2, 3, 4, 5, 6, 7, 8}, b = {10, -10};
  std::vector<int8_t> y(8);
  qs8_add__ref(s, q, a.data(), b.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{11, -8, 13, -6, 15, -4, 17, -2}));
}

TEST(Add, Qs8AllPairsWithinOneStep) {
  const BroadcastShape s = shape({256, 1}, {1, 256});
  std::vector<int8_t> a(256), b(256);
  for (int i = 0; i < 256; ++i) a[i] = b[i] = static_cast<int8_t>(i - 128);
  const float s1 = 0.07f, s2 = 0.023f, so = 0.11f;
  const int32_t z1 = -10, z2 = 25, zo = 3;
  const QuantAddParams q = make_qs8_add_params(s1, z1, s2, z2, so, zo);
  std::vector<int8_t> y(256 * 256);
  qs8_add__ref(s, q, a.data(), b.data(), y.data());
  int exact = 0;
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; ++j) {
      const double real = s1 * (a[i] - z1) + s2 * (b[j] - z2);
      const int32_t want = ideal_q8(real, so, zo);
      ASSERT_LE(std::abs(y[i * 256 + j] - want), 1) << i << "," << j;
      exact += y[i * 256 + j] == want;
    }
  EXPECT_GE(exact, 256 * 256 * 99 / 100);
}

TEST(Mul, Qs8ExactSmallCases) {
  const BroadcastShape s = shape({3}, {1});
  // M = 0.5 * 0.25 / 0.125 = 1
  QuantMulParams q = make_qs8_mul_params(0.5f, 1, 0.25f, 2, 0.125f, 5);
  EXPECT_EQ(q.output_multiplier.multiplier, 1 << 30);
  EXPECT_EQ(q.output_multiplier.shift, 1);
  const std::vector<int8_t> a = {3, 1, -1};
  const int8_t b = -2;  // b - zp = -4
  std::vector<int8_t> y(3);
  qs8_mul__ref(s, q, a.data(), &b, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-3, 5, 13}));  // -8 + 5, 0 + 5, 8 + 5
  // M = 0.5: products -8, 0, 8 -> -4, 0, 4; and 3 * 1 = 3 -> 1.5 -> 2; -3 -> -1.5 -> -1.
  q = make_qs8_mul_params(0.5f, 1, 0.25f, 2, 0.25f, 5);
  qs8_mul__ref(s, q, a.data(), &b, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{1, 5, 9}));
  const int8_t b3 = 3;  // b - zp = 1
  const std::vector<int8_t> a3 = {4, -2, 1};  // a - zp = 3, -3, 0
  qs8_mul__ref(s, q, a3.data(), &b3, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{7, 4, 5}));
}

TEST(Mul, Qs8AllPairsWithinOneStep) {
  const BroadcastShape s = shape({256, 1}, {1, 256});
  std::vector<int8_t> a(256), b(256);
  for (int i = 0; i < 256; ++i) a[i] = b[i] = static_cast<int8_t>(i - 128);
  const float s1 = 0.05f, s2 = 0.031f, so = 0.4f;
  const int32_t z1 = 7, z2 = -3, zo = -11;
  const QuantMulParams q = make_qs8_mul_params(s1, z1, s2, z2, so, zo);
  std::vector<int8_t> y(256 * 256);
  qs8_mul__ref(s, q, a.data(), b.data(), y.data());
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; ++j) {
      const double real = s1 * (a[i] - z1) * s2 * (b[j] - z2);
      ASSERT_LE(std::abs(y[i * 256 + j] - ideal_q8(real, so, zo)), 1) << i << "," << j;
    }
}

}  // namespace
}  // namespace pcv::kernels
