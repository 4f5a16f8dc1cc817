// Accumulating f32 GEMM for backward passes: C(M, N) += A(M, K) * B(K, N).
//
// Backward passes add gradients into buffers that may already hold contributions (a value
// with several consumers), and the filter gradient of a conv is a sum over many row chunks.
// So this driver never starts from a bias: every K block loads C, adds, stores (the
// microkernels of gemm.h called with flags = 0, no clamp).
//
// B is packed into an F32GemmAccB the caller keeps and reuses (its storage grows, never
// shrinks, so steady-state training allocates nothing). Packed layout: N cut into panels of
// nr columns (zero padded at the right edge); panel p holds K rows of nr floats (no bias row).
// Producers such as im2col may write this layout directly (panel(), nr()).
//
// Layouts: A (M, K) row-major with stride lda >= K. B (K, N) row-major (kKN, stride ldb >= N)
// or B^T (N, K) row-major (kNK, stride ldb >= K). C (M, N) row-major, stride ldc >= N; C must
// not alias A or B.
// Numerics: each C element gets its K products added in k order (blocks of kc only store and
// reload the partial sum), whatever the thread count.
// Threads: f32_gemm_acc splits C into tiles over the pool (may be nullptr); each output
// element is owned by one tile, so results do not depend on the thread count.
#pragma once

#include <cstddef>
#include <vector>

#include "base/aligned.h"
#include "kernels/gemm/gemm.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

struct F32GemmAccB {
  size_t k = 0, n = 0;
  F32GemmUkernel ukernel;
  AlignedBuffer storage;

  size_t nr() const { return ukernel.nr; }
  size_t panels() const { return (n + ukernel.nr - 1) / ukernel.nr; }
  size_t panel_stride_elems() const { return ukernel.nr * k; }
  float* panel(size_t p) { return reinterpret_cast<float*>(storage.data()) + p * panel_stride_elems(); }
  const float* panel(size_t p) const {
    return reinterpret_cast<const float*>(storage.data()) + p * panel_stride_elems();
  }
};

// Sets k, n and the microkernel (f32_gemm_acc_ukernel's choice) and grows the
// storage to fit; the panel contents are unspecified (zero the padding columns if a producer
// writes only the valid ones: reset_padding does that). Returns false on allocation failure.
bool shape_f32_gemm_acc_b(size_t k, size_t n, F32GemmAccB* b);
// Zeroes the padding columns of the last panel (if n is not a multiple of nr).
void reset_padding_f32_gemm_acc_b(F32GemmAccB* b);
// Shapes and packs B from a row-major array. Returns false on allocation failure.
bool pack_f32_gemm_acc_b(size_t k, size_t n, const float* b, size_t ldb, F32GemmBLayout layout,
                         F32GemmAccB* out);

// C(M, N) += A(M, K) * B(K, N). ACCUMULATES into C. No allocation.
void f32_gemm_acc(size_t m, const float* a, size_t lda, const F32GemmAccB& b, float* c,
                  size_t ldc, ThreadPool* pool);
// Same with B packed by pack_f32_gemm_b (its bias row is ignored). ACCUMULATES into C.
void f32_gemm_packed_acc(size_t m, const float* a, size_t lda, const F32GemmPackedB& b, float* c,
                         size_t ldc, ThreadPool* pool);

// The same driver over raw panels (K rows x nr floats each, panel stride nr * k, 64-byte
// aligned), e.g. in caller scratch: C(M, N) += A(M, K) * panels. ACCUMULATES into C, or with
// assign, C = A * panels (C is not read: its first K block starts from zeros).
void f32_gemm_acc_panels(size_t m, const float* a, size_t lda, const float* panels, size_t k,
                         size_t n, const F32GemmUkernel& ukernel, float* c, size_t ldc,
                         ThreadPool* pool, bool assign = false);
// The microkernel f32_gemm_acc uses for N columns: f32_gemm_auto_choice's.
F32GemmUkernel f32_gemm_acc_ukernel(size_t n);

// C(M, N) += A^T(M, K) * B(K, N) with A given as (K, M): C[i][j] += sum over r < k of
// A[r][i] * B[r][j]. A (k, M) row-major, stride lda >= M; B (k, N) row-major, stride ldb >= N;
// both read in place (a conv's filter gradient: A = input patches, B = output gradient, rows
// = pixels). C (M, N) row-major, stride ldc >= N, must not alias A or B. ACCUMULATES. Each C
// element adds its k products in r order. Caller's thread only; on AVX-512 (the AVX3 targets),
// C of 48 rows or more copies B's strips of 64 columns into a 64 KB stack buffer.
void f32_gemm_atb_acc(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* b,
                      size_t ldb, float* c, size_t ldc);
// The same with A's column i at offset a_cols[i] from the start of each row (a row-major
// (M, K) matrix read as A^T: lda = 1, a_cols[i] = i * K).
void f32_gemm_atb_acc_cols(size_t m, size_t n, size_t k, const float* a, size_t lda, const size_t* a_cols,
                           const float* b, size_t ldb, float* c, size_t ldc);
// The same with gathered rows: C[i][j] += sum over r < k of a[a_rows[r] + a_cols[i]] *
// b[b_rows[r] + j] (a_cols nullptr: a_cols[i] = i). A conv's filter gradient with the patches
// read from the image itself: a_rows = each pixel's first tap, a_cols = each patch column's
// offset from it. Same order of sums, same threading (none) as f32_gemm_atb_acc.
void f32_gemm_atb_acc_gather(size_t m, size_t n, size_t k, const float* a, const size_t* a_rows,
                             const size_t* a_cols, const float* b, const size_t* b_rows, float* c,
                             size_t ldc);

// out(N, M) = in(M, N)^T, row strides ld_in >= N and ld_out >= M (a blocked copy).
void f32_transpose(size_t m, size_t n, const float* in, size_t ld_in, float* out, size_t ld_out);

}  // namespace pcv::kernels
