// qs8_gemm_fp32_<MR>x<NR>c<KK>__<isa>: int8 GEMM microkernels with the fused fp32
// requantization (contract in qs8_gemm.h), compiled once per Highway target.
//   - AVX3_DL: VPDPBUSD (AVX-512 VNNI) on u8 x s8 quads, 8 rows x 2 vectors (32 columns) of
//     int32 accumulators: 16 of 32 zmm, 2 weight loads + 8 broadcasts per 4 k steps.
//   - other SIMD targets: int16 pairs through ReorderWidenMulAccumulate (VPMADDWD on x86).
//   - SCALAR / EMU128: plain loops over the int16 packing.
// AVX3_DL is opted into for this file only (HWY_WANT_AVX3_DL): Highway 1.0.3 leaves it out by
// default, and it is the target whose VNNI instructions this file is about.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemm/qs8_gemm_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "kernels/common/qs8_requant-inl.h"
#include "kernels/common/requant.h"
#include "kernels/gemm/qs8_gemm.h"

#if HWY_TARGET == HWY_AVX3_DL
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE int32_t LoadI32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#if HWY_TARGET == HWY_AVX3_DL
// ---- VNNI: A is u8 (x + 128) rows of kp bytes, panel [NR c0][NR scale][kp/4][NR][4] int8.
// NOTE: Highway 1.0.3's AVX3_DL target string names "avxvnni" (VEX) instead of "avx512vnni",
// although its CPU check requires AVX512_VNNI; the kernel adds the feature itself, on top of
// the target's own list (clang lets a function's target attribute replace the namespace's).
// A packed panel of NR columns: [NR int32 c0][NR float scale][kp/4][NR][4] int8 weights.
struct VnniPanel {
  const int32_t* c0;
  const float* scale;
  const int8_t* w;
  static VnniPanel Of(const void* panel_v, size_t nr) {
    const uint8_t* panel = static_cast<const uint8_t*>(panel_v);
    return {reinterpret_cast<const int32_t*>(panel), reinterpret_cast<const float*>(panel + nr * 4),
            reinterpret_cast<const int8_t*>(panel + nr * 8)};
  }
};

// The fp32 requantization of 64 int32 sums at a time, 4 / NRV rows of NR = 16 * NRV columns,
// stored as int8 (the first `cols` of each of the first `rows` rows). The same bits as
// requantize_fp32 (clamp to [min - zp, max - zp], round to nearest even, add zp) with fewer
// instructions: only the upper clamp in float (so that the conversion cannot overflow upwards;
// below, it gives INT_MIN), then saturating packs to int16, the zero point added in int16
// (saturating), packs to int8 and the lower clamp there. Both bounds are integers, so clamping
// before or after rounding is the same, and every saturation lands below act_min.
template <size_t NRV>
struct RequantRows {
  static constexpr size_t kRows = 4 / NRV;
  static constexpr size_t kRowBytes = 16 * NRV;
  __m512 fmax;
  __m512i zp16, min8, order;
  explicit RequantRows(const Qs8GemmEpilogue& e)
      : fmax(_mm512_set1_ps(e.max_less_zp)),
        zp16(_mm512_set1_epi16(static_cast<int16_t>(e.output_zero_point))),
        min8(_mm512_set1_epi8(static_cast<int8_t>(e.act_min))),
        // After the two packs, 128-bit lane l holds 4 columns of each vector s at dword
        // 4 l + s; this puts vector s's 16 columns at dwords 4 s .. 4 s + 3.
        order(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)) {}
  HWY_INLINE __m512i Convert(__m512i acc, const float* scale) const {
    const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_load_ps(scale));
    return _mm512_cvtps_epi32(_mm512_min_ps(f, fmax));
  }
  // v: the 4 vectors row-major (row r, column vector j at v[r * NRV + j]).
  HWY_INLINE void operator()(const __m512i (&v)[4], const float* scale, int8_t* out, size_t ldc,
                             size_t rows, size_t cols) const {
    const float* s1 = scale + (NRV == 2 ? 16 : 0);
    const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(Convert(v[0], scale), Convert(v[1], s1)), zp16);
    const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(Convert(v[2], scale), Convert(v[3], s1)), zp16);
    const __m512i q = _mm512_permutexvar_epi32(order, _mm512_max_epi8(_mm512_packs_epi16(ab, cd), min8));
    const uint64_t mask = (uint64_t{1} << cols) - 1;  // cols <= 32
    HWY_UNROLL(4)
    for (size_t r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      // Row r's bytes sit at offset r * kRowBytes of q: a masked store from that far before
      // the row writes only them.
      _mm512_mask_storeu_epi8(out + r * ldc - r * kRowBytes, mask << (r * kRowBytes), q);
    }
  }
};

