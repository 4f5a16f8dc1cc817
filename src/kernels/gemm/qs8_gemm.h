// int8 GEMM with pre-packed weights and fused fp32 requantization (LiteRT's arithmetic):
//   C(M, N) = requantize_fp32(bias(N) + sum_k (A(m, k) - a_zp) * (W(n, k) - w_zp), scale(N))
// i.e. for every output exactly what qs8_conv2d__ref / qs8_fully_connected__ref compute in
// RequantMode::kFp32 (requant.h): the int32 accumulator is exact, so any summation order gives
// the same bits.
//
// Layouts: A rows are int8; the driver reads them through a row gatherer (contiguous rows for
//          fully connected / 1x1 conv, conv patches for im2col) into a packed A block.
//          W is (N, K) row-major int8 (fully connected weights, OHWI conv filters), one
//          per-tensor zero point w_zp (0 for TFLite int8, nonzero for uint8 models read as
//          int8); bias int32 (N) or nullptr; C (M, N) int8 row-major with row stride ldc.
// Microkernels: qs8_gemm_fp32_<MR>x<NR>c<KK>__<isa>, listed per target by qs8_gemm_ukernels():
//   - AVX3_DL (AVX-512 VNNI): VPDPBUSD on u8 x s8 quads (KK = 4): A is fed as x + 128 (u8),
//     W raw; the zero-point cross terms are folded: per column
//     c0[n] = bias[n] - (a_zp + 128) * sum_k W[n, k] + K * (a_zp + 128) * w_zp, per row
//     r0[m] = -w_zp * sum_k (A[m, k] + 128), acc = dot + c0[n] + r0[m] (all exact in int32:
//     |dot| <= 255 * 128 * K, K <= 65535).
//   - other SIMD targets: int16 pairs (KK = 2, VPMADDWD / ReorderWidenMulAccumulate) on
//     (A - a_zp) and (W - w_zp), both within [-255, 255]; c0[n] = bias[n].
//   - SCALAR / EMU128: the int16 packing with a plain loop.
// The target is chosen at pack time (PCV_FORCE_ISA pins it, see gemm.h) and kept in the packed
// struct. Packed W: panels of NR columns (zero padded), each [NR int32 c0][NR float scale]
// [K/KK][NR][KK] weights (K padded to KK with zero weights).
// Threads: row blocks are spread over the pool, one scratch slice per task; results do not
// depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/aligned.h"
#include "base/status.h"

namespace pcv {
class ThreadPool;
}

namespace pcv::kernels {

// Requantization and clamp, shared by every column.
struct Qs8GemmEpilogue {
  int32_t output_zero_point = 0;
  int32_t act_min = -128, act_max = 127;
  float min_less_zp = -128.f;  // act_min - output_zero_point
  float max_less_zp = 127.f;   // act_max - output_zero_point
};

// C[0:mr, 0:nr] = epilogue(A_block[0:mr] x panel), mr <= MR, nr <= NR; `a` rows are packed
// (u8 for VNNI, int16 otherwise) with stride a_stride elements; row_bias (mr entries, may be
// nullptr) adds r0[m].
using Qs8GemmUkernelFn = void (*)(size_t mr, size_t nr, size_t kp, const void* a,
                                  size_t a_stride, const void* panel, const int32_t* row_bias,
                                  int8_t* c, size_t ldc, const Qs8GemmEpilogue& e);

enum class Qs8GemmKind : uint8_t { kVnniU8S8, kInt16Pairs };

struct Qs8GemmUkernel {
  const char* name = nullptr;  // "qs8_gemm_fp32_8x32c4__avx3_dl"
  Qs8GemmKind kind = Qs8GemmKind::kInt16Pairs;
  size_t mr = 0, nr = 0, kk = 0;
  Qs8GemmUkernelFn fn = nullptr;
  // kVnniU8S8 only: the same kernel on raw int8 rows of A (flipped to x + 128 as it reads
  // them), so that contiguous rows with K % 4 == 0 and gathered rows (padded to kp with -128)
  // need no packing; no row_bias (w_zp == 0).
  Qs8GemmUkernelFn fn_int8_rows = nullptr;
  // Called by each driver task before its first microkernel call (AMX: make sure the thread's
  // tile configuration is ours); nullptr for none.
  void (*enter)() = nullptr;
};

// Copies `rows` packed A rows from `src` (int8 row-major, stride lda) into `dst` (stride
// dst_stride elements, K padded with zeros): u8 (x + 128) for kVnniU8S8 (with
// row_bias[i] = -w_zp * sum_k (x + 128) when row_bias != nullptr), int16 (x - a_zp) otherwise.
using Qs8PackRowsFn = void (*)(size_t rows, size_t k, size_t kp, const int8_t* src, size_t lda,
                               int32_t a_zp, int32_t w_zp, void* dst, size_t dst_stride,
                               int32_t* row_bias);

struct Qs8GemmUkernels {
  const char* isa = nullptr;
  Qs8GemmUkernel gemm;    // 2 vectors of columns: the default
  Qs8GemmUkernel narrow;  // 1 vector: when it computes fewer padded columns (N = 16, 48...)
  // AVX3_DL on a CPU with AMX-INT8 (and the OS's leave to use it): tiles of 32 rows x 32 / 16
  // columns, K in steps of 64; fn == nullptr elsewhere.
  Qs8GemmUkernel amx, amx_narrow;
  Qs8PackRowsFn pack_rows = nullptr;
};
const Qs8GemmUkernels& qs8_gemm_ukernels();

// AMX kernels in pack_qs8_gemm_w, where the CPU has them (qs8_gemm_has_amx()): kAuto (the
// default) for shapes where they win, kOff when PCV_NO_AMX is set in the environment, kAlways
// for every shape (tests). Packs made before a change keep their kernel.
enum class Qs8Amx : uint8_t { kOff, kAuto, kAlways };
void set_qs8_gemm_amx(Qs8Amx mode);
bool qs8_gemm_has_amx();
bool qs8_gemm_uses_amx(size_t k, size_t n);

struct Qs8GemmPackedW {
  size_t k = 0, n = 0;
  size_t kp = 0;  // K rounded up to ukernel.kk
  Qs8GemmUkernel ukernel;
  Qs8PackRowsFn pack_rows = nullptr;
  const char* isa = nullptr;
  int32_t a_zero_point = 0;
  int32_t w_zero_point = 0;
  Qs8GemmEpilogue epilogue;
  size_t panel_stride_bytes = 0;
  AlignedBuffer data;

