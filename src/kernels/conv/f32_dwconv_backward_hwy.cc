// f32_dwconv_backward_image (contract in conv_backward.h): the depthwise (channel multiplier 1)
// backward of one image, vectorized over channels and compiled per Highway target.
//
// 3x3, dilation 1, stride 1 or 2 (all of MobileNetV2's), one channel vector at a time over a
// band of rows: the filter gradient keeps its 9 tap sums in registers over the band; the
// input gradient is gathered per input pixel (the taps that read it, the 9 filter vectors in
// registers) and stored once.
// The ~2 read-modify-writes per pixel, tap and vector of the general path ran 3.5x slower
// than the forward.
// Other shapes: output pixels in memory order; per pixel and valid tap, a channel vector of
// the output gradient g updates the filter gradient (dwt[tap] += g * x[tap's input pixel])
// and the input gradient (dx[that pixel] += g * w[tap]).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/f32_dwconv_backward_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <vector>

#include "kernels/common/stream_fence.h"
#include "kernels/conv/conv_backward.h"
#include "kernels/gemm/load_partial-inl.h"
#include "kernels/train/bn_terms-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <bool kDx, bool kDw, bool kDb>
void DwBackwardImage(const Conv2dParams& p, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                     const float* HWY_RESTRICT wt, float* HWY_RESTRICT dx, float* HWY_RESTRICT dwt,
                     float* HWY_RESTRICT db) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t c = static_cast<size_t>(p.out_c);
  const size_t full = c / N * N;
  for (int oy = 0; oy < p.out_h; ++oy) {
    for (int ox = 0; ox < p.out_w; ++ox) {
      const float* g = dy + (static_cast<size_t>(oy) * p.out_w + ox) * c;
      if (kDb) {
        size_t k = 0;
        for (; k < full; k += N) hn::StoreU(hn::Add(hn::LoadU(d, db + k), hn::LoadU(d, g + k)), d, db + k);
        if (k < c) StorePartial(hn::Add(LoadPartial(d, db + k, c - k), LoadPartial(d, g + k, c - k)), d, db + k, c - k);
      }
      for (int ky = 0; ky < p.kernel_h; ++ky) {
        const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
        if (iy < 0 || iy >= p.in_h) continue;
        for (int kx = 0; kx < p.kernel_w; ++kx) {
          const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
          if (ix < 0 || ix >= p.in_w) continue;
          const size_t tap = static_cast<size_t>(ky * p.kernel_w + kx) * c;
          const size_t xo = (static_cast<size_t>(iy) * p.in_w + ix) * c;
          size_t k = 0;
          for (; k < full; k += N) {
            const auto gv = hn::LoadU(d, g + k);
            if (kDw) hn::StoreU(hn::MulAdd(gv, hn::LoadU(d, x + xo + k), hn::LoadU(d, dwt + tap + k)), d, dwt + tap + k);
            if (kDx) hn::StoreU(hn::MulAdd(gv, hn::LoadU(d, wt + tap + k), hn::LoadU(d, dx + xo + k)), d, dx + xo + k);
          }
          if (k < c) {
            const size_t n = c - k;
            const auto gv = LoadPartial(d, g + k, n);
            if (kDw) {
              StorePartial(hn::MulAdd(gv, LoadPartial(d, x + xo + k, n), LoadPartial(d, dwt + tap + k, n)), d,
                           dwt + tap + k, n);
            }
            if (kDx) {
              StorePartial(hn::MulAdd(gv, LoadPartial(d, wt + tap + k, n), LoadPartial(d, dx + xo + k, n)), d,
                           dx + xo + k, n);
            }
          }
        }
      }
    }
  }
}

// ---- 3x3, dilation 1, stride 1 or 2: registers instead of read-modify-writes per tap ----

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

template <bool kFull>
HWY_INLINE VF LoadL(const DF d, const float* HWY_RESTRICT p, size_t lanes) {
  return kFull ? hn::LoadU(d, p) : LoadPartial(d, p, lanes);
}
template <bool kFull>
HWY_INLINE void StoreL(VF v, const DF d, float* HWY_RESTRICT p, size_t lanes) {
  if (kFull) {
    hn::StoreU(v, d, p);
  } else {
    StorePartial(v, d, p, lanes);
  }
}

// The shape as plain locals (the kernels store through float pointers, which would otherwise
// make the compiler reload every field of a referenced struct after each store).
struct Dw3x3Shape {
  int in_h, in_w, out_h, out_w, pad_top, pad_left;
  size_t c;
};

