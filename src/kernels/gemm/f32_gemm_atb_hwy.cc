// f32_gemm_atb_acc (contract in gemm_backward.h): C(M, N) += A^T B over k rows, A and B read
// in place. The filter gradient of a conv is this product with A = the input patches and
// B = the output gradient, both (pixels, channels) row-major: no transpose, no packing.
//
// Microkernel: MR rows of C x NRV vectors of accumulators in registers. Per row r it loads
// NRV vectors of B[r] and broadcasts MR consecutive floats of A[r] (A^T's column), i.e. the
// GEMM microkernel's inner step with A read across instead of down. Rows of C past mr
// re-read A's last valid column and are never stored. The k rows are walked in blocks of kKc
// so that a block of A and B stays in L2 while every tile of C passes over it; each C element
// still adds its products in row order.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm/f32_gemm_atb_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>

#include "kernels/gemm/gemm_backward.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kMR = 8, kNRV = 2;
#elif HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
constexpr size_t kMR = 4, kNRV = 2;
#else
constexpr size_t kMR = 6, kNRV = 2;
#endif
constexpr size_t kKc = 256;

template <class D, size_t MR, size_t NRV, bool kFullN>
void AtbTile(size_t mr, size_t nr, size_t kc, const float* HWY_RESTRICT a, size_t lda,
             const float* HWY_RESTRICT b, size_t ldb, float* HWY_RESTRICT c, size_t ldc) {
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  size_t col[MR];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) col[i] = i < mr ? i : mr - 1;
  V acc[MR][NRV];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) acc[i][j] = LoadColumns(d, c + col[i] * ldc, j * N, nr);
  }
  for (size_t k = 0; k < kc; ++k) {
    const float* br = b + k * ldb;
    const float* ar = a + k * lda;
    V bv[NRV];
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) bv[j] = kFullN ? hn::LoadU(d, br + j * N) : LoadColumns(d, br, j * N, nr);
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      const V av = hn::Set(d, ar[col[i]]);
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = hn::MulAdd(av, bv[j], acc[i][j]);
    }
  }
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    if (i >= mr) continue;
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      const size_t cj = j * N;
      if (cj + N <= nr) {
        hn::StoreU(acc[i][j], d, c + i * ldc + cj);
      } else if (cj < nr) {
        StorePartial(acc[i][j], d, c + i * ldc + cj, nr - cj);
      }
    }
  }
}

// One column strip [n0, n0 + width) of C over all row tiles, for one block of k rows.
template <class D, size_t NRV, bool kFullN>
HWY_INLINE void AtbStrip(size_t m, size_t n0, size_t width, size_t kc, const float* ak, size_t lda,
                         const float* bk, size_t ldb, float* c, size_t ldc) {
  for (size_t m0 = 0; m0 < m; m0 += kMR) {
    AtbTile<D, kMR, NRV, kFullN>(std::min(kMR, m - m0), width, kc, ak + m0, lda, bk + n0, ldb,
                                 c + m0 * ldc + n0, ldc);
  }
}

void F32GemmAtbAcc(size_t m, size_t n, size_t k, const float* HWY_RESTRICT a, size_t lda,
                   const float* HWY_RESTRICT b, size_t ldb, float* HWY_RESTRICT c, size_t ldc) {
  using D = hn::ScalableTag<float>;
  const size_t N = hn::Lanes(D());
  const size_t NR = kNRV * N;
  for (size_t k0 = 0; k0 < k; k0 += kKc) {
    const size_t kc = std::min(kKc, k - k0);
    const float* ak = a + k0 * lda;
    const float* bk = b + k0 * ldb;
    size_t n0 = 0;
    for (; n0 + NR <= n; n0 += NR) AtbStrip<D, kNRV, true>(m, n0, NR, kc, ak, lda, bk, ldb, c, ldc);
    if (n0 + N <= n) {
      AtbStrip<D, 1, true>(m, n0, N, kc, ak, lda, bk, ldb, c, ldc);
      n0 += N;
    }
    // Columns left over (< N): narrower full vectors where they fit (e.g. 24 = 16 + 8 with
    // 16 lanes), partial loads only for the last few. Partial loads in the k loop are slow
    // (zero-masked loads under AVX-512), and output-channel counts like 24 are common.
#if HWY_TARGET != HWY_SCALAR
    if (N > 8 && n0 + 8 <= n) {
      AtbStrip<hn::CappedTag<float, 8>, 1, true>(m, n0, 8, kc, ak, lda, bk, ldb, c, ldc);
      n0 += 8;
    }
    if (N > 4 && n0 + 4 <= n) {
      AtbStrip<hn::CappedTag<float, 4>, 1, true>(m, n0, 4, kc, ak, lda, bk, ldb, c, ldc);
      n0 += 4;
    }
#endif
    if (n0 < n) AtbStrip<D, 1, false>(m, n0, n - n0, kc, ak, lda, bk, ldb, c, ldc);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(F32GemmAtbAcc);

void f32_gemm_atb_acc(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
                      size_t ldb, float* c, size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32GemmAtbAcc)(m, n, k, a, lda, b, ldb, c, ldc);
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