  size_t panels() const { return ukernel.nr ? (n + ukernel.nr - 1) / ukernel.nr : 0; }
  const uint8_t* panel(size_t p) const { return data.data() + p * panel_stride_bytes; }
  size_t a_elem_bytes() const { return ukernel.kind == Qs8GemmKind::kVnniU8S8 ? 1 : 2; }
  bool needs_row_bias() const { return ukernel.kind == Qs8GemmKind::kVnniU8S8 && w_zero_point != 0; }
  // A rows go to the microkernel as they are (see Qs8GemmUkernel::fn_int8_rows): gathered ones
  // are padded to kp, contiguous ones need K % 4 == 0.
  bool reads_rows_directly(bool gathered) const {
    return ukernel.fn_int8_rows != nullptr && !needs_row_bias() && (gathered || k % 4 == 0);
  }
  // Bytes of one packed A row (64-byte multiple).
  size_t a_row_bytes() const { return (kp * a_elem_bytes() + 63) / 64 * 64; }
};

// Packs W (N, K) row-major and the per-column constants. requant_scale: N floats
// (compute_channel_requant_fp32); act_min/act_max within int8. Errors: invalid_argument (k or n
// == 0, k > 65535), out_of_memory.
Expected<Qs8GemmPackedW> pack_qs8_gemm_w(size_t k, size_t n, const int8_t* w, int32_t w_zp,
                                         const int32_t* bias, const float* requant_scale,
                                         int32_t a_zp, int32_t output_zp, int32_t act_min,
                                         int32_t act_max);

// Rows of A handed to the driver: gather(m0, rows, dst, dst_stride) writes `rows` int8 rows of
// K values starting at row m0 into dst. nullptr = A is contiguous at `a` with stride lda.
// NOTE: the driver pre-fills each gathered row's bytes [K, dst_stride) with -128 (u8 0 in the
// VNNI packing, a zero weight in the int16 one), so rows pack with whole vectors.
struct Qs8RowGather {
  void (*fn)(const void* ctx, size_t m0, size_t rows, int8_t* dst, size_t dst_stride) = nullptr;
  const void* ctx = nullptr;
};

// Row block the driver packs at a time, and the scratch it needs per task.
size_t qs8_gemm_block_rows(const Qs8GemmPackedW& w);
size_t qs8_gemm_scratch_bytes(const Qs8GemmPackedW& w, bool gathered, int threads);

// C(M, N) for M >= 1 rows. `a`/lda: contiguous int8 rows (ignored when gather.fn is set).
// scratch: qs8_gemm_scratch_bytes(w, gather.fn != nullptr, pool ? pool->threads() : 1) bytes,
// 64-byte aligned.
void qs8_gemm_packed(size_t m, const int8_t* a, size_t lda, const Qs8RowGather& gather,
                     const Qs8GemmPackedW& w, int8_t* c, size_t ldc, void* scratch,
                     ThreadPool* pool);

}  // namespace pcv::kernels
