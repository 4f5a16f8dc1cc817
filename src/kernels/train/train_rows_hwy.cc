// Row kernels of the training layers (contract in train_rows.h), one Highway source compiled
// per target. Every pass reads its rows once, front to back (these passes are memory-bound);
// narrow rows keep the per-channel sums in registers, wide rows in an L1-resident row of sums.
// Channel tails use partial loads and stores (load_partial-inl.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/train/train_rows_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <limits>

#include "kernels/common/stream_fence.h"
#include "kernels/gemm/load_partial-inl.h"
#include "kernels/train/bn_terms-inl.h"
#include "kernels/train/train_rows.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 8 lanes: these passes stream memory, and on the AVX-512 machine this was measured on
// (Zen 5) 256-bit loads and stores moved rows 1.3-1.8x faster than 512-bit ones
// (bench/train_bench, PCV_FORCE_ISA=AVX2 against AVX3).
using DF = hn::CappedTag<float, 8>;
using VF = hn::Vec<DF>;


void ClampGradMask(size_t n, const float* HWY_RESTRICT y, float lo, float hi, float* HWY_RESTRICT dy) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(PassInside(d, hn::LoadU(d, y + i), vlo, vhi, hn::LoadU(d, dy + i)), d, dy + i);
  }
  for (; i < n; ++i) dy[i] = (y[i] > lo && y[i] < hi) ? dy[i] : 0.f;
}

void WindowGradAcc(size_t n, const float* HWY_RESTRICT x, float lo, float hi,
                   const float* HWY_RESTRICT dy, float* HWY_RESTRICT dx) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VF pass = PassInside(d, hn::LoadU(d, x + i), vlo, vhi, hn::LoadU(d, dy + i));
    hn::StoreU(hn::Add(hn::LoadU(d, dx + i), pass), d, dx + i);
  }
  for (; i < n; ++i) dx[i] += (x[i] > lo && x[i] < hi) ? dy[i] : 0.f;
}

void AddInplace(size_t n, const float* HWY_RESTRICT src, float* HWY_RESTRICT dst) {
  const DF d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, dst + i), hn::LoadU(d, src + i)), d, dst + i);
  for (; i < n; ++i) dst[i] += src[i];
}

// Column sums acc_j = fn(acc_j, row, k, lanes) over rows [0, rows) in memory order. Up to 4
// vectors of channels: the sums stay in registers (lanes past c are loaded as zero and never
// stored). Wider rows: each row's vectors are added into acc in memory (an L1-resident row of
// sums), which keeps the reads a single forward stream: walking a block of rows once per
// channel group instead ran ~1.7x slower on memory-bound slices.
template <class Fn>
HWY_INLINE void ColumnReduceRows(size_t rows, size_t c, float* HWY_RESTRICT acc, const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (c <= 4 * N) {
    const size_t vecs = (c + N - 1) / N;
    const size_t last = c - (vecs - 1) * N;  // lanes of the last vector (1..N)
    const size_t l0 = vecs == 1 ? last : N, l1 = vecs == 2 ? last : N, l2 = vecs == 3 ? last : N;
    VF s0 = LoadPartial(d, acc, l0);
    VF s1 = vecs > 1 ? LoadPartial(d, acc + N, l1) : hn::Zero(d);
    VF s2 = vecs > 2 ? LoadPartial(d, acc + 2 * N, l2) : hn::Zero(d);
    VF s3 = vecs > 3 ? LoadPartial(d, acc + 3 * N, last) : hn::Zero(d);
    if (vecs == 4 && last == N) {
      for (size_t r = 0; r < rows; ++r) {
        s0 = fn(s0, r, 0, N);
        s1 = fn(s1, r, N, N);
        s2 = fn(s2, r, 2 * N, N);
        s3 = fn(s3, r, 3 * N, N);
      }
    } else {
      for (size_t r = 0; r < rows; ++r) {
        s0 = fn(s0, r, 0, l0);
        if (vecs > 1) s1 = fn(s1, r, N, l1);
        if (vecs > 2) s2 = fn(s2, r, 2 * N, l2);
        if (vecs > 3) s3 = fn(s3, r, 3 * N, last);
      }
    }
    StorePartial(s0, d, acc, l0);
    if (vecs > 1) StorePartial(s1, d, acc + N, l1);
    if (vecs > 2) StorePartial(s2, d, acc + 2 * N, l2);
    if (vecs > 3) StorePartial(s3, d, acc + 3 * N, last);
    return;
  }
  for (size_t r = 0; r < rows; ++r) {
    size_t k = 0;
    for (; k + N <= c; k += N) hn::StoreU(fn(hn::LoadU(d, acc + k), r, k, N), d, acc + k);
    if (k < c) StorePartial(fn(LoadPartial(d, acc + k, c - k), r, k, c - k), d, acc + k, c - k);
  }
}