// kInt8Rows: A is raw int8 (fn_int8_rows), flipped to u8 after each broadcast.
template <size_t MR, size_t NRV, bool kInt8Rows = false>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void Qs8GemmVnni(
    size_t mr, size_t nr, size_t kp, const void* a_v, size_t a_stride, const void* panel_v,
    const int32_t* row_bias, int8_t* c, size_t ldc, const Qs8GemmEpilogue& e) {
  constexpr size_t NR = NRV * 16;
  const uint8_t* a = static_cast<const uint8_t*>(a_v);
  const auto [c0, scale, w] = VnniPanel::Of(panel_v, NR);
  const uint8_t* ar[MR];
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : mr - 1) * a_stride;

  // Accumulators start from the folded constants c0[n] + r0[m].
  __m512i acc[MR][NRV];
  __m512i c0v[NRV];
  HWY_UNROLL(4)
  for (size_t j = 0; j < NRV; ++j) c0v[j] = _mm512_load_si512(c0 + j * 16);
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    const __m512i rb = _mm512_set1_epi32(row_bias != nullptr && i < mr ? row_bias[i] : 0);
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) acc[i][j] = _mm512_add_epi32(c0v[j], rb);
  }
  for (size_t k = 0; k < kp; k += 4) {
    __m512i wv[NRV];
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) wv[j] = _mm512_load_si512(w + k * NR + j * 64);
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      __m512i av = _mm512_set1_epi32(LoadI32(ar[i] + k));
      if (kInt8Rows) av = _mm512_xor_si512(av, _mm512_set1_epi8(-128));
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], av, wv[j]);
    }
  }
  const RequantRows<NRV> store(e);
  constexpr size_t kRows = RequantRows<NRV>::kRows;
  static_assert(MR % kRows == 0, "row groups");
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; i += kRows) {
    if (i >= mr) break;
    __m512i v[4];
    HWY_UNROLL(4)
    for (size_t q = 0; q < 4; ++q) v[q] = acc[i + q / NRV][q % NRV];
    store(v, scale, c + i * ldc, ldc, mr - i, nr);
  }
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// ---- AMX (Sapphire Rapids and later): TDPBUSD on 16x64 u8 tiles of A (the same x + 128
// packing, rows kp bytes apart, kp a multiple of 64) times 16 quads x 16 columns of W (the
// panel's [kp/4][NR][4] layout: a B tile is 16 panel rows, NR * 4 bytes apart, so a 32-column
// panel holds two tiles side by side). 32 rows x NR columns of int32 accumulators in tiles 0-3,
// A in 4-5, W in 6-7; every tile is configured 16 rows x 64 bytes (EnterAmx). The int32
// sums are exact, so the results are the VNNI kernel's bits; the epilogue is the same.
#define PCV_AMX_TARGET HWY_TARGET_STR ",avx512vnni,amx-tile,amx-int8"

