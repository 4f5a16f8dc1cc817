// Training layers (contract in layers.h): forward/backward pairs.
#include "train/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/thread_pool.h"
#include "data/rng.h"
#include "kernels/common/stream_fence.h"
#include "kernels/train/train_rows.h"

namespace pcv::train {
namespace {

constexpr size_t kChunk = 1 << 15;

// Batch norm's output and input gradient are streamed when the whole tensor is that large.
bool stream_output(size_t elems) { return elems * sizeof(float) >= kernels::kStreamOutputBytes; }

bool use_pool(ThreadPool* pool, size_t elems) {
  return pool != nullptr && pool->threads() > 1 && elems >= kParallelMinElems;
}

// fn(begin, end) over [0, n) in chunks; elementwise work only (no cross-chunk state).
template <class F>
void parallel_chunks(ThreadPool* pool, size_t n, F&& fn) {
  if (!use_pool(pool, n)) {
    fn(size_t{0}, n);
    return;
  }
  pool->parallel_for_tiles(n, kChunk, [&](size_t b, size_t e) { fn(b, e); });
}

// Row slices [begin, end) of slice s of `slices` (fixed partition).
inline size_t slice_begin(size_t rows, size_t s, size_t slices) { return rows * s / slices; }

// fn(s, begin, end) for s in [0, kReduceSlices), possibly in parallel.
// fn(begin, end) over rows [0, rows) of `cols` elements each.
template <class F>
void parallel_rows(ThreadPool* pool, size_t rows, size_t cols, F&& fn) {
  if (!use_pool(pool, rows * cols)) {
    fn(size_t{0}, rows);
    return;
  }
  const size_t tile = std::max<size_t>(1, kChunk / std::max<size_t>(cols, 1));
  pool->parallel_for_tiles(rows, tile, [&](size_t b, size_t e) { fn(b, e); });
}

template <class F>
void for_slices(ThreadPool* pool, size_t rows, size_t cols, F&& fn) {
  const size_t S = kReduceSlices;
  auto one = [&](size_t s) { fn(s, slice_begin(rows, s, S), slice_begin(rows, s + 1, S)); };
  if (!use_pool(pool, rows * cols)) {
    for (size_t s = 0; s < S; ++s) one(s);
  } else {
    pool->parallel_for(S, one);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// activations

void relu_forward(size_t n, const float* x, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
  });
}
void relu_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {  // accumulates
    kernels::f32_window_grad_acc(e - b, x + b, 0.f, std::numeric_limits<float>::infinity(), dy + b, dx + b);
  });
}

void relu6_forward(size_t n, const float* x, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = std::min(std::max(x[i], 0.f), 6.f);
  });
}
void relu6_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    kernels::f32_window_grad_acc(e - b, x + b, 0.f, 6.f, dy + b, dx + b);
  });
}

void leaky_relu_forward(size_t n, float alpha, const float* x, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = x[i] > 0.f ? x[i] : alpha * x[i];
  });
}
void leaky_relu_backward(size_t n, float alpha, const float* x, const float* dy, float* dx,
                         ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) dx[i] += x[i] > 0.f ? dy[i] : alpha * dy[i];
  });
}

void hard_swish_forward(size_t n, const float* x, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = x[i] * std::min(std::max(x[i] + 3.f, 0.f), 6.f) / 6.f;
  });
}
void hard_swish_backward(size_t n, const float* x, const float* dy, float* dx, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float d = x[i] < -3.f ? 0.f : (x[i] > 3.f ? 1.f : (2.f * x[i] + 3.f) / 6.f);
      dx[i] += dy[i] * d;
    }
  });
}

void sigmoid_forward(size_t n, const float* x, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
  });
}
void sigmoid_backward(size_t n, const float* y, const float* dy, float* dx, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) dx[i] += dy[i] * y[i] * (1.f - y[i]);
  });
}

