// Pointwise + depthwise, and batch-norm output + depthwise, band by band (see pointwise_depthwise.h).
#include "kernels/conv/pointwise_depthwise.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/common/stream_fence.h"

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

// Rows of the depthwise input one band of band_rows output rows reaches at most.
int band_buffer_rows(const Conv2dParams& p, int band_rows) {
  return std::min(p.in_h, (band_rows - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1);
}

// Band size from a buffer budget: the buffer stays near `bytes`.
int band_rows_for(const Conv2dParams& b, size_t bytes) {
  const size_t row_bytes = static_cast<size_t>(b.in_w) * static_cast<size_t>(b.in_c) * sizeof(float);
  const int fit = static_cast<int>(bytes / row_bytes);  // buffer rows
  const int reach = (b.kernel_h - 1) * b.dilation_h + 1;
  return std::min(fit > reach ? (fit - reach) / b.stride_h + 1 : 1, b.out_h);
}

// The depthwise output rows [begin, end) of the batch (image-major), band by band: for each
// band, produce(n, lo, hi, dst) writes rows [lo, hi) of image n's depthwise input to dst (the
// buffer `buf`, band_buffer_rows() rows), then the band's output rows are computed from it.
// Rows a band shares with the one before are moved to the buffer's start, not produced again.
// source (may be nullptr): what produce() reads, (batch * H) rows of the depthwise input's
// size; while a band computes, the rows after it (the next band's) are prefetched, a share per
// output row. row_done(n, out) after each output row (out: its out_w x out_c floats, in cache).
struct NoRowHook {
  void operator()(int, const float*) const {}
};
template <class Produce, class RowDone = NoRowHook>
void depthwise_bands(const F32Conv2dPacked& depthwise, int band_rows, float* buf, size_t begin, size_t end,
                     float* output, float dw_min, float dw_max, const float* source, const Produce& produce,
                     const RowDone& row_done = RowDone()) {
  const Conv2dParams& dw = depthwise.params;
  const size_t row_floats = static_cast<size_t>(dw.in_w) * static_cast<size_t>(dw.in_c);
  int image = -1, have_lo = 0, have_hi = 0;  // buf holds rows [have_lo, have_hi) of `image`
  for (size_t row = begin; row < end;) {
    const int n = static_cast<int>(row / static_cast<size_t>(dw.out_h));
    const int oy0 = static_cast<int>(row % static_cast<size_t>(dw.out_h));
    const int oy1 = static_cast<int>(std::min({static_cast<size_t>(oy0 + band_rows),
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
      produce(n, have_hi, need.hi, buf + static_cast<size_t>(have_hi - have_lo) * row_floats);
      have_hi = need.hi;
    }
    // The next band's new rows follow these in the source, also across images.
    const size_t row_bytes = row_floats * sizeof(float);
    const uintptr_t next = reinterpret_cast<uintptr_t>(source) +
                           (static_cast<size_t>(n) * dw.in_h + static_cast<size_t>(need.hi)) * row_bytes;
    const size_t next_bytes = source != nullptr ? static_cast<size_t>(band_rows) * dw.stride_h * row_bytes : 0;
    for (int oy = oy0; oy < oy1; ++oy) {
      float* out = output + (static_cast<size_t>(n) * dw.out_h + static_cast<size_t>(oy)) * dw.out_w * dw.out_c;
      F32DwconvRowArgs a = depthwise_row_args(depthwise, buf, have_lo, out, oy, dw_min, dw_max);
      const size_t share0 = next_bytes * static_cast<size_t>(oy - oy0) / static_cast<size_t>(oy1 - oy0);
      const size_t share1 = next_bytes * static_cast<size_t>(oy + 1 - oy0) / static_cast<size_t>(oy1 - oy0);
      a.prefetch = next + share0;
      a.prefetch_bytes = share1 - share0;
      depthwise.dw_row(a);
      row_done(n, out);
    }
    row += static_cast<size_t>(oy1 - oy0);
  }
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
  depthwise_bands(f.depthwise, f.band_rows, buf, begin, end, t.output, t.dw_min, t.dw_max, nullptr,
                  [&](int n, int lo, int hi, float* dst) {
                    const size_t m = static_cast<size_t>(hi - lo) * static_cast<size_t>(pw.in_w);
                    const float* a =
                        t.input + (static_cast<size_t>(n) * pw.in_h + static_cast<size_t>(lo)) * pw.in_w * in_pixel;
                    f32_gemm_packed(m, a, in_pixel, f.pointwise.group_gemm[0], dst, static_cast<size_t>(pw.out_c),
                                    t.pw_min, t.pw_max, nullptr);
                  });
}

struct AffineTask {
  const F32Conv2dPacked* depthwise;
  int band_rows;
  const float* input;
  BnFusedClamp affine;
  float* output;
  float* scratch;
  float dw_min, dw_max;
  size_t slots;
  // f32_affine_depthwise_moments: the slices' partials and the pivot; slots take whole slices.
  float* moments = nullptr;
  const float* pivot = nullptr;
};

// Output rows [begin, end) (of batch * out_h) with the slot's buffer; row_done after each.
template <class RowDone = NoRowHook>
void affine_rows(const AffineTask& t, float* buf, size_t begin, size_t end, const RowDone& row_done = RowDone()) {
  const Conv2dParams& dw = t.depthwise->params;
  const size_t c = static_cast<size_t>(dw.in_c);
  const size_t row_floats = static_cast<size_t>(dw.in_w) * c;
  depthwise_bands(
      *t.depthwise, t.band_rows, buf, begin, end, t.output, t.dw_min, t.dw_max, t.input,
      [&](int n, int lo, int hi, float* dst) {
        const float* x = t.input + (static_cast<size_t>(n) * dw.in_h + static_cast<size_t>(lo)) * row_floats;
        f32_rows_scale_shift(static_cast<size_t>(hi - lo) * static_cast<size_t>(dw.in_w), c, x, t.affine.scale,
                             t.affine.shift, t.affine.lo, t.affine.hi, dst);
      },
      row_done);
}

float* affine_slot_buffer(const AffineTask& t, size_t slot) {
  const Conv2dParams& dw = t.depthwise->params;
  const size_t row_floats = static_cast<size_t>(dw.in_w) * static_cast<size_t>(dw.in_c);
  return t.scratch + slot * static_cast<size_t>(band_buffer_rows(dw, t.band_rows)) * row_floats;
}

void run_affine_slot(void* ctx, size_t slot) {
  const AffineTask& t = *static_cast<const AffineTask*>(ctx);
  const Conv2dParams& dw = t.depthwise->params;
  const auto [begin, end] = slot_range(static_cast<size_t>(dw.batch) * static_cast<size_t>(dw.out_h), slot, t.slots);
  affine_rows(t, affine_slot_buffer(t, slot), begin, end);
}

// Whole slices of images, each output row's pixels added to its slice's moments in order.
void run_affine_moments_slot(void* ctx, size_t slot) {
  const AffineTask& t = *static_cast<const AffineTask*>(ctx);
  const Conv2dParams& dw = t.depthwise->params;
  const size_t c = static_cast<size_t>(dw.out_c), S = kBnMomentsSlices;
  const size_t images = static_cast<size_t>(dw.batch) / S;  // per slice
  const auto [s0, s1] = slot_range(S, slot, t.slots);
  std::fill(t.moments + s0 * 2 * c, t.moments + s1 * 2 * c, 0.0f);
  const size_t oh = static_cast<size_t>(dw.out_h), ow = static_cast<size_t>(dw.out_w);
  affine_rows(t, affine_slot_buffer(t, slot), s0 * images * oh, s1 * images * oh, [&](int n, const float* out) {
    float* m = t.moments + static_cast<size_t>(n) / images * 2 * c;
    f32_column_shifted_moments(ow, c, out, t.pivot, m, m + c, /*cached=*/true);
  });
}

// Rows per chunk of f32_affine_conv1x1: the chunk's K floats per row near 256 KB.
size_t affine_1x1_rows(const Conv2dParams& p) {
  return std::clamp<size_t>((size_t{64} << 10) / static_cast<size_t>(p.in_c), 8, 256);
}

size_t align16(size_t floats) { return (floats + 15) / 16 * 16; }

// A 1x1 conv over chunks of rows, its input the rows themselves or (affine) a batch norm's
// output computed from them a chunk at a time into the slot's buffer; with moments, each slice
// of the batch norm's is one slot's, its rows' statistics taken by the GEMM (kF32GemmMoments).
struct Conv1x1Task {
  const F32Conv2dPacked* conv;
  const float* input;
  const BnFusedClamp* affine;  // or nullptr
  float* output;
  float* scratch;  // affine: per slot, a chunk of rows (align16(chunk * in_c) floats)
  float min, max;
  size_t rows, chunk, slots;
  bool stream;  // the output is past kStreamOutputBytes (as f32_conv2d_fast streams it)
  float* moments = nullptr;
  const float* pivot = nullptr;
};

float* conv1x1_slot_buffer(const Conv1x1Task& t, size_t slot) {
  return t.scratch + slot * align16(t.chunk * static_cast<size_t>(t.conv->params.in_c));
}

// Output rows [begin, end), a chunk per GEMM; mom: their statistics too.
void conv1x1_rows(const Conv1x1Task& t, size_t begin, size_t end, float* buf, const F32GemmMoments* mom) {
  const size_t k = static_cast<size_t>(t.conv->params.in_c), n = static_cast<size_t>(t.conv->params.out_c);
  for (size_t m0 = begin; m0 < end; m0 += t.chunk) {
    const size_t m = std::min(t.chunk, end - m0);
    const float* a = t.input + m0 * k;
    if (t.affine != nullptr) {
      f32_rows_scale_shift(m, k, a, t.affine->scale, t.affine->shift, t.affine->lo, t.affine->hi, buf);
      a = buf;
    }
    f32_gemm_packed_chunk(m, a, k, t.conv->group_gemm[0], t.output + m0 * n, n, t.min, t.max, t.stream, mom);
  }
}

void run_affine_1x1_slot(void* ctx, size_t slot) {
  const Conv1x1Task& t = *static_cast<const Conv1x1Task*>(ctx);
  const auto [c0, c1] = slot_range((t.rows + t.chunk - 1) / t.chunk, slot, t.slots);
  conv1x1_rows(t, c0 * t.chunk, std::min(t.rows, c1 * t.chunk), conv1x1_slot_buffer(t, slot), nullptr);
}

}  // namespace

int F32PointwiseDepthwise::buffer_rows() const { return band_buffer_rows(depthwise.params, band_rows); }

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
  f.band_rows = band_rows == 0 ? band_rows_for(b, kPointwiseDepthwiseBufferBytes) : std::min(band_rows, b.out_h);
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

namespace pcv::kernels {

size_t f32_affine_depthwise_scratch_bytes(const F32Conv2dPacked& depthwise, int threads) {
  const Conv2dParams& p = depthwise.params;
  const int rows = band_buffer_rows(p, band_rows_for(p, kPointwiseDepthwiseBufferBytes));
  return static_cast<size_t>(std::max(threads, 1)) * static_cast<size_t>(rows) * static_cast<size_t>(p.in_w) *
         static_cast<size_t>(p.in_c) * sizeof(float);
}

void f32_affine_depthwise(const F32Conv2dPacked& depthwise, const float* input, const BnFusedClamp& affine,
                          float dw_min, float dw_max, float* output, float* scratch, ThreadPool* pool) {
  const Conv2dParams& dw = depthwise.params;
  const size_t rows = static_cast<size_t>(dw.batch) * static_cast<size_t>(dw.out_h);
  AffineTask task{&depthwise, band_rows_for(dw, kPointwiseDepthwiseBufferBytes), input, affine, output, scratch,
                  dw_min, dw_max, conv_slots(pool, rows)};
  run_conv_slots(pool, task.slots, &run_affine_slot, &task);
}

}  // namespace pcv::kernels

namespace pcv::kernels {

size_t f32_affine_conv1x1_scratch_bytes(const F32Conv2dPacked& conv, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) *
         align16(affine_1x1_rows(conv.params) * static_cast<size_t>(conv.params.in_c)) * sizeof(float);
}

void f32_affine_conv1x1(const F32Conv2dPacked& conv, const float* input, const BnFusedClamp& affine, float act_min,
                        float act_max, float* output, float* scratch, ThreadPool* pool) {
  const Conv2dParams& p = conv.params;
  const size_t rows = static_cast<size_t>(p.batch) * static_cast<size_t>(p.in_h) * static_cast<size_t>(p.in_w);
  const size_t chunk = affine_1x1_rows(p);
  Conv1x1Task task{&conv, input, &affine, output, scratch, act_min, act_max, rows, chunk,
                   conv_slots(pool, (rows + chunk - 1) / chunk),
                   rows * static_cast<size_t>(p.out_c) * sizeof(float) >= kStreamOutputBytes};
  run_conv_slots(pool, task.slots, &run_affine_1x1_slot, &task);
}

}  // namespace pcv::kernels

namespace pcv::kernels {
namespace {

void run_moments_1x1_slot(void* ctx, size_t slot) {
  const Conv1x1Task& t = *static_cast<const Conv1x1Task*>(ctx);
  const size_t c = static_cast<size_t>(t.conv->params.out_c), S = kBnMomentsSlices;
  const auto [s0, s1] = slot_range(S, slot, t.slots);
  for (size_t s = s0; s < s1; ++s) {
    float* m1 = t.moments + s * 2 * c;
    std::fill(m1, m1 + 2 * c, 0.0f);
    const F32GemmMoments mom{t.pivot, m1, m1 + c};
    conv1x1_rows(t, t.rows * s / S, t.rows * (s + 1) / S, conv1x1_slot_buffer(t, slot), &mom);
  }
}

}  // namespace

namespace {
// Slots of f32_conv1x1_moments and f32_affine_depthwise_moments: one per thread up to the
// slices' count (each takes whole slices).
size_t moments_slots(const ThreadPool* pool) {
  if (pool == nullptr || !pool->multi_threaded()) return 1;
  return std::min(static_cast<size_t>(pool->threads()), static_cast<size_t>(kBnMomentsSlices));
}
}  // namespace

size_t f32_affine_depthwise_moments_scratch_bytes(const F32Conv2dPacked& depthwise, int threads) {
  return align16(static_cast<size_t>(depthwise.params.out_c)) * sizeof(float) +
         f32_affine_depthwise_scratch_bytes(depthwise, threads);
}

void f32_affine_depthwise_moments(const F32Conv2dPacked& depthwise, const float* input, const BnFusedClamp& affine,
                                  float dw_min, float dw_max, float* output, float* moments, float* scratch,
                                  ThreadPool* pool) {
  const Conv2dParams& dw = depthwise.params;
  if (dw.batch == 0) return;
  const size_t c = static_cast<size_t>(dw.out_c);
  const size_t S = kBnMomentsSlices;
  if (static_cast<size_t>(dw.batch) % S != 0) {  // slices within images: the output, then the row pass
    f32_affine_depthwise(depthwise, input, affine, dw_min, dw_max, output, scratch, pool);
    const size_t rows = static_cast<size_t>(dw.batch) * static_cast<size_t>(dw.out_h) * static_cast<size_t>(dw.out_w);
    std::fill(moments, moments + S * 2 * c, 0.0f);
    for (size_t s = 0; s < S; ++s) {
      const size_t b = rows * s / S, e = rows * (s + 1) / S;
      f32_column_shifted_moments(e - b, c, output + b * c, output, moments + s * 2 * c, moments + s * 2 * c + c);
    }
    return;
  }
  float* pivot = scratch;
  AffineTask task{&depthwise, band_rows_for(dw, kPointwiseDepthwiseBufferBytes), input, affine, output,
                  scratch + align16(c), dw_min, dw_max, moments_slots(pool),
                  moments, pivot};
  // The pivot, the output's first pixel, before any slice takes moments about it.
  affine_rows(task, affine_slot_buffer(task, 0), 0, 1);
  std::copy(output, output + c, pivot);
  run_conv_slots(pool, task.slots, &run_affine_moments_slot, &task);
}

size_t f32_conv1x1_moments_scratch_bytes(const F32Conv2dPacked& conv, bool affine, int threads) {
  return align16(static_cast<size_t>(conv.params.out_c)) * sizeof(float) +
         (affine ? f32_affine_conv1x1_scratch_bytes(conv, threads) : 0);
}

void f32_conv1x1_moments(const F32Conv2dPacked& conv, const float* input, const BnFusedClamp* affine, float act_min,
                         float act_max, float* output, float* moments, float* scratch, ThreadPool* pool) {
  const Conv2dParams& p = conv.params;
  const size_t rows = static_cast<size_t>(p.batch) * static_cast<size_t>(p.in_h) * static_cast<size_t>(p.in_w);
  if (rows == 0) return;
  const size_t c = static_cast<size_t>(p.out_c);
  Conv1x1Task task{&conv, input, affine, output, scratch + align16(c), act_min, act_max, rows, affine_1x1_rows(p),
                   moments_slots(pool), rows * c * sizeof(float) >= kStreamOutputBytes, moments, scratch};
  // The pivot, the output's first row, computed alone into its place at the scratch's start
  // before any slice takes moments about it (slot 0 computes the row again, the same bits).
  Conv1x1Task first = task;
  first.output = scratch;
  first.stream = false;
  conv1x1_rows(first, 0, 1, conv1x1_slot_buffer(task, 0), nullptr);
  run_conv_slots(pool, task.slots, &run_moments_1x1_slot, &task);
}

}  // namespace pcv::kernels
