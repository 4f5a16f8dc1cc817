// qs8_dwconv_fp32__<isa>: int8 depthwise conv (multiplier 1) with the fused fp32
// requantization, compiled once per Highway target (contract in qs8_conv_fast.h).
// Channels sit in int32 lanes: per output pixel and lane block, acc = bias + sum over the
// taps inside the input of (x - input_zp) * (w - filter_zp), then RequantStoreFp32. The last
// lane block of a pixel loads its channels through a small buffer (no read past the tensor).
// AVX3_DL adds qs8_dwconv_vnni_fp32__avx3_dl (layout kVnniQuads, see qs8_conv_fast.h): taps
// in groups of 4, each int32 lane holding one channel's 4 taps (u8 = x + 128) so that one
// VPDPBUSD adds 4 taps of 16 channels. Per 64 channels and group, the 4 tap loads are
// interleaved by bytes then words (in-lane unpacks: accumulator r, lane 4L + i = channel
// 16L + 4r + i), and the in-lane packs of the requantized results restore channel order. The
// taps left over (9 = 2 * 4 + 1) go one at a time: a byte shuffle puts channel 16L + 4r + i in
// byte r of lane 4L + i, and 4 dot products with weights only in byte r add it.
// Taps outside the input read a row of input zero points, which cancels against the folded
// bias, so borders take the same loop.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/qs8_dwconv_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/common/qs8_requant-inl.h"
#include "kernels/conv/qs8_conv_fast.h"

#if HWY_TARGET == HWY_AVX3_DL

