#include <gtest/gtest.h>

#include <vector>

#include "kernels/batch_norm/batch_norm.h"

namespace pcv::kernels {
namespace {

TEST(BatchNorm, F32Hand) {
  BatchNormParams p;
  p.outer_size = 2;
  p.channels = 2;
  p.epsilon = 1.0f;
  const std::vector<float> x = {1, 4, -3, 2};
  const std::vector<float> mean = {0, 2}, var = {3, 0}, gamma = {2, 3}, beta = {1, -1};
  std::vector<float> y(4);
  // sqrt(var + eps) = {2, 1}
  f32_batch_norm__ref(p, x.data(), mean.data(), var.data(), gamma.data(), beta.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{2, 5, -2, -1}));
}

TEST(BatchNorm, F32InPlace) {
  BatchNormParams p;
  p.outer_size = 1;
  p.channels = 3;
  p.epsilon = 0.0f;
  std::vector<float> x = {5, 6, 7};
  const std::vector<float> mean = {1, 2, 3}, var = {4, 16, 1}, gamma = {1, 1, 1},
                           beta = {0, 0, 0.5f};
  f32_batch_norm__ref(p, x.data(), mean.data(), var.data(), gamma.data(), beta.data(), x.data());
  EXPECT_EQ(x, (std::vector<float>{2, 1, 4.5f}));
}

}  // namespace
}  // namespace pcv::kernels