// Loads `lanes` floats at p (the full vector when lanes == Lanes).
HWY_INLINE VF LoadLanes(const DF d, const float* HWY_RESTRICT p, size_t lanes) {
  return lanes == hn::Lanes(d) ? hn::LoadU(d, p) : LoadPartial(d, p, lanes);
}

void ColumnSums(size_t rows, size_t c, const float* HWY_RESTRICT x, float* HWY_RESTRICT acc) {
  const DF d;
  ColumnReduceRows(rows, c, acc, [&](VF s, size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::Add(s, LoadLanes(d, x + r * c + k, lanes));
  });
}

// Two per-channel sums at once: fn(r, k, lanes, &a, &b) adds row r's terms to a and b.
// Up to 2 vectors of channels: all four sums in registers; wider: in L1-resident rows.
template <class Fn>
HWY_INLINE void ColumnReduce2(size_t rows, size_t c, float* HWY_RESTRICT acc_a, float* HWY_RESTRICT acc_b,
                              const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (c <= 2 * N) {
    const size_t l0 = std::min(N, c), l1 = c > N ? c - N : 0;
    VF a0 = LoadPartial(d, acc_a, l0), b0 = LoadPartial(d, acc_b, l0);
    VF a1 = l1 ? LoadPartial(d, acc_a + N, l1) : hn::Zero(d), b1 = l1 ? LoadPartial(d, acc_b + N, l1) : hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) {
      fn(r, 0, l0, a0, b0);
      if (l1) fn(r, N, l1, a1, b1);
    }
    StorePartial(a0, d, acc_a, l0);
    StorePartial(b0, d, acc_b, l0);
    if (l1) {
      StorePartial(a1, d, acc_a + N, l1);
      StorePartial(b1, d, acc_b + N, l1);
    }
    return;
  }
  for (size_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < c; k += N) {
      const size_t lanes = std::min(N, c - k);
      VF a = LoadLanes(d, acc_a + k, lanes), b = LoadLanes(d, acc_b + k, lanes);
      fn(r, k, lanes, a, b);
      if (lanes == N) {
        hn::StoreU(a, d, acc_a + k);
        hn::StoreU(b, d, acc_b + k);
      } else {
        StorePartial(a, d, acc_a + k, lanes);
        StorePartial(b, d, acc_b + k, lanes);
      }
    }
  }
}

// ColumnReduce2 over rows in cache (a row a conv just wrote): past 2 vectors of channels, 2
// vectors at a time over all the rows with their sums in registers, instead of loading and
// storing the sums for every row (which a pass over rows from memory hides, and one over rows
// in L1 does not). Each sum still adds its rows in order: the same floats.
template <class Fn>
HWY_INLINE void ColumnReduce2Cached(size_t rows, size_t c, float* HWY_RESTRICT acc_a, float* HWY_RESTRICT acc_b,
                                    const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (c <= 2 * N) return ColumnReduce2(rows, c, acc_a, acc_b, fn);
  size_t k = 0;
  for (; k + 2 * N <= c; k += 2 * N) {
    VF a0 = hn::LoadU(d, acc_a + k), b0 = hn::LoadU(d, acc_b + k);
    VF a1 = hn::LoadU(d, acc_a + k + N), b1 = hn::LoadU(d, acc_b + k + N);
    for (size_t r = 0; r < rows; ++r) {
      fn(r, k, N, a0, b0);
      fn(r, k + N, N, a1, b1);
    }
    hn::StoreU(a0, d, acc_a + k);
    hn::StoreU(b0, d, acc_b + k);
    hn::StoreU(a1, d, acc_a + k + N);
    hn::StoreU(b1, d, acc_b + k + N);
  }
  for (; k < c; k += N) {
    const size_t lanes = std::min(N, c - k);
    VF a = LoadLanes(d, acc_a + k, lanes), b = LoadLanes(d, acc_b + k, lanes);
    for (size_t r = 0; r < rows; ++r) fn(r, k, lanes, a, b);
    StorePartial(a, d, acc_a + k, lanes);
    StorePartial(b, d, acc_b + k, lanes);
  }
}

