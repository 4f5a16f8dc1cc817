#include <gtest/gtest.h>

#include <cmath>

#include "kernels/common/requant.h"

namespace pcv::kernels {
namespace {

TEST(Requant, QuantizeMultiplierKnownValues) {
  QuantizedMultiplier m = quantize_multiplier(0.5);
  EXPECT_EQ(m.multiplier, 1 << 30);
  EXPECT_EQ(m.shift, 0);
  m = quantize_multiplier(1.0);
  EXPECT_EQ(m.multiplier, 1 << 30);
  EXPECT_EQ(m.shift, 1);
  m = quantize_multiplier(std::ldexp(1.0, -10));
  EXPECT_EQ(m.multiplier, 1 << 30);
  EXPECT_EQ(m.shift, -9);
  m = quantize_multiplier(0.3);  // frexp: 0.6 * 2^-1; round(0.6 * 2^31) = 1288490188.8 -> ..89
  EXPECT_EQ(m.multiplier, 1288490189);
  EXPECT_EQ(m.shift, -1);
  m = quantize_multiplier(0.0);
  EXPECT_EQ(m.multiplier, 0);
  EXPECT_EQ(m.shift, 0);
  m = quantize_multiplier(std::ldexp(1.0, -40));  // below 2^-31: flushed to zero
  EXPECT_EQ(m.multiplier, 0);
  // Mantissa rounding up to 2^31 renormalizes: (1 - 2^-40) -> 2^30 with shift 1.
  m = quantize_multiplier(1.0 - std::ldexp(1.0, -40));
  EXPECT_EQ(m.multiplier, 1 << 30);
  EXPECT_EQ(m.shift, 1);
}

TEST(Requant, MultiplyByQuantizedMultiplierHalfCases) {
  const QuantizedMultiplier half = quantize_multiplier(0.5);
  EXPECT_EQ(multiply_by_quantized_multiplier(100, half), 50);
  EXPECT_EQ(multiply_by_quantized_multiplier(101, half), 51);    // 50.5 -> 51
  EXPECT_EQ(multiply_by_quantized_multiplier(-101, half), -50);  // -50.5 -> -50 (gemmlowp nudge)
  EXPECT_EQ(multiply_by_quantized_multiplier(-102, half), -51);
  const QuantizedMultiplier one = quantize_multiplier(1.0);
  EXPECT_EQ(multiply_by_quantized_multiplier(7, one), 7);
  EXPECT_EQ(multiply_by_quantized_multiplier(-7, one), -7);
  EXPECT_EQ(multiply_by_quantized_multiplier(123456, one), 123456);
}

TEST(Requant, MultiplyByQuantizedMultiplierRightShift) {
  const QuantizedMultiplier m = quantize_multiplier(std::ldexp(1.0, -10));
  EXPECT_EQ(multiply_by_quantized_multiplier(1024, m), 1);
  EXPECT_EQ(multiply_by_quantized_multiplier(1536, m), 2);    // 1.5 -> 2 (half away)
  EXPECT_EQ(multiply_by_quantized_multiplier(-1536, m), -2);  // -1.5 -> -2
  EXPECT_EQ(multiply_by_quantized_multiplier(1535, m), 2);    // 1.499: double rounding, as TFLite
  EXPECT_EQ(multiply_by_quantized_multiplier(1534, m), 1);
  const QuantizedMultiplier p3 = quantize_multiplier(0.3);
  EXPECT_EQ(multiply_by_quantized_multiplier(1000, p3), 300);
  EXPECT_EQ(multiply_by_quantized_multiplier(5, p3), 2);    // 1.5 -> 2
  EXPECT_EQ(multiply_by_quantized_multiplier(-5, p3), -2);  // -1.5 -> -2
  EXPECT_EQ(multiply_by_quantized_multiplier(3, p3), 1);    // 0.9 -> 1
  EXPECT_EQ(multiply_by_quantized_multiplier(0, p3), 0);
}

TEST(Requant, MultiplyByQuantizedMultiplierLeftShift) {
  const QuantizedMultiplier m = quantize_multiplier(3.0);  // 0.75 * 2^2
  EXPECT_EQ(m.shift, 2);
  EXPECT_EQ(m.multiplier, 1610612736);
  EXPECT_EQ(multiply_by_quantized_multiplier(5, m), 15);
  EXPECT_EQ(multiply_by_quantized_multiplier(-5, m), -15);
}

TEST(Requant, SaturatingRoundingDoublingHighMulSaturates) {
  EXPECT_EQ(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX), INT32_MAX - 1);
}

TEST(Requant, RoundingDivideByPot) {
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);
  EXPECT_EQ(rounding_divide_by_pot(4, 2), 1);
  EXPECT_EQ(rounding_divide_by_pot(6, 2), 2);   // 1.5 -> 2
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);  // -1.5 -> -2
  EXPECT_EQ(rounding_divide_by_pot(-5, 2), -1);  // -1.25 -> -1
  EXPECT_EQ(rounding_divide_by_pot(17, 0), 17);
}

