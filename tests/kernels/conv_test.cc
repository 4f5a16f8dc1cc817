#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::ideal_q8;
using testing::random_f32;
using testing::random_s32;
using testing::random_s8;

constexpr float kInf = std::numeric_limits<float>::infinity();

size_t in_size(const Conv2dParams& p) {
  return static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c;
}
size_t out_size(const Conv2dParams& p) {
  return static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
}
size_t filter_size(const Conv2dParams& p) {
  return static_cast<size_t>(p.out_c) * p.kernel_h * p.kernel_w * (p.in_c / p.groups);
}

// Independent oracle: the 7-loop definition in double, with explicit bounds checks; taps
// outside the input are skipped, inputs are shifted by in_offset (the int8 zero point).
template <typename In, typename W>
std::vector<double> conv_oracle(const Conv2dParams& p, const std::vector<In>& in,
                                const std::vector<W>& w, double in_offset) {
  std::vector<double> out(out_size(p), 0.0);
  const int icg = p.in_c / p.groups, ocg = p.out_c / p.groups;
  for (int n = 0; n < p.batch; ++n)
    for (int oy = 0; oy < p.out_h; ++oy)
      for (int ox = 0; ox < p.out_w; ++ox)
        for (int oc = 0; oc < p.out_c; ++oc) {
          double acc = 0.0;
          for (int ky = 0; ky < p.kernel_h; ++ky)
            for (int kx = 0; kx < p.kernel_w; ++kx)
              for (int ic = 0; ic < icg; ++ic) {
                const int y = oy * p.stride_h + ky * p.dilation_h - p.pad_top;
                const int x = ox * p.stride_w + kx * p.dilation_w - p.pad_left;
                if (y < 0 || y >= p.in_h || x < 0 || x >= p.in_w) continue;
                const int c = (oc / ocg) * icg + ic;
                const size_t i = ((n * p.in_h + y) * p.in_w + x) * p.in_c + c;
                const double xv = static_cast<double>(in[i]) - in_offset;
                const double wv = w[((oc * p.kernel_h + ky) * p.kernel_w + kx) * icg + ic];
                acc += xv * wv;
              }
          out[((n * p.out_h + oy) * p.out_w + ox) * p.out_c + oc] = acc;
        }
  return out;
}

Conv2dParams make(int batch, int in_h, int in_w, int in_c, int out_c, int k_h, int k_w,
                  int stride, int dilation, int pad_top, int pad_left, int pad_bottom,
                  int pad_right, int groups) {
  Conv2dParams p;
  p.batch = batch;
  p.in_h = in_h;
  p.in_w = in_w;
  p.in_c = in_c;
  p.out_c = out_c;
  p.kernel_h = k_h;
  p.kernel_w = k_w;
  p.stride_h = p.stride_w = stride;
  p.dilation_h = p.dilation_w = dilation;
  p.pad_top = pad_top;
  p.pad_left = pad_left;
  p.groups = groups;
  p.out_h = (in_h + pad_top + pad_bottom - dilation * (k_h - 1) - 1) / stride + 1;
  p.out_w = (in_w + pad_left + pad_right - dilation * (k_w - 1) - 1) / stride + 1;
  return p;
}

TEST(Conv2d, F32HandComputed2x2Valid) {
  const Conv2dParams p = make(1, 3, 3, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 1);
  ASSERT_EQ(p.out_h, 2);
  const std::vector<float> in = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<float> w = {1, 1, 1, 1};
  const float bias = 0.5f;
  std::vector<float> out(4);
  f32_conv2d__ref(p, in.data(), w.data(), &bias, -kInf, kInf, out.data());
  EXPECT_EQ(out, (std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f}));
}

TEST(Conv2d, F32AsymmetricPaddingHand) {
  // 2x2 input, 2x2 ones kernel, pad top/left 1, bottom/right 0 -> 2x2 output.
  const Conv2dParams p = make(1, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1, 0, 0, 1);
  ASSERT_EQ(p.out_h, 2);
  ASSERT_EQ(p.out_w, 2);
  const std::vector<float> in = {1, 2, 3, 4};
  const std::vector<float> w = {1, 1, 1, 1};
  std::vector<float> out(4);
  f32_conv2d__ref(p, in.data(), w.data(), nullptr, -kInf, kInf, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 3, 4, 10}));
}

