// The train-mode batch norm's per-vector terms, one definition for every kernel that must get
// its floats: the row passes (train_rows_hwy.cc) and the convs that take over its work (the
// depthwise backward's sums, f32_dwconv_backward_hwy.cc), whose results are tested bit for bit
// against each other.
//   BnPreClamp:  x * scale + shift, the output before its fused clamp
//   PassInside:  g where lo < v < hi (a fused clamp passed), else 0; a bitwise AND with the
//                comparison's vector: on the Zen 5 this was measured on, the zero-masked load
//                that IfThenElseZero compiles to under AVX-512 made the masked passes 3x slower
//   BnXhat:      (x - mean) * invstd
//   BnSumsAdd:   the backward's sums, a += g and b += g * xhat
// Per-target include guard (Highway -inl.h convention): include after hwy/highway.h.
#if defined(PCV_KERNELS_TRAIN_BN_TERMS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PCV_KERNELS_TRAIN_BN_TERMS_INL_H_
#undef PCV_KERNELS_TRAIN_BN_TERMS_INL_H_
#else
#define PCV_KERNELS_TRAIN_BN_TERMS_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {

template <class V>
HWY_INLINE V BnPreClamp(V x, V scale, V shift) {
  return hwy::HWY_NAMESPACE::MulAdd(x, scale, shift);
}

template <class D, class V>
HWY_INLINE V PassInside(D d, V v, V lo, V hi, V g) {
  namespace hn = hwy::HWY_NAMESPACE;
  return hn::And(hn::VecFromMask(d, hn::And(hn::Gt(v, lo), hn::Lt(v, hi))), g);
}

template <class V>
HWY_INLINE V BnXhat(V x, V mean, V invstd) {
  namespace hn = hwy::HWY_NAMESPACE;
  return hn::Mul(hn::Sub(x, mean), invstd);
}

template <class V>
HWY_INLINE void BnSumsAdd(V g, V xhat, V& a, V& b) {
  namespace hn = hwy::HWY_NAMESPACE;
  a = hn::Add(a, g);
  b = hn::MulAdd(g, xhat, b);
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#endif  // PCV_KERNELS_TRAIN_BN_TERMS_INL_H_