TEST(Requant, QuantActivationRange) {
  QuantActivationRange r = quant_activation_range(FusedActivation::kNone, 0.1f, -5);
  EXPECT_EQ(r.min, -128);
  EXPECT_EQ(r.max, 127);
  r = quant_activation_range(FusedActivation::kRelu, 0.1f, -5);
  EXPECT_EQ(r.min, -5);
  EXPECT_EQ(r.max, 127);
  r = quant_activation_range(FusedActivation::kRelu6, 0.1f, -5);
  EXPECT_EQ(r.min, -5);
  EXPECT_EQ(r.max, 55);
  r = quant_activation_range(FusedActivation::kReluN1To1, 0.1f, -5);
  EXPECT_EQ(r.min, -15);
  EXPECT_EQ(r.max, 5);
  r = quant_activation_range(FusedActivation::kRelu6, 0.7f, 1);  // 6 / 0.7 = 8.57 -> 9
  EXPECT_EQ(r.min, 1);
  EXPECT_EQ(r.max, 10);
  r = quant_activation_range(FusedActivation::kReluN1To1, 0.4f, 0);  // 1 / 0.4 = 2.5 -> 3
  EXPECT_EQ(r.min, -3);
  EXPECT_EQ(r.max, 3);
  r = quant_activation_range(FusedActivation::kRelu6, 0.01f, 0);  // 6 / 0.01 = 600 -> 127
  EXPECT_EQ(r.max, 127);
  r = quant_activation_range(FusedActivation::kRelu, 0.1f, -200);  // below int8: -128
  EXPECT_EQ(r.min, -128);
}

TEST(Requant, FloatActivationRange) {
  EXPECT_EQ(float_activation_range(FusedActivation::kRelu6).min, 0.0f);
  EXPECT_EQ(float_activation_range(FusedActivation::kRelu6).max, 6.0f);
  EXPECT_EQ(float_activation_range(FusedActivation::kReluN1To1).min, -1.0f);
  EXPECT_TRUE(std::isinf(float_activation_range(FusedActivation::kRelu).max));
  EXPECT_TRUE(std::isinf(float_activation_range(FusedActivation::kNone).min));
}

TEST(Requant, ComputeChannelRequant) {
  const float filter_scales[2] = {0.5f, 0.25f};
  QuantizedMultiplier out[2];
  compute_channel_requant(0.5f, filter_scales, 2, 0.125f, out);  // 2.0 and 1.0
  EXPECT_EQ(out[0].multiplier, 1 << 30);
  EXPECT_EQ(out[0].shift, 2);
  EXPECT_EQ(out[1].multiplier, 1 << 30);
  EXPECT_EQ(out[1].shift, 1);
}

TEST(Requant, ClampToInt8) {
  EXPECT_EQ(clamp_to_int8(300, -128, 127), 127);
  EXPECT_EQ(clamp_to_int8(-300, -128, 127), -128);
  EXPECT_EQ(clamp_to_int8(10, -5, 5), 5);
  EXPECT_EQ(clamp_to_int8(3, -5, 5), 3);
}

}  // namespace
}  // namespace pcv::kernels