#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Qs8DwconvFp32(const Qs8Conv2dPacked& k, const int8_t* input, int8_t* output,
                   size_t row_begin, size_t row_end) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const hn::Rebind<float, decltype(d32)> df;
  const size_t N = hn::Lanes(d32);
  const Conv2dParams& p = k.params;
  const size_t C = static_cast<size_t>(p.in_c);
  const int32_t* wts = reinterpret_cast<const int32_t*>(k.dw_weights.data());
  const int32_t* bias = reinterpret_cast<const int32_t*>(k.dw_bias.data());
  const int32_t* bias_full = reinterpret_cast<const int32_t*>(k.dw_bias_full.data());
  const float* scale = reinterpret_cast<const float*>(k.dw_scale.data());
  const auto zp_in = hn::Set(d32, k.input_zero_point);
  const auto fmin = hn::Set(df, k.epilogue.min_less_zp);
  const auto fmax = hn::Set(df, k.epilogue.max_less_zp);
  const auto zp_out = hn::Set(d32, k.epilogue.output_zero_point);
  const size_t cp = k.c_padded;
  for (size_t row = row_begin; row < row_end; ++row) {
    const int n = static_cast<int>(row / static_cast<size_t>(p.out_h));
    const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
    const int8_t* in_n = input + static_cast<size_t>(n) * p.in_h * p.in_w * C;
    int8_t* out_row = output + row * static_cast<size_t>(p.out_w) * C;
    // Rows of the window inside the input.
    const int iy0 = oy * p.stride_h - p.pad_top;
    int ky0 = 0, ky1 = p.kernel_h;
    while (ky0 < ky1 && iy0 + ky0 * p.dilation_h < 0) ++ky0;
    while (ky1 > ky0 && iy0 + (ky1 - 1) * p.dilation_h >= p.in_h) --ky1;
    // 3x3 fast path: rows whose window is inside the input vertically, columns [lo, hi) inside
    // horizontally, whole vectors of channels. Per channel block the 9 weight vectors, bias and
    // scale stay in registers while the row streams by.
    int ox_lo = 0, ox_hi = 0;
    if (p.kernel_h == 3 && p.kernel_w == 3 && p.dilation_h == 1 && p.dilation_w == 1 &&
        C % N == 0 && ky0 == 0 && ky1 == 3) {
      ox_lo = (p.pad_left + p.stride_w - 1) / p.stride_w;
      ox_hi = p.in_w - 3 + p.pad_left >= 0 ? (p.in_w - 3 + p.pad_left) / p.stride_w + 1 : 0;
      ox_hi = std::min(ox_hi, p.out_w);
      if (ox_hi < ox_lo) ox_hi = ox_lo;
      const int8_t* r0 = in_n + static_cast<size_t>(iy0) * p.in_w * C;
      const int8_t* r1 = r0 + static_cast<size_t>(p.in_w) * C;
      const int8_t* r2 = r1 + static_cast<size_t>(p.in_w) * C;
      const size_t sx = static_cast<size_t>(p.stride_w) * C;
      for (size_t c = 0; c < C; c += N) {
        const auto w0 = hn::LoadU(d32, wts + 0 * cp + c), w1 = hn::LoadU(d32, wts + 1 * cp + c);
        const auto w2 = hn::LoadU(d32, wts + 2 * cp + c), w3 = hn::LoadU(d32, wts + 3 * cp + c);
        const auto w4 = hn::LoadU(d32, wts + 4 * cp + c), w5 = hn::LoadU(d32, wts + 5 * cp + c);
        const auto w6 = hn::LoadU(d32, wts + 6 * cp + c), w7 = hn::LoadU(d32, wts + 7 * cp + c);
        const auto w8 = hn::LoadU(d32, wts + 8 * cp + c);
        const auto b = hn::LoadU(d32, bias_full + c);
        const auto sc = hn::LoadU(df, scale + c);
        size_t off = static_cast<size_t>(ox_lo * p.stride_w - p.pad_left) * C + c;
        for (int ox = ox_lo; ox < ox_hi; ++ox, off += sx) {
          auto x = [&](const int8_t* r, size_t dx) { return hn::PromoteTo(d32, hn::LoadU(d8, r + off + dx * C)); };
          auto a0 = hn::Add(b, hn::Mul(x(r0, 0), w0));
          auto a1 = hn::Mul(x(r0, 1), w1);
          a0 = hn::Add(a0, hn::Mul(x(r0, 2), w2));
          a1 = hn::Add(a1, hn::Mul(x(r1, 0), w3));
          a0 = hn::Add(a0, hn::Mul(x(r1, 1), w4));
          a1 = hn::Add(a1, hn::Mul(x(r1, 2), w5));
          a0 = hn::Add(a0, hn::Mul(x(r2, 0), w6));
          a1 = hn::Add(a1, hn::Mul(x(r2, 1), w7));
          a0 = hn::Add(a0, hn::Mul(x(r2, 2), w8));
          RequantStoreFp32(d32, hn::Add(a0, a1), sc, fmin, fmax, zp_out,
                           out_row + static_cast<size_t>(ox) * C + c, N);
        }
      }
    }
    for (int ox = 0; ox < p.out_w; ++ox) {
      if (ox == ox_lo && ox_hi > ox_lo) {
        ox = ox_hi - 1;  // done above
        continue;
      }
      const int ix0 = ox * p.stride_w - p.pad_left;
      int kx0 = 0, kx1 = p.kernel_w;
      while (kx0 < kx1 && ix0 + kx0 * p.dilation_w < 0) ++kx0;
      while (kx1 > kx0 && ix0 + (kx1 - 1) * p.dilation_w >= p.in_w) --kx1;
      int8_t* out_px = out_row + static_cast<size_t>(ox) * C;
      if (ky0 == 0 && ky1 == p.kernel_h && kx0 == 0 && kx1 == p.kernel_w) {
        // Window inside the input: the zero point is folded into bias_full.
        for (size_t c = 0; c < C; c += N) {
          const bool full = c + N <= C;
          auto acc = hn::LoadU(d32, bias_full + c);
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int8_t* in_row = in_n + static_cast<size_t>(iy0 + ky * p.dilation_h) * p.in_w * C;
            const int32_t* w_row = wts + static_cast<size_t>(ky) * p.kernel_w * cp;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int8_t* src = in_row + static_cast<size_t>(ix0 + kx * p.dilation_w) * C + c;
              hn::Vec<decltype(d8)> xv;
              if (full) {
                xv = hn::LoadU(d8, src);
              } else {
                HWY_ALIGN int8_t buf[hn::MaxLanes(d8)] = {};
                std::memcpy(buf, src, C - c);
                xv = hn::Load(d8, buf);
              }
              acc = hn::Add(acc, hn::Mul(hn::PromoteTo(d32, xv),
                                         hn::LoadU(d32, w_row + static_cast<size_t>(kx) * cp + c)));
            }
          }
          RequantStoreFp32(d32, acc, hn::LoadU(df, scale + c), fmin, fmax, zp_out, out_px + c,
                           full ? N : C - c);
        }
        continue;
      }
      for (size_t c = 0; c < C; c += N) {
        const bool full = c + N <= C;
        auto acc = hn::LoadU(d32, bias + c);
        for (int ky = ky0; ky < ky1; ++ky) {
          const int iy = iy0 + ky * p.dilation_h;
          const int8_t* in_row = in_n + static_cast<size_t>(iy) * p.in_w * C;
          const int32_t* w_row = wts + static_cast<size_t>(ky) * p.kernel_w * cp;
          for (int kx = kx0; kx < kx1; ++kx) {
            const int ix = ix0 + kx * p.dilation_w;
            const int8_t* src = in_row + static_cast<size_t>(ix) * C + c;
            hn::Vec<decltype(d8)> xv;
            if (full) {
              xv = hn::LoadU(d8, src);
            } else {
              HWY_ALIGN int8_t buf[hn::MaxLanes(d8)] = {};
              std::memcpy(buf, src, C - c);
              xv = hn::Load(d8, buf);
            }
            const auto x = hn::Sub(hn::PromoteTo(d32, xv), zp_in);
            acc = hn::Add(acc, hn::Mul(x, hn::LoadU(d32, w_row + static_cast<size_t>(kx) * cp + c)));
          }
        }
        RequantStoreFp32(d32, acc, hn::LoadU(df, scale + c), fmin, fmax, zp_out, out_px + c,
                         full ? N : C - c);
      }
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL
#define PCV_VNNI_TARGET __attribute__((target(HWY_TARGET_STR ",avx512vnni")))
// Every function of the kernel carries PCV_VNNI_TARGET (GCC inlines only across equal
// targets); its lambdas (GCC: the function's target, clang: the namespace's, a subset) are
// forced inline.
#define PCV_INLINE_LAMBDA __attribute__((always_inline))
// In each 128-bit lane, byte 4i + r <- byte 4r + i: one tap's 16 channels moved to where a
// group's unpacks put them (lane i, byte r for channel 4r + i).
PCV_VNNI_TARGET HWY_INLINE __m128i Transpose4x4Ctrl() {
  return _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// How the VNNI kernel's vectors map to pixels: DwFull holds 64 channels of one pixel; DwPair
// (the last block of a tensor whose channel tail is at most 32) 32 channels of two pixels,
// one per 256-bit half, with the weights and constants repeated in both halves. Every
// operation on them stays within 128-bit lanes.
// kMasked: the last block of a tensor whose channel tail is between 33 and 63.
template <bool kMasked>
struct DwFull {
  using M = __mmask64;
  static constexpr size_t kPix = 1;
  template <class Src>
  PCV_VNNI_TARGET static __m512i LoadX(const Src& src, size_t v, size_t t, size_t c, M m) {
    if (!kMasked) return _mm512_loadu_si512(src(v, t) + c);
    return _mm512_maskz_loadu_epi8(m, src(v, t) + c);
  }
  PCV_VNNI_TARGET static __m512i LoadW(const int8_t* p) { return _mm512_load_si512(p); }
  PCV_VNNI_TARGET static __m512i LoadI(const int32_t* p) { return _mm512_load_si512(p); }
  PCV_VNNI_TARGET static __m512 LoadF(const float* p) { return _mm512_load_ps(p); }
  PCV_VNNI_TARGET static void Store(int8_t* const* dst, size_t v, size_t c, M m, __m512i r) {
    if (dst[v] == nullptr) return;
    if (kMasked) {
      _mm512_mask_storeu_epi8(dst[v] + c, m, r);
    } else {
      _mm512_storeu_si512(dst[v] + c, r);
    }
  }
};
// kContig: 32 channels and stride 1 inside the input, where the two pixels' taps are
// neighbours in memory and one load takes both.
template <bool kContig>
struct DwPair {
  using M = __mmask32;
  static constexpr size_t kPix = 2;
  template <class Src>
  PCV_VNNI_TARGET static __m512i LoadX(const Src& src, size_t v, size_t t, size_t c, M m) {
    if (kContig) return _mm512_loadu_si512(src(2 * v, t));
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_maskz_loadu_epi8(m, src(2 * v, t) + c)),
                              _mm256_maskz_loadu_epi8(m, src(2 * v + 1, t) + c), 1);
  }
  PCV_VNNI_TARGET static __m512i LoadW(const int8_t* p) {
    return _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
  }
  PCV_VNNI_TARGET static __m512i LoadI(const int32_t* p) {
    return _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
  }
  PCV_VNNI_TARGET static __m512 LoadF(const float* p) {
    return _mm512_castsi512_ps(LoadI(reinterpret_cast<const int32_t*>(p)));
  }
  PCV_VNNI_TARGET static void Store(int8_t* const* dst, size_t v, size_t c, M m, __m512i r) {
    if (dst[2 * v] != nullptr) _mm256_mask_storeu_epi8(dst[2 * v] + c, m, _mm512_castsi512_si256(r));
    if (dst[2 * v + 1] != nullptr) _mm256_mask_storeu_epi8(dst[2 * v + 1] + c, m, _mm512_extracti64x4_epi64(r, 1));
  }
};