// Filter (and bias) gradient of one channel vector [k, k + lanes) over output rows
// [oy_begin, oy_end): the 9 tap sums stay in registers over the band, then are added to dwt.
// x holds every input row (x_ring 0), or a ring of x_ring rows: row iy at iy % x_ring.
template <int S, bool kDb, bool kFull>
HWY_INLINE void DwFilterGradVec(const Dw3x3Shape sh, const float* HWY_RESTRICT x, int x_ring,
                                const float* HWY_RESTRICT dy, float* HWY_RESTRICT dwt,
                                float* HWY_RESTRICT db, size_t k, size_t lanes, int oy_begin, int oy_end) {
  const DF d;
  const size_t c = sh.c;
  // Output columns whose three taps are all inside the input.
  int ox_lo = 0;
  while (ox_lo < sh.out_w && ox_lo * S - sh.pad_left < 0) ++ox_lo;
  int ox_hi = ox_lo;
  while (ox_hi < sh.out_w && ox_hi * S - sh.pad_left + 2 < sh.in_w) ++ox_hi;
  VF acc[9];
  for (int t = 0; t < 9; ++t) acc[t] = hn::Zero(d);
  VF sb = hn::Zero(d);
  for (int oy = oy_begin; oy < oy_end; ++oy) {
    const int iy0 = oy * S - sh.pad_top;
    const float* xr[3];
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = iy0 + ky;
      const int slot = x_ring > 0 ? iy % x_ring : iy;
      xr[ky] = iy >= 0 && iy < sh.in_h ? x + static_cast<size_t>(slot) * sh.in_w * c + k : nullptr;
    }
    const float* g_row = dy + static_cast<size_t>(oy) * sh.out_w * c + k;
    for (int ox = 0; ox < sh.out_w; ++ox) {
      const VF g = LoadL<kFull>(d, g_row + static_cast<size_t>(ox) * c, lanes);
      if (kDb) sb = hn::Add(sb, g);
      const int ix0 = ox * S - sh.pad_left;
      const bool inner = ox >= ox_lo && ox < ox_hi;
      HWY_UNROLL(3)
      for (int ky = 0; ky < 3; ++ky) {
        if (xr[ky] == nullptr) continue;
        HWY_UNROLL(3)
        for (int kx = 0; kx < 3; ++kx) {
          const int ix = ix0 + kx;
          if (!inner && (ix < 0 || ix >= sh.in_w)) continue;
          acc[ky * 3 + kx] = hn::MulAdd(g, LoadL<kFull>(d, xr[ky] + static_cast<size_t>(ix) * c, lanes),
                                        acc[ky * 3 + kx]);
        }
      }
    }
  }
  for (int t = 0; t < 9; ++t) {
    float* w = dwt + static_cast<size_t>(t) * c + k;
    StoreL<kFull>(hn::Add(LoadL<kFull>(d, w, lanes), acc[t]), d, w, lanes);
  }
  if (kDb) StoreL<kFull>(hn::Add(LoadL<kFull>(d, db + k, lanes), sb), d, db + k, lanes);
}

// Rows per band: every channel vector walks a band while its rows are in L2 (3 output rows of
// block 1's 112x112x96 input at stride 2: 7 rows of x and 3 of dy, ~366 KB, with the batch
// norm's output recomputed into a ring of those 7 rows when fused; 5 rows of x at stride 1),
// so each row comes from memory once, not once per channel vector. 4 rows, interleaved with
// whole-image walks on this machine: 0.65-0.88 against 0.71-0.86 ms per 112x112x96 image.
// 3 rows against 4, MobileNetV2 training at batch 32, 2 threads (every depthwise backward with
// the recomputed input), three interleaved pairs: depthwise backward 91.9/94.0/91.2 ->
// 85.6/86.2/87.2 ms per step. The filter and bias gradients add each band's sums to their
// total, so the band height groups their floats (a change of it moves them within rounding);
// the input gradient and the batch norm's sums are per pixel and do not depend on it.
constexpr int kBandRows = kDwBackwardBandRows;

// A contiguous byte range to bring into L2 a share at a time. Each channel vector's walk over
// a band reads one vector per pixel, so rows that come from memory that way arrive a line per
// miss; prefetched ahead, whole rows stream in. Train_bench's BM_dwconv_backward (batch 32,
// 2 threads, cold caches), two interleaved runs: 56x56x144 stride 1 13.8/14.2 -> 9.7/10.2 ms,
// 14x14x576 4.4/3.9 -> 2.3/2.7, 112x112x32 13.5/13.8 -> 11.9/11.6; stride 2 unchanged.
// An address, not a pointer: the range may lie past the tensor (a prefetch never faults).
struct PrefetchRange {
  uintptr_t begin = 0;
  size_t bytes = 0;
};

