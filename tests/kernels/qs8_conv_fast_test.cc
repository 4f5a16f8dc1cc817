// Fast int8 conv2d / fully connected (qs8_conv_fast.h, qs8_gemm.h) against the reference
// kernels in fp32 (LiteRT) requantization mode: outputs must be identical, for every Highway
// target the machine runs, over channel / row tails, strides, padding, dilation, zero points
// (symmetric int8 and uint8-style filters) and thread counts.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL 1  // enumerate the VNNI target like the kernels do
#endif
#include <gtest/gtest.h>
#include <hwy/highway.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/qs8_conv_fast.h"
#include "kernels/fully_connected/fully_connected.h"
#include "kernels/gemm/qs8_gemm.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#endif

namespace pcv::kernels {
const char* apply_forced_isa();
namespace {

using Path = Qs8Conv2dPacked::Path;

// Calls fn() once per compiled and supported Highway target, dispatch pinned to it. Where the
// target has the AMX kernels (AVX3_DL on an AMX CPU), twice: with the VNNI kernels only, then
// with AMX for every shape.
template <class Fn>
void for_each_target(Fn fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    if (std::string(qs8_gemm_ukernels().isa) != hwy::TargetName(target)) {
      ASSERT_NE(apply_forced_isa(), nullptr);  // PCV_FORCE_ISA pins one target
      continue;
    }
    SCOPED_TRACE(std::string("isa ") + hwy::TargetName(target));
    if (!qs8_gemm_has_amx()) {
      fn();
      continue;
    }
    set_qs8_gemm_amx(Qs8Amx::kOff);
    fn();
    {
      SCOPED_TRACE("amx");
      set_qs8_gemm_amx(Qs8Amx::kAlways);
      fn();
    }
    set_qs8_gemm_amx(Qs8Amx::kAuto);
  }
  hwy::SetSupportedTargetsForTest(0);
}

struct QCase {
  int batch, in_h, in_w, in_c, out_c, kh, kw, stride, dilation, pad, groups;
  int32_t filter_zp;  // 0: TFLite int8; nonzero: uint8 model read as int8
  bool relu6;
  Path expect;
  int64_t bias_center = 0;  // biases are bias_center +- 20000, clamped to int32
  bool wide_scales = false;  // channel j's scale times 10^(j % 9 - 2): far outside int8/16/32
};

int out_size(int in, int k, int stride, int dilation, int pad) {
  return (in + 2 * pad - ((k - 1) * dilation + 1)) / stride + 1;
}

void check_conv(const QCase& c, std::mt19937& rng, ThreadPool* pool) {
  Conv2dParams p;
  p.batch = c.batch;
  p.in_h = c.in_h;
  p.in_w = c.in_w;
  p.in_c = c.in_c;
  p.out_c = c.out_c;
  p.kernel_h = c.kh;
  p.kernel_w = c.kw;
  p.stride_h = p.stride_w = c.stride;
  p.dilation_h = p.dilation_w = c.dilation;
  p.pad_top = p.pad_left = c.pad;
  p.groups = c.groups;
  p.out_h = out_size(c.in_h, c.kh, c.stride, c.dilation, c.pad);
  p.out_w = out_size(c.in_w, c.kw, c.stride, c.dilation, c.pad);
  const int cpg = c.in_c / c.groups;
  std::uniform_int_distribution<int> byte(-128, 127);
  std::uniform_real_distribution<float> sd(0.5f, 2.0f);
  std::vector<int8_t> in(static_cast<size_t>(c.batch) * c.in_h * c.in_w * c.in_c);
  std::vector<int8_t> w(static_cast<size_t>(c.out_c) * c.kh * c.kw * cpg);
  std::vector<int32_t> bias(static_cast<size_t>(c.out_c));
  std::vector<float> scale(static_cast<size_t>(c.out_c));
  for (auto& v : in) v = static_cast<int8_t>(byte(rng));
  for (auto& v : w) v = static_cast<int8_t>(byte(rng));
  for (auto& v : bias) {
    const int64_t b = c.bias_center + std::uniform_int_distribution<int>(-20000, 20000)(rng);
    v = static_cast<int32_t>(std::clamp<int64_t>(b, INT32_MIN, INT32_MAX));
  }
  // Scales that spread the outputs over the int8 range: ~1 / (128 * sqrt(taps) * 128).
  const float taps = static_cast<float>(c.kh * c.kw * cpg);
  for (size_t j = 0; j < scale.size(); ++j) {
    scale[j] = sd(rng) / (128.f * std::sqrt(taps) * 40.f);
    if (c.wide_scales) scale[j] *= std::pow(10.f, static_cast<float>(static_cast<int>(j % 9) - 2));
  }
  QuantConv2dParams q;
  q.input_zero_point = byte(rng) / 2;
  q.filter_zero_point = c.filter_zp;
  q.output_zero_point = byte(rng) / 4;
  q.mode = RequantMode::kFp32;
  q.requant_scale = scale.data();
  if (c.relu6) {
    q.act_min = q.output_zero_point;
    q.act_max = std::min(127, q.output_zero_point + 100);
  }
  std::vector<int8_t> ref(static_cast<size_t>(c.batch) * p.out_h * p.out_w * c.out_c);
  qs8_conv2d__ref(p, q, in.data(), w.data(), bias.data(), ref.data());
  auto packed = prepare_qs8_conv2d_fast(p, q, w.data(), bias.data());
  ASSERT_TRUE(packed) << packed.status().to_string();
  EXPECT_EQ(packed->path, c.expect);
  const int threads = pool != nullptr ? pool->threads() : 1;
  AlignedBuffer scratch(packed->scratch_bytes(threads) + 64);
  constexpr int8_t kGuard = 0x5a;
  std::vector<int8_t> out(ref.size() + 1, kGuard);
  qs8_conv2d_fast(*packed, in.data(), out.data(), scratch.data(), pool);
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (out[i] != ref[i] && bad++ < 5) {
      ADD_FAILURE() << "out[" << i << "] = " << int{out[i]} << ", want " << int{ref[i]};
    }
  }
  EXPECT_EQ(out.back(), kGuard) << "wrote past the output";
  EXPECT_EQ(bad, 0u) << "batch " << c.batch << " in " << c.in_h << "x" << c.in_w << "x" << c.in_c
                     << " out_c " << c.out_c << " k " << c.kh << "x" << c.kw << " s" << c.stride
                     << " d" << c.dilation << " g" << c.groups << " wzp " << c.filter_zp
                     << " threads " << threads << " ukernel " << packed->ukernel_name;
}

