// Winograd F(2x2, 3x3) transforms (contract in winograd.h), one Highway source compiled per
// target. Vectors over channels; at most 8 lanes (the transforms stream their tiles through
// memory, where 256-bit accesses measured faster than 512-bit ones on the AVX-512 machine the
// training row kernels were tuned on, train_rows_hwy.cc); channel tails with partial loads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/conv/f32_winograd_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>

#include "kernels/conv/winograd.h"
#include "kernels/gemm/load_partial-inl.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 8>;
using VF = hn::Vec<DF>;

template <bool kFull>
HWY_INLINE VF LoadCh(DF d, const float* p, size_t n) {
  return kFull ? hn::LoadU(d, p) : LoadPartial(d, p, n);
}
template <bool kFull>
HWY_INLINE void StoreCh(VF v, DF d, float* p, size_t n) {
  if (kFull) {
    hn::StoreU(v, d, p);
  } else {
    StorePartial(v, d, p, n);
  }
}

// One tile's channels [ch, ch + n) (n = Lanes unless a tail): window rows/cols outside the
// image read as zeros (row_ok / col_ok).
template <bool kFull>
HWY_INLINE void InputTileChannels(DF d, const float* const* rows, const bool* row_ok, const int* ix,
                                  const bool* col_ok, size_t c, size_t ch, size_t n, float* v, size_t v_stride) {
  VF x[4][4];
  HWY_UNROLL(4)
  for (int i = 0; i < 4; ++i) {
    HWY_UNROLL(4)
    for (int j = 0; j < 4; ++j) {
      x[i][j] = row_ok[i] && col_ok[j] ? LoadCh<kFull>(d, rows[i] + static_cast<size_t>(ix[j]) * c + ch, n)
                                       : hn::Zero(d);
    }
  }
  // B^T d: rows.
  VF t[4][4];
  HWY_UNROLL(4)
  for (int j = 0; j < 4; ++j) {
    t[0][j] = hn::Sub(x[0][j], x[2][j]);
    t[1][j] = hn::Add(x[1][j], x[2][j]);
    t[2][j] = hn::Sub(x[2][j], x[1][j]);
    t[3][j] = hn::Sub(x[1][j], x[3][j]);
  }
  // (B^T d) B: columns.
  HWY_UNROLL(4)
  for (int i = 0; i < 4; ++i) {
    StoreCh<kFull>(hn::Sub(t[i][0], t[i][2]), d, v + (4 * i + 0) * v_stride + ch, n);
    StoreCh<kFull>(hn::Add(t[i][1], t[i][2]), d, v + (4 * i + 1) * v_stride + ch, n);
    StoreCh<kFull>(hn::Sub(t[i][2], t[i][1]), d, v + (4 * i + 2) * v_stride + ch, n);
    StoreCh<kFull>(hn::Sub(t[i][1], t[i][3]), d, v + (4 * i + 3) * v_stride + ch, n);
  }
}

void WinogradInput(const WinogradInputArgs& a, size_t t0, size_t count, float* HWY_RESTRICT v,
                   size_t v_stride) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t c = a.c;
  for (size_t k = 0; k < count; ++k) {
    const size_t t = t0 + k;
    const int iy0 = 2 * static_cast<int>(t / a.tiles_w) - a.pad_top;
    const int ix0 = 2 * static_cast<int>(t % a.tiles_w) - a.pad_left;
    const float* rows[4];
    bool row_ok[4], col_ok[4];
    int ix[4];
    for (int i = 0; i < 4; ++i) {
      const int iy = iy0 + i;
      row_ok[i] = iy >= 0 && iy < a.in_h;
      rows[i] = row_ok[i] ? a.image + static_cast<size_t>(iy) * a.in_w * c : a.image;
      ix[i] = ix0 + i;
      col_ok[i] = ix[i] >= 0 && ix[i] < a.in_w;
    }
    float* vt = v + k * c;
    size_t ch = 0;
    for (; ch + N <= c; ch += N) InputTileChannels<true>(d, rows, row_ok, ix, col_ok, c, ch, N, vt, v_stride);
    if (ch < c) InputTileChannels<false>(d, rows, row_ok, ix, col_ok, c, ch, c - ch, vt, v_stride);
  }
}