// Output pixels [q0, q0 + P) of the channel block at c: src(q, t) is the tap t source of
// pixel q, dst[q] its output (nullptr: computed, not stored); P / W::kPix vectors.
template <class W, size_t P, class Src>
PCV_VNNI_TARGET HWY_INLINE void DwVnniBlock(const Src& src, size_t c, size_t taps,
                                            const int8_t* wb, const int32_t* bias,
                                            const float* scale, typename W::M m,
                                            const Qs8GemmEpilogue& e, int8_t* const* dst) {
  constexpr size_t PV = P / W::kPix;
  const size_t quads = taps / 4;
  const __m512i flip = _mm512_set1_epi8(-128);
  __m512i acc[PV][4];
  HWY_UNROLL(4)
  for (size_t j = 0; j < 4; ++j) {
    const __m512i b = W::LoadI(bias + j * 16);
    HWY_UNROLL(4)
    for (size_t v = 0; v < PV; ++v) acc[v][j] = b;
  }
  for (size_t g = 0; g < quads; ++g) {
    const size_t t = g * 4;
    HWY_UNROLL(4)
    for (size_t v = 0; v < PV; ++v) {
      const __m512i x0 = _mm512_xor_si512(W::LoadX(src, v, t, c, m), flip);
      const __m512i x1 = _mm512_xor_si512(W::LoadX(src, v, t + 1, c, m), flip);
      const __m512i x2 = _mm512_xor_si512(W::LoadX(src, v, t + 2, c, m), flip);
      const __m512i x3 = _mm512_xor_si512(W::LoadX(src, v, t + 3, c, m), flip);
      const __m512i l01 = _mm512_unpacklo_epi8(x0, x1), h01 = _mm512_unpackhi_epi8(x0, x1);
      const __m512i l23 = _mm512_unpacklo_epi8(x2, x3), h23 = _mm512_unpackhi_epi8(x2, x3);
      const int8_t* wg = wb + g * 256;
      acc[v][0] = _mm512_dpbusd_epi32(acc[v][0], _mm512_unpacklo_epi16(l01, l23), W::LoadW(wg));
      acc[v][1] = _mm512_dpbusd_epi32(acc[v][1], _mm512_unpackhi_epi16(l01, l23), W::LoadW(wg + 64));
      acc[v][2] = _mm512_dpbusd_epi32(acc[v][2], _mm512_unpacklo_epi16(h01, h23), W::LoadW(wg + 128));
      acc[v][3] = _mm512_dpbusd_epi32(acc[v][3], _mm512_unpackhi_epi16(h01, h23), W::LoadW(wg + 192));
    }
  }
  // The taps after the last group of 4, one at a time: one shuffle, and 4 dot products whose
  // weights are nonzero only in byte r of each lane.
  const __m512i tr = _mm512_broadcast_i32x4(Transpose4x4Ctrl());
  for (size_t t = quads * 4, u = quads; t < taps; ++t, ++u) {
    const int8_t* wu = wb + u * 256;
    HWY_UNROLL(4)
    for (size_t v = 0; v < PV; ++v) {
      const __m512i xt = _mm512_shuffle_epi8(_mm512_xor_si512(W::LoadX(src, v, t, c, m), flip), tr);
      HWY_UNROLL(4)
      for (size_t r = 0; r < 4; ++r) acc[v][r] = _mm512_dpbusd_epi32(acc[v][r], xt, W::LoadW(wu + r * 64));
    }
  }
  // The requantization as in the int8 GEMM's RequantRows (the same bits as the reference):
  // the upper clamp in float, saturating packs, the zero point in int16, the lower clamp in
  // int8. The in-lane packs undo the unpacks' order.
  const __m512 fmax = _mm512_set1_ps(e.max_less_zp);
  const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(e.output_zero_point));
  const __m512i min8 = _mm512_set1_epi8(static_cast<int8_t>(e.act_min));
  HWY_UNROLL(4)
  for (size_t v = 0; v < PV; ++v) {
    __m512i q[4];
    HWY_UNROLL(4)
    for (size_t j = 0; j < 4; ++j) {
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[v][j]), W::LoadF(scale + j * 16));
      q[j] = _mm512_cvtps_epi32(_mm512_min_ps(f, fmax));
    }
    const __m512i lo = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zp16);
    const __m512i hi = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zp16);
    W::Store(dst, v, c, m, _mm512_max_epi8(_mm512_packs_epi16(lo, hi), min8));
  }
}