// Share i of `shares` of r's cache lines, prefetched for reading into L2.
HWY_INLINE void PrefetchShare(const PrefetchRange& r, size_t i, size_t shares) {
  const size_t lines = (r.bytes + 63) / 64;
  for (size_t l = lines * i / shares, e = lines * (i + 1) / shares; l < e; ++l) {
    __builtin_prefetch(reinterpret_cast<const void*>(r.begin + l * 64), 0, 2);
  }
}

// Filter (and bias) gradient of output rows [oy0, oy1), every channel vector; meanwhile the
// next band's rows of x and dy are prefetched, a share per channel vector.
template <int S, bool kDb>
void DwFilterGradBand(const Dw3x3Shape sh, const float* HWY_RESTRICT x, int x_ring, const float* HWY_RESTRICT dy,
                      float* HWY_RESTRICT dwt, float* HWY_RESTRICT db, int oy0, int oy1, PrefetchRange px,
                      PrefetchRange pdy) {
  const size_t N = hn::Lanes(DF());
  const size_t vecs = (sh.c + N - 1) / N;
  size_t k = 0, i = 0;
  for (; k + N <= sh.c; k += N, ++i) {
    PrefetchShare(px, i, vecs);
    PrefetchShare(pdy, i, vecs);
    DwFilterGradVec<S, kDb, true>(sh, x, x_ring, dy, dwt, db, k, N, oy0, oy1);
  }
  if (k < sh.c) {
    PrefetchShare(px, i, vecs);
    PrefetchShare(pdy, i, vecs);
    DwFilterGradVec<S, kDb, false>(sh, x, x_ring, dy, dwt, db, k, sh.c - k, oy0, oy1);
  }
}

// Input gradient of one channel vector, gathered per input pixel: the sum over the taps that
// read it of dy * w (the filter vectors of the row's taps in registers), stored once.
// kStream (assigning full, aligned vectors only): non-temporal stores.
// kSums (assigning): also the batch norm's backward sums over the pixels (BnSums), in pixel
// order, added to the partials in memory: g = the input gradient where the batch norm's clamp
// passed (recomputed from its input x), sum g and sum g * (x - mean) * invstd, with
// f32_bn_grad_sums's operations (bn_terms-inl.h) in its order, so the same floats.
struct BnSums {
  const float* x;  // the batch norm's input: the image's (in_h, in_w, c)
  BnFusedClamp clamp;
  const float* mean;
  const float* invstd;
  float* sdy;
  float* sdyx;
};

