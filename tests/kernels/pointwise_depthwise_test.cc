// f32_pointwise_depthwise (a 1x1 conv and a depthwise conv band by band) against the two convs
// run one after the other through f32_conv2d_fast (itself checked against a naive conv in
// conv_fast_test.cc): the results must be bit-identical, for every band size (1 row: every
// band moves rows; the whole image: one band), stride, kernel, padding, dilation, channel
// tail, batch and thread count, on every Highway target. f32_affine_depthwise (a batch norm's
// output band by band into a depthwise conv) against the batch norm's pass and the conv.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/conv/pointwise_depthwise.h"
#include "kernel_test_util.h"

namespace pcv::kernels {
namespace {

using testing::for_each_hwy_target;
using testing::random_f32;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  int batch, h, w, in_c, c, k, stride, dilation, pad_top, pad_left, pad_bottom, pad_right;
  float pw_min, pw_max, dw_min, dw_max;
};

Conv2dParams pointwise_params(const Case& t) {
  Conv2dParams p;
  p.batch = t.batch;
  p.in_h = p.out_h = t.h;
  p.in_w = p.out_w = t.w;
  p.in_c = t.in_c;
  p.out_c = t.c;
  return p;
}

Conv2dParams depthwise_params(const Case& t) {
  Conv2dParams p;
  p.batch = t.batch;
  p.in_h = t.h;
  p.in_w = t.w;
  p.in_c = p.out_c = p.groups = t.c;
  p.kernel_h = p.kernel_w = t.k;
  p.stride_h = p.stride_w = t.stride;
  p.dilation_h = p.dilation_w = t.dilation;
  p.pad_top = t.pad_top;
  p.pad_left = t.pad_left;
  p.out_h = (t.h + t.pad_top + t.pad_bottom - t.dilation * (t.k - 1) - 1) / t.stride + 1;
  p.out_w = (t.w + t.pad_left + t.pad_right - t.dilation * (t.k - 1) - 1) / t.stride + 1;
  return p;
}

// A prepared conv (bias may be nullptr); fails the test when prepare does.
F32Conv2dPacked prepared(const Conv2dParams& p, const std::vector<float>& w, const float* bias) {
  auto packed = prepare_f32_conv2d_fast(p, w.data(), bias);
  EXPECT_TRUE(packed.has_value()) << packed.status().to_string();
  return packed.has_value() ? std::move(packed).value() : F32Conv2dPacked{};
}

// Outputs of n whose bits differ from want's (the first 3 reported).
size_t mismatches(const float* got, const float* want, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && bad++ < 3) {
      ADD_FAILURE() << "out[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  return bad;
}

void check(const Case& t, uint32_t seed, ThreadPool* pool2) {
  const Conv2dParams pp = pointwise_params(t), dp = depthwise_params(t);
  const std::vector<float> x = random_f32(static_cast<size_t>(t.batch) * t.h * t.w * t.in_c, seed);
  const std::vector<float> pw_w = random_f32(static_cast<size_t>(t.c) * t.in_c, seed + 1);
  const std::vector<float> pw_b = random_f32(static_cast<size_t>(t.c), seed + 2);
  const std::vector<float> dw_w = random_f32(static_cast<size_t>(t.c) * t.k * t.k, seed + 3);
  const std::vector<float> dw_b = random_f32(static_cast<size_t>(t.c), seed + 4);
  const F32Conv2dPacked pw = prepared(pp, pw_w, pw_b.data());
  const F32Conv2dPacked dw = prepared(dp, dw_w, dw_b.data());

  // The two convs one after the other.
  std::vector<float> mid(static_cast<size_t>(t.batch) * t.h * t.w * t.c);
  const size_t out_n = static_cast<size_t>(t.batch) * dp.out_h * dp.out_w * t.c;
  std::vector<float> want(out_n);
  f32_conv2d_fast(pw, x.data(), t.pw_min, t.pw_max, mid.data(), nullptr, nullptr);
  f32_conv2d_fast(dw, mid.data(), t.dw_min, t.dw_max, want.data(), nullptr, nullptr);

  for (int band : {1, 2, 3, 0, 1000}) {
    auto fused = fuse_f32_pointwise_depthwise(prepared(pp, pw_w, pw_b.data()), prepared(dp, dw_w, dw_b.data()), band);
    ASSERT_TRUE(fused.has_value()) << fused.status().to_string();
    EXPECT_GE(fused->band_rows, 1);
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), pool2}) {
      const int threads = pool != nullptr ? pool->threads() : 1;
      const float kGuard = 4242.0f;
      std::vector<float> scratch(fused->scratch_bytes(threads) / sizeof(float) + 1, kGuard);
      std::vector<float> got(out_n + 1, kGuard);
      f32_pointwise_depthwise(*fused, x.data(), t.pw_min, t.pw_max, t.dw_min, t.dw_max, got.data(), scratch.data(),
                              pool);
      EXPECT_EQ(got.back(), kGuard) << "wrote past the output";
      EXPECT_EQ(scratch.back(), kGuard) << "wrote past the scratch";
      got.pop_back();
      const size_t bad = mismatches(got.data(), want.data(), out_n);
      EXPECT_EQ(bad, 0u) << "batch " << t.batch << " " << t.h << "x" << t.w << "x" << t.in_c << " -> " << t.c << " k"
                         << t.k << " s" << t.stride << " d" << t.dilation << " pad " << t.pad_top << ","
                         << t.pad_left << "," << t.pad_bottom << "," << t.pad_right << " band " << fused->band_rows
                         << " threads " << threads;
    }
  }
}

