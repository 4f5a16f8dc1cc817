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

#include "kernels/gemm/load_partial-inl.h"
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
    const VF v = hn::LoadU(d, y + i);
    const auto keep = hn::And(hn::Gt(v, vlo), hn::Lt(v, vhi));
    hn::StoreU(hn::IfThenElseZero(keep, hn::LoadU(d, dy + i)), d, dy + i);
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
    const VF v = hn::LoadU(d, x + i);
    const auto keep = hn::And(hn::Gt(v, vlo), hn::Lt(v, vhi));
    hn::StoreU(hn::Add(hn::LoadU(d, dx + i), hn::IfThenElseZero(keep, hn::LoadU(d, dy + i))), d, dx + i);
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

// Column reduction over rows [r0, r1) of at most 4 vectors of channels:
// acc_j = fn(acc_j, row, k, lanes) with the sums in registers. Lanes past c are loaded as zero
// and never stored.
template <class Fn>
HWY_INLINE void ColumnReduce(size_t r0, size_t r1, size_t c, float* HWY_RESTRICT acc, const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  for (size_t k0 = 0; k0 < c; k0 += 4 * N) {
    const size_t vecs = std::min<size_t>(4, (c - k0 + N - 1) / N);
    const size_t last = c - k0 - (vecs - 1) * N;  // lanes of the last vector (1..N)
    const size_t l0 = vecs == 1 ? last : N, l1 = vecs == 2 ? last : N, l2 = vecs == 3 ? last : N;
    VF s0 = LoadPartial(d, acc + k0, l0);
    VF s1 = vecs > 1 ? LoadPartial(d, acc + k0 + N, l1) : hn::Zero(d);
    VF s2 = vecs > 2 ? LoadPartial(d, acc + k0 + 2 * N, l2) : hn::Zero(d);
    VF s3 = vecs > 3 ? LoadPartial(d, acc + k0 + 3 * N, last) : hn::Zero(d);
    if (vecs == 4 && last == N) {
      for (size_t r = r0; r < r1; ++r) {
        s0 = fn(s0, r, k0, N);
        s1 = fn(s1, r, k0 + N, N);
        s2 = fn(s2, r, k0 + 2 * N, N);
        s3 = fn(s3, r, k0 + 3 * N, N);
      }
    } else {
      for (size_t r = r0; r < r1; ++r) {
        s0 = fn(s0, r, k0, l0);
        if (vecs > 1) s1 = fn(s1, r, k0 + N, l1);
        if (vecs > 2) s2 = fn(s2, r, k0 + 2 * N, l2);
        if (vecs > 3) s3 = fn(s3, r, k0 + 3 * N, last);
      }
    }
    StorePartial(s0, d, acc + k0, l0);
    if (vecs > 1) StorePartial(s1, d, acc + k0 + N, l1);
    if (vecs > 2) StorePartial(s2, d, acc + k0 + 2 * N, l2);
    if (vecs > 3) StorePartial(s3, d, acc + k0 + 3 * N, last);
  }
}