// kPool: out[0] gets the max of the tile's four clamped outputs (a 2x2 max-pool window).
template <bool kFull, bool kPool>
HWY_INLINE void OutputTileChannels(DF d, const float* m, size_t m_stride, size_t ch, size_t n, const float* bias,
                                   VF lo, VF hi, float* const* out, const bool* ok) {
  VF x[4][4];
  HWY_UNROLL(4)
  for (int i = 0; i < 4; ++i) {
    HWY_UNROLL(4)
    for (int j = 0; j < 4; ++j) x[i][j] = LoadCh<kFull>(d, m + (4 * i + j) * m_stride + ch, n);
  }
  // A^T M: rows.
  VF s[2][4];
  HWY_UNROLL(4)
  for (int j = 0; j < 4; ++j) {
    s[0][j] = hn::Add(hn::Add(x[0][j], x[1][j]), x[2][j]);
    s[1][j] = hn::Sub(hn::Sub(x[1][j], x[2][j]), x[3][j]);
  }
  const VF b = bias != nullptr ? LoadCh<kFull>(d, bias + ch, n) : hn::Zero(d);
  VF y[2][2];
  HWY_UNROLL(2)
  for (int i = 0; i < 2; ++i) {
    y[i][0] = hn::Min(hn::Max(hn::Add(hn::Add(hn::Add(s[i][0], s[i][1]), s[i][2]), b), lo), hi);
    y[i][1] = hn::Min(hn::Max(hn::Add(hn::Sub(hn::Sub(s[i][1], s[i][2]), s[i][3]), b), lo), hi);
  }
  if constexpr (kPool) {
    StoreCh<kFull>(hn::Max(hn::Max(y[0][0], y[0][1]), hn::Max(y[1][0], y[1][1])), d, out[0] + ch, n);
  } else {
    HWY_UNROLL(2)
    for (int i = 0; i < 2; ++i) {
      if (ok[2 * i]) StoreCh<kFull>(y[i][0], d, out[2 * i] + ch, n);
      if (ok[2 * i + 1]) StoreCh<kFull>(y[i][1], d, out[2 * i + 1] + ch, n);
    }
  }
}

void WinogradOutput(const WinogradOutputArgs& a, size_t t0, size_t count, const float* HWY_RESTRICT m,
                    size_t m_stride) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const size_t c = a.c;
  const VF lo = hn::Set(d, a.min), hi = hn::Set(d, a.max);
  const int pool_h = a.out_h / 2, pool_w = a.out_w / 2;
  for (size_t k = 0; k < count; ++k) {
    const size_t t = t0 + k;
    const int oy = 2 * static_cast<int>(t / a.tiles_w), ox = 2 * static_cast<int>(t % a.tiles_w);
    const float* mt = m + k * c;
    if (a.max_pool_2x2) {
      // Tile (ty, tx) is pooling window (ty, tx); a last odd row or column has no window.
      if (oy / 2 >= pool_h || ox / 2 >= pool_w) continue;
      float* const out[1] = {a.image + (static_cast<size_t>(oy / 2) * pool_w + static_cast<size_t>(ox / 2)) * c};
      size_t ch = 0;
      for (; ch + N <= c; ch += N) OutputTileChannels<true, true>(d, mt, m_stride, ch, N, a.bias, lo, hi, out, nullptr);
      if (ch < c) OutputTileChannels<false, true>(d, mt, m_stride, ch, c - ch, a.bias, lo, hi, out, nullptr);
      continue;
    }
    float* out[4];
    bool ok[4];
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        ok[2 * i + j] = oy + i < a.out_h && ox + j < a.out_w;
        out[2 * i + j] = ok[2 * i + j] ? a.image + (static_cast<size_t>(oy + i) * a.out_w + (ox + j)) * c : a.image;
      }
    }
    size_t ch = 0;
    for (; ch + N <= c; ch += N) OutputTileChannels<true, false>(d, mt, m_stride, ch, N, a.bias, lo, hi, out, ok);
    if (ch < c) OutputTileChannels<false, false>(d, mt, m_stride, ch, c - ch, a.bias, lo, hi, out, ok);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(WinogradInput);
HWY_EXPORT(WinogradOutput);

const char* apply_forced_isa();  // gemm.h

void f32_winograd_input_transform(const WinogradInputArgs& a, size_t t0, size_t count, float* v,
                                  size_t v_stride) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(WinogradInput)(a, t0, count, v, v_stride);
}

void f32_winograd_output_transform(const WinogradOutputArgs& a, size_t t0, size_t count, const float* m,
                                   size_t m_stride) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(WinogradOutput)(a, t0, count, m, m_stride);
}

void f32_winograd_filter_transform(size_t in_c, size_t out_c, const float* filter, float* u) {
  for (size_t co = 0; co < out_c; ++co) {
    for (size_t ci = 0; ci < in_c; ++ci) {
      float g[3][3];
      for (int ky = 0; ky < 3; ++ky) {
        for (int kx = 0; kx < 3; ++kx) g[ky][kx] = filter[((co * 3 + ky) * 3 + kx) * in_c + ci];
      }
      // G g (4 x 3), then (G g) G^T (4 x 4).
      float r[4][3];
      for (int kx = 0; kx < 3; ++kx) {
        r[0][kx] = g[0][kx];
        r[1][kx] = 0.5f * (g[0][kx] + g[1][kx] + g[2][kx]);
        r[2][kx] = 0.5f * (g[0][kx] - g[1][kx] + g[2][kx]);
        r[3][kx] = g[2][kx];
      }
      for (int i = 0; i < 4; ++i) {
        const float q[4] = {r[i][0], 0.5f * (r[i][0] + r[i][1] + r[i][2]), 0.5f * (r[i][0] - r[i][1] + r[i][2]),
                            r[i][2]};
        for (int j = 0; j < 4; ++j) u[((4 * i + j) * in_c + ci) * out_c + co] = q[j];
      }
    }
  }
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
