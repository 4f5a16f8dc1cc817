// The accumulating GEMM driver (contract in gemm_backward.h).
#include "kernels/gemm/gemm_backward.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/thread_pool.h"

namespace pcv::kernels {
namespace {

constexpr size_t kMaxKc = 512;

size_t choose_kc(size_t k) {
  if (k <= kMaxKc) return k;
  const size_t blocks = (k + kMaxKc - 1) / kMaxKc;
  return (k + blocks - 1) / blocks;
}

// A panel source: panel p starts at base + p * panel_stride; row kk of the panel at
// + row0 + kk * nr.
struct PanelSource {
  const float* base;
  size_t panel_stride;
  size_t row0;  // offset of the first K row inside a panel (nr for gemm.h's bias row, else 0)
  size_t k, n;
  F32GemmUkernel uk;
};

// The bias of an assigning GEMM's first K block: zeros, aligned for the microkernel's loads,
// NR floats (64 for AVX-512's 6x64 tile; room for wider ones).
alignas(64) constexpr float kZeroBias[256] = {};

void acc_tile(const PanelSource& b, const float* a, size_t lda, float* c, size_t ldc, size_t m0,
              size_t rows, size_t n0, size_t cols, bool assign) {
  const size_t nr = b.uk.nr, mr = b.uk.mr;
  const size_t kc_max = choose_kc(b.k);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (size_t k0 = 0; k0 < b.k; k0 += kc_max) {
    // Assigning: the first K block starts from zeros instead of loading C.
    const uint32_t flags = assign && k0 == 0 ? kF32GemmInitBias : 0u;
    const size_t kc = std::min(kc_max, b.k - k0);
    for (size_t n = n0; n < n0 + cols; n += nr) {
      const float* w = b.base + (n / nr) * b.panel_stride + b.row0 + k0 * nr;
      const size_t ncols = std::min(nr, n0 + cols - n);
      for (size_t m = m0; m < m0 + rows; m += mr) {
        const size_t mrows = std::min(mr, m0 + rows - m);
        b.uk.fn(mrows, ncols, kc, a + m * lda + k0, lda, w, kZeroBias, c + m * ldc + n, ldc, -kInf,
                kInf, flags, nullptr, 0, nullptr);
      }
    }
  }
}

void acc_driver(size_t m, const float* a, size_t lda, const PanelSource& b, float* c, size_t ldc,
                ThreadPool* pool, bool assign = false) {
  if (m == 0 || b.k == 0 || b.n == 0) return;
  const size_t mr = b.uk.mr, nr = b.uk.nr;
  const size_t n_round = (b.n + nr - 1) / nr * nr;
  size_t tile_m = std::min<size_t>((m + mr - 1) / mr * mr, 32 * mr);
  size_t tile_n = n_round;
  const size_t threads = pool != nullptr ? static_cast<size_t>(pool->threads()) : 1;
  if (threads > 1) {
    auto tiles = [&] { return ((m + tile_m - 1) / tile_m) * ((n_round + tile_n - 1) / tile_n); };
    while (tiles() < 4 * threads && tile_m > mr) tile_m = (tile_m / 2 + mr - 1) / mr * mr;
    while (tiles() < 4 * threads && tile_n > nr) tile_n = (tile_n / 2 + nr - 1) / nr * nr;
  }
  const size_t tiles_m = (m + tile_m - 1) / tile_m;
  const size_t tiles_n = (b.n + tile_n - 1) / tile_n;
  auto run = [&](size_t t) {
    const size_t tm = t / tiles_n, tn = t % tiles_n;
    const size_t m0 = tm * tile_m, n0 = tn * tile_n;
    acc_tile(b, a, lda, c, ldc, m0, std::min(tile_m, m - m0), n0, std::min(tile_n, b.n - n0), assign);
  };
  if (threads <= 1 || tiles_m * tiles_n == 1) {
    for (size_t t = 0; t < tiles_m * tiles_n; ++t) run(t);
  } else {
    pool->parallel_for(tiles_m * tiles_n, run);
  }
}

}  // namespace

F32GemmUkernel f32_gemm_acc_ukernel(size_t n) {
  const F32GemmUkernels& uk = f32_gemm_ukernels();
  switch (f32_gemm_auto_choice(uk, n)) {
    case F32GemmUkernelChoice::kNarrow: return uk.narrow;
    case F32GemmUkernelChoice::kLarge: return uk.large;
    default: return uk.wide;
  }
}

bool shape_f32_gemm_acc_b(size_t k, size_t n, F32GemmAccB* b) {
  b->k = k;
  b->n = n;
  b->ukernel = f32_gemm_acc_ukernel(n);
  const size_t bytes = b->panels() * b->panel_stride_elems() * sizeof(float);
  if (b->storage.size() < bytes) return b->storage.resize(bytes);
  return true;
}

void reset_padding_f32_gemm_acc_b(F32GemmAccB* b) {
  const size_t nr = b->nr();
  const size_t valid = b->n - (b->panels() - 1) * nr;
  if (valid == nr) return;
  float* p = b->panel(b->panels() - 1);
  for (size_t kk = 0; kk < b->k; ++kk) std::fill(p + kk * nr + valid, p + kk * nr + nr, 0.0f);
}

bool pack_f32_gemm_acc_b(size_t k, size_t n, const float* b, size_t ldb, F32GemmBLayout layout,
                         F32GemmAccB* out) {
  if (!shape_f32_gemm_acc_b(k, n, out)) return false;
  const size_t nr = out->nr();
  for (size_t p = 0; p < out->panels(); ++p) {
    const size_t n0 = p * nr;
    const size_t cols = std::min(nr, n - n0);
    float* dst = out->panel(p);
    if (layout == F32GemmBLayout::kKN) {
      for (size_t kk = 0; kk < k; ++kk) {
        std::memcpy(dst + kk * nr, b + kk * ldb + n0, cols * sizeof(float));
        std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
      }
    } else {
      for (size_t kk = 0; kk < k; ++kk) std::fill(dst + kk * nr + cols, dst + kk * nr + nr, 0.0f);
      for (size_t j = 0; j < cols; ++j) {
        const float* src = b + (n0 + j) * ldb;
        for (size_t kk = 0; kk < k; ++kk) dst[kk * nr + j] = src[kk];
      }
    }
  }
  return true;
}

void f32_gemm_acc(size_t m, const float* a, size_t lda, const F32GemmAccB& b, float* c,
                  size_t ldc, ThreadPool* pool) {
  const PanelSource src{b.panel(0), b.panel_stride_elems(), 0, b.k, b.n, b.ukernel};
  acc_driver(m, a, lda, src, c, ldc, pool);
}

void f32_gemm_packed_acc(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c,
                         size_t ldc, ThreadPool* pool) {
  const PanelSource src{b.panel(0), b.panel_stride_elems, b.ukernel.nr, b.k, b.n, b.ukernel};
  acc_driver(m, a, lda, src, c, ldc, pool);
}

void f32_gemm_acc_panels(size_t m, const float* a, size_t lda, const float* panels, size_t k,
                         size_t n, const F32GemmUkernel& ukernel, float* c, size_t ldc,
                         ThreadPool* pool, bool assign) {
  const PanelSource src{panels, ukernel.nr * k, 0, k, n, ukernel};
  acc_driver(m, a, lda, src, c, ldc, pool, assign);
}

void f32_transpose(size_t m, size_t n, const float* in, size_t ld_in, float* out, size_t ld_out) {
  constexpr size_t kBlock = 32;
  for (size_t i0 = 0; i0 < m; i0 += kBlock) {
    const size_t i1 = std::min(m, i0 + kBlock);
    for (size_t j0 = 0; j0 < n; j0 += kBlock) {
      const size_t j1 = std::min(n, j0 + kBlock);
      for (size_t i = i0; i < i1; ++i) {
        for (size_t j = j0; j < j1; ++j) out[j * ld_out + i] = in[i * ld_in + j];
      }
    }
  }
}

}  // namespace pcv::kernels