void ColumnShiftedMoments(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT pivot,
                          float* HWY_RESTRICT s1, float* HWY_RESTRICT s2, bool cached) {
  const DF d;
  auto add = [&](size_t r, size_t k, size_t lanes, VF& a, VF& b) HWY_ATTR {
    const VF t = hn::Sub(LoadLanes(d, x + r * c + k, lanes), LoadLanes(d, pivot + k, lanes));
    a = hn::Add(a, t);
    b = hn::MulAdd(t, t, b);
  };
  if (cached) return ColumnReduce2Cached(rows, c, s1, s2, add);
  ColumnReduce2(rows, c, s1, s2, add);
}

// The batch-norm output before its clamp, x * scale + shift: the same operations as
// RowsScaleShift, so the same floats.
HWY_INLINE VF PreClamp(const DF d, const float* HWY_RESTRICT x, const float* HWY_RESTRICT scale,
                       const float* HWY_RESTRICT shift, size_t k, size_t lanes) {
  return BnPreClamp(LoadLanes(d, x, lanes), LoadLanes(d, scale + k, lanes), LoadLanes(d, shift + k, lanes));
}

// The batch-norm backward's per-element inputs: g = dy (where the fused clamp passed, with
// kMask) and xhat = (x - mean) * invstd, for channels [k, k + lanes) of one row.
template <bool kMask>
HWY_INLINE void GradAndXhat(const DF d, const float* HWY_RESTRICT xr, const float* HWY_RESTRICT dyr,
                            const float* HWY_RESTRICT mean, const float* HWY_RESTRICT invstd,
                            const BnFusedClamp& clamp, VF lo, VF hi, size_t k, size_t lanes, VF& g, VF& xhat) {
  g = LoadLanes(d, dyr, lanes);
  if (kMask) g = PassInside(d, PreClamp(d, xr, clamp.scale, clamp.shift, k, lanes), lo, hi, g);
  xhat = BnXhat(LoadLanes(d, xr, lanes), LoadLanes(d, mean + k, lanes), LoadLanes(d, invstd + k, lanes));
}

template <bool kMask>
void BnGradSumsT(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                 const float* HWY_RESTRICT mean, const float* HWY_RESTRICT invstd, const BnFusedClamp& clamp,
                 float* HWY_RESTRICT sdy, float* HWY_RESTRICT sdyx) {
  const DF d;
  const VF lo = hn::Set(d, clamp.lo), hi = hn::Set(d, clamp.hi);
  ColumnReduce2(rows, c, sdy, sdyx, [&](size_t r, size_t k, size_t lanes, VF& a, VF& b) HWY_ATTR {
    VF g, xhat;
    GradAndXhat<kMask>(d, x + r * c + k, dy + r * c + k, mean, invstd, clamp, lo, hi, k, lanes, g, xhat);
    BnSumsAdd(g, xhat, a, b);
  });
}

void BnGradSums(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                const float* invstd, const BnFusedClamp& clamp, float* sdy, float* sdyx) {
  if (clamp.scale != nullptr) {
    BnGradSumsT<true>(rows, c, x, dy, mean, invstd, clamp, sdy, sdyx);
  } else {
    BnGradSumsT<false>(rows, c, x, dy, mean, invstd, clamp, sdy, sdyx);
  }
}