TEST(PointwiseDepthwise, BitIdenticalToTheTwoConvs) {
  ThreadPool pool2(2);
  for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    uint32_t seed = 1;
    for (int c : {7, 16, 35}) {
      for (int stride : {1, 2}) {
        for (int k : {3, 5}) {
          const int pad = k / 2;
          check({1, 11, 9, 5, c, k, stride, 1, pad, pad, pad, pad, 0.f, 6.f, 0.f, 6.f}, seed++, &pool2);
          // TF SAME at stride 2 pads bottom / right only; two images; no clamps.
          check({2, 10, 8, 24, c, k, stride, 1, 0, 0, pad, pad, -kInf, kInf, -kInf, kInf}, seed++, &pool2);
        }
      }
      // Dilation, a band whose taps fall in the padding, an image shorter than the kernel.
      check({1, 9, 7, 3, c, 3, 1, 2, 2, 2, 2, 2, -0.5f, 0.5f, -1.f, 1.f}, seed++, &pool2);
      check({2, 2, 5, 4, c, 5, 1, 1, 2, 2, 2, 2, 0.f, 6.f, 0.f, 6.f}, seed++, &pool2);
      check({1, 13, 6, 8, c, 3, 2, 1, 4, 1, 4, 1, 0.f, 6.f, 0.f, 6.f}, seed++, &pool2);
    }
  });
}

