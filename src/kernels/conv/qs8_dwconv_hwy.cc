// qs8_dwconv_fp32__<isa>: int8 depthwise conv (multiplier 1) with the fused fp32
// requantization, compiled once per Highway target (contract in qs8_conv_fast.h).
// Channels sit in int32 lanes: per output pixel and lane block, acc = bias + sum over the
// taps inside the input of (x - input_zp) * (w - filter_zp), then RequantStoreFp32. The last
// lane block of a pixel loads its channels through a small buffer (no read past the tensor).
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/qs8_dwconv_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/common/qs8_requant-inl.h"
#include "kernels/conv/qs8_conv_fast.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Qs8DwconvFp32(const Qs8Conv2dPacked& k, const int8_t* input, int8_t* output,
                   size_t row_begin, size_t row_end) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const hn::Rebind<float, decltype(d32)> df;
  const size_t N = hn::Lanes(d32);
  const Conv2dParams& p = k.params;
  const size_t C = static_cast<size_t>(p.in_c);
  const int32_t* wts = reinterpret_cast<const int32_t*>(k.dw_weights.data());
  const int32_t* bias = reinterpret_cast<const int32_t*>(k.dw_bias.data());
  const int32_t* bias_full = reinterpret_cast<const int32_t*>(k.dw_bias_full.data());
  const float* scale = reinterpret_cast<const float*>(k.dw_scale.data());
  const auto zp_in = hn::Set(d32, k.input_zero_point);
  const auto fmin = hn::Set(df, k.epilogue.min_less_zp);
  const auto fmax = hn::Set(df, k.epilogue.max_less_zp);
  const auto zp_out = hn::Set(d32, k.epilogue.output_zero_point);
  const size_t cp = k.c_padded;
  for (size_t row = row_begin; row < row_end; ++row) {
    const int n = static_cast<int>(row / static_cast<size_t>(p.out_h));
    const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
    const int8_t* in_n = input + static_cast<size_t>(n) * p.in_h * p.in_w * C;
    int8_t* out_row = output + row * static_cast<size_t>(p.out_w) * C;
    // Rows of the window inside the input.
    const int iy0 = oy * p.stride_h - p.pad_top;
    int ky0 = 0, ky1 = p.kernel_h;
    while (ky0 < ky1 && iy0 + ky0 * p.dilation_h < 0) ++ky0;
    while (ky1 > ky0 && iy0 + (ky1 - 1) * p.dilation_h >= p.in_h) --ky1;
    // 3x3 fast path: rows whose window is inside the input vertically, columns [lo, hi) inside
    // horizontally, whole vectors of channels. Per channel block the 9 weight vectors, bias and
    // scale stay in registers while the row streams by.
    int ox_lo = 0, ox_hi = 0;
    if (p.kernel_h == 3 && p.kernel_w == 3 && p.dilation_h == 1 && p.dilation_w == 1 &&
        C % N == 0 && ky0 == 0 && ky1 == 3) {
      ox_lo = (p.pad_left + p.stride_w - 1) / p.stride_w;
      ox_hi = p.in_w - 3 + p.pad_left >= 0 ? (p.in_w - 3 + p.pad_left) / p.stride_w + 1 : 0;
      ox_hi = std::min(ox_hi, p.out_w);
      if (ox_hi < ox_lo) ox_hi = ox_lo;
      const int8_t* r0 = in_n + static_cast<size_t>(iy0) * p.in_w * C;
      const int8_t* r1 = r0 + static_cast<size_t>(p.in_w) * C;
      const int8_t* r2 = r1 + static_cast<size_t>(p.in_w) * C;
      const size_t sx = static_cast<size_t>(p.stride_w) * C;
      for (size_t c = 0; c < C; c += N) {
        const auto w0 = hn::LoadU(d32, wts + 0 * cp + c), w1 = hn::LoadU(d32, wts + 1 * cp + c);
        const auto w2 = hn::LoadU(d32, wts + 2 * cp + c), w3 = hn::LoadU(d32, wts + 3 * cp + c);
        const auto w4 = hn::LoadU(d32, wts + 4 * cp + c), w5 = hn::LoadU(d32, wts + 5 * cp + c);
        const auto w6 = hn::LoadU(d32, wts + 6 * cp + c), w7 = hn::LoadU(d32, wts + 7 * cp + c);
        const auto w8 = hn::LoadU(d32, wts + 8 * cp + c);
        const auto b = hn::LoadU(d32, bias_full + c);
        const auto sc = hn::LoadU(df, scale + c);
        size_t off = static_cast<size_t>(ox_lo * p.stride_w - p.pad_left) * C + c;
        for (int ox = ox_lo; ox < ox_hi; ++ox, off += sx) {
          auto x = [&](const int8_t* r, size_t dx) { return hn::PromoteTo(d32, hn::LoadU(d8, r + off + dx * C)); };
          auto a0 = hn::Add(b, hn::Mul(x(r0, 0), w0));
          auto a1 = hn::Mul(x(r0, 1), w1);
          a0 = hn::Add(a0, hn::Mul(x(r0, 2), w2));
          a1 = hn::Add(a1, hn::Mul(x(r1, 0), w3));
          a0 = hn::Add(a0, hn::Mul(x(r1, 1), w4));
          a1 = hn::Add(a1, hn::Mul(x(r1, 2), w5));
          a0 = hn::Add(a0, hn::Mul(x(r2, 0), w6));
          a1 = hn::Add(a1, hn::Mul(x(r2, 1), w7));
          a0 = hn::Add(a0, hn::Mul(x(r2, 2), w8));
          RequantStoreFp32(d32, hn::Add(a0, a1), sc, fmin, fmax, zp_out,
                           out_row + static_cast<size_t>(ox) * C + c, N);
        }
      }
    }
    for (int ox = 0; ox < p.out_w; ++ox) {
      if (ox == ox_lo && ox_hi > ox_lo) {
        ox = ox_hi - 1;  // done above
        continue;
      }
      const int ix0 = ox * p.stride_w - p.pad_left;
      int kx0 = 0, kx1 = p.kernel_w;
      while (kx0 < kx1 && ix0 + kx0 * p.dilation_w < 0) ++kx0;
      while (kx1 > kx0 && ix0 + (kx1 - 1) * p.dilation_w >= p.in_w) --kx1;
      int8_t* out_px = out_row + static_cast<size_t>(ox) * C;
      if (ky0 == 0 && ky1 == p.kernel_h && kx0 == 0 && kx1 == p.kernel_w) {
        // Window inside the input: the zero point is folded into bias_full.
        for (size_t c = 0; c < C; c += N) {
          const bool full = c + N <= C;
          auto acc = hn::LoadU(d32, bias_full + c);
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int8_t* in_row = in_n + static_cast<size_t>(iy0 + ky * p.dilation_h) * p.in_w * C;
            const int32_t* w_row = wts + static_cast<size_t>(ky) * p.kernel_w * cp;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int8_t* src = in_row + static_cast<size_t>(ix0 + kx * p.dilation_w) * C + c;
              hn::Vec<decltype(d8)> xv;
              if (full) {
                xv = hn::LoadU(d8, src);
              } else {
                HWY_ALIGN int8_t buf[hn::MaxLanes(d8)] = {};
                std::memcpy(buf, src, C - c);
                xv = hn::Load(d8, buf);
              }
              acc = hn::Add(acc, hn::Mul(hn::PromoteTo(d32, xv),
                                         hn::LoadU(d32, w_row + static_cast<size_t>(kx) * cp + c)));
            }
          }
          RequantStoreFp32(d32, acc, hn::LoadU(df, scale + c), fmin, fmax, zp_out, out_px + c,
                           full ? N : C - c);
        }
        continue;
      }
      for (size_t c = 0; c < C; c += N) {
        const bool full = c + N <= C;
        auto acc = hn::LoadU(d32, bias + c);
        for (int ky = ky0; ky < ky1; ++ky) {
          const int iy = iy0 + ky * p.dilation_h;
          const int8_t* in_row = in_n + static_cast<size_t>(iy) * p.in_w * C;
          const int32_t* w_row = wts + static_cast<size_t>(ky) * p.kernel_w * cp;
          for (int kx = kx0; kx < kx1; ++kx) {
            const int ix = ix0 + kx * p.dilation_w;
            const int8_t* src = in_row + static_cast<size_t>(ix) * C + c;
            hn::Vec<decltype(d8)> xv;
            if (full) {
              xv = hn::LoadU(d8, src);
            } else {
              HWY_ALIGN int8_t buf[hn::MaxLanes(d8)] = {};
              std::memcpy(buf, src, C - c);
              xv = hn::Load(d8, buf);
            }
            const auto x = hn::Sub(hn::PromoteTo(d32, xv), zp_in);
            acc = hn::Add(acc, hn::Mul(x, hn::LoadU(d32, w_row + static_cast<size_t>(kx) * cp + c)));
          }
        }
        RequantStoreFp32(d32, acc, hn::LoadU(df, scale + c), fmin, fmax, zp_out, out_px + c,
                         full ? N : C - c);
      }
    }
  }
}

const Qs8DwconvUkernel* GetQs8DwconvUkernel() {
  static const Qs8DwconvUkernel k = [] {
    Qs8DwconvUkernel u;
    u.isa = hwy::TargetName(HWY_TARGET);
#if HWY_TARGET == HWY_AVX3_DL
    u.name = "qs8_dwconv_fp32__avx3_dl";
#elif HWY_TARGET == HWY_AVX3
    u.name = "qs8_dwconv_fp32__avx3";
#elif HWY_TARGET == HWY_AVX2
    u.name = "qs8_dwconv_fp32__avx2";
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    u.name = "qs8_dwconv_fp32__scalar";
#else
    u.name = "qs8_dwconv_fp32__sse";
#endif
    u.fn = &Qs8DwconvFp32;
    u.lanes = hn::Lanes(hn::ScalableTag<int32_t>());
    return u;
  }();
  return &k;
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(GetQs8DwconvUkernel);

const char* apply_forced_isa();  // gemm.h

const Qs8DwconvUkernel& qs8_dwconv_ukernel() {
  apply_forced_isa();
  return *HWY_DYNAMIC_DISPATCH(GetQs8DwconvUkernel)();
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
