// LoadPartial(d, p, n): the first n (< Lanes) floats at p, zeros above, reading only p[0, n).
// Highway 1.0.3's MaskedLoad needs an aligned pointer and reads the full vector on targets
// without masked loads (SSE4, SSSE3, EMU128), which can fault at the end of a tensor.
// Per-target include guard (Highway -inl.h convention): include after hwy/highway.h.
#if defined(PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_
#undef PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_
#else
#define PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_
#endif

#include <hwy/highway.h>

#include <cstring>

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {

template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> LoadPartial(D d, const float* HWY_RESTRICT p, size_t n) {
  namespace hn = hwy::HWY_NAMESPACE;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  return hn::MaskedLoad(hn::FirstN(d, n), d, p);  // vmaskmovps / masked vmovups: no fault
#else
  HWY_ALIGN float buf[hn::MaxLanes(D())] = {};
  std::memcpy(buf, p, n * sizeof(float));
  return hn::Load(d, buf);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#endif  // PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_
