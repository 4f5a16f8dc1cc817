// f32_gemm_atb_acc (contract in gemm_backward.h): C(M, N) += A^T B over k rows, A and B read
// in place. The filter gradient of a conv is this product with A = the input patches and
// B = the output gradient, both (pixels, channels) row-major: no transpose, no packing.
//
// Microkernel: MR rows of C x NRV vectors of accumulators in registers. Per row r it loads
// NRV vectors of B[r] and broadcasts MR consecutive floats of A[r] (A^T's column), i.e. the
// GEMM microkernel's inner step with A read across instead of down. Rows of C past mr
// re-read A's last valid column and are never stored. The gathered form reads A's and B's
// k-th rows at listed offsets and C's i-th column of A at a listed offset: a conv's patches
// straight from the image, no im2col. The k rows are walked in blocks of kKc
// so that a block of A and B stays in L2 while every tile of C passes over it; each C element
// still adds its products in row order.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm/f32_gemm_atb_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/gemm/gemm_backward.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The tile: MR rows x NRV vectors. The packed tile (AVX-512 only): B's k rows of a strip of
// 4 vectors are first copied into one contiguous buffer (kKc x 64 floats, 64 KB on the
// stack), which 6 x 64 tiles then read in sequence instead of at B's row stride: 24
// accumulators, as the forward GEMM's large tile, which the 32 registers hold. Only for C of
// at least kPackMinM rows, which reuse the copy. One thread, a filter gradient's shapes at
// MobileNetV2's batch 32 per slice (k rows, C m x n), GFLOP/s strided -> packed: 1280x320
// k 196 101 -> 132, 320x960 k 196 107 -> 142, 96x576 k 256 126 -> 148, 576x96 k 256
// 111 -> 127; m = 24 lost (146 -> 130). AVX2's 6 x 2 tile packed lost 2-8%: no packed tile
// there (kPackNRV 0). PCV_ATB_PACK=0 turns it off (comparisons).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kMR = 8, kNRV = 2, kPackMR = 6, kPackNRV = 4;
#elif HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
constexpr size_t kMR = 4, kNRV = 2, kPackMR = 1, kPackNRV = 0;
#else
constexpr size_t kMR = 6, kNRV = 2, kPackMR = 1, kPackNRV = 0;
#endif
constexpr size_t kKc = 256;
constexpr size_t kPackMinM = 48;

// Where the k-th row of A and of B start: strided (row r at r * ld) or gathered (at the
// r-th offset of a list; conv patches read straight from the input image).
struct StridedRows {
  size_t lda, ldb;
  const float* a_row(const float* a, size_t r) const { return a + r * lda; }
  const float* b_row(const float* b, size_t r) const { return b + r * ldb; }
  StridedRows from(size_t /*k0*/) const { return *this; }
};
struct GatheredRows {
  const size_t* a_rows;
  const size_t* b_rows;
  const float* a_row(const float* a, size_t r) const { return a + a_rows[r]; }
  const float* b_row(const float* b, size_t r) const { return b + b_rows[r]; }
  GatheredRows from(size_t k0) const { return {a_rows + k0, b_rows + k0}; }
};

