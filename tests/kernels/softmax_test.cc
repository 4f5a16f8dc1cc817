#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"
#include "kernels/softmax/softmax.h"

namespace pcv::kernels {
namespace {

TEST(Softmax, F32Hand) {
  SoftmaxParams p{2, 3, 1.0f};
  const std::vector<float> x = {1, 2, 3, 1000, 1000, 1000};  // max-subtracted: no overflow
  std::vector<float> y(6);
  f32_softmax__ref(p, x.data(), y.data());
  EXPECT_NEAR(y[0], 0.09003057f, 1e-7);
  EXPECT_NEAR(y[1], 0.24472847f, 1e-7);
  EXPECT_NEAR(y[2], 0.66524096f, 1e-7);
  for (int j = 3; j < 6; ++j) EXPECT_NEAR(y[j], 1.0f / 3, 1e-7);
}

TEST(Softmax, F32Beta) {
  SoftmaxParams p{1, 2, 2.0f};
  const std::vector<float> x = {0, std::log(2.0f)};  // beta 2: exp(0), exp(2 ln 2) = 1, 4
  std::vector<float> y(2);
  f32_softmax__ref(p, x.data(), y.data());
  EXPECT_NEAR(y[0], 0.2f, 1e-7);
  EXPECT_NEAR(y[1], 0.8f, 1e-7);
}

TEST(Softmax, Qs8Hand) {
  QuantSoftmaxParams q;  // scale 1/256, zp -128
  q.input_scale = 1.0f;
  SoftmaxParams p4{1, 4, 1.0f};
  const std::vector<int8_t> equal4 = {5, 5, 5, 5};  // 0.25 * 256 = 64 -> -64
  std::vector<int8_t> y(4);
  qs8_softmax__ref(p4, q, equal4.data(), y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{-64, -64, -64, -64}));
  SoftmaxParams p6{1, 6, 1.0f};
  const std::vector<int8_t> equal6 = {1, 1, 1, 1, 1, 1};  // 256 / 6 = 42.67 -> 43 -> -85
  std::vector<int8_t> y6(6);
  qs8_softmax__ref(p6, q, equal6.data(), y6.data());
  EXPECT_EQ(y6, (std::vector<int8_t>(6, -85)));
  SoftmaxParams p2{1, 2, 1.0f};
  const std::vector<int8_t> equal2 = {-100, -100};  // 128 -> 0
  qs8_softmax__ref(p2, q, equal2.data(), y.data());
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], 0);
  const std::vector<int8_t> far = {127, -128};  // exp(-255) = 0: 256 -> clamp 127; -128
  qs8_softmax__ref(p2, q, far.data(), y.data());
  EXPECT_EQ(y[0], 127);
  EXPECT_EQ(y[1], -128);
  // ln(3) apart with input scale ln(3) / 10: probabilities 3/4 and 1/4 -> 192, 64.
  q.input_scale = std::log(3.0f) / 10;
  const std::vector<int8_t> x = {10, 0};
  qs8_softmax__ref(p2, q, x.data(), y.data());
  EXPECT_EQ(y[0], 192 - 128);
  EXPECT_EQ(y[1], 64 - 128);
}

TEST(Softmax, Qs8WithinOneStepOfFloat) {
  const int rows = 20, channels = 10;
  const auto x = testing::random_s8(rows * channels, 42);
  for (float beta : {1.0f, 0.5f}) {
    QuantSoftmaxParams q;
    q.input_scale = 0.05f;
    SoftmaxParams p{rows, channels, beta};
    std::vector<int8_t> y(x.size());
    qs8_softmax__ref(p, q, x.data(), y.data());
    int exact = 0;
    for (int r = 0; r < rows; ++r) {
      double m = -1e9, sum = 0;
      for (int j = 0; j < channels; ++j) m = std::fmax(m, x[r * channels + j]);
      for (int j = 0; j < channels; ++j) sum += std::exp(beta * 0.05 * (x[r * channels + j] - m));
      for (int j = 0; j < channels; ++j) {
        const double prob = std::exp(beta * 0.05 * (x[r * channels + j] - m)) / sum;
        const int32_t want = testing::ideal_q8(prob, 1.0 / 256, -128);
        EXPECT_LE(std::abs(y[r * channels + j] - want), 1);
        exact += y[r * channels + j] == want;
      }
    }
    EXPECT_GE(exact, rows * channels * 95 / 100);
  }
}

}  // namespace
}  // namespace pcv::kernels
