// f32_dwconv_minmax_<KH>x<KW>__hwy: depthwise conv rows in NHWC, vectors over channels
// (contiguous in NHWC). Compiled once per Highway target.
//
// Per output pixel and channel vector: acc = bias; acc += in * w over the taps; clamp; store.
// Interior pixels (every tap inside the image) run the taps unrolled without bounds checks;
// border pixels skip the taps that fall in the padding (they read as zero). Square kernels of
// compile-time size keep a block of channels' weights in registers for the whole row, border
// pixels included (at 7x7 and 14x14, 2 of every 7 pixels are border ones). The last partial
// channel vector uses masked loads and stores, so no byte outside the tensors is touched.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/f32_dwconv_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <type_traits>

#include "kernels/conv/conv_fast_ukernels.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || \
    HWY_ARCH_ARM_A64
constexpr size_t kDwRegisters = 32;
#else
constexpr size_t kDwRegisters = 16;
#endif

// kPixels interior pixels of one row at stride S (dilation 1), channels [c, c + B*N): each input
// vector is loaded once and feeds every output pixel whose window covers it (3 of 4 at S = 1),
// instead of once per tap. Per output, the taps still add in (ky, kx) order: the same sums as
// one pixel at a time. `src` is tap (0, 0) of the first pixel, `out` its output.
constexpr int kPixels = 4;
template <int K, size_t B, int S, class D, class V>
HWY_INLINE void DwInteriorPixels(D d, const float* HWY_RESTRICT src, ptrdiff_t dy, ptrdiff_t C, const V (&w)[B][K * K],
                                 const V (&b)[B], V vmin, V vmax, float* HWY_RESTRICT out) {
  const size_t N = hn::Lanes(d);
  V acc[kPixels][B];
  HWY_UNROLL(4)
  for (int q = 0; q < kPixels; ++q) {
    HWY_UNROLL(2)
    for (size_t j = 0; j < B; ++j) acc[q][j] = b[j];
  }
  HWY_UNROLL(5)
  for (int ky = 0; ky < K; ++ky) {
    const float* row = src + ky * dy;
    HWY_UNROLL(16)
    for (int x = 0; x < (kPixels - 1) * S + K; ++x) {
      V in[B];
      HWY_UNROLL(2)
      for (size_t j = 0; j < B; ++j) in[j] = hn::LoadU(d, row + x * C + static_cast<ptrdiff_t>(j * N));
      HWY_UNROLL(4)
      for (int q = 0; q < kPixels; ++q) {
        const int kx = x - q * S;
        if (kx < 0 || kx >= K) continue;
        HWY_UNROLL(2)
        for (size_t j = 0; j < B; ++j) acc[q][j] = hn::MulAdd(in[j], w[j][ky * K + kx], acc[q][j]);
      }
    }
  }
  HWY_UNROLL(4)
  for (int q = 0; q < kPixels; ++q) {
    HWY_UNROLL(2)
    for (size_t j = 0; j < B; ++j) hn::StoreU(hn::Min(hn::Max(acc[q][j], vmin), vmax), d, out + q * C + j * N);
  }
}

