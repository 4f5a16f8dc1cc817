// f32_conv2d_fast (1x1 GEMM, im2col + GEMM, depthwise Highway rows) against a naive
// double-accumulating conv written here (independent of f32_conv2d__ref), for every Highway
// target this machine supports and was compiled, with 1 and 2 threads.
//
// Tolerance as in gemm_test.cc: |got - ref| <= taps * eps * (sum |x * w| + |bias|), taps =
// kernel_h * kernel_w * in_c / groups (the reduction length).
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/conv/conv_fast.h"

namespace pcv::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
using Path = F32Conv2dPacked::Path;

struct ConvCase {
  int batch, in_h, in_w, in_c, out_c, kh, kw, stride, dilation, pad_top, pad_left, pad_bottom,
      pad_right, groups;
  float min, max;
  Path expected;
  F32ConvAlgo algo = F32ConvAlgo::kAuto;
  bool bias = true;
};

Conv2dParams params_of(const ConvCase& c) {
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
  p.pad_top = c.pad_top;
  p.pad_left = c.pad_left;
  p.groups = c.groups;
  p.out_h = (c.in_h + c.pad_top + c.pad_bottom - c.dilation * (c.kh - 1) - 1) / c.stride + 1;
  p.out_w = (c.in_w + c.pad_left + c.pad_right - c.dilation * (c.kw - 1) - 1) / c.stride + 1;
  return p;
}

// Naive conv (NHWC, OHWI, groups), double accumulation. Also returns sum |x * w| + |bias| per
// output for the tolerance.
void naive_conv(const Conv2dParams& p, const std::vector<float>& in, const std::vector<float>& w,
                const std::vector<float>& bias, std::vector<double>& out,
                std::vector<double>& abs_sum) {
  const int cig = p.in_c / p.groups, cog = p.out_c / p.groups;
  const size_t n_out = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
  out.assign(n_out, 0.0);
  abs_sum.assign(n_out, 0.0);
  for (int n = 0; n < p.batch; ++n)
    for (int oy = 0; oy < p.out_h; ++oy)
      for (int ox = 0; ox < p.out_w; ++ox)
        for (int oc = 0; oc < p.out_c; ++oc) {
          const int g = oc / cog;
          double acc = bias[oc], abs = std::fabs(bias[oc]);
          for (int ky = 0; ky < p.kernel_h; ++ky)
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
              for (int ci = 0; ci < cig; ++ci) {
                const double x = in[((static_cast<size_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c +
                                    g * cig + ci];
                const double wv = w[((static_cast<size_t>(oc) * p.kernel_h + ky) * p.kernel_w + kx) * cig + ci];
                acc += x * wv;
                abs += std::fabs(x * wv);
              }
            }
          const size_t o = ((static_cast<size_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c + oc;
          out[o] = acc;
          abs_sum[o] = abs;
        }
}

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void check_conv(const ConvCase& c, std::mt19937& rng, ThreadPool* pool2) {
  const Conv2dParams p = params_of(c);
  const size_t taps = static_cast<size_t>(p.kernel_h) * p.kernel_w * (p.in_c / p.groups);
  std::vector<float> in = random_vec(static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c, rng);
  std::vector<float> w = random_vec(static_cast<size_t>(p.out_c) * taps, rng);
  std::vector<float> bias = random_vec(static_cast<size_t>(p.out_c), rng);
  if (!c.bias) std::fill(bias.begin(), bias.end(), 0.f);  // and nullptr to prepare
  std::vector<double> ref, abs_sum;
  naive_conv(p, in, w, bias, ref, abs_sum);

  auto packed = prepare_f32_conv2d_fast(p, w.data(), c.bias ? bias.data() : nullptr, c.algo);
  ASSERT_TRUE(packed.has_value()) << packed.status().to_string();
  EXPECT_EQ(packed->path, c.expected);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), pool2}) {
    const int threads = pool != nullptr ? pool->threads() : 1;
    std::vector<float> scratch(packed->scratch_bytes(threads) / sizeof(float) + 1);
    const float kGuard = 4242.0f;
    std::vector<float> out(ref.size() + 1, kGuard);
    f32_conv2d_fast(*packed, in.data(), c.min, c.max, out.data(), scratch.data(), pool);
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double want = std::min<double>(std::max<double>(ref[i], c.min), c.max);
      const double tol = static_cast<double>(taps) * FLT_EPSILON * abs_sum[i] + 1e-30;
      if (!(std::fabs(out[i] - want) <= tol) && bad++ < 5) {
        ADD_FAILURE() << "out[" << i << "] = " << out[i] << ", want " << want << " tol " << tol;
      }
    }
    EXPECT_EQ(out.back(), kGuard) << "wrote past the output";
    EXPECT_EQ(bad, 0u) << "batch " << c.batch << " in " << c.in_h << "x" << c.in_w << "x"
                       << c.in_c << " out_c " << c.out_c << " k " << c.kh << "x" << c.kw
                       << " s" << c.stride << " d" << c.dilation << " g" << c.groups
                       << " threads " << threads << " ukernel " << packed->ukernel_name
                       << " isa " << packed->isa;
  }
}