template <int S, bool kAssign, bool kFull, bool kStream = false, bool kSums = false>
HWY_INLINE void DwInputGradVec(const Dw3x3Shape sh, const float* HWY_RESTRICT dy,
                               const float* HWY_RESTRICT wt, float* HWY_RESTRICT dx, size_t k,
                               size_t lanes, int iy_begin, int iy_end, const BnSums* sums = nullptr) {
  const DF d;
  const size_t c = sh.c;
  VF w[9];
  for (int t = 0; t < 9; ++t) w[t] = LoadL<kFull>(d, wt + static_cast<size_t>(t) * c + k, lanes);
  VF sa = hn::Zero(d), sb = hn::Zero(d), scale = sa, shift = sa, mean = sa, invstd = sa, lo = sa, hi = sa;
  if constexpr (kSums) {
    sa = LoadL<kFull>(d, sums->sdy + k, lanes);
    sb = LoadL<kFull>(d, sums->sdyx + k, lanes);
    scale = LoadL<kFull>(d, sums->clamp.scale + k, lanes);
    shift = LoadL<kFull>(d, sums->clamp.shift + k, lanes);
    mean = LoadL<kFull>(d, sums->mean + k, lanes);
    invstd = LoadL<kFull>(d, sums->invstd + k, lanes);
    lo = hn::Set(d, sums->clamp.lo);
    hi = hn::Set(d, sums->clamp.hi);
  }
  for (int iy = iy_begin; iy < iy_end; ++iy) {
    // The output row that reads input row iy through tap row ky, if any.
    const float* dyr[3];
    for (int ky = 0; ky < 3; ++ky) {
      const int num = iy + sh.pad_top - ky;
      const bool ok = num >= 0 && num % S == 0 && num / S < sh.out_h;
      dyr[ky] = ok ? dy + static_cast<size_t>(num / S) * sh.out_w * c + k : nullptr;
    }
    float* o = dx + static_cast<size_t>(iy) * sh.in_w * c + k;
    const float* xs = kSums ? sums->x + static_cast<size_t>(iy) * sh.in_w * c + k : nullptr;
    for (int ix = 0; ix < sh.in_w; ++ix, o += c) {
      VF sum = hn::Zero(d);
      HWY_UNROLL(3)
      for (int kx = 0; kx < 3; ++kx) {
        const int num = ix + sh.pad_left - kx;
        if (num < 0 || num % S != 0 || num / S >= sh.out_w) continue;
        const size_t off = static_cast<size_t>(num / S) * c;
        HWY_UNROLL(3)
        for (int ky = 0; ky < 3; ++ky) {
          if (dyr[ky] != nullptr) sum = hn::MulAdd(LoadL<kFull>(d, dyr[ky] + off, lanes), w[ky * 3 + kx], sum);
        }
      }
      if (kStream) {
        hn::Stream(sum, d, o);
      } else {
        StoreL<kFull>(kAssign ? sum : hn::Add(LoadL<kFull>(d, o, lanes), sum), d, o, lanes);
      }
      if constexpr (kSums) {
        const VF xv = LoadL<kFull>(d, xs + static_cast<size_t>(ix) * c, lanes);
        BnSumsAdd(PassInside(d, BnPreClamp(xv, scale, shift), lo, hi, sum), BnXhat(xv, mean, invstd), sa, sb);
      }
    }
  }
  if constexpr (kSums) {
    StoreL<kFull>(sa, d, sums->sdy + k, lanes);
    StoreL<kFull>(sb, d, sums->sdyx + k, lanes);
  }
}

// An assigned input gradient of at least this many bytes per image is written with
// non-temporal stores when every vector is aligned: the batch's gradient is far larger than
// the caches, and the batch norm before this conv reads it back from memory anyway
// (MobileNetV2 224, batch 32, 2 threads: 1.8-4.8 MB per image in blocks 1-3, whose backward
// went from 23.8, 16.6 and 11.4 ms to 18.4, 13.0-14.8 and 5.6 ms). Only for pixels of at least
// kStreamPixelBytes: block 0 (32 channels, 128 bytes) got slower, 12.3 -> 14.1 ms.
constexpr size_t kStreamImageBytes = size_t{1} << 20;
constexpr size_t kStreamPixelBytes = 256;

// Input gradient of input rows [iy0, iy1), every channel vector.
template <int S, bool kAssign>
void DwInputGradBand(const Dw3x3Shape sh, const float* HWY_RESTRICT dy, const float* HWY_RESTRICT wt,
                     float* HWY_RESTRICT dx, bool stream, int iy0, int iy1, const BnSums* sums) {
  const size_t N = hn::Lanes(DF());
  size_t k = 0;
  if (kAssign && sums != nullptr) {
    if (stream) {
      for (; k < sh.c; k += N) DwInputGradVec<S, true, true, true, true>(sh, dy, wt, dx, k, N, iy0, iy1, sums);
      return;
    }
    for (; k + N <= sh.c; k += N) DwInputGradVec<S, true, true, false, true>(sh, dy, wt, dx, k, N, iy0, iy1, sums);
    if (k < sh.c) DwInputGradVec<S, true, false, false, true>(sh, dy, wt, dx, k, sh.c - k, iy0, iy1, sums);
    return;
  }
  if (kAssign && stream) {
    for (; k < sh.c; k += N) DwInputGradVec<S, true, true, true>(sh, dy, wt, dx, k, N, iy0, iy1);
    return;
  }
  for (; k + N <= sh.c; k += N) DwInputGradVec<S, kAssign, true>(sh, dy, wt, dx, k, N, iy0, iy1);
  if (k < sh.c) DwInputGradVec<S, kAssign, false>(sh, dy, wt, dx, k, sh.c - k, iy0, iy1);
}