// Every pixel of the row, channels [c, c + B*N): the B*K*K weight vectors and B biases stay in
// registers while the pixels stream by (B = 2 when they fit in half the register file, else
// 1). Pixels [ox_lo, ox_hi) have every tap inside the image (empty unless the row's kernel rows
// all are) and run the taps unrolled without checks, kPixels at a time at stride S (1 or 2,
// dilation 1; S = 0: one at a time); the others skip the taps in the padding (kernel rows
// [ky_begin, ky_end) are the valid ones for the whole row).
template <int K, size_t B, int S>
HWY_INLINE void DwRowBlock(const F32DwconvRowArgs& p, size_t c, int ox_lo, int ox_hi, int ky_begin, int ky_end) {
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t C = p.c;
  const size_t cs = p.c_stride;
  const V vmin = hn::Set(d, p.min);
  const V vmax = hn::Set(d, p.max);
  V w[B][K * K];
  V b[B];
  HWY_UNROLL(2)
  for (size_t j = 0; j < B; ++j) {
    b[j] = hn::Load(d, p.weights + c + j * N);
    HWY_UNROLL(25)
    for (int t = 0; t < K * K; ++t) w[j][t] = hn::Load(d, p.weights + cs + t * cs + c + j * N);
  }
  const ptrdiff_t row_elems = static_cast<ptrdiff_t>(p.in_w) * static_cast<ptrdiff_t>(C);
  const ptrdiff_t dy = static_cast<ptrdiff_t>(p.dilation_h) * row_elems;
  const ptrdiff_t dx = static_cast<ptrdiff_t>(p.dilation_w) * static_cast<ptrdiff_t>(C);
  // Offset of tap (0, 0) of pixel 0, channel c; may be outside the image (only valid taps are read).
  const ptrdiff_t off_row = static_cast<ptrdiff_t>(p.oy * p.stride_h - p.pad_top - p.in_row0) * row_elems -
                            static_cast<ptrdiff_t>(p.pad_left) * static_cast<ptrdiff_t>(C) + static_cast<ptrdiff_t>(c);
  const ptrdiff_t step = static_cast<ptrdiff_t>(p.stride_w) * static_cast<ptrdiff_t>(C);
  float* out = p.output + c;
  for (int ox = 0; ox < p.out_w; ++ox, out += C) {
    const ptrdiff_t off0 = off_row + static_cast<ptrdiff_t>(ox) * step;
    if constexpr (S > 0) {
      if (ox >= ox_lo && ox + kPixels <= ox_hi) {
        DwInteriorPixels<K, B, S>(d, p.input + off0, dy, static_cast<ptrdiff_t>(C), w, b, vmin, vmax, out);
        ox += kPixels - 1;
        out += (kPixels - 1) * C;
        continue;
      }
    }
    V acc[B];
    HWY_UNROLL(2)
    for (size_t j = 0; j < B; ++j) acc[j] = b[j];
    if (ox >= ox_lo && ox < ox_hi) {
      const float* src = p.input + off0;
      HWY_UNROLL(5)
      for (int ky = 0; ky < K; ++ky) {
        HWY_UNROLL(5)
        for (int kx = 0; kx < K; ++kx) {
          const float* s = src + ky * dy + kx * dx;
          HWY_UNROLL(2)
          for (size_t j = 0; j < B; ++j) acc[j] = hn::MulAdd(hn::LoadU(d, s + j * N), w[j][ky * K + kx], acc[j]);
        }
      }
    } else {
      const int ix0 = ox * p.stride_w - p.pad_left;
      int kx_begin = 0, kx_end = K;
      while (kx_begin < K && ix0 + kx_begin * p.dilation_w < 0) ++kx_begin;
      while (kx_end > kx_begin && ix0 + (kx_end - 1) * p.dilation_w >= p.in_w) --kx_end;
      HWY_UNROLL(5)
      for (int ky = 0; ky < K; ++ky) {
        if (ky < ky_begin || ky >= ky_end) continue;
        HWY_UNROLL(5)
        for (int kx = 0; kx < K; ++kx) {
          if (kx < kx_begin || kx >= kx_end) continue;
          const float* s = p.input + (off0 + ky * dy + kx * dx);
          HWY_UNROLL(2)
          for (size_t j = 0; j < B; ++j) acc[j] = hn::MulAdd(hn::LoadU(d, s + j * N), w[j][ky * K + kx], acc[j]);
        }
      }
    }
    HWY_UNROLL(2)
    for (size_t j = 0; j < B; ++j) hn::StoreU(hn::Min(hn::Max(acc[j], vmin), vmax), d, out + j * N);
  }
}

