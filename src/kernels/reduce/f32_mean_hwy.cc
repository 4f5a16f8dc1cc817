// f32_mean__hwy / qs8_mean__hwy: mean over one contiguous run of axes, (outer, reduced, inner) row-major,
// vectorized over `inner` (global average pooling of NHWC: outer = N, reduced = H*W,
// inner = C). Each output adds its elements in increasing input order, as f32_mean__ref does,
// so the results are bit-identical; other axis sets run the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/reduce/f32_mean_hwy.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/reduce/mean.h"

HWY_BEFORE_NAMESPACE();
namespace pcv::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void F32MeanRows(size_t outer, size_t reduced, size_t inner, const float* HWY_RESTRICT input,
                 float* HWY_RESTRICT output) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const float count = static_cast<float>(reduced);
  const auto vcount = hn::Set(d, count);
  for (size_t o = 0; o < outer; ++o) {
    const float* x = input + o * reduced * inner;
    float* y = output + o * inner;
    size_t c = 0;
    for (; c + 4 * N <= inner; c += 4 * N) {  // four vectors of sums in registers
      auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
      for (size_t r = 0; r < reduced; ++r) {
        const float* row = x + r * inner + c;
        s0 = hn::Add(s0, hn::LoadU(d, row));
        s1 = hn::Add(s1, hn::LoadU(d, row + N));
        s2 = hn::Add(s2, hn::LoadU(d, row + 2 * N));
        s3 = hn::Add(s3, hn::LoadU(d, row + 3 * N));
      }
      hn::StoreU(hn::Div(s0, vcount), d, y + c);
      hn::StoreU(hn::Div(s1, vcount), d, y + c + N);
      hn::StoreU(hn::Div(s2, vcount), d, y + c + 2 * N);
      hn::StoreU(hn::Div(s3, vcount), d, y + c + 3 * N);
    }
    for (; c + N <= inner; c += N) {
      auto s = hn::Zero(d);
      for (size_t r = 0; r < reduced; ++r) s = hn::Add(s, hn::LoadU(d, x + r * inner + c));
      hn::StoreU(hn::Div(s, vcount), d, y + c);
    }
    for (; c < inner; ++c) {
      float s = 0.0f;
      for (size_t r = 0; r < reduced; ++r) s += x[r * inner + c];
      y[c] = s / count;
    }
  }
}

// int8: per block of int32 lanes, sums of (x - input_zero_point) over the reduced rows (exact
// integer arithmetic, any order), then qs8_mean_output per channel.
void Qs8MeanRows(size_t outer, size_t reduced, size_t inner, const QuantMeanParams& q,
                 const int8_t* HWY_RESTRICT input, int8_t* HWY_RESTRICT output) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const size_t N = hn::Lanes(d32);
  const auto zp = hn::Set(d32, q.input_zero_point);
  const auto n = static_cast<int32_t>(reduced);
  HWY_ALIGN int32_t sums[hn::MaxLanes(d32)];
  for (size_t o = 0; o < outer; ++o) {
    const int8_t* x = input + o * reduced * inner;
    int8_t* y = output + o * inner;
    size_t c = 0;
    for (; c + N <= inner; c += N) {
      auto s = hn::Zero(d32);
      for (size_t r = 0; r < reduced; ++r) s = hn::Add(s, hn::Sub(hn::PromoteTo(d32, hn::LoadU(d8, x + r * inner + c)), zp));
      hn::Store(s, d32, sums);
      for (size_t i = 0; i < N; ++i) y[c + i] = qs8_mean_output(sums[i], n, q);
    }
    for (; c < inner; ++c) {
      int32_t s = 0;
      for (size_t r = 0; r < reduced; ++r) s += x[r * inner + c] - q.input_zero_point;
      y[c] = qs8_mean_output(s, n, q);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pcv::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pcv::kernels {

HWY_EXPORT(F32MeanRows);
HWY_EXPORT(Qs8MeanRows);

const char* apply_forced_isa();  // gemm.h

namespace {

// (outer, reduced, inner) of a mean whose reduced axes are one contiguous run; false otherwise.
bool contiguous_run(const MeanParams& p, size_t* outer, size_t* reduced, size_t* inner) {
  int first = -1, last = -1;
  for (int d = 0; d < p.rank; ++d) {
    if (!p.reduce_axis[d]) continue;
    if (first < 0) first = d;
    last = d;
  }
  bool contiguous = first >= 0;
  for (int d = first; contiguous && d <= last; ++d) contiguous = p.reduce_axis[d];
  if (!contiguous) return false;
  *outer = *reduced = *inner = 1;
  for (int d = 0; d < p.rank; ++d) {
    const auto n = static_cast<size_t>(p.in_dims[d]);
    if (d < first) *outer *= n;
    else if (d <= last) *reduced *= n;
    else *inner *= n;
  }
  return *reduced > 0;
}

}  // namespace

void f32_mean__hwy(const MeanParams& p, const float* input, float* output) {
  size_t outer, reduced, inner;
  if (!contiguous_run(p, &outer, &reduced, &inner)) {
    f32_mean__ref(p, input, output);
    return;
  }
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(F32MeanRows)(outer, reduced, inner, input, output);
}

void qs8_mean__hwy(const MeanParams& p, const QuantMeanParams& q, const int8_t* input, int8_t* output) {
  size_t outer, reduced, inner;
  // int32 sums: |sum| <= 255 * reduced must not overflow (mean.h's bound).
  if (!contiguous_run(p, &outer, &reduced, &inner) || reduced >= (size_t{1} << 23)) {
    qs8_mean__ref(p, q, input, output);
    return;
  }
  apply_forced_isa();
  HWY_DYNAMIC_DISPATCH(Qs8MeanRows)(outer, reduced, inner, q, input, output);
}

}  // namespace pcv::kernels
#endif  // HWY_ONCE
