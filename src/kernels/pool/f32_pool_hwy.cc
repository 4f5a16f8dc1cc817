// f32_max_pool2d__hwy / f32_average_pool2d__hwy: the contract of pool.h, vectors over the
// channels (contiguous in NHWC), one output row per task. Per channel the taps are visited in
// the reference's order (rows, then columns) and averages divide by the valid-tap count, so
// the results equal the reference's bit for bit (for inputs without NaN).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/pool/f32_pool_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <limits>

#include "base/thread_pool.h"
#include "kernels/gemm/load_partial-inl.h"
#include "kernels/pool/pool.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Output row `row` (= n * out_h + oy) of a max (kMax) or average pool.
template <bool kMax>
void F32PoolRow(const Pool2dParams& p, const float* HWY_RESTRICT input, float act_min, float act_max,
                float* HWY_RESTRICT output, size_t row) {
  using D = hn::ScalableTag<float>;
  const D d;
  const size_t N = hn::Lanes(d);
  const size_t C = static_cast<size_t>(p.channels);
  const int n = static_cast<int>(row / static_cast<size_t>(p.out_h));
  const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
  const float* image = input + static_cast<size_t>(n) * p.in_h * p.in_w * C;
  const int iy0 = oy * p.stride_h - p.pad_top;
  const int y0 = std::max(iy0, 0), y1 = std::min(iy0 + p.kernel_h, p.in_h);
  const auto vmin = hn::Set(d, act_min);
  const auto vmax = hn::Set(d, act_max);
  float* out = output + row * static_cast<size_t>(p.out_w) * C;
  for (int ox = 0; ox < p.out_w; ++ox, out += C) {
    const int ix0 = ox * p.stride_w - p.pad_left;
    const int x0 = std::max(ix0, 0), x1 = std::min(ix0 + p.kernel_w, p.in_w);
    const int count = std::max(y1 - y0, 0) * std::max(x1 - x0, 0);
    if (count == 0) {  // a caller error (see pool.h): the reference's act_min
      std::fill_n(out, C, act_min);
      continue;
    }
    const auto vcount = hn::Set(d, static_cast<float>(count));
    for (size_t c = 0; c < C; c += N) {
      const size_t lanes = std::min(N, C - c);
      auto acc = kMax ? hn::Set(d, -std::numeric_limits<float>::infinity()) : hn::Zero(d);
      for (int y = y0; y < y1; ++y) {
        const float* src = image + (static_cast<size_t>(y) * p.in_w + x0) * C + c;
        for (int x = x0; x < x1; ++x, src += C) {
          const auto v = lanes == N ? hn::LoadU(d, src) : LoadPartial(d, src, lanes);
          acc = kMax ? hn::Max(acc, v) : hn::Add(acc, v);
        }
      }
      if (!kMax) acc = hn::Div(acc, vcount);
      acc = hn::Min(hn::Max(acc, vmin), vmax);
      if (lanes == N) {
        hn::StoreU(acc, d, out + c);
      } else {
        StorePartial(acc, d, out + c, lanes);
      }
    }
  }
}

void F32MaxPoolRow(const Pool2dParams& p, const float* input, float lo, float hi, float* output, size_t row) {
  F32PoolRow<true>(p, input, lo, hi, output, row);
}
void F32AvgPoolRow(const Pool2dParams& p, const float* input, float lo, float hi, float* output, size_t row) {
  F32PoolRow<false>(p, input, lo, hi, output, row);
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(F32MaxPoolRow);
HWY_EXPORT(F32AvgPoolRow);

const char* apply_forced_isa();  // gemm.h

namespace {

struct PoolTask {
  const Pool2dParams* p;
  const float* input;
  float lo, hi;
  float* output;
  bool max;
};

void pool_row(void* ctx, size_t row) {
  const PoolTask& t = *static_cast<const PoolTask*>(ctx);
  if (t.max) {
    HWY_DYNAMIC_DISPATCH(F32MaxPoolRow)(*t.p, t.input, t.lo, t.hi, t.output, row);
  } else {
    HWY_DYNAMIC_DISPATCH(F32AvgPoolRow)(*t.p, t.input, t.lo, t.hi, t.output, row);
  }
}

void run_pool(const Pool2dParams& p, const float* input, float act_min, float act_max, float* output,
              ThreadPool* pool, bool max) {
  apply_forced_isa();
  PoolTask task{&p, input, act_min, act_max, output, max};
  const size_t rows = static_cast<size_t>(p.batch) * static_cast<size_t>(p.out_h);
  if (pool != nullptr && pool->multi_threaded() && rows > 1) {
    pool->parallelize_1d(&pool_row, &task, rows);
    return;
  }
  for (size_t r = 0; r < rows; ++r) pool_row(&task, r);
}

}  // namespace

void f32_max_pool2d__hwy(const Pool2dParams& p, const float* input, float act_min, float act_max, float* output,
                         ThreadPool* pool) {
  run_pool(p, input, act_min, act_max, output, pool, true);
}

void f32_average_pool2d__hwy(const Pool2dParams& p, const float* input, float act_min, float act_max,
                             float* output, ThreadPool* pool) {
  run_pool(p, input, act_min, act_max, output, pool, false);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
