// Fast f32 conv2d: path choice, weight packing, im2col tiling and threading (see conv_fast.h).
#include "kernels/conv/conv_fast.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/thread_pool.h"
#include "kernels/common/stream_fence.h"
#include "kernels/conv/winograd.h"
#include "kernels/pool/pool.h"

namespace pcv::kernels {

namespace {

constexpr size_t kDwChannelAlign = 16;  // widest vector (AVX-512) in floats

size_t gemm_k(const Conv2dParams& p) {
  return static_cast<size_t>(p.kernel_h) * p.kernel_w * (p.in_c / p.groups);
}

Status validate(const Conv2dParams& p) {
  const bool positive = p.batch > 0 && p.in_h > 0 && p.in_w > 0 && p.in_c > 0 && p.out_h > 0 &&
                        p.out_w > 0 && p.out_c > 0 && p.kernel_h > 0 && p.kernel_w > 0 &&
                        p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 &&
                        p.dilation_w > 0 && p.groups > 0 && p.pad_top >= 0 && p.pad_left >= 0;
  if (!positive) {
    return invalid_argument(fmt::format(
        "conv2d: sizes must be positive: batch={} in={}x{}x{} out={}x{}x{} kernel={}x{} "
        "stride={}x{} dilation={}x{} pad={},{} groups={}",
        p.batch, p.in_h, p.in_w, p.in_c, p.out_h, p.out_w, p.out_c, p.kernel_h, p.kernel_w,
        p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_left, p.groups));
  }
  if (p.in_c % p.groups != 0 || p.out_c % p.groups != 0) {
    return invalid_argument(fmt::format("conv2d: groups={} must divide in_c={} and out_c={}",
                                        p.groups, p.in_c, p.out_c));
  }
  return Status::ok();
}

}  // namespace

size_t conv_slots(const ThreadPool* pool, size_t items) {
  if (pool == nullptr || !pool->multi_threaded()) return 1;
  const size_t threads = static_cast<size_t>(pool->threads());
  return items < 2 * threads ? 1 : threads;
}

void run_conv_slots(ThreadPool* pool, size_t slots, void (*fn)(void* ctx, size_t slot), void* ctx) {
  if (slots > 1) {
    pool->parallelize_1d(fn, ctx, slots);
  } else {
    fn(ctx, 0);
  }
}

F32DwconvRowArgs depthwise_row_args(const F32Conv2dPacked& pk, const float* rows, int in_row0, float* output, int oy,
                                    float min, float max) {
  const Conv2dParams& p = pk.params;
  F32DwconvRowArgs a;
  a.input = rows;
  a.in_row0 = in_row0;
  a.output = output;
  a.weights = reinterpret_cast<const float*>(pk.dw_weights.data());
  a.c = static_cast<size_t>(p.out_c);
  a.c_stride = pk.dw_c_stride;
  a.in_h = p.in_h;
  a.in_w = p.in_w;
  a.out_w = p.out_w;
  a.oy = oy;
  a.kernel_h = p.kernel_h;
  a.kernel_w = p.kernel_w;
  a.stride_h = p.stride_h;
  a.stride_w = p.stride_w;
  a.dilation_h = p.dilation_h;
  a.dilation_w = p.dilation_w;
  a.pad_top = p.pad_top;
  a.pad_left = p.pad_left;
  a.min = min;
  a.max = max;
  return a;
}

// kDirectRows takes layers whose kernel row is at most this many floats (kernel_w * in_c).
constexpr int kDirectMaxRowFloats = 16;

bool winograd_applies(const Conv2dParams& p) {
  return p.kernel_h == 3 && p.kernel_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 &&
         p.dilation_w == 1 && p.groups == 1 && p.in_c >= 8 && p.out_c >= 8;
}

size_t winograd_tiles_w(const Conv2dParams& p) { return static_cast<size_t>((p.out_w + 1) / 2); }

size_t winograd_tiles_per_image(const Conv2dParams& p) {
  return static_cast<size_t>((p.out_h + 1) / 2) * winograd_tiles_w(p);
}

// One slot's Winograd scratch: the block's 16 transformed inputs (tiles x in_c), then its 16
// products (tiles x out_c).
size_t winograd_slot_floats(const F32Conv2dPacked& pk) {
  return 16 * pk.winograd_tiles * static_cast<size_t>(pk.params.in_c + pk.params.out_c);
}

// One kDirectRows slot's scratch: MR im2col rows for border pixels, then (pooling) two output rows.
size_t direct_slot_floats(const F32Conv2dPacked& pk, bool max_pool_2x2) {
  const Conv2dParams& p = pk.params;
  const size_t pair = max_pool_2x2 ? 2 * static_cast<size_t>(p.out_w) * static_cast<size_t>(p.out_c) : 0;
  return pk.group_gemm[0].ukernel.mr * gemm_k(p) + pair;
}

size_t F32Conv2dPacked::scratch_bytes(int threads, bool max_pool_2x2) const {
  const size_t slots = static_cast<size_t>(std::max(threads, 1));
  if (path == Path::kDirectRows) return slots * direct_slot_floats(*this, max_pool_2x2) * sizeof(float);
  if (path == Path::kWinograd) {
    return slots * winograd_slot_floats(*this) * sizeof(float);
  }
  if (path != Path::kIm2colGemm) return 0;
  return slots * im2col_rows * gemm_k(params) * sizeof(float);
}

Expected<F32Conv2dPacked> prepare_f32_conv2d_fast(const Conv2dParams& params,
                                                  const float* filter, const float* bias, F32ConvAlgo algo) {
  PCV_RETURN_IF_ERROR(validate(params));
  if (filter == nullptr) return invalid_argument("conv2d: filter is null");
  const Conv2dParams& p = params;
  F32Conv2dPacked out;
  out.params = p;

  if (p.groups == p.in_c && p.groups == p.out_c) {
    out.path = F32Conv2dPacked::Path::kDepthwise;
    const size_t c = static_cast<size_t>(p.out_c);
    const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
    out.dw_c_stride = (c + kDwChannelAlign - 1) / kDwChannelAlign * kDwChannelAlign;
    if (!out.dw_weights.resize((1 + taps) * out.dw_c_stride * sizeof(float))) {
      return out_of_memory("conv2d: depthwise weights");
    }
    float* w = reinterpret_cast<float*>(out.dw_weights.data());  // zero-filled
    if (bias != nullptr) std::memcpy(w, bias, c * sizeof(float));
    for (size_t ch = 0; ch < c; ++ch) {
      for (size_t t = 0; t < taps; ++t) w[(1 + t) * out.dw_c_stride + ch] = filter[ch * taps + t];
    }
    const F32DwconvUkernels& uk = f32_dwconv_ukernels();
    out.isa = uk.isa;
    if (p.kernel_h == 3 && p.kernel_w == 3) {
      out.dw_row = uk.k3x3;
      out.ukernel_name = "f32_dwconv_minmax_3x3__hwy";
    } else if (p.kernel_h == 5 && p.kernel_w == 5) {
      out.dw_row = uk.k5x5;
      out.ukernel_name = "f32_dwconv_minmax_5x5__hwy";
    } else {
      out.dw_row = uk.any;
      out.ukernel_name = "f32_dwconv_minmax_kxk__hwy";
    }
    return out;
  }

  if (algo == F32ConvAlgo::kAuto && winograd_applies(p)) {
    out.path = F32Conv2dPacked::Path::kWinograd;
    const size_t ci = static_cast<size_t>(p.in_c), co = static_cast<size_t>(p.out_c);
    std::vector<float> u(16 * ci * co);
    f32_winograd_filter_transform(ci, co, filter, u.data());
    out.winograd_u.reserve(16);
    for (size_t xi = 0; xi < 16; ++xi) {
      auto packed = pack_f32_gemm_b(ci, co, u.data() + xi * ci * co, co, nullptr, F32GemmBLayout::kKN);
      if (!packed) return packed.status().with_context("conv2d winograd");
      out.winograd_u.push_back(std::move(packed).value());
    }
    if (bias != nullptr) {
      if (!out.winograd_bias.resize(co * sizeof(float))) return out_of_memory("conv2d: winograd bias");
      std::memcpy(out.winograd_bias.data(), bias, co * sizeof(float));
    }
    // A block's transformed inputs and products (16 x tiles x (in_c + out_c) floats) within
    // ~256 KiB, so that they stay in L2 between the transforms and the GEMMs (measured on
    // simple_cnn's convs at batch 1 and 32: 512 KiB and 1 MiB blocks ran up to 20% slower);
    // a multiple of the GEMM's rows.
    const size_t mr = out.winograd_u[0].ukernel.mr;
    size_t tiles = std::clamp<size_t>(4096 / (ci + co), mr, 256);
    out.winograd_tiles = std::max(mr, tiles / mr * mr);
    out.ukernel_name = "f32_conv_winograd_2x2_3x3__hwy";  // transforms + the GEMM microkernel
    out.isa = out.winograd_u[0].isa;
    return out;
  }

  const bool pointwise = p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 &&
                         p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 &&
                         p.groups == 1 && p.out_h == p.in_h && p.out_w == p.in_w;
  const bool direct = !pointwise && p.groups == 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
                      p.kernel_w * p.in_c <= kDirectMaxRowFloats;
  out.path = pointwise ? F32Conv2dPacked::Path::kGemm1x1
             : direct  ? F32Conv2dPacked::Path::kDirectRows
                       : F32Conv2dPacked::Path::kIm2colGemm;
  const size_t k = gemm_k(p);
  const size_t cog = static_cast<size_t>(p.out_c / p.groups);
  out.group_gemm.reserve(static_cast<size_t>(p.groups));
  for (int g = 0; g < p.groups; ++g) {
    // OHWI rows of this group's output channels are B^T (N = cog, K = kh*kw*cig).
    auto packed = pack_f32_gemm_b(k, cog, filter + g * cog * k, k,
                                  bias != nullptr ? bias + g * cog : nullptr,
                                  F32GemmBLayout::kNK);
    if (!packed) return packed.status().with_context("conv2d");
    out.group_gemm.push_back(std::move(packed).value());
  }
  out.ukernel_name = out.group_gemm[0].ukernel.name;
  out.isa = out.group_gemm[0].isa;
  if (out.path == F32Conv2dPacked::Path::kIm2colGemm) {
    // A tile of ~128 KiB of im2col rows stays in L2 while the GEMM sweeps it; a multiple of MR.
    const size_t mr = out.group_gemm[0].ukernel.mr;
    size_t rows = std::clamp<size_t>(32768 / k, 32, 512);
    rows = std::max(mr, rows / mr * mr);
    const size_t pixels = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
    out.im2col_rows = std::min(rows, (pixels + mr - 1) / mr * mr);
  }
  return out;
}

namespace {

// Copies n floats; the common small sizes (3-channel first layers: 3, 9 taps x channels) as
// fixed-size copies the compiler inlines, instead of a library call per tap.
inline void copy_floats(float* dst, const float* src, size_t n) {
  switch (n) {
    case 3: std::memcpy(dst, src, 3 * sizeof(float)); return;
    case 4: std::memcpy(dst, src, 4 * sizeof(float)); return;
    case 6: std::memcpy(dst, src, 6 * sizeof(float)); return;
    case 8: std::memcpy(dst, src, 8 * sizeof(float)); return;
    case 9: std::memcpy(dst, src, 9 * sizeof(float)); return;
    case 12: std::memcpy(dst, src, 12 * sizeof(float)); return;
    case 15: std::memcpy(dst, src, 15 * sizeof(float)); return;
    case 16: std::memcpy(dst, src, 16 * sizeof(float)); return;
    default: std::memcpy(dst, src, n * sizeof(float)); return;
  }
}

// Rows [r0, r0 + rows) of the im2col matrix of group g: row = output pixel (n, oy, ox),
// columns (ky, kx, ci) like the OHWI filter. Padding taps are zeros. With one group and no
// horizontal dilation the kernel_w taps of a row are adjacent NHWC pixels: one copy of
// kernel_w * in_c floats when they are all inside the image.
void im2col(const Conv2dParams& p, const float* input, int g, size_t r0, size_t rows,
            float* col) {
  const size_t cig = static_cast<size_t>(p.in_c / p.groups);
  const size_t k = gemm_k(p);
  const size_t hw = static_cast<size_t>(p.out_h) * p.out_w;
  const bool rows_contiguous = p.groups == 1 && p.dilation_w == 1;
  const size_t row_floats = static_cast<size_t>(p.kernel_w) * cig;
  for (size_t r = 0; r < rows; ++r) {
    const size_t pix = r0 + r;
    const size_t n = pix / hw;
    const int oy = static_cast<int>(pix % hw) / p.out_w;
    const int ox = static_cast<int>(pix % hw) % p.out_w;
    const int ix0 = ox * p.stride_w - p.pad_left;
    const bool x_inside = ix0 >= 0 && ix0 + (p.kernel_w - 1) * p.dilation_w < p.in_w;
    float* dst = col + r * k;
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
      if (iy < 0 || iy >= p.in_h) {
        std::memset(dst, 0, row_floats * sizeof(float));
        dst += row_floats;
        continue;
      }
      const float* in_row = input + (n * p.in_h + iy) * p.in_w * p.in_c + static_cast<size_t>(g) * cig;
      if (rows_contiguous && x_inside) {
        copy_floats(dst, in_row + static_cast<size_t>(ix0) * p.in_c, row_floats);
        dst += row_floats;
        continue;
      }
      for (int kx = 0; kx < p.kernel_w; ++kx, dst += cig) {
        const int ix = ix0 + kx * p.dilation_w;
        if (ix < 0 || ix >= p.in_w) {
          std::memset(dst, 0, cig * sizeof(float));
        } else {
          copy_floats(dst, in_row + static_cast<size_t>(ix) * p.in_c, cig);
        }
      }
    }
  }
}

struct Im2colTask {
  const F32Conv2dPacked* packed;
  const float* input;
  float* output;
  float* scratch;
  float min, max;
  size_t tiles, slots;
};

void im2col_gemm_tile(const Im2colTask& t, size_t tile, float* col, ThreadPool* pool) {
  const F32Conv2dPacked& pk = *t.packed;
  const Conv2dParams& p = pk.params;
  const size_t pixels = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
  const size_t r0 = tile * pk.im2col_rows;
  const size_t rows = std::min(pk.im2col_rows, pixels - r0);
  const size_t cog = static_cast<size_t>(p.out_c / p.groups);
  for (int g = 0; g < p.groups; ++g) {
    im2col(p, t.input, g, r0, rows, col);
    f32_gemm_packed(rows, col, gemm_k(p), pk.group_gemm[static_cast<size_t>(g)],
                    t.output + r0 * p.out_c + static_cast<size_t>(g) * cog,
                    static_cast<size_t>(p.out_c), t.min, t.max, pool);
  }
}

// Task `slot` does its contiguous share of the tiles with its own scratch slice.
void im2col_gemm_slot(void* ctx, size_t slot) {
  const Im2colTask& t = *static_cast<const Im2colTask*>(ctx);
  float* col = t.scratch + slot * t.packed->im2col_rows * gemm_k(t.packed->params);
  const SlotRange range = slot_range(t.tiles, slot, t.slots);
  for (size_t tile = range.begin; tile < range.end; ++tile) im2col_gemm_tile(t, tile, col, nullptr);
}

// ---- kDirectRows ----
struct DirectTask {
  const F32Conv2dPacked* packed;
  const float* input;
  float* output;
  float* scratch;  // per slot: MR im2col rows (+ two output rows with max_pool_2x2)
  float min, max;
  size_t slots;
  bool max_pool_2x2 = false;  // output is the 2x2-pooled conv output
};

// Output row `row` (= n * out_h + oy) of a kDirectRows conv into `out_row`, with `col` for
// border pixels.
void direct_row(const DirectTask& t, size_t row, float* col, float* out_row) {
  const F32Conv2dPacked& pk = *t.packed;
  const Conv2dParams& p = pk.params;
  const F32GemmPackedB& b = pk.group_gemm[0];
  const F32GemmUkernel& uk = b.ukernel;
  const size_t k = gemm_k(p), mr = uk.mr, nr = uk.nr;
  const size_t cin = static_cast<size_t>(p.in_c), cout = static_cast<size_t>(p.out_c);
  const size_t row_k = static_cast<size_t>(p.kernel_w) * cin;  // one K block per kernel row
  const size_t n = row / static_cast<size_t>(p.out_h);
  const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
  const float* image = t.input + n * p.in_h * p.in_w * cin;
  int ky_begin = 0, ky_end = p.kernel_h;
  const int iy0 = oy * p.stride_h - p.pad_top;
  while (ky_begin < ky_end && iy0 + ky_begin < 0) ++ky_begin;
  while (ky_end > ky_begin && iy0 + ky_end - 1 >= p.in_h) --ky_end;
  // Pixels whose kernel_w taps are all inside the row: [lo, hi).
  const int lo = std::min(p.out_w, (p.pad_left + p.stride_w - 1) / p.stride_w);
  const int last = p.in_w - p.kernel_w + p.pad_left;  // ox * stride_w <= last
  const int hi = last < 0 ? lo : std::max(lo, std::min(p.out_w, last / p.stride_w + 1));
  const size_t lda = static_cast<size_t>(p.stride_w) * cin;
  for (size_t panel = 0; panel < b.panels(); ++panel) {
    const float* w = b.panel(panel);
    const size_t n0 = panel * nr;
    const size_t ncols = std::min(nr, cout - n0);
    for (int ox = lo; ox < hi; ox += static_cast<int>(mr)) {
      const size_t rows = std::min(mr, static_cast<size_t>(hi - ox));
      float* c = out_row + static_cast<size_t>(ox) * cout + n0;
      const float* a0 = image + (static_cast<size_t>(ox) * p.stride_w - p.pad_left) * cin;
      if (ky_begin == ky_end) {  // every tap in the padding: bias only (as the zero im2col row)
        uk.fn(rows, ncols, 0, a0, lda, w + nr, w, c, cout, t.min, t.max, kF32GemmInitBias | kF32GemmClamp, nullptr, 0,
              nullptr);
        continue;
      }
      for (int ky = ky_begin; ky < ky_end; ++ky) {
        const uint32_t flags = (ky == ky_begin ? kF32GemmInitBias : 0u) | (ky + 1 == ky_end ? kF32GemmClamp : 0u);
        const float* a = a0 + static_cast<size_t>(iy0 + ky) * p.in_w * cin;
        // A block of kernel rows with taps in the padding contributes exact zeros: skipped.
        uk.fn(rows, ncols, row_k, a, lda, w + nr + static_cast<size_t>(ky) * row_k * nr, w, c, cout, t.min, t.max,
              flags, nullptr, 0, nullptr);
      }
    }
  }
  // Border pixels: zero-padded im2col rows, MR at a time, the whole K in one block.
  auto border = [&](int begin, int end) {
    for (int ox = begin; ox < end; ox += static_cast<int>(mr)) {
      const size_t rows = std::min(mr, static_cast<size_t>(end - ox));
      im2col(p, t.input, 0, row * static_cast<size_t>(p.out_w) + static_cast<size_t>(ox), rows, col);
      for (size_t panel = 0; panel < b.panels(); ++panel) {
        const float* w = b.panel(panel);
        const size_t n0 = panel * nr;
        uk.fn(rows, std::min(nr, cout - n0), k, col, k, w + nr, w, out_row + static_cast<size_t>(ox) * cout + n0, cout,
              t.min, t.max, kF32GemmInitBias | kF32GemmClamp, nullptr, 0, nullptr);
      }
    }
  };
  border(0, lo);
  border(hi, p.out_w);
}

void direct_slot(void* ctx, size_t slot) {
  const DirectTask& t = *static_cast<const DirectTask*>(ctx);
  const Conv2dParams& p = t.packed->params;
  float* col = t.scratch + slot * direct_slot_floats(*t.packed, t.max_pool_2x2);
  const size_t row_floats = static_cast<size_t>(p.out_w) * static_cast<size_t>(p.out_c);
  if (!t.max_pool_2x2) {
    const SlotRange range = slot_range(static_cast<size_t>(p.batch) * p.out_h, slot, t.slots);
    for (size_t r = range.begin; r < range.end; ++r) direct_row(t, r, col, t.output + r * row_floats);
    return;
  }
  // Pooled row (n, py): conv rows 2 py and 2 py + 1 into the slot's buffer, then their max.
  float* pair = col + t.packed->group_gemm[0].ukernel.mr * gemm_k(p);
  Pool2dParams pp;
  pp.in_h = 2;
  pp.in_w = p.out_w;
  pp.channels = p.out_c;
  pp.out_h = 1;
  pp.out_w = p.out_w / 2;
  pp.kernel_h = pp.kernel_w = pp.stride_h = pp.stride_w = 2;
  const size_t ph = static_cast<size_t>(p.out_h / 2);
  const SlotRange range = slot_range(static_cast<size_t>(p.batch) * ph, slot, t.slots);
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t r = range.begin; r < range.end; ++r) {
    const size_t conv_row = r / ph * static_cast<size_t>(p.out_h) + 2 * (r % ph);
    direct_row(t, conv_row, col, pair);
    direct_row(t, conv_row + 1, col, pair + row_floats);
    f32_max_pool2d__hwy(pp, pair, -inf, inf, t.output + r * static_cast<size_t>(pp.out_w) * p.out_c, nullptr);
  }
}