// Every channel block of P output pixels (a function, not a lambda: clang gives lambdas the
// namespace's target, without VNNI).
template <size_t P>
struct DwVnniBlocks {
  size_t blocks, tail, units, taps;
  const int8_t* wts;
  const int32_t* bias;
  const float* scale;
  const Qs8GemmEpilogue& e;

  template <bool kContig, class Src>
  PCV_VNNI_TARGET HWY_INLINE void Run(const Src& src, int8_t* const* dst) const {
    const __mmask64 tail64 = tail == 64 ? ~__mmask64{0} : (__mmask64{1} << tail) - 1;
    const __mmask32 tail32 = tail >= 32 ? ~__mmask32{0} : (__mmask32{1} << tail) - 1;
    for (size_t b = 0; b < blocks; ++b) {
      const size_t c = b * 64;
      const int8_t* wb = wts + b * units * 256;
      const int32_t* bb = bias + b * 64;
      const float* sb = scale + b * 64;
      if (b + 1 == blocks && tail <= 32) {
        DwVnniBlock<DwPair<kContig>, P>(src, c, taps, wb, bb, sb, tail32, e, dst);
      } else if (b + 1 < blocks || tail == 64) {
        DwVnniBlock<DwFull<false>, P>(src, c, taps, wb, bb, sb, ~__mmask64{0}, e, dst);
      } else {
        DwVnniBlock<DwFull<true>, P>(src, c, taps, wb, bb, sb, tail64, e, dst);
      }
    }
  }
};