const int kTails[] = {1, 7, 8, 9, 15, 16, 17, 127};

TEST(Qs8ConvFast, ListsTargets) {
  for_each_target([] {
    const Qs8GemmUkernels& uk = qs8_gemm_ukernels();
    std::printf("  %-8s %s %s %s\n", uk.isa, uk.gemm.name, qs8_dwconv_ukernel().name,
                uk.amx.fn != nullptr ? uk.amx.name : "(no AMX)");
  });
}

TEST(Qs8ConvFast, Pointwise1x1Tails) {
  ThreadPool pool2(2);
  std::mt19937 rng(1);
  for_each_target([&] {
    for (int in_c : kTails) {
      for (int out_c : kTails) {
        const int v = in_c + 3 * out_c;
        check_conv({1 + v % 2, 3, 5, in_c, out_c, 1, 1, 1, 1, 0, 1, v % 3 ? 0 : 17, v % 4 == 1,
                    Path::kGemm1x1},
                   rng, v % 2 ? &pool2 : nullptr);
        if (::testing::Test::HasFailure()) return;
      }
    }
  });
}

// K % 4 == 0 with symmetric weights: VNNI reads the int8 rows in place (fn_int8_rows).
TEST(Qs8ConvFast, Pointwise1x1RowsReadInPlace) {
  ThreadPool pool2(2);
  std::mt19937 rng(11);
  for_each_target([&] {
    for (int in_c : {4, 24, 96}) {
      for (int out_c : {1, 17, 40}) {
        const int v = in_c + out_c;
        check_conv({1 + v % 2, 5, 7, in_c, out_c, 1, 1, 1, 1, 0, 1, 0, v % 3 == 0, Path::kGemm1x1},
                   rng, v % 2 ? &pool2 : nullptr);
        if (::testing::Test::HasFailure()) return;
      }
    }
  });
}

