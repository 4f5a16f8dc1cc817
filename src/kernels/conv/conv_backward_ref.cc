// f32_conv2d_backward__ref: the specification of conv2d's backward (contract in
// conv_backward.h). One loop nest mirrors the forward: every (output pixel, tap, channel)
// product of the forward sends its output gradient back to both factors.
#include "kernels/conv/conv_backward.h"

namespace pcv::kernels {

void f32_conv2d_backward__ref(const Conv2dParams& p, const float* input, const float* filter,
                              const float* output_grad, float* input_grad, float* filter_grad,
                              float* bias_grad) {
  const int cg = p.in_c / p.groups;   // input channels per group
  const int og = p.out_c / p.groups;  // output channels per group
  for (int n = 0; n < p.batch; ++n) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        // dY: (N, out_h, out_w, out_c)
        const float* dy = output_grad + ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c;
        for (int oc = 0; oc < p.out_c; ++oc) {
          const float g = dy[oc];
          if (bias_grad != nullptr) bias_grad[oc] += g;  // accumulates
          const int group = oc / og;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (ix < 0 || ix >= p.in_w) continue;
              // X, dX: (N, in_h, in_w, in_c); W, dW: (out_c, kh, kw, cg)
              const size_t x_off = ((static_cast<size_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c +
                                   static_cast<size_t>(group) * cg;
              const size_t w_off = ((static_cast<size_t>(oc) * p.kernel_h + ky) * p.kernel_w + kx) * cg;
              for (int ci = 0; ci < cg; ++ci) {
                if (filter_grad != nullptr) filter_grad[w_off + ci] += g * input[x_off + ci];
                if (input_grad != nullptr) input_grad[x_off + ci] += g * filter[w_off + ci];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace pcv::kernels
