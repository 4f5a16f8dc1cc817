// f32_gemm_minmax_<MR>x<NR>__hwy: register-blocked GEMM microkernels, compiled once per
// Highway target (foreach_target) and listed per target by f32_gemm_ukernels().
//
// MR rows x NRV vectors of accumulators stay in registers; per k step the kernel loads NRV
// weight vectors (the packed panel, contiguous and aligned) and broadcasts MR values of A
// (fused into the FMA as a memory operand on x86). Tiles chosen by measurement (see
// bench/gemm_bench.cc): AVX3 8x2v (16 of 32 zmm), AVX2/SSE 6x2v (12 of 16 registers).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm/f32_gemm_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdio>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <size_t MR, size_t NRV>
void F32GemmMinmax(size_t mr, size_t nr, size_t kc, const float* HWY_RESTRICT a, size_t lda,
                   const float* HWY_RESTRICT w, const float* HWY_RESTRICT bias,
                   float* HWY_RESTRICT c, size_t ldc, float min, float max, uint32_t flags,
                   const float* HWY_RESTRICT r, size_t ldr) {
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t NR = NRV * N;

  // Rows past mr re-read the last valid row (never stored): no branch in the k loop.
  const float* ar[MR];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : mr - 1) * lda;

  // Loops over i < MR and j < NRV are fully unrolled so acc[][] lives in registers.
  V acc[MR][NRV];
  if (flags & kF32GemmInitBias) {
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      const V b = hn::Load(d, bias + j * N);
      HWY_UNROLL(16)
      for (size_t i = 0; i < MR; ++i) acc[i][j] = b;
    }
  } else {
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      const float* ci = c + (i < mr ? i : mr - 1) * ldc;
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = LoadColumns(d, ci, j * N, nr);
    }
  }

  for (size_t k = 0; k < kc; ++k) {
    V b[NRV];
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) b[j] = hn::Load(d, w + j * N);
    w += NR;
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      const V av = hn::Set(d, ar[i][k]);
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = hn::MulAdd(av, b[j], acc[i][j]);
    }
  }

  if (flags & kF32GemmAddResidual) {
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      const float* ri = r + (i < mr ? i : mr - 1) * ldr;
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = hn::Add(acc[i][j], LoadColumns(d, ri, j * N, nr));
    }
  }

  if (flags & kF32GemmClamp) {
    const V vmin = hn::Set(d, min);
    const V vmax = hn::Set(d, max);
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = hn::Min(hn::Max(acc[i][j], vmin), vmax);
    }
  }

  if (HWY_LIKELY(nr == NR)) {
    if (flags & kF32GemmStreamC) {
      HWY_UNROLL(16)
      for (size_t i = 0; i < MR; ++i) {
        if (i < mr) {
          HWY_UNROLL(4)
          for (size_t j = 0; j < NRV; ++j) hn::Stream(acc[i][j], d, c + i * ldc + j * N);
        }
      }
      return;
    }
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      if (i < mr) {
        HWY_UNROLL(4)
        for (size_t j = 0; j < NRV; ++j) hn::StoreU(acc[i][j], d, c + i * ldc + j * N);
      }
    }
    return;
  }
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    if (i >= mr) continue;
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      const size_t col = j * N;
      if (col + N <= nr) {
        hn::StoreU(acc[i][j], d, c + i * ldc + col);
      } else if (col < nr) {
        StorePartial(acc[i][j], d, c + i * ldc + col, nr - col);
      }
    }
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kWideMR = 8, kWideNRV = 2, kNarrowMR = 8, kNarrowNRV = 1;
#elif HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
constexpr size_t kWideMR = 4, kWideNRV = 2, kNarrowMR = 4, kNarrowNRV = 1;
#else
constexpr size_t kWideMR = 6, kWideNRV = 2, kNarrowMR = 8, kNarrowNRV = 1;
#endif

const F32GemmUkernels* GetF32GemmUkernels() {
  static char wide_name[48];
  static char narrow_name[48];
  static char wide_short_name[48];
  static char narrow_short_name[48];
  static const F32GemmUkernels table = [] {
    const size_t lanes = hn::Lanes(hn::ScalableTag<float>());
    F32GemmUkernels t;
    t.isa = hwy::TargetName(HWY_TARGET);
    std::snprintf(wide_name, sizeof(wide_name), "f32_gemm_minmax_%zux%zu__hwy", kWideMR,
                  kWideNRV * lanes);
    std::snprintf(narrow_name, sizeof(narrow_name), "f32_gemm_minmax_%zux%zu__hwy", kNarrowMR,
                  kNarrowNRV * lanes);
    std::snprintf(wide_short_name, sizeof(wide_short_name), "f32_gemm_minmax_%zux%zu__hwy", kWideMR - 1,
                  kWideNRV * lanes);
    std::snprintf(narrow_short_name, sizeof(narrow_short_name), "f32_gemm_minmax_%zux%zu__hwy", kNarrowMR - 1,
                  kNarrowNRV * lanes);
    t.wide = {wide_name, kWideMR, kWideNRV * lanes, &F32GemmMinmax<kWideMR, kWideNRV>};
    t.narrow = {narrow_name, kNarrowMR, kNarrowNRV * lanes, &F32GemmMinmax<kNarrowMR, kNarrowNRV>};
    t.wide_short = {wide_short_name, kWideMR - 1, kWideNRV * lanes, &F32GemmMinmax<kWideMR - 1, kWideNRV>};
    t.narrow_short = {narrow_short_name, kNarrowMR - 1, kNarrowNRV * lanes,
                      &F32GemmMinmax<kNarrowMR - 1, kNarrowNRV>};
    return t;
  }();
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(GetF32GemmUkernels);

const F32GemmUkernels& f32_gemm_ukernels() {
  apply_forced_isa();
  return *HWY_DYNAMIC_DISPATCH(GetF32GemmUkernels)();
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