struct AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// The tile configuration is per thread state that other code in the process (another AMX
// library on the same thread) may change, so each driver task checks it when it starts
// (Qs8GemmUkernel::enter: a store of the configuration and a compare, ~7 ns) and loads ours
// only when it differs (~60 ns). The tiles are not released after: a release lets the CPU
// power the tile unit down, and waking it cost ~1 us per layer (MobileNetV2 int8 +2-3%).
__attribute__((target(PCV_AMX_TARGET))) void EnterAmx() {
  alignas(64) AmxTileConfig want;
  for (int t = 0; t < 8; ++t) {
    want.colsb[t] = 64;
    want.rows[t] = 16;
  }
  alignas(64) AmxTileConfig now;
  _tile_storeconfig(&now);
  // GCC 12's tile configuration builtins do not tell the optimizer that they read or write the
  // memory: without these barriers the stores to `want` are dropped as dead and `now` is read
  // before sttilecfg wrote it.
  __asm__ volatile("" : : "r"(&want), "r"(&now) : "memory");
  if (std::memcmp(&now, &want, sizeof(want)) == 0) return;
  _tile_loadconfig(&want);
}

template <size_t NRV>
__attribute__((target(PCV_AMX_TARGET))) void Qs8GemmAmx(
    size_t mr, size_t nr, size_t kp, const void* a_v, size_t a_stride, const void* panel_v,
    const int32_t* row_bias, int8_t* c, size_t ldc, const Qs8GemmEpilogue& e) {
  constexpr size_t NR = NRV * 16;
  const uint8_t* a = static_cast<const uint8_t*>(a_v);
  const auto [c0, scale, w] = VnniPanel::Of(panel_v, NR);
  // Rows past mr (up to 32) are read from the packed block and computed, never stored.
  alignas(64) int32_t acc[32 * NR];
  _tile_zero(0);
  if (NRV == 2) _tile_zero(1);
  if (mr > 16) {
    _tile_zero(2);
    if (NRV == 2) _tile_zero(3);
    for (size_t k = 0; k < kp; k += 64) {
      _tile_loadd(4, a + k, a_stride);
      _tile_loadd(5, a + 16 * a_stride + k, a_stride);
      _tile_loadd(6, w + k * NR, NR * 4);
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(2, 5, 6);
      if (NRV == 2) {
        _tile_loadd(7, w + k * NR + 64, NR * 4);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(3, 5, 7);
      }
    }
    _tile_stored(2, acc + 16 * NR, NR * 4);
    if (NRV == 2) _tile_stored(3, acc + 16 * NR + 16, NR * 4);
  } else {
    for (size_t k = 0; k < kp; k += 64) {
      _tile_loadd(4, a + k, a_stride);
      _tile_loadd(6, w + k * NR, NR * 4);
      _tile_dpbusd(0, 4, 6);
      if (NRV == 2) {
        _tile_loadd(7, w + k * NR + 64, NR * 4);
        _tile_dpbusd(1, 4, 7);
      }
    }
  }
  _tile_stored(0, acc, NR * 4);
  if (NRV == 2) _tile_stored(1, acc + 16, NR * 4);

  const RequantRows<NRV> store(e);
  constexpr size_t kRows = RequantRows<NRV>::kRows;
  __m512i c0v[NRV];
  for (size_t j = 0; j < NRV; ++j) c0v[j] = _mm512_load_si512(c0 + j * 16);
  for (size_t i = 0; i < mr; i += kRows) {
    __m512i v[4];
    HWY_UNROLL(4)
    for (size_t q = 0; q < 4; ++q) {
      const size_t r = i + q / NRV, j = q % NRV;
      const __m512i rb = _mm512_set1_epi32(row_bias != nullptr && r < mr ? row_bias[r] : 0);
      v[q] = _mm512_add_epi32(_mm512_add_epi32(_mm512_load_si512(acc + r * NR + j * 16), c0v[j]), rb);
    }
    store(v, scale, c + i * ldc, ldc, mr - i, nr);
  }
}