// Per row: for each channel vector, out = fn(row, k, lanes), stored (partial at the tail).
template <class Fn>
HWY_INLINE void RowsMap(size_t rows, size_t c, float* HWY_RESTRICT out, const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  for (size_t r = 0; r < rows; ++r) {
    float* o = out + r * c;
    size_t k = 0;
    for (; k + N <= c; k += N) hn::StoreU(fn(r, k, N), d, o + k);
    if (k < c) StorePartial(fn(r, k, c - k), d, o + k, c - k);
  }
}

// RowsMap with non-temporal stores (the same values) where every vector of the output is
// aligned (c a multiple of the lanes, out aligned): an output far larger than the caches is
// written without first being read for ownership. Otherwise RowsMap.
template <class Fn>
HWY_INLINE void RowsMapStream(size_t rows, size_t c, float* HWY_RESTRICT out, const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (c % N != 0 || reinterpret_cast<uintptr_t>(out) % (N * sizeof(float)) != 0) {
    return RowsMap(rows, c, out, fn);
  }
  for (size_t r = 0; r < rows; ++r) {
    float* o = out + r * c;
    for (size_t k = 0; k < c; k += N) hn::Stream(fn(r, k, N), d, o + k);
  }
  stream_fence();
}

void RowsScaleShift(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT scale,
                    const float* HWY_RESTRICT shift, float lo, float hi, float* HWY_RESTRICT y, bool stream) {
  const DF d;
  const VF vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  auto fn = [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::Min(hn::Max(PreClamp(d, x + r * c + k, scale, shift, k, lanes), vlo), vhi);
  };
  if (stream) {
    RowsMapStream(rows, c, y, fn);
  } else {
    RowsMap(rows, c, y, fn);
  }
}

void RowsScaleAcc(size_t rows, size_t c, const float* HWY_RESTRICT dy, const float* HWY_RESTRICT scale,
                  float* HWY_RESTRICT dx) {
  const DF d;
  RowsMap(rows, c, dx, [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::MulAdd(LoadLanes(d, dy + r * c + k, lanes), LoadLanes(d, scale + k, lanes),
                      LoadLanes(d, dx + r * c + k, lanes));
  });
}

template <bool kAccumulate, bool kMask>
void BnGradInputT(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                  const float* HWY_RESTRICT mean, const float* HWY_RESTRICT invstd, const BnFusedClamp& clamp,
                  const float* HWY_RESTRICT coef, const float* HWY_RESTRICT mdy,
                  const float* HWY_RESTRICT mdyx, float* HWY_RESTRICT dx, bool stream) {
  const DF d;
  const VF lo = hn::Set(d, clamp.lo), hi = hn::Set(d, clamp.hi);
  auto fn = [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    VF dyv, xhat;
    GradAndXhat<kMask>(d, x + r * c + k, dy + r * c + k, mean, invstd, clamp, lo, hi, k, lanes, dyv, xhat);
    // dy - mdy - xhat * mdyx
    const VF g = hn::NegMulAdd(xhat, LoadLanes(d, mdyx + k, lanes), hn::Sub(dyv, LoadLanes(d, mdy + k, lanes)));
    if (!kAccumulate) return hn::Mul(LoadLanes(d, coef + k, lanes), g);
    return hn::MulAdd(LoadLanes(d, coef + k, lanes), g, LoadLanes(d, dx + r * c + k, lanes));
  };
  if (kAccumulate || !stream) {
    RowsMap(rows, c, dx, fn);
  } else {
    RowsMapStream(rows, c, dx, fn);
  }
}

void BnGradInput(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                 const float* invstd, const BnFusedClamp& clamp, const float* coef, const float* mdy,
                 const float* mdyx, float* dx, bool accumulate, bool stream) {
  const bool mask = clamp.scale != nullptr;
  if (accumulate) {
    if (mask) return BnGradInputT<true, true>(rows, c, x, dy, mean, invstd, clamp, coef, mdy, mdyx, dx, stream);
    return BnGradInputT<true, false>(rows, c, x, dy, mean, invstd, clamp, coef, mdy, mdyx, dx, stream);
  }
  if (mask) return BnGradInputT<false, true>(rows, c, x, dy, mean, invstd, clamp, coef, mdy, mdyx, dx, stream);
  BnGradInputT<false, false>(rows, c, x, dy, mean, invstd, clamp, coef, mdy, mdyx, dx, stream);
}