PCV_VNNI_TARGET void Qs8DwconvVnni(const Qs8Conv2dPacked& k, const int8_t* input, int8_t* output,
                                   size_t row_begin, size_t row_end) {
  constexpr size_t P = 4;  // output pixels per tap-source setup
  const Conv2dParams& p = k.params;
  const size_t C = static_cast<size_t>(p.in_c);
  const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
  const size_t units = qs8_dwconv_vnni_units(taps);
  const size_t blocks = k.c_padded / 64;
  const size_t tail = C - (blocks - 1) * 64;  // channels of the last block, 1..64
  const int8_t* wts = reinterpret_cast<const int8_t*>(k.dw_weights.data());
  const int32_t* bias = reinterpret_cast<const int32_t*>(k.dw_bias_full.data());
  const float* scale = reinterpret_cast<const float*>(k.dw_scale.data());
  const int8_t* pad = reinterpret_cast<const int8_t*>(k.dw_pad.data());
  // Tap offsets from a window's top-left input pixel.
  ptrdiff_t off[kQs8DwVnniMaxTaps];
  for (int ky = 0, t = 0; ky < p.kernel_h; ++ky) {
    for (int kx = 0; kx < p.kernel_w; ++kx, ++t) {
      off[t] = (static_cast<ptrdiff_t>(ky) * p.dilation_h * p.in_w + kx * p.dilation_w) *
               static_cast<ptrdiff_t>(C);
    }
  }
  const int span_w = (p.kernel_w - 1) * p.dilation_w;
  const int8_t* rows[kQs8DwVnniMaxKernel];
  const int8_t* ptr[P][kQs8DwVnniMaxTaps];
  const DwVnniBlocks<P> run_blocks{blocks, tail, units, taps, wts, bias, scale, k.epilogue};
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t n = row / static_cast<size_t>(p.out_h);
    const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
    const int8_t* in_n = input + n * p.in_h * p.in_w * C;
    int8_t* out_row = output + row * static_cast<size_t>(p.out_w) * C;
    const int iy0 = oy * p.stride_h - p.pad_top;
    bool rows_inside = true;
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = iy0 + ky * p.dilation_h;
      rows[ky] = iy >= 0 && iy < p.in_h ? in_n + static_cast<size_t>(iy) * p.in_w * C : nullptr;
      rows_inside = rows_inside && rows[ky] != nullptr;
    }
    for (int ox0 = 0; ox0 < p.out_w; ox0 += static_cast<int>(P)) {
      // Past the row's end, pixels repeat the last one and are not stored.
      int8_t* dst[P];
      int ox[P];
      for (size_t q = 0; q < P; ++q) {
        ox[q] = std::min(ox0 + static_cast<int>(q), p.out_w - 1);
        dst[q] = ox0 + static_cast<int>(q) < p.out_w ? out_row + static_cast<size_t>(ox[q]) * C : nullptr;
      }
      const int ix_first = ox[0] * p.stride_w - p.pad_left;
      const int ix_last = ox[P - 1] * p.stride_w - p.pad_left + span_w;
      if (rows_inside && ix_first >= 0 && ix_last < p.in_w) {
        // Every window inside the input: a base pointer per pixel and the tap offsets.
        const int8_t* base[P];
        for (size_t q = 0; q < P; ++q) {
          base[q] = rows[0] + static_cast<ptrdiff_t>(ox[q] * p.stride_w - p.pad_left) * static_cast<ptrdiff_t>(C);
        }
        const auto src = [&](size_t q, size_t t) PCV_INLINE_LAMBDA { return base[q] + off[t]; };
        // One load for a pair of pixels needs the second to be the next column (not a repeat
        // past the row's end).
        if (C == 32 && p.stride_w == 1 && ox0 + static_cast<int>(P) <= p.out_w) {
          run_blocks.Run<true>(src, dst);
        } else {
          run_blocks.Run<false>(src, dst);
        }
        continue;
      }
      // Borders: per tap, the input pixel or the zero-point row.
      for (size_t q = 0; q < P; ++q) {
        const int ix0 = ox[q] * p.stride_w - p.pad_left;
        for (int ky = 0, t = 0; ky < p.kernel_h; ++ky) {
          for (int kx = 0; kx < p.kernel_w; ++kx, ++t) {
            const int ix = ix0 + kx * p.dilation_w;
            ptr[q][t] = rows[ky] != nullptr && ix >= 0 && ix < p.in_w
                            ? rows[ky] + static_cast<size_t>(ix) * C
                            : pad;
          }
        }
      }
      run_blocks.Run<false>([&](size_t q, size_t t) PCV_INLINE_LAMBDA { return ptr[q][t]; }, dst);
    }
  }
}
#undef PCV_VNNI_TARGET
#undef PCV_INLINE_LAMBDA
#endif