void clamp_backward_inplace(size_t n, const float* y, float lo, float hi, float* dy,
                            ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) { kernels::f32_clamp_grad_mask(e - b, y + b, lo, hi, dy + b); });
}

void clamp_forward_inplace(size_t n, float lo, float hi, float* y, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) { kernels::f32_clamp_inplace(e - b, lo, hi, y + b); });
}

void add_inplace(size_t n, const float* src, float* dst, ThreadPool* pool) {
  parallel_chunks(pool, n, [&](size_t b, size_t e) { kernels::f32_add_inplace(e - b, src + b, dst + b); });
}

// ---------------------------------------------------------------------------------------------
// batch norm

// One out-of-line function, so that the forward and the backward (which recomputes the
// pre-clamp output from it) get the same floats.
[[gnu::noinline]] void batch_norm_scale_shift(size_t c, const float* gamma, const float* beta, const float* mean,
                                              const float* invstd, float* scale, float* shift) {
  for (size_t k = 0; k < c; ++k) {
    scale[k] = invstd[k] * gamma[k];
    shift[k] = beta[k] - mean[k] * scale[k];
  }
}

void batch_norm_forward_train(size_t rows, int c, const float* x, const float* gamma,
                              const float* beta, float eps, float* y, float* mean, float* invstd,
                              float* var, ThreadPool* pool, float lo, float hi, const float* moments) {
  const size_t C = static_cast<size_t>(c);
  // One pass: per-slice moments about the first row (float within a slice, double across
  // slices). The first row is a sample of each channel's distribution, so the shifted sums
  // stay the size of the spread and s2/n - (s1/n)^2 does not cancel.
  const float* pivot = x;
  std::vector<float> own;
  if (moments == nullptr) {
    own.assign(kReduceSlices * 2 * C, 0.f);
    for_slices(pool, rows, C, [&](size_t s, size_t b, size_t e) {
      float* s1 = own.data() + s * 2 * C;
      kernels::f32_column_shifted_moments(e - b, C, x + b * C, pivot, s1, s1 + C);
    });
    moments = own.data();
  }
  const float* part = moments;
  const double n = static_cast<double>(rows);
  for (size_t k = 0; k < C; ++k) {
    double s1 = 0.0, s2 = 0.0;
    for (int s = 0; s < kReduceSlices; ++s) {
      s1 += part[s * 2 * C + k];
      s2 += part[s * 2 * C + C + k];
    }
    const double d = s1 / n;
    const double v = std::max(s2 / n - d * d, 0.0);
    mean[k] = static_cast<float>(static_cast<double>(pivot[k]) + d);
    var[k] = static_cast<float>(v);
    invstd[k] = static_cast<float>(1.0 / std::sqrt(v + eps));
  }
  if (y == nullptr) return;
  std::vector<float> scale(C), shift(C);
  batch_norm_scale_shift(C, gamma, beta, mean, invstd, scale.data(), shift.data());
  const bool stream = stream_output(rows * C);
  parallel_rows(pool, rows, C, [&](size_t b, size_t e) {
    kernels::f32_rows_scale_shift(e - b, C, x + b * C, scale.data(), shift.data(), lo, hi, y + b * C, stream);
  });
}

