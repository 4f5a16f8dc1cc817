// Vector form of requantize_fp32 (requant.h) for Highway kernels, bit-identical to the scalar
// one: int32 -> float (round to nearest even, as static_cast), one float multiply, clamp to
// [min - zp, max - zp], round half to even (NearestInt: cvtps2dq under the default MXCSR), add
// the zero point. Per-target include guard (Highway -inl.h convention).
#if defined(PCV_KERNELS_COMMON_QS8_REQUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PCV_KERNELS_COMMON_QS8_REQUANT_INL_H_
#undef PCV_KERNELS_COMMON_QS8_REQUANT_INL_H_
#else
#define PCV_KERNELS_COMMON_QS8_REQUANT_INL_H_
#endif

#include <hwy/highway.h>

#include <cmath>
#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {

// Requantizes the int32 lanes of `acc` with per-lane `scale` and stores the first `n` int8
// results at out (n <= Lanes(d32)).
template <class D32>
HWY_INLINE void RequantStoreFp32(D32 d32, hwy::HWY_NAMESPACE::Vec<D32> acc,
                                 hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::Rebind<float, D32>> scale,
                                 hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::Rebind<float, D32>> fmin,
                                 hwy::HWY_NAMESPACE::Vec<hwy::HWY_NAMESPACE::Rebind<float, D32>> fmax,
                                 hwy::HWY_NAMESPACE::Vec<D32> zp, int8_t* HWY_RESTRICT out,
                                 size_t n) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::Rebind<float, D32> df;
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
  // Their NearestInt adds 0.5 before truncating (wrong next to halves): round like the scalar
  // reference instead.
  HWY_ALIGN int32_t a[hn::MaxLanes(d32)];
  HWY_ALIGN int32_t z[hn::MaxLanes(d32)];
  HWY_ALIGN float s[hn::MaxLanes(df)];
  HWY_ALIGN float lo[hn::MaxLanes(df)];
  HWY_ALIGN float hi[hn::MaxLanes(df)];
  hn::Store(acc, d32, a);
  hn::Store(zp, d32, z);
  hn::Store(scale, df, s);
  hn::Store(fmin, df, lo);
  hn::Store(fmax, df, hi);
  for (size_t i = 0; i < n; ++i) {
    float v = static_cast<float>(a[i]) * s[i];
    v = v < lo[i] ? lo[i] : (v > hi[i] ? hi[i] : v);
    out[i] = static_cast<int8_t>(static_cast<int32_t>(std::nearbyint(v)) + z[i]);
  }
  return;
#endif
  auto f = hn::Mul(hn::ConvertTo(df, acc), scale);
  f = hn::Min(hn::Max(f, fmin), fmax);
  const auto q = hn::Add(hn::NearestInt(f), zp);
  const hn::Rebind<int8_t, D32> d8;
  const auto b = hn::DemoteTo(d8, q);  // within int8 already: no saturation happens
  if (n == hn::Lanes(d32)) {
    hn::StoreU(b, d8, out);
  } else {
    HWY_ALIGN int8_t buf[hn::MaxLanes(d8)];
    hn::Store(b, d8, buf);
    std::memcpy(out, buf, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#endif  // PCV_KERNELS_COMMON_QS8_REQUANT_INL_H_
