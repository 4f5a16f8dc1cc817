// f32_gemm_minmax_<MR>x<NR>__hwy: register-blocked GEMM microkernels, compiled once per
// Highway target (foreach_target) and listed per target by f32_gemm_ukernels().
//
// MR rows x NRV vectors of accumulators stay in registers; per k step the kernel loads NRV
// weight vectors (the packed panel, contiguous and aligned) and broadcasts MR values of A
// (fused into the FMA as a memory operand on x86). Tiles chosen by measurement (see
// bench/gemm_bench.cc): AVX3 8x2v (16 of 32 zmm) and 6x4v (24 of 32, for wide N), AVX2/SSE
// 6x2v (12 of 16 registers).
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
                   const float* HWY_RESTRICT r, size_t ldr, const F32GemmMoments* moments) {
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

  // Two k steps per loop trip: one loop branch per 48 FMAs gave the 24-accumulator tile ~5%
  // more in L1-resident loops here; the 16-accumulator ones neither gain nor lose.
  HWY_UNROLL(2)
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

  if (flags & kF32GemmMoments) {
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      const size_t col = j * N;
      if (col >= nr) continue;
      const V p = LoadColumns(d, moments->pivot, col, nr);
      V s1 = LoadColumns(d, moments->s1, col, nr), s2 = LoadColumns(d, moments->s2, col, nr);
      HWY_UNROLL(16)
      for (size_t i = 0; i < MR; ++i) {
        if (i >= mr) continue;
        const V t = hn::Sub(acc[i][j], p);
        s1 = hn::Add(s1, t);
        s2 = hn::MulAdd(t, t, s2);
      }
      if (col + N <= nr) {
        hn::StoreU(s1, d, moments->s1 + col);
        hn::StoreU(s2, d, moments->s2 + col);
      } else {
        StorePartial(s1, d, moments->s1 + col, nr - col);
        StorePartial(s2, d, moments->s2 + col, nr - col);
      }
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

// One row of A against S panels at once (whole K, from the panels' bias, then the clamp): the
// same FMAs in the same order as F32GemmMinmax for that row, but S weight streams in flight
// instead of one, which is what a memory-bound GEMV needs (28 vs 23 GB/s from L3 here).
template <size_t S, size_t NRV>
HWY_INLINE void GemvPanels(size_t k, const float* HWY_RESTRICT a, const float* HWY_RESTRICT panel,
                           size_t panel_stride, float* HWY_RESTRICT c, size_t cols, float min,
                           float max) {
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t NR = NRV * N;
  const float* w[S];
  V acc[S][NRV];
  HWY_UNROLL(8)
  for (size_t s = 0; s < S; ++s) {
    w[s] = panel + s * panel_stride;
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) acc[s][j] = hn::Load(d, w[s] + j * N);
    w[s] += NR;
  }
  for (size_t kk = 0; kk < k; ++kk) {
    const V av = hn::Set(d, a[kk]);
    HWY_UNROLL(8)
    for (size_t s = 0; s < S; ++s) {
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) {
        acc[s][j] = hn::MulAdd(av, hn::Load(d, w[s] + kk * NR + j * N), acc[s][j]);
      }
    }
  }
  const V vmin = hn::Set(d, min);
  const V vmax = hn::Set(d, max);
  HWY_UNROLL(8)
  for (size_t s = 0; s < S; ++s) {
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      const V v = hn::Min(hn::Max(acc[s][j], vmin), vmax);
      const size_t col = s * NR + j * N;
      if (col + N <= cols) {
        hn::StoreU(v, d, c + col);
      } else if (col < cols) {
        StorePartial(v, d, c + col, cols - col);
      }
    }
  }
}

// c[0:n) = clamp(a[0:k) * panels + bias): panels of NRV vectors, panel_stride floats apart,
// covering n columns (the last panel may be partial).
template <size_t NRV>
void F32GemvMinmax(size_t n, size_t k, const float* HWY_RESTRICT a, const float* HWY_RESTRICT panels,
                   size_t panel_stride, float* HWY_RESTRICT c, float min, float max) {
  const size_t NR = NRV * hn::Lanes(hn::ScalableTag<float>());
  constexpr size_t kStreams = 4;
  size_t n0 = 0;
  const float* p = panels;
  for (; n0 + kStreams * NR <= n; n0 += kStreams * NR, p += kStreams * panel_stride) {
    GemvPanels<kStreams, NRV>(k, a, p, panel_stride, c + n0, kStreams * NR, min, max);
  }
  for (; n0 < n; n0 += NR, p += panel_stride) {
    GemvPanels<1, NRV>(k, a, p, panel_stride, c + n0, n - n0 < NR ? n - n0 : NR, min, max);
  }
}

// The large tile (4 vectors wide) needs 24 accumulators + 4 weight vectors + a broadcast:
// AVX-512's 32 registers hold it; every other target (NEON too, unmeasured) uses the wide
// kernel as "large".
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kWideMR = 8, kWideNRV = 2, kNarrowMR = 8, kNarrowNRV = 1, kLargeMR = 6, kLargeNRV = 4;
#elif HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
constexpr size_t kWideMR = 4, kWideNRV = 2, kNarrowMR = 4, kNarrowNRV = 1, kLargeMR = 4, kLargeNRV = 2;
#else
constexpr size_t kWideMR = 6, kWideNRV = 2, kNarrowMR = 8, kNarrowNRV = 1, kLargeMR = 6, kLargeNRV = 2;
#endif

template <size_t MR, size_t NRV>
F32GemmUkernel Ukernel(char (&name)[48]) {
  const size_t nr = NRV * hn::Lanes(hn::ScalableTag<float>());
  std::snprintf(name, sizeof(name), "f32_gemm_minmax_%zux%zu__hwy", MR, nr);
  return {name, MR, nr, &F32GemmMinmax<MR, NRV>};
}

const F32GemmUkernels* GetF32GemmUkernels() {
  static char names[6][48];
  static const F32GemmUkernels table = [] {
    F32GemmUkernels t;
    t.isa = hwy::TargetName(HWY_TARGET);
    t.wide = Ukernel<kWideMR, kWideNRV>(names[0]);
    t.narrow = Ukernel<kNarrowMR, kNarrowNRV>(names[1]);
    t.large = Ukernel<kLargeMR, kLargeNRV>(names[2]);
    t.wide_short = Ukernel<kWideMR - 1, kWideNRV>(names[3]);
    t.narrow_short = Ukernel<kNarrowMR - 1, kNarrowNRV>(names[4]);
    t.large_short = Ukernel<kLargeMR - 1, kLargeNRV>(names[5]);
    t.gemv_wide = &F32GemvMinmax<kWideNRV>;
    t.gemv_narrow = &F32GemvMinmax<kNarrowNRV>;
    t.gemv_large = &F32GemvMinmax<kLargeNRV>;
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
