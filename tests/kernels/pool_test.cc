#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstring>
#include <random>

#include <limits>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/pool/pool.h"

namespace pcv::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

Pool2dParams p3x3_k2_s2_pad1() {
  Pool2dParams p;
  p.in_h = p.in_w = 3;
  p.channels = 1;
  p.out_h = p.out_w = 2;
  p.kernel_h = p.kernel_w = 2;
  p.stride_h = p.stride_w = 2;
  p.pad_top = p.pad_left = 1;
  return p;
}

TEST(Pool2d, F32MaxAndAverageSkipPadding) {
  const Pool2dParams p = p3x3_k2_s2_pad1();
  const std::vector<float> in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> y(4);
  f32_max_pool2d__ref(p, in.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 3, 7, 9}));
  // Windows: {1}, {2,3}, {4,7}, {5,6,8,9}: padded taps do not count.
  f32_average_pool2d__ref(p, in.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 2.5f, 5.5f, 7}));
  f32_average_pool2d__ref(p, in.data(), 0.0f, 6.0f, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 2.5f, 5.5f, 6}));
}

TEST(Pool2d, F32Stride1ChannelsBatch) {
  Pool2dParams p;
  p.batch = 2;
  p.in_h = 2;
  p.in_w = 2;
  p.channels = 2;
  p.out_h = p.out_w = 1;
  p.kernel_h = p.kernel_w = 2;
  const std::vector<float> in = {1, -1, 2, -2, 3, -3, 4, -4,  // batch 0
                                 0, 8, 0, 8, 0, 8, 0, 9};     // batch 1
  std::vector<float> y(4);
  f32_max_pool2d__ref(p, in.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{4, -1, 0, 9}));
  f32_average_pool2d__ref(p, in.data(), -kInf, kInf, y.data());
  EXPECT_EQ(y, (std::vector<float>{2.5f, -2.5f, 0, 8.25f}));
}

// The Highway pools equal the reference bit for bit: kernel sizes, strides, padding, channel
// tails of every vector width, batches, clamps, 1 and 2 threads, every compiled target.
TEST(Pool2d, F32HwyEqualsReferenceEveryTarget) {
  ThreadPool pool2(2);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  struct Case {
    int batch, in_h, in_w, c, k, s, pad;
  };
  const Case cases[] = {{1, 9, 9, 3, 2, 2, 0},   {2, 8, 7, 17, 3, 2, 1}, {1, 12, 12, 32, 2, 2, 0},
                        {1, 7, 7, 1280, 7, 1, 0}, {1, 5, 6, 33, 3, 1, 1}, {3, 4, 4, 16, 2, 1, 0}};
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (const Case& k : cases) {
      Pool2dParams p;
      p.batch = k.batch;
      p.in_h = k.in_h;
      p.in_w = k.in_w;
      p.channels = k.c;
      p.kernel_h = p.kernel_w = k.k;
      p.stride_h = p.stride_w = k.s;
      p.pad_top = p.pad_left = k.pad;
      p.out_h = (k.in_h + 2 * k.pad - k.k) / k.s + 1;
      p.out_w = (k.in_w + 2 * k.pad - k.k) / k.s + 1;
      std::vector<float> x(static_cast<size_t>(k.batch) * k.in_h * k.in_w * k.c);
      for (float& v : x) v = u(rng);
      const size_t out = static_cast<size_t>(k.batch) * p.out_h * p.out_w * k.c;
      for (bool max : {true, false}) {
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool2}) {
          const float lo = max ? -kInf : -1.f, hi = max ? 3.f : kInf;
          std::vector<float> want(out), got(out, 777.f);
          if (max) {
            f32_max_pool2d__ref(p, x.data(), lo, hi, want.data());
            f32_max_pool2d__hwy(p, x.data(), lo, hi, got.data(), tp);
          } else {
            f32_average_pool2d__ref(p, x.data(), lo, hi, want.data());
            f32_average_pool2d__hwy(p, x.data(), lo, hi, got.data(), tp);
          }
          ASSERT_EQ(std::memcmp(want.data(), got.data(), out * sizeof(float)), 0)
              << (max ? "max" : "avg") << " c=" << k.c << " k=" << k.k << " s=" << k.s << " pad=" << k.pad;
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Pool2d, Qs8AverageRoundsHalfAwayFromZero) {
  Pool2dParams p;
  p.in_h = 1;
  p.in_w = 8;
  p.channels = 1;
  p.out_h = 1;
  p.out_w = 4;
  p.kernel_h = 1;
  p.kernel_w = 2;
  p.stride_h = 1;
  p.stride_w = 2;
  const std::vector<int8_t> in = {1, 2, -1, -2, 1, 1, -128, -127};
  std::vector<int8_t> y(4);
  qs8_average_pool2d__ref(p, in.data(), -128, 127, y.data());
  // 1.5 -> 2, -1.5 -> -2, 1, -127.5 -> -128
  EXPECT_EQ(y, (std::vector<int8_t>{2, -2, 1, -128}));
  qs8_average_pool2d__ref(p, in.data(), -1, 1, y.data());  // fused clamp
  EXPECT_EQ(y, (std::vector<int8_t>{1, -1, 1, -1}));
}

TEST(Pool2d, Qs8AverageQuarterValuesAndPadding) {
  const Pool2dParams p = p3x3_k2_s2_pad1();
  const std::vector<int8_t> in = {-1, -1, -2, -1, 1, 2, -2, 1, 1};
  std::vector<int8_t> y(4);
  qs8_average_pool2d__ref(p, in.data(), -128, 127, y.data());
  // {-1} -> -1; {-1,-2} = -1.5 -> -2; {-1,-2} -> -2; {1,2,1,1} = 1.25 -> 1
  EXPECT_EQ(y, (std::vector<int8_t>{-1, -2, -2, 1}));
  qs8_max_pool2d__ref(p, in.data(), -128, 127, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-1, -1, -1, 2}));
  qs8_max_pool2d__ref(p, in.data(), 0, 127, y.data());  // relu as clamp
  EXPECT_EQ(y, (std::vector<int8_t>{0, 0, 0, 2}));
}

}  // namespace
}  // namespace pcv::kernels
