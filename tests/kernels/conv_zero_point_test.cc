// int8 conv / fully_connected with a per-tensor filter zero point (uint8 models read as int8)
// equal the symmetric kernels on pre-shifted weights.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/fully_connected/fully_connected.h"

namespace pcv::kernels {
namespace {

TEST(QuantZeroPoint, ConvFilterZeroPointEqualsShiftedWeights) {
  Conv2dParams p;
  p.in_h = p.in_w = 6;
  p.in_c = 4;
  p.out_c = 4;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.pad_top = p.pad_left = 1;
  p.out_h = p.out_w = 3;
  p.groups = 4;  // depthwise, as in MobileNet
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(-100, 100);
  std::vector<int8_t> x(6 * 6 * 4), w(4 * 3 * 3), w_shift(w.size());
  for (auto& v : x) v = static_cast<int8_t>(d(rng));
  const int32_t zp = 17;
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = static_cast<int8_t>(d(rng));
    w_shift[i] = static_cast<int8_t>(w[i] - zp);
  }
  std::vector<int32_t> bias = {10, -20, 30, -40};
  std::vector<QuantizedMultiplier> m(4, quantize_multiplier(0.003));
  QuantConv2dParams q;
  q.input_zero_point = -5;
  q.output_zero_point = 3;
  q.requant = m.data();
  std::vector<int8_t> y0(3 * 3 * 4), y1(y0.size());
  q.filter_zero_point = zp;
  qs8_conv2d__ref(p, q, x.data(), w.data(), bias.data(), y0.data());
  q.filter_zero_point = 0;
  qs8_conv2d__ref(p, q, x.data(), w_shift.data(), bias.data(), y1.data());
  EXPECT_EQ(y0, y1);
}

TEST(QuantZeroPoint, FullyConnectedWeightsZeroPoint) {
  FullyConnectedParams p;
  p.batch = 2;
  p.in_features = 5;
  p.out_features = 3;
  std::vector<int8_t> x = {1, -2, 3, -4, 5, 6, 7, -8, 9, 10};
  std::vector<int8_t> w = {10, 20, 30, 40, 50, -10, -20, -30, -40, -50, 0, 1, 2, 3, 4};
  std::vector<QuantizedMultiplier> m(3, quantize_multiplier(1.0));
  QuantFullyConnectedParams q;
  q.input_zero_point = 1;
  q.weights_zero_point = 2;
  q.requant = m.data();
  std::vector<int8_t> y(6);
  qs8_fully_connected__ref(p, q, x.data(), w.data(), nullptr, y.data());
  // Hand check for batch 0, output 2: sum((x - 1) * (w - 2)) over w = 0..4:
  // (0)(-2) + (-3)(-1) + (2)(0) + (-5)(1) + (4)(2) = 0 + 3 + 0 - 5 + 8 = 6.
  EXPECT_EQ(y[2], 6);
}

}  // namespace
}  // namespace pcv::kernels
