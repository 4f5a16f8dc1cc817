// LiteRT-arithmetic int8 variants (XNNPACK's, see eltwise.h, activation.h, mean.h): hand-checked
// values where they differ from TFLite's reference kernels, and the vectorized ADD against its
// reference twin for every Highway target over tails.
#include <gtest/gtest.h>
#include <hwy/highway.h>
#include <hwy/targets.h>

#include <random>
#include <vector>

#include "kernels/activation/activation.h"
#include "kernels/eltwise/eltwise.h"
#include "kernels/reduce/mean.h"

namespace pcv::kernels {
namespace {

BroadcastShape flat(int n) {
  BroadcastShape s;
  const int d[1] = {n};
  EXPECT_TRUE(make_broadcast_shape(d, 1, d, 1, &s));
  return s;
}

TEST(Qs8AddXnn, ParamsAndHalvesRoundUp) {
  // r1 = 0.5, r2 = 0.25: max exponent -1 -> shift 21, m1 = 2^20, m2 = 2^19.
  const QuantAddXnnParams q = make_qs8_add_xnn_params(0.5f, 0, 0.25f, 0, 1.0f, 0);
  EXPECT_EQ(q.shift, 21);
  EXPECT_EQ(q.multiplier1, 1 << 20);
  EXPECT_EQ(q.multiplier2, 1 << 19);
  const int8_t a[] = {3, 1, -1, 1, -3, 127};
  const int8_t b[] = {1, 2, 0, 0, 0, 127};
  int8_t y[6];
  qs8_add_xnn__ref(flat(6), q, a, b, y);
  // 1.75 -> 2, 1.0 -> 1, -0.5 -> 0 (half up; TFLite's add gives -1), 0.5 -> 1, -1.5 -> -1,
  // 95.25 -> 95.
  const int8_t want[] = {2, 1, 0, 1, -1, 95};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], want[i]) << i;
  // The same inputs through TFLite's reference arithmetic: -0.5 rounds away from zero.
  const QuantAddParams t = make_qs8_add_params(0.5f, 0, 0.25f, 0, 1.0f, 0);
  int8_t z[6];
  qs8_add__ref(flat(6), t, a, b, z);
  EXPECT_EQ(z[2], -1);
}

TEST(Qs8AddXnn, VectorMatchesReferenceEveryTarget) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(-128, 127);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int n : {1, 7, 8, 9, 15, 16, 17, 31, 33, 127, 1000}) {
      std::vector<int8_t> a(static_cast<size_t>(n)), b(a.size()), y(a.size() + 1, 0x5a), r(a.size());
      for (auto& v : a) v = static_cast<int8_t>(byte(rng));
      for (auto& v : b) v = static_cast<int8_t>(byte(rng));
      const QuantAddXnnParams q = make_qs8_add_xnn_params(0.031f, byte(rng) / 2, 0.047f, byte(rng) / 2, 0.05f,
                                                          byte(rng) / 2, n % 2 ? -100 : -128, n % 3 ? 120 : 127);
      qs8_add_xnn__ref(flat(n), q, a.data(), b.data(), r.data());
      qs8_vadd_xnn(static_cast<size_t>(n), q, a.data(), b.data(), y.data());
      for (int i = 0; i < n; ++i) ASSERT_EQ(y[static_cast<size_t>(i)], r[static_cast<size_t>(i)]) << "n " << n << " i " << i << " " << hwy::TargetName(target);
      ASSERT_EQ(y.back(), 0x5a);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Qs8LeakyReluXnn, EightBitMultipliers) {
  QuantUnaryParams q;  // scales 1, zero points 0
  // alpha 0.1: negative multiplier lrintf(25.6) = 26, so d * 26 / 256 rounded half up.
  const int8_t x[] = {-10, -5, -4, 0, 7, 127, -128};
  int8_t y[7];
  qs8_leaky_relu_xnn__ref(7, q, 0.1f, x, y);
  const int8_t want[] = {-1, -1, 0, 0, 7, 127, -13};  // -128 * 26 / 256 = -13.0
  for (int i = 0; i < 7; ++i) EXPECT_EQ(y[i], want[i]) << i;
}

TEST(Qs8MeanFp32, RoundsHalfToEven) {
  MeanParams p;
  p.rank = 2;
  p.in_dims[0] = 1;
  p.in_dims[1] = 4;
  p.reduce_axis[1] = true;
  QuantMeanParams q = make_qs8_mean_params(0.1f, 0, 0.1f, 0);
  const int8_t x[] = {1, 2, 3, 4};  // mean 2.5
  int8_t y = 0;
  qs8_mean__ref(p, q, x, &y);
  EXPECT_EQ(y, 3);  // TFLite's reference: half away from zero
  q.mode = RequantMode::kFp32;
  qs8_mean__ref(p, q, x, &y);
  EXPECT_EQ(y, 2);  // XNNPACK: float(10) * 0.25, round half to even
}

}  // namespace
}  // namespace pcv::kernels
