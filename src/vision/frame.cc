// frame_to_tensor in two stages, both in "upright" orientation so that a rotated frame and a
// physically rotated picture go through identical arithmetic:
//  A. per plane group (interleaved channels sharing memory): integer box sums of k_x x k_y
//     source pixels over the crop's footprint (vertical sums first, over whole byte spans,
//     which vectorizes), scaled to means and written as floats into per-channel intermediate
//     planes laid out in OUTPUT orientation (rotation = transposed / reversed writes).
//     With k = 1 this is a copy of the footprint only (<= ~(2 * out)^2 samples).
//  B. separable bilinear (half-pixel centers) from the intermediates into the output, with
//     color conversion and normalization / quantization in the same loop.
#include "vision/frame.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace pcv::vision {
namespace {

enum class SourceColor { kRGB, kGray, kYUV };

// Channels interleaved in one memory plane.
struct Group {
  const uint8_t* data = nullptr;
  int width = 0, height = 0;  // in this plane's samples
  ptrdiff_t row_stride = 0;
  int pixel_stride = 1;
  int n_ch = 0;
  int offset[3] = {0, 0, 0};  // byte offset of each channel inside a pixel
  int plane[3] = {0, 1, 2};   // which sampled plane (0..2) each channel feeds
  int sub_x = 1, sub_y = 1;   // subsampling relative to the frame's luma size
};

struct Layout {
  SourceColor color = SourceColor::kRGB;
  int n_groups = 0;
  Group groups[3];
};

Status make_group(const FramePlane& p, int w, int h, int default_ps, int n_ch,
                  std::initializer_list<int> offsets, std::initializer_list<int> planes, int sub,
                  const char* what, Group* g) {
  g->data = p.data;
  g->width = w;
  g->height = h;
  g->pixel_stride = p.pixel_stride_bytes > 0 ? p.pixel_stride_bytes : default_ps;
  g->n_ch = n_ch;
  int max_off = 0, i = 0;
  for (int o : offsets) {
    g->offset[i++] = o;
    max_off = std::max(max_off, o);
  }
  i = 0;
  for (int pl : planes) g->plane[i++] = pl;
  g->sub_x = g->sub_y = sub;
  const ptrdiff_t min_row = static_cast<ptrdiff_t>(w - 1) * g->pixel_stride + max_off + 1;
  g->row_stride = p.row_stride_bytes > 0 ? p.row_stride_bytes : min_row;
  PCV_ENSURE(p.data != nullptr, StatusCode::kInvalidArgument, "frame: {} plane is null", what);
  PCV_ENSURE(g->pixel_stride >= 1 && g->pixel_stride > max_off, StatusCode::kInvalidArgument,
             "frame: {} pixel stride {} too small", what, g->pixel_stride);
  PCV_ENSURE(g->row_stride >= min_row, StatusCode::kInvalidArgument,
             "frame: {} row stride {} < {} bytes needed for {} pixels", what, g->row_stride,
             min_row, w);
  return Status::ok();
}

Status make_layout(const Frame& f, Layout* L) {
  PCV_ENSURE(f.width > 0 && f.height > 0 && f.width <= (1 << 15) && f.height <= (1 << 15),
             StatusCode::kInvalidArgument, "frame: size {}x{} outside [1, 32768]", f.width,
             f.height);
  const int W = f.width, H = f.height, cw = (W + 1) / 2, ch = (H + 1) / 2;
  switch (f.format) {
    case FrameFormat::kRGB:
    case FrameFormat::kRGBA:
    case FrameFormat::kBGRA: {
      L->color = SourceColor::kRGB;
      L->n_groups = 1;
      const int ps = f.format == FrameFormat::kRGB ? 3 : 4;
      if (f.format == FrameFormat::kBGRA) {
        return make_group(f.planes[0], W, H, ps, 3, {2, 1, 0}, {0, 1, 2}, 1, "BGRA",
                          &L->groups[0]);
      }
      return make_group(f.planes[0], W, H, ps, 3, {0, 1, 2}, {0, 1, 2}, 1, "RGB",
                        &L->groups[0]);
    }
    case FrameFormat::kGray:
      L->color = SourceColor::kGray;
      L->n_groups = 1;
      return make_group(f.planes[0], W, H, 1, 1, {0}, {0}, 1, "gray", &L->groups[0]);
    case FrameFormat::kNV21:
    case FrameFormat::kNV12: {
      L->color = SourceColor::kYUV;
      L->n_groups = 2;
      PCV_RETURN_IF_ERROR(make_group(f.planes[0], W, H, 1, 1, {0}, {0}, 1, "Y", &L->groups[0]));
      // Channel order in the group: U then V (sampled planes 1 and 2).
      if (f.format == FrameFormat::kNV21) {
        return make_group(f.planes[1], cw, ch, 2, 2, {1, 0}, {1, 2}, 2, "VU", &L->groups[1]);
      }
      return make_group(f.planes[1], cw, ch, 2, 2, {0, 1}, {1, 2}, 2, "UV", &L->groups[1]);
    }
    case FrameFormat::kI420:
    case FrameFormat::kYUV_420_888: {
      L->color = SourceColor::kYUV;
      PCV_RETURN_IF_ERROR(make_group(f.planes[0], W, H, 1, 1, {0}, {0}, 1, "Y", &L->groups[0]));
      const FramePlane& u = f.planes[1];
      const FramePlane& v = f.planes[2];
      // Android often hands out U and V as two views of one interleaved buffer: read it once.
      if (u.pixel_stride_bytes == 2 && v.pixel_stride_bytes == 2 &&
          u.row_stride_bytes == v.row_stride_bytes && u.data != nullptr && v.data != nullptr) {
        L->n_groups = 2;
        if (v.data == u.data + 1) {
          return make_group(u, cw, ch, 2, 2, {0, 1}, {1, 2}, 2, "UV", &L->groups[1]);
        }
        if (u.data == v.data + 1) {
          return make_group(v, cw, ch, 2, 2, {1, 0}, {1, 2}, 2, "VU", &L->groups[1]);
        }
      }
      L->n_groups = 3;
      PCV_RETURN_IF_ERROR(make_group(u, cw, ch, 1, 1, {0}, {1}, 2, "U", &L->groups[1]));
      return make_group(v, cw, ch, 1, 1, {0}, {2}, 2, "V", &L->groups[2]);
    }
  }
  return invalid_argument("frame: unknown format");
}

// One output axis of one plane: which intermediate samples and weights feed output index o.
struct AxisPlan {
  int k = 1;         // box size along this axis (plane samples)
  int n = 0;         // intermediate samples along this axis
  int start_up = 0;  // first intermediate sample's first plane sample, upright plane coords
  std::vector<int> i0, i1;
  std::vector<float> w1;
};

// Plans one axis. Upright crop [u0, u0 + ulen) (luma units) sampled at `count` outputs;
// the plane has `plane_len` samples along this axis, subsampled by `sub`; `rev` says the
// upright axis runs against the plane's memory axis; `luma_len` is the frame's luma length.
void plan_axis(double u0, double ulen, int count, int sub, int plane_len, int luma_len,
               bool rev, AxisPlan* a) {
  const double off = rev ? plane_len - static_cast<double>(luma_len) / sub : 0.0;
  const double step = ulen / count / sub;  // plane samples per output sample
  a->k = step >= 2.0 ? static_cast<int>(std::floor(step)) : 1;
  if (a->k > plane_len) a->k = plane_len;
  const int k = a->k;
  const double a0 = u0 / sub + off;  // crop start, upright plane coords
  const double len = ulen / sub;
  long g = 0;  // block grid origin (upright plane coords), centered on the crop
  if (k > 1) {
    const long nbc = std::max(1L, static_cast<long>(std::floor(len / k)));
    g = static_cast<long>(std::floor(a0 + len / 2 - nbc * k / 2.0 + 0.5));
    g = std::clamp(g, 0L, static_cast<long>(plane_len - k));
  }
  // r(o): position in block units relative to g; block j covers [g + j k, g + (j + 1) k).
  a->i0.resize(count);
  a->i1.resize(count);
  a->w1.resize(count);
  const double r_first = (a0 + 0.5 * step - g) / k - 0.5;
  const double r_last = (a0 + (count - 0.5) * step - g) / k - 0.5;
  long jlo = static_cast<long>(std::floor(std::min(r_first, r_last)));
  long jhi = static_cast<long>(std::floor(std::max(r_first, r_last))) + 1;
  jlo = std::max(jlo, -(g / k));
  jhi = std::min(jhi, static_cast<long>((plane_len - g) / k) - 1);
  if (jlo > jhi) jlo = jhi;
  a->n = static_cast<int>(jhi - jlo + 1);
  a->start_up = static_cast<int>(g + jlo * k);
  const double last = a->n - 1;
  for (int o = 0; o < count; ++o) {
    double r = (a0 + (o + 0.5) * step - g) / k - 0.5 - jlo;
    r = std::clamp(r, 0.0, last);
    int i = static_cast<int>(r);
    if (i > a->n - 1) i = a->n - 1;
    a->i0[o] = i;
    a->i1[o] = std::min(i + 1, a->n - 1);
    a->w1[o] = static_cast<float>(r - i);
  }
}

struct Scratch {
  std::vector<float> inter[3];  // per sampled plane, output orientation [out_y][out_x]
  std::vector<float> mem[3];    // stage A result in memory orientation, before a transpose
  AxisPlan ax[3], ay[3];        // per sampled plane: output x and output y axes
  std::vector<uint16_t> acc16;
  std::vector<uint32_t> acc32;
  std::vector<float> tmp;
  std::vector<float> px[3];
};

// Box sums of kx samples (pixel stride PS, channel offsets `off`) for nx blocks of one row,
// scaled by `inv`, written to dst[c][o0 + jx * step] (step = -1 for a reversed axis).
// KX > 0 fixes kx at compile time (the common 1..4), KX = 0 reads it from `kx`.
template <int NCH, int PS, int KX, class T>
inline void block_row(const T* src, const int* off, int kx_rt, int nx, float inv,
                      float* const* dst, ptrdiff_t o0, ptrdiff_t step) {
  const int kx = KX > 0 ? KX : kx_rt;
  int o[NCH];
  for (int c = 0; c < NCH; ++c) o[c] = off[c];
  for (int j = 0; j < nx; ++j) {
    const T* p = src + static_cast<ptrdiff_t>(j) * kx * PS;
    uint32_t sum[NCH] = {};
    for (int t = 0; t < kx; ++t) {
      for (int c = 0; c < NCH; ++c) sum[c] += p[t * PS + o[c]];
    }
    for (int c = 0; c < NCH; ++c) dst[c][o0 + j * step] = static_cast<float>(sum[c]) * inv;
  }
}

template <int NCH, int PS, class T>
inline void block_row_k(const T* src, const int* off, int kx, int nx, float inv,
                        float* const* dst, ptrdiff_t o0, ptrdiff_t step) {
  switch (kx) {
    case 1: return block_row<NCH, PS, 1>(src, off, kx, nx, inv, dst, o0, step);
    case 2: return block_row<NCH, PS, 2>(src, off, kx, nx, inv, dst, o0, step);
    case 3: return block_row<NCH, PS, 3>(src, off, kx, nx, inv, dst, o0, step);
    case 4: return block_row<NCH, PS, 4>(src, off, kx, nx, inv, dst, o0, step);
    default: return block_row<NCH, PS, 0>(src, off, kx, nx, inv, dst, o0, step);
  }
}

template <class T>
void emit_row(const T* src, const Group& g, int kx, int nx, float inv, float* const* dst,
              ptrdiff_t o0, ptrdiff_t step) {
  if (g.n_ch == 1 && g.pixel_stride == 1) {
    block_row_k<1, 1>(src, g.offset, kx, nx, inv, dst, o0, step);
  } else if (g.n_ch == 2 && g.pixel_stride == 2) {
    block_row_k<2, 2>(src, g.offset, kx, nx, inv, dst, o0, step);
  } else if (g.n_ch == 3 && g.pixel_stride == 3) {
    block_row_k<3, 3>(src, g.offset, kx, nx, inv, dst, o0, step);
  } else if (g.n_ch == 3 && g.pixel_stride == 4) {
    block_row_k<3, 4>(src, g.offset, kx, nx, inv, dst, o0, step);
  } else {  // generic strides (YUV_420_888 planes)
    const int ps = g.pixel_stride;
    for (int j = 0; j < nx; ++j) {
      const T* p = src + static_cast<ptrdiff_t>(j) * kx * ps;
      for (int c = 0; c < g.n_ch; ++c) {
        uint32_t sum = 0;
        for (int t = 0; t < kx; ++t) sum += p[t * ps + g.offset[c]];
        dst[c][o0 + j * step] = static_cast<float>(sum) * inv;
      }
    }
  }
}

// Stage A for one group, into dst[c] laid out [ny][nx] in memory orientation, with rev_x /
// rev_y applied (so the rows and columns run in upright order).
template <class Acc>
void reduce_group(const Group& g, const AxisPlan& plx, bool rev_x, const AxisPlan& ply,
                  bool rev_y, float* const* dst, std::vector<Acc>* acc_buf) {
  const int kx = plx.k, ky = ply.k, nx = plx.n, ny = ply.n, ps = g.pixel_stride;
  // Memory-order starts of the footprint (plane samples).
  const int start_x = rev_x ? g.width - plx.start_up - nx * kx : plx.start_up;
  const int start_y = rev_y ? g.height - ply.start_up - ny * ky : ply.start_up;
  int max_off = 0;
  for (int c = 0; c < g.n_ch; ++c) max_off = std::max(max_off, g.offset[c]);
  const size_t span = static_cast<size_t>(nx * kx - 1) * ps + max_off + 1;
  const float inv = 1.0f / static_cast<float>(kx * ky);
  if (ky > 1) acc_buf->resize(span);
  Acc* acc = acc_buf->data();
  for (int jsy = 0; jsy < ny; ++jsy) {
    const int jy = rev_y ? ny - 1 - jsy : jsy;
    const ptrdiff_t o0 = static_cast<ptrdiff_t>(jy) * nx + (rev_x ? nx - 1 : 0);
    const ptrdiff_t step = rev_x ? -1 : 1;
    const uint8_t* row0 = g.data + static_cast<ptrdiff_t>(start_y + jsy * ky) * g.row_stride +
                          static_cast<ptrdiff_t>(start_x) * ps;
    if (ky == 1) {
      emit_row<uint8_t>(row0, g, kx, nx, inv, dst, o0, step);
      continue;
    }
    for (size_t i = 0; i < span; ++i) acc[i] = row0[i];
    for (int t = 1; t < ky; ++t) {
      const uint8_t* r = row0 + static_cast<ptrdiff_t>(t) * g.row_stride;
      for (size_t i = 0; i < span; ++i) acc[i] = static_cast<Acc>(acc[i] + r[i]);
    }
    emit_row<Acc>(acc, g, kx, nx, inv, dst, o0, step);
  }
}

// dst[x][y] = src[y][x] for a rows x cols source, in cache-sized tiles.
void transpose(const float* src, int rows, int cols, float* dst) {
  constexpr int kTile = 16;
  for (int y0 = 0; y0 < rows; y0 += kTile) {
    const int y1 = std::min(rows, y0 + kTile);
    for (int x0 = 0; x0 < cols; x0 += kTile) {
      const int x1 = std::min(cols, x0 + kTile);
      for (int x = x0; x < x1; ++x) {
        for (int y = y0; y < y1; ++y) {
          dst[static_cast<size_t>(x) * rows + y] = src[static_cast<size_t>(y) * cols + x];
        }
      }
    }
  }
}

// Round half away from zero (TFLite's rounding) by truncation; |v| is small (clamped).
inline int round_half_away(float v) { return static_cast<int>(v + (v >= 0.f ? 0.5f : -0.5f)); }

struct Writer {
  TensorType type;
  int out_c;
  float mul[3], add[3];  // value = pixel * mul + add (already divided by scale, + zero point)
  float lo, hi;
  SourceColor src;
  ColorOrder order;
};

// Converts n pixels (three sampled planes) and writes them at `base` + elem_offset.
template <SourceColor SRC, ColorOrder ORDER, TensorType TYPE>
void write_pixels_t(const Writer& w, const float* p0, const float* p1, const float* p2, int n,
                    void* base, size_t elem_offset) {
  using Out = std::conditional_t<TYPE == TensorType::kFloat32, float,
                                 std::conditional_t<TYPE == TensorType::kInt8, int8_t, uint8_t>>;
  Out* out = static_cast<Out*>(base) + elem_offset;
  constexpr int C = ORDER == ColorOrder::kGray ? 1 : 3;
  const float m0 = w.mul[0], m1 = w.mul[1], m2 = w.mul[2];
  const float a0 = w.add[0], a1 = w.add[1], a2 = w.add[2];
  const float lo = w.lo, hi = w.hi;
  for (int i = 0; i < n; ++i) {
    float r, g, b;
    if constexpr (SRC == SourceColor::kYUV) {
      const float y = p0[i], u = p1[i] - 128.f, v = p2[i] - 128.f;
      r = std::min(std::max(y + 1.402f * v, 0.f), 255.f);
      g = std::min(std::max(y - 0.344136f * u - 0.714136f * v, 0.f), 255.f);
      b = std::min(std::max(y + 1.772f * u, 0.f), 255.f);
    } else if constexpr (SRC == SourceColor::kGray) {
      r = g = b = p0[i];
    } else {
      r = p0[i];
      g = p1[i];
      b = p2[i];
    }
    float c[3];
    if constexpr (ORDER == ColorOrder::kGray) {
      c[0] = SRC == SourceColor::kGray ? r : 0.299f * r + 0.587f * g + 0.114f * b;
    } else if constexpr (ORDER == ColorOrder::kBGR) {
      c[0] = b;
      c[1] = g;
      c[2] = r;
    } else {
      c[0] = r;
      c[1] = g;
      c[2] = b;
    }
    float v[3] = {c[0] * m0 + a0, C > 1 ? c[1] * m1 + a1 : 0.f, C > 2 ? c[2] * m2 + a2 : 0.f};
    for (int k = 0; k < C; ++k) {
      if constexpr (TYPE == TensorType::kFloat32) {
        out[static_cast<size_t>(i) * C + k] = v[k];
      } else {
        out[static_cast<size_t>(i) * C + k] =
            static_cast<Out>(round_half_away(std::min(std::max(v[k], lo), hi)));
      }
    }
  }
}

using WriteFn = void (*)(const Writer&, const float*, const float*, const float*, int, void*,
                         size_t);

template <SourceColor SRC, ColorOrder ORDER>
WriteFn pick_type(TensorType t) {
  switch (t) {
    case TensorType::kFloat32: return write_pixels_t<SRC, ORDER, TensorType::kFloat32>;
    case TensorType::kInt8: return write_pixels_t<SRC, ORDER, TensorType::kInt8>;
    case TensorType::kUInt8: return write_pixels_t<SRC, ORDER, TensorType::kUInt8>;
  }
  return nullptr;
}
template <SourceColor SRC>
WriteFn pick_order(ColorOrder o, TensorType t) {
  switch (o) {
    case ColorOrder::kRGB: return pick_type<SRC, ColorOrder::kRGB>(t);
    case ColorOrder::kBGR: return pick_type<SRC, ColorOrder::kBGR>(t);
    case ColorOrder::kGray: return pick_type<SRC, ColorOrder::kGray>(t);
  }
  return nullptr;
}
WriteFn pick_writer(const Writer& w) {
  switch (w.src) {
    case SourceColor::kRGB: return pick_order<SourceColor::kRGB>(w.order, w.type);
    case SourceColor::kGray: return pick_order<SourceColor::kGray>(w.order, w.type);
    case SourceColor::kYUV: return pick_order<SourceColor::kYUV>(w.order, w.type);
  }
  return nullptr;
}

}  // namespace

