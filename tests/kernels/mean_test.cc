#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/reduce/mean.h"

namespace pcv::kernels {
namespace {

MeanParams nhwc_hw(int n, int h, int w, int c) {
  MeanParams p;
  p.rank = 4;
  p.in_dims[0] = n;
  p.in_dims[1] = h;
  p.in_dims[2] = w;
  p.in_dims[3] = c;
  p.reduce_axis[1] = p.reduce_axis[2] = true;
  return p;
}

TEST(Mean, F32GlobalAveragePool) {
  const MeanParams p = nhwc_hw(2, 2, 2, 2);
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 4, 40,  // batch 0
                                -1, 0, -1, 0, -1, 0, -1, 1};  // batch 1
  std::vector<float> y(4);
  f32_mean__ref(p, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{2.5f, 25, -1, 0.25f}));
}

TEST(Mean, F32OtherAxes) {
  // (2, 3) reduced over axis 0 -> (1, 3); over axis 1 -> (2, 1)
  MeanParams p;
  p.rank = 2;
  p.in_dims[0] = 2;
  p.in_dims[1] = 3;
  p.reduce_axis[0] = true;
  const std::vector<float> x = {1, 2, 3, 5, 6, 7};
  std::vector<float> y(3);
  f32_mean__ref(p, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{3, 4, 5}));
  p.reduce_axis[0] = false;
  p.reduce_axis[1] = true;
  f32_mean__ref(p, x.data(), y.data());
  EXPECT_EQ(y[0], 2);
  EXPECT_EQ(y[1], 6);
  // All axes of a rank-3 tensor, with a middle axis kept in another case.
  MeanParams q;
  q.rank = 3;
  q.in_dims[0] = 2;
  q.in_dims[1] = 2;
  q.in_dims[2] = 2;
  q.reduce_axis[0] = q.reduce_axis[2] = true;  // keep axis 1
  const std::vector<float> z = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> yz(2);
  f32_mean__ref(q, z.data(), yz.data());
  EXPECT_EQ(yz, (std::vector<float>{(1 + 2 + 5 + 6) / 4.0f, (3 + 4 + 7 + 8) / 4.0f}));
}

// A mean over `rank` dims with the axes marked in `reduce`; in/out element counts.
struct MeanCase {
  int rank, dims[4];
  bool reduce[4];
  MeanParams params(size_t* in, size_t* out) const {
    MeanParams p;
    p.rank = rank;
    *in = *out = 1;
    for (int i = 0; i < rank; ++i) {
      p.in_dims[i] = dims[i];
      p.reduce_axis[i] = reduce[i];
      *in *= static_cast<size_t>(dims[i]);
      if (!reduce[i]) *out *= static_cast<size_t>(dims[i]);
    }
    return p;
  }
};

// f32_mean__hwy against the reference, bit for bit: contiguous axis runs of several shapes
// (channel tails of every vector width, one-row and one-channel cases) and a non-contiguous
// axis set (the reference path).
TEST(Mean, F32HwyEqualsReferenceBitForBit) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  const MeanCase cases[] = {
      {4, {1, 7, 7, 1280}, {false, true, true, false}}, {4, {2, 3, 5, 67}, {false, true, true, false}},
      {4, {1, 1, 1, 17}, {false, true, true, false}},   {4, {3, 4, 4, 1}, {false, true, true, false}},
      {3, {5, 9, 33}, {true, false, false}},            {3, {5, 9, 33}, {false, false, true}},
      {4, {2, 3, 4, 5}, {true, false, true, false}},    {2, {129, 48}, {true, true}},
  };
  for (const MeanCase& c : cases) {
    size_t in, out;
    const MeanParams p = c.params(&in, &out);
    std::vector<float> x(in);
    for (float& v : x) v = d(rng);
    std::vector<float> want(out), got(out, 12345.f);
    f32_mean__ref(p, x.data(), want.data());
    f32_mean__hwy(p, x.data(), got.data());
    EXPECT_EQ(std::memcmp(want.data(), got.data(), out * sizeof(float)), 0)
        << "dims " << c.dims[0] << "x" << c.dims[1] << "x" << c.dims[2] << "x" << c.dims[3];
  }
}

// qs8_mean__hwy equals the reference for both requant modes and several axis runs.
TEST(Mean, Qs8HwyEqualsReference) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> u(-128, 127);
  const MeanCase cases[] = {{4, {1, 7, 7, 1280}, {false, true, true, false}}, {4, {2, 3, 5, 67}, {false, true, true, false}},
                        {3, {5, 9, 33}, {false, false, true}}, {4, {2, 3, 4, 5}, {true, false, true, false}}};
  for (const MeanCase& c : cases) {
    size_t in, out;
    const MeanParams p = c.params(&in, &out);
    std::vector<int8_t> x(in);
    for (int8_t& v : x) v = static_cast<int8_t>(u(rng));
    for (RequantMode mode : {RequantMode::kFixedPoint, RequantMode::kFp32}) {
      QuantMeanParams q = make_qs8_mean_params(0.05f, -3, 0.021f, 5);
      q.mode = mode;
      std::vector<int8_t> want(out), got(out, 99);
      qs8_mean__ref(p, q, x.data(), want.data());
      qs8_mean__hwy(p, q, x.data(), got.data());
      EXPECT_EQ(want, got) << c.dims[0] << "x" << c.dims[1] << "x" << c.dims[2] << "x" << c.dims[3];
    }
  }
}

TEST(Mean, Qs8SameQuantizationRounding) {
  const MeanParams p = nhwc_hw(1, 2, 2, 3);
  const QuantMeanParams q = make_qs8_mean_params(0.5f, -1, 0.5f, -1);
  // channel 0: x - zp = 1,2,3,3 -> 9/4 = 2.25 -> 2 -> +zp = 1
  // channel 1: x - zp = -1,-1,-2,-2 -> -1.5 -> -2 (half away from zero) -> -3
  // channel 2: x - zp = 1,1,0,0 -> 0.5 -> 1 -> 0
  const std::vector<int8_t> x = {0, -2, 0, 1, -2, 0, 2, -3, -1, 2, -3, -1};
  std::vector<int8_t> y(3);
  qs8_mean__ref(p, q, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{1, -3, 0}));
}

TEST(Mean, Qs8Rescales) {
  const MeanParams p = nhwc_hw(1, 1, 4, 1);
  const QuantMeanParams q = make_qs8_mean_params(0.5f, 0, 0.25f, 10);  // M = 2
  const std::vector<int8_t> x = {1, 2, 3, 5};  // mean 2.75 * 2 = 5.5 -> 6, + 10
  int8_t y;
  qs8_mean__ref(p, q, x.data(), &y);
  EXPECT_EQ(y, 16);
  const std::vector<int8_t> big = {127, 127, 127, 127};  // 254 + 10 -> clamp
  qs8_mean__ref(p, q, big.data(), &y);
  EXPECT_EQ(y, 127);
}

}  // namespace
}  // namespace pcv::kernels
