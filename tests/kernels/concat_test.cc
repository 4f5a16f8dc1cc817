#include <gtest/gtest.h>

#include <vector>

#include "kernels/concat/concat.h"

namespace pcv::kernels {
namespace {

TEST(Concat, F32Axis1) {
  // (2, 2) ++ (2, 1) along axis 1 -> (2, 3)
  const std::vector<float> a = {1, 2, 3, 4}, b = {10, 20};
  const float* inputs[2] = {a.data(), b.data()};
  const int axis_dims[2] = {2, 1};
  ConcatParams p{2, axis_dims, 2, 1};
  std::vector<float> y(6);
  f32_concat__ref(p, inputs, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 2, 10, 3, 4, 20}));
}

TEST(Concat, F32ChannelsNhwc) {
  // (1, 2, 1, 1) ++ (1, 2, 1, 2) along C: outer = 2 pixels, inner = 1
  const std::vector<float> a = {1, 2}, b = {10, 11, 20, 21};
  const float* inputs[2] = {a.data(), b.data()};
  const int axis_dims[2] = {1, 2};
  ConcatParams p{2, axis_dims, 2, 1};
  std::vector<float> y(6);
  f32_concat__ref(p, inputs, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 10, 11, 2, 20, 21}));
}

TEST(Concat, F32Axis0WithInner) {
  const std::vector<float> a = {1, 2, 3}, b = {4, 5, 6, 7, 8, 9};
  const float* inputs[2] = {a.data(), b.data()};
  const int axis_dims[2] = {1, 2};
  ConcatParams p{2, axis_dims, 1, 3};
  std::vector<float> y(9);
  f32_concat__ref(p, inputs, y.data());
  EXPECT_EQ(y, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(Concat, Qs8RequantizesOnlyDifferingInputs) {
  const std::vector<int8_t> a = {-128, 0, 127};        // same quantization as the output
  const std::vector<int8_t> b = {1, -1, 3, -128, 80};  // scale 0.75, zp 0
  const int8_t* inputs[2] = {a.data(), b.data()};
  const int axis_dims[2] = {3, 5};
  ConcatParams p{2, axis_dims, 1, 1};
  const float scales[2] = {0.5f, 0.75f};
  const int32_t zps[2] = {1, 0};
  QuantConcatParams q{scales, zps, 0.5f, 1};
  std::vector<int8_t> y(8);
  qs8_concat__ref(p, q, inputs, y.data());
  // b: x * 1.5 rounded half away from zero, + 1: 1.5 -> 2 (3), -1.5 -> -2 (-1), 4.5 -> 5 (6),
  // -192 -> -128 (clamped), 120 + 1 = 121.
  EXPECT_EQ(y, (std::vector<int8_t>{-128, 0, 127, 3, -1, 6, -128, 121}));
}

TEST(Concat, Qs8ZeroPointShift) {
  // (2) ++ (1) along axis 0: only the zero points differ.
  const std::vector<int8_t> a = {10, 20}, b = {-5};
  const int8_t* inputs[2] = {a.data(), b.data()};
  const int axis_dims[2] = {2, 1};
  ConcatParams p{2, axis_dims, 1, 1};
  const float scales[2] = {0.1f, 0.1f};
  const int32_t zps[2] = {0, -5};  // b's -5 is real 0 -> the output zero point 3
  QuantConcatParams q{scales, zps, 0.1f, 3};
  std::vector<int8_t> y(3);
  qs8_concat__ref(p, q, inputs, y.data());
  EXPECT_EQ(y, (std::vector<int8_t>{13, 23, 3}));
}

}  // namespace
}  // namespace pcv::kernels