// One MR x (NRV vectors) tile of C over kc rows. Column i of the tile reads A's row at
// offset cols[i] (nullptr: offset i).
template <class D, size_t MR, size_t NRV, bool kFullN, class Rows>
void AtbTile(size_t mr, size_t nr, size_t kc, const float* HWY_RESTRICT a, const size_t* cols,
             Rows rows, const float* HWY_RESTRICT b, float* HWY_RESTRICT c, size_t ldc) {
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  size_t col[MR];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    const size_t ci = i < mr ? i : mr - 1;
    col[i] = cols != nullptr ? cols[ci] : ci;
  }
  V acc[MR][NRV];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    const size_t ci = i < mr ? i : mr - 1;
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) acc[i][j] = LoadColumns(d, c + ci * ldc, j * N, nr);
  }
  for (size_t k = 0; k < kc; ++k) {
    const float* br = rows.b_row(b, k);
    const float* ar = rows.a_row(a, k);
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
template <class D, size_t NRV, bool kFullN, class Rows>
HWY_INLINE void AtbStrip(size_t m, size_t n0, size_t width, size_t kc, const float* a,
                         const size_t* a_cols, Rows rows, const float* b, float* c, size_t ldc) {
  for (size_t m0 = 0; m0 < m; m0 += kMR) {
    AtbTile<D, kMR, NRV, kFullN>(std::min(kMR, m - m0), width, kc, a_cols != nullptr ? a : a + m0,
                                 a_cols != nullptr ? a_cols + m0 : nullptr, rows, b + n0,
                                 c + m0 * ldc + n0, ldc);
  }
}

// A's rows as Rows gives them, B's r-th row at b + r * width (a packed strip).
template <class Rows>
struct PackedBRows {
  Rows rows;
  size_t width;
  const float* a_row(const float* a, size_t r) const { return rows.a_row(a, r); }
  const float* b_row(const float* b, size_t r) const { return b + r * width; }
};

bool PackEnabled() {
  static const bool on = [] {
    const char* e = std::getenv("PCV_ATB_PACK");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }();
  return on;
}

template <class Rows>
void AtbAcc(size_t m, size_t n, size_t k, const float* HWY_RESTRICT a, const size_t* a_cols,
            Rows rows, const float* HWY_RESTRICT b, float* HWY_RESTRICT c, size_t ldc) {
  using D = hn::ScalableTag<float>;
  const size_t N = hn::Lanes(D());
  const size_t NR = kNRV * N;
  for (size_t k0 = 0; k0 < k; k0 += kKc) {
    const size_t kc = std::min(kKc, k - k0);
    // Strided rows move the bases; gathered rows move the offset lists.
    const Rows rk = rows.from(k0);
    const float* ak = std::is_same_v<Rows, StridedRows> ? rows.a_row(a, k0) : a;
    const float* bk = std::is_same_v<Rows, StridedRows> ? rows.b_row(b, k0) : b;
    size_t n0 = 0;
    if constexpr (kPackNRV > 0) {
      if (m >= kPackMinM && PackEnabled()) {
        const size_t width = kPackNRV * N;
        HWY_ALIGN float packed[kKc * std::max<size_t>(kPackNRV, 1) * hn::MaxLanes(D())];
        for (; n0 + width <= n; n0 += width) {
          for (size_t r = 0; r < kc; ++r) {
            const float* src = rk.b_row(bk, r) + n0;
            HWY_UNROLL(4)
            for (size_t j = 0; j < kPackNRV; ++j) {
              hn::Store(hn::LoadU(D(), src + j * N), D(), packed + r * width + j * N);
            }
          }
          const PackedBRows<Rows> pr{rk, width};
          for (size_t m0 = 0; m0 < m; m0 += kPackMR) {
            AtbTile<D, kPackMR, kPackNRV, true>(std::min(kPackMR, m - m0), width, kc,
                                                a_cols != nullptr ? ak : ak + m0,
                                                a_cols != nullptr ? a_cols + m0 : nullptr, pr, packed,
                                                c + m0 * ldc + n0, ldc);
          }
        }
      }
    }
    for (; n0 + NR <= n; n0 += NR) AtbStrip<D, kNRV, true>(m, n0, NR, kc, ak, a_cols, rk, bk, c, ldc);
    if (n0 + N <= n) {
      AtbStrip<D, 1, true>(m, n0, N, kc, ak, a_cols, rk, bk, c, ldc);
      n0 += N;
    }
    // Columns left over (< N): narrower full vectors where they fit (e.g. 24 = 16 + 8 with
    // 16 lanes), partial loads only for the last few. Partial loads in the k loop are slow
    // (zero-masked loads under AVX-512), and output-channel counts like 24 are common.
#if HWY_TARGET != HWY_SCALAR
    if (N > 8 && n0 + 8 <= n) {
      AtbStrip<hn::CappedTag<float, 8>, 1, true>(m, n0, 8, kc, ak, a_cols, rk, bk, c, ldc);
      n0 += 8;
    }
    if (N > 4 && n0 + 4 <= n) {
      AtbStrip<hn::CappedTag<float, 4>, 1, true>(m, n0, 4, kc, ak, a_cols, rk, bk, c, ldc);
      n0 += 4;
    }
#endif
    if (n0 < n) AtbStrip<D, 1, false>(m, n0, n - n0, kc, ak, a_cols, rk, bk, c, ldc);
  }
}

void F32GemmAtbAcc(size_t m, size_t n, size_t k, const float* HWY_RESTRICT a, size_t lda,
                   const size_t* a_cols, const float* HWY_RESTRICT b, size_t ldb, float* HWY_RESTRICT c,
                   size_t ldc) {
  AtbAcc(m, n, k, a, a_cols, StridedRows{lda, ldb}, b, c, ldc);
}

void F32GemmAtbAccGather(size_t m, size_t n, size_t k, const float* HWY_RESTRICT a,
                         const size_t* a_rows, const size_t* a_cols, const float* HWY_RESTRICT b,
                         const size_t* b_rows, float* HWY_RESTRICT c, size_t ldc) {
  AtbAcc(m, n, k, a, a_cols, GatheredRows{a_rows, b_rows}, b, c, ldc);
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(F32GemmAtbAcc);
HWY_EXPORT(F32GemmAtbAccGather);

void f32_gemm_atb_acc(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
                      size_t ldb, float* c, size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32GemmAtbAcc)(m, n, k, a, lda, nullptr, b, ldb, c, ldc);
}

void f32_gemm_atb_acc_cols(size_t m, size_t n, size_t k, const float* a, size_t lda, const size_t* a_cols,
                           const float* b, size_t ldb, float* c, size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32GemmAtbAcc)(m, n, k, a, lda, a_cols, b, ldb, c, ldc);
}

void f32_gemm_atb_acc_gather(size_t m, size_t n, size_t k, const float* a, const size_t* a_rows,
                             const size_t* a_cols, const float* b, const size_t* b_rows, float* c,
                             size_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32GemmAtbAccGather)(m, n, k, a, a_rows, a_cols, b, b_rows, c, ldc);
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