template <class Fn>
void for_each_target(Fn fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    if (std::string(f32_gemm_ukernels().isa) != hwy::TargetName(target)) {
      ASSERT_NE(apply_forced_isa(), nullptr);  // PCV_FORCE_ISA pins one target
      continue;
    }
    SCOPED_TRACE(std::string("isa ") + hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(ConvFast, Pointwise1x1) {
  ThreadPool pool2(2);
  std::mt19937 rng(1);
  for_each_target([&] {
    for (int in_c : {1, 7, 16, 17, 32})
      for (int out_c : {1, 8, 9, 33})
        check_conv({2, 5, 7, in_c, out_c, 1, 1, 1, 1, 0, 0, 0, 0, 1, -kInf, kInf,
                    in_c == 1 && out_c == 1 ? Path::kDepthwise : Path::kGemm1x1},
                   rng, &pool2);
    check_conv({1, 9, 9, 24, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0.0f, 6.0f, Path::kGemm1x1}, rng,
               &pool2);
  });
}

TEST(ConvFast, Im2colGemm) {
  ThreadPool pool2(2);
  std::mt19937 rng(2);
  for_each_target([&] {
    const ConvCase cases[] = {
        {2, 9, 8, 7, 15, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kIm2colGemm},
        {1, 11, 10, 16, 17, 3, 3, 2, 1, 1, 1, 1, 1, 1, -0.5f, 0.5f, Path::kIm2colGemm},
        {1, 12, 12, 8, 9, 3, 3, 1, 2, 2, 2, 2, 2, 1, -kInf, kInf, Path::kIm2colGemm},  // dilated
        {1, 10, 13, 5, 16, 5, 5, 1, 1, 2, 2, 2, 2, 1, -kInf, kInf, Path::kIm2colGemm},
        {1, 8, 8, 9, 8, 1, 3, 1, 1, 0, 1, 0, 1, 1, -kInf, kInf, Path::kIm2colGemm},  // 1x3
        {1, 9, 9, 24, 8, 1, 1, 2, 1, 0, 0, 0, 0, 1, -kInf, kInf, Path::kIm2colGemm},  // 1x1 s2
        {1, 7, 7, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2, -kInf, kInf, Path::kIm2colGemm},  // groups 2
        {1, 6, 6, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, -kInf, kInf, Path::kIm2colGemm},  // dw x2
        // many im2col tiles (threads split tiles): 40x40 pixels, K = 3*3*20 (direct: the
        // shape would take Winograd)
        {1, 40, 40, 20, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0.0f, 6.0f, Path::kIm2colGemm, F32ConvAlgo::kDirect},
        {2, 9, 8, 16, 17, 3, 3, 1, 1, 0, 0, 0, 0, 1, -kInf, kInf, Path::kIm2colGemm, F32ConvAlgo::kDirect},
    };
    for (const ConvCase& c : cases) check_conv(c, rng, &pool2);
  });
}

// Winograd F(2x2, 3x3): channel tails around each vector width (in and out), odd output
// sizes (tiles past the edge), every padding (none, SAME, asymmetric, K - 1), a batch, clamps,
// no bias, many blocks of tiles split over 2 threads, and in_c / out_c at the threshold (8).
TEST(ConvFast, Winograd3x3) {
  ThreadPool pool2(2);
  std::mt19937 rng(9);
  for_each_target([&] {
    for (int in_c : {8, 9, 17, 32})
      for (int out_c : {8, 13, 33})
        check_conv({2, 7, 6, in_c, out_c, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kWinograd}, rng, &pool2);
    const ConvCase cases[] = {
        {1, 9, 11, 16, 16, 3, 3, 1, 1, 0, 0, 0, 0, 1, -kInf, kInf, Path::kWinograd},     // valid, odd sizes
        {1, 8, 8, 24, 40, 3, 3, 1, 1, 0, 1, 1, 0, 1, 0.0f, 6.0f, Path::kWinograd},       // asymmetric
        {1, 5, 6, 12, 10, 3, 3, 1, 1, 2, 2, 2, 2, 1, -0.5f, 0.5f, Path::kWinograd},      // pad K - 1
        {3, 33, 35, 20, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0.0f, kInf, Path::kWinograd},     // many blocks
        {1, 10, 10, 64, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kWinograd},   // wide channels
        {1, 6, 7, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kWinograd, F32ConvAlgo::kAuto, false},
        {1, 6, 7, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kIm2colGemm},      // in_c < 8
        {1, 6, 7, 8, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kIm2colGemm},      // stride 2
    };
    for (const ConvCase& c : cases) check_conv(c, rng, &pool2);
  });
}

// A conv with a 2x2 stride-2 max pool fused in (Winograd: into its output transform; direct
// rows: through a two-row buffer): bit-identical to the conv alone followed by a max over each
// window (written here), for odd and even sizes (a last odd row / column has no window),
// channel tails, a batch, blocks that split images, padding, strides, clamps, and 1 and 2
// threads.
TEST(ConvFast, MaxPool2x2Fused) {
  ThreadPool pool2(2);
  std::mt19937 rng(10);
  for_each_target([&] {
    const ConvCase cases[] = {
        {1, 9, 11, 16, 16, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0.0f, kInf, Path::kWinograd},     // 7x9 -> 3x4
        {2, 10, 8, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kWinograd},     // 10x8 -> 5x4
        {3, 33, 35, 20, 24, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0.0f, 6.0f, Path::kWinograd},    // many blocks
        {1, 4, 4, 8, 40, 3, 3, 1, 1, 0, 0, 0, 0, 1, -0.25f, 0.25f, Path::kWinograd},    // 2x2 -> 1x1
        {1, 3, 5, 8, 8, 3, 3, 1, 1, 0, 0, 0, 0, 1, -kInf, kInf, Path::kWinograd},       // 1x3: no window
        {1, 13, 12, 3, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0.0f, kInf, Path::kDirectRows},   // simple_cnn's conv1
        {2, 10, 9, 3, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0.0f, 6.0f, Path::kDirectRows},    // padding, tails
        {1, 15, 14, 2, 9, 3, 3, 2, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kDirectRows},   // stride 2
        {3, 7, 8, 1, 16, 5, 5, 1, 1, 2, 2, 2, 2, 1, -0.5f, 0.5f, Path::kDirectRows},    // 5x5
    };
    for (const ConvCase& c : cases) {
      const Conv2dParams p = params_of(c);
      const std::vector<float> in = random_vec(static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_c, rng);
      const std::vector<float> w = random_vec(static_cast<size_t>(p.out_c) * c.kh * c.kw * p.in_c, rng);
      const std::vector<float> bias = random_vec(static_cast<size_t>(p.out_c), rng);
      auto packed = prepare_f32_conv2d_fast(p, w.data(), bias.data());
      ASSERT_TRUE(packed.has_value());
      ASSERT_EQ(packed->path, c.expected);
      ASSERT_TRUE(accepts_max_pool_2x2(*packed));
      const int ph = p.out_h / 2, pw = p.out_w / 2, co = p.out_c;
      std::vector<float> scratch(packed->scratch_bytes(2, true) / sizeof(float) + 1);
      std::vector<float> conv(static_cast<size_t>(p.batch) * p.out_h * p.out_w * co);
      f32_conv2d_fast(*packed, in.data(), c.min, c.max, conv.data(), scratch.data(), nullptr);
      std::vector<float> want(static_cast<size_t>(p.batch) * ph * pw * co);
      for (int n = 0; n < p.batch; ++n)
        for (int y = 0; y < ph; ++y)
          for (int x = 0; x < pw; ++x)
            for (int o = 0; o < co; ++o) {
              auto at = [&](int dy, int dx) {
                return conv[((static_cast<size_t>(n) * p.out_h + 2 * y + dy) * p.out_w + 2 * x + dx) * co + o];
              };
              want[((static_cast<size_t>(n) * ph + y) * pw + x) * co + o] =
                  std::max(std::max(at(0, 0), at(0, 1)), std::max(at(1, 0), at(1, 1)));
            }
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
        const float kGuard = 4242.0f;
        std::vector<float> got(want.size() + 1, kGuard);
        f32_conv2d_fast_max_pool_2x2(*packed, in.data(), c.min, c.max, got.data(), scratch.data(), pool);
        EXPECT_EQ(got.back(), kGuard) << "wrote past the pooled output";
        got.pop_back();
        EXPECT_TRUE(want.empty() || std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0)
            << "batch " << c.batch << " in " << c.in_h << "x" << c.in_w << "x" << c.in_c << " out_c " << c.out_c
            << " threads " << (pool != nullptr ? 2 : 1);
      }
    }
  });
  // Other paths refuse (the runtime runs the conv and the pool apart).
  const Conv2dParams im2col = params_of({1, 8, 8, 8, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kIm2colGemm});
  const std::vector<float> w(8 * 9 * 8, 0.5f);
  auto packed = prepare_f32_conv2d_fast(im2col, w.data(), nullptr);
  ASSERT_TRUE(packed.has_value());
  EXPECT_EQ(packed->path, Path::kIm2colGemm);
  EXPECT_FALSE(accepts_max_pool_2x2(*packed));
}

// Few input channels (kernel_w * in_c <= 16): kernel rows read straight from the input as K
// blocks, border pixels through zero-padded rows. Padding on every side, strides 1 and 2,
// widths that leave MR tails, several panels of output channels, a batch, rows whose taps all
// fall in the padding (bias only), and 1 and 2 threads.
TEST(ConvFast, DirectRowsFewInputChannels) {
  ThreadPool pool2(2);
  std::mt19937 rng(7);
  for_each_target([&] {
    const ConvCase cases[] = {
        // first MobileNetV2 layer shape class: 3x3 s2, 3 input channels, TF SAME padding
        {1, 17, 17, 3, 32, 3, 3, 2, 1, 0, 0, 1, 1, 1, 0.0f, 6.0f, Path::kDirectRows},
        // small CNN's first layer: 3x3 s1 VALID
        {1, 30, 29, 3, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 0.0f, kInf, Path::kDirectRows},
        {2, 13, 11, 1, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, -kInf, kInf, Path::kDirectRows},
        {1, 12, 15, 4, 81, 3, 3, 2, 1, 1, 1, 1, 1, 1, -0.5f, 0.5f, Path::kDirectRows},
        {1, 9, 10, 3, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, -kInf, kInf, Path::kDirectRows},
        {1, 9, 9, 16, 8, 1, 1, 2, 1, 0, 0, 0, 0, 1, -kInf, kInf, Path::kDirectRows},  // 1x1 s2
        {1, 6, 7, 2, 9, 3, 3, 1, 1, 3, 3, 3, 3, 1, -kInf, kInf, Path::kDirectRows},   // all-padding rows
    };
    for (const ConvCase& c : cases) check_conv(c, rng, &pool2);
  });
}

TEST(ConvFast, Depthwise) {
  ThreadPool pool2(2);
  std::mt19937 rng(3);
  for_each_target([&] {
    for (int k : {3, 5}) {
      for (int stride : {1, 2}) {
        for (int c : {1, 7, 16, 17, 32, 35, 144}) {
          const int pad = k / 2;
          check_conv({1, 11, 10, c, c, k, k, stride, 1, pad, pad, pad, pad, c, 0.0f, 6.0f,
                      Path::kDepthwise},
                     rng, &pool2);
          // TF SAME with stride 2 pads bottom/right only; no padding; dilation.
          check_conv({2, 9, 12, c, c, k, k, stride, 1, 0, 0, 1, 1, c, -kInf, kInf,
                      Path::kDepthwise},
                     rng, &pool2);
          check_conv({1, 13, 13, c, c, k, k, stride, 2, 2 * pad, 2 * pad, 2 * pad, 2 * pad, c,
                      -0.25f, 0.25f, Path::kDepthwise},
                     rng, &pool2);
        }
      }
    }
    // A batch past kStreamOutputBytes (8.9 MB), whose rows are prefetched ahead: the same sums,
    // a channel tail included (a prefetch changes no value: this checks the loop around it).
    for (int stride : {1, 2}) {
      check_conv({8, 64, 64, 68, 68, 3, 3, stride, 1, 1, 1, 1, 1, 68, 0.0f, 6.0f, Path::kDepthwise}, rng, &pool2);
    }
    // Run-time kernel sizes (f32_dwconv_minmax_kxk__hwy), and an image smaller than the kernel.
    check_conv({1, 9, 8, 19, 19, 2, 7, 1, 1, 1, 3, 0, 3, 19, -kInf, kInf, Path::kDepthwise}, rng,
               &pool2);
    check_conv({1, 2, 3, 16, 16, 5, 5, 1, 1, 2, 2, 2, 2, 16, -kInf, kInf, Path::kDepthwise}, rng,
               &pool2);
  });
}

TEST(ConvFast, RejectsBadParams) {
  Conv2dParams p;
  p.in_h = p.in_w = 4;
  p.in_c = 6;
  p.out_h = p.out_w = 4;
  p.out_c = 4;
  p.groups = 4;  // does not divide in_c
  float w[64] = {};
  EXPECT_EQ(prepare_f32_conv2d_fast(p, w, nullptr).status().code(), StatusCode::kInvalidArgument);
  p.groups = 1;
  p.stride_h = 0;
  EXPECT_EQ(prepare_f32_conv2d_fast(p, w, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcv::kernels