// Band by band, the filter gradient of output rows [b * kBandRows, (b + 1) * kBandRows), then
// the input gradient of input rows [b * kBandRows * S, (b + 1) * kBandRows * S): the rows of dy
// both read are still in L2 for the second. Each output's sums keep their order (filter
// gradient: bands in order; input gradient: per pixel), so the results do not depend on it.
// x_affine: the filter gradient reads clamp(x * scale + shift) instead of x, each band's rows
// computed into the ring x_buf (rows it shares with the band before kept there).
template <int S, bool kDb, bool kAssign>
void DwBackwardBands(const Dw3x3Shape sh, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                     const float* HWY_RESTRICT wt, float* HWY_RESTRICT dx, float* HWY_RESTRICT dwt,
                     float* HWY_RESTRICT db, const BnFusedClamp* x_affine, float* HWY_RESTRICT x_buf,
                     const BnSums* sums) {
  const size_t N = hn::Lanes(DF());
  const bool stream = dx != nullptr && kAssign && sh.c % N == 0 && sh.c * sizeof(float) >= kStreamPixelBytes &&
                      reinterpret_cast<uintptr_t>(dx) % (N * sizeof(float)) == 0 &&
                      static_cast<size_t>(sh.in_h) * sh.in_w * sh.c * sizeof(float) >= kStreamImageBytes;
  const int filter_bands = dwt != nullptr ? (sh.out_h + kBandRows - 1) / kBandRows : 0;
  const int input_bands = dx != nullptr ? (sh.in_h + kBandRows * S - 1) / (kBandRows * S) : 0;
  const size_t in_row = static_cast<size_t>(sh.in_w) * sh.c * sizeof(float);
  const size_t out_row = static_cast<size_t>(sh.out_w) * sh.c * sizeof(float);
  const size_t row_floats = static_cast<size_t>(sh.in_w) * sh.c;
  // x_affine: x_buf is a ring of `ring` rows (row iy at iy % ring) that holds rows up to have_hi.
  const int ring = std::min(sh.in_h, (kBandRows - 1) * S + 3);
  int have_hi = 0;
  for (int b = 0; b < std::max(filter_bands, input_bands); ++b) {
    if (b < filter_bands) {
      // Prefetched meanwhile: the next band's rows, output rows [oy1, oy2) and the input rows
      // they read that this band does not. After the last band, the rows past the image: the
      // next image's first band when the caller walks a batch (a prefetch never faults).
      const int oy1 = std::min(sh.out_h, (b + 1) * kBandRows), oy2 = std::min(sh.out_h, (b + 2) * kBandRows);
      const uintptr_t xa = reinterpret_cast<uintptr_t>(x), dya = reinterpret_cast<uintptr_t>(dy);
      PrefetchRange px, pdy;
      if (oy2 == oy1) {
        px = {xa + static_cast<size_t>(sh.in_h) * in_row,
              static_cast<size_t>(std::min(sh.in_h, kBandRows * S + 2)) * in_row};
        pdy = {dya + static_cast<size_t>(sh.out_h) * out_row,
               static_cast<size_t>(std::min(sh.out_h, kBandRows)) * out_row};
      } else {
        const int iy_lo = std::max(0, (oy1 - 1) * S - sh.pad_top + 3);
        const int iy_hi = std::min(sh.in_h, (oy2 - 1) * S - sh.pad_top + 3);
        if (iy_hi > iy_lo) {
          px = {xa + static_cast<size_t>(iy_lo) * in_row, static_cast<size_t>(iy_hi - iy_lo) * in_row};
        }
        pdy = {dya + static_cast<size_t>(oy1) * out_row, static_cast<size_t>(oy2 - oy1) * out_row};
      }
      const float* xb = x;
      int x_ring = 0;
      if (x_affine != nullptr) {
        // The rows the band reads that the ring does not hold yet (the ring keeps the ones it
        // shares with the band before).
        const int need_hi = std::min(sh.in_h, (oy1 - 1) * S - sh.pad_top + 3);
        have_hi = std::max(have_hi, std::max(0, b * kBandRows * S - sh.pad_top));
        for (; have_hi < need_hi;) {
          const int slot = have_hi % ring;
          const int rows = std::min(need_hi - have_hi, ring - slot);  // up to the ring's end
          f32_rows_scale_shift(static_cast<size_t>(rows) * sh.in_w, sh.c,
                               x + static_cast<size_t>(have_hi) * row_floats, x_affine->scale, x_affine->shift,
                               x_affine->lo, x_affine->hi, x_buf + static_cast<size_t>(slot) * row_floats);
          have_hi += rows;
        }
        xb = x_buf;
        x_ring = ring;
      }
      DwFilterGradBand<S, kDb>(sh, xb, x_ring, dy, dwt, db, b * kBandRows, oy1, px, pdy);
    }
    if (b < input_bands) {
      DwInputGradBand<S, kAssign>(sh, dy, wt, dx, stream, b * kBandRows * S,
                                  std::min(sh.in_h, (b + 1) * kBandRows * S), sums);
    }
  }
  if (stream) stream_fence();
}

