// fully_connected backward: reference loops and the GEMM version (contract in
// fully_connected_backward.h).
#include "kernels/fully_connected/fully_connected_backward.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "base/thread_pool.h"

namespace pcv::kernels {

void f32_fully_connected_backward__ref(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad) {
  for (int b = 0; b < p.batch; ++b) {
    const float* x = input + static_cast<size_t>(b) * p.in_features;     // (batch, in)
    const float* dy = output_grad + static_cast<size_t>(b) * p.out_features;  // (batch, out)
    for (int o = 0; o < p.out_features; ++o) {
      const float g = dy[o];
      const float* w = weights + static_cast<size_t>(o) * p.in_features;  // (out, in)
      if (bias_grad != nullptr) bias_grad[o] += g;
      for (int i = 0; i < p.in_features; ++i) {
        if (weights_grad != nullptr) weights_grad[static_cast<size_t>(o) * p.in_features + i] += g * x[i];
        if (input_grad != nullptr) input_grad[static_cast<size_t>(b) * p.in_features + i] += g * w[i];
      }
    }
  }
}

namespace {

// fn(begin, end) over [0, total) in pieces of a multiple of `align` (a few per thread), on the
// pool (may be nullptr). Each output element belongs to one piece: results do not depend on
// the thread count.
void split_range(ThreadPool* pool, size_t total, size_t align, const std::function<void(size_t, size_t)>& fn) {
  const size_t threads = pool != nullptr ? static_cast<size_t>(pool->threads()) : 1;
  if (threads <= 1 || total <= align) {
    fn(0, total);
    return;
  }
  size_t step = (total + 4 * threads - 1) / (4 * threads);
  step = (step + align - 1) / align * align;
  const size_t pieces = (total + step - 1) / step;
  pool->parallel_for(pieces, [&](size_t i) { fn(i * step, std::min(total, (i + 1) * step)); });
}

float* grow(AlignedBuffer& b, size_t floats) {
  if (b.size() < floats * sizeof(float)) b.resize(floats * sizeof(float));
  return reinterpret_cast<float*>(b.data());
}

}  // namespace

void f32_fully_connected_forward_unpacked(const FullyConnectedParams& p, const float* input, const float* weights,
                                          const float* bias, float* output, F32FullyConnectedBackwardScratch* s,
                                          ThreadPool* pool) {
  const size_t batch = static_cast<size_t>(p.batch);
  const size_t in = static_cast<size_t>(p.in_features), out = static_cast<size_t>(p.out_features);
  // Y^T (out, batch) = bias, += W (read as A^T: column o at o * in) x X^T (in, batch).
  float* xt = grow(s->x_transposed, in * batch);
  float* yt = grow(s->y_transposed, out * batch);
  if (s->w_rows.size() < out || s->w_rows_stride != in) {
    s->w_rows.resize(out);
    for (size_t o = 0; o < out; ++o) s->w_rows[o] = o * in;
    s->w_rows_stride = in;
  }
  f32_transpose(batch, in, input, in, xt, batch);
  for (size_t o = 0; o < out; ++o) std::fill(yt + o * batch, yt + (o + 1) * batch, bias != nullptr ? bias[o] : 0.f);
  split_range(pool, out, 8, [&](size_t o0, size_t o1) {
    f32_gemm_atb_acc_cols(o1 - o0, batch, in, weights, 1, s->w_rows.data() + o0, xt, batch, yt + o0 * batch, batch);
  });
  f32_transpose(out, batch, yt, batch, output, out);
}

void f32_fully_connected_backward_fast(const FullyConnectedParams& p, const float* input,
                                       const float* weights, const float* output_grad,
                                       float* input_grad, float* weights_grad, float* bias_grad,
                                       F32FullyConnectedBackwardScratch* s, ThreadPool* pool) {
  const size_t batch = static_cast<size_t>(p.batch);
  const size_t in = static_cast<size_t>(p.in_features), out = static_cast<size_t>(p.out_features);
  if (bias_grad != nullptr) {
    // Column sums in batch order (fixed).
    for (size_t b = 0; b < batch; ++b) {
      for (size_t o = 0; o < out; ++o) bias_grad[o] += output_grad[b * out + o];
    }
  }
  // Both products as C += A^T B with B read in place (W and X are the large operands), split
  // over C's columns.
  if (input_grad != nullptr) {
    // dX (batch, in) += (dY^T)^T W: A = dY^T (out, batch), B = W (out, in).
    float* dyt = grow(s->dy_transposed, out * batch);
    f32_transpose(batch, out, output_grad, out, dyt, batch);
    split_range(pool, in, 16, [&](size_t i0, size_t i1) {
      f32_gemm_atb_acc(batch, i1 - i0, out, dyt, batch, weights + i0, in, input_grad + i0, in);
    });
  }
  if (weights_grad != nullptr) {
    // dW (out, in) += dY^T X: A = dY (batch, out), B = X (batch, in).
    split_range(pool, in, 16, [&](size_t i0, size_t i1) {
      f32_gemm_atb_acc(out, i1 - i0, batch, output_grad, out, input + i0, in, weights_grad + i0, in);
    });
  }
}

}  // namespace pcv::kernels