void batch_norm_backward_train_factors(size_t rows, int c, const float* x, const float* gamma, const float* beta,
                                       const float* mean, const float* invstd, const float* dy, float* dgamma,
                                       float* dbeta, ThreadPool* pool, float lo, float hi, BnInputGradFactors* f,
                                       const double* sum_dy, const double* sum_dyx) {
  const size_t C = static_cast<size_t>(c);
  // The fused clamp's mask, recomputed from x (see kernels::BnFusedClamp).
  f->lo = lo;
  f->hi = hi;
  f->scale.clear();
  f->shift.clear();
  if (lo != -std::numeric_limits<float>::infinity() || hi != std::numeric_limits<float>::infinity()) {
    f->scale.resize(C);
    f->shift.resize(C);
    batch_norm_scale_shift(C, gamma, beta, mean, invstd, f->scale.data(), f->shift.data());
  }
  const kernels::BnFusedClamp clamp = f->clamp();
  // sum(g) and sum(g * xhat) per channel (unless the caller has them).
  std::vector<float> part;
  if (sum_dy == nullptr) {
    part.assign(kReduceSlices * 2 * C, 0.f);
    for_slices(pool, rows, C, [&](size_t s, size_t b, size_t e) {
      float* sdy = part.data() + s * 2 * C;
      kernels::f32_bn_grad_sums(e - b, C, x + b * C, dy + b * C, mean, invstd, clamp, sdy, sdy + C);
    });
  }
  f->mdy.resize(C);
  f->mdyx.resize(C);
  f->coef.resize(C);
  for (size_t k = 0; k < C; ++k) {
    double a = 0.0, bsum = 0.0;
    if (sum_dy != nullptr) {
      a = sum_dy[k];
      bsum = sum_dyx[k];
    } else {
      for (int s = 0; s < kReduceSlices; ++s) {
        a += part[s * 2 * C + k];
        bsum += part[s * 2 * C + C + k];
      }
    }
    if (dbeta != nullptr) dbeta[k] += static_cast<float>(a);  // accumulates
    if (dgamma != nullptr) dgamma[k] += static_cast<float>(bsum);
    f->mdy[k] = static_cast<float>(a / static_cast<double>(rows));
    f->mdyx[k] = static_cast<float>(bsum / static_cast<double>(rows));
    f->coef[k] = gamma[k] * invstd[k];
  }
}

void batch_norm_backward_train(size_t rows, int c, const float* x, const float* gamma, const float* beta,
                               const float* mean, const float* invstd, const float* dy, float* dx,
                               float* dgamma, float* dbeta, ThreadPool* pool, bool assign_dx, float lo,
                               float hi, const double* sum_dy, const double* sum_dyx) {
  const size_t C = static_cast<size_t>(c);
  BnInputGradFactors f;
  batch_norm_backward_train_factors(rows, c, x, gamma, beta, mean, invstd, dy, dgamma, dbeta, pool, lo, hi, &f,
                                    sum_dy, sum_dyx);
  if (dx == nullptr) return;
  const kernels::BnFusedClamp clamp = f.clamp();
  const bool stream = stream_output(rows * C);
  parallel_rows(pool, rows, C, [&](size_t b, size_t e) {  // accumulates unless assign_dx
    kernels::f32_bn_grad_input(e - b, C, x + b * C, dy + b * C, mean, invstd, clamp, f.coef.data(), f.mdy.data(),
                               f.mdyx.data(), dx + b * C, !assign_dx, stream);
  });
}

void batch_norm_forward_eval(size_t rows, int c, const float* x, const float* gamma,
                             const float* beta, const float* mean, const float* invstd, float* y,
                             ThreadPool* pool, float lo, float hi) {
  const size_t C = static_cast<size_t>(c);
  std::vector<float> scale(C), shift(C);
  batch_norm_scale_shift(C, gamma, beta, mean, invstd, scale.data(), shift.data());
  parallel_rows(pool, rows, C, [&](size_t b, size_t e) {
    kernels::f32_rows_scale_shift(e - b, C, x + b * C, scale.data(), shift.data(), lo, hi, y + b * C);
  });
}

