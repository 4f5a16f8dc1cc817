// Training layers (train/layers.h) checked directly where a gradcheck cannot see the property:
// batch-norm statistics of data far from zero (one-pass moments must not cancel) and their
// independence from the thread count; the assigning max-pool backward against zeroing,
// scattering and masking separately, bit for bit.
#include "train/layers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/train/train_rows.h"
#include "../kernels/kernel_test_util.h"

namespace pcv::train {
namespace {

TEST(BatchNormForwardTrain, StatisticsOfOffsetDataMatchTwoPassDouble) {
  const size_t rows = 5000;
  const int c = 3;
  const float offsets[c] = {1000.f, -250.f, 0.f};
  const float spreads[c] = {0.01f, 3.f, 1e-3f};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(rows * c);
  for (size_t r = 0; r < rows; ++r) {
    for (int k = 0; k < c; ++k) x[r * c + static_cast<size_t>(k)] = offsets[k] + spreads[k] * normal(rng);
  }
  const std::vector<float> gamma(c, 1.f), beta(c, 0.f);
  std::vector<float> first_y;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    std::vector<float> y(rows * c), mean(c), invstd(c), var(c);
    batch_norm_forward_train(rows, c, x.data(), gamma.data(), beta.data(), 1e-12f, y.data(), mean.data(),
                             invstd.data(), var.data(), &pool);
    for (int k = 0; k < c; ++k) {
      double m = 0, v = 0;
      for (size_t r = 0; r < rows; ++r) m += x[r * c + static_cast<size_t>(k)];
      m /= static_cast<double>(rows);
      for (size_t r = 0; r < rows; ++r) {
        const double d = x[r * c + static_cast<size_t>(k)] - m;
        v += d * d;
      }
      v /= static_cast<double>(rows);
      EXPECT_NEAR(mean[k], m, 1e-6 * std::fabs(m) + 1e-3 * std::sqrt(v)) << "channel " << k;
      EXPECT_NEAR(var[k], v, 1e-3 * v) << "channel " << k;
    }
    // Normalized output: mean 0, variance 1 per channel (within float's own limits: channel 0's
    // mean, 1000 with a spread of 0.01, is stored to 6e-5, i.e. 0.006 of a standard deviation).
    for (int k = 0; k < c; ++k) {
      double s = 0, s2 = 0;
      for (size_t r = 0; r < rows; ++r) {
        s += y[r * c + static_cast<size_t>(k)];
        s2 += static_cast<double>(y[r * c + static_cast<size_t>(k)]) * y[r * c + static_cast<size_t>(k)];
      }
      EXPECT_NEAR(s / rows, 0.0, 1e-2) << "channel " << k;
      EXPECT_NEAR(s2 / rows, 1.0, 1e-2) << "channel " << k;
    }
    if (threads == 1) {
      first_y = y;
    } else {
      EXPECT_EQ(y, first_y) << "the thread count changed the output";
    }
  }
}

// max_pool_backward_assign writes every input gradient (windows, the columns and rows no
// window covers) in one pass: the same as zeroing dx, scattering dy through the argmax
// (max_pool_backward) and then masking by the producer's clamp over its whole output
// (f32_clamp_grad_mask), on every target's channel tails, with and without the mask.
TEST(MaxPoolBackwardAssign, EqualsZeroScatterThenMask) {
  ThreadPool pool2(2);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  struct Shape { int batch, in_h, in_w, c, k; };
  for (Shape sh : {Shape{2, 7, 9, 3, 2}, Shape{3, 8, 8, 16, 2}, Shape{1, 11, 10, 19, 3}, Shape{2, 6, 5, 40, 2}}) {
    kernels::Pool2dParams p;
    p.batch = sh.batch;
    p.in_h = sh.in_h;
    p.in_w = sh.in_w;
    p.channels = sh.c;
    p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = sh.k;
    p.out_h = sh.in_h / sh.k;
    p.out_w = sh.in_w / sh.k;
    ASSERT_TRUE(max_pool_tiles_input(p));
    const size_t in = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.channels;
    const size_t out = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.channels;
    // x: a relu6 output (0, 6 and values between, ties included), as the producer clamp leaves.
    std::vector<float> x(in), y(out), dy(out);
    for (float& v : x) v = std::clamp(std::round(dist(rng) * 32.f) / 4.f, 0.f, 6.f);
    for (float& v : dy) v = dist(rng);
    std::vector<int32_t> argmax(out);
    max_pool_forward(p, x.data(), y.data(), argmax.data(), nullptr);
    kernels::testing::for_each_hwy_target([&](const char* isa) {
      for (bool masked : {false, true}) {
        for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool2}) {
          SCOPED_TRACE(::testing::Message() << isa << " " << sh.in_h << "x" << sh.in_w << "x" << sh.c << " k" << sh.k
                                            << (masked ? " masked" : "") << (tp ? " 2 threads" : ""));
          std::vector<float> want(in, 0.f);
          max_pool_backward(p, argmax.data(), dy.data(), want.data(), nullptr);
          if (masked) kernels::f32_clamp_grad_mask(in, x.data(), 0.f, 6.f, want.data());
          std::vector<float> got(in + 1, std::nanf(""));
          got.back() = 7.f;
          max_pool_backward_assign(p, argmax.data(), dy.data(), masked ? y.data() : nullptr, 0.f, 6.f, got.data(), tp);
          EXPECT_EQ(got.back(), 7.f) << "wrote past the end";
          got.pop_back();
          size_t bad = 0;
          for (size_t i = 0; i < in; ++i) {
            if (!(got[i] == want[i]) && bad++ < 5) ADD_FAILURE() << "dx[" << i << "] = " << got[i] << ", want " << want[i];
          }
          ASSERT_EQ(bad, 0u);
        }
      }
    });
  }
}

}  // namespace
}  // namespace pcv::train