struct WinogradTask {
  const F32Conv2dPacked* packed;
  const float* input;
  float* output;
  float* scratch;
  float min, max;
  size_t blocks_per_image, blocks;
  size_t slots;
  bool max_pool_2x2 = false;  // output is the 2x2-pooled conv output
};

// Block b: image b / blocks_per_image, its tiles from (b % blocks_per_image) * winograd_tiles.
void winograd_block(const WinogradTask& t, size_t b, float* v) {
  const F32Conv2dPacked& pk = *t.packed;
  const Conv2dParams& p = pk.params;
  const size_t ci = static_cast<size_t>(p.in_c), co = static_cast<size_t>(p.out_c);
  const size_t T = pk.winograd_tiles;
  const size_t n = b / t.blocks_per_image;
  const size_t tiles = winograd_tiles_per_image(p);
  const size_t t0 = (b % t.blocks_per_image) * T, count = std::min(T, tiles - t0);
  float* m = v + 16 * T * ci;
  WinogradInputArgs in;
  in.image = t.input + n * static_cast<size_t>(p.in_h) * p.in_w * ci;
  in.in_h = p.in_h;
  in.in_w = p.in_w;
  in.c = ci;
  in.pad_top = p.pad_top;
  in.pad_left = p.pad_left;
  in.tiles_w = winograd_tiles_w(p);
  f32_winograd_input_transform(in, t0, count, v, T * ci);
  for (size_t xi = 0; xi < 16; ++xi) {
    f32_gemm_packed(count, v + xi * T * ci, ci, pk.winograd_u[xi], m + xi * T * co, co,
                    -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(), nullptr);
  }
  WinogradOutputArgs out;
  out.max_pool_2x2 = t.max_pool_2x2;
  const size_t out_pixels = t.max_pool_2x2 ? static_cast<size_t>(p.out_h / 2) * static_cast<size_t>(p.out_w / 2)
                                           : static_cast<size_t>(p.out_h) * static_cast<size_t>(p.out_w);
  out.image = t.output + n * out_pixels * co;
  out.out_h = p.out_h;
  out.out_w = p.out_w;
  out.c = co;
  out.tiles_w = in.tiles_w;
  out.bias = pk.winograd_bias.size() != 0 ? reinterpret_cast<const float*>(pk.winograd_bias.data()) : nullptr;
  out.min = t.min;
  out.max = t.max;
  f32_winograd_output_transform(out, t0, count, m, T * co);
}