TEST(Conv2d, F32DepthwiseMultiplier2Hand) {
  // in_c 2, groups 2, out_c 4: oc 0,1 read channel 0; oc 2,3 read channel 1.
  const Conv2dParams p = make(1, 1, 1, 2, 4, 1, 1, 1, 1, 0, 0, 0, 0, 2);
  const std::vector<float> in = {2, 3};
  const std::vector<float> w = {1, 2, 3, 4};
  const std::vector<float> b = {0, 0, 0, 1};
  std::vector<float> out(4);
  f32_conv2d__ref(p, in.data(), w.data(), b.data(), -kInf, kInf, out.data());
  EXPECT_EQ(out, (std::vector<float>{2, 4, 9, 13}));
}

TEST(Conv2d, F32Stride2Dilation2Hand) {
  // 5x5 input x + 5y, 2x2 kernel dilated by 2 -> taps (0,0),(0,2),(2,0),(2,2); stride 2.
  const Conv2dParams p = make(1, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1);
  ASSERT_EQ(p.out_h, 2);
  std::vector<float> in(25);
  for (int i = 0; i < 25; ++i) in[i] = static_cast<float>(i);
  const std::vector<float> w = {1, 10, 100, 1000};
  std::vector<float> out(4);
  f32_conv2d__ref(p, in.data(), w.data(), nullptr, -kInf, kInf, out.data());
  // out(0,0) = 0*1 + 2*10 + 10*100 + 12*1000
  EXPECT_EQ(out[0], 0 + 20 + 1000 + 12000);
  // out(1,1) = in(2,2) + 10 in(2,4) + 100 in(4,2) + 1000 in(4,4) = 12 + 140 + 2200 + 24000
  EXPECT_EQ(out[3], 12 + 140 + 2200 + 24000);
}

TEST(Conv2d, F32FusedRelu6Clamps) {
  const Conv2dParams p = make(1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  const float in = 2.0f;
  const std::vector<float> w = {-1, 2, 5};
  std::vector<float> out(3);
  f32_conv2d__ref(p, &in, w.data(), nullptr, 0.0f, 6.0f, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 4, 6}));
}

struct Case {
  const char* name;
  Conv2dParams p;
};

std::vector<Case> oracle_cases() {
  return {
      {"regular_3x3_same", make(2, 5, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
      {"stride2", make(1, 7, 7, 3, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1)},
      {"dilation2", make(1, 7, 6, 2, 3, 3, 3, 1, 2, 2, 2, 2, 2, 1)},
      {"asymmetric_pad", make(1, 6, 6, 2, 3, 3, 3, 2, 1, 0, 0, 1, 1, 1)},
      {"asymmetric_pad2", make(1, 5, 4, 2, 2, 2, 3, 1, 1, 1, 2, 0, 0, 1)},
      {"groups2", make(1, 5, 5, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
      {"depthwise", make(1, 6, 6, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5)},
      {"depthwise_mult2_stride2", make(2, 7, 7, 3, 6, 3, 3, 2, 1, 1, 1, 1, 1, 3)},
      {"pointwise", make(1, 4, 4, 8, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1)},
  };
}

TEST(Conv2d, F32MatchesDoubleOracle) {
  uint32_t seed = 1;
  for (const Case& c : oracle_cases()) {
    SCOPED_TRACE(c.name);
    const Conv2dParams& p = c.p;
    const auto in = random_f32(in_size(p), seed++);
    const auto w = random_f32(filter_size(p), seed++);
    const auto b = random_f32(p.out_c, seed++);
    std::vector<float> out(out_size(p));
    f32_conv2d__ref(p, in.data(), w.data(), b.data(), -kInf, kInf, out.data());
    const auto ref = conv_oracle(p, in, w, 0.0);
    const int taps = p.kernel_h * p.kernel_w * (p.in_c / p.groups);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], ref[i] + b[i % p.out_c], 1e-6 * (taps + 1)) << "at " << i;
    }
    // Fused relu6 is the same result clamped.
    std::vector<float> out6(out_size(p));
    f32_conv2d__ref(p, in.data(), w.data(), b.data(), 0.0f, 6.0f, out6.data());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out6[i], std::fmin(std::fmax(out[i], 0.0f), 6.0f));
    }
  }
}

