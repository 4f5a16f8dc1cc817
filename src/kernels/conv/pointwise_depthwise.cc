// Pointwise + depthwise conv band by band (see pointwise_depthwise.h).
#include "kernels/conv/pointwise_depthwise.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"

namespace pcv::kernels {

namespace {

// Rows of the depthwise input that output rows [oy0, oy1) reach, clipped to the image.
struct RowSpan {
  int lo, hi;
};
RowSpan input_rows(const Conv2dParams& p, int oy0, int oy1) {
  const int lo = std::max(0, oy0 * p.stride_h - p.pad_top);
  const int hi = std::min(p.in_h, (oy1 - 1) * p.stride_h - p.pad_top + (p.kernel_h - 1) * p.dilation_h + 1);
  return {lo, std::max(lo, hi)};
}

struct Task {
  const F32PointwiseDepthwise* fused;
  const float* input;
  float* output;
  float* scratch;
  float pw_min, pw_max, dw_min, dw_max;
  size_t slots;
};

void run_slot(void* ctx, size_t slot) {
  const Task& t = *static_cast<const Task*>(ctx);
  const F32PointwiseDepthwise& f = *t.fused;
  const Conv2dParams& pw = f.pointwise.params;
  const Conv2dParams& dw = f.depthwise.params;
  const size_t in_pixel = static_cast<size_t>(pw.in_c);
  const size_t row_floats = static_cast<size_t>(dw.in_w) * static_cast<size_t>(dw.in_c);
  float* buf = t.scratch + slot * static_cast<size_t>(f.buffer_rows()) * row_floats;
  const size_t rows = static_cast<size_t>(dw.batch) * static_cast<size_t>(dw.out_h);
  const auto [begin, end] = slot_range(rows, slot, t.slots);
  int image = -1, have_lo = 0, have_hi = 0;  // buf holds rows [have_lo, have_hi) of `image`
  for (size_t row = begin; row < end;) {
    const int n = static_cast<int>(row / static_cast<size_t>(dw.out_h));
    const int oy0 = static_cast<int>(row % static_cast<size_t>(dw.out_h));
    const int oy1 = static_cast<int>(std::min({static_cast<size_t>(oy0 + f.band_rows),
                                              static_cast<size_t>(dw.out_h), end - row + static_cast<size_t>(oy0)}));
    const RowSpan need = input_rows(dw, oy0, oy1);
    if (n != image || need.lo >= have_hi) {
      image = n;
      have_lo = have_hi = need.lo;
    } else if (need.lo > have_lo) {
      // Rows this band shares with the last one move to the buffer's start.
      std::memmove(buf, buf + static_cast<size_t>(need.lo - have_lo) * row_floats,
                   static_cast<size_t>(have_hi - need.lo) * row_floats * sizeof(float));
      have_lo = need.lo;
    }
    if (need.hi > have_hi) {
      const size_t m = static_cast<size_t>(need.hi - have_hi) * static_cast<size_t>(pw.in_w);
      const float* a = t.input + (static_cast<size_t>(n) * pw.in_h + static_cast<size_t>(have_hi)) * pw.in_w * in_pixel;
      f32_gemm_packed(m, a, in_pixel, f.pointwise.group_gemm[0], buf + static_cast<size_t>(have_hi - have_lo) * row_floats,
                      static_cast<size_t>(pw.out_c), t.pw_min, t.pw_max, nullptr);
      have_hi = need.hi;
    }
    for (int oy = oy0; oy < oy1; ++oy) {
      float* out = t.output + (static_cast<size_t>(n) * dw.out_h + static_cast<size_t>(oy)) * dw.out_w * dw.out_c;
      f.depthwise.dw_row(depthwise_row_args(f.depthwise, buf, have_lo, out, oy, t.dw_min, t.dw_max));
    }
    row += static_cast<size_t>(oy1 - oy0);
  }
}

}  // namespace

int F32PointwiseDepthwise::buffer_rows() const {
  const Conv2dParams& p = depthwise.params;
  return std::min(p.in_h, (band_rows - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1);
}

size_t F32PointwiseDepthwise::scratch_bytes(int threads) const {
  const Conv2dParams& p = depthwise.params;
  return static_cast<size_t>(std::max(threads, 1)) * static_cast<size_t>(buffer_rows()) *
         static_cast<size_t>(p.in_w) * static_cast<size_t>(p.in_c) * sizeof(float);
}

Expected<F32PointwiseDepthwise> fuse_f32_pointwise_depthwise(F32Conv2dPacked pointwise, F32Conv2dPacked depthwise,
                                                             int band_rows) {
  const Conv2dParams& a = pointwise.params;
  const Conv2dParams& b = depthwise.params;
  if (pointwise.path != F32Conv2dPacked::Path::kGemm1x1) {
    return invalid_argument("pointwise + depthwise: the first conv is not a 1x1 stride-1 unpadded conv");
  }
  if (depthwise.path != F32Conv2dPacked::Path::kDepthwise) {
    return invalid_argument("pointwise + depthwise: the second conv is not a depthwise conv");
  }
  if (a.batch != b.batch || a.in_h != b.in_h || a.in_w != b.in_w || a.out_c != b.in_c) {
    return invalid_argument(fmt::format(
        "pointwise + depthwise: the depthwise input {}x{}x{}x{} is not the pointwise output {}x{}x{}x{}", b.batch,
        b.in_h, b.in_w, b.in_c, a.batch, a.in_h, a.in_w, a.out_c));
  }
  if (band_rows < 0) return invalid_argument(fmt::format("pointwise + depthwise: band_rows={} < 0", band_rows));
  F32PointwiseDepthwise f;
  f.pointwise = std::move(pointwise);
  f.depthwise = std::move(depthwise);
  if (band_rows == 0) {
    const size_t row_bytes = static_cast<size_t>(b.in_w) * static_cast<size_t>(b.in_c) * sizeof(float);
    const int fit = static_cast<int>(kPointwiseDepthwiseBufferBytes / row_bytes);  // buffer rows
    const int reach = (b.kernel_h - 1) * b.dilation_h + 1;
    band_rows = fit > reach ? (fit - reach) / b.stride_h + 1 : 1;
  }
  f.band_rows = std::min(band_rows, b.out_h);
  return f;
}

void f32_pointwise_depthwise(const F32PointwiseDepthwise& fused, const float* input, float pw_min, float pw_max,
                             float dw_min, float dw_max, float* output, float* scratch, ThreadPool* pool) {
  const Conv2dParams& dw = fused.depthwise.params;
  const size_t rows = static_cast<size_t>(dw.batch) * static_cast<size_t>(dw.out_h);
  Task task{&fused, input, output, scratch, pw_min, pw_max, dw_min, dw_max, conv_slots(pool, rows)};
  run_conv_slots(pool, task.slots, &run_slot, &task);
}

}  // namespace pcv::kernels
