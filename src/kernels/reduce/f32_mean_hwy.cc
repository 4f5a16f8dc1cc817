// f32_mean__hwy: mean over one contiguous run of axes, (outer, reduced, inner) row-major,
// vectorized over `inner` (global average pooling of NHWC: outer = N, reduced = H*W,
// inner = C). Each output adds its elements in increasing input order, as f32_mean__ref does,
// so the results are bit-identical; other axis sets run the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/reduce/f32_mean_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/reduce/mean.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void F32MeanRows(size_t outer, size_t reduced, size_t inner, const float* HWY_RESTRICT input,
                 float* HWY_RESTRICT output) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const float count = static_cast<float>(reduced);
  const auto vcount = hn::Set(d, count);
  for (size_t o = 0; o < outer; ++o) {
    const float* x = input + o * reduced * inner;
    float* y = output + o * inner;
    size_t c = 0;
    for (; c + 4 * N <= inner; c += 4 * N) {  // four vectors of sums in registers
      auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
      for (size_t r = 0; r < reduced; ++r) {
        const float* row = x + r * inner + c;
        s0 = hn::Add(s0, hn::LoadU(d, row));
        s1 = hn::Add(s1, hn::LoadU(d, row + N));
        s2 = hn::Add(s2, hn::LoadU(d, row + 2 * N));
        s3 = hn::Add(s3, hn::LoadU(d, row + 3 * N));
      }
      hn::StoreU(hn::Div(s0, vcount), d, y + c);
      hn::StoreU(hn::Div(s1, vcount), d, y + c + N);
      hn::StoreU(hn::Div(s2, vcount), d, y + c + 2 * N);
      hn::StoreU(hn::Div(s3, vcount), d, y + c + 3 * N);
    }
    for (; c + N <= inner; c += N) {
      auto s = hn::Zero(d);
      for (size_t r = 0; r < reduced; ++r) s = hn::Add(s, hn::LoadU(d, x + r * inner + c));
      hn::StoreU(hn::Div(s, vcount), d, y + c);
    }
    for (; c < inner; ++c) {
      float s = 0.0f;
      for (size_t r = 0; r < reduced; ++r) s += x[r * inner + c];
      y[c] = s / count;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(F32MeanRows);

const char* apply_forced_isa();  // gemm.h

void f32_mean__hwy(const MeanParams& p, const float* input, float* output) {
  int first = -1, last = -1;
  for (int d = 0; d < p.rank; ++d) {
    if (!p.reduce_axis[d]) continue;
    if (first < 0) first = d;
    last = d;
  }
  bool contiguous = first >= 0;
  for (int d = first; contiguous && d <= last; ++d) contiguous = p.reduce_axis[d];
  if (!contiguous) {
    f32_mean__ref(p, input, output);
    return;
  }
  size_t outer = 1, reduced = 1, inner = 1;
  for (int d = 0; d < p.rank; ++d) {
    const auto n = static_cast<size_t>(p.in_dims[d]);
    if (d < first) outer *= n;
    else if (d <= last) reduced *= n;
    else inner *= n;
  }
  if (reduced == 0) {
    f32_mean__ref(p, input, output);
    return;
  }
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32MeanRows)(outer, reduced, inner, input, output);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