Status frame_to_tensor(const Frame& frame, const FrameTransform& t, const Preprocess& pre,
                       OutputTarget out) {
  PCV_RETURN_IF_ERROR(validate(pre));
  Layout L;
  PCV_RETURN_IF_ERROR(make_layout(frame, &L));
  const int out_c = pre.out_channels();
  PCV_ENSURE(out.data != nullptr && out.capacity_elems >= pre.out_elems(),
             StatusCode::kInvalidArgument, "frame_to_tensor: target holds {} elements, needs {}",
             out.capacity_elems, pre.out_elems());
  Writer w;
  w.type = out.type;
  w.out_c = out_c;
  w.src = L.color;
  w.order = pre.color;
  w.lo = -1e30f;
  w.hi = 1e30f;
  float qscale = 1.f, qzero = 0.f;
  if (out.type != TensorType::kFloat32) {
    PCV_ENSURE(out.scale > 0.f && std::isfinite(out.scale), StatusCode::kInvalidArgument,
               "frame_to_tensor: quantization scale {} must be > 0", out.scale);
    const int lo = out.type == TensorType::kInt8 ? -128 : 0;
    const int hi = out.type == TensorType::kInt8 ? 127 : 255;
    PCV_ENSURE(out.zero_point >= lo && out.zero_point <= hi, StatusCode::kInvalidArgument,
               "frame_to_tensor: zero point {} outside [{}, {}]", out.zero_point, lo, hi);
    qscale = out.scale;
    qzero = static_cast<float>(out.zero_point);
    w.lo = static_cast<float>(lo);
    w.hi = static_cast<float>(hi);
  }
  for (int c = 0; c < out_c; ++c) {
    w.mul[c] = 1.f / (pre.std[c] * qscale);
    w.add[c] = -pre.mean[c] / (pre.std[c] * qscale) + qzero;
  }

  const bool swap = t.rotation == Rotation::k90 || t.rotation == Rotation::k270;
  const int up_w = swap ? frame.height : frame.width;
  const int up_h = swap ? frame.width : frame.height;
  if (t.roi_w > 0 || t.roi_h > 0) {
    PCV_ENSURE(t.roi_w > 0 && t.roi_h > 0 && t.roi_x >= 0 && t.roi_y >= 0 &&
                   t.roi_x + t.roi_w <= up_w && t.roi_y + t.roi_h <= up_h,
               StatusCode::kInvalidArgument,
               "frame_to_tensor: ROI {}x{} at ({}, {}) outside the upright frame {}x{}", t.roi_w,
               t.roi_h, t.roi_x, t.roi_y, up_w, up_h);
  }
  const ResizePlan plan = plan_resize(up_h, up_w, pre, t.roi_x, t.roi_y, t.roi_w, t.roi_h);

  // Output x runs along memory axis (x if !swap else y), reversed per rotation and mirror.
  bool rev_out_x = false, rev_out_y = false;
  switch (t.rotation) {
    case Rotation::k0: rev_out_x = t.mirror; rev_out_y = false; break;
    case Rotation::k90: rev_out_x = !t.mirror; rev_out_y = false; break;
    case Rotation::k180: rev_out_x = !t.mirror; rev_out_y = true; break;
    case Rotation::k270: rev_out_x = t.mirror; rev_out_y = true; break;
  }

  thread_local Scratch s;
  const WriteFn write_pixels = pick_writer(w);
  for (int gi = 0; gi < L.n_groups; ++gi) {
    const Group& g = L.groups[gi];
    // Memory axes of this group -> output axes.
    const int mem_len_for_out_x = swap ? g.height : g.width;
    const int mem_len_for_out_y = swap ? g.width : g.height;
    const int sub_out_x = swap ? g.sub_y : g.sub_x;
    const int sub_out_y = swap ? g.sub_x : g.sub_y;
    const int p = g.plane[0];
    AxisPlan& ax = s.ax[p];
    AxisPlan& ay = s.ay[p];
    plan_axis(plan.src_x, plan.src_w, plan.dst_w, sub_out_x, mem_len_for_out_x, up_w,
              rev_out_x, &ax);
    plan_axis(plan.src_y, plan.src_h, plan.dst_h, sub_out_y, mem_len_for_out_y, up_h,
              rev_out_y, &ay);
    float* dst[3] = {nullptr, nullptr, nullptr};
    for (int c = 0; c < g.n_ch; ++c) {
      const int pc = g.plane[c];
      if (c > 0) {
        s.ax[pc] = ax;
        s.ay[pc] = ay;
      }
      s.inter[pc].resize(static_cast<size_t>(ax.n) * ay.n);
      if (swap) s.mem[pc].resize(s.inter[pc].size());
      dst[c] = swap ? s.mem[pc].data() : s.inter[pc].data();
    }
    const AxisPlan& mem_x = swap ? ay : ax;
    const AxisPlan& mem_y = swap ? ax : ay;
    const bool rev_mem_x = swap ? rev_out_y : rev_out_x;
    const bool rev_mem_y = swap ? rev_out_x : rev_out_y;
    if (mem_y.k <= 257) {
      reduce_group<uint16_t>(g, mem_x, rev_mem_x, mem_y, rev_mem_y, dst, &s.acc16);
    } else {
      reduce_group<uint32_t>(g, mem_x, rev_mem_x, mem_y, rev_mem_y, dst, &s.acc32);
    }
    if (swap) {  // memory [mem_y][mem_x] = [out_x][out_y] -> [out_y][out_x]
      for (int c = 0; c < g.n_ch; ++c) {
        const int pc = g.plane[c];
        transpose(s.mem[pc].data(), mem_y.n, mem_x.n, s.inter[pc].data());
      }
    }
  }

  // Letterbox border.
  if (plan.dst_w < pre.out_w || plan.dst_h < pre.out_h) {
    std::vector<float> pad(static_cast<size_t>(pre.out_w), pre.pad_value);
    const float* pp = pad.data();
    const float* yuv_pad[3];
    std::vector<float> pad_uv;
    if (L.color == SourceColor::kYUV) {  // a gray pad value is Y = v, U = V = 128
      pad_uv.assign(static_cast<size_t>(pre.out_w), 128.f);
      yuv_pad[1] = yuv_pad[2] = pad_uv.data();
    } else {
      yuv_pad[1] = yuv_pad[2] = pp;
    }
    for (int y = 0; y < pre.out_h; ++y) {
      write_pixels(w, pp, yuv_pad[1], yuv_pad[2], pre.out_w, out.data,
                   static_cast<size_t>(y) * pre.out_w * out_c);
    }
  }

  // Stage B.
  const int n_planes = L.color == SourceColor::kRGB || L.color == SourceColor::kYUV ? 3 : 1;
  for (int p = 0; p < n_planes; ++p) s.px[p].resize(plan.dst_w);
  for (int oy = 0; oy < plan.dst_h; ++oy) {
    for (int p = 0; p < n_planes; ++p) {
      const AxisPlan& ax = s.ax[p];
      const AxisPlan& ay = s.ay[p];
      const float wy = ay.w1[oy];
      const float* r0 = s.inter[p].data() + static_cast<size_t>(ay.i0[oy]) * ax.n;
      const float* r1 = s.inter[p].data() + static_cast<size_t>(ay.i1[oy]) * ax.n;
      s.tmp.resize(ax.n);
      float* tmp = s.tmp.data();
      for (int x = 0; x < ax.n; ++x) tmp[x] = r0[x] + (r1[x] - r0[x]) * wy;
      float* dst = s.px[p].data();
      const int* i0 = ax.i0.data();
      const int* i1 = ax.i1.data();
      const float* w1 = ax.w1.data();
      for (int ox = 0; ox < plan.dst_w; ++ox) {
        const float a = tmp[i0[ox]], b = tmp[i1[ox]];
        dst[ox] = a + (b - a) * w1[ox];
      }
    }
    const float* p0 = s.px[0].data();
    const float* p1 = n_planes == 3 ? s.px[1].data() : p0;
    const float* p2 = n_planes == 3 ? s.px[2].data() : p0;
    write_pixels(w, p0, p1, p2, plan.dst_w, out.data,
                 (static_cast<size_t>(plan.dst_y + oy) * pre.out_w + plan.dst_x) * out_c);
  }
  return Status::ok();
}