TEST(PointwiseDepthwise, RefusesWhatItCannotRun) {
  const Case t{1, 8, 8, 4, 16, 3, 1, 1, 1, 1, 1, 1, 0.f, 6.f, 0.f, 6.f};
  const std::vector<float> w = random_f32(16 * 9 * 16, 7);
  const Conv2dParams pp = pointwise_params(t), dp = depthwise_params(t);
  // Swapped: the first is not a 1x1, the second not a depthwise conv.
  EXPECT_EQ(fuse_f32_pointwise_depthwise(prepared(dp, w, nullptr), prepared(dp, w, nullptr)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(fuse_f32_pointwise_depthwise(prepared(pp, w, nullptr), prepared(pp, w, nullptr)).status().code(),
            StatusCode::kInvalidArgument);
  // The depthwise input is not the pointwise output.
  Case other = t;
  other.w = 9;
  const Status s =
      fuse_f32_pointwise_depthwise(prepared(pp, w, nullptr), prepared(depthwise_params(other), w, nullptr)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("is not the pointwise output"), std::string::npos) << s.message();
  EXPECT_EQ(fuse_f32_pointwise_depthwise(prepared(pp, w, nullptr), prepared(dp, w, nullptr), -1).status().code(),
            StatusCode::kInvalidArgument);
}

// f32_affine_depthwise: a batch norm's output (scale, shift, clamp per channel) computed band
// by band for the depthwise conv, against f32_rows_scale_shift over the batch and then
// f32_conv2d_fast: bit-identical. Images 300 pixels wide make several bands of the 384 KB
// buffer (rows shared between bands move to its start), small ones a single band. And
// f32_affine_depthwise_moments: the same output, and the batch norm's statistics partials
// equal to f32_column_shifted_moments over each of the output's 8 slices about its first pixel
// (taken row by row where the batch is a multiple of 8, in a pass after otherwise).
void check_affine(const Case& t, uint32_t seed, ThreadPool* pool2, ThreadPool* pool3 = nullptr) {
  const Conv2dParams dp = depthwise_params(t);
  const size_t in_n = static_cast<size_t>(t.batch) * t.h * t.w * t.c;
  const std::vector<float> x = random_f32(in_n, seed, -3.f, 9.f);
  const std::vector<float> scale = random_f32(static_cast<size_t>(t.c), seed + 1, 0.25f, 2.f);
  const std::vector<float> shift = random_f32(static_cast<size_t>(t.c), seed + 2);
  const std::vector<float> dw_w = random_f32(static_cast<size_t>(t.c) * t.k * t.k, seed + 3);
  const std::vector<float> dw_b = random_f32(static_cast<size_t>(t.c), seed + 4);
  const F32Conv2dPacked dw = prepared(dp, dw_w, dw_b.data());
  const BnFusedClamp affine{scale.data(), shift.data(), t.pw_min, t.pw_max};

  std::vector<float> mid(in_n);
  f32_rows_scale_shift(in_n / static_cast<size_t>(t.c), static_cast<size_t>(t.c), x.data(), scale.data(),
                       shift.data(), t.pw_min, t.pw_max, mid.data());
  const size_t out_n = static_cast<size_t>(t.batch) * dp.out_h * dp.out_w * t.c;
  std::vector<float> want(out_n);
  f32_conv2d_fast(dw, mid.data(), t.dw_min, t.dw_max, want.data(), nullptr, nullptr);
  const size_t c = static_cast<size_t>(t.c), rows = out_n / c, S = kBnMomentsSlices;
  std::vector<float> want_moments(S * 2 * c, 0.f);
  for (size_t s = 0; s < S; ++s) {
    const size_t r0 = rows * s / S, r1 = rows * (s + 1) / S;
    f32_column_shifted_moments(r1 - r0, c, want.data() + r0 * c, want.data(), want_moments.data() + s * 2 * c,
                               want_moments.data() + s * 2 * c + c);
  }

  std::vector<ThreadPool*> pools{nullptr, pool2};
  if (pool3 != nullptr) pools.push_back(pool3);
  for (ThreadPool* pool : pools) {
    const int threads = pool != nullptr ? pool->threads() : 1;
    const float kGuard = 4242.0f;
    std::vector<float> scratch(f32_affine_depthwise_scratch_bytes(dw, threads) / sizeof(float) + 1, kGuard);
    std::vector<float> got(out_n + 1, kGuard);
    f32_affine_depthwise(dw, x.data(), affine, t.dw_min, t.dw_max, got.data(), scratch.data(), pool);
    EXPECT_EQ(got.back(), kGuard) << "wrote past the output";
    EXPECT_EQ(scratch.back(), kGuard) << "wrote past the scratch";
    const size_t bad = mismatches(got.data(), want.data(), out_n);
    EXPECT_EQ(bad, 0u) << "batch " << t.batch << " " << t.h << "x" << t.w << "x" << t.c << " k" << t.k << " s"
                       << t.stride << " d" << t.dilation << " pad " << t.pad_top << "," << t.pad_left << ","
                       << t.pad_bottom << "," << t.pad_right << " threads " << threads;

    std::vector<float> mscratch(f32_affine_depthwise_moments_scratch_bytes(dw, threads) / sizeof(float) + 1, kGuard);
    std::vector<float> mgot(out_n + 1, kGuard), moments(S * 2 * c + 1, kGuard);
    f32_affine_depthwise_moments(dw, x.data(), affine, t.dw_min, t.dw_max, mgot.data(), moments.data(),
                                 mscratch.data(), pool);
    EXPECT_EQ(mgot.back(), kGuard) << "moments: wrote past the output";
    EXPECT_EQ(moments.back(), kGuard) << "moments: wrote past the moments";
    EXPECT_EQ(mscratch.back(), kGuard) << "moments: wrote past the scratch";
    EXPECT_EQ(mismatches(mgot.data(), want.data(), out_n), 0u) << "moments: output, batch " << t.batch;
    EXPECT_EQ(mismatches(moments.data(), want_moments.data(), S * 2 * c), 0u)
        << "moments, batch " << t.batch << " " << t.h << "x" << t.w << "x" << t.c << " s" << t.stride << " threads "
        << threads;
  }
}

TEST(AffineDepthwise, BitIdenticalToTheBatchNormOutputThenTheConv) {
  ThreadPool pool2(2), pool3(3);
  for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    uint32_t seed = 1;
    for (int c : {7, 35}) {
      for (int stride : {1, 2}) {
        // Several bands (pw_min/pw_max: the batch norm's clamp), SAME padding at stride 2.
        check_affine({2, 21, 300, 0, c, 3, stride, 1, 1, 1, 1, 1, 0.f, 6.f, -kInf, kInf}, seed++, &pool2);
        check_affine({2, 20, 300, 0, c, 3, stride, 1, 0, 0, 1, 1, -kInf, kInf, 0.f, 6.f}, seed++, &pool2);
        // One band; a 5x5 kernel; dilation.
        check_affine({3, 11, 9, 0, c, 5, stride, 1, 2, 2, 2, 2, 0.f, 6.f, 0.f, 6.f}, seed++, &pool2);
        check_affine({1, 9, 7, 0, c, 3, stride, 2, 2, 2, 2, 2, 0.f, 1.f, -1.f, 1.f}, seed++, &pool2);
        // Batches of whole-image slices (the moments row by row): several bands, one band; 3
        // threads take 3, 3 and 2 slices.
        check_affine({8, 21, 300, 0, c, 3, stride, 1, 1, 1, 1, 1, 0.f, 6.f, -kInf, kInf}, seed++, &pool2, &pool3);
        check_affine({16, 7, 9, 0, c, 3, stride, 1, 1, 1, 1, 1, -kInf, kInf, 0.f, 6.f}, seed++, &pool2, &pool3);
      }
    }
  });
}