// AMX needs the CPU's AMX-TILE and AMX-INT8, the OS's tile state in XCR0, and (Linux) the
// process's permission to use the tile data, asked once.
bool AmxUsable() {
#if defined(__linux__) && defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  __cpuid_count(1, 0, eax, ebx, ecx, edx);
  if ((ecx & (1u << 27)) == 0) return false;  // OSXSAVE
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  if ((edx & (1u << 24)) == 0 || (edx & (1u << 25)) == 0) return false;  // AMX-TILE, AMX-INT8
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & (3u << 17)) != (3u << 17)) return false;  // XTILECFG, XTILEDATA
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
// ---- int16 pairs: A is int16 (x - a_zp), panel [NR c0][NR scale][kp/2][NR][2] int16.
template <size_t MR, size_t NRV>
void Qs8GemmInt16(size_t mr, size_t nr, size_t kp, const void* a_v, size_t a_stride,
                  const void* panel_v, const int32_t* row_bias, int8_t* c, size_t ldc,
                  const Qs8GemmEpilogue& e) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Repartition<int16_t, decltype(d32)> d16;
  const hn::Rebind<float, decltype(d32)> df;
  using V = hn::Vec<decltype(d32)>;
  const size_t N = hn::Lanes(d32);
  const size_t NR = NRV * N;
  const int16_t* a = static_cast<const int16_t*>(a_v);
  const uint8_t* panel = static_cast<const uint8_t*>(panel_v);
  const int32_t* c0 = reinterpret_cast<const int32_t*>(panel);
  const float* scale = reinterpret_cast<const float*>(panel + NR * 4);
  const int16_t* w = reinterpret_cast<const int16_t*>(panel + NR * 8);
  const int16_t* ar[MR];
  for (size_t i = 0; i < MR; ++i) ar[i] = a + (i < mr ? i : mr - 1) * a_stride;

  V acc0[MR][NRV], acc1[MR][NRV];
  HWY_UNROLL(16)
  for (size_t i = 0; i < MR; ++i) {
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) acc0[i][j] = acc1[i][j] = hn::Zero(d32);
  }
  for (size_t k = 0; k < kp; k += 2) {
    hn::Vec<decltype(d16)> wv[NRV];
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) wv[j] = hn::LoadU(d16, w + k * NR + j * 2 * N);
    HWY_UNROLL(16)
    for (size_t i = 0; i < MR; ++i) {
      const auto av = hn::BitCast(d16, hn::Set(d32, LoadI32(ar[i] + k)));
      HWY_UNROLL(4)
      for (size_t j = 0; j < NRV; ++j) {
        acc0[i][j] = hn::ReorderWidenMulAccumulate(d32, av, wv[j], acc0[i][j], acc1[i][j]);
      }
    }
  }
  const auto fmin = hn::Set(df, e.min_less_zp);
  const auto fmax = hn::Set(df, e.max_less_zp);
  const V zp = hn::Set(d32, e.output_zero_point);
  for (size_t i = 0; i < mr; ++i) {
    const V rb = hn::Set(d32, row_bias != nullptr ? row_bias[i] : 0);
    HWY_UNROLL(4)
    for (size_t j = 0; j < NRV; ++j) {
      if (j * N >= nr) break;
      V v = hn::RearrangeToOddPlusEven(acc0[i][j], acc1[i][j]);
      v = hn::Add(hn::Add(v, hn::LoadU(d32, c0 + j * N)), rb);
      const size_t cols = nr - j * N < N ? nr - j * N : N;
      RequantStoreFp32(d32, v, hn::LoadU(df, scale + j * N), fmin, fmax, zp, c + i * ldc + j * N,
                       cols);
    }
  }
}
#else
// ---- portable fallback over the int16 packing (NR = 4).
template <size_t MR, size_t NRV>
void Qs8GemmInt16(size_t mr, size_t nr, size_t kp, const void* a_v, size_t a_stride,
                  const void* panel_v, const int32_t* row_bias, int8_t* c, size_t ldc,
                  const Qs8GemmEpilogue& e) {
  constexpr size_t NR = NRV;
  const int16_t* a = static_cast<const int16_t*>(a_v);
  const uint8_t* panel = static_cast<const uint8_t*>(panel_v);
  const int32_t* c0 = reinterpret_cast<const int32_t*>(panel);
  const float* scale = reinterpret_cast<const float*>(panel + NR * 4);
  const int16_t* w = reinterpret_cast<const int16_t*>(panel + NR * 8);
  for (size_t i = 0; i < mr; ++i) {
    const int16_t* ai = a + i * a_stride;
    for (size_t j = 0; j < nr; ++j) {
      int32_t acc = wrap_add(c0[j], row_bias != nullptr ? row_bias[i] : 0);
      for (size_t k = 0; k < kp; k += 2) {
        acc = wrap_add(acc, int32_t{ai[k]} * w[k * NR + 2 * j] + int32_t{ai[k + 1]} * w[k * NR + 2 * j + 1]);
      }
      c[i * ldc + j] = static_cast<int8_t>(
          requantize_fp32(acc, scale[j], e.output_zero_point, e.act_min, e.act_max));
    }
  }
}
#endif