void batch_norm_backward_eval(size_t rows, int c, const float* x, const float* gamma,
                              const float* mean, const float* invstd, const float* dy, float* dx,
                              float* dgamma, float* dbeta, ThreadPool* pool) {
  const size_t C = static_cast<size_t>(c);
  if (dgamma != nullptr || dbeta != nullptr) {
    std::vector<float> part(kReduceSlices * 2 * C, 0.f);
    for_slices(pool, rows, C, [&](size_t s, size_t b, size_t e) {
      float* sdy = part.data() + s * 2 * C;
      kernels::f32_bn_grad_sums(e - b, C, x + b * C, dy + b * C, mean, invstd, kernels::BnFusedClamp{}, sdy,
                                sdy + C);
    });
    for (size_t k = 0; k < C; ++k) {
      double a = 0.0, bsum = 0.0;
      for (int s = 0; s < kReduceSlices; ++s) {
        a += part[s * 2 * C + k];
        bsum += part[s * 2 * C + C + k];
      }
      if (dbeta != nullptr) dbeta[k] += static_cast<float>(a);
      if (dgamma != nullptr) dgamma[k] += static_cast<float>(bsum);
    }
  }
  if (dx == nullptr) return;
  std::vector<float> coef(C);
  for (size_t k = 0; k < C; ++k) coef[k] = gamma[k] * invstd[k];
  parallel_rows(pool, rows, C, [&](size_t b, size_t e) {
    kernels::f32_rows_scale_acc(e - b, C, dy + b * C, coef.data(), dx + b * C);
  });
}

void batch_norm_update_running(int c, size_t rows, float momentum, const float* batch_mean,
                               const float* batch_var, float* running_mean, float* running_var) {
  const float unbias = rows > 1 ? static_cast<float>(rows) / static_cast<float>(rows - 1) : 1.f;
  for (int k = 0; k < c; ++k) {
    running_mean[k] = momentum * running_mean[k] + (1.f - momentum) * batch_mean[k];
    running_var[k] = momentum * running_var[k] + (1.f - momentum) * batch_var[k] * unbias;
  }
}

void column_sums_accumulate(size_t rows, int c, const float* x, float* out, ThreadPool* pool) {
  const size_t C = static_cast<size_t>(c);
  std::vector<float> part(kReduceSlices * C, 0.f);
  for_slices(pool, rows, C, [&](size_t s, size_t b, size_t e) {
    kernels::f32_column_sums(e - b, C, x + b * C, part.data() + s * C);
  });
  for (size_t k = 0; k < C; ++k) {
    double a = 0.0;
    for (int s = 0; s < kReduceSlices; ++s) a += part[s * C + k];
    out[k] += static_cast<float>(a);  // accumulates
  }
}

// ---------------------------------------------------------------------------------------------
// pooling

void max_pool_forward(const kernels::Pool2dParams& p, const float* x, float* y, int32_t* argmax,
                      ThreadPool* pool) {
  const size_t C = static_cast<size_t>(p.channels);
  const size_t in_image = static_cast<size_t>(p.in_h) * p.in_w * C;
  const size_t out_image = static_cast<size_t>(p.out_h) * p.out_w * C;
  const size_t out_row = static_cast<size_t>(p.out_w) * C;
  auto image = [&](size_t n) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      const size_t o = n * out_image + static_cast<size_t>(oy) * out_row;  // y, argmax: (N, out_h, out_w, C)
      kernels::f32_max_pool_argmax_row(p, x + n * in_image, oy, y + o, argmax + o);
    }
  };
  if (!use_pool(pool, static_cast<size_t>(p.batch) * in_image)) {
    for (int n = 0; n < p.batch; ++n) image(static_cast<size_t>(n));
  } else {
    pool->parallel_for(static_cast<size_t>(p.batch), image);
  }
}

void max_pool_backward(const kernels::Pool2dParams& p, const int32_t* argmax, const float* dy,
                       float* dx, ThreadPool* pool) {
  const size_t in_image = static_cast<size_t>(p.in_h) * p.in_w * p.channels;
  const size_t out_image = static_cast<size_t>(p.out_h) * p.out_w * p.channels;
  auto image = [&](size_t n) {
    const int32_t* a = argmax + n * out_image;
    const float* g = dy + n * out_image;
    float* d = dx + n * in_image;
    for (size_t i = 0; i < out_image; ++i) {
      if (a[i] >= 0) d[a[i]] += g[i];  // accumulates (overlapping windows add up)
    }
  };
  if (!use_pool(pool, static_cast<size_t>(p.batch) * in_image)) {
    for (int n = 0; n < p.batch; ++n) image(static_cast<size_t>(n));
  } else {
    pool->parallel_for(static_cast<size_t>(p.batch), image);
  }
}