// A 1x1 conv's random input (rows x in_c), batch-norm scale and shift, weights and bias (bias
// around bias_mid), from seeds seed .. seed + 4.
struct AffineConvInputs {
  std::vector<float> x, scale, shift, w, b;
};
AffineConvInputs affine_conv_inputs(const Case& t, size_t rows, uint32_t seed, float bias_mid) {
  const size_t in_c = static_cast<size_t>(t.in_c), c = static_cast<size_t>(t.c);
  return {random_f32(rows * in_c, seed, -3.f, 9.f), random_f32(in_c, seed + 1, 0.25f, 2.f),
          random_f32(in_c, seed + 2), random_f32(c * in_c, seed + 3),
          random_f32(c, seed + 4, bias_mid - 1.f, bias_mid + 1.f)};
}

// f32_affine_conv1x1 against f32_rows_scale_shift over the batch, then f32_conv2d_fast:
// bit-identical, over chunks that span images (several per thread) and a channel tail.
TEST(AffineConv1x1, BitIdenticalToTheBatchNormOutputThenTheConv) {
  ThreadPool pool2(2);
  for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    uint32_t seed = 1;
    for (const Case& t : {Case{2, 15, 17, 300, 24, 1, 1, 1, 0, 0, 0, 0, 0.f, 6.f, -kInf, kInf},
                          Case{3, 16, 16, 7, 35, 1, 1, 1, 0, 0, 0, 0, -kInf, kInf, 0.f, 6.f}}) {
      const Conv2dParams pp = pointwise_params(t);
      const size_t rows = static_cast<size_t>(t.batch) * t.h * t.w;
      const AffineConvInputs in = affine_conv_inputs(t, rows, seed, 0.f);
      const std::vector<float>&x = in.x, &scale = in.scale, &shift = in.shift;
      seed += 5;
      const F32Conv2dPacked conv = prepared(pp, in.w, in.b.data());
      std::vector<float> mid(rows * t.in_c), want(rows * t.c);
      f32_rows_scale_shift(rows, static_cast<size_t>(t.in_c), x.data(), scale.data(), shift.data(), t.pw_min,
                           t.pw_max, mid.data());
      f32_conv2d_fast(conv, mid.data(), t.dw_min, t.dw_max, want.data(), nullptr, nullptr);
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
        const int threads = pool != nullptr ? pool->threads() : 1;
        const float kGuard = 4242.0f;
        std::vector<float> scratch(f32_affine_conv1x1_scratch_bytes(conv, threads) / sizeof(float) + 1, kGuard);
        std::vector<float> got(rows * t.c + 1, kGuard);
        f32_affine_conv1x1(conv, x.data(), {scale.data(), shift.data(), t.pw_min, t.pw_max}, t.dw_min, t.dw_max,
                           got.data(), scratch.data(), pool);
        EXPECT_EQ(got.back(), kGuard) << "wrote past the output";
        EXPECT_EQ(scratch.back(), kGuard) << "wrote past the scratch";
        got.pop_back();
        EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << t.in_c << " -> " << t.c << " threads " << threads;
      }
    }
  });
}