// ---- packing A rows: full vectors, then 16-byte vectors (K = 16, 24, 144... leave tails),
// then bytes.
template <class D>
HWY_INLINE uint64_t FlipRowU8(D d, const uint8_t* HWY_RESTRICT s, uint8_t* HWY_RESTRICT d_out,
                              size_t k, size_t* i) {
  const size_t N = hn::Lanes(d);
  const auto flip = hn::Set(d, 0x80);
  auto sums = hn::Zero(hn::Repartition<uint64_t, D>());
  for (; *i + N <= k; *i += N) {
    const auto v = hn::Xor(hn::LoadU(d, s + *i), flip);
    hn::StoreU(v, d, d_out + *i);
    sums = hn::Add(sums, hn::SumsOf8(v));
  }
  return hn::GetLane(hn::SumOfLanes(hn::Repartition<uint64_t, D>(), sums));
}

void PackRowsU8(size_t rows, size_t k, size_t kp, const int8_t* src, size_t lda, int32_t /*a_zp*/,
                int32_t w_zp, void* dst_v, size_t dst_stride, int32_t* row_bias) {
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* s = reinterpret_cast<const uint8_t*>(src + r * lda);
    uint8_t* d = static_cast<uint8_t*>(dst_v) + r * dst_stride;
    size_t i = 0;
    uint64_t sum = FlipRowU8(hn::ScalableTag<uint8_t>(), s, d, k, &i);
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    sum += FlipRowU8(hn::Full128<uint8_t>(), s, d, k, &i);
#endif
    for (; i < k; ++i) {
      d[i] = static_cast<uint8_t>(s[i] ^ 0x80);
      sum += d[i];
    }
    for (; i < kp; ++i) d[i] = 0;
    if (row_bias != nullptr) row_bias[r] = wrap_mul(-w_zp, static_cast<int32_t>(sum));
  }
}

template <class D16>
HWY_INLINE void WidenRowI16(D16 d16, const int8_t* HWY_RESTRICT s, int16_t* HWY_RESTRICT d,
                            int32_t a_zp, size_t k, size_t* i) {
  const hn::Rebind<int8_t, D16> d8;
  const size_t N = hn::Lanes(d16);
  const auto zp = hn::Set(d16, static_cast<int16_t>(a_zp));
  for (; *i + N <= k; *i += N) {
    hn::StoreU(hn::Sub(hn::PromoteTo(d16, hn::LoadU(d8, s + *i)), zp), d16, d + *i);
  }
}