bool max_pool_tiles_input(const kernels::Pool2dParams& p) {
  return p.stride_h == p.kernel_h && p.stride_w == p.kernel_w && p.pad_top == 0 && p.pad_left == 0 &&
         p.out_h * p.kernel_h <= p.in_h && p.out_w * p.kernel_w <= p.in_w;
}

void max_pool_backward_assign(const kernels::Pool2dParams& p, const int32_t* argmax, const float* dy,
                              const float* mask_y, float lo, float hi, float* dx, ThreadPool* pool) {
  const size_t C = static_cast<size_t>(p.channels);
  const size_t in_row = static_cast<size_t>(p.in_w) * C;
  const size_t in_image = static_cast<size_t>(p.in_h) * in_row;
  const size_t out_row = static_cast<size_t>(p.out_w) * C;
  const size_t out_image = static_cast<size_t>(p.out_h) * out_row;
  const size_t covered_w = static_cast<size_t>(p.out_w) * p.kernel_w * C;
  auto image = [&](size_t n) {
    float* d = dx + n * in_image;
    for (int oy = 0; oy < p.out_h; ++oy) {
      const size_t o = n * out_image + static_cast<size_t>(oy) * out_row;
      kernels::f32_max_pool_backward_row(p, argmax + o, dy + o, mask_y != nullptr ? mask_y + o : nullptr, lo, hi,
                                         oy, d);
      if (covered_w < in_row) {  // columns right of the last window
        for (int ky = 0; ky < p.kernel_h; ++ky) {
          float* r = d + static_cast<size_t>(oy * p.kernel_h + ky) * in_row;
          std::fill(r + covered_w, r + in_row, 0.0f);
        }
      }
    }
    std::fill(d + static_cast<size_t>(p.out_h) * p.kernel_h * in_row, d + in_image, 0.0f);  // rows below
  };
  if (!use_pool(pool, static_cast<size_t>(p.batch) * in_image)) {
    for (int n = 0; n < p.batch; ++n) image(static_cast<size_t>(n));
  } else {
    pool->parallel_for(static_cast<size_t>(p.batch), image);
  }
}

namespace {
template <class F>
void avg_pool_windows(const kernels::Pool2dParams& p, ThreadPool* pool, F&& fn) {
  const size_t in_image = static_cast<size_t>(p.in_h) * p.in_w * p.channels;
  auto image = [&](size_t n) {
    for (int oy = 0; oy < p.out_h; ++oy) {
      const int y0 = std::max(oy * p.stride_h - p.pad_top, 0);
      const int y1 = std::min(oy * p.stride_h - p.pad_top + p.kernel_h, p.in_h);
      for (int ox = 0; ox < p.out_w; ++ox) {
        const int x0 = std::max(ox * p.stride_w - p.pad_left, 0);
        const int x1 = std::min(ox * p.stride_w - p.pad_left + p.kernel_w, p.in_w);
        fn(n, oy, ox, y0, y1, x0, x1);
      }
    }
  };
  if (!use_pool(pool, static_cast<size_t>(p.batch) * in_image)) {
    for (int n = 0; n < p.batch; ++n) image(static_cast<size_t>(n));
  } else {
    pool->parallel_for(static_cast<size_t>(p.batch), image);
  }
}
}  // namespace