void ClampInplace(size_t n, float lo, float hi, float* HWY_RESTRICT y) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Min(hn::Max(hn::LoadU(d, y + i), vlo), vhi), d, y + i);
  for (; i < n; ++i) y[i] = std::min(std::max(y[i], lo), hi);
}

void MaxPoolArgmaxRow(const Pool2dParams& p, const float* HWY_RESTRICT x, int oy,
                      float* HWY_RESTRICT y, int32_t* HWY_RESTRICT argmax) {
  const DF d;
  const hn::Rebind<int32_t, DF> di;
  const size_t N = hn::Lanes(d);
  const size_t c = static_cast<size_t>(p.channels);
  const int y0 = std::max(oy * p.stride_h - p.pad_top, 0);
  const int y1 = std::min(oy * p.stride_h - p.pad_top + p.kernel_h, p.in_h);
  const auto iota = hn::Iota(di, 0);
  for (int ox = 0; ox < p.out_w; ++ox) {
    const int x0 = std::max(ox * p.stride_w - p.pad_left, 0);
    const int x1 = std::min(ox * p.stride_w - p.pad_left + p.kernel_w, p.in_w);
    float* yo = y + static_cast<size_t>(ox) * c;
    int32_t* ao = argmax + static_cast<size_t>(ox) * c;
    if (y0 >= y1 || x0 >= x1) {  // all padding
      std::fill(yo, yo + c, 0.f);
      std::fill(ao, ao + c, -1);
      continue;
    }
    for (size_t k = 0; k < c; k += N) {
      const size_t lanes = std::min(N, c - k);
      auto best = hn::Set(d, -std::numeric_limits<float>::infinity());
      auto idx = hn::Set(di, -1);
      for (int iy = y0; iy < y1; ++iy) {
        for (int ix = x0; ix < x1; ++ix) {
          const int32_t off = static_cast<int32_t>((static_cast<size_t>(iy) * p.in_w + ix) * c + k);
          const auto v = LoadLanes(d, x + off, lanes);
          const auto gt = hn::Gt(v, best);
          best = hn::IfThenElse(gt, v, best);
          idx = hn::IfThenElse(hn::RebindMask(di, gt), hn::Add(iota, hn::Set(di, off)), idx);
        }
      }
      // No input above -inf (or only NaN): no gradient path, output 0 (as all-padding).
      best = hn::IfThenZeroElse(hn::RebindMask(d, hn::Lt(idx, hn::Zero(di))), best);
      if (lanes == N) {
        hn::StoreU(best, d, yo + k);
        hn::StoreU(idx, di, ao + k);
      } else {
        StorePartial(best, d, yo + k, lanes);
        HWY_ALIGN int32_t buf[hn::MaxLanes(di)];
        hn::Store(idx, di, buf);
        std::copy(buf, buf + lanes, ao + k);
      }
    }
  }
}

