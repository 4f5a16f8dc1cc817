// Reference conv2d: the direct 7-loop definition from conv.h, float and int8.
#include <algorithm>

#include "kernels/conv/conv.h"

namespace pcv::kernels {

void f32_conv2d__ref(const Conv2dParams& p, const float* input, const float* filter,
                     const float* bias, float act_min, float act_max, float* output) {
  const int in_c_per_group = p.in_c / p.groups;
  const int out_c_per_group = p.out_c / p.groups;
  for (int n = 0; n < p.batch; ++n) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        float* out_px = output + ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c;
        for (int oc = 0; oc < p.out_c; ++oc) {
          const int g = oc / out_c_per_group;
          float acc = bias != nullptr ? bias[oc] : 0.0f;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= p.in_w) continue;
              const float* in_px =
                  input + ((static_cast<size_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c +
                  g * in_c_per_group;
              const float* w = filter +
                               ((static_cast<size_t>(oc) * p.kernel_h + ky) * p.kernel_w + kx) *
                                   in_c_per_group;
              for (int ic = 0; ic < in_c_per_group; ++ic) acc += in_px[ic] * w[ic];
            }
          }
          out_px[oc] = std::min(std::max(acc, act_min), act_max);
        }
      }
    }
  }
}

void qs8_conv2d__ref(const Conv2dParams& p, const QuantConv2dParams& q, const int8_t* input,
                     const int8_t* filter, const int32_t* bias, int8_t* output) {
  const int in_c_per_group = p.in_c / p.groups;
  const int out_c_per_group = p.out_c / p.groups;
  for (int n = 0; n < p.batch; ++n) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        int8_t* out_px =
            output + ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c;
        for (int oc = 0; oc < p.out_c; ++oc) {
          const int g = oc / out_c_per_group;
          int32_t acc = 0;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= p.in_w) continue;
              const int8_t* in_px =
                  input + ((static_cast<size_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c +
                  g * in_c_per_group;
              const int8_t* w = filter +
                                ((static_cast<size_t>(oc) * p.kernel_h + ky) * p.kernel_w + kx) *
                                    in_c_per_group;
              for (int ic = 0; ic < in_c_per_group; ++ic) {
                acc = wrap_add(acc, (static_cast<int32_t>(in_px[ic]) - q.input_zero_point) *
                                        (static_cast<int32_t>(w[ic]) - q.filter_zero_point));
              }
            }
          }
          if (bias != nullptr) acc = wrap_add(acc, bias[oc]);
          if (q.mode == RequantMode::kFp32) {
            out_px[oc] = static_cast<int8_t>(requantize_fp32(acc, q.requant_scale[oc],
                                                             q.output_zero_point, q.act_min,
                                                             q.act_max));
          } else {
            const int32_t out =
                multiply_by_quantized_multiplier(acc, q.requant[oc]) + q.output_zero_point;
            out_px[oc] = clamp_to_int8(out, q.act_min, q.act_max);
          }
        }
      }
    }
  }
}

}  // namespace pcv::kernels