void average_pool_forward(const kernels::Pool2dParams& p, const float* x, float* y,
                          ThreadPool* pool) {
  const size_t C = static_cast<size_t>(p.channels);
  avg_pool_windows(p, pool, [&](size_t n, int oy, int ox, int y0, int y1, int x0, int x1) {
    float* yo = y + ((n * p.out_h + oy) * p.out_w + ox) * C;
    std::fill(yo, yo + C, 0.f);
    const int count = std::max(y1 - y0, 0) * std::max(x1 - x0, 0);
    for (int iy = y0; iy < y1; ++iy) {
      for (int ix = x0; ix < x1; ++ix) {
        const float* xr = x + ((n * p.in_h + iy) * p.in_w + ix) * C;
        for (size_t k = 0; k < C; ++k) yo[k] += xr[k];
      }
    }
    const float inv = count > 0 ? 1.f / static_cast<float>(count) : 0.f;
    for (size_t k = 0; k < C; ++k) yo[k] *= inv;
  });
}

void average_pool_backward(const kernels::Pool2dParams& p, const float* dy, float* dx,
                           ThreadPool* pool) {
  const size_t C = static_cast<size_t>(p.channels);
  avg_pool_windows(p, pool, [&](size_t n, int oy, int ox, int y0, int y1, int x0, int x1) {
    const float* g = dy + ((n * p.out_h + oy) * p.out_w + ox) * C;
    const int count = std::max(y1 - y0, 0) * std::max(x1 - x0, 0);
    if (count == 0) return;
    const float inv = 1.f / static_cast<float>(count);
    for (int iy = y0; iy < y1; ++iy) {
      for (int ix = x0; ix < x1; ++ix) {
        float* d = dx + ((n * p.in_h + iy) * p.in_w + ix) * C;
        for (size_t k = 0; k < C; ++k) d[k] += g[k] * inv;  // accumulates
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// shape-generic ops

namespace {
// Calls fn(in_index, out_index) over every element of dims (rank <= 5), with out strides
// given per axis (0 for a reduced/broadcast axis).
template <class F>
void for_each_index(int rank, const int64_t* dims, const int64_t* out_strides, F&& fn) {
  int64_t d[5] = {1, 1, 1, 1, 1}, st[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < rank; ++i) {
    d[5 - rank + i] = dims[i];
    st[5 - rank + i] = out_strides[i];
  }
  size_t in = 0;
  for (int64_t a = 0; a < d[0]; ++a)
    for (int64_t b = 0; b < d[1]; ++b)
      for (int64_t c = 0; c < d[2]; ++c)
        for (int64_t e = 0; e < d[3]; ++e) {
          const int64_t base = a * st[0] + b * st[1] + c * st[2] + e * st[3];
          for (int64_t f = 0; f < d[4]; ++f) fn(in++, static_cast<size_t>(base + f * st[4]));
        }
}

// Row-major strides of the kept axes (reduced axes get stride 0).
void reduced_strides(int rank, const int64_t* dims, const bool* reduce, int64_t* strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = reduce[i] ? 0 : s;
    if (!reduce[i]) s *= dims[i];
  }
}
}  // namespace

void mean_forward(int rank, const int64_t* dims, const bool* reduce, const float* x, float* y) {
  int64_t st[5];
  reduced_strides(rank, dims, reduce, st);
  int64_t out_n = 1, count = 1;
  for (int i = 0; i < rank; ++i) (reduce[i] ? count : out_n) *= dims[i];
  std::vector<double> acc(static_cast<size_t>(out_n), 0.0);
  for_each_index(rank, dims, st, [&](size_t i, size_t o) { acc[o] += x[i]; });
  for (int64_t o = 0; o < out_n; ++o) y[o] = static_cast<float>(acc[o] / static_cast<double>(count));
}

void mean_backward(int rank, const int64_t* dims, const bool* reduce, const float* dy, float* dx) {
  int64_t st[5];
  reduced_strides(rank, dims, reduce, st);
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) if (reduce[i]) count *= dims[i];
  const float inv = 1.f / static_cast<float>(count);
  for_each_index(rank, dims, st, [&](size_t i, size_t o) { dx[i] += dy[o] * inv; });
}

namespace {
// Strides of the padded output, and the offset of the input's origin in it.
size_t pad_strides(int rank, const int64_t* dims, const int64_t* before, const int64_t* after,
                   int64_t* st) {
  int64_t s = 1;
  size_t origin = 0;
  for (int i = rank - 1; i >= 0; --i) {
    st[i] = s;
    origin += static_cast<size_t>(before[i] * s);
    s *= dims[i] + before[i] + after[i];
  }
  return origin;
}
}  // namespace

void pad_forward(int rank, const int64_t* dims, const int64_t* before, const int64_t* after,
                 float value, const float* x, float* y) {
  int64_t st[5];
  const size_t origin = pad_strides(rank, dims, before, after, st);
  size_t total = 1;
  for (int i = 0; i < rank; ++i) total *= static_cast<size_t>(dims[i] + before[i] + after[i]);
  std::fill(y, y + total, value);
  for_each_index(rank, dims, st, [&](size_t i, size_t o) { y[origin + o] = x[i]; });
}

void pad_backward(int rank, const int64_t* dims, const int64_t* before, const int64_t* after,
                  const float* dy, float* dx) {
  int64_t st[5];
  const size_t origin = pad_strides(rank, dims, before, after, st);
  for_each_index(rank, dims, st, [&](size_t i, size_t o) { dx[i] += dy[origin + o]; });
}

void concat_forward(size_t outer, size_t inner, const std::vector<int64_t>& sizes,
                    const std::vector<const float*>& xs, float* y) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  for (size_t o = 0; o < outer; ++o) {
    size_t off = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const size_t len = static_cast<size_t>(sizes[i]) * inner;
      std::memcpy(y + o * static_cast<size_t>(total) * inner + off, xs[i] + o * len, len * sizeof(float));
      off += len;
    }
  }
}

void concat_backward(size_t outer, size_t inner, const std::vector<int64_t>& sizes,
                     const float* dy, const std::vector<float*>& dxs) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  for (size_t o = 0; o < outer; ++o) {
    size_t off = 0;
    for (size_t i = 0; i < dxs.size(); ++i) {
      const size_t len = static_cast<size_t>(sizes[i]) * inner;
      if (dxs[i] != nullptr) {
        const float* src = dy + o * static_cast<size_t>(total) * inner + off;
        float* dst = dxs[i] + o * len;
        for (size_t k = 0; k < len; ++k) dst[k] += src[k];
      }
      off += len;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// broadcasting add / mul

namespace {
bool same_shape(const kernels::BroadcastShape& s) {
  for (int i = 0; i < s.rank; ++i) {
    if (s.a_dims[i] != s.out_dims[i] || s.b_dims[i] != s.out_dims[i]) return false;
  }
  return true;
}
// Strides of an operand inside the output index space (0 along broadcast axes).
void operand_strides(const kernels::BroadcastShape& s, const int* dims, int64_t* st) {
  int64_t acc = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    st[i] = (dims[i] == 1 && s.out_dims[i] != 1) ? 0 : acc;
    acc *= dims[i];
  }
}
size_t out_elems(const kernels::BroadcastShape& s) {
  size_t n = 1;
  for (int i = 0; i < s.rank; ++i) n *= static_cast<size_t>(s.out_dims[i]);
  return n;
}
void out_dims64(const kernels::BroadcastShape& s, int64_t* d) {
  for (int i = 0; i < s.rank; ++i) d[i] = s.out_dims[i];
}
}  // namespace

void add_forward(const kernels::BroadcastShape& s, const float* a, const float* b, float* y,
                 ThreadPool* pool) {
  if (same_shape(s)) {
    parallel_chunks(pool, out_elems(s), [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
    });
    return;
  }
  int64_t d[5], sa[5], sb[5];
  out_dims64(s, d);
  operand_strides(s, s.a_dims, sa);
  operand_strides(s, s.b_dims, sb);
  for_each_index(s.rank, d, sa, [&](size_t o, size_t ia) { y[o] = a[ia]; });
  for_each_index(s.rank, d, sb, [&](size_t o, size_t ib) { y[o] += b[ib]; });
}

void add_backward(const kernels::BroadcastShape& s, const float* dy, float* da, float* db,
                  ThreadPool* pool) {
  if (same_shape(s)) {
    if (da != nullptr) add_inplace(out_elems(s), dy, da, pool);
    if (db != nullptr) add_inplace(out_elems(s), dy, db, pool);
    return;
  }
  int64_t d[5], sa[5], sb[5];
  out_dims64(s, d);
  operand_strides(s, s.a_dims, sa);
  operand_strides(s, s.b_dims, sb);
  if (da != nullptr) for_each_index(s.rank, d, sa, [&](size_t o, size_t ia) { da[ia] += dy[o]; });
  if (db != nullptr) for_each_index(s.rank, d, sb, [&](size_t o, size_t ib) { db[ib] += dy[o]; });
}

void mul_forward(const kernels::BroadcastShape& s, const float* a, const float* b, float* y,
                 ThreadPool* pool) {
  if (same_shape(s)) {
    parallel_chunks(pool, out_elems(s), [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) y[i] = a[i] * b[i];
    });
    return;
  }
  int64_t d[5], sa[5], sb[5];
  out_dims64(s, d);
  operand_strides(s, s.a_dims, sa);
  operand_strides(s, s.b_dims, sb);
  for_each_index(s.rank, d, sa, [&](size_t o, size_t ia) { y[o] = a[ia]; });
  for_each_index(s.rank, d, sb, [&](size_t o, size_t ib) { y[o] *= b[ib]; });
}

void mul_backward(const kernels::BroadcastShape& s, const float* a, const float* b,
                  const float* dy, float* da, float* db, ThreadPool* pool) {
  int64_t d[5], sa[5], sb[5];
  out_dims64(s, d);
  operand_strides(s, s.a_dims, sa);
  operand_strides(s, s.b_dims, sb);
  // Index of both operands per output element.
  std::vector<size_t> ib(out_elems(s));
  for_each_index(s.rank, d, sb, [&](size_t o, size_t i) { ib[o] = i; });
  for_each_index(s.rank, d, sa, [&](size_t o, size_t ia) {
    if (da != nullptr) da[ia] += dy[o] * b[ib[o]];
    if (db != nullptr) db[ib[o]] += dy[o] * a[ia];
  });
}

// ---------------------------------------------------------------------------------------------
// softmax, dropout

void softmax_forward(size_t rows, int c, float beta, const float* x, float* y) {
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float* yr = y + r * c;
    const float mx = *std::max_element(xr, xr + c);
    double sum = 0.0;
    for (int k = 0; k < c; ++k) {
      yr[k] = std::exp(beta * (xr[k] - mx));
      sum += yr[k];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int k = 0; k < c; ++k) yr[k] *= inv;
  }
}

void softmax_backward(size_t rows, int c, float beta, const float* y, const float* dy, float* dx) {
  for (size_t r = 0; r < rows; ++r) {
    const float* yr = y + r * c;
    const float* g = dy + r * c;
    double dot = 0.0;
    for (int k = 0; k < c; ++k) dot += static_cast<double>(g[k]) * yr[k];
    for (int k = 0; k < c; ++k) dx[r * c + k] += beta * yr[k] * (g[k] - static_cast<float>(dot));
  }
}

void dropout_forward_train(size_t n, float rate, uint64_t seed, uint64_t stream, const float* x,
                           float* y, float* mask) {
  data::Rng rng(seed, stream, 0x64726f70ull);  // "drop"
  const float keep = 1.f - rate;
  const float scale = keep > 0.f ? 1.f / keep : 0.f;
  for (size_t i = 0; i < n; ++i) {
    mask[i] = rng.uniform() < keep ? scale : 0.f;
    y[i] = x[i] * mask[i];
  }
}

void dropout_backward(size_t n, const float* mask, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] += dy[i] * mask[i];
}

}  // namespace pcv::train