void winograd_slot(void* ctx, size_t slot) {
  const WinogradTask& t = *static_cast<const WinogradTask*>(ctx);
  float* v = t.scratch + slot * winograd_slot_floats(*t.packed);
  const SlotRange range = slot_range(t.blocks, slot, t.slots);
  for (size_t b = range.begin; b < range.end; ++b) winograd_block(t, b, v);
}

struct DwTask {
  const F32Conv2dPacked* packed;
  const float* input;
  float* output;
  float min, max;
};

void dw_row(void* ctx, size_t row) {
  const DwTask& t = *static_cast<const DwTask*>(ctx);
  const Conv2dParams& p = t.packed->params;
  const size_t n = row / static_cast<size_t>(p.out_h);
  const int oy = static_cast<int>(row % static_cast<size_t>(p.out_h));
  F32DwconvRowArgs a = depthwise_row_args(*t.packed, t.input + n * p.in_h * p.in_w * p.in_c, 0,
                                          t.output + row * p.out_w * p.out_c, oy, t.min, t.max);
  a.prefetch_rows = static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c * sizeof(float) >= kStreamOutputBytes;
  t.packed->dw_row(a);
}

void run_direct(const F32Conv2dPacked& packed, const float* input, float act_min, float act_max, float* output,
                float* scratch, ThreadPool* pool, bool max_pool_2x2) {
  const Conv2dParams& p = packed.params;
  const size_t rows = static_cast<size_t>(p.batch) * static_cast<size_t>(max_pool_2x2 ? p.out_h / 2 : p.out_h);
  DirectTask task{&packed, input, output, scratch, act_min, act_max, conv_slots(pool, rows), max_pool_2x2};
  run_conv_slots(pool, task.slots, &direct_slot, &task);
}

