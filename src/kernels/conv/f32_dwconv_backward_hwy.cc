// f32_dwconv_backward_image (contract in conv_backward.h): the depthwise (channel multiplier 1)
// backward of one image, vectorized over channels and compiled per Highway target.
//
// Output pixels are walked in memory order; per pixel and valid tap, a channel vector of the
// output gradient g updates the filter gradient (dwt[tap] += g * x[tap's input pixel]) and the
// input gradient (dx[that pixel] += g * w[tap]). dwt (taps x C) stays in L1 and dx's few rows
// in L2, so the image's x and dy stream through once. Each filter-gradient element adds its
// products in pixel order, as the scalar loop did.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/f32_dwconv_backward_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/conv/conv_backward.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kDx, bool kDw, bool kDb>
void DwBackwardImage(const Conv2dParams& p, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                     const float* HWY_RESTRICT wt, float* HWY_RESTRICT dx, float* HWY_RESTRICT dwt,
                     float* HWY_RESTRICT db) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t c = static_cast<size_t>(p.out_c);
  const size_t full = c / N * N;
  for (int oy = 0; oy < p.out_h; ++oy) {
    for (int ox = 0; ox < p.out_w; ++ox) {
      const float* g = dy + (static_cast<size_t>(oy) * p.out_w + ox) * c;
      if (kDb) {
        size_t k = 0;
        for (; k < full; k += N) hn::StoreU(hn::Add(hn::LoadU(d, db + k), hn::LoadU(d, g + k)), d, db + k);
        if (k < c) StorePartial(hn::Add(LoadPartial(d, db + k, c - k), LoadPartial(d, g + k, c - k)), d, db + k, c - k);
      }
      for (int ky = 0; ky < p.kernel_h; ++ky) {
        const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
        if (iy < 0 || iy >= p.in_h) continue;
        for (int kx = 0; kx < p.kernel_w; ++kx) {
          const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
          if (ix < 0 || ix >= p.in_w) continue;
          const size_t tap = static_cast<size_t>(ky * p.kernel_w + kx) * c;
          const size_t xo = (static_cast<size_t>(iy) * p.in_w + ix) * c;
          size_t k = 0;
          for (; k < full; k += N) {
            const auto gv = hn::LoadU(d, g + k);
            if (kDw) hn::StoreU(hn::MulAdd(gv, hn::LoadU(d, x + xo + k), hn::LoadU(d, dwt + tap + k)), d, dwt + tap + k);
            if (kDx) hn::StoreU(hn::MulAdd(gv, hn::LoadU(d, wt + tap + k), hn::LoadU(d, dx + xo + k)), d, dx + xo + k);
          }
          if (k < c) {
            const size_t n = c - k;
            const auto gv = LoadPartial(d, g + k, n);
            if (kDw) {
              StorePartial(hn::MulAdd(gv, LoadPartial(d, x + xo + k, n), LoadPartial(d, dwt + tap + k, n)), d,
                           dwt + tap + k, n);
            }
            if (kDx) {
              StorePartial(hn::MulAdd(gv, LoadPartial(d, wt + tap + k, n), LoadPartial(d, dx + xo + k, n)), d,
                           dx + xo + k, n);
            }
          }
        }
      }
    }
  }
}

void F32DwconvBackwardImage(const Conv2dParams& p, const float* x, const float* dy, const float* wt,
                            float* dx, float* dwt, float* db) {
  const int sel = (dx != nullptr ? 4 : 0) | (dwt != nullptr ? 2 : 0) | (db != nullptr ? 1 : 0);
  switch (sel) {
    case 7: return DwBackwardImage<true, true, true>(p, x, dy, wt, dx, dwt, db);
    case 6: return DwBackwardImage<true, true, false>(p, x, dy, wt, dx, dwt, db);
    case 5: return DwBackwardImage<true, false, true>(p, x, dy, wt, dx, dwt, db);
    case 4: return DwBackwardImage<true, false, false>(p, x, dy, wt, dx, dwt, db);
    case 3: return DwBackwardImage<false, true, true>(p, x, dy, wt, dx, dwt, db);
    case 2: return DwBackwardImage<false, true, false>(p, x, dy, wt, dx, dwt, db);
    case 1: return DwBackwardImage<false, false, true>(p, x, dy, wt, dx, dwt, db);
    default: return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(F32DwconvBackwardImage);

void f32_dwconv_backward_image(const Conv2dParams& p, const float* x, const float* dy, const float* wt,
                               float* dx, float* dwt, float* db) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32DwconvBackwardImage)(p, x, dy, wt, dx, dwt, db);
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
