// f32 GEMM with pre-packed weights: C(M, N) = clamp(A(M, K) * B(K, N) + bias(N), min, max).
//
// Layouts: A (M, K) row-major, row stride lda >= K (floats).
//          B (K, N) row-major with stride ldb >= N              (F32GemmBLayout::kKN), or
//          B^T (N, K) row-major with stride ldb >= K            (F32GemmBLayout::kNK: fully
//          connected weights (out, in) and OHWI conv filters are already B^T).
//          C (M, N) row-major, row stride ldc >= N. C must not alias A.
// Lifetime: pack_f32_gemm_b() copies B and bias into a 64-byte aligned buffer owned by the
// returned F32GemmPackedB (the caller's arrays may be freed). Packing happens once (in an op's
// prepare); f32_gemm_packed() only reads it, so one packed B may be used from several threads.
//
// Packed layout: N is cut into panels of `nr` columns (nr = vectors x lanes of the chosen
// microkernel, zero padded at the right edge). Panel p holds bias[nr], then K rows of nr
// weights: the microkernel streams a panel contiguously.
//
// Microkernels: f32_gemm_minmax_<MR>x<NR>__hwy, written once with Highway and compiled per
// target: SSSE3, SSE4, AVX2, AVX3 and the portable fallback (EMU128, or SCALAR where Highway
// marks EMU128 broken, GCC < 12.3). The target is chosen at pack time (the best one the CPU
// has, or the one pinned by PCV_FORCE_ISA) and stored in the packed struct with the
// microkernel; `F32GemmPackedB::isa` and `ukernel.name` say which one runs.
// Each output is bias + a sum of K products accumulated in f32 in k order (K blocks of `kc`
// only store and reload the partial sum), i.e. a sequential f32 dot product:
// |error| <= ~K * eps/2 * (sum |a*b| + |bias|).
//
// PCV_FORCE_ISA (environment variable, read once at the first pack of any pocketcv Highway
// kernel): one of AVX3_DL, AVX3 (alias AVX512), AVX2, SSE4, SSSE3, EMU128 (alias SCALAR).
// It pins Highway's run-time dispatch for the whole process (hwy::DisableTargets of every
// other target). A target the CPU lacks falls back to the portable one; an unknown name logs a
// warning and is ignored.
//
// Threads: f32_gemm_packed() splits C into (rows x columns) tiles over the pool; pool may be
// nullptr (caller's thread). Results do not depend on the thread count (each output is
// computed by exactly one tile, in the same order).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/aligned.h"
#include "base/status.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

// One microkernel: C[0:mr, 0:nr] (mr <= MR, nr <= NR) (=|+=) A[0:mr, 0:kc] * W[0:kc, 0:NR].
// flags: kF32GemmInitBias starts from `bias` (NR floats) instead of loading C;
//        kF32GemmAddResidual adds R[0:mr, 0:nr] (row stride ldr) to the sums (the last K
//        block, before the clamp: the float result of a GEMM followed by an ADD);
//        kF32GemmClamp applies [min, max] before storing (the last K block).
inline constexpr uint32_t kF32GemmInitBias = 1;
inline constexpr uint32_t kF32GemmClamp = 2;
inline constexpr uint32_t kF32GemmAddResidual = 4;
//        kF32GemmStreamC stores full tiles (nr == NR) with non-temporal stores (the caller
//        guarantees every row c + i * ldc vector-aligned and fences after its last tile).
inline constexpr uint32_t kF32GemmStreamC = 8;
//        kF32GemmMoments (the last K block): each stored row i < mr, in row order, adds
//        t = C[i][j] - pivot[j] to s1[j] and t * t to s2[j] (MulAdd) for j < nr: a batch
//        norm's one-pass statistics (f32_column_shifted_moments's operations) taken from the
//        registers, the pointers at the tile's first column.
inline constexpr uint32_t kF32GemmMoments = 16;
struct F32GemmMoments {
  const float* pivot;
  float* s1;
  float* s2;
};
using F32GemmUkernelFn = void (*)(size_t mr, size_t nr, size_t kc, const float* a, size_t lda,
                                  const float* w, const float* bias, float* c, size_t ldc,
                                  float min, float max, uint32_t flags, const float* r,
                                  size_t ldr, const F32GemmMoments* moments);
struct F32GemmUkernel {
  const char* name = nullptr;  // "f32_gemm_minmax_8x32__hwy"
  size_t mr = 0, nr = 0;
  F32GemmUkernelFn fn = nullptr;
};

// Every microkernel of the current Highway target (the dispatch list: prepare, tests and
// benchmarks iterate it). `isa` is hwy::TargetName of the compiled target.
struct F32GemmUkernels {
  const char* isa = nullptr;
  F32GemmUkernel wide;    // 2 or more vectors per row: the default
  F32GemmUkernel narrow;  // 1 vector per row: for small N (e.g. N = 16 with 512-bit vectors)
  // The same with one row fewer (same nr, so the same packed B): for M that the full height
  // splits badly (M = 49, a 7x7 feature map: 7 tiles of 7 rows instead of 6 of 8 and 1 of 1).
  F32GemmUkernel wide_short;
  F32GemmUkernel narrow_short;
  // 4 vectors per row, fewer rows (6x64 on AVX-512): fewer loads per FMA, for wide N where it
  // pads no more than the wide one. Every target but AVX-512 aliases it to the wide kernel.
  F32GemmUkernel large;
  F32GemmUkernel large_short;
  // One row (M = 1) against the wide / narrow / large kernels' panels, several at once:
  // c[0:n) = clamp(a[0:k) * B + bias, min, max), the same sums as the GEMM kernels' for that row.
  using GemvFn = void (*)(size_t n, size_t k, const float* a, const float* panels,
                          size_t panel_stride, float* c, float min, float max);
  GemvFn gemv_wide = nullptr;
  GemvFn gemv_narrow = nullptr;
  GemvFn gemv_large = nullptr;
};
const F32GemmUkernels& f32_gemm_ukernels();

