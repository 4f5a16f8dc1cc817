// Training layers (train/layers.h) checked directly where a gradcheck cannot see the property:
// batch-norm statistics of data far from zero (one-pass moments must not cancel) and their
// independence from the thread count.
#include "train/layers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/thread_pool.h"

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

}  // namespace
}  // namespace pcv::train
