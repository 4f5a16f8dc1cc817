// f32_conv2d_backward_fast (contract in conv_backward.h): im2col/col2im + the accumulating
// packed GEMM for regular and grouped convs, direct NHWC loops for depthwise.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/conv/conv_backward.h"
#include "kernels/gemm/gemm_backward.h"
#include "kernels/train/train_rows.h"

namespace pcv::kernels {
namespace {

constexpr int kMaxSlices = 8;
static_assert(kMaxSlices == kBnSumsSlices, "the slices must cut a batch as the batch norm cuts its rows");
constexpr size_t kAlignElems = 16;  // 64 bytes
// Rows per chunk of a 1x1 stride-1 conv (direct_1x1): f32_gemm_atb_acc's K block.
constexpr size_t kDirectRows = 256;

size_t align_up(size_t x) { return (x + kAlignElems - 1) / kAlignElems * kAlignElems; }

int slices_for(int batch) { return std::max(1, std::min(batch, kMaxSlices)); }

// Scratch layout (floats, each region 64-byte aligned relative to an aligned base):
//   shared: packed filter for backward-data, per group (k = og rows, n = K columns); kGemm
//           with im2col: each patch column's offset in X from the pixel's first tap (K
//           size_t)
//   per slice: im2col rows (rows x K), dXcol (rows x K), partial filter gradient (filter
//              elems; kGemm: per group transposed, (K, og), or (og, K) with dw_direct), partial bias gradient (out_c),
//              kGemm with im2col: row offsets of the chunk's pixels (4 x rows size_t)
//              and the border pixels' (oy, ox) (rows x 2 int); bn_output_grad: the chunk's
//              output gradient (rows x out_c); bn_input: the band of input rows
//              (f32_dwconv_backward_affine_rows x in_w x in_c) and the batch norm's sums
//              (2 x in_c)
struct Layout {
  size_t w_panels_per_group = 0;  // floats per group of the packed filter
  size_t cols = 0;                // offset of the patch column offsets in shared
  size_t shared = 0;
  size_t col = 0, dxcol = 0, dw = 0, db = 0, idx = 0, dy = 0, xbuf = 0, sums = 0;
  size_t per_slice = 0;
  size_t total = 0;  // without the alignment slack
  // Offsets in a slice of its filter gradient partial and of the band or chunk buffer (the
  // batch norm's sums follow the buffer).
  size_t dw_at() const { return col + dxcol; }
  size_t xbuf_at() const { return col + dxcol + dw + db + idx + dy; }
};

Layout layout_for(const F32Conv2dBackwardPlan& plan) {
  const Conv2dParams& p = plan.params;
  Layout l;
  const size_t filter_elems = static_cast<size_t>(p.out_c) * p.kernel_h * p.kernel_w * (p.in_c / p.groups);
  if (plan.path == F32Conv2dBackwardPlan::Path::kGemm) {
    const F32GemmUkernel uk = f32_gemm_acc_ukernel(plan.k);
    const size_t panels = (plan.k + uk.nr - 1) / uk.nr;
    const size_t og = static_cast<size_t>(p.out_c / p.groups);
    l.w_panels_per_group = align_up(panels * uk.nr * og);
    l.cols = l.w_panels_per_group * static_cast<size_t>(p.groups);
    l.shared = l.cols + (plan.direct_1x1 ? 0 : align_up(2 * plan.k));
    l.col = plan.direct_1x1 ? 0 : align_up(plan.rows * plan.k);
    l.dxcol = plan.direct_1x1 ? 0 : align_up(plan.rows * plan.k);
    l.idx = plan.direct_1x1 ? 0 : align_up(2 * 5 * plan.rows);
    l.dy = plan.bn_output_grad ? align_up(plan.rows * static_cast<size_t>(p.out_c)) : 0;
    if (plan.bn_input) {
      l.xbuf = align_up(plan.rows * static_cast<size_t>(p.in_c));
      l.sums = align_up(2 * static_cast<size_t>(p.in_c));
    }
  } else {
    // Shared: the filter transposed to (kh * kw, out_c).
    l.shared = align_up(filter_elems);
    if (plan.bn_input) {
      l.xbuf = align_up(static_cast<size_t>(f32_dwconv_backward_affine_rows(p)) * p.in_w * p.in_c);
      l.sums = align_up(2 * static_cast<size_t>(p.in_c));
    }
  }
  l.dw = align_up(filter_elems);
  l.db = align_up(static_cast<size_t>(p.out_c));
  l.per_slice = l.col + l.dxcol + l.dw + l.db + l.idx + l.dy + l.xbuf + l.sums;
  l.total = l.shared + l.per_slice * static_cast<size_t>(plan.slices);
  return l;
}

float* align_ptr(float* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<float*>((a + 63) / 64 * 64);
}

// Writes the im2col row of output pixel (oy, ox) of image `x` (group g): column
// kcol = (ky * kw + kx) * cg + ci at dst[kcol] (zeros for padding taps).
void im2col_pixel(const Conv2dParams& p, const float* x, int g, int oy, int ox, float* dst) {
  const size_t cg = static_cast<size_t>(p.in_c / p.groups);
  for (int ky = 0; ky < p.kernel_h; ++ky) {
    const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
    for (int kx = 0; kx < p.kernel_w; ++kx, dst += cg) {
      const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
      if (iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w) {
        std::memcpy(dst, x + (static_cast<size_t>(iy) * p.in_w + ix) * p.in_c + static_cast<size_t>(g) * cg,
                    cg * sizeof(float));
      } else {
        std::fill(dst, dst + cg, 0.0f);
      }
    }
  }
}

// Offsets in X of each patch column kcol = (ky * kw + kx) * cg + ci from the pixel's first
// tap (group offsets excluded).
void patch_column_offsets(const Conv2dParams& p, size_t* cols) {
  const size_t cg = static_cast<size_t>(p.in_c / p.groups);
  for (int ky = 0; ky < p.kernel_h; ++ky) {
    for (int kx = 0; kx < p.kernel_w; ++kx) {
      const size_t tap = (static_cast<size_t>(ky) * p.dilation_h * p.in_w + static_cast<size_t>(kx) * p.dilation_w) *
                         static_cast<size_t>(p.in_c);
      for (size_t ci = 0; ci < cg; ++ci) *cols++ = tap + ci;
    }
  }
}

// The pixels of a chunk of output pixels, split for the filter gradient: interior pixels
// (every tap inside the image) read their patches from X in place (x_rows: first tap's
// offset); border pixels' patches are written by im2col (border_pixels: (oy, ox)). dy_rows:
// each pixel's row offset in the chunk's dY, interior ones first.
struct ChunkRows {
  size_t interior = 0, border = 0;
  size_t* x_rows;
  size_t* dy_rows_interior;
  size_t* dy_rows_border;
  size_t* col_rows;  // border pixel j's im2col row at j * K
};

void split_chunk(const Conv2dParams& p, size_t m0, size_t rows, size_t k, ChunkRows* c,
                 int* border_oy_ox) {
  c->interior = c->border = 0;
  int oy = static_cast<int>(m0 / static_cast<size_t>(p.out_w));
  int ox = static_cast<int>(m0 % static_cast<size_t>(p.out_w));
  const int span_h = (p.kernel_h - 1) * p.dilation_h, span_w = (p.kernel_w - 1) * p.dilation_w;
  for (size_t r = 0; r < rows; ++r) {
    const int iy = oy * p.stride_h - p.pad_top, ix = ox * p.stride_w - p.pad_left;
    if (iy >= 0 && iy + span_h < p.in_h && ix >= 0 && ix + span_w < p.in_w) {
      c->x_rows[c->interior] = (static_cast<size_t>(iy) * p.in_w + ix) * p.in_c;
      c->dy_rows_interior[c->interior++] = r * p.out_c;
    } else {
      border_oy_ox[2 * c->border] = oy;
      border_oy_ox[2 * c->border + 1] = ox;
      c->col_rows[c->border] = c->border * k;
      c->dy_rows_border[c->border++] = r * p.out_c;
    }
    if (++ox == p.out_w) {
      ox = 0;
      ++oy;
    }
  }
}

// dX[pixels of the taps] += dXcol rows [m0, m0 + rows) (group g).
void col2im_add(const Conv2dParams& p, const float* dxcol, size_t m0, size_t rows, size_t k, int g,
                float* dx) {
  const int cg = p.in_c / p.groups;
  for (size_t r = 0; r < rows; ++r) {
    const size_t m = m0 + r;
    const int oy = static_cast<int>(m / static_cast<size_t>(p.out_w));
    const int ox = static_cast<int>(m % static_cast<size_t>(p.out_w));
    const float* row = dxcol + r * k;
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
      if (iy < 0 || iy >= p.in_h) continue;
      for (int kx = 0; kx < p.kernel_w; ++kx) {
        const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
        if (ix < 0 || ix >= p.in_w) continue;
        float* dst = dx + (static_cast<size_t>(iy) * p.in_w + ix) * p.in_c + static_cast<size_t>(g) * cg;
        const float* src = row + static_cast<size_t>(ky * p.kernel_w + kx) * cg;
        for (int c = 0; c < cg; ++c) dst[c] += src[c];  // accumulates
      }
    }
  }
}

// One slice of images [n0, n1) on the GEMM path. dwt: this slice's filter gradient, per
// group transposed (K, og) (dw_direct: (og, K)).
void gemm_slice(const F32Conv2dBackwardPlan& plan, const Layout& l, int n0, int n1,
                const float* input, const float* output_grad, float* input_grad, bool want_dw,
                bool want_db, const float* w_packed, const size_t* patch_cols, float* slice,
                ThreadPool* pool, bool assign_dx, const F32BnOutputGrad* bn, const BnFusedClamp* x_affine,
                float* x_buf, const F32BnSumsPartial* sums) {
  const Conv2dParams& p = plan.params;
  const F32GemmUkernel uk = f32_gemm_acc_ukernel(plan.k);
  const size_t og = static_cast<size_t>(p.out_c / p.groups);
  const size_t cg = static_cast<size_t>(p.in_c / p.groups);
  const size_t pixels = static_cast<size_t>(p.out_h) * p.out_w;
  const size_t in_image = static_cast<size_t>(p.in_h) * p.in_w * p.in_c;
  float* col = slice;
  float* dxcol = col + l.col;
  float* dwt = dxcol + l.dxcol;
  float* db = dwt + l.dw;
  size_t* idx = reinterpret_cast<size_t*>(db + l.db);
  ChunkRows chunk{0, 0, idx, idx + plan.rows, idx + 2 * plan.rows, idx + 3 * plan.rows};
  int* border_oy_ox = reinterpret_cast<int*>(idx + 4 * plan.rows);
  const size_t group_dw = plan.k * og;
  if (plan.direct_1x1) {
    // The slice's images as one (rows, channels) matrix: X's rows are the patches, dX's rows
    // the input gradient. Per chunk, while its rows of dY are in cache: the bias and filter
    // gradients, then the input gradient (each row's sums in row order, as per image).
    const size_t total = static_cast<size_t>(n1 - n0) * pixels;
    const float* x = input + static_cast<size_t>(n0) * in_image;
    const size_t first = static_cast<size_t>(n0) * pixels * p.out_c;  // the slice's first dY element
    float* dy_chunk = db + l.db + l.idx;  // bn: the chunk's dY
    float* dx = input_grad != nullptr ? input_grad + static_cast<size_t>(n0) * in_image : nullptr;
    for (size_t m0 = 0; m0 < total; m0 += plan.rows) {
      const size_t rows = std::min(plan.rows, total - m0);
      const size_t at = first + m0 * p.out_c;
      // x_affine: the chunk's X computed from the batch norm's input into x_buf.
      const float* xc = x + m0 * p.in_c;
      if (x_affine != nullptr && want_dw) {
        f32_rows_scale_shift(rows, static_cast<size_t>(p.in_c), xc, x_affine->scale, x_affine->shift, x_affine->lo,
                             x_affine->hi, x_buf);
        xc = x_buf;
      }
      const float* dy = dy_chunk;
      if (bn != nullptr) {
        f32_bn_grad_input(rows, static_cast<size_t>(p.out_c), bn->x + at, bn->dy + at, bn->mean, bn->invstd,
                          bn->clamp, bn->coef, bn->mdy, bn->mdyx, dy_chunk, /*accumulate=*/false);
      } else {
        dy = output_grad + at;
      }
      if (want_db) f32_column_sums(rows, static_cast<size_t>(p.out_c), dy, db);
      for (int g = 0; g < p.groups; ++g) {
        const float* dy_g = dy + static_cast<size_t>(g) * og;
        const float* x_g = xc + static_cast<size_t>(g) * cg;
        if (want_dw) {
          float* dw_g = dwt + g * group_dw;
          if (plan.dw_direct) {
            f32_gemm_atb_acc(og, plan.k, rows, dy_g, p.out_c, x_g, p.in_c, dw_g, plan.k);
          } else {
            f32_gemm_atb_acc(plan.k, og, rows, x_g, p.in_c, dy_g, p.out_c, dw_g, og);
          }
        }
        if (dx != nullptr) {
          // dX rows (rows, cg) += dY_g(rows, og) * W_g(og, cg)
          const float* wp = w_packed + static_cast<size_t>(g) * l.w_panels_per_group;
          f32_gemm_acc_panels(rows, dy_g, p.out_c, wp, og, plan.k, uk, dx + m0 * p.in_c + g * cg, p.in_c,
                              pool, assign_dx);
        }
      }
      if (sums != nullptr) {  // the chunk's dX rows, while in cache
        f32_bn_grad_sums(rows, static_cast<size_t>(p.in_c), x + m0 * p.in_c, dx + m0 * p.in_c, sums->mean,
                         sums->invstd, *x_affine, sums->sdy, sums->sdyx);
      }
    }
    return;
  }
  // Per chunk of output pixels, while its rows of dY are in cache: the bias and filter
  // gradients, then the input gradient.
  for (int n = n0; n < n1; ++n) {
    const float* x = input + static_cast<size_t>(n) * in_image;
    const float* dy_img = output_grad + static_cast<size_t>(n) * pixels * p.out_c;
    float* dx = input_grad != nullptr ? input_grad + static_cast<size_t>(n) * in_image : nullptr;
    if (dx != nullptr && assign_dx) std::fill(dx, dx + in_image, 0.0f);
    for (size_t m0 = 0; m0 < pixels; m0 += plan.rows) {
      const size_t rows = std::min(plan.rows, pixels - m0);
      const float* dy = dy_img + m0 * p.out_c;  // (rows, out_c)
      if (want_db) f32_column_sums(rows, static_cast<size_t>(p.out_c), dy, db);
      if (want_dw) split_chunk(p, m0, rows, plan.k, &chunk, border_oy_ox);
      for (int g = 0; g < p.groups; ++g) {
        const float* dy_g = dy + static_cast<size_t>(g) * og;
        if (want_dw) {
          // dW_g^T(K, og) += patches(rows, K)^T * dY_g(rows, og): interior pixels' patches
          // read in place, border ones through im2col.
          float* dw_g = dwt + g * group_dw;
          f32_gemm_atb_acc_gather(plan.k, og, chunk.interior, x + static_cast<size_t>(g) * cg, chunk.x_rows,
                                  patch_cols, dy_g, chunk.dy_rows_interior, dw_g, og);
          for (size_t j = 0; j < chunk.border; ++j) {
            im2col_pixel(p, x, g, border_oy_ox[2 * j], border_oy_ox[2 * j + 1], col + j * plan.k);
          }
          f32_gemm_atb_acc_gather(plan.k, og, chunk.border, col, chunk.col_rows, nullptr, dy_g,
                                  chunk.dy_rows_border, dw_g, og);
        }
        if (dx != nullptr) {
          const float* wp = w_packed + static_cast<size_t>(g) * l.w_panels_per_group;
          // dXcol = dY_g * W_g (assigned: the GEMM's first K block starts from zeros).
          f32_gemm_acc_panels(rows, dy_g, p.out_c, wp, og, plan.k, uk, dxcol, plan.k, pool, /*assign=*/true);
          col2im_add(p, dxcol, m0, rows, plan.k, g, dx);
        }
      }
    }
  }
}

// One slice of images [n0, n1) on the depthwise path. wt: filter as (kh * kw, out_c).
void depthwise_slice(const Conv2dParams& p, int n0, int n1, const float* input,
                     const float* output_grad, const float* wt, float* input_grad, float* dwt,
                     float* db, bool assign_dx, const BnFusedClamp* x_affine, float* x_buf,
                     const F32BnSumsPartial* sums) {
  const int oc_n = p.out_c;
  const int mult = p.out_c / p.in_c;
  const size_t in_image = static_cast<size_t>(p.in_h) * p.in_w * p.in_c;
  const size_t out_image = static_cast<size_t>(p.out_h) * p.out_w * p.out_c;
  for (int n = n0; n < n1; ++n) {
    const float* x = input + static_cast<size_t>(n) * in_image;
    float* dx = input_grad != nullptr ? input_grad + static_cast<size_t>(n) * in_image : nullptr;
    if (mult == 1) {
      f32_dwconv_backward_image(p, x, output_grad + static_cast<size_t>(n) * out_image, wt, dx, dwt, db, assign_dx,
                                x_affine, x_buf, sums);
      continue;
    }
    if (dx != nullptr && assign_dx) std::fill(dx, dx + in_image, 0.0f);
    for (int oy = 0; oy < p.out_h; ++oy) {
      for (int ox = 0; ox < p.out_w; ++ox) {
        const float* dy = output_grad + static_cast<size_t>(n) * out_image +
                          (static_cast<size_t>(oy) * p.out_w + ox) * oc_n;
        if (db != nullptr) {
          for (int c = 0; c < oc_n; ++c) db[c] += dy[c];
        }
        for (int ky = 0; ky < p.kernel_h; ++ky) {
          const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
          if (iy < 0 || iy >= p.in_h) continue;
          for (int kx = 0; kx < p.kernel_w; ++kx) {
            const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
            if (ix < 0 || ix >= p.in_w) continue;
            const size_t tap = static_cast<size_t>(ky * p.kernel_w + kx) * oc_n;
            const size_t xo = (static_cast<size_t>(iy) * p.in_w + ix) * p.in_c;
            const float* xr = x + xo;
            const float* w = wt + tap;
            if (mult == 1) {
              if (dwt != nullptr) {
                float* dw = dwt + tap;
                for (int c = 0; c < oc_n; ++c) dw[c] += dy[c] * xr[c];
              }
              if (dx != nullptr) {
                float* d = dx + xo;
                for (int c = 0; c < oc_n; ++c) d[c] += dy[c] * w[c];
              }
            } else {
              for (int c = 0; c < oc_n; ++c) {
                const int ic = c / mult;
                if (dwt != nullptr) dwt[tap + c] += dy[c] * xr[ic];
                if (dx != nullptr) dx[xo + ic] += dy[c] * w[c];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

bool conv2d_backward_data_as_conv(const Conv2dParams& p, Conv2dParams* out) {
  if (p.groups != 1 || p.stride_h != 1 || p.stride_w != 1 || p.dilation_h != 1 || p.dilation_w != 1 ||
      (p.kernel_h == 1 && p.kernel_w == 1)) {
    return false;
  }
  // Stride 1: out = in + pad_before + pad_after - k + 1.
  const int pad_bottom = p.out_h - p.in_h - p.pad_top + p.kernel_h - 1;
  const int pad_right = p.out_w - p.in_w - p.pad_left + p.kernel_w - 1;
  if (p.pad_top < 0 || p.pad_left < 0 || p.pad_top >= p.kernel_h || p.pad_left >= p.kernel_w || pad_bottom < 0 ||
      pad_right < 0 || pad_bottom >= p.kernel_h || pad_right >= p.kernel_w) {
    return false;
  }
  Conv2dParams t = p;
  t.in_h = p.out_h;
  t.in_w = p.out_w;
  t.in_c = p.out_c;
  t.out_h = p.in_h;
  t.out_w = p.in_w;
  t.out_c = p.in_c;
  t.pad_top = p.kernel_h - 1 - p.pad_top;
  t.pad_left = p.kernel_w - 1 - p.pad_left;
  *out = t;
  return true;
}

Expected<F32Conv2dPacked> prepare_f32_conv2d_backward_data_as_conv(const Conv2dParams& p, const float* filter) {
  Conv2dParams t;
  if (!conv2d_backward_data_as_conv(p, &t)) {
    return invalid_argument("conv2d backward-data as a conv: needs stride 1, no dilation, groups 1, K > 1");
  }
  const size_t kh = static_cast<size_t>(p.kernel_h), kw = static_cast<size_t>(p.kernel_w);
  const size_t ci_n = static_cast<size_t>(p.in_c), co_n = static_cast<size_t>(p.out_c);
  std::vector<float> flipped(co_n * kh * kw * ci_n);
  for (size_t co = 0; co < co_n; ++co) {
    for (size_t ky = 0; ky < kh; ++ky) {
      for (size_t kx = 0; kx < kw; ++kx) {
        const float* src = filter + ((co * kh + ky) * kw + kx) * ci_n;
        for (size_t ci = 0; ci < ci_n; ++ci) {
          flipped[((ci * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)) * co_n + co] = src[ci];
        }
      }
    }
  }
  return prepare_f32_conv2d_fast(t, flipped.data(), nullptr);
}

Expected<F32Conv2dBackwardPlan> prepare_f32_conv2d_backward_fast(const Conv2dParams& p, bool bn_output_grad,
                                                                  bool bn_input) {
  if (p.batch < 1 || p.in_h < 1 || p.in_w < 1 || p.in_c < 1 || p.out_h < 1 || p.out_w < 1 ||
      p.out_c < 1 || p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 ||
      p.dilation_h < 1 || p.dilation_w < 1 || p.groups < 1 || p.in_c % p.groups != 0 ||
      p.out_c % p.groups != 0) {
    return invalid_argument(fmt::format(
        "conv2d backward: bad params (batch {}, in {}x{}x{}, out {}x{}x{}, kernel {}x{}, groups {})",
        p.batch, p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.kernel_h, p.kernel_w,
        p.groups));
  }
  const int eff_kh = (p.kernel_h - 1) * p.dilation_h + 1;
  const int eff_kw = (p.kernel_w - 1) * p.dilation_w + 1;
  if (p.pad_top < 0 || p.pad_left < 0 ||
      (p.out_h - 1) * p.stride_h + eff_kh > p.in_h + 2 * (p.pad_top + eff_kh) ||
      (p.out_w - 1) * p.stride_w + eff_kw > p.in_w + 2 * (p.pad_left + eff_kw)) {
    return invalid_argument("conv2d backward: output size inconsistent with the padding");
  }
  F32Conv2dBackwardPlan plan;
  plan.params = p;
  plan.slices = slices_for(p.batch);
  if (p.groups == p.in_c && p.groups > 1) {
    plan.path = F32Conv2dBackwardPlan::Path::kDepthwise;
    plan.bn_input = bn_input && p.out_c == p.in_c && f32_dwconv_backward_affine_rows(p) > 0;
  } else {
    plan.path = F32Conv2dBackwardPlan::Path::kGemm;
    plan.k = static_cast<size_t>(p.kernel_h) * p.kernel_w * (p.in_c / p.groups);
    plan.direct_1x1 = p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                      p.pad_top == 0 && p.pad_left == 0 && p.in_h == p.out_h && p.in_w == p.out_w;
    if (plan.direct_1x1) {
      // A 1x1 conv's rows are contiguous across the images of a slice: its chunks span images,
      // so that each pass of the filter-gradient GEMM over its partial reduces kDirectRows rows
      // (one K block of f32_gemm_atb_acc), not one 7x7 image's 49.
      plan.rows = kDirectRows;
    } else {
      // Rows per chunk: the im2col block (rows x K) about 256 KiB, rows <= 512 (one K block of
      // the filter-gradient GEMM), a multiple of 8, within one image.
      const size_t rows = std::clamp<size_t>((64 * 1024) / std::max<size_t>(plan.k, 1), 32, 512) / 8 * 8;
      plan.rows = std::min(rows, static_cast<size_t>(p.out_h) * p.out_w);
    }
    // The filter gradient as dY^T X (og, K) where K is the wider side, or where K fills whole
    // 32-column panels anyway: then the slice partials are already the filter's layout and
    // their reduction is a contiguous add, not a transpose (conv_last, K = 320 x og = 1280:
    // backward 15.7 -> 12.8 ms at 2 threads).
    plan.dw_direct = plan.direct_1x1 && (static_cast<size_t>(p.out_c / p.groups) < plan.k || plan.k % 32 == 0);
    plan.bn_output_grad = bn_output_grad && plan.direct_1x1;
    plan.bn_input = bn_input && plan.direct_1x1;
  }
  plan.scratch_elems = layout_for(plan).total + kAlignElems;
  return plan;
}

void f32_conv2d_backward_fast(const F32Conv2dBackwardPlan& plan_in, int batch, const float* input,
                              const float* filter, const float* output_grad, float* input_grad,
                              float* filter_grad, float* bias_grad, float* scratch,
                              ThreadPool* pool, bool assign_input_grad, const F32BnOutputGrad* bn,
                              const BnFusedClamp* bn_input, const F32BnGradSums* bn_sums) {
  if (batch < 1) return;
  F32Conv2dBackwardPlan plan = plan_in;
  plan.params.batch = batch;
  plan.slices = std::min(plan_in.slices, slices_for(batch));
  const Conv2dParams& p = plan.params;
  const Layout l = layout_for(plan);
  float* base = align_ptr(scratch);
  float* shared = base;
  float* slices = base + l.shared;
  const int S = plan.slices;
  const size_t filter_elems = static_cast<size_t>(p.out_c) * p.kernel_h * p.kernel_w * (p.in_c / p.groups);
  const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
  const bool want_dw = filter_grad != nullptr, want_db = bias_grad != nullptr;

  if (plan.path == F32Conv2dBackwardPlan::Path::kGemm) {
    if (want_dw && !plan.direct_1x1) patch_column_offsets(p, reinterpret_cast<size_t*>(shared + l.cols));
    if (input_grad != nullptr) {
      // Pack each group's filter W_g (og, K) as B (k = og, n = K) for dXcol = dY_g * W_g.
      const F32GemmUkernel uk = f32_gemm_acc_ukernel(plan.k);
      const size_t nr = uk.nr, og = static_cast<size_t>(p.out_c / p.groups);
      const size_t panels = (plan.k + nr - 1) / nr;
      for (int g = 0; g < p.groups; ++g) {
        float* dst = shared + static_cast<size_t>(g) * l.w_panels_per_group;
        const float* w = filter + static_cast<size_t>(g) * og * plan.k;
        for (size_t pi = 0; pi < panels; ++pi) {
          const size_t n0 = pi * nr, cols = std::min(nr, plan.k - n0);
          float* panel = dst + pi * nr * og;
          for (size_t kk = 0; kk < og; ++kk) {
            std::memcpy(panel + kk * nr, w + kk * plan.k + n0, cols * sizeof(float));
            std::fill(panel + kk * nr + cols, panel + kk * nr + nr, 0.0f);
          }
        }
      }
    }
  } else {
    // Filter (out_c, kh, kw, 1) -> wt (kh * kw, out_c): rows of channels for vector loops.
    for (int oc = 0; oc < p.out_c; ++oc) {
      for (size_t t = 0; t < taps; ++t) shared[t * p.out_c + oc] = filter[static_cast<size_t>(oc) * taps + t];
    }
  }

  const bool sums_on = plan.bn_input && bn_input != nullptr && bn_sums != nullptr && input_grad != nullptr &&
                       assign_input_grad;
  auto run_slice = [&](size_t s, ThreadPool* inner) {
    const int n0 = static_cast<int>(static_cast<int64_t>(batch) * static_cast<int64_t>(s) / S);
    const int n1 = static_cast<int>(static_cast<int64_t>(batch) * static_cast<int64_t>(s + 1) / S);
    float* slice = slices + s * l.per_slice;
    float* dw = slice + l.dw_at();
    float* db = dw + l.dw;
    if (want_dw) std::fill(dw, dw + filter_elems, 0.0f);
    if (want_db) std::fill(db, db + p.out_c, 0.0f);
    float* xbuf = slice + l.xbuf_at();
    F32BnSumsPartial sums;
    if (sums_on) {
      sums = {bn_sums->mean, bn_sums->invstd, xbuf + l.xbuf, xbuf + l.xbuf + p.in_c};
      std::fill(sums.sdy, sums.sdy + 2 * static_cast<size_t>(p.in_c), 0.0f);
    }
    if (plan.path == F32Conv2dBackwardPlan::Path::kGemm) {
      gemm_slice(plan, l, n0, n1, input, output_grad, input_grad, want_dw, want_db, shared,
                 reinterpret_cast<const size_t*>(shared + l.cols), slice, inner, assign_input_grad, bn,
                 plan.bn_input ? bn_input : nullptr, xbuf, sums_on ? &sums : nullptr);
    } else {
      depthwise_slice(p, n0, n1, input, output_grad, shared, input_grad, want_dw ? dw : nullptr,
                      want_db ? db : nullptr, assign_input_grad, plan.bn_input ? bn_input : nullptr, xbuf,
                      sums_on ? &sums : nullptr);
    }
  };
  if (S == 1 || pool == nullptr || pool->threads() <= 1) {
    for (int s = 0; s < S; ++s) run_slice(static_cast<size_t>(s), S == 1 ? pool : nullptr);
  } else {
    pool->parallel_for(static_cast<size_t>(S), [&](size_t s) { run_slice(s, nullptr); });
  }

  // Ordered reduction of the slice partials: every element adds the slices in slice order, so
  // the result is bitwise the same for any pool. It runs over blocks of filter rows on the
  // pool, and the (K, og) partials are transposed a block of rows at a time, each read of a
  // partial a run of consecutive floats: conv_last's 8 partials of 1.6 MB took 4.4 ms on one
  // thread with a strided read per element.
  auto partial = [&](int s) { return slices + static_cast<size_t>(s) * l.per_slice + l.dw_at(); };
  if (want_dw) {
    const size_t rows_total = static_cast<size_t>(p.out_c);
    const size_t row_elems = filter_elems / rows_total;  // K per output channel
    constexpr size_t kBlock = 16;
    const size_t blocks = (rows_total + kBlock - 1) / kBlock;
    const bool transposed = plan.path == F32Conv2dBackwardPlan::Path::kGemm && !plan.dw_direct;
    const size_t og = static_cast<size_t>(p.out_c / p.groups);
    auto reduce_block = [&](size_t blk) {
      const size_t r0 = blk * kBlock, r1 = std::min(rows_total, r0 + kBlock);
      for (int s = 0; s < S; ++s) {
        const float* dw = partial(s);
        if (plan.path == F32Conv2dBackwardPlan::Path::kDepthwise) {
          // (kh * kw, out_c) partial -> (out_c, kh * kw) rows.
          for (size_t t = 0; t < taps; ++t) {
            for (size_t oc = r0; oc < r1; ++oc) filter_grad[oc * taps + t] += dw[t * p.out_c + oc];
          }
        } else if (!transposed) {  // (og, K) already
          f32_add_inplace((r1 - r0) * row_elems, dw + r0 * row_elems, filter_grad + r0 * row_elems);
        } else {
          // Per group: (K, og) partial -> (og, K) rows of the filter gradient.
          size_t src[kBlock];
          for (size_t oc = r0; oc < r1; ++oc) src[oc - r0] = (oc / og) * plan.k * og + oc % og;
          for (size_t kk = 0; kk < plan.k; ++kk) {
            const float* dk = dw + kk * og;
            float* fk = filter_grad + kk;
            for (size_t j = 0; j < r1 - r0; ++j) fk[(r0 + j) * plan.k] += dk[src[j]];
          }
        }
      }
    };
    if (pool != nullptr && pool->threads() > 1 && filter_elems * static_cast<size_t>(S) >= (size_t{1} << 16)) {
      pool->parallel_for(blocks, reduce_block);
    } else {
      for (size_t blk = 0; blk < blocks; ++blk) reduce_block(blk);
    }
  }
  if (want_db) {
    for (int s = 0; s < S; ++s) {
      const float* db = partial(s) + l.dw;
      for (int c = 0; c < p.out_c; ++c) bias_grad[c] += db[c];
    }
  }
  if (sums_on) {
    for (int c = 0; c < p.in_c; ++c) {
      double a = 0.0, b = 0.0;
      for (int s = 0; s < S; ++s) {
        const float* part = slices + static_cast<size_t>(s) * l.per_slice + l.xbuf_at() + l.xbuf;
        a += part[c];
        b += part[p.in_c + c];
      }
      bn_sums->sum_dy[c] = a;
      bn_sums->sum_dyx[c] = b;
    }
  }
}

}  // namespace pcv::kernels