enum class F32GemmBLayout : uint8_t { kKN, kNK };

enum class F32GemmUkernelChoice : uint8_t { kAuto, kWide, kNarrow, kLarge };

// What kAuto picks for N columns on the target `uk` belongs to: the narrow kernel where the
// wide one pads more columns, else the large one where it pads no more than the wide one, else
// the wide one. The training GEMMs (gemm_backward.h) use the same rule.
F32GemmUkernelChoice f32_gemm_auto_choice(const F32GemmUkernels& uk, size_t n);

struct F32GemmPackedB {
  size_t k = 0, n = 0;
  size_t kc = 0;                   // K block length (C is reloaded between blocks)
  F32GemmUkernel ukernel;          // also gives nr = ukernel.nr
  F32GemmUkernel short_rows;       // ukernel with one row fewer (f32_gemm_packed picks per M)
  F32GemmUkernels::GemvFn gemv = nullptr;  // M = 1 over this ukernel's panels
  const char* isa = nullptr;
  size_t panel_stride_elems = 0;   // nr * (1 + k)
  AlignedBuffer data;              // panels, see the layout above

  size_t panels() const { return ukernel.nr ? (n + ukernel.nr - 1) / ukernel.nr : 0; }
  const float* panel(size_t p) const {
    return reinterpret_cast<const float*>(data.data()) + p * panel_stride_elems;
  }
};

// Packs B (and bias(N), may be nullptr = zeros). Errors: invalid_argument (k or n == 0, ldb too
// small, b == nullptr), out_of_memory.
Expected<F32GemmPackedB> pack_f32_gemm_b(size_t k, size_t n, const float* b, size_t ldb,
                                         const float* bias, F32GemmBLayout layout,
                                         F32GemmUkernelChoice choice = F32GemmUkernelChoice::kAuto);

// C = clamp(A * B + bias, min, max) for M >= 1 rows (M == 0 does nothing). No allocation.
// A C of kStreamOutputBytes (common/stream_fence.h) or more whose rows are all 64-byte aligned is written with
// non-temporal stores (the same values): far larger than the caches, it would only be read
// for ownership and then evicted before its reader comes.
void f32_gemm_packed(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c,
                     size_t ldc, float min, float max, ThreadPool* pool);
// f32_gemm_packed on the caller's thread for a chunk of rows of a larger C that the caller
// writes a chunk at a time: `stream` (the whole C is past kStreamOutputBytes) writes it with
// non-temporal stores where its rows are 64-byte aligned, as f32_gemm_packed would the whole
// (the same values; fenced before return). moments (optional, N floats each): also adds the
// chunk's rows, in order, to a batch norm's one-pass statistics about `pivot` (kF32GemmMoments),
// as f32_column_shifted_moments over the written rows would: the same floats.
void f32_gemm_packed_chunk(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c, size_t ldc,
                           float min, float max, bool stream, const F32GemmMoments* moments = nullptr);
// C = clamp((A * B + bias) + R, min, max), R (M, N) with row stride ldr: a GEMM and an ADD of
// a same-shape tensor (a residual connection) in one pass, with the rounding of the two ops
// run one after the other. R may not alias C.
void f32_gemm_packed_add(size_t m, const float* a, size_t lda, const F32GemmPackedB& b,
                         const float* r, size_t ldr, float* c, size_t ldc, float min, float max,
                         ThreadPool* pool);

// Fully connected: output(batch, out) = clamp(input(batch, in) * W^T + bias, min, max) with
// W (out, in) row-major, i.e. a GEMM with M = batch against B = W^T.
inline Expected<F32GemmPackedB> pack_f32_fully_connected(size_t in_elems, size_t out_elems,
                                                          const float* weights,
                                                          const float* bias) {
  return pack_f32_gemm_b(in_elems, out_elems, weights, in_elems, bias, F32GemmBLayout::kNK);
}
inline void f32_fully_connected_fast(size_t batch, const float* input, const F32GemmPackedB& w,
                                     float act_min, float act_max, float* output,
                                     ThreadPool* pool) {
  f32_gemm_packed(batch, input, w.k, w, output, w.n, act_min, act_max, pool);
}

// The fp32 FMA peak of this CPU in GFLOP/s, measured with `threads` threads running
// independent FMA chains on the dispatched target's vectors for ~0.1 s each (benchmarks report
// shares of it; f32_peak_hwy.cc).
double f32_fma_peak_gflops(int threads);

// Applies PCV_FORCE_ISA (once per process; later calls do nothing) and returns the pinned
// target's name, or nullptr when the variable is unset or unknown.
const char* apply_forced_isa();

}  // namespace pcv::kernels
