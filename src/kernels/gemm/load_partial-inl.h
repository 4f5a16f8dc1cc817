// LoadPartial(d, p, n): the first n (< Lanes) floats at p, zeros above, reading only p[0, n).
// Highway 1.0.3's MaskedLoad needs an aligned pointer and reads the full vector on targets
// without masked loads (SSE4, SSSE3, EMU128), which can fault at the end of a tensor.
// StorePartial(v, d, p, n): writes lanes [0, n) to p[0, n) and nothing else. Highway 1.0.3's
// BlendedStore is a load-blend-store of the whole vector on NEON (and EMU128): it rewrites the
// floats after p[n) (the next row of C, another thread's tile, or past the end of a tensor),
// so two threads writing neighbouring tiles could lose each other's results.
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

template <class D>
HWY_INLINE void StorePartial(hwy::HWY_NAMESPACE::Vec<D> v, D d, float* HWY_RESTRICT p, size_t n) {
  namespace hn = hwy::HWY_NAMESPACE;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  hn::BlendedStore(v, hn::FirstN(d, n), d, p);  // vmaskmovps / masked vmovups: lanes >= n untouched
#else
  HWY_ALIGN float buf[hn::MaxLanes(D())];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(float));
#endif
}

// The Lanes(d) floats of a row at p + col: all of them, the ones before column nr, or zeros
// past it.
template <class D>
HWY_INLINE hwy::HWY_NAMESPACE::Vec<D> LoadColumns(D d, const float* HWY_RESTRICT p, size_t col, size_t nr) {
  namespace hn = hwy::HWY_NAMESPACE;
  const size_t N = hn::Lanes(d);
  if (col + N <= nr) return hn::LoadU(d, p + col);
  if (col < nr) return LoadPartial(d, p + col, nr - col);
  return hn::Zero(d);
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#endif  // PCV_KERNELS_GEMM_LOAD_PARTIAL_INL_H_