Frame frame_from_image(const ImageView& img) {
  Frame f;
  f.width = img.width;
  f.height = img.height;
  f.format = img.channels == 1   ? FrameFormat::kGray
             : img.channels == 4 ? FrameFormat::kRGBA
                                 : FrameFormat::kRGB;
  f.planes[0].data = img.data;
  f.planes[0].row_stride_bytes = static_cast<int>(img.row_stride_bytes);
  f.planes[0].pixel_stride_bytes = img.channels;
  return f;
}

Status image_to_tensor(const ImageView& img, const Preprocess& pre, OutputTarget out,
                       const FrameTransform& transform) {
  PCV_ENSURE(img.channels == 1 || img.channels == 3 || img.channels == 4,
             StatusCode::kInvalidArgument, "image_to_tensor: {} channels (need 1, 3 or 4)",
             img.channels);
  return frame_to_tensor(frame_from_image(img), transform, pre, out);
}

Expected<Image> resize_image(const ImageView& img, int out_h, int out_w) {
  Preprocess pre;
  pre.out_h = out_h;
  pre.out_w = out_w;
  pre.mode = ResizeMode::kStretch;
  pre.color = img.channels == 1 ? ColorOrder::kGray : ColorOrder::kRGB;
  std::vector<float> buf(pre.out_elems());
  PCV_RETURN_IF_ERROR(image_to_tensor(img, pre, OutputTarget::float32(buf.data(), buf.size())));
  Image out(out_h, out_w, pre.out_channels());
  for (size_t i = 0; i < buf.size(); ++i) {
    out.data()[i] = static_cast<uint8_t>(std::clamp(buf[i] + 0.5f, 0.f, 255.f));
  }
  return out;
}

}  // namespace pcv::vision