TEST(Conv2d, Qs8HandComputed) {
  // acc = (9 - -1) * 2 + (-1 - -1) * 5 + bias 4 = 24; * 0.5 = 12; + zp 3 = 15.
  const Conv2dParams p = make(1, 1, 1, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  const int8_t in[2] = {9, -1};
  const int8_t w[2] = {2, 5};
  const int32_t bias = 4;
  const QuantizedMultiplier m = quantize_multiplier(0.5);
  QuantConv2dParams q;
  q.input_zero_point = -1;
  q.output_zero_point = 3;
  q.requant = &m;
  int8_t out = 0;
  qs8_conv2d__ref(p, q, in, w, &bias, &out);
  EXPECT_EQ(out, 15);
  q.act_max = 14;  // fused clamp
  qs8_conv2d__ref(p, q, in, w, &bias, &out);
  EXPECT_EQ(out, 14);
  // acc = -25 -> -12.5 -> -12 (TFLite's rounding of exact negative halves), + 3 = -9.
  q.act_max = 127;
  const int32_t bias2 = -45;
  qs8_conv2d__ref(p, q, in, w, &bias2, &out);
  EXPECT_EQ(out, -9);
}

TEST(Conv2d, Qs8PaddingContributesNothing) {
  // 1x1 input, 3x3 kernel, pad 1: only the centre tap is inside; padded taps must read as
  // the zero point, i.e. contribute 0, regardless of the filter values.
  const Conv2dParams p = make(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const int8_t in = 10;
  const int8_t w[9] = {100, 100, 100, 100, 2, 100, 100, 100, 100};
  const QuantizedMultiplier m = quantize_multiplier(1.0);
  QuantConv2dParams q;
  q.input_zero_point = 7;
  q.requant = &m;
  int8_t out = 0;
  qs8_conv2d__ref(p, q, &in, w, nullptr, &out);
  EXPECT_EQ(out, 6);  // (10 - 7) * 2
}

TEST(Conv2d, Qs8PerChannelWithinOneStepOfFloat) {
  uint32_t seed = 100;
  for (const Case& c : oracle_cases()) {
    SCOPED_TRACE(c.name);
    const Conv2dParams& p = c.p;
    const auto in = random_s8(in_size(p), seed++);
    const auto w = random_s8(filter_size(p), seed++, -127, 127);
    const auto bias = random_s32(p.out_c, seed++, -2000, 2000);
    const float in_scale = 0.02f, out_scale = 0.3f;
    const int32_t in_zp = -3, out_zp = 5;
    std::vector<float> w_scales(p.out_c);
    for (int oc = 0; oc < p.out_c; ++oc) w_scales[oc] = 0.004f + 0.001f * oc;
    std::vector<QuantizedMultiplier> rq(p.out_c);
    compute_channel_requant(in_scale, w_scales.data(), p.out_c, out_scale, rq.data());
    QuantConv2dParams q;
    q.input_zero_point = in_zp;
    q.output_zero_point = out_zp;
    q.requant = rq.data();
    std::vector<int8_t> out(out_size(p));
    qs8_conv2d__ref(p, q, in.data(), w.data(), bias.data(), out.data());
    const auto acc = conv_oracle(p, in, w, in_zp);
    int exact = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const int oc = static_cast<int>(i % p.out_c);
      const double real = (acc[i] + bias[oc]) * in_scale * w_scales[oc];
      const int32_t want = ideal_q8(real, out_scale, out_zp);
      ASSERT_LE(std::abs(out[i] - want), 1) << "at " << i;
      exact += out[i] == want;
    }
    EXPECT_GE(exact * 10, static_cast<int>(out.size()) * 9);  // almost always exact
    // Fused relu6 range: same values clamped.
    const QuantActivationRange r =
        quant_activation_range(FusedActivation::kRelu6, out_scale, out_zp);
    q.act_min = r.min;
    q.act_max = r.max;
    std::vector<int8_t> out6(out_size(p));
    qs8_conv2d__ref(p, q, in.data(), w.data(), bias.data(), out6.data());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out6[i], std::min<int>(std::max<int>(out[i], r.min), r.max));
    }
  }
}

}  // namespace
}  // namespace pcv::kernels