void PackRowsI16(size_t rows, size_t k, size_t kp, const int8_t* src, size_t lda, int32_t a_zp,
                 int32_t /*w_zp*/, void* dst_v, size_t dst_stride, int32_t* /*row_bias*/) {
  for (size_t r = 0; r < rows; ++r) {
    const int8_t* s = src + r * lda;
    int16_t* d = static_cast<int16_t*>(dst_v) + r * dst_stride;
    size_t i = 0;
    WidenRowI16(hn::ScalableTag<int16_t>(), s, d, a_zp, k, &i);
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    WidenRowI16(hn::Full64<int16_t>(), s, d, a_zp, k, &i);
#endif
    for (; i < k; ++i) d[i] = static_cast<int16_t>(s[i] - a_zp);
    for (; i < kp; ++i) d[i] = 0;
  }
}

const Qs8GemmUkernels* GetQs8GemmUkernels() {
  static const Qs8GemmUkernels k = [] {
    Qs8GemmUkernels u;
    u.isa = hwy::TargetName(HWY_TARGET);
#if HWY_TARGET == HWY_AVX3_DL
    u.gemm = {"qs8_gemm_fp32_8x32c4__avx3_dl", Qs8GemmKind::kVnniU8S8, 8, 32, 4,
              &Qs8GemmVnni<8, 2>, &Qs8GemmVnni<8, 2, true>};
    u.narrow = {"qs8_gemm_fp32_8x16c4__avx3_dl", Qs8GemmKind::kVnniU8S8, 8, 16, 4,
                &Qs8GemmVnni<8, 1>, &Qs8GemmVnni<8, 1, true>};
    if (AmxUsable()) {
      u.amx = {"qs8_gemm_fp32_32x32c64__amx", Qs8GemmKind::kVnniU8S8, 32, 32, 64,
                &Qs8GemmAmx<2>, nullptr, &EnterAmx};
      u.amx_narrow = {"qs8_gemm_fp32_32x16c64__amx", Qs8GemmKind::kVnniU8S8, 32, 16, 64,
                      &Qs8GemmAmx<1>, nullptr, &EnterAmx};
    }
    u.pack_rows = &PackRowsU8;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    u.gemm = {"qs8_gemm_fp32_4x4c2__scalar", Qs8GemmKind::kInt16Pairs, 4, 4, 2,
              &Qs8GemmInt16<4, 4>};
    u.narrow = u.gemm;
    u.pack_rows = &PackRowsI16;
#else
    const hn::ScalableTag<int32_t> d32;
    const size_t nr = 2 * hn::Lanes(d32);
#if HWY_TARGET == HWY_AVX3
    u.gemm = {"qs8_gemm_fp32_8x32c2__avx3", Qs8GemmKind::kInt16Pairs, 8, nr, 2,
              &Qs8GemmInt16<8, 2>};
    u.narrow = {"qs8_gemm_fp32_8x16c2__avx3", Qs8GemmKind::kInt16Pairs, 8, nr / 2, 2,
                &Qs8GemmInt16<8, 1>};
#elif HWY_TARGET == HWY_AVX2
    u.gemm = {"qs8_gemm_fp32_4x16c2__avx2", Qs8GemmKind::kInt16Pairs, 4, nr, 2,
              &Qs8GemmInt16<4, 2>};
    u.narrow = {"qs8_gemm_fp32_4x8c2__avx2", Qs8GemmKind::kInt16Pairs, 4, nr / 2, 2,
                &Qs8GemmInt16<4, 1>};
#else
    u.gemm = {"qs8_gemm_fp32_4x8c2__sse", Qs8GemmKind::kInt16Pairs, 4, nr, 2,
              &Qs8GemmInt16<4, 2>};
    u.narrow = {"qs8_gemm_fp32_4x4c2__sse", Qs8GemmKind::kInt16Pairs, 4, nr / 2, 2,
                &Qs8GemmInt16<4, 1>};
#endif
    u.pack_rows = &PackRowsI16;
#endif
    return u;
  }();
  return &k;
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(GetQs8GemmUkernels);

const char* apply_forced_isa();  // gemm.h

const Qs8GemmUkernels& qs8_gemm_ukernels() {
  apply_forced_isa();
  return *HWY_DYNAMIC_DISPATCH(GetQs8GemmUkernels)();
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
