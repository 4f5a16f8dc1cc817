// Prepare (path choice, packing) and run for the fast int8 conv2d (contract in
// qs8_conv_fast.h).
#include "kernels/conv/qs8_conv_fast.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/common/requant.h"

namespace pcv::kernels {
namespace {

// memcpy for the short rows of conv patches (9 bytes for a 3x3 RGB conv): fixed-size copies
// compile to plain moves instead of a library call.
inline void copy_short(int8_t* d, const int8_t* s, size_t len) {
  if (len >= 8 && len <= 16) {
    std::memcpy(d, s, 8);
    std::memcpy(d + len - 8, s + len - 8, 8);
  } else {
    std::memcpy(d, s, len);
  }
}

bool is_1x1_direct(const Conv2dParams& p) {
  return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top == 0 && p.pad_left == 0 && p.out_h == p.in_h && p.out_w == p.in_w &&
         p.groups == 1;
}

// Gathers conv patches (kernel_h, kernel_w, in_c) of output pixels [m0, m0 + rows) as int8
// rows of K = kernel_h * kernel_w * in_c; taps outside the input read as the input zero point.
struct PatchGather {
  const Qs8Conv2dPacked* k;
  const int8_t* input;
};

void gather_patches(const void* ctx, size_t m0, size_t rows, int8_t* dst, size_t dst_stride) {
  const auto& g = *static_cast<const PatchGather*>(ctx);
  // Locals: the int8 stores below may alias anything, so fields read through g would be
  // reloaded after every copy.
  const Conv2dParams p = g.k->params;
  const int8_t* const input = g.input;
  const size_t c = static_cast<size_t>(p.in_c);
  const auto pad = static_cast<int8_t>(g.k->input_zero_point);
  const size_t out_w = static_cast<size_t>(p.out_w), out_h = static_cast<size_t>(p.out_h);
  const size_t row_c = static_cast<size_t>(p.in_w) * c;     // bytes of one input row
  const size_t tap_row = static_cast<size_t>(p.kernel_w) * c;  // bytes of one row of taps
  // Output pixel (n, oy, ox) of row m0, then stepped along (no division per row).
  size_t ox = m0 % out_w;
  size_t oy = (m0 / out_w) % out_h;
  size_t n = m0 / (out_w * out_h);
  for (size_t r = 0; r < rows; ++r) {
    if (r > 0 && ++ox == out_w) {
      ox = 0;
      if (++oy == out_h) {
        oy = 0;
        ++n;
      }
    }
    int8_t* d = dst + r * dst_stride;
    const int iy0 = static_cast<int>(oy) * p.stride_h - p.pad_top;
    const int ix0 = static_cast<int>(ox) * p.stride_w - p.pad_left;
    const int8_t* in_n = input + n * p.in_h * row_c;
    const bool x_inside = p.dilation_w == 1 && ix0 >= 0 && ix0 + p.kernel_w <= p.in_w;
    for (int ky = 0; ky < p.kernel_h; ++ky, d += tap_row) {
      const int iy = iy0 + ky * p.dilation_h;
      const bool y_inside = iy >= 0 && iy < p.in_h;
      if (x_inside && y_inside) {
        // The whole row of taps is inside the input and contiguous.
        copy_short(d, in_n + static_cast<size_t>(iy) * row_c + static_cast<size_t>(ix0) * c, tap_row);
        continue;
      }
      for (int kx = 0; kx < p.kernel_w; ++kx) {
        const int ix = ix0 + kx * p.dilation_w;
        int8_t* t = d + static_cast<size_t>(kx) * c;
        if (!y_inside || ix < 0 || ix >= p.in_w) {
          std::memset(t, pad, c);
        } else {
          std::memcpy(t, in_n + static_cast<size_t>(iy) * row_c + static_cast<size_t>(ix) * c, c);
        }
      }
    }
  }
}

}  // namespace

size_t Qs8Conv2dPacked::scratch_bytes(int threads) const {
  switch (path) {
    case Path::kGemm1x1: return qs8_gemm_scratch_bytes(gemm, false, threads);
    case Path::kIm2colGemm: return qs8_gemm_scratch_bytes(gemm, true, threads);
    case Path::kDepthwise: return 0;
  }
  return 0;
}

Expected<Qs8Conv2dPacked> prepare_qs8_conv2d_fast(const Conv2dParams& p,
                                                  const QuantConv2dParams& q,
                                                  const int8_t* filter, const int32_t* bias) {
  if (q.mode != RequantMode::kFp32 || q.requant_scale == nullptr) {
    return unsupported("qs8 conv2d fast: only the fp32 (LiteRT) requantization");
  }
  Qs8Conv2dPacked k;
  k.params = p;
  k.input_zero_point = q.input_zero_point;
  k.epilogue.output_zero_point = q.output_zero_point;
  k.epilogue.act_min = q.act_min;
  k.epilogue.act_max = q.act_max;
  k.epilogue.min_less_zp = static_cast<float>(q.act_min - q.output_zero_point);
  k.epilogue.max_less_zp = static_cast<float>(q.act_max - q.output_zero_point);
  const bool depthwise = p.groups > 1 && p.groups == p.in_c && p.groups == p.out_c;
  if (depthwise) {
    const Qs8DwconvUkernel& uk = qs8_dwconv_ukernel();
    k.path = Qs8Conv2dPacked::Path::kDepthwise;
    k.isa = uk.isa;
    const size_t c = static_cast<size_t>(p.out_c);
    const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w;
    if (uk.vnni_fn != nullptr && p.kernel_h <= kQs8DwVnniMaxKernel && taps <= kQs8DwVnniMaxTaps &&
        std::all_of(filter, filter + c * taps, [&](int8_t v) {
          const int d = v - q.filter_zero_point;
          return d >= -128 && d <= 127;
        })) {
      k.dw_layout = Qs8Conv2dPacked::DwLayout::kVnniQuads;
      k.dw_fn = uk.vnni_fn;
      k.ukernel_name = uk.vnni_name;
      k.c_padded = (c + 63) / 64 * 64;
      const size_t units = qs8_dwconv_vnni_units(taps), quads = taps / 4;
      if (!k.dw_weights.resize(k.c_padded * units * 4 * 4) ||
          !k.dw_bias_full.resize(k.c_padded * sizeof(int32_t)) ||
          !k.dw_scale.resize(k.c_padded * sizeof(float)) || !k.dw_pad.resize(k.c_padded)) {
        return out_of_memory("qs8 dwconv weights");
      }
      auto* w = reinterpret_cast<int8_t*>(k.dw_weights.data());  // zero-filled
      auto* bf = reinterpret_cast<int32_t*>(k.dw_bias_full.data());
      auto* s = reinterpret_cast<float*>(k.dw_scale.data());
      std::memset(k.dw_pad.data(), static_cast<int8_t>(q.input_zero_point), k.c_padded);
      for (size_t oc = 0; oc < c; ++oc) {
        const size_t b = oc / 64, L = oc % 64 / 16, r = oc % 16 / 4, i = oc % 4;
        const size_t lane = 4 * L + i;
        int32_t sum = 0;  // |sum| <= taps * 255, taps <= kQs8DwVnniMaxTaps
        for (size_t t = 0; t < taps; ++t) {
          const int32_t v = filter[oc * taps + t] - q.filter_zero_point;
          const size_t u = t < quads * 4 ? t / 4 : t - quads * 3;
          const size_t byte = t < quads * 4 ? t % 4 : r;
          w[(((b * units + u) * 4 + r) * 16 + lane) * 4 + byte] = static_cast<int8_t>(v);
          sum += v;
        }
        bf[(b * 4 + r) * 16 + lane] =
            wrap_sub(bias != nullptr ? bias[oc] : 0, wrap_mul(q.input_zero_point + 128, sum));
        s[(b * 4 + r) * 16 + lane] = q.requant_scale[oc];
      }
      return k;
    }
    k.dw_fn = uk.fn;
    k.ukernel_name = uk.name;
    k.c_padded = (c + uk.lanes - 1) / uk.lanes * uk.lanes;
    if (!k.dw_weights.resize(taps * k.c_padded * sizeof(int32_t)) ||
        !k.dw_bias.resize(k.c_padded * sizeof(int32_t)) ||
        !k.dw_bias_full.resize(k.c_padded * sizeof(int32_t)) ||
        !k.dw_scale.resize(k.c_padded * sizeof(float))) {
      return out_of_memory("qs8 dwconv weights");
    }
    auto* w = reinterpret_cast<int32_t*>(k.dw_weights.data());
    auto* b = reinterpret_cast<int32_t*>(k.dw_bias.data());
    auto* bf = reinterpret_cast<int32_t*>(k.dw_bias_full.data());
    auto* s = reinterpret_cast<float*>(k.dw_scale.data());
    for (size_t oc = 0; oc < c; ++oc) {
      int32_t sum = 0;
      for (size_t t = 0; t < taps; ++t) {
        w[t * k.c_padded + oc] = filter[oc * taps + t] - q.filter_zero_point;
        sum = wrap_add(sum, w[t * k.c_padded + oc]);
      }
      b[oc] = bias != nullptr ? bias[oc] : 0;
      bf[oc] = wrap_sub(b[oc], wrap_mul(q.input_zero_point, sum));
      s[oc] = q.requant_scale[oc];
    }
    return k;
  }
  if (p.groups != 1) return unsupported("qs8 conv2d fast: grouped conv");
  k.path = is_1x1_direct(p) ? Qs8Conv2dPacked::Path::kGemm1x1 : Qs8Conv2dPacked::Path::kIm2colGemm;
  const size_t K = static_cast<size_t>(p.kernel_h) * p.kernel_w * p.in_c;
  auto packed = pack_qs8_gemm_w(K, static_cast<size_t>(p.out_c), filter, q.filter_zero_point, bias,
                                q.requant_scale, q.input_zero_point, q.output_zero_point, q.act_min,
                                q.act_max);
  if (!packed) return packed.status();
  k.gemm = std::move(packed).value();
  k.ukernel_name = k.gemm.ukernel.name;
  k.isa = k.gemm.isa;
  return k;
}

void qs8_conv2d_fast(const Qs8Conv2dPacked& k, const int8_t* input, int8_t* output, void* scratch,
                     ThreadPool* pool) {
  const Conv2dParams& p = k.params;
  const size_t m = static_cast<size_t>(p.batch) * p.out_h * p.out_w;
  switch (k.path) {
    case Qs8Conv2dPacked::Path::kGemm1x1:
      qs8_gemm_packed(m, input, static_cast<size_t>(p.in_c), {}, k.gemm, output,
                      static_cast<size_t>(p.out_c), scratch, pool);
      return;
    case Qs8Conv2dPacked::Path::kIm2colGemm: {
      const PatchGather g{&k, input};
      qs8_gemm_packed(m, nullptr, 0, {&gather_patches, &g}, k.gemm, output,
                      static_cast<size_t>(p.out_c), scratch, pool);
      return;
    }
    case Qs8Conv2dPacked::Path::kDepthwise: {
      const size_t rows = static_cast<size_t>(p.batch) * p.out_h;
      if (pool == nullptr || pool->threads() <= 1 || rows < 2) {
        k.dw_fn(k, input, output, 0, rows);
        return;
      }
      const size_t tile = std::max<size_t>(1, rows / (static_cast<size_t>(pool->threads()) * 4));
      pool->parallel_for_tiles(rows, tile, [&](size_t b, size_t e) { k.dw_fn(k, input, output, b, e); });
      return;
    }
  }
}

}  // namespace pcv::kernels
