#include "kernels/common/requant.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace pcv::kernels {

QuantizedMultiplier quantize_multiplier(double real_multiplier) {
  QuantizedMultiplier r;
  if (real_multiplier == 0.0) return r;
  int shift = 0;
  const double q = std::frexp(real_multiplier, &shift);  // real = q * 2^shift, q in [0.5, 1)
  int64_t q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) {
    shift = 0;
    q_fixed = 0;
  }
  r.multiplier = static_cast<int32_t>(q_fixed);
  r.shift = shift;
  return r;
}

QuantActivationRange quant_activation_range(FusedActivation act, float output_scale,
                                            int32_t output_zero_point) {
  const auto q = [&](float f) {
    return output_zero_point + static_cast<int32_t>(std::round(f / output_scale));
  };
  QuantActivationRange r{-128, 127};
  switch (act) {
    case FusedActivation::kNone:
      break;
    case FusedActivation::kRelu:
      r.min = std::max(r.min, q(0.0f));
      break;
    case FusedActivation::kReluN1To1:
      r.min = std::max(r.min, q(-1.0f));
      r.max = std::min(r.max, q(1.0f));
      break;
    case FusedActivation::kRelu6:
      r.min = std::max(r.min, q(0.0f));
      r.max = std::min(r.max, q(6.0f));
      break;
  }
  return r;
}

FloatActivationRange float_activation_range(FusedActivation act) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  switch (act) {
    case FusedActivation::kRelu:
      return {0.0f, kInf};
    case FusedActivation::kReluN1To1:
      return {-1.0f, 1.0f};
    case FusedActivation::kRelu6:
      return {0.0f, 6.0f};
    case FusedActivation::kNone:
      break;
  }
  return {-kInf, kInf};
}

void compute_channel_requant(float input_scale, const float* filter_scales, int num_channels,
                             float output_scale, QuantizedMultiplier* out) {
  for (int c = 0; c < num_channels; ++c) {
    const double m = static_cast<double>(input_scale) * static_cast<double>(filter_scales[c]) /
                     static_cast<double>(output_scale);
    out[c] = quantize_multiplier(m);
  }
}

void compute_channel_requant_fp32(float input_scale, const float* filter_scales,
                                  int num_channels, float output_scale, float* out) {
  for (int c = 0; c < num_channels; ++c) {
    const float product = input_scale * filter_scales[c];  // rounded to float, like XNNPACK
    out[c] = product / output_scale;
  }
}

QuantActivationRange quant_activation_range_fp32(FusedActivation act, float output_scale,
                                                 int32_t output_zero_point) {
  const auto q = [&](float f) {
    const float v = f / output_scale + static_cast<float>(output_zero_point);
    return static_cast<int32_t>(std::nearbyint(std::clamp(v, -128.0f, 127.0f)));
  };
  QuantActivationRange r{-128, 127};
  switch (act) {
    case FusedActivation::kNone:
      break;
    case FusedActivation::kRelu:
      r.min = q(0.0f);
      break;
    case FusedActivation::kReluN1To1:
      r.min = q(-1.0f);
      r.max = q(1.0f);
      break;
    case FusedActivation::kRelu6:
      r.min = q(0.0f);
      r.max = q(6.0f);
      break;
  }
  return r;
}

}  // namespace pcv::kernels