// Rows [0, rows) in memory order. Up to 4 vectors of channels: the sums stay in registers
// (ColumnReduce over all rows). Wider rows: each row's vectors are added into acc in memory
// (an L1-resident row of sums), which keeps the reads a single forward stream: walking a
// block of rows once per channel group instead ran ~1.7x slower on memory-bound slices.
template <class Fn>
HWY_INLINE void ColumnReduceRows(size_t rows, size_t c, float* HWY_RESTRICT acc, const Fn& fn) {
  const DF d;
  const size_t N = hn::Lanes(d);
  if (c <= 4 * N) {
    ColumnReduce(0, rows, c, acc, fn);
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

void ColumnCenteredSquares(size_t rows, size_t c, const float* HWY_RESTRICT x,
                           const float* HWY_RESTRICT mean, float* HWY_RESTRICT acc) {
  const DF d;
  ColumnReduceRows(rows, c, acc, [&](VF s, size_t r, size_t k, size_t lanes) HWY_ATTR {
    const VF dv = hn::Sub(LoadLanes(d, x + r * c + k, lanes), LoadLanes(d, mean + k, lanes));
    return hn::MulAdd(dv, dv, s);
  });
}

void BnGradSums(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                const float* HWY_RESTRICT mean, const float* HWY_RESTRICT invstd,
                float* HWY_RESTRICT sdy, float* HWY_RESTRICT sdyx) {
  const DF d;
  const size_t N = hn::Lanes(d);
  auto xhat = [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::Mul(hn::Sub(LoadLanes(d, x + r * c + k, lanes), LoadLanes(d, mean + k, lanes)),
                   LoadLanes(d, invstd + k, lanes));
  };
  if (c <= 2 * N) {  // both sums in registers: 2 + 2 vectors
    const size_t l0 = std::min(N, c), l1 = c > N ? c - N : 0;
    VF a0 = LoadPartial(d, sdy, l0), b0 = LoadPartial(d, sdyx, l0);
    VF a1 = l1 ? LoadPartial(d, sdy + N, l1) : hn::Zero(d), b1 = l1 ? LoadPartial(d, sdyx + N, l1) : hn::Zero(d);
    for (size_t r = 0; r < rows; ++r) {
      const VF g0 = LoadLanes(d, dy + r * c, l0);
      a0 = hn::Add(a0, g0);
      b0 = hn::MulAdd(g0, xhat(r, 0, l0), b0);
      if (l1) {
        const VF g1 = LoadLanes(d, dy + r * c + N, l1);
        a1 = hn::Add(a1, g1);
        b1 = hn::MulAdd(g1, xhat(r, N, l1), b1);
      }
    }
    StorePartial(a0, d, sdy, l0);
    StorePartial(b0, d, sdyx, l0);
    if (l1) {
      StorePartial(a1, d, sdy + N, l1);
      StorePartial(b1, d, sdyx + N, l1);
    }
    return;
  }
  for (size_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < c; k += N) {
      const size_t lanes = std::min(N, c - k);
      const VF g = LoadLanes(d, dy + r * c + k, lanes);
      const VF a = hn::Add(LoadLanes(d, sdy + k, lanes), g);
      const VF b = hn::MulAdd(g, xhat(r, k, lanes), LoadLanes(d, sdyx + k, lanes));
      if (lanes == N) {
        hn::StoreU(a, d, sdy + k);
        hn::StoreU(b, d, sdyx + k);
      } else {
        StorePartial(a, d, sdy + k, lanes);
        StorePartial(b, d, sdyx + k, lanes);
      }
    }
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

void RowsScaleShift(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT scale,
                    const float* HWY_RESTRICT shift, float* HWY_RESTRICT y) {
  const DF d;
  RowsMap(rows, c, y, [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::MulAdd(LoadLanes(d, x + r * c + k, lanes), LoadLanes(d, scale + k, lanes),
                      LoadLanes(d, shift + k, lanes));
  });
}

void RowsScaleAcc(size_t rows, size_t c, const float* HWY_RESTRICT dy, const float* HWY_RESTRICT scale,
                  float* HWY_RESTRICT dx) {
  const DF d;
  RowsMap(rows, c, dx, [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    return hn::MulAdd(LoadLanes(d, dy + r * c + k, lanes), LoadLanes(d, scale + k, lanes),
                      LoadLanes(d, dx + r * c + k, lanes));
  });
}

template <bool kAccumulate>
void BnGradInputT(size_t rows, size_t c, const float* HWY_RESTRICT x, const float* HWY_RESTRICT dy,
                  const float* HWY_RESTRICT mean, const float* HWY_RESTRICT invstd,
                  const float* HWY_RESTRICT coef, const float* HWY_RESTRICT mdy,
                  const float* HWY_RESTRICT mdyx, float* HWY_RESTRICT dx) {
  const DF d;
  RowsMap(rows, c, dx, [&](size_t r, size_t k, size_t lanes) HWY_ATTR {
    const VF xhat = hn::Mul(hn::Sub(LoadLanes(d, x + r * c + k, lanes), LoadLanes(d, mean + k, lanes)),
                            LoadLanes(d, invstd + k, lanes));
    // dy - mdy - xhat * mdyx
    const VF g = hn::NegMulAdd(xhat, LoadLanes(d, mdyx + k, lanes),
                               hn::Sub(LoadLanes(d, dy + r * c + k, lanes), LoadLanes(d, mdy + k, lanes)));
    if (!kAccumulate) return hn::Mul(LoadLanes(d, coef + k, lanes), g);
    return hn::MulAdd(LoadLanes(d, coef + k, lanes), g, LoadLanes(d, dx + r * c + k, lanes));
  });
}

void BnGradInput(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                 const float* invstd, const float* coef, const float* mdy, const float* mdyx, float* dx,
                 bool accumulate) {
  if (accumulate) {
    BnGradInputT<true>(rows, c, x, dy, mean, invstd, coef, mdy, mdyx, dx);
  } else {
    BnGradInputT<false>(rows, c, x, dy, mean, invstd, coef, mdy, mdyx, dx);
  }
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

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(ClampGradMask);
HWY_EXPORT(WindowGradAcc);
HWY_EXPORT(AddInplace);
HWY_EXPORT(ColumnSums);
HWY_EXPORT(ColumnCenteredSquares);
HWY_EXPORT(RowsScaleShift);
HWY_EXPORT(RowsScaleAcc);
HWY_EXPORT(BnGradSums);
HWY_EXPORT(BnGradInput);
HWY_EXPORT(MaxPoolArgmaxRow);

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
void f32_column_centered_squares(size_t rows, size_t c, const float* x, const float* mean, float* acc) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(ColumnCenteredSquares)(rows, c, x, mean, acc);
}
void f32_rows_scale_shift(size_t rows, size_t c, const float* x, const float* scale,
                          const float* shift, float* y) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(RowsScaleShift)(rows, c, x, scale, shift, y);
}
void f32_rows_scale_acc(size_t rows, size_t c, const float* dy, const float* scale, float* dx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(RowsScaleAcc)(rows, c, dy, scale, dx);
}
void f32_bn_grad_sums(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                      const float* invstd, float* sdy, float* sdyx) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(BnGradSums)(rows, c, x, dy, mean, invstd, sdy, sdyx);
}
void f32_bn_grad_input(size_t rows, size_t c, const float* x, const float* dy, const float* mean,
                       const float* invstd, const float* coef, const float* mdy, const float* mdyx,
                       float* dx, bool accumulate) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(BnGradInput)(rows, c, x, dy, mean, invstd, coef, mdy, mdyx, dx, accumulate);
}

void f32_max_pool_argmax_row(const Pool2dParams& p, const float* x, int oy, float* y, int32_t* argmax) {
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(MaxPoolArgmaxRow)(p, x, oy, y, argmax);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
