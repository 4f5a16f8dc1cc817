// qs8_quantize__hwy: f32 -> int8 with TFLite's AffineQuantize (quantize.h), bit-identical to
// qs8_quantize__ref: v = x / scale (IEEE division; a multiply by 1 / scale where that provably
// rounds the same, see below), rounded half away from zero as
//   t = trunc(v); r = t + (|v - t| >= 0.5 ? sign(v) : 0)
// (v - t is exact, so this is roundf without the v + 0.5 rounding trap), NaN -> 0, then
// + zero_point and the clamp to [-128, 127] in float, as the reference does.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quantize/qs8_quantize_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>

#include "kernels/quantize/quantize.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Qs8Quantize(size_t n, const float* HWY_RESTRICT input, float scale, int32_t zero_point,
                 int8_t* HWY_RESTRICT output) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  const auto vscale = hn::Set(df, scale);
  const auto half = hn::Set(df, 0.5f);
  const auto one = hn::Set(df, 1.0f);
  const auto zp = hn::Set(df, static_cast<float>(zero_point));
  const auto lo = hn::Set(df, -128.0f);
  const auto hi = hn::Set(df, 127.0f);
  // x * (1 / scale) is within 2^-22 relative of x / scale (two roundings of 2^-24 each, and
  // the division's own), i.e. within 2^-13 for |v| < 512. Rounding can only differ when a
  // half-integer lies between the two, so a vector with a lane within 2^-10 of one (and below
  // 512: beyond, both clamp alike) is divided exactly. A scale whose inverse is not a normal
  // float always divides.
  const float inv_s = 1.0f / scale;
  const bool multiply = std::isnormal(inv_s) && std::isnormal(scale);
  const auto inv = hn::Set(df, inv_s);
  const auto eps = hn::Set(df, 1.0f / 1024);
  const auto big = hn::Set(df, 512.0f);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::LoadU(df, input + i);
    auto v = multiply ? hn::Mul(x, inv) : hn::Div(x, vscale);
    auto t = hn::Trunc(v);
    auto frac = hn::Abs(hn::Sub(v, t));
    if (multiply) {
      const auto near = hn::And(hn::Le(hn::Abs(hn::Sub(frac, half)), eps), hn::Lt(hn::Abs(v), big));
      if (!hn::AllFalse(df, near)) {
        v = hn::Div(x, vscale);
        t = hn::Trunc(v);
        frac = hn::Abs(hn::Sub(v, t));
      }
    }
    const auto away = hn::CopySign(one, v);
    auto r = hn::IfThenElse(hn::Ge(frac, half), hn::Add(t, away), t);
    r = hn::IfThenZeroElse(hn::IsNaN(r), r);
    r = hn::Min(hn::Max(hn::Add(r, zp), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, r)), d8, output + i);
  }
  if (i < n) qs8_quantize__ref(n - i, input + i, scale, zero_point, output + i);
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(Qs8Quantize);

const char* apply_forced_isa();  // gemm.h

void qs8_quantize__hwy(size_t n, const float* input, float scale, int32_t zero_point, int8_t* output) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(Qs8Quantize)(n, input, scale, zero_point, output);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