void run_winograd(const F32Conv2dPacked& packed, const float* input, float act_min, float act_max, float* output,
                  float* scratch, ThreadPool* pool, bool max_pool_2x2) {
  const Conv2dParams& p = packed.params;
  const size_t per_image = (winograd_tiles_per_image(p) + packed.winograd_tiles - 1) / packed.winograd_tiles;
  const size_t blocks = per_image * static_cast<size_t>(p.batch);
  WinogradTask task{&packed, input, output, scratch, act_min, act_max, per_image, blocks, conv_slots(pool, blocks),
                    max_pool_2x2};
  run_conv_slots(pool, task.slots, &winograd_slot, &task);
}

}  // namespace

void f32_conv2d_fast_max_pool_2x2(const F32Conv2dPacked& packed, const float* input, float act_min, float act_max,
                                  float* output, float* scratch, ThreadPool* pool) {
  if (packed.path == F32Conv2dPacked::Path::kDirectRows) {
    run_direct(packed, input, act_min, act_max, output, scratch, pool, true);
  } else {
    run_winograd(packed, input, act_min, act_max, output, scratch, pool, true);
  }
}

void f32_conv2d_fast(const F32Conv2dPacked& packed, const float* input, float act_min,
                     float act_max, float* output, float* scratch, ThreadPool* pool) {
  const Conv2dParams& p = packed.params;
  switch (packed.path) {
    case F32Conv2dPacked::Path::kGemm1x1: {
      const size_t m = static_cast<size_t>(p.batch) * p.in_h * p.in_w;
      f32_gemm_packed(m, input, static_cast<size_t>(p.in_c), packed.group_gemm[0], output,
                      static_cast<size_t>(p.out_c), act_min, act_max, pool);
      return;
    }
    case F32Conv2dPacked::Path::kDepthwise: {
      DwTask task{&packed, input, output, act_min, act_max};
      const size_t rows = static_cast<size_t>(p.batch) * p.out_h;
      if (pool == nullptr || !pool->multi_threaded()) {
        for (size_t r = 0; r < rows; ++r) dw_row(&task, r);
      } else {
        pool->parallelize_1d(&dw_row, &task, rows);
      }
      return;
    }
    case F32Conv2dPacked::Path::kDirectRows:
      run_direct(packed, input, act_min, act_max, output, scratch, pool, false);
      return;
    case F32Conv2dPacked::Path::kWinograd:
      run_winograd(packed, input, act_min, act_max, output, scratch, pool, false);
      return;
    case F32Conv2dPacked::Path::kIm2colGemm: {
      const size_t pixels = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
      const size_t tiles = (pixels + packed.im2col_rows - 1) / packed.im2col_rows;
      Im2colTask task{&packed, input, output, scratch, act_min, act_max, tiles, conv_slots(pool, tiles)};
      if (task.slots == 1) {
        // Few tiles: one at a time, the GEMM inside spreads over the pool.
        for (size_t tile = 0; tile < tiles; ++tile) im2col_gemm_tile(task, tile, scratch, pool);
        return;
      }
      run_conv_slots(pool, task.slots, &im2col_gemm_slot, &task);
      return;
    }
  }
}

void f32_conv2d_fast_add(const F32Conv2dPacked& packed, const float* input, const float* residual,
                         float act_min, float act_max, float* output, ThreadPool* pool) {
  const Conv2dParams& p = packed.params;
  const size_t m = static_cast<size_t>(p.batch) * p.in_h * p.in_w;
  const size_t n = static_cast<size_t>(p.out_c);
  f32_gemm_packed_add(m, input, static_cast<size_t>(p.in_c), packed.group_gemm[0], residual, n, output, n, act_min,
                      act_max, pool);
}

}  // namespace pcv::kernels