template <int S>
void DwBackward3x3(const Conv2dParams& p, const float* x, const float* dy, const float* wt, float* dx,
                   float* dwt, float* db, bool assign_dx, const BnFusedClamp* x_affine, float* x_buf,
                   const F32BnSumsPartial* bn_sums) {
  BnSums sums_args;
  const BnSums* sums = nullptr;
  if (bn_sums != nullptr && x_affine != nullptr && assign_dx && dx != nullptr) {
    sums_args = {x, *x_affine, bn_sums->mean, bn_sums->invstd, bn_sums->sdy, bn_sums->sdyx};
    sums = &sums_args;
  }
  const Dw3x3Shape sh{p.in_h, p.in_w, p.out_h, p.out_w, p.pad_top, p.pad_left, static_cast<size_t>(p.out_c)};
  std::vector<float> unused;
  if (dwt == nullptr && db != nullptr) {  // bias only: the filter sums go to scratch
    unused.assign(9 * static_cast<size_t>(p.out_c), 0.f);
    dwt = unused.data();
  }
  if (db != nullptr) {
    if (assign_dx) return DwBackwardBands<S, true, true>(sh, x, dy, wt, dx, dwt, db, x_affine, x_buf, sums);
    return DwBackwardBands<S, true, false>(sh, x, dy, wt, dx, dwt, db, x_affine, x_buf, sums);
  }
  if (assign_dx) return DwBackwardBands<S, false, true>(sh, x, dy, wt, dx, dwt, db, x_affine, x_buf, sums);
  DwBackwardBands<S, false, false>(sh, x, dy, wt, dx, dwt, db, x_affine, x_buf, sums);
}

void F32DwconvBackwardImage(const Conv2dParams& p, const float* x, const float* dy, const float* wt,
                            float* dx, float* dwt, float* db, bool assign_dx, const BnFusedClamp* x_affine,
                            float* x_buf, const F32BnSumsPartial* bn_sums) {
  if (f32_dwconv_backward_affine_rows(p) > 0) {
    if (p.stride_h == 1) return DwBackward3x3<1>(p, x, dy, wt, dx, dwt, db, assign_dx, x_affine, x_buf, bn_sums);
    return DwBackward3x3<2>(p, x, dy, wt, dx, dwt, db, assign_dx, x_affine, x_buf, bn_sums);
  }
  if (dx != nullptr && assign_dx) std::fill(dx, dx + static_cast<size_t>(p.in_h) * p.in_w * p.in_c, 0.f);
  const int sel = (dx != nullptr ? 4 : 0) | (dwt != nullptr ? 2 : 0) | (db != nullptr ? 1 : 0);
  switch (sel) {
    case 7: return DwBackwardImage<true, true, true>(p, x, dy, wt, dx, dwt, db);
    case 6: return DwBackwardImage<true, true, false>(p, x, dy, wt, dx, dwt, db);
    case 5: return DwBackwardImage<true, false, true>(p, x, dy, wt, dx, dwt, db);
    case 4: return DwBackwardImage<true, false, false>(p, x, dy, wt, dx, dwt, db);
    case 3: return DwBackwardImage<false, true, true>(p, x, dy, wt, dx, dwt, db);
    case 2: return DwBackwardImage<false, true, false>(p, x, dy, wt, dx, dwt, db);
    case 1: return DwBackwardImage<false, false, true>(p, x, dy, wt, dx, dwt, db);
    default: return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(F32DwconvBackwardImage);

int f32_dwconv_backward_affine_rows(const Conv2dParams& p) {
  const bool banded = p.kernel_h == 3 && p.kernel_w == 3 && p.dilation_h == 1 && p.dilation_w == 1 &&
                      p.stride_h == p.stride_w && (p.stride_h == 1 || p.stride_h == 2);
  return banded ? std::min(p.in_h, (kDwBackwardBandRows - 1) * p.stride_h + 3) : 0;
}

void f32_dwconv_backward_image(const Conv2dParams& p, const float* x, const float* dy, const float* wt,
                               float* dx, float* dwt, float* db, bool assign_dx, const BnFusedClamp* x_affine,
                               float* x_buf, const F32BnSumsPartial* bn_sums) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32DwconvBackwardImage)(p, x, dy, wt, dx, dwt, db, assign_dx, x_affine, x_buf, bn_sums);
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
