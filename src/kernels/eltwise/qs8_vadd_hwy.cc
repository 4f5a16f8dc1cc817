// qs8_vadd_xnn__<isa>: same-shape int8 ADD with LiteRT's (XNNPACK) arithmetic, bit-identical
// to qs8_add_xnn__ref (eltwise.h) and compiled once per Highway target. int32 lanes:
// acc = rounding + m1 * (a - zp1) + m2 * (b - zp2); y = clamp((acc >> shift) + zpo).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/eltwise/qs8_vadd_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/eltwise/eltwise.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Qs8VaddXnn(size_t n, const QuantAddXnnParams& q, const int8_t* HWY_RESTRICT a,
                const int8_t* HWY_RESTRICT b, int8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const size_t N = hn::Lanes(d32);
  const auto m1 = hn::Set(d32, q.multiplier1);
  const auto m2 = hn::Set(d32, q.multiplier2);
  const auto bias = hn::Set(d32, (int32_t{1} << (q.shift - 1)) - q.multiplier1 * q.input1_zero_point -
                                     q.multiplier2 * q.input2_zero_point);
  const auto zp = hn::Set(d32, q.output_zero_point);
  const auto lo = hn::Set(d32, q.act_min);
  const auto hi = hn::Set(d32, q.act_max);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto va = hn::PromoteTo(d32, hn::LoadU(d8, a + i));
    const auto vb = hn::PromoteTo(d32, hn::LoadU(d8, b + i));
    auto acc = hn::Add(bias, hn::Add(hn::Mul(va, m1), hn::Mul(vb, m2)));
    acc = hn::Add(hn::ShiftRightSame(acc, q.shift), zp);
    acc = hn::Min(hn::Max(acc, lo), hi);
    hn::StoreU(hn::DemoteTo(d8, acc), d8, out + i);
  }
  // The same integer arithmetic (mod 2^32) as above and as qs8_add_xnn__ref.
  const int32_t rounding = int32_t{1} << (q.shift - 1);
  for (; i < n; ++i) {
    const int32_t acc = rounding + q.multiplier1 * (a[i] - q.input1_zero_point) +
                        q.multiplier2 * (b[i] - q.input2_zero_point);
    const int32_t y = (acc >> q.shift) + q.output_zero_point;
    out[i] = static_cast<int8_t>(y < q.act_min ? q.act_min : (y > q.act_max ? q.act_max : y));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(Qs8VaddXnn);

const char* apply_forced_isa();  // gemm.h

void qs8_vadd_xnn(size_t n, const QuantAddXnnParams& q, const int8_t* a, const int8_t* b,
                  int8_t* output) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(Qs8VaddXnn)(n, q, a, b, output);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