const Qs8DwconvUkernel* GetQs8DwconvUkernel() {
  static const Qs8DwconvUkernel k = [] {
    Qs8DwconvUkernel u;
    u.isa = hwy::TargetName(HWY_TARGET);
#if HWY_TARGET == HWY_AVX3_DL
    u.name = "qs8_dwconv_fp32__avx3_dl";
    u.vnni_name = "qs8_dwconv_vnni_fp32__avx3_dl";
    u.vnni_fn = &Qs8DwconvVnni;
#elif HWY_TARGET == HWY_AVX3
    u.name = "qs8_dwconv_fp32__avx3";
#elif HWY_TARGET == HWY_AVX2
    u.name = "qs8_dwconv_fp32__avx2";
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
    u.name = "qs8_dwconv_fp32__scalar";
#else
    u.name = "qs8_dwconv_fp32__sse";
#endif
    u.fn = &Qs8DwconvFp32;
    u.lanes = hn::Lanes(hn::ScalableTag<int32_t>());
    return u;
  }();
  return &k;
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(GetQs8DwconvUkernel);

const char* apply_forced_isa();  // gemm.h

const Qs8DwconvUkernel& qs8_dwconv_ukernel() {
  apply_forced_isa();
  return *HWY_DYNAMIC_DISPATCH(GetQs8DwconvUkernel)();
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