TEST(Qs8ConvFast, Im2colStridesPaddingDilation) {
  ThreadPool pool2(2);
  std::mt19937 rng(2);
  for_each_target([&] {
    for (int in_c : {1, 3, 8, 17}) {
      for (int out_c : {1, 9, 16, 33}) {
        for (int stride : {1, 2}) {
          const int v = in_c + out_c + stride;
          check_conv({1, 9, 8, in_c, out_c, 3, 3, stride, v % 5 == 0 ? 2 : 1, 1, 1, v % 2 ? -40 : 0,
                      v % 3 == 0, Path::kIm2colGemm},
                     rng, v % 2 ? &pool2 : nullptr);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
    // A 1x1 with stride 2 and a 5x5 valid conv also take im2col.
    check_conv({2, 8, 8, 24, 20, 1, 1, 2, 1, 0, 1, 0, false, Path::kIm2colGemm}, rng, nullptr);
    check_conv({1, 7, 9, 5, 6, 5, 5, 1, 1, 0, 1, 3, true, Path::kIm2colGemm}, rng, &pool2);
  });
}

TEST(Qs8ConvFast, DepthwiseTails) {
  ThreadPool pool2(2);
  std::mt19937 rng(3);
  for_each_target([&] {
    for (int c : kTails) {
      for (int stride : {1, 2}) {
        const int v = c + stride;
        // One channel is a plain conv (groups == 1): it takes im2col.
        check_conv({1 + v % 2, 7, 6, c, c, 3, 3, stride, 1, 1, c, v % 3 ? 0 : -9, v % 2 == 0,
                    c == 1 ? Path::kIm2colGemm : Path::kDepthwise},
                   rng, v % 2 ? &pool2 : nullptr);
        if (::testing::Test::HasFailure()) return;
      }
    }
    // Rows long enough for the 3x3 interior path (whole vectors of channels), both strides.
    for (int c : {16, 32, 48, 64, 96, 144}) {
      for (int stride : {1, 2}) {
        for (int pad : {0, 1}) {
          check_conv({1, 20, 19, c, c, 3, 3, stride, 1, pad, c, c == 48 ? 7 : 0, pad == 1, Path::kDepthwise},
                     rng, stride == 2 ? &pool2 : nullptr);
        }
      }
    }
    check_conv({1, 9, 9, 24, 24, 5, 5, 2, 1, 2, 24, 0, true, Path::kDepthwise}, rng, nullptr);
    check_conv({1, 9, 9, 16, 16, 3, 3, 1, 2, 2, 16, 5, false, Path::kDepthwise}, rng, &pool2);
    check_conv({1, 9, 9, 80, 80, 3, 3, 1, 2, 2, 80, 0, false, Path::kDepthwise}, rng, &pool2);
    check_conv({2, 11, 10, 70, 70, 5, 5, 1, 1, 2, 70, 0, true, Path::kDepthwise}, rng, nullptr);
    check_conv({1, 4, 5, 65, 65, 7, 7, 2, 1, 3, 65, 0, false, Path::kDepthwise}, rng, nullptr);
  });
}

// Outputs far beyond int8, int16 and int32 before the clamp, with and without relu6 bounds,
// on every path (depthwise VNNI and int16, 1x1, im2col): saturating steps land on the clamp.
TEST(Qs8ConvFast, RequantizationSaturatesLikeTheReference) {
  ThreadPool pool2(2);
  std::mt19937 rng(7);
  for_each_target([&] {
    for (int c : {9, 32, 64, 80}) {
      for (bool relu6 : {false, true}) {
        QCase dw{1, 8, 7, c, c, 3, 3, 1, 1, 1, c, 0, relu6, Path::kDepthwise};
        dw.wide_scales = true;
        check_conv(dw, rng, relu6 ? &pool2 : nullptr);
        QCase dw_zp = dw;
        dw_zp.filter_zp = 5;  // the int16 depthwise kernel
        check_conv(dw_zp, rng, nullptr);
        QCase pw{1, 5, 6, c, 40, 1, 1, 1, 1, 0, 1, 0, relu6, Path::kGemm1x1};
        pw.wide_scales = true;
        check_conv(pw, rng, nullptr);
        QCase im2col{1, 6, 6, 5, c, 3, 3, 1, 1, 1, 1, 0, relu6, Path::kIm2colGemm};
        im2col.wide_scales = true;
        check_conv(im2col, rng, &pool2);
        if (::testing::Test::HasFailure()) return;
      }
    }
  });
}

// A bias near the int32 limits (a corrupt or hostile model) makes the accumulators wrap. Every
// path wraps like the reference (modulo 2^32, no undefined overflow under UBSan), also in the
// terms prepare folds into the bias.
TEST(Qs8ConvFast, BiasNearInt32LimitsWrapsLikeTheReference) {
  ThreadPool pool2(2);
  std::mt19937 rng(5);
  for_each_target([&] {
    for (int64_t center : {int64_t{INT32_MAX}, int64_t{INT32_MIN}}) {
      SCOPED_TRACE(center);
      check_conv({1, 9, 8, 40, 40, 3, 3, 1, 1, 1, 40, 0, false, Path::kDepthwise, center}, rng, nullptr);
      check_conv({1, 9, 8, 40, 40, 3, 3, 2, 1, 1, 40, -9, true, Path::kDepthwise, center}, rng, &pool2);
      check_conv({2, 5, 6, 24, 17, 1, 1, 1, 1, 0, 1, 3, false, Path::kGemm1x1, center}, rng, &pool2);
      check_conv({1, 6, 7, 5, 9, 3, 3, 1, 1, 1, 1, 0, false, Path::kIm2colGemm, center}, rng, nullptr);
    }
  });
}

// The VNNI depthwise kernel takes symmetric int8 weights (and any whose difference to the
// filter zero point fits int8); other weights keep the int32-lanes kernel. Both are checked
// against the reference above; this pins which one prepare picks.
TEST(Qs8ConvFast, DepthwiseVnniWhenWeightsFitInt8) {
  for_each_target([] {
    const Qs8DwconvUkernel& uk = qs8_dwconv_ukernel();
    Conv2dParams p;
    p.in_h = p.in_w = p.out_h = p.out_w = 4;
    p.in_c = p.out_c = p.groups = 8;
    p.kernel_h = p.kernel_w = 3;
    p.pad_top = p.pad_left = 1;
    std::vector<int8_t> w(8 * 9);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(i % 2 ? 127 - i : i - 128);
    std::vector<float> s(8, 0.01f);
    QuantConv2dParams q;
    q.mode = RequantMode::kFp32;
    q.requant_scale = s.data();
    auto sym = prepare_qs8_conv2d_fast(p, q, w.data(), nullptr);
    ASSERT_TRUE(sym);
    EXPECT_STREQ(sym->ukernel_name, uk.vnni_fn != nullptr ? uk.vnni_name : uk.name);
    q.filter_zero_point = 9;  // -128 - 9 leaves int8
    auto wide = prepare_qs8_conv2d_fast(p, q, w.data(), nullptr);
    ASSERT_TRUE(wide);
    EXPECT_STREQ(wide->ukernel_name, uk.name);
    p.kernel_h = p.kernel_w = kQs8DwVnniMaxKernel + 1;
    p.pad_top = p.pad_left = 4;
    w.assign(8 * 81, 1);
    q.filter_zero_point = 0;
    auto big = prepare_qs8_conv2d_fast(p, q, w.data(), nullptr);
    ASSERT_TRUE(big);
    EXPECT_STREQ(big->ukernel_name, uk.name);
  });
}

TEST(Qs8ConvFast, FallsBackForGroupedConv) {
  Conv2dParams p;
  p.in_h = p.in_w = p.out_h = p.out_w = 4;
  p.in_c = p.out_c = 8;
  p.groups = 2;
  std::vector<int8_t> w(8 * 4);
  std::vector<float> s(8, 0.01f);
  QuantConv2dParams q;
  q.mode = RequantMode::kFp32;
  q.requant_scale = s.data();
  auto packed = prepare_qs8_conv2d_fast(p, q, w.data(), nullptr);
  ASSERT_FALSE(packed);
  EXPECT_EQ(packed.status().code(), StatusCode::kUnsupported);
}

// Fully connected through the GEMM directly (what the runtime runs) against the reference.
// wide_scales: column j's requantization scale is multiplied by 10^(j % 9 - 2), so that
// outputs fall far outside int8, int16 and (at 10^6) int32 before the clamp.
void check_fc(int batch, int in_f, int out_f, int32_t w_zp, std::mt19937& rng, ThreadPool* pool,
              bool wide_scales = false) {
  std::uniform_int_distribution<int> byte(-128, 127);
  FullyConnectedParams p{batch, in_f, out_f};
  std::vector<int8_t> x(static_cast<size_t>(batch) * in_f), w(static_cast<size_t>(out_f) * in_f);
  std::vector<int32_t> bias(static_cast<size_t>(out_f));
  std::vector<float> scale(static_cast<size_t>(out_f));
  for (auto& v : x) v = static_cast<int8_t>(byte(rng));
  for (auto& v : w) v = static_cast<int8_t>(byte(rng));
  for (auto& v : bias) v = byte(rng) * 50;
  for (size_t j = 0; j < scale.size(); ++j) {
    scale[j] = 1.f / (64.f * std::sqrt(static_cast<float>(in_f)) * 128.f);
    if (wide_scales) scale[j] *= std::pow(10.f, static_cast<float>(static_cast<int>(j % 9) - 2));
  }
  QuantFullyConnectedParams q;
  q.input_zero_point = byte(rng) / 2;
  q.weights_zero_point = w_zp;
  q.output_zero_point = wide_scales ? byte(rng) : -3;
  if (wide_scales && batch % 2 == 1) {  // relu6-like bounds inside the range
    q.act_min = std::max(-128, q.output_zero_point);
    q.act_max = std::min(127, q.act_min + 100);
  }
  q.mode = RequantMode::kFp32;
  q.requant_scale = scale.data();
  std::vector<int8_t> ref(static_cast<size_t>(batch) * out_f), out(ref.size() + 1, 0x5a);
  qs8_fully_connected__ref(p, q, x.data(), w.data(), bias.data(), ref.data());
  auto packed = pack_qs8_gemm_w(static_cast<size_t>(in_f), static_cast<size_t>(out_f), w.data(),
                                q.weights_zero_point, bias.data(), scale.data(), q.input_zero_point,
                                q.output_zero_point, q.act_min, q.act_max);
  ASSERT_TRUE(packed) << packed.status().to_string();
  AlignedBuffer scratch(qs8_gemm_scratch_bytes(*packed, false, pool ? pool->threads() : 1));
  qs8_gemm_packed(static_cast<size_t>(batch), x.data(), static_cast<size_t>(in_f), {}, *packed,
                  out.data(), static_cast<size_t>(out_f), scratch.data(), pool);
  ASSERT_TRUE(std::equal(ref.begin(), ref.end(), out.begin()))
      << "batch " << batch << " in " << in_f << " out " << out_f << " wzp " << w_zp << " "
      << packed->ukernel.name;
  ASSERT_EQ(out.back(), 0x5a);
}

TEST(Qs8GemmFast, FullyConnectedTails) {
  ThreadPool pool2(2);
  std::mt19937 rng(4);
  for_each_target([&] {
    for (int batch : {1, 3, 9}) {
      for (int in_f : kTails) {
        for (int out_f : {1, 8, 17, 127, 1001}) {
          check_fc(batch, in_f, out_f, in_f % 2 ? 11 : 0, rng, batch == 9 ? &pool2 : nullptr);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  });
}

// Many rows: several row blocks per thread, tiles of 32 rows with 1..31 left over, K across
// AMX's steps of 64 (64, 65, 200, 1280), narrow and wide panels with column tails.
TEST(Qs8GemmFast, RowBlocksAndDeepK) {
  ThreadPool pool2(2);
  std::mt19937 rng(5);
  for_each_target([&] {
    for (int rows : {17, 33, 47, 400}) {
      for (int in_f : {32, 64, 65, 200, 1280}) {
        for (int out_f : {16, 48, 100}) {
          const int v = rows + in_f + out_f;
          check_fc(rows, in_f, out_f, v % 3 ? 0 : 9, rng, v % 2 ? &pool2 : nullptr);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  });
}

// Outputs far beyond int8, int16 and int32 before the clamp, clamps inside the range, every
// zero point: the requantization's saturating steps land where the reference's clamp does.
TEST(Qs8GemmFast, RequantizationSaturatesLikeTheReference) {
  ThreadPool pool2(2);
  std::mt19937 rng(6);
  for_each_target([&] {
    for (int rows : {1, 2, 5, 8, 33}) {
      for (int out_f : {9, 16, 32, 45}) {
        for (int in_f : {8, 64, 300}) {
          check_fc(rows, in_f, out_f, in_f == 300 ? 3 : 0, rng, rows == 33 ? &pool2 : nullptr, true);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  });
}

#if defined(__x86_64__) && defined(__linux__)
// Another AMX user's tile configuration on this thread (tile 0: 2 rows of 8 bytes).
__attribute__((target("amx-tile"))) void load_foreign_tile_config() {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;   // palette
  cfg[16] = 8;  // tile 0: bytes per row
  cfg[48] = 2;  // tile 0: rows
  __asm__ volatile("" : : "r"(cfg) : "memory");  // the builtin hides that it reads cfg
  _tile_loadconfig(cfg);
}
// Rows of tile 0 in this thread's tile configuration.
__attribute__((target("amx-tile"))) int tile0_rows_now() {
  alignas(64) unsigned char cfg[64] = {};
  _tile_storeconfig(cfg);
  __asm__ volatile("" : : "r"(cfg) : "memory");
  return cfg[48];
}

// The AMX kernels check the thread's tile configuration and load theirs over a foreign one:
// it changes no result (and does not crash on tiles it leaves unconfigured).
TEST(Qs8GemmFast, AmxReplacesAForeignTileConfiguration) {
  if (!qs8_gemm_has_amx()) GTEST_SKIP() << "this CPU (or OS) has no AMX-INT8";
  std::mt19937 rng(9);
  set_qs8_gemm_amx(Qs8Amx::kAlways);
  check_fc(40, 200, 100, 0, rng, nullptr);  // on this thread: ours is loaded
  load_foreign_tile_config();
  ASSERT_EQ(tile0_rows_now(), 2);
  check_fc(40, 200, 100, 0, rng, nullptr);
  EXPECT_EQ(tile0_rows_now(), 16);
  set_qs8_gemm_amx(Qs8Amx::kAuto);
}
#endif

// kAuto: AMX where the CPU has it, for deep shapes only; never when switched off.
TEST(Qs8GemmFast, AmxPickedForDeepShapes) {
  if (!qs8_gemm_has_amx()) GTEST_SKIP() << "this CPU (or OS) has no AMX-INT8";
  const std::vector<int8_t> w(320 * 1280, 1);
  const std::vector<float> scale(1280, 0.01f);
  auto pack = [&](size_t k, size_t n) {
    auto p = pack_qs8_gemm_w(k, n, w.data(), 0, nullptr, scale.data(), 0, 0, -128, 127);
    EXPECT_TRUE(p);
    return std::string(p ? p->ukernel.name : "");
  };
  EXPECT_NE(pack(320, 1280).find("__amx"), std::string::npos);
  EXPECT_EQ(pack(16, 96).find("__amx"), std::string::npos);
  set_qs8_gemm_amx(Qs8Amx::kOff);
  EXPECT_EQ(pack(320, 1280).find("__amx"), std::string::npos);
  set_qs8_gemm_amx(Qs8Amx::kAuto);
}

}  // namespace
}  // namespace pcv::kernels