void MaxPoolBackwardRow(const Pool2dParams& p, const int32_t* HWY_RESTRICT argmax, const float* HWY_RESTRICT dy,
                        const float* HWY_RESTRICT mask_y, float lo, float hi, int oy, float* HWY_RESTRICT dx) {
  const DF d;
  const hn::Rebind<int32_t, DF> di;
  const size_t N = hn::Lanes(d);
  const size_t c = static_cast<size_t>(p.channels);
  const VF vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  const auto iota = hn::Iota(di, 0);
  for (int ox = 0; ox < p.out_w; ++ox) {
    const int32_t* ao = argmax + static_cast<size_t>(ox) * c;
    const float* go = dy + static_cast<size_t>(ox) * c;
    const float* yo = mask_y != nullptr ? mask_y + static_cast<size_t>(ox) * c : nullptr;
    size_t k = 0;
    for (; k + N <= c; k += N) {
      const auto a = hn::LoadU(di, ao + k);
      VF g = hn::LoadU(d, go + k);
      if (yo != nullptr) g = PassInside(d, hn::LoadU(d, yo + k), vlo, vhi, g);
      for (int ky = 0; ky < p.kernel_h; ++ky) {
        const int iy = oy * p.kernel_h + ky;
        for (int kx = 0; kx < p.kernel_w; ++kx) {
          const int32_t off = static_cast<int32_t>((static_cast<size_t>(iy) * p.in_w + ox * p.kernel_w + kx) * c + k);
          const auto hit = hn::VecFromMask(d, hn::RebindMask(d, hn::Eq(a, hn::Add(iota, hn::Set(di, off)))));
          hn::StoreU(hn::And(hit, g), d, dx + off);
        }
      }
    }
    for (; k < c; ++k) {
      float g = go[k];
      if (yo != nullptr && !(yo[k] > lo && yo[k] < hi)) g = 0.f;
      for (int ky = 0; ky < p.kernel_h; ++ky) {
        const int iy = oy * p.kernel_h + ky;
        for (int kx = 0; kx < p.kernel_w; ++kx) {
          const int32_t off = static_cast<int32_t>((static_cast<size_t>(iy) * p.in_w + ox * p.kernel_w + kx) * c + k);
          dx[off] = ao[k] == off ? g : 0.f;
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(ClampGradMask);
HWY_EXPORT(WindowGradAcc);
HWY_EXPORT(AddInplace);
HWY_EXPORT(ColumnSums);
HWY_EXPORT(ColumnShiftedMoments);
HWY_EXPORT(ClampInplace);
HWY_EXPORT(RowsScaleShift);
HWY_EXPORT(RowsScaleAcc);
HWY_EXPORT(BnGradSums);
HWY_EXPORT(BnGradInput);
HWY_EXPORT(MaxPoolArgmaxRow);
HWY_EXPORT(MaxPoolBackwardRow);

const char* apply_forced_isa();  // gemm.h

void f32_clamp_grad_mask(size_t n, const float* y, float lo, float hi, float* dy) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(ClampGradMask)(n, y, lo, hi, dy);
}
void f32_window_grad_acc(size_t n, const float* x, float lo, float hi, const float* dy, float* dx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(WindowGradAcc)(n, x, lo, hi, dy, dx);
}
void f32_add_inplace(size_t n, const float* src, float* dst) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(AddInplace)(n, src, dst);
}
void f32_column_sums(size_t rows, size_t c, const float* x, float* acc) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(ColumnSums)(rows, c, x, acc);
}
void f32_column_shifted_moments(size_t rows, size_t c, const float* x, const float* pivot, float* s1,
                                float* s2, bool cached) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(ColumnShiftedMoments)(rows, c, x, pivot, s1, s2, cached);
}
void f32_rows_scale_shift(size_t rows, size_t c, const float* x, const float* scale, const float* shift,
                          float lo, float hi, float* y, bool stream) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(RowsScaleShift)(rows, c, x, scale, shift, lo, hi, y, stream);
}
void f32_clamp_inplace(size_t n, float lo, float hi, float* y) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(ClampInplace)(n, lo, hi, y);
}
void f32_rows_scale_acc(size_t rows, size_t c, const float* dy, const float* scale, float* dx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(RowsScaleAcc)(rows, c, dy, scale, dx);
}
void f32_bn_grad_sums(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                      const float* invstd, const BnFusedClamp& clamp, float* sdy, float* sdyx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(BnGradSums)(rows, c, x, dy, mean, invstd, clamp, sdy, sdyx);
}
void f32_bn_grad_input(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                       const float* invstd, const BnFusedClamp& clamp, const float* coef, const float* mdy,
                       const float* mdyx, float* dx, bool accumulate, bool stream) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(BnGradInput)(rows, c, x, dy, mean, invstd, clamp, coef, mdy, mdyx, dx, accumulate, stream);
}
void f32_max_pool_argmax_row(const Pool2dParams& p, const float* x, int oy, float* y, int32_t* argmax) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(MaxPoolArgmaxRow)(p, x, oy, y, argmax);
}
void f32_max_pool_backward_row(const Pool2dParams& p, const int32_t* argmax, const float* dy, const float* mask_y,
                               float lo, float hi, int oy, float* dx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(MaxPoolBackwardRow)(p, argmax, dy, mask_y, lo, hi, oy, dx);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
