// Packing and the threaded driver for the f32 GEMM (contract in gemm.h).
#include "kernels/gemm/gemm.h"

#include <fmt/format.h>
#include <hwy/detect_targets.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/log.h"
#include "base/thread_pool.h"
#include "kernels/common/stream_fence.h"

namespace pcv::kernels {

const char* apply_forced_isa() {
  static const char* pinned = [] () -> const char* {
    const char* env = std::getenv("PCV_FORCE_ISA");
    if (env == nullptr || *env == '\0') return nullptr;
    static const char* const kScalarName = hwy::TargetName(HWY_BASELINE_SCALAR);
    struct Name {
      std::string_view name;
      int64_t target;
      const char* canonical;
    };
    static const Name kNames[] = {
        {"AVX3_DL", HWY_AVX3_DL, "AVX3_DL"}, {"AVX3", HWY_AVX3, "AVX3"},
        {"AVX512", HWY_AVX3, "AVX3"},        {"AVX2", HWY_AVX2, "AVX2"},
        {"SSE4", HWY_SSE4, "SSE4"},          {"SSSE3", HWY_SSSE3, "SSSE3"},
        // The portable fallback is EMU128, or SCALAR where Highway marks EMU128 broken (GCC < 12.3).
        {"EMU128", HWY_BASELINE_SCALAR, kScalarName}, {"SCALAR", HWY_BASELINE_SCALAR, kScalarName},
    };
    for (const Name& n : kNames) {
      if (n.name == env) {
        hwy::DisableTargets(~n.target);
        return n.canonical;
      }
    }
    log_warning("PCV_FORCE_ISA={} is not a known target (AVX3_DL, AVX3, AVX2, SSE4, SSSE3, "
                "EMU128); ignored", env);
    return nullptr;
  }();
  return pinned;
}

namespace {

// K block: a kc x nr weight block (64 KiB at kc = 512, nr = 32) stays in L2 while every row
// block of a tile reuses it; each extra block costs a reload of C. Measured on Zen 4 (AVX3,
// 1 thread): kc = 512 gave 91% of peak on 1024^3 against 81-85% for kc = 128/256.
constexpr size_t kMaxKc = 512;

// Row tile: the A block (~256 rows x kc, 512 KiB at kc = 512) stays in L2 while every panel
// of the tile streams past it.
constexpr size_t kTileRows = 256;

size_t choose_kc(size_t k) {
  if (k <= kMaxKc) return k;
  const size_t blocks = (k + kMaxKc - 1) / kMaxKc;
  return (k + blocks - 1) / blocks;  // equal blocks, none tiny
}

struct UkernelFamily {
  F32GemmUkernel full, short_rows;
  F32GemmUkernels::GemvFn gemv;
};

UkernelFamily choose_ukernel(const F32GemmUkernels& uk, size_t n, F32GemmUkernelChoice choice) {
  if (choice == F32GemmUkernelChoice::kAuto) choice = f32_gemm_auto_choice(uk, n);
  if (choice == F32GemmUkernelChoice::kNarrow) return {uk.narrow, uk.narrow_short, uk.gemv_narrow};
  if (choice == F32GemmUkernelChoice::kLarge) return {uk.large, uk.large_short, uk.gemv_large};
  return {uk.wide, uk.wide_short, uk.gemv_wide};
}

}  // namespace

F32GemmUkernelChoice f32_gemm_auto_choice(const F32GemmUkernels& uk, size_t n) {
  // Columns computed, padding included. Measured (Zen 4, AVX3): the narrow kernel matches the
  // wide one within noise when neither pads (N = 192: 92% vs 92%), and wins when the wide one
  // pads (N = 144: 85% vs 79%; N = 16: 83% vs 41%). So: the wide one unless it pads more.
  // The large one (6x64 on AVX-512: 10 loads per 24 FMAs against 10 per 16) wherever it pads
  // no more than the wide one. Measured here (SPR, 1 thread, best of 60): 1024^3 150 -> 165
  // GFLOP/s; MobileNetV2's N = 384, 576, 960, 1280 GEMMs 4-16% faster alone (the network
  // within noise).
  auto cols = [n](const F32GemmUkernel& u) { return (n + u.nr - 1) / u.nr * u.nr; };
  if (cols(uk.narrow) < cols(uk.wide)) return F32GemmUkernelChoice::kNarrow;
  return cols(uk.large) <= cols(uk.wide) ? F32GemmUkernelChoice::kLarge : F32GemmUkernelChoice::kWide;
}

Expected<F32GemmPackedB> pack_f32_gemm_b(size_t k, size_t n, const float* b, size_t ldb,
                                         const float* bias, F32GemmBLayout layout,
                                         F32GemmUkernelChoice choice) {
  if (k == 0 || n == 0 || b == nullptr) {
    return invalid_argument(fmt::format("pack_f32_gemm_b: k={} n={} b={}", k, n,
                                        b == nullptr ? "null" : "set"));
  }
  const size_t min_ld = layout == F32GemmBLayout::kKN ? n : k;
  if (ldb < min_ld) {
    return invalid_argument(fmt::format("pack_f32_gemm_b: ldb={} < {}", ldb, min_ld));
  }
  const F32GemmUkernels& uk = f32_gemm_ukernels();
  F32GemmPackedB p;
  p.k = k;
  p.n = n;
  p.kc = choose_kc(k);
  const UkernelFamily family = choose_ukernel(uk, n, choice);
  p.ukernel = family.full;
  p.short_rows = family.short_rows;
  p.gemv = family.gemv;
  p.isa = uk.isa;
  const size_t nr = p.ukernel.nr;
  p.panel_stride_elems = nr * (1 + k);
  if (!p.data.resize(p.panels() * p.panel_stride_elems * sizeof(float))) {
    return out_of_memory(fmt::format("pack_f32_gemm_b: {} bytes",
                                     p.panels() * p.panel_stride_elems * sizeof(float)));
  }
  float* out = reinterpret_cast<float*>(p.data.data());  // zero-filled by resize
  for (size_t panel = 0; panel < p.panels(); ++panel) {
    const size_t n0 = panel * nr;
    const size_t cols = std::min(nr, n - n0);
    float* dst = out + panel * p.panel_stride_elems;
    if (bias != nullptr) std::memcpy(dst, bias + n0, cols * sizeof(float));
    dst += nr;
    if (layout == F32GemmBLayout::kKN) {
      for (size_t kk = 0; kk < k; ++kk) {
        std::memcpy(dst + kk * nr, b + kk * ldb + n0, cols * sizeof(float));
      }
    } else {
      for (size_t j = 0; j < cols; ++j) {
        const float* src = b + (n0 + j) * ldb;
        for (size_t kk = 0; kk < k; ++kk) dst[kk * nr + j] = src[kk];
      }
    }
  }
  return p;
}

namespace {

struct GemmTask {
  const float* a;
  size_t lda;
  const F32GemmPackedB* b;
  float* c;
  size_t ldc;
  size_t m;
  float min, max;
  const float* r;  // residual or nullptr
  size_t ldr;
  const F32GemmUkernel* uk;  // b->ukernel or b->short_rows
  bool stream;               // kF32GemmStreamC on the last K block
  const F32GemmMoments* moments = nullptr;  // kF32GemmMoments on the last K block (one thread)
};

// Whether C (m, n) with row stride ldc is large enough, and its rows aligned, for
// non-temporal stores.
bool stream_c(size_t m, size_t n, const float* c, size_t ldc) {
  return m * n * sizeof(float) >= kStreamOutputBytes && reinterpret_cast<uintptr_t>(c) % 64 == 0 &&
         ldc * sizeof(float) % 64 == 0;
}

// Row blocks ahead whose A rows are prefetched (see gemm_tile).
constexpr size_t kAheadBlocks = 2;

// One tile: rows [m0, m0 + rows) x columns [n0, n0 + cols), n0 a multiple of nr. Loop order:
// K blocks outermost (the A block rows x kc stays in L2), then panels (the kc x nr weight block
// is reused by every row block: from L1 where it fits, else from L2, with the next one
// prefetched), then MR-row blocks.
void gemm_tile(const GemmTask& t, size_t m0, size_t n0, size_t rows, size_t cols) {
  const F32GemmPackedB& b = *t.b;
  const F32GemmUkernel& uk = *t.uk;
  const size_t nr = uk.nr;
  const size_t mr = uk.mr;
  // One row block (a GEMV, a small batch): no A block to keep in L2; whole panels stream.
  const size_t block = rows <= mr ? b.k : b.kc;
  for (size_t k0 = 0; k0 < b.k; k0 += block) {
    const size_t kc = std::min(block, b.k - k0);
    const bool last = k0 + kc >= b.k;
    const size_t lines = kc * nr * sizeof(float) / 64;
    const size_t blocks_m = (rows + mr - 1) / mr;
    const bool prefetch = blocks_m > 1 && kc * nr * sizeof(float) >= (64u << 10) &&
                          b.k * b.n * sizeof(float) >= (2u << 20);
    const uint32_t flags = (k0 == 0 ? kF32GemmInitBias : 0u) | (last ? kF32GemmClamp : 0u) |
                           (last && t.r != nullptr ? kF32GemmAddResidual : 0u) |
                           (last && t.stream ? kF32GemmStreamC : 0u) |
                           (last && t.moments != nullptr ? kF32GemmMoments : 0u);
    for (size_t n = n0; n < n0 + cols; n += nr) {
      const float* panel = b.panel(n / nr);
      const float* w = panel + nr + k0 * nr;
      const size_t ncols = std::min(nr, n0 + cols - n);
      F32GemmMoments mom{};
      if (t.moments != nullptr) mom = {t.moments->pivot + n, t.moments->s1 + n, t.moments->s2 + n};
      // The next panel's K block, fetched into L2 a share per row block, so the row blocks
      // after this panel find it there rather than stalling on L3 at its start: 1024^3 with
      // the 6x64 kernel, best of 60, 172 -> 182 GFLOP/s. Only where a panel block overflows L1
      // and all of B overflows L2; smaller weights stay cached between tiles, and the prefetches
      // cost 5% on MobileNetV2's shapes.
      const float* next = prefetch && n + nr < n0 + cols ? b.panel(n / nr + 1) + nr + k0 * nr : nullptr;
      // An A this large was streamed to memory by its producer (kStreamOutputBytes): on the
      // first panel, the row block kAheadBlocks on is fetched while this one computes.
      // MobileNetV2 training, 224, batch 32, 2 threads: the 112x112 and 56x56 project convs'
      // forward 4.7, 4.3, 5.8 -> 3.2, 3.2, 5.0 ms. Smaller, cached A lost up to 5%.
      const bool fetch_a = n == n0 && t.m * t.lda * sizeof(float) >= kStreamOutputBytes;
      for (size_t m = m0; m < m0 + rows; m += mr) {
        const size_t mrows = std::min(mr, m0 + rows - m);
        if (fetch_a && m + kAheadBlocks * mr < m0 + rows) {
          const size_t ma = m + kAheadBlocks * mr, ra = std::min(mr, m0 + rows - ma);
          for (size_t i = 0; i < ra; ++i) {
            // The lines that hold the row's kc floats, wherever the row starts.
            const uintptr_t first = reinterpret_cast<uintptr_t>(t.a + (ma + i) * t.lda + k0);
            const uintptr_t end = first + kc * sizeof(float);
            for (uintptr_t l = first & ~uintptr_t{63}; l < end; l += 64) {
              __builtin_prefetch(reinterpret_cast<const void*>(l), 0, 3);
            }
          }
        }
        if (next != nullptr) {
          const size_t r = (m - m0) / mr;
          const char* bytes = reinterpret_cast<const char*>(next);
          for (size_t l = lines * r / blocks_m; l < lines * (r + 1) / blocks_m; ++l) {
            __builtin_prefetch(bytes + l * 64, 0, 1);
          }
        }
        uk.fn(mrows, ncols, kc, t.a + m * t.lda + k0, t.lda, w, panel, t.c + m * t.ldc + n,
              t.ldc, t.min, t.max, flags, t.r != nullptr ? t.r + m * t.ldr + n : nullptr, t.ldr, &mom);
      }
    }
  }
  if (t.stream) stream_fence();
}

void gemm_tile_2d(void* ctx, size_t m0, size_t n0, size_t rows, size_t cols) {
  gemm_tile(*static_cast<const GemmTask*>(ctx), m0, n0, rows, cols);
}

// One row (a fully connected layer at batch 1): memory-bound on the weights, so the GEMV kernel
// keeps several panels' streams in flight, and each thread takes one contiguous share of the
// panels.
struct GemvTask {
  const GemmTask* t;
  size_t parts;
};

void gemv_part(void* ctx, size_t part) {
  const GemvTask& g = *static_cast<const GemvTask*>(ctx);
  const GemmTask& t = *g.t;
  const F32GemmPackedB& b = *t.b;
  const size_t nr = b.ukernel.nr;
  const auto [p0, p1] = slot_range(b.panels(), part, g.parts);
  if (p0 >= p1) return;
  const size_t n0 = p0 * nr, n1 = std::min(b.n, p1 * nr);
  b.gemv(n1 - n0, b.k, t.a, b.panel(p0), b.panel_stride_elems, t.c + n0, t.min, t.max);
}

void gemm_driver(GemmTask task, ThreadPool* pool) {
  const size_t m = task.m;
  const F32GemmPackedB& b = *task.b;
  const size_t threads = pool != nullptr && pool->multi_threaded() ? static_cast<size_t>(pool->threads()) : 1;
  if (m == 1 && b.gemv != nullptr && task.r == nullptr && !task.stream && task.moments == nullptr) {
    GemvTask g{&task, std::min(threads, b.panels())};
    if (g.parts <= 1) {
      gemv_part(&g, 0);
    } else {
      pool->parallelize_1d(&gemv_part, &g, g.parts);
    }
    return;
  }
  // The shorter microkernel when the full height would compute 5% more padding rows.
  auto padded = [m](size_t rows) { return (m + rows - 1) / rows * rows; };
  task.uk = &b.ukernel;
  if (b.short_rows.fn != nullptr && b.short_rows.mr > 0 && padded(b.short_rows.mr) * 20 < padded(b.ukernel.mr) * 19) {
    task.uk = &b.short_rows;
  }
  const size_t mr = task.uk->mr;
  const size_t nr = task.uk->nr;
  const size_t n_round = b.panels() * nr;
  // Row tiles bound the A block (tile_m x kc) to L2; for several threads, cut until there are
  // a few tiles per thread (rows first, then columns) so the pool can balance. Rows first keeps
  // each thread's part of C in its own cache for the next op, which splits by rows too; but
  // each row tile reads all of B. When B is the larger traffic (M (N + K) < N K: MobileNetV2's
  // 7x7 layers, whose weights are 4-30x their activations), columns are cut first, so each
  // thread reads its own share of the weights: MobileNetV2 fp32 at 2 threads, 2.78 -> 2.67 ms
  // (conv_last 0.220 -> 0.170 ms), where splitting the 14x14 expand convs' columns as well
  // made them and the depthwise convs after them slower.
  size_t tile_m = std::min<size_t>((m + mr - 1) / mr * mr, std::max<size_t>(1, kTileRows / mr) * mr);
  size_t tile_n = n_round;
  if (threads > 1) {
    auto tiles = [&] { return ((m + tile_m - 1) / tile_m) * ((n_round + tile_n - 1) / tile_n); };
    auto cut_columns = [&] {
      while (tiles() < 4 * threads && tile_n > nr) tile_n = (tile_n / 2 + nr - 1) / nr * nr;
    };
    if (m * (b.n + b.k) < b.n * b.k) cut_columns();
    while (tiles() < 4 * threads && tile_m > mr) tile_m = (tile_m / 2 + mr - 1) / mr * mr;
    cut_columns();
  }
  if (threads <= 1) {
    for (size_t m0 = 0; m0 < m; m0 += tile_m) {
      gemm_tile(task, m0, 0, std::min(tile_m, m - m0), b.n);
    }
    return;
  }
  pool->parallelize_2d_tile_2d(&gemm_tile_2d, &task, m, b.n, tile_m, tile_n);
}

}  // namespace

void f32_gemm_packed(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c,
                     size_t ldc, float min, float max, ThreadPool* pool) {
  if (m == 0) return;
  gemm_driver(GemmTask{a, lda, &b, c, ldc, m, min, max, nullptr, 0, nullptr, stream_c(m, b.n, c, ldc)}, pool);
}

void f32_gemm_packed_chunk(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c, size_t ldc,
                           float min, float max, bool stream, const F32GemmMoments* moments) {
  if (m == 0) return;
  stream = stream && reinterpret_cast<uintptr_t>(c) % 64 == 0 && ldc * sizeof(float) % 64 == 0;
  gemm_driver(GemmTask{a, lda, &b, c, ldc, m, min, max, nullptr, 0, nullptr, stream, moments}, nullptr);
}

void f32_gemm_packed_add(size_t m, const float* a, size_t lda, const F32GemmPackedB& b,
                         const float* r, size_t ldr, float* c, size_t ldc, float min, float max,
                         ThreadPool* pool) {
  if (m == 0) return;
  gemm_driver(GemmTask{a, lda, &b, c, ldc, m, min, max, r, ldr, nullptr, stream_c(m, b.n, c, ldc)}, pool);
}

}  // namespace pcv::kernels