// The conv's output and the batch norm's statistics partials over it: the same bits as
// f32_conv2d_fast (after the batch norm's output, with affine), then f32_column_shifted_moments
// over each of the 8 slices of its rows about its first row. Cases: with and without the input
// affine; output channels within two vectors (the moments in registers), past them with a tail,
// and whole vectors; several chunks per slice (in_c 300: 218-row chunks, 384-row slices), and
// fewer rows than slices (empty slices stay zero).
TEST(Conv1x1Moments, BitIdenticalToTheConvThenTheBatchNormsMoments) {
  ThreadPool pool2(2), pool3(3);  // 3 threads: 3, 3 and 2 slices
  for_each_hwy_target([&](const char* isa) {
    SCOPED_TRACE(std::string("isa ") + isa);
    uint32_t seed = 7;
    for (const Case& t : {Case{3, 32, 32, 300, 24, 1, 1, 1, 0, 0, 0, 0, 0.f, 6.f, -kInf, kInf},
                          Case{3, 32, 32, 300, 35, 1, 1, 1, 0, 0, 0, 0, -kInf, kInf, 0.f, 6.f},
                          Case{2, 9, 11, 16, 64, 1, 1, 1, 0, 0, 0, 0, -kInf, kInf, -kInf, kInf},
                          Case{1, 1, 5, 8, 40, 1, 1, 1, 0, 0, 0, 0, -kInf, kInf, -kInf, kInf}}) {
      for (bool with_affine : {false, true}) {
        const Conv2dParams pp = pointwise_params(t);
        const size_t rows = static_cast<size_t>(t.batch) * t.h * t.w, c = static_cast<size_t>(t.c);
        const AffineConvInputs in = affine_conv_inputs(t, rows, seed, 3.f);  // moments about a far-off mean
        const std::vector<float>&x = in.x, &scale = in.scale, &shift = in.shift;
        seed += 5;
        const F32Conv2dPacked conv = prepared(pp, in.w, in.b.data());
        std::vector<float> mid = x, want(rows * c);
        if (with_affine) {
          f32_rows_scale_shift(rows, static_cast<size_t>(t.in_c), x.data(), scale.data(), shift.data(), t.pw_min,
                               t.pw_max, mid.data());
        }
        f32_conv2d_fast(conv, mid.data(), t.dw_min, t.dw_max, want.data(), nullptr, nullptr);
        const size_t S = kBnMomentsSlices;
        std::vector<float> want_moments(S * 2 * c, 0.f);
        for (size_t s = 0; s < S; ++s) {
          const size_t r0 = rows * s / S, r1 = rows * (s + 1) / S;
          f32_column_shifted_moments(r1 - r0, c, want.data() + r0 * c, want.data(), want_moments.data() + s * 2 * c,
                                     want_moments.data() + s * 2 * c + c);
        }
        const BnFusedClamp affine{scale.data(), shift.data(), t.pw_min, t.pw_max};
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2, &pool3}) {
          const int threads = pool != nullptr ? pool->threads() : 1;
          SCOPED_TRACE(std::to_string(t.in_c) + " -> " + std::to_string(t.c) + (with_affine ? " affine" : "") +
                       " threads " + std::to_string(threads));
          const float kGuard = 4242.0f;
          std::vector<float> scratch(f32_conv1x1_moments_scratch_bytes(conv, with_affine, threads) / sizeof(float) + 1,
                                     kGuard);
          std::vector<float> got(rows * c + 1, kGuard), moments(S * 2 * c + 1, kGuard);
          f32_conv1x1_moments(conv, x.data(), with_affine ? &affine : nullptr, t.dw_min, t.dw_max, got.data(),
                              moments.data(), scratch.data(), pool);
          EXPECT_EQ(got.back(), kGuard) << "wrote past the output";
          EXPECT_EQ(moments.back(), kGuard) << "wrote past the moments";
          EXPECT_EQ(scratch.back(), kGuard) << "wrote past the scratch";
          got.pop_back();
          moments.pop_back();
          EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
          EXPECT_EQ(std::memcmp(moments.data(), want_moments.data(), want_moments.size() * sizeof(float)), 0);
        }
      }
    }
  });
}

}  // namespace
}  // namespace pcv::kernels