// KH, KW > 0: compile-time kernel size; 0: taken from args.
template <int KH, int KW>
void F32DwconvRow(const F32DwconvRowArgs& p) {
  using D = hn::ScalableTag<float>;
  using V = hn::Vec<D>;
  const D d;
  const size_t N = hn::Lanes(d);
  const int kh = KH > 0 ? KH : p.kernel_h;
  const int kw = KW > 0 ? KW : p.kernel_w;
  const size_t C = p.c;
  const size_t cs = p.c_stride;
  const size_t c_full = C / N * N;
  const V vmin = hn::Set(d, p.min);
  const V vmax = hn::Set(d, p.max);
  const float* HWY_RESTRICT bias = p.weights;
  const float* HWY_RESTRICT taps = p.weights + cs;
  const size_t in_row_elems = static_cast<size_t>(p.in_w) * C;

  // Valid kernel rows are the same for the whole output row.
  const int iy0 = p.oy * p.stride_h - p.pad_top;
  int ky_begin = 0, ky_end = kh;
  while (ky_begin < kh && iy0 + ky_begin * p.dilation_h < 0) ++ky_begin;
  while (ky_end > ky_begin && iy0 + (ky_end - 1) * p.dilation_h >= p.in_h) --ky_end;
  const bool rows_inside = ky_begin == 0 && ky_end == kh;

  // Square compile-time kernels: whole vectors of channels run block by block with the weights
  // in registers (DwRowBlock), for every pixel; the channel tail below.
  size_t c_done = 0;  // channels [0, c_done) of every pixel done here
  if constexpr (KH == KW && KH > 0) {
    int ox_lo = 0, ox_hi = 0;  // pixels with every tap inside
    if (rows_inside) {
      ox_lo = (p.pad_left + p.stride_w - 1) / p.stride_w;
      const int last = p.in_w - 1 - (kw - 1) * p.dilation_w + p.pad_left;  // ox * stride_w <= last
      ox_hi = last < 0 ? 0 : std::min(p.out_w, last / p.stride_w + 1);
      if (ox_hi <= ox_lo) ox_hi = ox_lo = 0;
    }
    constexpr size_t kBlock = 2 * (KH * KW + 1) + 4 <= kDwRegisters ? 2 : 1;
    const int stride = p.dilation_w == 1 && (p.stride_w == 1 || p.stride_w == 2) ? p.stride_w : 0;
    // The input rows that the next output row reads and this one does not, fetched into L2 a
    // share per channel block: each block reads one vector per pixel, and a row that arrives
    // from memory that way waits on a line at a time. MobileNetV2 training (224, batch 32,
    // 2 threads): the depthwise convs' forward ~44.8 -> ~41.3 ms per step. At batch 1, with
    // the input in cache, the prefetches cost 4% of MobileNetV2's inference, so only for
    // inputs streamed to memory.
    const char* next_rows = nullptr;
    size_t next_lines = 0;
    if (p.prefetch_bytes != 0) {
      next_rows = reinterpret_cast<const char*>(p.prefetch);
      next_lines = (p.prefetch_bytes + 63) / 64;
    } else if (p.prefetch_rows && p.dilation_h == 1) {
      const int lo = std::max({iy0 + kh, 0, p.in_row0});
      const int hi = std::min(iy0 + p.stride_h + kh, p.in_h);
      if (hi > lo) {
        next_rows = reinterpret_cast<const char*>(p.input + static_cast<size_t>(lo - p.in_row0) * in_row_elems);
        next_lines = (static_cast<size_t>(hi - lo) * in_row_elems * sizeof(float) + 63) / 64;
      }
    }
    auto fetch = [&](size_t c_begin, size_t c_end) {
      for (size_t l = next_lines * c_begin / c_full, e = next_lines * c_end / c_full; l < e; ++l) {
        __builtin_prefetch(next_rows + l * 64, 0, 2);
      }
    };
    size_t c = 0;
    auto blocks = [&](auto stride_tag) {
      constexpr int S = decltype(stride_tag)::value;
      if constexpr (kBlock == 2) {
        for (; c + 2 * N <= c_full; c += 2 * N) {
          fetch(c, c + 2 * N);
          DwRowBlock<KH, 2, S>(p, c, ox_lo, ox_hi, ky_begin, ky_end);
        }
      }
      for (; c + N <= c_full; c += N) {
        fetch(c, c + N);
        DwRowBlock<KH, 1, S>(p, c, ox_lo, ox_hi, ky_begin, ky_end);
      }
    };
    if (stride == 1) {
      blocks(std::integral_constant<int, 1>());
    } else if (stride == 2) {
      blocks(std::integral_constant<int, 2>());
    } else {
      blocks(std::integral_constant<int, 0>());
    }
    c_done = c;
  }
  if (c_done == C) return;

  for (int ox = 0; ox < p.out_w; ++ox) {
    const int ix0 = ox * p.stride_w - p.pad_left;
    int kx_begin = 0, kx_end = kw;
    while (kx_begin < kw && ix0 + kx_begin * p.dilation_w < 0) ++kx_begin;
    while (kx_end > kx_begin && ix0 + (kx_end - 1) * p.dilation_w >= p.in_w) --kx_end;
    // Offset of tap (0, 0) of this pixel; may be outside the image (only valid taps are read).
    const ptrdiff_t off0 = static_cast<ptrdiff_t>(iy0 - p.in_row0) * static_cast<ptrdiff_t>(in_row_elems) +
                           static_cast<ptrdiff_t>(ix0) * static_cast<ptrdiff_t>(C);
    float* out = p.output + static_cast<size_t>(ox) * C;
    const ptrdiff_t dy = static_cast<ptrdiff_t>(p.dilation_h) * static_cast<ptrdiff_t>(in_row_elems);
    const ptrdiff_t dx = static_cast<ptrdiff_t>(p.dilation_w) * static_cast<ptrdiff_t>(C);
    auto src_at = [&](int ky, int kx, size_t c) {
      return p.input + (off0 + ky * dy + kx * dx + static_cast<ptrdiff_t>(c));
    };

    if (rows_inside && kx_begin == 0 && kx_end == kw) {
      size_t c = c_done;
      for (; c < c_full; c += N) {
        V acc = hn::Load(d, bias + c);
        for (int ky = 0; ky < kh; ++ky) {
          for (int kx = 0; kx < kw; ++kx) {
            const V x = hn::LoadU(d, src_at(ky, kx, c));
            acc = hn::MulAdd(x, hn::Load(d, taps + (ky * kw + kx) * cs + c), acc);
          }
        }
        hn::StoreU(hn::Min(hn::Max(acc, vmin), vmax), d, out + c);
      }
      if (c < C) {
        V acc = hn::Load(d, bias + c);
        for (int ky = 0; ky < kh; ++ky) {
          for (int kx = 0; kx < kw; ++kx) {
            const V x = LoadPartial(d, src_at(ky, kx, c), C - c);
            acc = hn::MulAdd(x, hn::Load(d, taps + (ky * kw + kx) * cs + c), acc);
          }
        }
        StorePartial(hn::Min(hn::Max(acc, vmin), vmax), d, out + c, C - c);
      }
      continue;
    }

    for (size_t c = c_done; c < C; c += N) {
      const bool full = c + N <= C;
      V acc = hn::Load(d, bias + c);
      for (int ky = ky_begin; ky < ky_end; ++ky) {
        for (int kx = kx_begin; kx < kx_end; ++kx) {
          const float* src = src_at(ky, kx, c);
          const V x = full ? hn::LoadU(d, src) : LoadPartial(d, src, C - c);
          acc = hn::MulAdd(x, hn::Load(d, taps + (ky * kw + kx) * cs + c), acc);
        }
      }
      acc = hn::Min(hn::Max(acc, vmin), vmax);
      if (full) {
        hn::StoreU(acc, d, out + c);
      } else {
        StorePartial(acc, d, out + c, C - c);
      }
    }
  }
}

const F32DwconvUkernels* GetF32DwconvUkernels() {
  static const F32DwconvUkernels table = {hwy::TargetName(HWY_TARGET), &F32DwconvRow<3, 3>,
                                          &F32DwconvRow<5, 5>, &F32DwconvRow<0, 0>};
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {
HWY_EXPORT(GetF32DwconvUkernels);

const F32DwconvUkernels& f32_dwconv_ukernels() {
  apply_forced_isa();
  return *HWY_DYNAMIC_DISPATCH(GetF32DwconvUkernels)();
}
}  // namespace pcv::kernels
#endif  // HWY_ONCE
